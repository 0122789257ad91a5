"""AWF's fusion against hand-computed values (A-fusion, Z = (Z_GB + Z_ATT) / 2, Z = Z_GB without A-fusion), A-fusion
passing no gradient into the unimodal networks, Table 2's hyper-parameters per dataset, Table 10's observation
(A-fusion alone on a trained AWF), and `msabench run` on small pickles in MMSA's and MulT's layouts and on
synthetic IEMOCAP (word vectors: the text LSTM), with the paper's patience as a protocol variant."""

import json
import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from torch import nn  # noqa: E402

from msabench import Catalog, Stage, Task, get_plugin_manager  # noqa: E402
from msabench.cli import cli  # noqa: E402
from msabench_awf import PAPER_PATIENCE, AdaptiveWeightFusion, ModalAttention  # noqa: E402
from msabench_core.iemocap import IEMOCAP  # noqa: E402
from msabench_core.mmsa import MOSEI, MOSI, SIMS  # noqa: E402

TASK = Task("regression", "mosi", (-3.0, 3.0))
Z = torch.tensor([[[1.0, 3.0], [0.0, -2.0], [4.0, 2.0]]])  # [B=1, T/A/V, d=2]: feature means 2, -1, 3


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def attention(shared=False):
    module = ModalAttention(3, shared=shared)
    with torch.no_grad():
        module.first.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]))
        if not shared:
            module.second.weight.copy_(torch.tensor([[0.5, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 2.0]]))
    return module


def test_a_fusion_weights_match_the_hand_computed_values():
    # avgpool -> (2, -1, 3); W1 -> (2, 3, 1), ReLU keeps them; W2 -> (1, -3, 2); sigmoid
    assert attention()(Z)[0].tolist() == pytest.approx([sigmoid(1), sigmoid(-3), sigmoid(2)])
    # one matrix twice (the other reading of W_ATT): W1 (2, 3, 1) -> ReLU -> W1 again -> (2, 1, 5)
    shared = attention(shared=True)
    assert shared.first is shared.second
    assert shared(Z)[0].tolist() == pytest.approx([sigmoid(2), sigmoid(1), sigmoid(5)])


def fusion(**hparams):
    """AWF with identity projections and no head, so its output is Z itself."""
    module = AdaptiveWeightFusion({"text": 2, "audio": 2, "vision": 2}, TASK, dim=2, post_fusion_dim=3, **hparams)
    with torch.no_grad():
        for layer in module.project.values():
            layer.weight.copy_(torch.eye(2))
            layer.bias.zero_()
    module.head = nn.Identity()
    return module.eval()


def features():
    return {m: Z[:, i] for i, m in enumerate(("text", "audio", "vision"))}, dict.fromkeys(("text", "audio", "vision"))


def test_the_fused_vector_averages_the_balanced_and_the_attended_concatenations():
    module = fusion()
    module.attention = attention()
    with torch.no_grad():
        module.balancer.omega.copy_(torch.tensor([2.0, 1.0, 0.5]))
    alpha = [sigmoid(1), sigmoid(-3), sigmoid(2)]
    omega = [2.0, 1.0, 0.5]
    expected = [(w + a) / 2 * z for w, a, row in zip(omega, alpha, Z[0].tolist(), strict=True) for z in row]
    assert module(*features())["prediction"][0].tolist() == pytest.approx(expected)


def test_without_a_fusion_the_fused_vector_is_z_gb_itself():
    module = fusion(attention=False, balance=False)  # Table 9's "without A-fusion", awf-no-gb's omega
    assert module.balancer is None and module.attention is None
    assert module(*features())["prediction"][0].tolist() == pytest.approx([z for row in Z[0].tolist() for z in row])
    with torch.no_grad():
        (balanced := fusion(attention=False)).balancer.omega.copy_(torch.tensor([2.0, 1.0, 0.5]))
    expected = [w * z for w, row in zip([2.0, 1.0, 0.5], Z[0].tolist(), strict=True) for z in row]
    assert balanced(*features())["prediction"][0].tolist() == pytest.approx(expected)


