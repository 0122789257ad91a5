"""`msabench.verify`: a good results folder passes; a tampered metric, a missing stage file, a test metric in a sweep
trial and a version mismatch are each rejected with their own message; a rerun matches a real result bit for bit
and exposes a made-up one. Results come from the fake `tiny` method on synthetic-mosi, trained once per module."""

import copy
import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import msabench.plugins
from fakes import TINY, Plugin, TinyData
from msabench import schema
from msabench.cli import cli
from msabench.command import command, rebuild, rerun_argv, variant_parts
from msabench.metrics import evaluate
from msabench.protocol import Protocol
from msabench.results import RunResult
from msabench.sweep import choose, trial_id, tuned_record, with_config
from msabench.train import resolve_hparams
from msabench.trials import fit_trial, keep
from msabench.verify import stage_file, verify
from test_catalog import catalog_with

TESTS = Path(__file__).parent
ROW = "synthetic-mosi/tiny/mmsa-1+max_epochs=2"
FAKECLI = (sys.executable, str(TESTS / "fakecli.py"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """results/ with seeds 1111 and 1112 of `tiny` (2 epochs), as `msabench run` writes them."""
    root = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("HOME", str(root / "home"))
        patch.setenv("XDG_CACHE_HOME", str(root / "cache"))
        patch.setenv("MSABENCH_DATA", str(root / "data"))
        real = msabench.plugins.get_plugin_manager

        def with_fakes(load_entrypoints=True):
            pm = real(load_entrypoints)
            pm.register(Plugin(), name="fakes")
            return pm

        patch.setattr(msabench.plugins, "get_plugin_manager", with_fakes)
        args = ["run", "-m", "tiny", "-d", "synthetic-mosi", "--seeds", "1111,1112", "--max-epochs", "2"]
        outcome = CliRunner().invoke(cli, [*args, "--no-progress", "--no-checkpoints", "-q"], catch_exceptions=False)
    assert outcome.exit_code == 0, outcome.output
    return root / "results"


@pytest.fixture(scope="module")
def catalog():
    return catalog_with(Plugin())


@pytest.fixture
def folder(trained, tmp_path):
    """A fresh copy of the trained results to tamper with."""
    return Path(shutil.copytree(trained, tmp_path / "results"))


def edit(path: Path, change) -> dict:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=1))
    return data


def outcome(report, name, check, row=ROW):
    (found,) = [o for r in report.files if r.path.as_posix() == f"{row}/{name}" for o in r.outcomes if o.check == check]
    return found


def add_stage(folder: Path) -> Path:
    """Make seed 1112 a stage that seed 1111's text encoder started from (as a multi-stage run records it)."""
    stage = folder / "synthetic-mosi/tiny-text/mmsa-1+max_epochs=2/seed-1111.json"
    stage.parent.mkdir(parents=True)
    edit(folder / ROW / "seed-1112.json", lambda d: d.update(method="tiny-text", seed=1111))
    (folder / ROW / "seed-1112.json").rename(stage)
    recorded = {
        "method": "tiny-text",
        "result": f"elsewhere/results/{stage.relative_to(folder).as_posix()}",  # where the submitter's run saw it
        "sha256": hashlib.sha256(stage.read_bytes()).hexdigest(),
        "checkpoint": "elsewhere/seed-1111.pt",
    }
    edit(folder / ROW / "seed-1111.json", lambda d: d["stages"].update(text=recorded))
    return stage


