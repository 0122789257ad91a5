"""`msabench verify`: the gate a submitted results folder passes before its leaderboards are rendered.

Each result file (``seed-<n>.json``) goes through these checks; each failure names the file, what is wrong and the
fix, and a check that cannot run here says why (skipped, not failed):

- ``schema``: it validates against the result format (`msabench.schema`, ``docs/result.schema.json``);
- ``metrics``: the metrics recomputed from its per-sample predictions (`msabench.metrics.evaluate`) against the
  stored labels, or the dataset's where the labels are withheld, equal the stored ones (to `METRIC_TOLERANCE`);
  where the dataset can be loaded here (generated data, or files under the data root), the stored labels (or their
  digest) equal the dataset's test labels;
- ``versions``: msabench and every plugin distribution it names are installed here at those versions;
- ``data``: each data file it records, where present under the data root, has the SHA-256 it records, and a result
  that claims verified data records the published SHA-256;
- ``protocol``: its protocol id is what the protocol's settings give (`msabench.protocol.Protocol.id`), the protocol
  is this msabench's, and the file lies in that protocol's folder;
- ``sweep``: a tuned row's sweep (its ``summary.json`` and the trials beside it) chose on the validation split
  alone: no trial holds a test metric;
- ``stages``: each earlier run a multi-stage result started from exists and has the SHA-256 it records;
- ``rerun`` (with ``rerun=N``): N result files drawn from the folder (seeded) are trained again from their recorded
  request (or the command rebuilt from them, `msabench.command`), with the recorded thread count, into a
  temporary folder: on the CPU their metrics and predictions must be bit-identical; a run recorded on a GPU must
  give every metric within `msabench.rerun.GPU_TOLERANCE`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tabulate import tabulate

from msabench import schema
from msabench.command import variant_parts
from msabench.errors import MsabenchError
from msabench.integrity import sha256
from msabench.metrics import evaluate
from msabench.paths import data_root as default_data_root
from msabench.protocol import PROTOCOL, Protocol
from msabench.rerun import number, same
from msabench.rerun import rerun as rerun_one
from msabench.results import RunResult, result_files, result_path

CHECKS = ("schema", "metrics", "versions", "data", "protocol", "sweep", "stages", "rerun")
METRIC_TOLERANCE = 1e-9  # recomputed vs stored metrics: the same code on the same numbers, up to summation order
HOST_DATA_OPTIONS = ("train_fraction", "train_fraction_seed")  # options that leave the test split as it is

log = logging.getLogger("msabench")


@dataclass(frozen=True)
class Outcome:
    """One check on one file: ``pass``, ``fail`` (the message says what and the fix) or ``skip`` (and why)."""

    check: str
    status: str
    message: str = ""


@dataclass
class FileReport:
    path: Path  # as shown: relative to the results folder
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(outcome.status != "fail" for outcome in self.outcomes)

    def status(self, check: str) -> str | None:
        return next((o.status for o in self.outcomes if o.check == check), None)


@dataclass
class Report:
    """What `verify` found: per file, each check's outcome; `passed` is the verdict."""

    root: Path
    files: list[FileReport]
    reruns: int = 0

    @property
    def passed(self) -> bool:
        return bool(self.files) and all(report.passed for report in self.files)

    def failures(self) -> list[str]:
        """One line per failed check: ``<file>: <check>: <what is wrong and the fix>``."""
        return [
            f"{report.path}: {outcome.check}: {outcome.message}"
            for report in self.files
            for outcome in report.outcomes
            if outcome.status == "fail"
        ]

    def table(self) -> str:
        """One row per file, one column per check: ok, FAIL or - (skipped or not applicable)."""
        checks = [c for c in CHECKS if any(r.status(c) for r in self.files)]
        marks = {"pass": "ok", "fail": "FAIL", "skip": "-", None: ""}
        rows = [[str(r.path), *(marks[r.status(c)] for c in checks)] for r in self.files]
        return tabulate(rows, headers=["result", *checks], tablefmt="github", disable_numparse=True)

    def text(self) -> str:
        """Failures, then the skipped checks' reasons once each, then the table and the verdict."""
        lines = [f"FAIL {line}" for line in self.failures()]
        reasons = sorted({f"{o.check}: {o.message}" for r in self.files for o in r.outcomes if o.status == "skip"})
        if reasons:
            lines += ["", "Skipped:", *(f"  {reason}" for reason in reasons)]
        passed = sum(report.passed for report in self.files)
        verdict = "PASSED" if self.passed else "FAILED"
        if not self.files:
            summary = f"verify FAILED: no result files (seed-*.json) under {self.root}"
        else:
            summary = f"verify {verdict}: {passed} of {len(self.files)} result files under {self.root} pass"
            if self.reruns:
                summary += f" ({self.reruns} rerun)"
        return "\n".join([*lines, "", self.table(), "", summary]).lstrip("\n") + "\n"


