"""The results tree's rules, applied to each unit a plan trains, and the pages rendered from it.

- **Skip**: a unit whose result exists for the same data, hyper-parameters, protocol and stages is not trained
  again. **Refuse**: one whose result differs is an error, unless ``overwrite``.
- **Resume**: an interrupted unit continues after its last finished epoch from ``seed-N.resume.pt``; the resume
  state is deleted only after the result (and its checkpoint) are saved.
- **Never lose the previous state**: ``overwrite`` moves the old result and checkpoint aside
  (``seed-N.previous.json`` / ``.previous.pt``) and deletes them only once the new ones are saved; a failure puts
  them back; a run killed in the middle leaves them aside, and the next run puts them back (or, with ``overwrite``,
  resumes the replacement).
- **One process per unit**: a lock beside the result (``.seed-N.json.lock``) makes a second process training the
  same unit wait, then skip it.
- **Pages go where they cannot clobber**: a page records a digest of the results it was rendered from; a run with
  the default leaderboards folder writes the dataset's page there only when that page came from the same results
  folder (or does not exist), and otherwise beside its results.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msabench.components import Callback, Data
from msabench.errors import MsabenchError, RunError
from msabench.leaderboard import page_digest, render, render_dataset, results_digest
from msabench.results import RunResult, differences, protect, resume_path, write_atomic

if TYPE_CHECKING:
    from msabench.api import Plan, Request, Unit
    from msabench.runtime import Distributed
    from msabench.train import Run

try:
    import fcntl
except ImportError:  # Windows: no locks (one process per results folder)
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("msabench")

NOTICE = 25  # a unit's outcome (trained, skipped) and where its page went: shown even with --quiet
DEFAULT_PAGES = "leaderboards"
MIN_FREE = 16 << 20  # bytes an output folder needs before anything loads


def status(unit: Unit) -> str:
    """What executing `unit` would do, as far as the files tell without loading data (`--dry-run`)."""
    from msabench.resume import saved_key

    path = unit.path
    if path.is_file():
        return "result exists: skipped if its data, settings and stages match, refused otherwise"
    if backup(path).is_file():
        return "an interrupted --overwrite left the previous result aside: put back, then as above"
    state = resume_path(path)
    if state.is_file():
        key = saved_key(state)
        return f"resumes its saved state ({'readable' if key else 'unreadable'}: {state.name})"
    return "trains"


def train_unit(
    plan: Plan,
    unit: Unit,
    data: Data,
    *,
    device: Any,
    stages: dict[str, dict[str, str]] | None,
    progress: bool,
    distributed: Distributed | None = None,
    runner: dict[str, Any] | None = None,
) -> RunResult:
    """Run one unit under the rules above and return its result (read back when skipped). `runner` says where it
    runs, as the result records it (``request.runner``; default ``{"kind": "sequential"}``)."""
    writes = distributed is None or distributed.rank == 0
    path = unit.path
    with hold(path) if writes else contextlib.nullcontext():
        if writes:
            prepare(plan, unit, data)
        _barrier(distributed)
        if path.is_file():  # a finished unit: skip it, or refuse a different one
            return _existing(plan, unit, data, stages, writes)
        _check_stage_checkpoints(unit, stages)
        result = _fit(plan, unit, data, device=device, progress=progress, distributed=distributed, writes=writes)
        if stages:
            result.stages = stages
        if plan.tuned and not unit.stage:
            result.tuned = plan.tuned
        result.request = request_record(plan, unit, runner)
        if writes:
            _save(unit, result)
        _barrier(distributed)  # the other ranks read what rank 0 wrote (a stage's result and checkpoint)
        return result


def _existing(plan: Plan, unit: Unit, data: Data, stages: dict | None, writes: bool) -> RunResult:
    """A finished unit's result, when it is the result this unit would make; else a one-line refusal."""
    existing = RunResult.load(unit.path)
    found = differences(
        existing, data=data.provenance, hparams=unit.hparams, protocol=plan.protocol.to_dict(), stages=stages
    )
    if found:
        raise RunError(
            f"{unit.where}: {unit.path} holds a result of another run ({'; '.join(found[:3])}). Pass --overwrite "
            "to replace it, or --results DIR to keep both."
        )
    if writes:
        log.log(NOTICE, "%s: done already (%s); skipped. Pass --overwrite to train it again.", unit.where, unit.path)
    return existing