def add_sweep(folder: Path, catalog) -> Path:
    """A real two-configuration sweep of `tiny` (trials trained on TinyData) behind seed 1111, which becomes its
    tuned row; returns the sweep's trials folder."""
    data, protocol = TinyData().load(), Protocol(max_epochs=2)
    sweep = folder / "sweeps/tiny-data/tiny/mmsa-1+max_epochs=2"
    configs, records = [{"train.lr": "0.01"}, {"train.lr": "0.001"}], []
    for config in configs:
        planned = resolve_hparams(with_config(TINY.hparams_for(data), config), data, 1111, protocol, "results")
        spec = {
            "id": trial_id(TINY, data, protocol, 1111, planned),
            "seed": 1111,
            "config": config,
            "hparams": planned,
            "variant": f"train.lr={config['train.lr']}",
        }
        record = fit_trial(spec, catalog=catalog, method=TINY, data=data, protocol=protocol, folder=sweep)
        keep(sweep, record)
        records.append(record)
    chosen, rows = choose(configs, records)
    summary = {
        "schema": 1,
        "sweep": "sweep-0123456789ab",
        "method": "tiny",
        "dataset": "tiny-data",
        "protocol": protocol.id,
        "variant": "",
        "search": "grid search: 2 configurations",
        "grid": {"train.lr": ["0.01", "0.001"]},
        "seeds": [1111],
        "selection": records[0]["selection"],
        "configurations": rows,
        "chosen": rows[chosen],
        "command": "msabench run --method tiny --dataset tiny-data --set train.lr=...",
    }
    path = sweep / "sweep-0123456789ab" / "summary.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(summary, indent=1))
    result = folder / ROW / "seed-1111.json"
    hparams = json.loads(result.read_text())["hparams"]
    hparams["train"]["lr"] = float(configs[chosen]["train.lr"])
    record = tuned_record(path, "tiny", hparams) | {"summary": "/home/submitter/sweeps/gone/summary.json"}
    edit(result, lambda d: d.update(tuned=record))
    return sweep / "trials"


def test_a_good_folder_passes_every_check(folder, catalog):
    add_stage(folder)
    add_sweep(folder, catalog)
    report = verify(folder, catalog=catalog)
    assert report.passed and report.failures() == [], report.text()
    assert report.files[0].path.as_posix() == f"{ROW}/seed-1111.json"
    tuned = {o.check: o.status for o in report.files[0].outcomes}
    assert tuned == {
        "schema": "pass",
        "metrics": "pass",  # against the labels of synthetic-mosi, generated here
        "versions": "pass",
        "data": "skip",
        "protocol": "pass",
        "sweep": "pass",
        "stages": "pass",
    }
    text = report.text()
    assert text.endswith(f"verify PASSED: 2 of 2 result files under {folder} pass\n")
    row = next(line for line in text.splitlines() if line.startswith(f"| {ROW}/seed-1111.json "))
    assert [cell.strip() for cell in row.split("|")[2:-1]] == ["ok", "ok", "ok", "-", "ok", "ok", "ok"]


def test_a_tampered_metric_is_rejected_naming_the_file_and_the_fix(folder, catalog):
    stored = edit(
        folder / ROW / "seed-1111.json", lambda d: d["metrics"].update({"Acc-7": d["metrics"]["Acc-7"] + 0.1})
    )
    recomputed = evaluate("mosi", stored["predictions"]["predictions"], stored["predictions"]["labels"])["Acc-7"]
    report = verify(folder, catalog=catalog)
    assert not report.passed
    assert report.failures() == [
        f"{ROW}/seed-1111.json: metrics: Acc-7 is stored as {stored['metrics']['Acc-7']!r} but the stored predictions "
        f"give {recomputed!r}: the metrics were edited or the predictions do not belong to them; rerun it."
    ]
    assert outcome(report, "seed-1112.json", "metrics").status == "pass"
    assert report.text().startswith(f"FAIL {ROW}/seed-1111.json: metrics: Acc-7 is stored as")
    assert report.text().endswith(f"verify FAILED: 1 of 2 result files under {folder} pass\n")


def test_edited_labels_and_an_out_of_range_metric_are_rejected_too(folder, catalog):
    def flip(d):
        d["predictions"]["labels"][0] = -d["predictions"]["labels"][0] or 1.0
        d["metrics"] = evaluate("mosi", d["predictions"]["predictions"], d["predictions"]["labels"])

    edit(folder / ROW / "seed-1111.json", flip)
    edit(folder / ROW / "seed-1112.json", lambda d: d["metrics"].update({"Acc-2_has0": 7.3}))
    report = verify(folder, catalog=catalog)
    labels = outcome(report, "seed-1111.json", "metrics").message
    assert labels.startswith("1 stored labels differ from synthetic-mosi's test labels (e.g. id ")
    schema_check = outcome(report, "seed-1112.json", "schema")
    assert schema_check.status == "fail" and schema_check.message.startswith(
        "metrics.Acc-2_has0: 7.3 is out of range (greater than the maximum of 1). The file does not follow "
        "docs/result.schema.json"
    )


