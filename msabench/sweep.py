"""Hyper-parameter sweeps as Ray Tune trials, chosen on validation only (`msabench sweep`).

    msabench sweep --method lf-dnn --dataset mosi --grid train.lr=1e-3,3e-4 --grid fusion.dropout=0,0.1

1. **Plan.** ``--grid SECTION.KEY=V1,V2,...`` axes span a grid; ``--samples N`` draws N of its configurations
   instead (seeded, without replacement, so a rerun draws the same ones). Each configuration trains once per trial
   seed (default: the first of the protocol's seeds); each (configuration, seed) is one trial, named by a digest of
   everything that decides its numbers (method, resolved hyper-parameters, seed, data files, protocol).
2. **Trials.** Every trial not finished before runs as a Ray Tune trial: local Ray started with this machine's CPUs
   and GPUs (usage statistics off, no dashboard), or a cluster (``--address``). A trial is `fit`'s phases without the
   test: `assemble`, then `train_epoch` + `validate` until the protocol stops it, its state saved after each epoch
   (a killed trial resumes after its last finished epoch). It never evaluates the test split; its kept JSON
   (``trials/<id>.json``) holds the validation history, the selected epoch and its selection value, nothing of the
   test split. A trial whose loss diverges is kept as failed (no score).
3. **Choice.** The configuration with the best mean selection value over its trial seeds wins: the protocol's
   selection value (validation loss, or the method's key metric) at each trial's selected epoch, validation only.
   Ties go to the earlier configuration in grid order. The sweep writes ``summary.json`` and ``summary.md``
   (every configuration's scores, the chosen one, the command that repeats it).
4. **Final runs.** The chosen configuration runs over the protocol's seeds through `msabench run` (same skip and
   resume rules), each seed tested once; its results record the sweep in ``tuned`` and form their own leaderboard
   row (``method [tuned, <chosen values>]``, marked ‡).

Killing a sweep and running the same command again resumes it: finished trials are read back, not rerun.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tabulate import tabulate

from msabench.catalog import Catalog
from msabench.components import Data, Method, merge
from msabench.errors import CatalogError, TrainingError
from msabench.protocol import Protocol
from msabench.results import DATA_KEYS, write_atomic
from msabench.resume import restore, save_state, state_key
from msabench.runtime import hardware, select_device, set_threads, versions
from msabench.train import assemble, train_epoch, validate

log = logging.getLogger("msabench")

SCHEMA = 1
INSTALL = "pip install 'msabench[sweep]' (Ray Tune)"


@dataclass(frozen=True)
class Axis:
    """One hyper-parameter of the grid: ``section.key`` and its values, as given (text) and as parsed."""

    key: str
    texts: tuple[str, ...]
    values: tuple[Any, ...]


def parse_grid(grids: Sequence[str], fixed: Mapping[str, Mapping[str, Any]]) -> list[Axis]:
    """``SECTION.KEY=V1,V2,...`` (or ``SECTION.KEY=[V1, V2]``, a JSON list, for values holding commas) per axis."""
    axes: list[Axis] = []
    for text in grids:
        key, sep, values = (part.strip() for part in text.partition("="))
        section, dot, name = key.partition(".")
        if not sep or not values or not dot or not section or not name:
            raise CatalogError(f"--grid {text}: expected SECTION.KEY=V1,V2,..., e.g. --grid train.lr=1e-3,3e-4.")
        if any(axis.key == key for axis in axes):
            raise CatalogError(f"--grid {key} is given twice; list all its values in one --grid.")
        if name in fixed.get(section, {}):
            raise CatalogError(f"{key} is both fixed (--set) and swept (--grid); keep one.")
        try:
            parsed = json.loads(values)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            texts = tuple(json.dumps(value) for value in parsed)
        else:
            texts = tuple(value.strip() for value in values.split(","))
        if any(not value for value in texts):
            raise CatalogError(f"--grid {text}: an empty value; separate values with single commas.")
        if len(set(texts)) != len(texts):
            raise CatalogError(f"--grid {text}: a value is listed twice.")
        axes.append(Axis(key, texts, tuple(_value(value) for value in texts)))
    if not axes:
        raise CatalogError("a sweep needs at least one --grid SECTION.KEY=V1,V2,...")
    return axes


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # a plain string, e.g. a pooling name


def configurations(axes: Sequence[Axis], samples: int | None = None, seed: int = 0) -> list[dict[str, str]]:
    """The grid's configurations ({key: value text}) in grid order; with `samples`, that many drawn without
    replacement (seeded by `seed`), kept in grid order."""
    grid = [dict(zip((axis.key for axis in axes), texts, strict=True)) for texts in itertools.product(
        *(axis.texts for axis in axes)
    )]  # fmt: skip
    if samples is None or samples >= len(grid):
        return grid
    chosen = np.random.default_rng(seed).choice(len(grid), size=samples, replace=False)
    return [grid[i] for i in sorted(chosen)]


def values(config: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """A configuration as hyper-parameter sections: {"train": {"lr": 0.001}, ...}."""
    sections: dict[str, dict[str, Any]] = {}
    for key, text in config.items():
        section, _, name = key.partition(".")
        sections.setdefault(section, {})[name] = _value(text)
    return sections


def with_config(hparams: Mapping[str, Any], config: Mapping[str, str]) -> dict[str, Any]:
    return merge(copy.deepcopy(dict(hparams)), values(config))


def trial_id(method: Method, data: Data, protocol: Protocol, seed: int, hparams: Mapping[str, Any]) -> str:
    """A digest of everything that decides a trial's numbers: the recipe's components, the resolved
    hyper-parameters, the seed, the data (name, files, split) and the protocol."""
    identity = {
        "method": method.name,
        "components": {"encoders": dict(method.encoders), "fusion": method.fusion, "objective": method.objective},
        "dataset": data.name,
        "data": {key: data.provenance.get(key) for key in DATA_KEYS},
        "protocol": protocol.to_dict(),
        "seed": seed,
        "hparams": hparams,
    }
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sweep_id(identity: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]


# -- one trial ----------------------------------------------------------------------------------------


def fit_trial(
    spec: Mapping[str, Any],
    *,
    catalog: Catalog,
    method: Method,
    data: Data,
    protocol: Protocol,
    folder: str | Path,
    threads: int = 1,
    device: str = "cpu",
    report: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train and validate one configuration with one seed; never evaluate the test split. Returns the trial's
    record (what its JSON keeps). The state is saved after every epoch to ``<folder>/trials/<id>.resume.pt`` and
    read back when present, so a killed trial continues after its last finished epoch."""
    started = time.perf_counter()
    set_threads(threads)
    state = Path(folder) / "trials" / f"{spec['id']}.resume.pt"
    run = assemble(
        method, data, catalog=catalog, seed=spec["seed"], protocol=protocol, hparams=spec["hparams"], device=device
    )
    key = state_key(run, spec["variant"])
    saving = True
    try:
        for callback in run.callbacks:
            callback.on_fit_start(run)
        if state.is_file():
            restore(run, state, key)
        while not run.finished:
            logs = validate(run, train_epoch(run))
            if saving:
                try:
                    save_state(run, state, key, started)
                except OSError as error:  # a worker that cannot reach the folder: it trains on, unresumable
                    log.warning(
                        "trial %s: cannot save its state to %s (%s); it will not resume", spec["id"], state, error
                    )
                    saving = False
            if report is not None:
                selection, _ = run.selection
                report({"epoch": run.epoch, f"valid_{selection}": logs["valid"][selection], "best": run.best.score})
        failure = None
    except BaseException as error:
        for callback in run.callbacks:
            callback.on_exception(run, error)
        if not isinstance(error, TrainingError):
            raise
        failure = str(error)  # e.g. the loss diverged: a finished trial with no score
    record = trial_record(run, spec, catalog, failure, run.elapsed + time.perf_counter() - started)
    with contextlib.suppress(OSError):
        state.unlink(missing_ok=True)
    return record


