"""`msabench sweep`: the grid, trials that never see the test split, the choice on validation, resuming, and one
real 2-trial sweep on Ray Tune (host fakes; the Ray workers import them through PYTHONPATH)."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from fakes import TINY, Plugin, TinyData
from msabench import Callback, CatalogError, Protocol, RunResult, TrainingError, fit
from msabench.components import Split
from msabench.leaderboard import render_dataset
from msabench.sweep import choose, configurations, parse_grid, trial_id, tuned_record, with_config
from msabench.train import resolve_hparams
from msabench.trials import fit_trial, keep, run_on_ray, trial_path
from test_catalog import catalog_with

TESTS = Path(__file__).parent
PROTOCOL = Protocol(max_epochs=3)


@pytest.fixture(scope="module")
def data():
    return TinyData().load()


@pytest.fixture(scope="module")
def catalog():
    return catalog_with(Plugin())


def spec(data, config, seed=1111, protocol=PROTOCOL):
    planned = resolve_hparams(with_config(TINY.hparams_for(data), config), data, seed, protocol, "results")
    return {
        "id": trial_id(TINY, data, protocol, seed, planned),
        "seed": seed,
        "config": config,
        "hparams": planned,
        "variant": ", ".join(f"{k}={v}" for k, v in config.items()),
    }


def test_grid_values_parse_like_set_and_bad_grids_are_one_line_errors():
    (lr, hidden, pooling) = parse_grid(
        ["train.lr=1e-3, 3e-4", "fusion.hidden=[[64, 32], [128]]", "text.pooling=cls,mean"], {}
    )
    assert lr.key == "train.lr" and lr.texts == ("1e-3", "3e-4") and lr.values == (0.001, 0.0003)
    assert hidden.texts == ("[64, 32]", "[128]") and hidden.values == ([64, 32], [128])
    assert pooling.values == ("cls", "mean")
    for grids, fixed, message in [
        (["train.lr"], {}, "expected SECTION.KEY=V1,V2"),
        (["lr=1,2"], {}, "expected SECTION.KEY=V1,V2"),
        (["train.lr=1,2", "train.lr=3"], {}, "train.lr is given twice"),
        (["train.lr=1,2"], {"train": {"lr": "3"}}, "train.lr is both fixed \\(--set\\) and swept"),
        (["train.lr=1,,2"], {}, "an empty value"),
        (["train.lr=1,1"], {}, "a value is listed twice"),
        ([], {}, "at least one --grid"),
    ]:
        with pytest.raises(CatalogError, match=message):
            parse_grid(grids, fixed)


def test_configurations_are_the_grid_or_a_seeded_draw_from_it():
    axes = parse_grid(["train.lr=1,2,3", "fusion.dropout=0,0.5"], {})
    grid = configurations(axes)
    assert grid == [{"train.lr": lr, "fusion.dropout": dropout} for lr in ("1", "2", "3") for dropout in ("0", "0.5")]
    drawn = configurations(axes, samples=4, seed=7)
    assert len(drawn) == 4 and len({json.dumps(c) for c in drawn}) == 4  # without replacement
    assert drawn == configurations(axes, samples=4, seed=7) and drawn == [c for c in grid if c in drawn]
    assert configurations(axes, samples=4, seed=8) != drawn
    assert configurations(axes, samples=10) == grid


def test_a_trial_trains_and_validates_and_never_touches_the_test_split(data, catalog, tmp_path):
    class Untouchable(Split):
        def batches(self, *args, **kwargs):
            raise AssertionError("a trial evaluated the test split")

    test = data.splits["test"]
    guarded = replace(data, splits={**data.splits, "test": Untouchable("test", test.ids, test.tensors)})
    reports = []
    trial = spec(data, {"train.lr": "0.01"})
    record = fit_trial(
        trial, catalog=catalog, method=TINY, data=guarded, protocol=PROTOCOL, folder=tmp_path, report=reports.append
    )
    assert record["trial"] == trial["id"] and record["config"] == {"train.lr": "0.01"} and record["failed"] is None
    assert not {"metrics", "predictions", "test", "test_metrics"} & set(record)
    assert all(set(epoch) == {"epoch", "train", "valid"} for epoch in record["history"]) and record["epochs"] == 3
    assert [r["epoch"] for r in reports] == [1, 2, 3] and reports[-1]["best"] == record["score"]
    # the score is the protocol's selection value at the selected epoch: what fit() selects on for this config
    reference = fit(TINY, data, catalog=catalog, seed=1111, protocol=PROTOCOL, hparams=trial["hparams"])
    assert record["selection"] == {"split": "valid", "key": "loss", "mode": "min"}
    assert record["best_epoch"] == reference.best_epoch and record["score"] == reference.valid_metrics["loss"]
    assert record["history"] == [json.loads(json.dumps(epoch)) for epoch in reference.history]
    assert not (tmp_path / "trials" / f"{trial['id']}.resume.pt").exists()


def test_a_killed_trial_resumes_after_its_last_epoch_to_the_same_record(data, catalog, tmp_path):
    class Killed(Exception):
        pass

    class KillAtEpoch(Callback):
        def on_epoch_start(self, run, epoch):
            if epoch == 3:
                raise Killed

    trial = spec(data, {"train.lr": "0.003"})
    whole = fit_trial(trial, catalog=catalog, method=TINY, data=data, protocol=PROTOCOL, folder=tmp_path / "whole")
    folder = tmp_path / "killed"
    kill = KillAtEpoch()

    class KillingCatalog:  # the same catalog, whose models carry the killing callback
        def __getattr__(self, name):
            return getattr(catalog, name)

        def build(self, *args, **kwargs):
            model, objective = catalog.build(*args, **kwargs)
            objective.on_epoch_start = kill.on_epoch_start
            return model, objective

    with pytest.raises(Killed):
        fit_trial(trial, catalog=KillingCatalog(), method=TINY, data=data, protocol=PROTOCOL, folder=folder)
    assert (folder / "trials" / f"{trial['id']}.resume.pt").is_file()  # saved after epoch 2
    resumed = fit_trial(trial, catalog=catalog, method=TINY, data=data, protocol=PROTOCOL, folder=folder)
    drop = ("wall_time_s", "hardware")
    assert {k: v for k, v in resumed.items() if k not in drop} == {k: v for k, v in whole.items() if k not in drop}


def test_a_diverging_configuration_is_kept_as_failed(data, catalog, tmp_path):
    record = fit_trial(
        spec(data, {"train.lr": "1e30"}), catalog=catalog, method=TINY, data=data, protocol=PROTOCOL, folder=tmp_path
    )
    assert record["score"] is None and "the loss became" in record["failed"] and record["best_epoch"] is None


def record(config, seed, score, mode="min"):
    return {
        "trial": f"{config}-{seed}",
        "config": config,
        "seed": seed,
        "score": score,
        "failed": None if score is not None else "diverged",
        "best_epoch": 1,
        "epochs": 2,
        "selection": {"split": "valid", "key": "loss" if mode == "min" else "Acc", "mode": mode},
    }


def test_the_choice_is_the_best_mean_over_trial_seeds_on_validation():
    a, b, c = {"train.lr": "1"}, {"train.lr": "2"}, {"train.lr": "3"}
    records = [record(a, 1, 0.5), record(a, 2, 0.9), record(b, 1, 0.6), record(b, 2, 0.7), record(c, 1, None)]
    records.append(record(c, 2, 0.1))
    chosen, rows = choose([a, b, c], records)
    assert chosen == 1 and rows[1]["score"] == pytest.approx(0.65) and rows[0]["score"] == pytest.approx(0.7)
    assert rows[2]["score"] is None and rows[2]["failed"] == ["diverged"]  # one failed seed rules it out
    assert choose([a, b], [record(a, 1, 0.5, "max"), record(b, 1, 0.6, "max")])[0] == 1  # a key metric: higher
    assert choose([a, b], [record(a, 1, 0.5), record(b, 1, 0.5)])[0] == 0  # a tie: the earlier configuration
    with pytest.raises(TrainingError, match="no configuration gave a finite validation loss"):
        choose([c], [record(c, 1, None)])


def test_a_tuned_run_must_be_what_the_sweep_chose(tmp_path):
    summary = {
        "sweep": "sweep-abc",
        "method": "tiny",
        "search": "grid search: 2 configurations",
        "grid": {"train.lr": ["0.01", "0.001"]},
        "configurations": [{}, {}],
        "seeds": [1111],
        "selection": {"split": "valid", "key": "loss", "mode": "min"},
        "chosen": {"config": {"train.lr": "0.01"}, "score": 0.5},
    }
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    tuned = tuned_record(path, "tiny", {"train": {"lr": 0.01}})
    assert tuned["chosen"] == {"train.lr": "0.01"} and tuned["summary"] == str(path) and tuned["configurations"] == 2
    with pytest.raises(CatalogError, match=r"that sweep chose train.lr=0.01 for tiny; this run is tiny with other"):
        tuned_record(path, "tiny", {"train": {"lr": 0.02}})
    with pytest.raises(CatalogError, match="not a sweep summary"):
        tuned_record(tmp_path / "missing.json", "tiny", {})


def test_the_leaderboard_marks_tuned_rows(data, catalog):
    result = fit(TINY, data, catalog=catalog, seed=1111, protocol=Protocol(max_epochs=1))
    result.variant = "tuned, train.lr=0.01"
    result.tuned = {"sweep": "sweep-abc", "chosen": {"train.lr": "0.01"}}
    page = render_dataset(data.name, [result])
    assert "| tiny [tuned, train.lr=0.01]‡ " in page and "‡ hyper-parameters chosen by `msabench sweep`" in page
    assert RunResult.from_dict(json.loads(json.dumps(result.to_dict()))).tuned == result.tuned


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("train.lr=1e-3,-1", "train.lr must be a number > 0; got -1"),
        ("fusion.width=1,2", "fusion 'fake-concat' cannot take the hyper-parameters of section 'fusion'"),
        ("train.lr", "--grid train.lr: expected SECTION.KEY=V1,V2"),
    ],
)
def test_bad_grids_are_one_line_errors_before_data_loads_or_ray_starts(invoke, monkeypatch, grid, message):
    monkeypatch.setattr(TinyData, "load", lambda self: pytest.fail("data loaded"))
    outcome = invoke("sweep", "-m", "tiny", "-d", "tiny-data", "--grid", grid)
    assert outcome.exit_code == 1 and message in outcome.output
    assert outcome.output.count("\n") == 1 and not (Path.cwd() / "sweeps").exists()


def test_without_ray_the_sweep_says_how_to_install_it(data, catalog, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    trial = spec(data, {"train.lr": "0.01"})
    with pytest.raises(
        CatalogError,
        match=r"runs its trials on Ray Tune, which is not installed: in your msabench checkout, pip install -c "
        r"constraints.txt -e '.\[sweep\]'",
    ):
        run_on_ray([trial], catalog=catalog, method=TINY, data=data, protocol=PROTOCOL, folder=tmp_path, name="s")


def sweep_command(cwd, *extra):
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    args = ["sweep", "-m", "tiny", "-d", "tiny-data", "--grid", "train.lr=0.01,0.0001,0.001", "--max-epochs", "3"]
    args += ["--seeds", "1111", "--no-progress", "--no-checkpoints", *extra]
    return subprocess.run(
        [sys.executable, str(TESTS / "fakecli.py"), *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_a_sweep_on_ray_chooses_on_validation_resumes_and_tests_once(data, catalog, tmp_path):
    pytest.importorskip("ray.tune", reason="pip install 'msabench[sweep]'")
    folder = tmp_path / "sweeps" / "tiny-data" / "tiny" / PROTOCOL.id
    # A sweep killed after its first trial finished: that trial's JSON is there, the other two are not.
    first = spec(data, {"train.lr": "0.01"})
    done = trial_path(folder, first["id"])
    keep(folder, fit_trial(first, catalog=catalog, method=TINY, data=data, protocol=PROTOCOL, folder=folder))
    before = done.read_bytes()

    swept = sweep_command(tmp_path)  # the two missing trials run as Ray Tune trials
    assert swept.returncode == 0, swept.stderr[-3000:]
    assert "3 trials; 1 finished already (kept), 2 to train" in swept.stderr
    assert "Started a local Ray instance" in swept.stderr and done.read_bytes() == before
    others = [spec(data, {"train.lr": lr}) for lr in ("0.0001", "0.001")]
    records = [json.loads(trial_path(folder, s["id"]).read_text()) for s in (first, *others)]
    for kept in records:  # trial JSONs: validation only
        assert not {"metrics", "predictions"} & set(kept) and kept["failed"] is None
        assert all(set(epoch) == {"epoch", "train", "valid"} for epoch in kept["history"])
    # Each Ray trial trained what it says: the same validation numbers as fit() in this process.
    for other, kept in zip(others, records[1:], strict=True):
        reference = fit(TINY, data, catalog=catalog, seed=1111, protocol=PROTOCOL, hparams=other["hparams"])
        assert kept["score"] == reference.valid_metrics["loss"] and kept["best_epoch"] == reference.best_epoch
    # The choice: the lowest validation loss, whichever it is.
    best = min(records, key=lambda r: r["score"])
    (summary_path,) = folder.glob("sweep-*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["chosen"]["config"] == best["config"] and summary["chosen"]["score"] == best["score"]
    assert [row["score"] for row in summary["configurations"]] == [r["score"] for r in records]
    assert "✓" in summary_path.with_suffix(".md").read_text()
    # The chosen configuration ran over the seeds through `msabench run`, tested once, as a tuned row.
    lr = best["config"]["train.lr"]  # in the row's label unless it is the method's own (a --set equal to the default)
    default = float(lr) == TINY.hparams["train"]["lr"]
    row = "tiny+tuned" if default else f"tiny+tuned,_train.lr={lr}-*"
    (path,) = (tmp_path / "results" / "tiny-data").glob(f"{row}/{PROTOCOL.id}/seed-1111.json")
    result = RunResult.load(path)
    assert result.tuned["chosen"] == best["config"] and result.tuned["sweep"] == summary["sweep"]
    assert result.request["sources"]["train.lr"] == "tuned" and summary["command"].endswith(
        f"--tuned {summary_path.relative_to(tmp_path)}"
    )
    assert result.valid_metrics["loss"] == best["score"] and set(result.metrics) >= {"MAE", "Corr"}
    label = "tiny [tuned]" if default else f"tiny [tuned, train.lr={float(lr)}]"
    assert f"| {label}‡ " in (tmp_path / "leaderboards" / "tiny-data.md").read_text()

    again = sweep_command(tmp_path)  # nothing left to train: no Ray at all, and the finished seed is skipped
    assert again.returncode == 0, again.stderr[-3000:]
    assert "3 finished already (kept), 0 to train" in again.stderr and "Ray" not in again.stderr
    assert "seed 1111: done already" in again.stderr and RunResult.load(path) == result
