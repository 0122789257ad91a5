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

import copy
import hashlib
import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tabulate import tabulate

from msabench.components import Data, Method, merge
from msabench.errors import CatalogError, TrainingError
from msabench.protocol import Protocol
from msabench.results import DATA_KEYS, write_atomic
from msabench.runtime import select_device
from msabench.trials import SCHEMA, finished, missing, run_on_ray

if TYPE_CHECKING:
    from msabench.api import Plan

log = logging.getLogger("msabench")


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


# -- the choice ---------------------------------------------------------------------------------------


def choose(configs: Sequence[Mapping[str, str]], records: Sequence[Mapping[str, Any]]) -> tuple[int, list[dict]]:
    """(index of the chosen configuration, one row per configuration): the best mean selection value over the
    configuration's trial seeds (min or max by the selection's mode); a configuration with a failed or unscored
    trial is out; ties go to the earlier configuration."""
    mode = records[0]["selection"]["mode"]
    rows: list[dict[str, Any]] = []
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


def grid(plan: Plan, grids: Sequence[str], samples: int | None = None, seed: int = 0) -> tuple[list[Axis], list]:
    """The grid's axes and the configurations to train (every one, or `samples` drawn with `seed`), each checked
    against the method before any data loads."""
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise CatalogError(f"--samples must be a whole number >= 1; got {samples!r}.")
    if plan.stages:
        raise CatalogError(
            f"{plan.method.name} trains in stages ({', '.join(s.method.name for s in plan.stages)}): sweep each "
            "stage's method on its own, then run this one with the chosen settings (--set STAGE:SECTION.KEY=VALUE)."
        )
    fixed: dict[str, dict[str, Any]] = {}
    for key, value in plan.request.sets.items():
        section, _, name = key.partition(".")
        fixed.setdefault(section, {})[name] = value
    axes = parse_grid(grids, fixed)
    size = len(configurations(axes))
    if samples is not None and samples > size:
        raise CatalogError(f"--samples {samples}: the grid has only {size} configurations; pass at most {size}.")
    configs = configurations(axes, samples, seed)
    for config in configs:
        plan.catalog.check_hparams(plan.method, with_config(plan.hparams.to_dict(), config))
    return axes, configs


def tune(
    plan: Plan,
    data: Data,
    axes: Sequence[Axis],
    configs: Sequence[Mapping[str, str]],
    *,
    seeds: Sequence[int],
    search: str,
    folder: str | Path = "sweeps",
    address: str | None = None,
    cpus_per_trial: int = 1,
    gpus_per_trial: float = 0.0,
    max_concurrent: int | None = None,
    storage: str | None = None,
    quiet: bool = False,
) -> tuple[dict[str, Any], Path]:
    """Train the trials not finished before (on Ray Tune), choose on validation, and write the sweep's summary
    (``summary.json`` and ``summary.md``); returns the summary and its path. The chosen configuration's final runs
    are the caller's (`msabench.api.execute` with its values and ``tuned`` set to the summary)."""
    from msabench.train import resolve_hparams

    folder = Path(folder) / data.name / plan.method.name / plan.protocol.id
    hparams = plan.hparams.to_dict()
    specs: list[dict[str, Any]] = []
    for config in configs:
        for seed in seeds:
            planned = resolve_hparams(with_config(hparams, config), data, seed, plan.protocol, plan.request.results)
            variant = ", ".join(filter(None, [plan.variant, *(f"{k}={v}" for k, v in config.items())]))
            trial = trial_id(plan.method, data, plan.protocol, seed, planned)
            specs.append({"id": trial, "seed": seed, "config": config, "hparams": planned, "variant": variant})
    kept = {spec["id"]: finished(folder, spec["id"]) for spec in specs}
    remaining = [spec for spec in specs if kept[spec["id"]] is None]
    identity = {"grid": {a.key: a.texts for a in axes}, "configs": configs, "seeds": seeds, "trials": list(kept)}
    name = f"sweep-{sweep_id(identity)}"
    log.info(
        "%s: %s x %d trial seed(s) = %d trials; %d finished already (kept), %d to train -> %s",
        name, search, len(seeds), len(specs), len(specs) - len(remaining), len(remaining), folder,
    )  # fmt: skip
    if remaining:
        run_on_ray(
            remaining,
            catalog=plan.catalog,
            method=plan.method,
            data=data,
            protocol=plan.protocol,
            folder=folder,
            name=name,
            address=address,
            cpus_per_trial=cpus_per_trial,
            gpus_per_trial=gpus_per_trial,
            max_concurrent=max_concurrent,
            storage=storage,
            quiet=quiet,
        )
    records = [finished(folder, spec["id"]) or missing(folder, spec) for spec in specs]
    chosen, rows = choose(configs, records)
    sets = {**plan.request.sets, **configs[chosen]}
    summary = {
        "schema": SCHEMA,
        "sweep": name,
        "method": plan.method.name,
        "dataset": data.name,
        "protocol": plan.protocol.id,
        "variant": plan.variant,
        "search": search,
        "grid": {axis.key: list(axis.texts) for axis in axes},
        "seeds": list(seeds),
        "selection": records[0]["selection"],
        "configurations": rows,
        "chosen": rows[chosen],
    }
    path = folder / name / "summary.json"
    summary["command"] = replace(plan.request, sets=sets, tuned=str(path)).command()  # its runs, as a tuned row
    write_atomic(path, json.dumps(summary, indent=1) + "\n")
    write_atomic(path.with_suffix(".md"), summary_markdown(summary))
    return summary, path


def describe_search(axes: Sequence[Axis], configs: Sequence[Mapping[str, str]], seed: int) -> str:
    size = len(configurations(axes))
    if len(configs) < size:
        return f"random search: {len(configs)} of a grid of {size} (seed {seed})"
    return f"grid search: {size} configurations"


def device_for(device: str, gpus_per_trial: float | None) -> float:
    """GPUs per trial: as given, else one when this machine has CUDA and --device allows it."""
    if gpus_per_trial is not None:
        return gpus_per_trial
    return 1.0 if device != "cpu" and select_device(device).type == "cuda" else 0.0