def trial_record(run, spec: Mapping[str, Any], catalog: Catalog, failure: str | None, wall_time: float) -> dict:
    """What a finished trial keeps: its configuration, the validation history, the selected epoch and its selection
    value. Nothing of the test split."""
    key, mode = run.selection
    scored = failure is None and run.best.state is not None and math.isfinite(run.best.score)
    return _finite(
        {
            "schema": SCHEMA,
            "trial": spec["id"],
            "config": dict(spec["config"]),
            "seed": spec["seed"],
            "method": run.method.name,
            "dataset": run.data.name,
            "variant": spec["variant"],
            "selection": {"split": "valid", "key": key, "mode": mode},
            "score": run.best.score if scored else None,
            "failed": failure,
            "best_epoch": run.best.epoch if scored else None,
            "epochs": len(run.history),
            "valid_metrics": run.history[run.best.epoch - 1]["valid"] if scored else {},
            "history": run.history,
            "hparams": run.hparams,
            "protocol": run.protocol.to_dict(),
            "data": run.data.provenance,
            "versions": versions(catalog.distributions(run.method)),
            "hardware": hardware(run.device),
            "parameters": run.parameters,
            "wall_time_s": round(wall_time, 3),
        }
    )


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def trial_path(folder: str | Path, trial: str) -> Path:
    return Path(folder) / "trials" / f"{trial}.json"


