"""`msabench run --method lf-dnn|tfn|lmf --dataset mmsa-custom` on a feature file of dims no published dataset has."""

import numpy as np
import pytest
from click.testing import CliRunner

from msabench import RunResult
from msabench.cli import cli
from msabench.formats import write_pickle

DIMS = {"text": 13, "audio": 2, "vision": 6}  # e.g. an extractor's own features; MOSI has 768/5/20
STEPS = {"text": 5, "audio": 7, "vision": 3}


def write_features(path):
    rng = np.random.default_rng(0)
    raw = {}
    for split, n in (("train", 32), ("valid", 8), ("test", 8)):
        cue = rng.standard_normal(n).astype(np.float32)
        part = {"id": np.array([f"{split}{i}" for i in range(n)], dtype=object)}
        for key, dim in DIMS.items():
            part[key] = (rng.standard_normal((n, STEPS[key], dim)) + cue[:, None, None]).astype(np.float32)
        part["audio_lengths"] = rng.integers(1, STEPS["audio"] + 1, n)
        part["vision_lengths"] = rng.integers(1, STEPS["vision"] + 1, n)
        part["regression_labels"] = np.clip(np.round(cue, 1), -3, 3).astype(np.float32)
        raw[split] = part
    write_pickle(path, raw)


@pytest.mark.parametrize("method", ["lf-dnn", "tfn", "lmf"])
def test_baselines_run_on_a_custom_feature_file(tmp_path, monkeypatch, method):
    monkeypatch.chdir(tmp_path)
    write_features(tmp_path / "mine.pkl")
    args = ["run", "-m", method, "-d", "mmsa-custom", "--data-option", "path=mine.pkl", "--data-option", "name=mine"]
    args += ["--seeds", "1111", "--max-epochs", "1", "--no-progress", "--no-checkpoints", "--set", "train.batch_size=8"]
    outcome = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert outcome.exit_code == 0, outcome.output
    (path,) = (tmp_path / "results" / "custom-mine").rglob("seed-1111.json")
    result = RunResult.load(path)
    assert result.dataset == "custom-mine" and result.method == method and result.epochs == 1
    assert len(result.predictions["ids"]) == 8 and all(np.isfinite(result.predictions["predictions"]))
    assert (tmp_path / "leaderboards" / "custom-mine.md").is_file()