def test_a_fusion_passes_no_gradient_into_the_unimodal_networks():
    module = fusion()
    module.attention = attention()
    with torch.no_grad():
        module.balancer.omega.zero_()  # Z_GB = 0: the prediction depends on the Z_i through A-fusion alone
    inputs = {m: z.clone().requires_grad_(True) for m, z in features()[0].items()}
    module(inputs, features()[1])["prediction"].sum().backward()
    assert all(torch.count_nonzero(inputs[m].grad) == 0 for m in inputs)  # nothing reaches the encoders' outputs
    assert all(torch.count_nonzero(module.project[m].weight.grad) == 0 for m in inputs)  # nor W_i
    assert module.attention.first.weight.grad.abs().sum() > 0  # A-fusion itself learns
    with torch.no_grad():
        module.balancer.omega.fill_(1.0)
    module.zero_grad()
    module(inputs, features()[1])["prediction"].sum().backward()  # through Z_GB, W_i gets its gradient
    assert all(module.project[m].weight.grad.abs().sum() > 0 for m in inputs)


@pytest.fixture(scope="module")
def catalog():
    return Catalog.from_plugins(get_plugin_manager())


def test_table2_hyper_parameters_per_dataset(catalog):
    awf = catalog.methods["awf"]
    rows = {
        MOSI: (64, 1e-4, 256, 128, 0.0),
        MOSEI: (64, 1e-5, 128, 128, 0.4),
        SIMS: (16, 1e-5, 128, 64, 0.0),
        IEMOCAP: (24, 1e-4, 256, 128, 0.4),
    }
    for dataset, (batch, lr, hidden, post, dropout) in rows.items():
        recipe = awf.for_dataset(dataset)
        hparams = recipe.hparams_for(dataset)
        train, fusion = hparams["train"], hparams["fusion"]
        assert (train["batch_size"], train["lr"], train["optimizer"], train["max_epochs"]) == (batch, lr, "sgd", 50)
        assert (hparams["audio"]["hidden"], hparams["vision"]["hidden"], fusion["dim"]) == (hidden,) * 3
        assert (fusion["post_fusion_dim"], fusion["dropout"]) == (post, dropout)
    assert awf.for_dataset(IEMOCAP).encoders["text"] == "lstm-seq" and awf.encoders["text"] == "bert-text"
    assert catalog.methods["awf-adam"].hparams_for(MOSEI)["train"]["optimizer"] == "adam"
    assert catalog.methods["awf-no-gb"].hparams["fusion"]["balance"] is False
    assert catalog.methods["awf-wo-afusion"].hparams_for(MOSEI)["fusion"]["attention"] is False
    observed = catalog.methods["awf-afusion-observed"]
    assert observed.stages == (Stage("awf", "text"),) and observed.hparams["text"] == {"finetune": False}
    for dataset, (batch, hidden) in {MOSI: (64, 256), MOSEI: (64, 128), SIMS: (16, 128)}.items():
        hparams = observed.hparams_for(dataset)
        assert hparams["train"] == {"batch_size": batch, "lr": 1e-3, "optimizer": "adam", "max_epochs": 50}
        assert hparams["fusion"]["observe"] is True and hparams["fusion"]["dim"] == hidden  # awf's own widths
    assert PAPER_PATIENCE == {"mosi": 20, "mosei": 1, "ch-sims": 8, "iemocap": 8}


