"""MulT end to end on small pickles in MMSA's and MulT's layouts, and what its two masks do with padding."""

import json

import pytest
import torch
from click.testing import CliRunner

from msabench import CatalogError, Task, layers
from msabench.cli import cli
from msabench.testing import write_tiny_file
from msabench_core.iemocap import IEMOCAP
from msabench_core.mmsa import MOSI
from msabench_mult.fusion import MultimodalTransformer

TINY = ["--set", "fusion.dim=8", "--set", "fusion.heads=2", "--set", "fusion.layers=1", "--set", "train.batch_size=8"]


def run(tmp_path, method, dataset, *extra):
    args = ["run", "--method", method, "--dataset", dataset, "--data-root", str(tmp_path / "data"), "--no-verify"]
    args += ["--seeds", "1111", "--max-epochs", "1", "--results", str(tmp_path / "results")]
    args += ["--leaderboards", str(tmp_path / "boards"), "--no-progress", "--no-checkpoints", "-q", *TINY, *extra]
    outcome = CliRunner().invoke(cli, args)
    assert outcome.exit_code == 0, outcome.output
    (path,) = (tmp_path / "results" / dataset).rglob("seed-1111.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize("method", ["mult", "mult-causal"])
def test_mult_runs_on_an_mmsa_mosi_pickle_with_mmsas_recipe(tmp_path, method):
    write_tiny_file(MOSI, tmp_path / "data")
    result = run(tmp_path, method, "mosi")
    assert result["method"] == method and result["epochs"] == 1 and result["data"]["verified"] is False
    train = result["hparams"]["train"]
    assert (train["batch_size"], train["lr"], train["accumulate"], train["grad_clip_value"]) == (8, 2e-3, 8, 0.6)
    assert (train["plateau_patience"], train["plateau_factor"]) == (5, 0.1)
    fusion = result["hparams"]["fusion"]
    assert fusion["mask"] == ("causal" if method == "mult-causal" else "padding") and fusion["kernel_audio"] == 5
    assert set(result["metrics"]) == {
        "Acc-2_has0", "F1_has0", "Acc-2_non0", "F1_non0", "Acc-3", "Acc-5", "Acc-7", "MAE", "Corr"
    }  # fmt: skip
    assert result["method_info"]["reported"][0]["metrics"]["MAE"] == pytest.approx(0.8799)


def test_mult_runs_on_mults_iemocap_pickle_with_cross_entropy_per_emotion(tmp_path):
    write_tiny_file(IEMOCAP, tmp_path / "data")
    result = run(tmp_path, "mult", "iemocap", "--set", "fusion.kernel_vision=3")
    assert result["task"] == {
        "kind": "multilabel",
        "family": "iemocap",
        "classes": ["Neutral", "Happy", "Sad", "Angry"],
    }
    assert list(result["metrics"])[:2] == ["Acc_mean", "F1_mean"] and len(result["metrics"]) == 10
    assert all(len(p) == 4 and set(p) <= {0, 1} for p in result["predictions"]["predictions"])
    assert result["predictions"]["ids"][:3] == ["0", "1", "2"]  # MulT's files have no ids: row numbers


def fusion(mask, **extra):
    torch.manual_seed(0)
    task = Task("regression", "mosi", (-3.0, 3.0))
    dims = {"text": 6, "audio": 3, "vision": 4}
    hparams = {"dim": 8, "heads": 2, "layers": 1, "kernel_text": 3, "kernel_audio": 2, "kernel_vision": 1}
    return MultimodalTransformer(dims, task, mask=mask, **{**hparams, **extra}).eval()


def batch(fill=0.0):
    torch.manual_seed(1)
    features = {"text": torch.randn(3, 7, 6), "audio": torch.randn(3, 9, 3), "vision": torch.randn(3, 5, 4)}
    lengths = {"text": torch.tensor([7, 4, 3]), "audio": torch.tensor([9, 2, 6]), "vision": torch.tensor([5, 5, 1])}
    for m, x in features.items():
        x[torch.arange(x.shape[1])[None, :] >= lengths[m][:, None]] = fill
    return features, lengths


@pytest.mark.parametrize("small", [4096, 0], ids=["one call per batch", "one call per sequence"])
def test_mult_ignores_padding_and_equals_each_sample_alone(small, monkeypatch):
    monkeypatch.setattr(layers, "SMALL", small)
    model = fusion("padding")
    features, lengths = batch()
    out = model(features, lengths)["prediction"]
    noisy, _ = batch(fill=50.0)
    assert torch.allclose(model(noisy, lengths)["prediction"], out, atol=1e-5)  # padding content is never read
    for i in range(3):
        alone = {m: x[i : i + 1, : lengths[m][i]] for m, x in features.items()}
        no_lengths = dict.fromkeys(features)
        assert torch.allclose(model(alone, no_lengths)["prediction"][0], out[i], atol=1e-5)


def test_mult_causal_attends_over_padding_as_mmsa_does():
    model = fusion("causal")
    features, lengths = batch()
    out = model(features, lengths)["prediction"]
    assert torch.equal(model(features, dict.fromkeys(features))["prediction"], out)  # lengths are ignored
    noisy, _ = batch(fill=50.0)
    assert not torch.allclose(model(noisy, lengths)["prediction"], out, atol=1e-3)  # padding is read
    padding = fusion("padding")
    padding.load_state_dict(model.state_dict())
    assert not torch.allclose(padding(features, lengths)["prediction"], out, atol=1e-3)


def test_a_kernel_longer_than_the_sequence_is_a_clear_error():
    model = fusion("padding", kernel_vision=6)
    features, lengths = batch()
    with pytest.raises(CatalogError, match="kernel 6, longer than its 5 frames; set --set fusion.kernel_vision=1"):
        model(features, lengths)


def test_unknown_mask_is_refused():
    with pytest.raises(Exception, match="mask 'future' is not one of padding, causal"):
        fusion("future")