def test_a_missing_or_changed_stage_file_is_rejected(folder, catalog):
    stage = add_stage(folder)
    assert stage_file(f"elsewhere/results/{stage.relative_to(folder).as_posix()}", folder) == stage
    stage.write_text(stage.read_text().replace('"seed": 1111', '"seed":  1111'))
    changed = outcome(verify(folder, catalog=catalog), "seed-1111.json", "stages")
    assert changed.status == "fail" and "but the run started from one with" in changed.message
    stage.unlink()
    missing = outcome(verify(folder, catalog=catalog), "seed-1111.json", "stages")
    assert missing.status == "fail" and missing.message == (
        f"its text encoder started from the tiny-text run elsewhere/results/{stage.relative_to(folder).as_posix()}, "
        "which is missing: add that result file to the results folder"
    )


def test_a_test_metric_in_a_sweep_trial_is_rejected(folder, catalog):
    trials = add_sweep(folder, catalog)
    first = sorted(trials.glob("*.json"))[0]
    edit(first, lambda d: d["history"][-1].update(test={"Acc-7": 0.5}))
    found = outcome(verify(folder, catalog=catalog), "seed-1111.json", "sweep")
    assert found.status == "fail"
    assert found.message.startswith(f"trial {first} holds test metrics (history[1].test): a sweep chooses on the ")
    shutil.rmtree(trials.parent)
    gone = outcome(verify(folder, catalog=catalog), "seed-1111.json", "sweep")
    assert gone.message.startswith("its sweep sweep-0123456789ab is not in the submission")


def test_a_version_mismatch_is_rejected(folder, catalog):
    edit(folder / ROW / "seed-1111.json", lambda d: d["versions"].update({"msabench": "0.0.1"}))
    edit(folder / ROW / "seed-1112.json", lambda d: d["versions"].update({"msabench-nowhere": "1.0"}))
    report = verify(folder, catalog=catalog)
    installed = msabench.__version__
    assert outcome(report, "seed-1111.json", "versions").message == (
        f"it names msabench 0.0.1 but {installed} is installed (pip install 'msabench==0.0.1', or rerun it with "
        f"{installed} and submit that result)"
    )
    assert outcome(report, "seed-1112.json", "versions").message == (
        "msabench-nowhere 1.0 is not installed (pip install 'msabench-nowhere==1.0')"
    )


def test_an_edited_protocol_id_and_a_misplaced_file_are_rejected(folder, catalog):
    edit(folder / ROW / "seed-1111.json", lambda d: d["protocol"].update(id="mmsa-1"))
    moved = folder / "synthetic-mosi/tiny/mmsa-1/seed-1112.json"
    moved.parent.mkdir()
    (folder / ROW / "seed-1112.json").rename(moved)
    report = verify(folder, catalog=catalog)
    assert outcome(report, "seed-1111.json", "protocol").message == (
        "the result holds protocol id mmsa-1 but its settings give mmsa-1+max_epochs=2: the id or the settings were "
        "edited; rerun it"
    )
    assert outcome(report, "seed-1112.json", "protocol", row="synthetic-mosi/tiny/mmsa-1").message == (
        "the file lies in folder mmsa-1 but protocol mmsa-1+max_epochs=2 keeps its results in mmsa-1+max_epochs=2: "
        f"move it to {ROW}/seed-1112.json under the results folder"
    )