def _check_stage_checkpoints(unit: Unit, stages: dict[str, dict[str, str]] | None) -> None:
    for modality, stage in (stages or {}).items():
        if not Path(stage["checkpoint"]).is_file():
            raise RunError(
                f"{unit.where}, stage {stage['method']}: {stage['result']} has no checkpoint "
                f"{Path(stage['checkpoint']).name} beside it (made with --no-checkpoints?), and the {modality} "
                "encoder starts from it. Pass --overwrite to train the stages again."
            )


def _fit(
    plan: Plan, unit: Unit, data: Data, *, device: Any, progress: bool, distributed: Distributed | None, writes: bool
) -> RunResult:
    """`fit` for the unit; on a failure, an overwrite's previous result is put back, and a stage's error says how to
    set that stage's settings."""
    from msabench.train import fit

    path = unit.path
    try:
        return fit(
            unit.method,
            data,
            catalog=plan.catalog,
            seed=unit.seed,
            protocol=plan.protocol,
            hparams=unit.hparams,
            variant=unit.variant,
            device=device,
            checkpoint=path.with_suffix(".pt") if unit.keep else None,
            state=resume_path(path),
            progress=progress,
            distributed=distributed,
            callbacks=[Room(path.parent, unit.keep)] if writes else [],
        )
    except BaseException as error:
        if writes:
            put_back(path)  # an overwrite that failed: the previous result stays (its new resume state too)
        if unit.stage and isinstance(error, MsabenchError):
            name = unit.method.name
            raise type(error)(
                f"{unit.where} (its settings: --set {name}:SECTION.KEY=VALUE, "
                f"e.g. --set {name}:text.pretrained=DIR): {error}"
            ) from error
        raise


def _save(unit: Unit, result: RunResult) -> None:
    """Save the result, then (only then) delete the resume state and an overwrite's previous files."""
    path = unit.path
    result.save(path)
    resume_path(path).unlink(missing_ok=True)
    for leftover in (backup(path), backup(path).with_suffix(".pt")):
        leftover.unlink(missing_ok=True)
    summary = "  ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
    log.log(NOTICE, "%s: best epoch %d/%d  %s  -> %s", unit.where, result.best_epoch, result.epochs, summary, path)


def stage_record(unit: Unit) -> dict[str, dict[str, str]]:
    """What the final run records about a finished stage unit, per modality it starts: the stage's method, result
    file, the result's SHA-256 (a retrained stage makes the final result stale) and checkpoint."""
    if unit.stage is None:
        return {}
    record = {
        "method": unit.method.name,
        "result": str(unit.path),
        "sha256": hashlib.sha256(unit.path.read_bytes()).hexdigest(),
        "checkpoint": str(unit.path.with_suffix(".pt")),
    }
    return {modality: dict(record) for modality in unit.stage.modalities}


def prepare(plan: Plan, unit: Unit, data: Data) -> None:
    """Before a unit trains: put back what an interrupted overwrite set aside, or (overwrite) set the old result and
    checkpoint aside and discard a resume state written for other settings."""
    from msabench.resume import key_for, same_key, saved_key

    path, state = unit.path, resume_path(unit.path)
    if not plan.request.overwrite:
        put_back(path)
        return
    if path.is_file():
        for old in (path, path.with_suffix(".pt")):
            if old.is_file():
                os.replace(old, backup(path) if old == path else backup(path).with_suffix(".pt"))
    if state.is_file():
        key = key_for(unit.method.name, unit.variant, data, unit.seed, plan.protocol, unit.hparams)
        if not same_key(saved_key(state), key):
            state.unlink()  # the old settings' unfinished run; one with these settings resumes


def backup(path: Path) -> Path:
    """Where an overwrite keeps the previous result until the new one is saved (its checkpoint: ``.pt`` beside)."""
    return path.with_name(path.name.removesuffix(".json") + ".previous.json")


