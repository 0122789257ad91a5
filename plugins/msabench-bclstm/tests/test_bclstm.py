"""bc-LSTM on tiny grouped data the tests write: shapes, context (an utterance sees its video's others and no
other video's), the grouping round trip, the classifier's scoring, the stages, and a run through the CLI."""

import json
import os
from dataclasses import replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from msabench import Catalog, InputSpec, Protocol, Task, fit, get_plugin_manager  # noqa: E402
from msabench.cli import cli  # noqa: E402
from msabench.metrics import evaluate  # noqa: E402
from msabench.testing import TinyMSAGrouped, tiny_data  # noqa: E402
from msabench.train import assemble  # noqa: E402
from msabench_bclstm import METHODS, ContextEncoder, ContextFusion, PolarityCrossEntropy, SoftmaxHead  # noqa: E402
from msabench_bclstm.model import ContextualLSTM  # noqa: E402

REGRESSION = Task("regression", "mosi", (-3.0, 3.0))
VIDEOS = torch.tensor([0, 0, 0, 1, 1, 2])  # three videos of 3, 2 and 1 utterances, in batch order


def encoder(dim=5, **options):
    torch.manual_seed(0)
    return ContextEncoder(InputSpec("audio", (1, dim)), hidden=6, width=4, **options).eval()


def test_the_unimodal_network_gives_one_contextual_vector_per_utterance():
    x = torch.randn(6, 1, 5)
    out = encoder()(x, torch.ones(6, dtype=torch.long), VIDEOS)
    assert out.shape == (6, 4) and torch.isfinite(out).all()
    assert out.abs().max() <= 1  # dense 100 with tanh, here 4


def test_an_utterance_sees_its_own_video_and_no_other():
    model, x = encoder(), torch.randn(6, 1, 5)
    before = model(x, None, VIDEOS)
    changed = x.clone()
    changed[1] += 3.0  # the second utterance of video 0
    moved = (model(changed, None, VIDEOS) - before).abs().amax(1) > 1e-6
    assert moved.tolist() == [True, True, True, False, False, False]


def test_a_batch_of_videos_gives_each_video_its_outputs_alone():
    model, x = encoder(), torch.randn(6, 1, 5)
    together = model(x, None, VIDEOS)
    rows = [torch.eq(VIDEOS, v).nonzero().reshape(-1) for v in range(3)]
    alone = torch.cat([model(x[r], None, torch.zeros(len(r))) for r in rows])
    assert torch.allclose(together, alone, atol=1e-6)  # padding after a short video changes nothing
    single = model(x, None, None)  # no groups: each utterance a video of its own
    assert torch.allclose(single[5], together[5], atol=1e-6) and not torch.allclose(single[0], together[0])


def test_the_lstm_is_bidirectional_context_flows_both_ways():
    torch.manual_seed(0)
    context = ContextualLSTM(3, 4, 2, "tanh", input_dropout=0.0, dropout=0.0).eval()
    x = torch.randn(3, 3)
    base = context(x, torch.zeros(3))
    later = x.clone()
    later[2] += 2.0
    assert not torch.allclose(context(later, torch.zeros(3))[0], base[0])  # the first hears the last


def test_input_dropout_draws_one_mask_per_video():
    torch.manual_seed(1)
    context = ContextualLSTM(8, 3, 2, "tanh", input_dropout=0.5, dropout=0.0).train()
    seen = []
    context.lstm.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    context(torch.ones(6, 8), VIDEOS)
    padded = seen[0]  # [3 videos, 3 steps, 8]
    for video, length in enumerate([3, 2, 1]):
        steps = padded[video, :length]
        assert torch.equal(steps, steps[:1].expand_as(steps))  # the same units dropped at every utterance
        assert set(steps[0].unique().tolist()) <= {0.0, 2.0}  # kept units scaled by 1 / (1 - 0.5)