def keep(folder: str | Path, record: Mapping[str, Any]) -> Path:
    """Write a finished trial's JSON (atomically; an existing one is left as it is)."""
    path = trial_path(folder, record["trial"])
    if not path.is_file():
        write_atomic(path, json.dumps(record, indent=1, allow_nan=False) + "\n")
    return path


def missing(folder: str | Path, spec: Mapping[str, Any]) -> dict[str, Any]:
    raise TrainingError(
        f"trial {spec['id']} ({spec['config']}, seed {spec['seed']}) has no result in {trial_path(folder, spec['id'])} "
        "after the sweep; run the same command again to train it."
    )


def finished(folder: str | Path, trial: str) -> dict[str, Any] | None:
    path = trial_path(folder, trial)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise TrainingError(f"cannot read trial {path} ({error}); delete it to train that trial again.") from None
    return record if record.get("trial") == trial else None


# -- on Ray Tune --------------------------------------------------------------------------------------


def run_on_ray(
    specs: Sequence[Mapping[str, Any]],
    *,
    catalog: Catalog,
    method: Method,
    data: Data,
    protocol: Protocol,
    folder: str | Path,
    name: str,
    address: str | None = None,
    cpus_per_trial: int = 1,
    gpus_per_trial: float = 0.0,
    max_concurrent: int | None = None,
    storage: str | None = None,
    quiet: bool = False,
) -> list[dict[str, Any]]:
    """Train `specs` as Ray Tune trials; each finished trial's JSON is written as it completes. Returns the records.

    Without `address`, a local Ray is started with this machine's CPUs and GPUs, usage statistics off and no
    dashboard, and stopped afterwards. Trials get `cpus_per_trial` CPUs (and as many torch threads) and
    `gpus_per_trial` GPUs (a fraction shares one; with any, the trial runs on CUDA)."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # before Ray starts: it would otherwise send usage statistics
    try:
        import ray
        from ray import tune
    except ImportError:
        raise CatalogError(f"msabench sweep runs its trials on Ray Tune, which is not installed: {INSTALL}.") from None
    folder = Path(folder).absolute()
    storage = storage if storage and "://" in storage else str(Path(storage or folder / "ray").absolute())
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=not quiet)
        else:
            ray.init(
                num_cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                num_gpus=torch.cuda.device_count() if torch.cuda.is_available() else 0,
                include_dashboard=False,
                log_to_driver=not quiet,
            )
    records: dict[str, dict[str, Any]] = {}

    class Keeper(tune.Callback):
        """Writes each trial's JSON in the driver as soon as the trial completes."""

        def on_trial_complete(self, iteration, trials, trial, **info):
            if text := trial.last_result.get("record"):
                record = json.loads(text)
                records[record["trial"]] = record
                keep(folder, record)

    by_id = {spec["id"]: dict(spec) for spec in specs}
    trainable = tune.with_parameters(
        _trainable,
        specs=by_id,
        catalog=catalog,
        method=method,
        data=data,
        protocol=protocol,
        folder=str(folder),
        threads=cpus_per_trial,
        device="cuda" if gpus_per_trial > 0 else "cpu",
        quiet=quiet,
    )
    grid = [{"id": spec["id"], "seed": spec["seed"], **spec["config"]} for spec in specs]
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": cpus_per_trial, "gpu": gpus_per_trial}),
        param_space={"trial": tune.grid_search(grid)},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=max_concurrent,
            trial_name_creator=lambda trial: trial.config["trial"]["id"],
            trial_dirname_creator=lambda trial: trial.config["trial"]["id"],
        ),
        run_config=tune.RunConfig(
            name=f"{name}-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=storage,
            callbacks=[Keeper()],
            failure_config=tune.FailureConfig(max_failures=0),
            verbose=0 if quiet else 1,
        ),
    )
    try:
        results = tuner.fit()
    finally:
        if started_here:
            ray.shutdown()
    errors = []
    for result in results:
        record = (result.metrics or {}).get("record")
        if record:  # also when the callback ran elsewhere (Ray Client: the tuner runs on the cluster)
            record = json.loads(record)
            records[record["trial"]] = record
            keep(folder, record)
        elif result.error is not None:
            trial = (result.config or {}).get("trial", {})
            errors.append(f"trial {trial.get('id')} ({trial}): {type(result.error).__name__}: {result.error}")
    if errors:
        raise TrainingError(
            f"{len(errors)} of {len(specs)} trials failed; the finished ones are kept, so running the same command "
            f"again retries only these. First: {errors[0].splitlines()[0]} (Ray's logs: {storage})"
        )
    if missing := [spec["id"] for spec in specs if spec["id"] not in records]:
        raise TrainingError(
            f"the sweep stopped before {len(missing)} of {len(specs)} trials finished (interrupted?); run the same "
            "command again to continue: finished trials are kept and not rerun."
        )
    return [records[spec["id"]] for spec in specs]


