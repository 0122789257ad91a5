"""AWF's fusion against hand-computed values (A-fusion, Z = (Z_GB + Z_ATT) / 2, frozen ratios), Table 2's
hyper-parameters per dataset, and `msabench run` on small pickles in MMSA's and MulT's layouts and on
synthetic IEMOCAP (word vectors: the text LSTM), with the paper's patience as a protocol variant."""

import json
import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from torch import nn  # noqa: E402

from msabench import Catalog, Task, get_plugin_manager  # noqa: E402
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
    frozen = ModalAttention(3, ratios=(0.38, 0.2, 0.42))(Z.repeat(2, 1, 1))
    assert torch.allclose(frozen, torch.tensor([[0.38, 0.2, 0.42]] * 2))
    with pytest.raises(ValueError, match="3 numbers >= 0"):
        ModalAttention(3, ratios=(0.5, 0.5))


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


def test_frozen_ratios_and_no_balance():
    module = fusion(ratios=[0.0, 0.0, 0.0], balance=False)  # awf-wo-afusion's alpha, awf-no-gb's omega
    assert module.balancer is None and not list(module.attention.parameters())
    assert module(*features())["prediction"][0].tolist() == pytest.approx([z / 2 for row in Z[0].tolist() for z in row])


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
    assert catalog.methods["awf-ratios-38-20-42"].hparams_for(MOSEI)["fusion"]["ratios"] == [0.38, 0.2, 0.42]
    assert PAPER_PATIENCE == {"mosi": 20, "mosei": 1, "ch-sims": 8, "iemocap": 8}


def test_reported_numbers_are_the_papers_with_mae_and_corr_divided_by_100(catalog):
    reported = {r.dataset: dict(r.metrics) for r in catalog.methods["awf"].reported}
    assert reported["mosi"] == {"Acc-2_non0": 86.28, "F1_non0": 86.38, "MAE": 0.7163, "Corr": 0.791}
    assert reported["ch-sims"] == {"Acc-2": 80.96, "F1": 81.28}
    assert reported["iemocap"]["Acc_Neutral"] == 71.3 and reported["iemocap"]["F1_Happy"] == 84.2
    table3 = {name: catalog.methods[name].reported[0].metrics["Acc-2_non0"] for name in ("lf-dnn-gb", "lf-lstm-bert")}
    assert table3 == {"lf-dnn-gb": 79.42, "lf-lstm-bert": 77.99}


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