def test_standardizing_uses_the_train_split_and_stays_in_checkpoints():
    data = tiny_data(TinyMSAGrouped)
    model = ContextEncoder(data.specs["audio"], hidden=4, width=3)

    class Run:
        pass

    run = Run()
    run.data = data
    model.on_fit_start(run)
    frames, lengths = data.splits["train"].tensors["audio"], data.splits["train"].tensors["audio_lengths"]
    mask = (torch.arange(frames.shape[1])[None] < lengths[:, None]).float()
    vectors = (frames * mask[..., None]).sum(1) / lengths[:, None]
    assert torch.allclose(model.mean, vectors.mean(0), atol=1e-5)
    assert torch.allclose(model.std, vectors.std(0), atol=1e-5)
    assert {"mean", "std"} <= set(model.state_dict())
    raw = ContextEncoder(data.specs["audio"], hidden=4, width=3, standardize=False)
    raw.on_fit_start(run)
    assert torch.equal(raw.mean, torch.zeros(4)) and torch.equal(raw.std, torch.ones(4))


def test_a_frozen_network_stays_in_eval_mode_without_gradients():
    model = encoder(freeze=True)
    model.train()
    assert not model.training and not model.context.dropout.training and model.frozen


def test_the_answer_is_the_signed_margin_so_acc2_is_the_binary_accuracy():
    torch.manual_seed(0)
    head = SoftmaxHead({"text": 4}, REGRESSION, dropout=0.9).eval()
    with torch.no_grad():
        out = head({"text": torch.randn(50, 4)}, {"text": None})
    logits = out["logits"]
    assert out["prediction"].shape == (50, 1) and logits.shape == (50, 2)
    assert torch.allclose(out["prediction"].reshape(-1), logits[:, 1] - logits[:, 0])
    decision = logits.argmax(1)  # the classifier's answer: 1 = positive
    labels = torch.linspace(-3, 3, 50)
    labels[7] = 0.0  # zero counts as positive
    accuracy = float((decision == (labels >= 0).long()).float().mean())
    scored = evaluate("mosi", out["prediction"].reshape(-1).double().numpy(), labels.double().numpy())
    assert scored["Acc-2_has0"] == pytest.approx(accuracy)
    classes = Task("classification", "classification", classes=("a", "b", "c"))
    assert SoftmaxHead({"text": 4}, classes)({"text": torch.randn(2, 4)}, {"text": None})["prediction"].shape == (2, 3)


def test_the_loss_is_the_cross_entropy_of_the_polarity_with_zero_positive():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.5], [-1.0, 3.0]])
    batch = {"label": torch.tensor([-0.4, 0.0, 2.2])}
    loss = PolarityCrossEntropy(REGRESSION)({"logits": logits}, batch)["total"]
    assert float(loss) == pytest.approx(float(F.cross_entropy(logits, torch.tensor([0, 1, 1]))))


def test_the_fusion_reads_the_concatenated_contextual_features_of_each_video():
    torch.manual_seed(0)
    fusion = ContextFusion({"text": 3, "audio": 2}, REGRESSION, hidden=4, width=5).eval()
    features = {"text": torch.randn(6, 3), "audio": torch.randn(6, 2)}
    out = fusion(features, dict.fromkeys(features), VIDEOS)
    assert out["prediction"].shape == (6, 1) and out["logits"].shape == (6, 2)
    changed = {**features, "audio": features["audio"].clone()}
    changed["audio"][3] += 2.0  # video 1
    moved = (fusion(changed, dict.fromkeys(features), VIDEOS)["logits"] - out["logits"]).abs().amax(1) > 1e-6
    assert moved.tolist() == [False, False, False, True, True, False]


def test_the_methods_are_the_papers_rows_with_the_upstream_settings():
    names = {method.name: method for method in METHODS}
    assert sorted(names) == ["bc-lstm", "bc-lstm-a", "bc-lstm-av", "bc-lstm-t", "bc-lstm-ta", "bc-lstm-tv", "bc-lstm-v"]
    for method in METHODS:
        assert method.batches == "groups" and method.metrics == ("Acc-2_has0", "F1_has0")
        assert method.hparams["train"] == {"optimizer": "adadelta", "lr": 1.0, "batch_size": 10, "max_epochs": 200}
    tav = names["bc-lstm"]
    assert [(s.method, s.modality) for s in tav.stages] == [
        ("bc-lstm-t", "text"),
        ("bc-lstm-a", "audio"),
        ("bc-lstm-v", "vision"),
    ]
    assert all(tav.hparams[m] == {"freeze": True} for m in ("text", "audio", "vision"))
    assert names["bc-lstm-av"].encoders == {"audio": "bc-lstm-context", "vision": "bc-lstm-context"}
    (paper,) = tav.reported  # registered only where the paper's number could be read (see the README)
    assert paper.dataset == "mosi-bclstm" and dict(paper.metrics) == {"Acc-2_has0": 80.3}
    assert "T+A+V" in paper.source and "NLP-progress" in paper.source


