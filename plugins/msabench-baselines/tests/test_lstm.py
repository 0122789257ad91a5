"""EF-LSTM and LF-LSTM end to end on small pickles (MMSA's aligned layout, MulT's IEMOCAP), and EF-LSTM's parts."""

import json

import pytest
import torch
from click.testing import CliRunner

from msabench import Task
from msabench.cli import cli
from msabench.testing import write_tiny_file
from msabench_baselines.lstm import EarlyFusionLSTM, StepNorm
from msabench_core.iemocap import IEMOCAP
from msabench_core.mmsa import MOSIAligned


def run(tmp_path, method, dataset, *sets):
    args = ["run", "-m", method, "-d", dataset, "--data-root", str(tmp_path / "data"), "--no-verify"]
    args += ["--seeds", "1111", "--max-epochs", "1", "--results", str(tmp_path / "results")]
    args += ["--leaderboards", str(tmp_path / "boards"), "--no-progress", "--no-checkpoints", "-q"]
    outcome = CliRunner().invoke(
        cli, [*args, *(arg for value in ("train.batch_size=8", *sets) for arg in ("--set", value))]
    )
    assert outcome.exit_code == 0, outcome.output
    (path,) = (tmp_path / "results" / dataset).rglob("seed-1111.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize("method", ["ef-lstm", "lf-lstm"])
def test_lstm_baselines_run_on_mosi_aligned_and_iemocap(tmp_path, method):
    write_tiny_file(MOSIAligned, tmp_path / "data", aligned=True)
    write_tiny_file(IEMOCAP, tmp_path / "data")
    sentiment = run(tmp_path, method, "mosi-aligned")
    assert "Acc-7" in sentiment["metrics"] and sentiment["method_info"]["objective"] == "l1-ce"
    emotions = run(tmp_path, method, "iemocap")
    assert list(emotions["metrics"])[:2] == ["Acc_mean", "F1_mean"]
    if method == "ef-lstm":
        assert sentiment["hparams"]["fusion"] == {"hidden": 128, "layers": 4, "dropout": 0.5}
        assert sentiment["method_info"]["reported"][0]["dataset"] == "mosi-aligned"


def test_step_norm_is_mmsas_batchnorm_over_the_steps():
    torch.manual_seed(0)
    x = torch.randn(5, 7, 3) * 4 + 2
    ours, theirs = StepNorm(), torch.nn.BatchNorm1d(7)
    assert torch.allclose(ours(x), theirs(x), atol=1e-5)
    assert torch.allclose(ours.running_mean[:7], theirs.running_mean) and ours.running_mean[7:].eq(0).all()
    ours.eval(), theirs.eval()
    assert torch.allclose(ours(x), theirs(x), atol=1e-5)


def test_early_lstm_stops_at_the_last_real_text_step():
    torch.manual_seed(1)
    fusion = EarlyFusionLSTM(
        {"text": 3, "audio": 2, "vision": 2}, Task("regression", "mosi", (-3.0, 3.0)), hidden=4, layers=2
    )
    fusion.eval()
    features = {m: torch.randn(2, 5, d) for m, d in (("text", 3), ("audio", 2), ("vision", 2))}
    lengths = {m: torch.tensor([5, 3]) for m in features}
    out = fusion(features, lengths)["prediction"]
    changed = {m: x.clone() for m, x in features.items()}
    changed["audio"][1, 3:] = 9.0  # padding after the last real step: normalised with the batch, never read
    assert torch.allclose(fusion(changed, lengths)["prediction"][1], out[1], atol=1e-6)