def put_back(path: Path) -> None:
    """Restore a result (and checkpoint) that an overwrite set aside, when no new result replaced it."""
    kept = backup(path)
    if kept.is_file() and not path.is_file():
        if kept.with_suffix(".pt").is_file():
            os.replace(kept.with_suffix(".pt"), path.with_suffix(".pt"))
        os.replace(kept, path)
        log.info("%s: put back the previous result, which an interrupted --overwrite had set aside", path)


@contextlib.contextmanager
def hold(path: Path) -> Iterator[None]:
    """Hold the unit's lock (``.seed-N.json.lock`` beside its result) while it trains; a second process asking for
    it waits, and then finds the result."""
    if fcntl is None:
        yield
        return
    lock = path.parent / f".{path.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(descriptor, 200, 0).decode(errors="replace").strip() or "another process"
            log.info("%s is being trained by %s; waiting for it to finish", path, owner)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:  # the holder deletes the file when done: the lock counts only if it is still the file at `lock`
            if os.fstat(descriptor).st_ino == os.stat(lock).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(descriptor)
    try:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{socket.gethostname()} pid {os.getpid()}\n".encode(), 0)
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(descriptor)


def request_record(plan: Plan, unit: Unit, runner: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a result records about the request that made it, so it can be made again from itself, and where it ran:
    ``runner`` is ``{"kind": "sequential" | "worker" | "ray", "host": ...}`` (a Ray task adds its ``node``)."""
    from datetime import UTC, datetime

    from msabench.runtime import source_commit

    commit, dirty = source_commit()
    hparams = unit.stage.hparams if unit.stage else plan.hparams
    return {
        "command": plan.request.command(seeds=[unit.seed], threads=plan.threads),
        "commit": commit,
        "dirty": dirty,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "threads": plan.threads,
        "stage_of": plan.method.name if unit.stage else None,
        "sources": hparams.sources(),
        "runner": {"kind": "sequential", **(runner or {}), "host": socket.gethostname()},
    }


class Room(Callback):
    """Before the first epoch: the folder has room for the checkpoint and the resume state (their size is known
    once the model is built); a full disk is an error now, not after an epoch."""

    def __init__(self, folder: Path, checkpoint: bool):
        self.folder, self.checkpoint = folder, checkpoint

    def on_fit_start(self, run: Run) -> None:
        weights = sum(t.numel() * t.element_size() for t in run.model.state_dict().values())
        optimizer = sum(p.numel() * p.element_size() * 2 for g in run.optimizer.param_groups for p in g["params"])
        needed = weights * (2 + self.checkpoint) + optimizer  # resume state: weights, best weights, optimizer
        free = shutil.disk_usage(self.folder).free
        if free < needed:
            raise RunError(
                f"{self.folder} has {free / 2**20:.0f} MiB free; this run's checkpoint and resume state need about "
                f"{needed / 2**20:.0f} MiB. Free some space or pass --results DIR on another disk."
            )


# -- output folders and pages -----------------------------------------------------------------------


def check_outputs(*folders: str | os.PathLike, create: bool = False) -> None:
    """Each folder can be written (created if it does not exist), with some room, before any data loads; else a
    one-line error. Without `create`, nothing is written (the plan step); with it, the folders are made and a file
    written and removed in each (a read-only mount that permissions do not show)."""
    for folder in map(Path, folders):
        existing = next((p for p in (folder, *folder.absolute().parents) if p.exists()), Path("/"))
        try:
            if not existing.is_dir():
                raise NotADirectoryError(0, f"{existing} is a file, not a folder")
            if not os.access(existing, os.W_OK | os.X_OK):
                raise PermissionError(0, f"{existing} is not writable")
            if create:
                folder.mkdir(parents=True, exist_ok=True)
                probe = folder / f".msabench-write-test-{os.getpid()}"
                probe.write_bytes(b"")
                probe.unlink()
        except OSError as error:
            raise RunError(
                f"cannot write to {folder} ({error.strerror or error}); pass a writable folder "
                "(--results DIR / --leaderboards DIR)."
            ) from None
        if (free := shutil.disk_usage(existing).free) < MIN_FREE:
            raise RunError(f"{folder} has only {free >> 10} KiB free; free some space or write elsewhere.")


def page_folder(request: Request, dataset: str) -> Path:
    """Where a run renders `dataset`'s page: ``--leaderboards`` when given; else ``./leaderboards`` when its page for
    the dataset does not exist or was rendered from this run's results folder, and otherwise beside the results
    (``<results>/<dataset>.md``), so that a page rendered from other results is never replaced by this folder's."""
    if request.leaderboards is not None:
        return Path(request.leaderboards)
    page = Path(DEFAULT_PAGES) / f"{dataset}.md"
    if not page.is_file():
        return Path(DEFAULT_PAGES)
    recorded = page_digest(page.read_text(encoding="utf-8"))
    current = results_digest([r for r in valid_results(request.results) if r.dataset == dataset])
    if recorded == current:
        return Path(DEFAULT_PAGES)
    log.warning(
        "%s was rendered from other results than %s; this run's page goes to %s (pass --leaderboards DIR to choose)",
        page,
        request.results,
        Path(request.results) / f"{dataset}.md",
    )
    return Path(request.results)


def write_page(results: str | os.PathLike, folder: str | os.PathLike, dataset: str) -> Path:
    """Render `dataset`'s page from the results under `results` into `folder`."""
    path = Path(folder) / f"{dataset}.md"
    protect(path)
    write_atomic(path, render_dataset(dataset, [r for r in valid_results(results) if r.dataset == dataset]))
    log.log(NOTICE, "Leaderboard: %s", path)
    return path


def render_pages(
    results: str | os.PathLike,
    out: str | os.PathLike,
    *,
    write: bool = True,
    datasets: tuple[str, ...] = (),
    charts: bool = True,
    robustness: bool = False,
) -> dict[str, str]:
    """Every dataset's page from the result files under `results` (with its chart and robustness table when asked)
    as it belongs in `out` (charts are linked from ``out/charts``), written there unless `write` is false;
    {dataset: page}."""
    from msabench.plot import leaderboard_charts  # matplotlib loads only for the commands that draw
    from msabench.results import result_files
    from msabench.robustness import read, report_path

    if not Path(results).is_dir():
        raise RunError(f"no results folder {results}: run `msabench run` first, or pass --results.")
    found = valid_results(results)
    links = leaderboard_charts(found, Path(out) / "charts", draw=charts and write, only=datasets)
    reports = [read(report_path(p)) for p in result_files(results) if report_path(p).is_file()] if robustness else []
    pages = render(found, links, reports)
    if not pages:
        raise RunError(f"no result files (seed-*.json) under {results}.")
    if missing := [name for name in datasets if name not in pages]:
        raise RunError(f"no results for {', '.join(missing)} under {results}; results cover {', '.join(pages)}.")
    pages = {name: page for name, page in pages.items() if not datasets or name in datasets}
    for name, page in pages.items() if write else ():
        protect(Path(out) / f"{name}.md")
        write_atomic(Path(out) / f"{name}.md", page)
    return pages


def stale_pages(pages: dict[str, str], out: str | os.PathLike, *, every: bool) -> list[str]:
    """The pages under `out` that differ from `pages` (and, with `every`, leaderboard pages whose results are gone)."""
    stale = [
        str(path)
        for name, page in pages.items()
        if not (path := Path(out) / f"{name}.md").is_file() or path.read_text(encoding="utf-8") != page
    ]
    if every:
        stale += sorted(
            str(path)
            for path in Path(out).glob("*.md")
            if path.stem not in pages and path.read_text(encoding="utf-8").startswith("# Leaderboard: ")
        )
    return stale


def valid_results(results: str | os.PathLike) -> list[RunResult]:
    """The valid results under `results`; each invalid file is a warning (listed, never ranked)."""
    from msabench.schema import read_valid

    if not Path(results).is_dir():
        return []
    valid, invalid = read_valid(results)
    for path, problems in invalid:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        log.warning(
            "Warning: skipped %s, which is not a valid result: %s%s. It is not ranked; `msabench verify %s` lists "
            "every problem.",
            path,
            problems[0],
            more,
            results,
        )
    return [result for _, result in valid]


def _barrier(distributed: Distributed | None) -> None:
    if distributed is not None:
        import torch

        torch.distributed.barrier()