def test_the_fusion_stage_starts_from_the_frozen_unimodal_networks(tmp_path):
    data = tiny_data(TinyMSAGrouped)
    names = {method.name: method for method in METHODS}
    catalog = Catalog.from_plugins(get_plugin_manager())
    small = {"hidden": 4, "width": 3}
    protocol = Protocol(max_epochs=2)
    stage = fit(
        names["bc-lstm-a"],
        data,
        catalog=catalog,
        seed=1,
        protocol=protocol,
        hparams={"train": {"batch_size": 4}, "audio": small},
        checkpoint=tmp_path / "a.pt",
    )
    assert list(stage.metrics) == ["Acc-2_has0", "F1_has0"]
    weights = torch.load(tmp_path / "a.pt", weights_only=True)["model"]
    hparams = {
        "train": {"batch_size": 4},
        "audio": {**small, "freeze": True, "init_from": str(tmp_path / "a.pt")},
        "fusion": {"hidden": 4, "width": 5},
    }
    method = replace(names["bc-lstm-av"], name="bc-lstm-a-fused", encoders={"audio": "bc-lstm-context"}, stages=())
    run_result = fit(method, data, catalog=catalog, seed=1, protocol=protocol, hparams=hparams)
    assert run_result.metrics.keys() == {"Acc-2_has0", "F1_has0"}
    run = assemble(method, data, catalog=catalog, seed=1, hparams=hparams)
    started = run.model.encoders["audio"].state_dict()
    assert all(torch.equal(started[k], weights[f"encoders.audio.{k}"]) for k in started)
    assert not any(p.requires_grad for p in run.model.encoders["audio"].parameters())


def test_msabench_run_trains_the_stages_then_the_fusion_on_a_tiny_release(tmp_path):
    tiny = pytest.importorskip("msabench_cmu.tiny", reason="mosi-bclstm comes with msabench-cmu")
    tiny.write_release(tmp_path / "data" / "cmu-mosi")
    small = ["text.hidden=4", "text.width=3", "audio.hidden=4", "audio.width=3", "fusion.hidden=4", "fusion.width=5"]
    stage_sets = [f"bc-lstm-{m}:{m_}.{k}" for m, m_ in (("t", "text"), ("a", "audio")) for k in ("hidden=4", "width=3")]
    args = ["run", "-m", "bc-lstm-ta", "-d", "mosi-bclstm", "--data-root", str(tmp_path / "data"), "--no-verify"]
    args += ["--seeds", "1111", "--max-epochs", "2", "--results", str(tmp_path / "results"), "--no-progress", "-q"]
    args += ["--leaderboards", str(tmp_path / "boards")]
    for value in small[:4] + small[4:] + stage_sets:
        args += ["--set", value]
    outcome = CliRunner().invoke(cli, args)
    assert outcome.exit_code == 0, outcome.output
    results = [json.loads(path.read_text()) for path in (tmp_path / "results").rglob("seed-1111.json")]
    found = {result["method"]: result for result in results}
    assert set(found) == {"bc-lstm-t", "bc-lstm-a", "bc-lstm-ta"}
    final = found["bc-lstm-ta"]
    assert list(final["metrics"]) == final["method_info"]["metrics"] == ["Acc-2_has0", "F1_has0"]
    assert final["stages"].keys() == {"text", "audio"}
    assert final["predictions"]["ids"] == ["zhpQhgha_KU_1", "zhpQhgha_KU_2", "zhpQhgha_KU_3", "zhpQhgha_KU_4"]
    page = (tmp_path / "boards" / "mosi-bclstm.md").read_text()
    assert "| bc-lstm-ta" in page and "—" in page