def test_reported_numbers_are_the_papers_with_mae_and_corr_divided_by_100(catalog):
    reported = {r.dataset: dict(r.metrics) for r in catalog.methods["awf"].reported}
    assert reported["mosi"] == {"Acc-2_non0": 86.28, "F1_non0": 86.38, "MAE": 0.7163, "Corr": 0.791}
    assert reported["ch-sims"] == {"Acc-2": 80.96, "F1": 81.28}
    assert reported["iemocap"]["Acc_Neutral"] == 71.3 and reported["iemocap"]["F1_Happy"] == 84.2
    table3 = {name: catalog.methods[name].reported[0].metrics["Acc-2_non0"] for name in ("lf-dnn-gb", "lf-lstm-bert")}
    assert table3 == {"lf-dnn-gb": 79.42, "lf-lstm-bert": 77.99}
    table10 = {r.source: r.metrics for r in catalog.methods["awf-afusion-observed"].reported}
    assert table10 == {
        "Table 10 (observed ratios .38:.20:.42)": {"Acc-2_non0": 86.05, "F1_non0": 86.18},
        "Table 10 (observed ratios .35:.39:.26)": {"Acc-2_non0": 85.86, "F1_non0": 86.00},
    }


TINY_BERT = ["text.random_init=true", "text.hidden_size=16", "text.layers=1", "text.heads=2"]
SMALL = ["audio.hidden=8", "vision.hidden=8", "fusion.dim=8", "fusion.post_fusion_dim=8"]


def run(tmp_path, method, dataset, *sets, extra=(), results="results"):
    args = ["run", "--method", method, "--dataset", dataset, "--data-root", str(tmp_path / "data"), "--no-verify"]
    args += ["--seeds", "1111", "--max-epochs", "1", "--results", str(tmp_path / results), *extra]
    args += ["--leaderboards", str(tmp_path / "boards"), "--no-progress", "--no-checkpoints", "-q"]
    outcome = CliRunner().invoke(cli, [*args, *(arg for value in sets for arg in ("--set", value))])
    assert outcome.exit_code == 0, outcome.output
    (path,) = (tmp_path / results / dataset).rglob("seed-1111.json")
    return json.loads(path.read_text())


def test_awf_runs_on_an_mmsa_mosi_pickle(tmp_path):
    from msabench.testing import write_tiny_file

    write_tiny_file(MOSI, tmp_path / "data")
    result = run(tmp_path, "awf", "mosi", *TINY_BERT, *SMALL)
    assert result["method_info"]["encoders"] == {"text": "bert-text", "audio": "lstm-seq", "vision": "lstm-seq"}
    train = result["hparams"]["train"]
    assert (train["batch_size"], train["lr"], train["optimizer"], train["max_epochs"]) == (64, 1e-4, "sgd", 50)
    (epoch,) = result["history"]
    assert {"omega_T", "omega_A", "omega_V", "alpha_T"} <= set(epoch) and "balance" in epoch["train"]
    assert epoch["omega_T"] != 1.0
    assert result["parameters"]["trainable"] == result["parameters"]["total"] > 0
    assert "Acc-2_non0" in result["metrics"] and result["method_info"]["reported"][0]["metrics"]["MAE"] == 0.7163


def test_awf_on_mults_iemocap_pickle_reads_the_word_vectors_with_an_lstm(tmp_path):
    from msabench.testing import write_tiny_file

    write_tiny_file(IEMOCAP, tmp_path / "data")
    result = run(tmp_path, "awf", "iemocap", "text.hidden=8", *SMALL)
    assert result["method_info"]["encoders"]["text"] == "lstm-seq"
    assert result["task"]["kind"] == "multilabel" and list(result["metrics"])[:2] == ["Acc_mean", "F1_mean"]
    train, fusion = result["hparams"]["train"], result["hparams"]["fusion"]
    assert (train["batch_size"], train["lr"], fusion["dropout"]) == (24, 1e-4, 0.4)
    assert result["method_info"]["reported"][3]["source"] == "Table 5"


def test_awf_on_synthetic_iemocap_with_the_papers_patience_as_a_protocol_variant(tmp_path):
    result = run(tmp_path, "awf", "synthetic-iemocap", "text.hidden=8", *SMALL, extra=["--patience", "8"])
    assert result["protocol"]["id"] == "mmsa-1+max_epochs=1" and result["protocol"]["patience"] == 8
    other = run(tmp_path, "awf", "synthetic-iemocap", "text.hidden=8", *SMALL, extra=["--patience", "20"], results="b")
    assert other["protocol"]["id"] == "mmsa-1+patience=20+max_epochs=1"
    assert other["metrics"] == result["metrics"]  # one epoch: patience changes nothing but the protocol id
    assert math.isfinite(result["metrics"]["Acc_mean"]) and result["history"][0]["omega_A"] > 0