def verify(
    results_dir: str | Path,
    *,
    rerun: int = 0,
    rerun_seed: int = 0,
    data_root: str | Path | None = None,
    sweeps: Sequence[str | Path] = (),
    program: Sequence[str] | None = None,
    timeout: float | None = None,
    catalog: Any = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Check every result file under `results_dir` (see the module's docstring); with `rerun` > 0, also train that
    many of them again (drawn with `rerun_seed`). `data_root` is where datasets are looked for (default: the usual
    data root); `sweeps` are more folders to find a tuned row's sweep in (besides the results folder and the path
    the row records); `program` is the msabench command for reruns (default: this Python's ``-m msabench``);
    `catalog` the installed components (built from the installed plugins when first needed)."""
    root = Path(results_dir)
    context = _Context(root, default_data_root(data_root), [root, *map(Path, sweeps)], catalog)
    reports = []
    loaded: dict[Path, tuple[RunResult, dict | None]] = {}
    for path in result_files(root):
        report, checked = _check_file(path, context)
        reports.append(report)
        if checked is not None:
            loaded[path] = checked
    if rerun > 0 and loaded:
        drawn = random.Random(rerun_seed).sample(sorted(loaded), min(rerun, len(loaded)))
        by_path = {root / r.path: r for r in reports}
        for path in sorted(drawn):
            if progress is not None:
                progress(f"rerun {path.relative_to(root)} ...")
            result, request = loaded[path]
            problem = rerun_one(
                result,
                request,
                data_root=context.data_root,
                program=program or (sys.executable, "-m", "msabench"),
                timeout=timeout,
            )
            by_path[path].outcomes.append(Outcome("rerun", "fail", problem) if problem else Outcome("rerun", "pass"))
    for report in reports:  # a check no file reached is shown as not applicable
        report.outcomes.sort(key=lambda o: CHECKS.index(o.check))
    return Report(root, reports, reruns=min(rerun, len(loaded)) if rerun > 0 else 0)


@dataclass
class _Context:
    root: Path
    data_root: Path
    sweep_folders: list[Path]
    catalog: Any = None
    labels: dict[str, dict[str, Any] | str] = field(default_factory=dict)  # dataset -> {id: label} or why not

    def installed(self):
        if self.catalog is None:
            from msabench.catalog import Catalog
            from msabench.plugins import get_plugin_manager

            self.catalog = Catalog.from_plugins(get_plugin_manager())
        return self.catalog


def _check_file(path: Path, context: _Context) -> tuple[FileReport, tuple[RunResult, dict | None] | None]:
    report = FileReport(path.relative_to(context.root))
    data, problems = schema.load(path)
    if not problems:
        problems = schema.validate(data)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        report.outcomes.append(
            Outcome(
                "schema",
                "fail",
                f"{'; '.join(problems[:3])}{more}. The file does not follow docs/result.schema.json: results are "
                "written by `msabench run`, never edited; run it again.",
            )
        )
        return report, None
    report.outcomes.append(Outcome("schema", "pass"))
    result, request = schema.to_result(data)
    for check in (_metrics, _versions, _data, _protocol, _sweep, _stages):
        try:
            report.outcomes.append(check(result, path, context))
        except (MsabenchError, OSError, ValueError, KeyError, TypeError) as error:  # a check that cannot finish fails
            name = check.__name__.lstrip("_")
            report.outcomes.append(Outcome(name, "fail", f"could not be checked ({type(error).__name__}: {error})"))
    return report, (result, request)


# -- metrics ------------------------------------------------------------------------------------------------


def _metrics(result: RunResult, path: Path, context: _Context) -> Outcome:
    predictions = result.predictions
    stored = predictions.get("labels")
    expected = result.data.get("labels_sha256")
    reference = _dataset_labels(result, context)
    notes = []
    if isinstance(reference, dict):
        missing = [i for i in predictions["ids"] if i not in reference]
        if missing:
            return Outcome(
                "metrics",
                "fail",
                f"{len(missing)} of the result's test ids are not in {result.dataset}'s test split (e.g. {missing[0]}):"
                " the predictions are not of this dataset's test split; rerun it on this data.",
            )
        truth = [reference[i] for i in predictions["ids"]]
        if stored is not None and stored != truth:
            rows = [i for i, (a, b) in enumerate(zip(stored, truth, strict=True)) if a != b]
            first = rows[0]
            return Outcome(
                "metrics",
                "fail",
                f"{len(rows)} stored labels differ from {result.dataset}'s test labels (e.g. id "
                f"{predictions['ids'][first]}: stored {stored[first]}, the data has {truth[first]}): the labels were "
                "edited or belong to other data; rerun it.",
            )
        if expected is not None and schema.labels_digest(truth) != expected:
            return Outcome(
                "metrics",
                "fail",
                f"data.labels_sha256 {expected[:12]}... is not the digest of {result.dataset}'s test labels in the "
                f"result's id order ({schema.labels_digest(truth)[:12]}...): rerun it on this data.",
            )
        labels = truth
    elif stored is not None:
        labels = stored
        notes.append(reference)
    else:
        return Outcome("metrics", "skip", f"labels withheld and {reference}: pass --data-root to recompute the metrics")
    recomputed = evaluate(result.task["family"], predictions["predictions"], labels)
    if declared := result.method_info.get("metrics"):  # a method that reports only some of its family's metrics
        recomputed = {key: value for key, value in recomputed.items() if key in declared}
    wrong = [
        key
        for key in sorted(set(recomputed) | set(result.metrics))
        if not same(result.metrics.get(key), recomputed.get(key), METRIC_TOLERANCE)
    ]
    if wrong:
        key = wrong[0]
        others = f" (and {len(wrong) - 1} more: {', '.join(wrong[1:])})" if len(wrong) > 1 else ""
        return Outcome(
            "metrics",
            "fail",
            f"{key} is stored as {number(result.metrics.get(key))} but the stored predictions give "
            f"{number(recomputed.get(key))}{others}: the metrics were edited or the predictions do not belong to "
            "them; rerun it.",
        )
    return Outcome("metrics", "pass")


def _dataset_labels(result: RunResult, context: _Context) -> dict[str, Any] | str:
    """{test id: label} of the result's dataset where it loads here, else why not (a phrase)."""
    options = [part.split("=", 1)[0][len("data.") :] for part in variant_parts(result.variant) if part[:5] == "data."]
    if other := [option for option in options if option not in HOST_DATA_OPTIONS]:
        return f"the run's data options ({', '.join(other)}) are not recorded in full, so its data is not reloaded"
    if result.dataset not in context.labels:
        context.labels[result.dataset] = _load_labels(result.dataset, context)
    return context.labels[result.dataset]


def _load_labels(name: str, context: _Context) -> dict[str, Any] | str:
    catalog = context.installed()
    if name not in catalog.datasets:
        return f"no installed dataset is called {name}"
    dataset = catalog.datasets[name]
    present = dataset.synthetic or all((context.data_root / relative).is_file() for relative in dataset.files)
    if not present:
        return f"{name}'s files are not under {context.data_root}"
    level = log.level
    log.setLevel(logging.ERROR)  # the loader's notes (non-finite values set to 0, ...) are the run's business
    try:
        data = dataset(context.data_root, verify=False).load()
    except MsabenchError as error:
        return f"{name} does not load from {context.data_root} ({error})"
    finally:
        log.setLevel(level)
    test = data.splits["test"]
    return dict(zip(test.ids, test.tensors["label"].tolist(), strict=True))


# -- versions, data, protocol ------------------------------------------------------------------------------


def _versions(result: RunResult, path: Path, context: _Context) -> Outcome:
    wrong = []
    distribution = result.method_info.get("distribution")
    if distribution and distribution not in ("unknown", "msabench") and distribution not in result.versions:
        wrong.append(f"its method's distribution {distribution} has no version recorded")
    for name, recorded in sorted(result.versions.items()):
        if name in schema.RUNTIME:
            continue
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            wrong.append(f"{name} {recorded} is not installed (pip install '{name}=={recorded}')")
            continue
        if installed != recorded:
            wrong.append(
                f"it names {name} {recorded} but {installed} is installed (pip install '{name}=={recorded}', or "
                f"rerun it with {installed} and submit that result)"
            )
    if wrong:
        return Outcome("versions", "fail", "; ".join(wrong))
    return Outcome("versions", "pass")


def _data(result: RunResult, path: Path, context: _Context) -> Outcome:
    files = {relative: digest for relative, digest in (result.data.get("files") or {}).items() if digest}
    if not files:
        return Outcome("data", "skip", "generated data: no files to hash")
    wrong, checked = [], 0
    published = {}
    with contextlib.suppress(Exception):  # a dataset this msabench does not know: nothing published to compare
        published = dict(context.installed().datasets[result.dataset].files)
    for relative, recorded in sorted(files.items()):
        if result.data.get("verified") and published.get(relative) not in (None, recorded):
            wrong.append(
                f"it claims verified data, but records {relative} with SHA-256 {recorded[:12]}... and the published "
                f"file has {published[relative][:12]}...: rerun it on the published file"
            )
        local = context.data_root / relative
        if not local.is_file():
            continue
        checked += 1
        if (digest := sha256(local)) != recorded:
            wrong.append(
                f"{local} has SHA-256 {digest[:12]}... but the run used a file with {recorded[:12]}...: the result "
                "was made on other data; get the file it names (msabench data info) or rerun it on yours"
            )
    if wrong:
        return Outcome("data", "fail", "; ".join(wrong))
    if not checked:
        return Outcome("data", "skip", f"its data files are not under {context.data_root}: pass --data-root")
    return Outcome("data", "pass")


def _protocol(result: RunResult, path: Path, context: _Context) -> Outcome:
    settings = {key: value for key, value in result.protocol.items() if key != "id"}
    known = {f.name for f in fields(Protocol)}
    if unknown := sorted(set(settings) - known):
        return Outcome("protocol", "fail", f"unknown protocol settings {unknown}: not this msabench's protocol")
    protocol = replace(PROTOCOL, **{**settings, "seeds": tuple(settings.get("seeds", PROTOCOL.seeds))})
    if (protocol.name, protocol.version) != (PROTOCOL.name, PROTOCOL.version):
        return Outcome(
            "protocol",
            "fail",
            f"protocol {protocol.name}-{protocol.version} is not this msabench's ({PROTOCOL.name}-{PROTOCOL.version}):"
            " rerun it under this protocol",
        )
    stored = result.protocol.get("id")
    if protocol.id != stored:
        return Outcome(
            "protocol",
            "fail",
            f"the result holds protocol id {stored} but its settings give {protocol.id}: the id or the settings "
            "were edited; rerun it",
        )
    expected = result_path(".", result.dataset, result.method, result.seed, result.variant, protocol=protocol.id)
    if len(path.relative_to(context.root).parts) >= 4 and path.parent.name != expected.parent.name:
        return Outcome(
            "protocol",
            "fail",
            f"the file lies in folder {path.parent.name} but protocol {protocol.id} keeps its results in "
            f"{expected.parent.name}: move it to {expected.as_posix()} under the results folder",
        )
    return Outcome("protocol", "pass")


# -- a tuned row's sweep -----------------------------------------------------------------------------------


def _sweep(result: RunResult, path: Path, context: _Context) -> Outcome:
    tuned = result.tuned
    if not tuned:
        return Outcome("sweep", "skip", "not tuned: no sweep to check")
    name = tuned.get("sweep", "")
    summary_path = _sweep_summary(tuned, context)
    if summary_path is None:
        return Outcome(
            "sweep",
            "fail",
            f"its sweep {name} is not in the submission (no {name}/summary.json under the results folder or "
            "--sweeps): add the sweep's folder (sweeps/<dataset>/<method>/<protocol>/) with its summary and trials",
        )
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    problems = []
    if summary.get("selection", {}).get("split") != "valid":
        problems.append(f"{summary_path} selects on {summary.get('selection')}, not on the validation split")
    if summary.get("chosen", {}).get("config") != tuned.get("chosen"):
        problems.append(
            f"{summary_path} chose {summary.get('chosen', {}).get('config')}, the row says {tuned['chosen']}"
        )
    problems += _trial_problems(summary, summary_path.parent.parent / "trials")
    if found := _test_keys(summary):
        problems.append(f"{summary_path} holds test metrics ({', '.join(found[:3])})")
    if problems:
        return Outcome(
            "sweep",
            "fail",
            "; ".join(problems[:3]) + ": a sweep chooses on the validation split alone and never evaluates the test "
            "split; run the sweep again with `msabench sweep` and submit its folder",
        )
    return Outcome("sweep", "pass")


def _sweep_summary(tuned: dict[str, Any], context: _Context) -> Path | None:
    """A tuned row's sweep summary: at the path the row records, else ``<sweep>/summary.json`` in a sweep folder."""
    name = tuned.get("sweep", "")
    candidates = [Path(tuned["summary"])] if tuned.get("summary") else []
    for folder in context.sweep_folders:
        candidates += sorted(folder.rglob(f"{name}/summary.json")) if folder.is_dir() else []
    return next((candidate for candidate in candidates if candidate.is_file()), None)


def _trial_problems(summary: dict[str, Any], trials: Path) -> list[str]:
    """What is wrong with the trials a sweep summary lists (in `trials`): missing, holding test metrics, or not
    selecting on the validation split."""
    problems = []
    for row in summary.get("configurations", []):
        for trial in row.get("trials", []):
            trial_path = trials / f"{trial}.json"
            if not trial_path.is_file():
                problems.append(f"trial {trial_path} is missing")
                continue
            record = json.loads(trial_path.read_text(encoding="utf-8"))
            if found := _test_keys(record):
                problems.append(f"trial {trial_path} holds test metrics ({', '.join(found[:3])})")
            elif record.get("selection", {}).get("split") != "valid":
                problems.append(f"trial {trial_path} selects on {record.get('selection')}, not validation")
    return problems


# Parts of a trial or summary that describe the run, not its scores (the data's provenance names its test split).
NOT_SCORES = ("data", "hparams", "protocol", "hardware", "versions", "parameters", "config", "grid", "command")


def _test_keys(value: Any, where: str = "") -> list[str]:
    """Where a sweep record holds test-split scores: any key starting with ``test``, or a top-level ``metrics``
    (what a result calls its test metrics), outside the parts that describe the run (`NOT_SCORES`)."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{where}.{key}" if where else str(key)
            if not where and key in NOT_SCORES:
                continue
            if str(key).lower().startswith("test") or (not where and key == "metrics"):
                found.append(here)
            else:
                found += _test_keys(item, here)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _test_keys(item, f"{where}[{index}]")
    return found


# -- stages ------------------------------------------------------------------------------------------------


def _stages(result: RunResult, path: Path, context: _Context) -> Outcome:
    if not result.stages:
        return Outcome("stages", "skip", "no stages: a single-run method")
    problems = []
    for modality, stage in sorted(result.stages.items()):
        found = stage_file(stage["result"], context.root)
        if found is None:
            problems.append(
                f"its {modality} encoder started from the {stage['method']} run {stage['result']}, which is missing: "
                "add that result file to the results folder"
            )
            continue
        digest = hashlib.sha256(found.read_bytes()).hexdigest()
        if digest != stage["sha256"]:
            problems.append(
                f"stage result {found} has SHA-256 {digest[:12]}... but the run started from one with "
                f"{stage['sha256'][:12]}...: the stage was retrained or edited since; rerun this method (it reruns "
                "its stages)"
            )
    if problems:
        return Outcome("stages", "fail", "; ".join(problems))
    return Outcome("stages", "pass")


def stage_file(recorded: str, root: Path) -> Path | None:
    """Where a stage result a run recorded (a path as the run saw it) is now: the path itself, else the same
    ``<dataset>/<row>/<protocol>/seed-<n>.json`` under `root`."""
    path = Path(recorded)
    if path.is_file():
        return path
    moved = root.joinpath(*path.parts[-4:])
    return moved if len(path.parts) >= 4 and moved.is_file() else None