def test_withheld_labels_are_checked_against_the_data_by_their_digest(folder, catalog):
    def withhold(d):
        d["data"]["labels_sha256"] = schema.labels_digest(d["predictions"].pop("labels"))

    edit(folder / ROW / "seed-1111.json", withhold)
    edit(folder / ROW / "seed-1112.json", lambda d: (withhold(d), d["data"].update(labels_sha256="0" * 64)))
    report = verify(folder, catalog=catalog)
    assert outcome(report, "seed-1111.json", "metrics").status == "pass"
    assert outcome(report, "seed-1112.json", "metrics").message.startswith(
        "data.labels_sha256 000000000000... is not the digest of synthetic-mosi's test labels"
    )


def test_an_empty_folder_fails(tmp_path):
    report = verify(tmp_path / "no-such-results-folder")
    assert not report.passed and "no result files" in report.text()


def test_a_rerun_matches_a_real_result_bit_for_bit_and_exposes_a_made_up_one(folder, catalog):
    def made_up(d):  # better predictions, with metrics that agree with them: only training again tells
        d["predictions"]["predictions"] = [
            0.9 * p + 0.1 * y for p, y in zip(*map(d["predictions"].get, ("predictions", "labels")), strict=True)
        ]
        d["metrics"] = evaluate("mosi", d["predictions"]["predictions"], d["predictions"]["labels"])

    edit(folder / ROW / "seed-1112.json", made_up)
    report = verify(folder, rerun=2, catalog=catalog, program=FAKECLI, timeout=300)
    assert outcome(report, "seed-1111.json", "rerun").status == "pass", report.text()
    fake = outcome(report, "seed-1112.json", "rerun")
    assert fake.status == "fail" and fake.message.startswith(
        "trained again by its recorded command, it does not match bit-identically on the CPU (Acc-2_has0: stored "
    )
    assert report.reruns == 2 and "rerun" in report.table()


def test_the_rebuilt_command_spells_out_the_variant_and_a_recorded_one_wins(trained):
    result = RunResult.load(trained / ROW / "seed-1111.json")
    recorded = command(result)
    assert recorded.recorded and recorded.text == (
        "msabench run --method tiny --dataset synthetic-mosi --seeds 1111 --max-epochs 2 --threads 1"
    )
    assert rebuild(result).text == "msabench run --method tiny --dataset synthetic-mosi --seeds 1111 --max-epochs 2"
    assert command(result, {"command": "msabench run --method tiny"}).text == "msabench run --method tiny"
    varied = copy.deepcopy(result)
    varied.variant = 'text=lstm-seq, objective=mse, fusion.hidden=[64, 32], lab5-bert:train.lr=3e-05, data.fold="a b"'
    varied.hparams["fusion"] = {"hidden": [64, 32]}
    varied.protocol["precision"] = "bf16"
    assert variant_parts(varied.variant) == [
        "text=lstm-seq",
        "objective=mse",
        "fusion.hidden=[64, 32]",
        "lab5-bert:train.lr=3e-05",
        'data.fold="a b"',
    ]
    rebuilt = rebuild(varied)
    assert rebuilt.text == (
        "msabench run --method tiny --dataset synthetic-mosi --seeds 1111 --max-epochs 2 --precision bf16 "
        "--encoder text=lstm-seq --objective mse --set 'fusion.hidden=[64, 32]' --set lab5-bert:train.lr=3e-05 "
        "--data-option 'fold=a b'"
    )
    assert rebuilt.exact and not rebuilt.recorded
    argv = rerun_argv(
        "msabench run -m tiny -d synthetic-mosi --seeds 1,2 --results=r --overwrite --threads 4 --set a.b=1",
        seed=2,
        results="/tmp/x",
        threads=1,
        device="cpu",
        data_root="/data",
        program=("python", "-m", "msabench"),
    )
    assert argv == [
        *("python", "-m", "msabench", "run", "-m", "tiny", "-d", "synthetic-mosi", "--set", "a.b=1", "--seeds", "2"),
        *("--results", "/tmp/x", "--leaderboards", "/tmp/x/leaderboards", "--threads", "1", "--device", "cpu"),
        *("--no-progress", "--no-checkpoints", "--quiet", "--data-root", "/data"),
    ]
    with pytest.raises(ValueError, match="not an `msabench run` command"):
        rerun_argv("msabench sweep --grid x=1", seed=1, results="r", threads=1, device="cpu")