def _trainable(config: dict[str, Any], *, specs: dict, quiet: bool, **context: Any) -> None:
    """A Ray Tune function trainable: one trial, its epochs reported as it goes, its record in the last report."""
    from ray import tune

    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
    spec = specs[config["trial"]["id"]]
    record = fit_trial(spec, report=tune.report, **context)
    tune.report({"done": True, "record": json.dumps(record, allow_nan=False)})


# -- the choice ---------------------------------------------------------------------------------------


def choose(configs: Sequence[Mapping[str, str]], records: Sequence[Mapping[str, Any]]) -> tuple[int, list[dict]]:
    """(index of the chosen configuration, one row per configuration): the best mean selection value over the
    configuration's trial seeds (min or max by the selection's mode); a configuration with a failed or unscored
    trial is out; ties go to the earlier configuration."""
    mode = records[0]["selection"]["mode"]
    rows = []
    for index, config in enumerate(configs):
        own = [record for record in records if record["config"] == dict(config)]
        scores = [record["score"] for record in own]
        scored = all(score is not None for score in scores) and bool(scores)
        rows.append(
            {
                "config": dict(config),
                "trials": [record["trial"] for record in own],
                "seeds": [record["seed"] for record in own],
                "scores": scores,
                "score": float(np.mean(scores)) if scored else None,
                "best_epochs": [record["best_epoch"] for record in own],
                "epochs": [record["epochs"] for record in own],
                "failed": [record["failed"] for record in own if record.get("failed")],
                "index": index,
            }
        )
    candidates = [row for row in rows if row["score"] is not None]
    if not candidates:
        key = records[0]["selection"]["key"]
        raise TrainingError(f"no configuration gave a finite validation {key}: see the trials' failures.")
    sign = 1 if mode == "min" else -1
    best = min(candidates, key=lambda row: (sign * row["score"], row["index"]))
    return best["index"], rows


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """The sweep's table (best first) and its choice."""
    selection = summary["selection"]
    keys = list(summary["grid"])
    ordered = sorted(
        summary["configurations"],
        key=lambda row: (row["score"] is None, (1 if selection["mode"] == "min" else -1) * (row["score"] or 0)),
    )
    table = [
        [
            "✓" if row["index"] == summary["chosen"]["index"] else "",
            *(row["config"][key] for key in keys),
            " / ".join("failed" if score is None else f"{score:.4f}" for score in row["scores"]),
            "—" if row["score"] is None else f"{row['score']:.4f}",
            " / ".join("—" if epoch is None else str(epoch) for epoch in row["best_epochs"]),
            " / ".join(map(str, row["epochs"])),
        ]
        for row in ordered
    ]
    direction = "lower" if selection["mode"] == "min" else "higher"
    headers = ["chosen", *keys, f"valid {selection['key']} per seed", "mean", "best epoch", "epochs"]
    lines = [
        f"# Sweep {summary['sweep']}: {summary['method']} on {summary['dataset']}",
        "",
        f"Protocol `{summary['protocol']}`; {summary['search']}; trial seeds {', '.join(map(str, summary['seeds']))}."
        f" Chosen on the validation split only: the mean over trial seeds of the validation {selection['key']} at "
        f"each trial's selected epoch ({direction} is better); the test split was not evaluated.",
        "",
        tabulate(table, headers=headers, tablefmt="github", disable_numparse=True),
        "",
        f"Chosen: {', '.join(f'{key}={text}' for key, text in summary['chosen']['config'].items())} "
        f"(mean valid {selection['key']} {summary['chosen']['score']:.4f}).",
        "",
        f"Its runs over the protocol's seeds: `{summary['command']}` (as a `tuned` row).",
    ]
    return "\n".join(lines) + "\n"


