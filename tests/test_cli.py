"""The `msabench` command end to end, on the core's synthetic data with the host's fake method `tiny`, in a
scratch working directory."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import msabench.plugins
from msabench import RunResult, hookimpl
from msabench.cli import cli

FAKECLI = Path(__file__).parent / "fakecli.py"
RESULT = "results/synthetic-mosi/tiny/mmsa-1+max_epochs={epochs}/seed-{seed}.json"


def tiny(*extra, seeds="1111", epochs=2):
    return [
        "run",
        "-m",
        "tiny",
        "-d",
        "synthetic-mosi",
        "--seeds",
        seeds,
        "--max-epochs",
        epochs,
        "--no-progress",
        *extra,
    ]


def test_run_writes_results_checkpoints_and_the_leaderboard(invoke, tmp_path):
    outcome = invoke(*tiny(seeds="1111,1112"))
    assert outcome.exit_code == 0, outcome.output
    for seed in (1111, 1112):
        path = tmp_path / RESULT.format(epochs=2, seed=seed)
        result = RunResult.load(path)
        assert result.seed == seed and result.epochs == 2 and result.protocol["id"] == "mmsa-1+max_epochs=2"
        assert path.with_suffix(".pt").is_file() and not path.with_suffix(".resume.pt").exists()
        assert result.hardware["torch_threads"] == 1  # the fixed default
        trainable = 768 * 4 + 4 + 5 * 4 + 4 + 20 * 4 + 4 + 12 * 1 + 1  # three mean-linear encoders, one linear fusion
        assert result.parameters == {"trainable": trainable, "total": trainable}
    page = (tmp_path / "leaderboards/synthetic-mosi.md").read_text()
    assert "| tiny " in page and "| 2 " in page
    row = next(line for line in outcome.stdout.splitlines() if line.startswith("| tiny"))
    assert "±" in row  # the printed leaderboard row: two seeds
    assert invoke("leaderboard", "--check").exit_code == 0
    assert not [p for p in (tmp_path / "results").rglob("*") if p.name.endswith(".tmp")]


def test_a_finished_seed_is_skipped_and_the_same_command_changes_nothing(invoke, tmp_path):
    assert invoke(*tiny()).exit_code == 0
    path = tmp_path / RESULT.format(epochs=2, seed=1111)
    before = path.read_bytes()
    again = invoke(*tiny(seeds="1111,1112"))
    assert again.exit_code == 0, again.output
    assert f"seed 1111: done already ({Path(RESULT.format(epochs=2, seed=1111))}); skipped" in again.output
    assert path.read_bytes() == before and (tmp_path / RESULT.format(epochs=2, seed=1112)).is_file()
    row = next(line for line in again.stdout.splitlines() if line.startswith("| tiny"))
    assert row.rstrip().split("|")[-3].strip() == "2"  # both seeds, each counted once


def test_a_result_of_another_run_is_refused_naming_the_difference_and_overwrite_retrains(invoke, tmp_path):
    assert invoke(*tiny()).exit_code == 0
    path = tmp_path / RESULT.format(epochs=2, seed=1111)
    stored = json.loads(path.read_text())
    stored["hparams"]["train"]["lr"] = 0.5  # as if the method's defaults had changed since
    path.write_text(json.dumps(stored))
    refused = invoke(*tiny())
    assert refused.exit_code == 1
    assert "holds a result of another run (hyper-parameter train.lr: 0.5 then, 0.01 now)" in refused.output
    assert "Pass --overwrite to replace it" in refused.output and json.loads(path.read_text()) == stored
    assert invoke(*tiny("--overwrite")).exit_code == 0
    assert RunResult.load(path).hparams["train"]["lr"] == 0.01


def test_a_shorter_protocol_never_touches_a_longer_ones_files(invoke, tmp_path):
    assert invoke(*tiny(epochs=3)).exit_code == 0
    longer = tmp_path / RESULT.format(epochs=3, seed=1111)
    before = longer.read_bytes(), longer.with_suffix(".pt").read_bytes()
    assert invoke(*tiny(epochs=1)).exit_code == 0
    assert (longer.read_bytes(), longer.with_suffix(".pt").read_bytes()) == before
    assert RunResult.load(tmp_path / RESULT.format(epochs=1, seed=1111)).epochs == 1


def fakecli(cwd, *args, kill_at=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if kill_at is not None:
        env["MSABENCH_TEST_KILL_AT_STEP"] = str(kill_at)
    return subprocess.run(
        [sys.executable, str(FAKECLI), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_a_run_killed_mid_epoch_resumes_and_matches_an_uninterrupted_one(tmp_path):
    command = [*tiny("--set", "fusion.dropout=0.3", "--set", "train.batch_size=64", seeds="1111,1112", epochs=6)]
    (tmp_path / "whole").mkdir()
    whole = fakecli(tmp_path / "whole", *command)
    assert whole.returncode == 0, whole.stderr
    (tmp_path / "killed").mkdir()
    steps_per_epoch = -(-600 // 64)
    killed = fakecli(tmp_path / "killed", *command, kill_at=2 * steps_per_epoch + 4)  # in seed 1111's epoch 3
    assert killed.returncode == -signal.SIGKILL
    rows = "results/synthetic-mosi/tiny+fusion.dropout=0.3,_train.batch_size=64-*/mmsa-1+max_epochs=6"
    (folder,) = (tmp_path / "killed").glob(rows)
    assert (folder / "seed-1111.resume.pt").is_file() and not (folder / "seed-1111.json").exists()
    resumed = fakecli(tmp_path / "killed", *command)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after epoch 2" in resumed.stderr
    (reference,) = (tmp_path / "whole").glob(rows)
    for seed in (1111, 1112):
        ours, theirs = RunResult.load(folder / f"seed-{seed}.json"), RunResult.load(reference / f"seed-{seed}.json")
        assert ours.metrics == theirs.metrics and ours.predictions == theirs.predictions
        assert ours.history == theirs.history and ours.best_epoch == theirs.best_epoch
    assert sorted(p.name for p in folder.iterdir()) == [
        "seed-1111.json",
        "seed-1111.pt",
        "seed-1112.json",
        "seed-1112.pt",
    ]


def test_leaderboard_check_detects_stale_markdown(invoke, tmp_path):
    run = ["run", "-m", "tiny", "-d", "synthetic-sims", "--seeds", "1", "--max-epochs", "1", "--no-progress"]
    assert invoke(*run, "--no-checkpoints").exit_code == 0
    assert not list((tmp_path / "results").rglob("*.pt"))
    assert "Acc-5 ↑" in (tmp_path / "leaderboards/synthetic-sims.md").read_text()
    (tmp_path / "leaderboards/synthetic-sims.md").write_text("edited by hand\n")
    stale = invoke("leaderboard", "--check")
    assert stale.exit_code == 1 and "stale leaderboards: leaderboards/synthetic-sims.md" in stale.output
    assert invoke("leaderboard").exit_code == 0
    assert invoke("leaderboard", "--check").exit_code == 0


def test_overrides_become_a_readable_variant_row(invoke, tmp_path):
    long_path = "/a/very/long/folder/that/holds/the/checkpoints/of/an/earlier/stage/seed-1111.pt"
    outcome = invoke(*tiny("--set", "train.lr=0.02", "--set", "fusion.dropout=0.1", seeds="3", epochs=1))
    assert outcome.exit_code == 0, outcome.output
    (path,) = (tmp_path / "results/synthetic-mosi").glob("tiny+*/mmsa-1+max_epochs=1/seed-3.json")
    result = RunResult.load(path)
    assert result.variant == "fusion.dropout=0.1, train.lr=0.02"  # sorted: flag order does not matter
    assert result.hparams["train"]["lr"] == 0.02 and result.hparams["fusion"]["dropout"] == 0.1
    assert "| tiny [fusion.dropout=0.1, train.lr=0.02] " in (tmp_path / "leaderboards/synthetic-mosi.md").read_text()
    from msabench.api import _shown as shown

    assert shown(long_path).startswith("seed-1111.pt~") and len(shown(long_path)) == len("seed-1111.pt~") + 6
    assert shown("short/x.pt") == '"short/x.pt"' and shown(0.1) == "0.1"


MISSING = "MOSI/Processed/unaligned_50.pkl (data root"  # what loading would say: arguments are checked before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "tiyn", "-d", "mosi"], "Error: Unknown method 'tiyn'. Did you mean: tiny? Available: "),
        (["-m", "tiny", "-d", "mosy"], "Error: Unknown dataset 'mosy'. Did you mean: mosi"),
        (["-m", "tiny", "-d", "mosi"], MISSING),
        (["-m", "tiny", "-d", "mosi", "--encoder", "text=mean-lineer"], "Unknown encoder 'mean-lineer'. Did you mean"),
        (["-m", "tiny", "-d", "mosi", "--encoder", "image=mean-linear"], "tiny has no 'image' encoder; it has text"),
        (["-m", "tiny", "-d", "mosi", "--encoder", "text"], "--encoder text: expected KEY=VALUE."),
        (["-m", "tiny", "-d", "mosi", "--set", "lr=1"], "--set lr: expected SECTION.KEY, e.g. train.lr."),
        (
            ["-m", "tiny", "-d", "mosi", "--set", "text.widht=3"],
            "encoder 'mean-linear' cannot take the hyper-parameters",
        ),
        (["-m", "tiny", "-d", "mosi", "--objective", "cross-entropy"], "does not support ['regression'] tasks"),
        (["-m", "tiny", "-d", "mosi", "--set", 'train.lr="abc"'], "train.lr must be a number > 0; got 'abc'"),
        (["-m", "tiny", "-d", "mosi", "--set", "train.lr=-1"], "train.lr must be a number > 0; got -1"),
        (["-m", "tiny", "-d", "mosi", "--set", "train.batch_size=0"], "train.batch_size must be a whole number >= 1"),
        (["-m", "tiny", "-d", "mosi", "--set", "train.optimizer=sgdd"], "train.optimizer must be one of adam, adamw"),
        (["-m", "tiny", "-d", "mosi", "--set", "train.lrr=5"], "unknown training setting train.lrr. Did you mean: lr?"),
        (
            ["-m", "tiny", "-d", "mosi", "--seeds", "-5"],
            "seeds are whole numbers in 0..4294967295 (torch's range); got -5",
        ),
        (["-m", "tiny", "-d", "mosi", "--seeds", "4294967296"], "got 4294967296"),
        (["-m", "tiny", "-d", "mosi", "--seeds", "1111,1111"], "seed 1111 is given twice; each seed runs once"),
        (["-m", "tiny", "-d", "mosi", "--seeds", "1,x"], "expected comma-separated whole numbers such as 1111,1112"),
        (["-m", "tiny", "-d", "mosi", "--device", "banana"], "unknown device 'banana': use auto, cpu, cuda or cuda:N"),
        (["-m", "tiny", "-d", "mosi", "--max-epochs", "0"], "--max-epochs must be a whole number >= 1; got 0"),
        (["-m", "tiny", "-d", "mosi", "--threads", "0"], "--threads must be a whole number >= 1; got 0"),
        (["-m", "tiny", "-d", "mosi", "--data-option", "colour=red"], "mosi has no option colour; it accepts: repair"),
        (["-m", "tiny", "-d", "mosi", "--bogus"], "No such option '--bogus'"),
    ],
)
def test_bad_values_get_one_line_errors_before_any_data_loads(invoke, args, message):
    outcome = invoke("run", *args)
    assert outcome.exit_code != 0
    (error,) = [line for line in outcome.output.splitlines() if line.startswith("Error")]  # one line, no traceback
    assert message in error, outcome.output
    assert "Traceback" not in outcome.output
    if message != MISSING:
        assert MISSING not in outcome.output


def test_cuda_on_a_cpu_only_torch_says_how_to_get_a_cuda_build(invoke, monkeypatch):
    import torch

    monkeypatch.setattr(torch.version, "cuda", None)
    outcome = invoke("run", "-m", "tiny", "-d", "mosi", "--device", "cuda")
    assert outcome.exit_code == 1
    assert "is a CPU-only build. Install a CUDA build (pip install torch --index-url" in outcome.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data", "synth", "mosi"], "mosi is not a synthetic dataset"),
        (["check", "nope"], "no installed msabench plugin is called 'nope'"),
    ],
)
def test_other_commands_give_one_line_errors(invoke, args, message):
    outcome = invoke(*args)
    assert outcome.exit_code != 0 and message in outcome.output and "Traceback" not in outcome.output


def test_list_and_plugins(invoke):
    listing = invoke("list").output
    assert "  tiny " in listing and "[fakes]" in listing and "  synthetic-sims " in listing
    assert invoke("list", "objectives").output.splitlines()[0] == "objectives:"
    plugins = {p["name"]: p for p in json.loads(invoke("plugins").output)}
    assert plugins["core"]["distribution"] == "msabench-core"


def test_data_synth_then_run_reads_the_file_through_the_loader(invoke, tmp_path):
    assert invoke("data", "synth", "synthetic-sims", "--data-root", "root").exit_code == 0
    assert (tmp_path / "root/synthetic-sims/Processed/unaligned.pkl").is_file()
    verify = invoke("data", "verify", "synthetic-sims", "--data-root", "root")
    assert verify.exit_code == 0 and "synthetic-sims: verified; splits train 600, valid 150, test 150" in verify.output
    info = invoke("data", "info", "synthetic-sims", "--data-root", "root").output
    assert "(present)" in info and "vision 709" in info
    run = ["run", "-m", "tiny", "-d", "synthetic-sims", "--data-root", "root", "--seeds", "1", "--max-epochs", "1"]
    assert invoke(*run, "--no-progress").exit_code == 0
    result = RunResult.load(tmp_path / "results/synthetic-sims/tiny/mmsa-1+max_epochs=1/seed-1.json")
    assert result.data["source"] == "file" and result.data["verified"] is True
    assert list(result.data["files"]) == ["synthetic-sims/Processed/unaligned.pkl"]


def test_data_info_shows_the_folder_an_image_text_dataset_reads(invoke):
    single = invoke("data", "info", "mvsa-single", "--data-root", "root").output
    assert "root/MVSA_Single/labelResultAll.txt (missing)" in single
    multiple = invoke("data", "info", "mvsa-multiple", "--data-root", "root").output
    assert "root/MVSA/labelResultAll.txt (missing)" in multiple
    # MVSA takes no digest of the user's: no --data-option sha256 to suggest.
    assert "published SHA-256: none published\n" in multiple and "sha256=" not in multiple


def test_data_verify_refuses_a_tampered_file(invoke, tmp_path):
    invoke("data", "synth", "synthetic-mosi", "--data-root", "root")
    path = Path(tmp_path / "root/synthetic-mosi/Processed/unaligned.pkl")
    content = bytearray(path.read_bytes())
    content[-100] ^= 0xFF
    path.write_bytes(bytes(content))
    outcome = invoke("data", "verify", "synthetic-mosi", "--data-root", "root")
    assert outcome.exit_code == 1 and "but the published file has" in outcome.output and "--no-verify" in outcome.output


def test_leaderboard_check_fails_without_results_or_with_orphan_pages(invoke, tmp_path):
    (tmp_path / "results").mkdir()
    assert "no result files" in invoke("leaderboard", "--check").output
    invoke(*tiny("--no-checkpoints", seeds="1", epochs=1))
    assert "no results for nosuch" in invoke("leaderboard", "--check", "--dataset", "nosuch").output
    (tmp_path / "leaderboards/gone.md").write_text("# Leaderboard: gone\n")
    orphan = invoke("leaderboard", "--check")
    assert orphan.exit_code == 1 and "leaderboards/gone.md" in orphan.output


def test_help_does_not_import_torch_and_python_dash_m_works(tmp_path):
    probe = "import sys, msabench.cli; print('torch' in sys.modules, 'transformers' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.split() == [
        "False",
        "False",
    ]
    help_text = subprocess.run([sys.executable, "-m", "msabench", "run", "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "Usage: msabench run" in help_text.stdout and "--overwrite" in help_text.stdout


def test_bf16_trains_on_the_cpu_as_its_own_protocol_and_fp16_is_refused_there(invoke, tmp_path):
    outcome = invoke(*tiny("--precision", "bf16", epochs=1))
    assert outcome.exit_code == 0, outcome.output
    result = RunResult.load(tmp_path / "results/synthetic-mosi/tiny/mmsa-1+max_epochs=1+precision=bf16/seed-1111.json")
    assert result.protocol["precision"] == "bf16" and all(v == v for v in result.metrics.values())
    fp32 = invoke(*tiny(epochs=1))
    assert fp32.exit_code == 0 and "done already" not in fp32.output  # another protocol: trained, not skipped
    refused = invoke(*tiny("--precision", "fp16", epochs=1))
    assert (
        refused.exit_code == 1
        and "--precision fp16 needs a GPU" in refused.output
        and "Use --precision bf16" in refused.output
    )


def test_two_gloo_processes_train_one_run_like_a_single_process(tmp_path):
    """torchrun with 2 CPU processes (gloo): the global batch is kept (each rank takes half), no sample is seen twice,
    rank 0 writes one result; same selected epoch as one process, metrics equal up to float summation order."""
    command = tiny("--set", "train.batch_size=64", seeds="1111", epochs=4)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    single = fakecli(tmp_path / "one", *command)
    assert single.returncode == 0, single.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(FAKECLI)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    double = subprocess.run(
        [*torchrun, *map(str, command)], cwd=tmp_path / "two", env=env, capture_output=True, text=True
    )
    assert double.returncode == 0, double.stderr[-3000:]
    rows = "results/synthetic-mosi/tiny+train.batch_size=64/mmsa-1+max_epochs=4"
    ours, theirs = (
        RunResult.load(tmp_path / "two" / rows / "seed-1111.json"),
        RunResult.load(tmp_path / "one" / rows / "seed-1111.json"),
    )
    assert ours.hardware["world_size"] == 2 and theirs.hardware["world_size"] == 1
    assert ours.best_epoch == theirs.best_epoch and ours.epochs == theirs.epochs
    for name, value in theirs.metrics.items():
        assert abs(ours.metrics[name] - value) < 1e-3, name
    for mine, single_epoch in zip(ours.history, theirs.history, strict=True):
        assert abs(mine["train"]["total"] - single_epoch["train"]["total"]) < 1e-4
    assert sorted(p.name for p in (tmp_path / "two" / rows).iterdir()) == ["seed-1111.json", "seed-1111.pt"]


def test_patience_and_max_epochs_give_a_fixed_schedule_under_its_own_protocol_id(invoke, tmp_path):
    outcome = invoke(*tiny("-q", epochs=3), "--patience", "3")
    assert outcome.exit_code == 0, outcome.output
    (path,) = (tmp_path / "results/synthetic-mosi/tiny").rglob("seed-1111.json")
    assert path.parent.name == "mmsa-1+patience=3+max_epochs=3"
    result = RunResult.load(path)
    assert result.epochs == 3 and result.protocol["patience"] == 3  # never stopped early; selected on validation
    assert result.best_epoch == 1 + [e["valid"]["loss"] for e in result.history].index(
        min(e["valid"]["loss"] for e in result.history)
    )


class Commands:
    """A plugin that adds a command, one that clashes with a built-in, and one that a second plugin adds too."""

    @hookimpl
    def register_commands(self, cli):
        @cli.command()
        @click.argument("name")
        def greet(name):
            """Say hello."""
            click.echo(f"hello {name}")

        @cli.command(name="run")
        def shadow():
            """Would hide `msabench run`."""

        @cli.command(name="twice")
        def first():
            """Added here and by Again."""


class Again:
    @hookimpl
    def register_commands(self, cli):
        @cli.command(name="twice")
        def second():
            """Added by Commands too."""


class Broken:
    @hookimpl
    def register_commands(self, cli):
        raise RuntimeError("no commands today")


def test_hook_register_commands_adds_commands_listed_by_plugins(monkeypatch):
    real = msabench.plugins.get_plugin_manager

    def with_commands(load_entrypoints=True):
        pm = real(load_entrypoints=False)
        for plugin, name in ((Commands(), "commands"), (Again(), "again"), (Broken(), "broken")):
            pm.register(plugin, name=name)
        return pm

    monkeypatch.setattr(msabench.plugins, "get_plugin_manager", with_commands)
    runner = CliRunner()
    listed = runner.invoke(cli, ["--help"])
    assert "greet" in listed.output and "Say hello." in listed.output and "twice" in listed.output
    assert "msabench plugin 'commands' adds a command 'run', which is a built-in command; it is left out" in (
        listed.output
    )
    assert "msabench plugin 'again' adds a command 'twice', which is added by plugin 'commands' too" in listed.output
    assert "msabench plugin 'broken' failed in register_commands: RuntimeError: no commands today" in listed.output
    greeted = runner.invoke(cli, ["greet", "world"])
    assert greeted.exit_code == 0 and "hello world" in greeted.output
    assert "Train and test a method" in runner.invoke(cli, ["run", "--help"]).output  # the built-in, not the shadow
    plugins = {p["name"]: p for p in json.loads(runner.invoke(cli, ["plugins"]).output)}
    assert plugins["commands"]["commands"] == ["greet", "twice"] and "commands" not in plugins["again"]
    unknown = runner.invoke(cli, ["gret"])
    assert unknown.exit_code == 2 and "No such command 'gret'" in unknown.output
