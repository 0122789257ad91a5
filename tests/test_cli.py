"""The `msabench` command end to end, on synthetic data, in a scratch working directory."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from msabench import RunResult
from msabench.cli import cli


@pytest.fixture
def invoke(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def call(*args):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return call


def test_run_writes_results_checkpoints_and_the_leaderboard(invoke, tmp_path):
    outcome = invoke(
        "run",
        "--method",
        "lf-dnn",
        "--dataset",
        "synthetic-mosi",
        "--seeds",
        "1111,1112",
        "--max-epochs",
        "2",
        "--no-progress",
    )
    assert outcome.exit_code == 0, outcome.output
    for seed in (1111, 1112):
        result = RunResult.load(tmp_path / f"results/synthetic-mosi/lf-dnn/seed-{seed}.json")
        assert result.seed == seed and result.epochs == 2 and result.protocol["id"] == "mmsa-1+max_epochs=2"
        assert (tmp_path / f"results/synthetic-mosi/lf-dnn/seed-{seed}.pt").is_file()
    page = (tmp_path / "leaderboards/synthetic-mosi.md").read_text()
    assert "| lf-dnn " in page and "| 2 " in page
    row = next(line for line in outcome.stdout.splitlines() if line.startswith("| lf-dnn"))
    assert "±" in row  # the printed leaderboard row: two seeds
    assert invoke("leaderboard", "--check").exit_code == 0


def test_leaderboard_check_detects_stale_markdown(invoke, tmp_path):
    assert (
        invoke(
            "run",
            "-m",
            "lmf",
            "-d",
            "synthetic-sims",
            "--seeds",
            "1",
            "--max-epochs",
            "1",
            "--no-progress",
            "--no-checkpoints",
        ).exit_code
        == 0
    )
    assert not list((tmp_path / "results").rglob("*.pt"))
    assert "Acc-5 ↑" in (tmp_path / "leaderboards/synthetic-sims.md").read_text()
    (tmp_path / "leaderboards/synthetic-sims.md").write_text("edited by hand\n")
    stale = invoke("leaderboard", "--check")
    assert stale.exit_code == 1 and "stale leaderboards: leaderboards/synthetic-sims.md" in stale.output
    assert invoke("leaderboard").exit_code == 0
    assert invoke("leaderboard", "--check").exit_code == 0


def test_overrides_become_a_variant_row(invoke, tmp_path):
    outcome = invoke(
        "run",
        "-m",
        "lf-dnn",
        "-d",
        "synthetic-mosi",
        "--seeds",
        "3",
        "--max-epochs",
        "1",
        "--no-progress",
        "--set",
        "train.lr=0.01",
        "--set",
        "fusion.post_fusion_dim=16",
    )
    assert outcome.exit_code == 0, outcome.output
    path = next((tmp_path / "results/synthetic-mosi").glob("lf-dnn+*/seed-3.json"))
    result = RunResult.load(path)
    assert result.variant == "fusion.post_fusion_dim=16, train.lr=0.01"  # sorted: flag order does not matter
    assert result.hparams["train"]["lr"] == 0.01 and result.hparams["fusion"]["post_fusion_dim"] == 16
    assert (
        "| lf-dnn [fusion.post_fusion_dim=16, train.lr=0.01] "
        in (tmp_path / "leaderboards/synthetic-mosi.md").read_text()
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "-m", "tfm", "-d", "synthetic-mosi"], "Error: Unknown method 'tfm'. Did you mean: tfn? Available: "),
        (
            ["run", "-m", "tfn", "-d", "synthetc-mosi"],
            "Error: Unknown dataset 'synthetc-mosi'. Did you mean: synthetic-mosi",
        ),
        (["run", "-m", "tfn", "-d", "mosi"], "MOSI/Processed/unaligned_50.pkl (data root"),
        (
            ["run", "-m", "tfn", "-d", "synthetic-mosi", "--encoder", "text=lstm-txt"],
            "Error: Unknown encoder 'lstm-txt'. Did you mean: lstm-text?",
        ),
        (
            ["run", "-m", "tfn", "-d", "synthetic-mosi", "--encoder", "image=lstm-text"],
            "tfn has no 'image' encoder; it has text, audio, vision",
        ),
        (["run", "-m", "tfn", "-d", "synthetic-mosi", "--encoder", "text"], "expected KEY=VALUE, got 'text'"),
        (["run", "-m", "tfn", "-d", "synthetic-mosi", "--set", "lr=1"], "'lr' needs a section, e.g. train.lr"),
        (
            ["run", "-m", "tfn", "-d", "synthetic-mosi", "--set", "text.hiden=3"],
            "encoder 'lstm-text' cannot take the hyper-parameters of section 'text'",
        ),
        (
            ["run", "-m", "tfn", "-d", "synthetic-mosi", "--objective", "cross-entropy"],
            "objective 'cross-entropy' does not support ['regression'] tasks",
        ),
        (["run", "-m", "tfn", "-d", "synthetic-mosi", "--max-epochs", "0"], "0 is not in the range x>=1"),
        (["run", "-m", "tfn", "-d", "synthetic-mosi", "--bogus"], "No such option '--bogus'"),
        (["data", "synth", "mosi"], "mosi is not a synthetic dataset"),
        (["check", "nope"], "no installed msabench plugin is called 'nope'"),
    ],
)
def test_bad_input_gets_a_one_line_error(invoke, args, message):
    outcome = invoke(*args)
    assert outcome.exit_code != 0
    assert message in outcome.output
    assert "Traceback" not in outcome.output


def test_list_and_plugins(invoke):
    listing = invoke("list").output
    assert "  tfn " in listing and "[baselines]" in listing and "  synthetic-sims " in listing
    assert invoke("list", "objectives").output.splitlines()[0] == "objectives:"
    plugins = {p["name"]: p for p in json.loads(invoke("plugins").output)}
    assert plugins["baselines"]["version"] == "0.1.0"


def test_data_synth_then_run_reads_the_file_through_the_loader(invoke, tmp_path):
    assert invoke("data", "synth", "synthetic-sims", "--data-root", "root").exit_code == 0
    assert (tmp_path / "root/synthetic-sims/Processed/unaligned.pkl").is_file()
    verify = invoke("data", "verify", "synthetic-sims", "--data-root", "root")
    assert verify.exit_code == 0 and "synthetic-sims: verified; splits train 600, valid 150, test 150" in verify.output
    info = invoke("data", "info", "synthetic-sims", "--data-root", "root").output
    assert "(present)" in info and "vision 709" in info
    assert (
        invoke(
            "run",
            "-m",
            "lf-dnn",
            "-d",
            "synthetic-sims",
            "--data-root",
            "root",
            "--seeds",
            "1",
            "--max-epochs",
            "1",
            "--no-progress",
        ).exit_code
        == 0
    )
    result = RunResult.load(tmp_path / "results/synthetic-sims/lf-dnn/seed-1.json")
    assert result.data["source"] == "file" and result.data["verified"] is True
    assert list(result.data["files"]) == ["synthetic-sims/Processed/unaligned.pkl"]


def test_data_verify_refuses_a_tampered_file(invoke, tmp_path):
    invoke("data", "synth", "synthetic-mosi", "--data-root", "root")
    path = Path(tmp_path / "root/synthetic-mosi/Processed/unaligned.pkl")
    content = bytearray(path.read_bytes())
    content[-100] ^= 0xFF
    path.write_bytes(bytes(content))
    outcome = invoke("data", "verify", "synthetic-mosi", "--data-root", "root")
    assert outcome.exit_code == 1 and "but the published file has" in outcome.output and "--no-verify" in outcome.output


def test_bad_seeds_and_typoed_settings_are_one_line_errors(invoke):
    seeds = invoke("run", "-m", "tfn", "-d", "synthetic-mosi", "--seeds", "1,x")
    assert seeds.exit_code == 2 and "expected comma-separated integers such as 1111,1112; got '1,x'" in seeds.output
    typo = invoke("run", "-m", "tfn", "-d", "synthetic-mosi", "--set", "train.lrr=5")
    assert typo.exit_code == 1 and "unknown training setting train.lrr. Did you mean: lr?" in typo.output


def test_leaderboard_check_fails_without_results_or_with_orphan_pages(invoke, tmp_path):
    (tmp_path / "results").mkdir()
    assert "no result files" in invoke("leaderboard", "--check").output
    invoke(
        "run",
        "-m",
        "lmf",
        "-d",
        "synthetic-mosi",
        "--seeds",
        "1",
        "--max-epochs",
        "1",
        "--no-progress",
        "--no-checkpoints",
    )
    assert "no results for nosuch" in invoke("leaderboard", "--check", "--dataset", "nosuch").output
    (tmp_path / "leaderboards/gone.md").write_text("# Leaderboard: gone\n")
    orphan = invoke("leaderboard", "--check")
    assert orphan.exit_code == 1 and "leaderboards/gone.md" in orphan.output