def test_b_fusion_add_on_runs_on_an_mmsa_mosi_pickle(tmp_path):
    from msabench.testing import write_tiny_file

    write_tiny_file(MOSI, tmp_path / "data")
    result = run(tmp_path, "lf-lstm-bert-gb", "mosi", *TINY_BERT, "fusion.post_fusion_dim=8")
    assert result["hparams"]["fusion"]["fusion"] == "late-concat"
    assert result["hparams"]["fusion"]["project"] == {"text": 64}
    assert {"omega_T", "omega_A", "omega_V"} <= set(result["history"][0])
    before = run(tmp_path, "lf-lstm-bert", "mosi", *TINY_BERT, "fusion.post_fusion_dim=8", results="b")
    assert "omega_T" not in before["history"][0]
    assert before["parameters"]["total"] == result["parameters"]["total"] - 3  # the same model, less omega


def test_the_observation_freezes_everything_but_a_fusion_and_keeps_omega(catalog, caplog):
    from msabench.testing import TinyMSA, tiny_data, tiny_hparams
    from msabench.train import assemble

    method = catalog.methods["awf-afusion-observed"]
    hparams = tiny_hparams(catalog, method, TinyMSA)
    run_ = assemble(method, tiny_data(TinyMSA), catalog=catalog, seed=1, hparams=hparams, device="cpu")
    fusion_ = run_.model.fusion
    fusion_.on_fit_start(run_)  # no trained AWF to start from here: a warning, and the same freezing
    assert "starts from no trained AWF" in caplog.text
    trainable = {name for name, p in run_.model.named_parameters() if p.requires_grad}
    assert trainable == {"fusion.attention.first.weight", "fusion.attention.second.weight"}
    assert fusion_.balancer.frozen and not fusion_.train().head.training and fusion_.attention.training


def test_table_10_runs_awf_then_a_fusion_alone_on_it(tmp_path):
    from msabench.testing import write_tiny_file

    write_tiny_file(MOSI, tmp_path / "data")
    same = [*TINY_BERT, *SMALL]
    sets = [*same, *(f"awf:{value}" for value in same)]  # the awf stage is built as the final model is
    args = ["run", "--method", "awf-afusion-observed", "--dataset", "mosi", "--data-root", str(tmp_path / "data")]
    args += ["--no-verify", "--seeds", "1111", "--max-epochs", "2", "--results", str(tmp_path / "results"), "-q"]
    args += ["--leaderboards", str(tmp_path / "boards"), "--no-progress"]
    outcome = CliRunner().invoke(cli, [*args, *(arg for value in sets for arg in ("--set", value))])
    assert outcome.exit_code == 0, outcome.output
    (stage,) = (tmp_path / "results" / "mosi").glob("awf+*/*/seed-1111.pt")
    (final,) = (tmp_path / "results" / "mosi").glob("awf-afusion-observed*/*/seed-1111.pt")
    trained, observed = (torch.load(path, weights_only=True)["model"] for path in (stage, final))
    assert set(trained) == set(observed)
    frozen = [key for key in trained if not key.startswith("fusion.attention.")]
    assert all(torch.equal(trained[key], observed[key]) for key in frozen)  # encoders, W_i, omega, head: awf's
    assert not torch.equal(trained["fusion.attention.first.weight"], observed["fusion.attention.first.weight"])
    result = json.loads(final.with_suffix(".json").read_text())
    epoch = result["history"][result["best_epoch"] - 1]
    assert sum(epoch[f"ratio_{m}"] for m in "TAV") == pytest.approx(1.0) and "omega_T" in epoch
    assert result["method_info"]["reported"][0]["source"] == "Table 10 (observed ratios .38:.20:.42)"