def tuned_record(summary_path: str | Path, method: str, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """What a tuned run's result records about the sweep that chose its configuration; the run must be that
    method with the chosen values."""
    path = Path(summary_path)
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        record = {
            "sweep": summary["sweep"],
            "summary": str(path.absolute()),
            "search": summary["search"],
            "grid": summary["grid"],
            "configurations": len(summary["configurations"]),
            "trial_seeds": summary["seeds"],
            "selection": summary["selection"],
            "chosen": summary["chosen"]["config"],
            "score": summary["chosen"]["score"],
        }
        chosen, swept = values(record["chosen"]), summary["method"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CatalogError(f"--tuned {path}: not a sweep summary written by msabench sweep ({error}).") from None
    differing = [
        f"{section}.{name}"
        for section, items in chosen.items()
        for name, value in items.items()
        if hparams.get(section, {}).get(name) != value
    ]
    if swept != method or differing:
        raise CatalogError(
            f"--tuned {path}: that sweep chose {', '.join(f'{k}={v}' for k, v in record['chosen'].items())} for "
            f"{swept}; this run is {method}" + (f" with other {', '.join(differing)}." if differing else ".")
        )
    return record


def device_for(device: str, gpus_per_trial: float | None) -> float:
    """GPUs per trial: as given, else one when this machine has CUDA and --device allows it."""
    if gpus_per_trial is not None:
        return gpus_per_trial
    return 1.0 if device != "cpu" and select_device(device).type == "cuda" else 0.0
