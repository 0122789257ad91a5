"""MFN end to end on small aligned and unaligned pickles, and its states at the last real step."""

import json
import logging

import torch
from click.testing import CliRunner

from msabench import Task, layers
from msabench.cli import cli
from msabench.testing import write_tiny_file
from msabench_core.mmsa import SIMS, MOSIAligned
from msabench_mfn.fusion import MemoryFusion

TINY = ["fusion.hidden=[4,3,3]", "fusion.memory=5", "train.batch_size=8"]


def run(tmp_path, dataset):
    args = ["run", "-m", "mfn", "-d", dataset, "--data-root", str(tmp_path / "data"), "--no-verify", "--seeds", "1111"]
    args += ["--max-epochs", "1", "--results", str(tmp_path / "results"), "--leaderboards", str(tmp_path / "boards")]
    args += ["--no-progress", "--no-checkpoints", "-q", *(arg for value in TINY for arg in ("--set", value))]
    outcome = CliRunner().invoke(cli, args)
    assert outcome.exit_code == 0, outcome.output
    (path,) = (tmp_path / "results" / dataset).rglob("seed-1111.json")
    return json.loads(path.read_text()), outcome


def test_mfn_runs_on_mosi_aligned_with_mmsas_recipe(tmp_path):
    write_tiny_file(MOSIAligned, tmp_path / "data", aligned=True)
    result, _ = run(tmp_path, "mosi-aligned")
    assert result["hparams"]["fusion"]["retain"] == [256, 0.7] and result["hparams"]["train"]["lr"] == 2e-3
    assert result["method_info"]["reported"][0]["dataset"] == "mosi-aligned"


def test_mfn_pools_unaligned_ch_sims_to_the_text_length_and_says_so(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(layers, "_POOLED_WARNED", set())  # said once per process: forget earlier tests
    write_tiny_file(SIMS, tmp_path / "data")
    with caplog.at_level(logging.WARNING, logger="msabench"):
        result, _ = run(tmp_path, "ch-sims")
    assert result["hparams"]["fusion"]["memory"] == 5 and result["hparams"]["train"]["batch_size"] == 8
    assert "mfn needs word-aligned sequences: audio (8 steps) and vision (6) are average-pooled" in caplog.text


def test_padding_steps_leave_every_state_as_it_was():
    torch.manual_seed(0)
    fusion = MemoryFusion(
        {"text": 3, "audio": 2, "vision": 2}, Task("regression", "mosi", (-3.0, 3.0)), hidden=[4, 3, 3], memory=5
    ).eval()
    features = {m: torch.randn(2, 6, d) for m, d in (("text", 3), ("audio", 2), ("vision", 2))}
    lengths = {m: torch.tensor([6, 2]) for m in features}
    for x in features.values():
        x[1, 2:] = 7.0
    out = fusion(features, lengths)["prediction"]
    alone = fusion({m: x[1:, :2] for m, x in features.items()}, dict.fromkeys(features))["prediction"]
    assert torch.allclose(out[1], alone[0], atol=1e-6)
    assert not torch.allclose(fusion(features, dict.fromkeys(features))["prediction"][1], out[1])  # MMSA's way
