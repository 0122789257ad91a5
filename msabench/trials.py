"""Sweep trials on Ray Tune: one (configuration, seed) trains and validates as a trial, never tested; its record
(the validation history, the selected epoch and its selection value) is kept as JSON as soon as it finishes, and a
killed trial resumes after its last finished epoch. See `msabench.sweep` for the sweep as a whole."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from msabench.catalog import Catalog
from msabench.components import Data, Method
from msabench.errors import CatalogError, TrainingError
from msabench.protocol import Protocol
from msabench.results import write_atomic
from msabench.resume import restore, save_state, state_key
from msabench.runtime import hardware, set_threads, versions
from msabench.train import assemble, train_epoch, validate

if TYPE_CHECKING:
    from ray.tune import ResultGrid

log = logging.getLogger("msabench")

SCHEMA = 1
INSTALL = "in your msabench checkout, pip install -c constraints.txt -e '.[sweep]'"


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
    check_client(address)
    folder = Path(folder).absolute()
    storage = storage if storage and "://" in storage else str(Path(storage or folder / "ray").absolute())
    started_here = _start_ray(address, quiet)
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
    errors = _gather(results, records, folder)
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


def _start_ray(address: str | None, quiet: bool) -> bool:
    """Connect to Ray at `address`, or start a local Ray with this machine's CPUs and GPUs and no dashboard, unless
    Ray is running already; whether this call started it (and so stops it afterwards)."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=not quiet)
    else:
        ray.init(
            num_cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            num_gpus=torch.cuda.device_count() if torch.cuda.is_available() else 0,
            include_dashboard=False,
            log_to_driver=not quiet,
        )
    return True


def _gather(results: ResultGrid, records: dict[str, dict[str, Any]], folder: Path) -> list[str]:
    """Keep the record of every finished trial in `results` (also when the callback ran elsewhere: with Ray Client
    the tuner runs on the cluster); the failed trials, one line each."""
    errors = []
    for index in range(len(results)):  # a ResultGrid is indexed, as a list, but declares no __iter__
        result = results[index]
        record = (result.metrics or {}).get("record")
        if record:
            record = json.loads(record)
            records[record["trial"]] = record
            keep(folder, record)
        elif result.error is not None:
            trial = (result.config or {}).get("trial", {})
            errors.append(f"trial {trial.get('id')} ({trial}): {type(result.error).__name__}: {result.error}")
    return errors


def check_client(address: str | None) -> None:
    """A ``ray://`` address goes through Ray Client, which needs grpcio (Ray's ``client`` extra, part of msabench's
    ``sweep`` extra): without it, one line saying so, before Ray starts."""
    if address and address.startswith("ray://"):
        try:
            import grpc  # noqa: F401
        except ImportError:
            raise CatalogError(
                f"--address {address} connects through Ray Client, which needs grpcio (ray[client]): {INSTALL}, "
                "or pip install 'ray[client]'."
            ) from None


def _trainable(config: dict[str, Any], *, specs: dict, quiet: bool, **context: Any) -> None:
    """A Ray Tune function trainable: one trial, its epochs reported as it goes, its record in the last report."""
    from ray import tune

    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
    spec = specs[config["trial"]["id"]]
    record = fit_trial(spec, report=tune.report, **context)
    tune.report({"done": True, "record": json.dumps(record, allow_nan=False)})
