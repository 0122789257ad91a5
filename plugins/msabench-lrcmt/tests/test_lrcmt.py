"""LRCMT: what LoRA trains and what the host counts, the adapters starting as the identity, the joined
audio-visual stream and padding, and `msabench run` on small MMSA-layout pickles (and its refusal of IEMOCAP)."""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from msabench import PROTOCOL, Catalog, CatalogError, InputSpec, Task, get_plugin_manager  # noqa: E402
from msabench.cli import cli  # noqa: E402
from msabench.testing import TinyMSA, tiny_data, tiny_hparams, write_tiny_file  # noqa: E402
from msabench.train import assemble, resolve_hparams  # noqa: E402
from msabench_core.iemocap import IEMOCAP  # noqa: E402
from msabench_core.mmsa import MOSI  # noqa: E402
from msabench_lrcmt import LoraBert, LowRankCrossmodal  # noqa: E402
from msabench_lrcmt.fusion import concatenate  # noqa: E402

TASK = Task("regression", "mosi", (-3.0, 3.0))
SPEC = InputSpec("text_bert", (3, 7), vocab_size=50)
SIZE = {"random_init": True, "hidden_size": 16, "layers": 2, "heads": 2, "intermediate_size": 32}


def tokens(batch=3, steps=7, lengths=(7, 4, 2)):
    torch.manual_seed(5)
    ids = torch.randint(1, 50, (batch, steps))
    mask = (torch.arange(steps)[None, :] < torch.tensor(lengths)[:, None]).long()
    return torch.stack([ids * mask, mask, torch.zeros_like(ids)], dim=1)


def test_lora_trains_only_the_low_rank_matrices_of_the_chosen_projections():
    torch.manual_seed(0)
    encoder = LoraBert(SPEC, rank=4, **SIZE)
    trainable = {name for name, p in encoder.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in name or ".lora_B." in name for name in trainable)
    adapted = {name.split(".lora_")[0].split("encoder.layer.")[1] for name in trainable}
    expected = {
        f"{layer}.attention.{part}"
        for layer in (0, 1)
        for part in ("self.query", "self.key", "self.value", "output.dense")
    }
    assert adapted == expected  # every layer's four attention projections; not the feed-forward layers
    # r (in + out) per matrix: 4 * (16 + 16) * 4 projections * 2 layers
    assert sum(p.numel() for p in encoder.parameters() if p.requires_grad) == 4 * 32 * 4 * 2
    frozen = LoraBert(SPEC, adapter="frozen", **SIZE)
    full = LoraBert(SPEC, adapter="full", **SIZE)
    assert not any(p.requires_grad for p in frozen.parameters()) and all(p.requires_grad for p in full.parameters())
    assert sum(p.numel() for p in full.parameters()) == sum(p.numel() for p in encoder.parameters()) - 4 * 32 * 4 * 2


def test_the_adapters_start_as_the_identity_and_leave_bert_untouched():
    torch.manual_seed(0)
    encoder = LoraBert(SPEC, rank=4, lora_dropout=0.0, **SIZE).eval()
    x = tokens()
    with encoder.bert.disable_adapter():
        plain = encoder(x, None)
    assert torch.allclose(encoder(x, None), plain)  # lora_B starts at zero
    base = {n: p.detach().clone() for n, p in encoder.named_parameters() if not p.requires_grad}
    optimizer = torch.optim.SGD([p for p in encoder.parameters() if p.requires_grad], lr=0.5)
    direction = torch.randn_like(plain)
    for _ in range(2):  # two steps: lora_B moves first, then lora_A gets a gradient too
        (encoder(x, None) * direction).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    assert not torch.allclose(encoder(x, None), plain, atol=1e-4)
    assert all(torch.equal(p, base[n]) for n, p in encoder.named_parameters() if n in base)


def test_unknown_adapter_is_refused():
    with pytest.raises(CatalogError, match="adapter 'prefix' is not one of lora, frozen, full"):
        LoraBert(SPEC, adapter="prefix", **SIZE)


def test_concatenate_joins_each_samples_real_frames():
    a = torch.tensor([[[1.0], [2.0], [9.0]], [[3.0], [9.0], [9.0]]])  # real: 2, 1
    v = torch.tensor([[[4.0], [9.0]], [[5.0], [6.0]]])  # real: 1, 2
    joined, lengths = concatenate(a, torch.tensor([2, 1]), v, torch.tensor([1, 2]))
    assert joined[..., 0].tolist() == [[1, 2, 4, 0, 0], [3, 5, 6, 0, 0]] and lengths.tolist() == [3, 3]
    full, lengths = concatenate(a, None, v, None)
    assert full.shape == (2, 5, 1) and lengths.tolist() == [5, 5]


def sequences(fill=0.0):
    torch.manual_seed(1)
    features = {"text": torch.randn(3, 6, 8), "audio": torch.randn(3, 9, 3), "vision": torch.randn(3, 5, 4)}
    lengths = {"text": torch.tensor([6, 3, 2]), "audio": torch.tensor([9, 2, 6]), "vision": torch.tensor([5, 5, 1])}
    for m, x in features.items():
        x[torch.arange(x.shape[1])[None, :] >= lengths[m][:, None]] = fill
    return features, lengths


@pytest.mark.parametrize("interaction", ["staged", "direct"])
def test_the_cross_modal_module_reads_only_real_frames(interaction):
    torch.manual_seed(0)
    fusion = LowRankCrossmodal({"text": 8, "audio": 3, "vision": 4}, TASK, dim=8, heads=2, interaction=interaction)
    fusion.eval()
    features, lengths = sequences()
    out = fusion(features, lengths)["prediction"]
    noisy, _ = sequences(fill=40.0)
    assert torch.allclose(fusion(noisy, lengths)["prediction"], out, atol=1e-5)
    for i in range(3):  # each sample alone, cut to its real frames, gives its own prediction
        alone = {m: x[i : i + 1, : lengths[m][i]] for m, x in features.items()}
        assert torch.allclose(fusion(alone, dict.fromkeys(alone))["prediction"][0], out[i], atol=1e-5)
    assert hasattr(fusion, "audio_to_vision") == (interaction == "staged")


def test_after_the_audio_visual_stage_the_audio_frames_carry_vision():
    torch.manual_seed(0)
    staged = LowRankCrossmodal({"text": 8, "audio": 3, "vision": 4}, TASK, dim=8, heads=2).eval()
    features, lengths = sequences()
    audio, vision = staged.project["audio"](features["audio"]), staged.project["vision"](features["vision"])
    enriched = staged.audio_to_vision(audio, lengths["audio"], source=vision, source_lengths=lengths["vision"])
    other = vision + torch.randn_like(vision)  # (a constant shift would vanish in the LayerNorm)
    shifted = staged.audio_to_vision(audio, lengths["audio"], source=other, source_lengths=lengths["vision"])
    assert not torch.allclose(enriched, shifted)
    prediction = staged(features, lengths)["prediction"]
    features["vision"] = features["vision"] + torch.randn_like(features["vision"])
    assert not torch.allclose(staged(features, lengths)["prediction"], prediction)


@pytest.fixture(scope="module")
def catalog():
    return Catalog.from_plugins(get_plugin_manager())


@pytest.mark.parametrize("name", ["lrcmt", "lrcmt-frozen", "lrcmt-full"])
def test_the_host_counts_lora_and_optimizes_only_what_is_trainable(catalog, name):
    method = catalog.methods[name]
    data = tiny_data(TinyMSA)
    hparams = resolve_hparams(tiny_hparams(catalog, method, TinyMSA), data, 0, PROTOCOL)
    run = assemble(method, data, catalog=catalog, seed=0, hparams=hparams, device="cpu")
    bert = run.model.encoders["text"]
    lora = sum(p.numel() for n, p in bert.named_parameters() if ".lora_" in n)
    base = sum(p.numel() for n, p in bert.named_parameters() if ".lora_" not in n)
    fusion = sum(p.numel() for p in run.model.fusion.parameters())
    optimized = sum(p.numel() for group in run.optimizer.param_groups for p in group["params"])
    trainable = {"lrcmt": lora + fusion, "lrcmt-frozen": fusion, "lrcmt-full": base + fusion}[name]
    assert run.parameters == {"trainable": trainable, "total": base + lora + fusion}
    assert optimized == trainable
    assert (lora > 0) == (name == "lrcmt")
    if name == "lrcmt-full":
        assert sorted(group["lr"] for group in run.optimizer.param_groups) == [2e-5, 5e-4]


TINY_BERT = ["text.random_init=true", "text.hidden_size=16", "text.layers=1", "text.heads=2", "text.rank=2"]


def run(tmp_path, method, dataset, *sets):
    args = ["run", "--method", method, "--dataset", dataset, "--data-root", str(tmp_path / "data"), "--no-verify"]
    args += ["--seeds", "1111", "--max-epochs", "1", "--results", str(tmp_path / "results")]
    args += ["--leaderboards", str(tmp_path / "boards"), "--no-progress", "--no-checkpoints", "-q"]
    return CliRunner().invoke(cli, [*args, *(arg for value in sets for arg in ("--set", value))])


def test_lrcmt_runs_on_an_mmsa_mosi_pickle_and_records_its_parameter_counts(tmp_path):
    write_tiny_file(MOSI, tmp_path / "data")
    outcome = run(tmp_path, "lrcmt", "mosi", *TINY_BERT, "fusion.dim=8", "fusion.heads=2")
    assert outcome.exit_code == 0, outcome.output
    (path,) = (tmp_path / "results" / "mosi").rglob("seed-1111.json")
    result = json.loads(path.read_text())
    # LoRA: rank 2 * (16 + 16) per matrix, 4 matrices, 1 layer; plus the cross-modal module and head
    fusion = LowRankCrossmodal({"text": 16, "audio": 5, "vision": 20}, TASK, dim=8, heads=2)
    assert result["parameters"]["trainable"] == 256 + sum(p.numel() for p in fusion.parameters())
    bert = result["parameters"]["total"] - result["parameters"]["trainable"]
    assert bert > 10 * result["parameters"]["trainable"]  # BERT's own weights: counted, frozen
    assert result["versions"]["peft"] and result["hparams"]["train"]["optimizer"] == "adamw"
    assert result["method_info"]["reported"] == [] and "Acc-2_non0" in result["metrics"]


def test_lrcmt_needs_bert_ids_and_refuses_iemocap(tmp_path):
    write_tiny_file(IEMOCAP, tmp_path / "data")
    outcome = run(tmp_path, "lrcmt", "iemocap")
    assert outcome.exit_code != 0
    assert "method 'lrcmt' handles regression tasks; dataset 'iemocap' is a multilabel task" in outcome.output
