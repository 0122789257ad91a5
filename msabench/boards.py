"""Whole leaderboards in parallel (`msabench reproduce`): many runs' units trained at once by local worker processes
or as Ray tasks, each with the numbers it would have had in one `msabench run` after another.

    from msabench.api import Request
    from msabench.boards import reproduce

    report = reproduce([Request("tfn", "synthetic-mosi"), Request("dmmsa", "synthetic-sims")], workers=2)
    print(report.text())

- **Units.** Every request (a line of a runs file) is planned first (`msabench.api.plan`): a mistake in any line stops
  everything before anything trains. Each seed of a plan gives its units (`Plan.units`: the stage runs, then the final
  run). A unit that several lines share (dmmsa's stage runs, which its ablations reuse) is trained once; two different
  units writing one result file run one after the other, in the file's order. A final unit starts when its seed's
  stage units have finished; when one of them failed it does not start, and counts as failed.
- **Absent data.** A line whose dataset is not generated (synthetic) and lacks a file it declares (`Dataset.files`,
  under the dataset's folder) is skipped with a message naming the file; the other lines go on. A dataset that
  declares no files (``mmsa-custom``, whose file is an option) is loaded, and a load error fails its line's units.
- **Data.** The driver loads a line's data once, when its first unit is due (or is found done), and hands it with the
  plan to that line's units: a pickle file for local workers, one object in Ray's object store for Ray tasks; it is
  dropped when the line's last unit has finished.
- **Rules.** Every unit goes through `msabench.store.train_unit`, so the skip / refuse / resume / never-overwrite rules
  and the per-seed lock apply unchanged. A unit whose result exists is checked (skipped, or refused) by the driver
  itself: no process starts for it.
- **Local workers** (the default): at most `workers` units at a time (default: this machine's CPUs), each in a process
  of its own, forked from a server process that imported torch and msabench once (``multiprocessing``'s forkserver;
  spawned where there is none), with the line's torch thread count (1 unless the line says ``--threads``). A unit
  whose process crashes or is killed (out of memory) fails alone, and the others go on. The workers die with the
  driver (a pipe to it closes); running the same command again resumes each unit after its last finished epoch. As
  with any ``multiprocessing`` program, a script that calls `reproduce` guards it with ``if __name__ == "__main__":``.
- **Ray** (`address`): ``"local"`` starts Ray on this machine as `msabench sweep` does (usage statistics off, no
  dashboard); ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:10001"`` joins a cluster. Units are Ray tasks with
  `cpus_per_run` CPUs (default: the highest thread count of the lines; torch uses the line's thread count whatever
  the reservation, since the count changes the numbers) and `gpus_per_run` GPUs (a fraction shares one; with any,
  the task trains on CUDA). At most as many run at once as the cluster's CPUs (and GPUs) hold, and `workers` when
  given. **Tasks write their results themselves**, with the same atomic writes and lock: the results and logs
  folders and the working directory must be at the same path on every node (one machine, or shared storage such as
  NFS); a task on a node that does not see them fails with that message.
- **Determinism.** A unit's data is the loaded data itself, its thread count the line's, and `fit` seeds everything: on
  the CPU its metrics are bit-identical whether it ran in `msabench run`, a local worker or a Ray task. The result
  records where it ran in ``request.runner`` (``kind`` sequential / worker / ray, ``host``, a Ray task's ``node``).
- **Progress.** One bar (units done / total, running, failed, an ETA from the finished units' times) on a terminal, a
  line per finished unit, each unit's log in its own file (`logs`, mirroring the results tree: ``seed-N.log``), and a
  `Report` at the end: units trained, resumed, skipped and failed, each failure with the command that resumes it. The
  leaderboard pages of the datasets trained are rendered once, at the end.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import shlex
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from msabench import store
from msabench.api import Plan, Request, Unit, load_catalog, plan
from msabench.catalog import Catalog
from msabench.components import Data, Dataset
from msabench.errors import MsabenchError, RequestError
from msabench.results import result_files
from msabench.store import DEFAULT_PAGES, NOTICE, check_outputs, page_folder, status
from msabench.workers import OnRay, Workers, cpus, run_unit

log = logging.getLogger("msabench")

DONE = ("trained", "resumed", "skipped")


@dataclass(eq=False)
class Line:
    """One request, planned: its name (``runs.txt:3``), and the data files it lacks on this machine."""

    name: str
    request: Request
    plan: Plan
    missing: tuple[Path, ...] = ()
    data: Data | None = None  # while its units run: the data, and the pickled (plan, data) that goes to them, a
    payload: Any = None  # file (local workers) or a Ray object
    data_name: str = ""
    error: str = ""  # why its data did not load
    left: int = 0  # its units not finished yet

    @property
    def label(self) -> str:
        return f"{self.name} ({self.request.method} on {self.request.dataset})"


@dataclass(eq=False)
class Job:
    """One unit to train, with the units it waits for, and what became of it."""

    line: Line
    seed: int
    index: int  # in `Plan.units(seed)`
    unit: Unit
    after: list[Job] = field(default_factory=list)
    shared: list[Line] = field(default_factory=list)  # other lines whose unit this is as well
    state: str = "waiting"  # then running, and one of DONE or failed
    error: str = ""
    seconds: float = 0.0
    log: Path | None = None

    @property
    def where(self) -> str:
        return f"{self.line.label}, {self.unit.where}"

    def resume(self) -> str:
        """The command that trains this unit again (resuming after its last finished epoch) into the same folders."""
        request = self.line.request
        words = [request.command(seeds=[self.seed]), "--results", shlex.quote(request.results)]
        words += ["--leaderboards", shlex.quote(request.leaderboards)] if request.leaderboards else []
        return " ".join(words + ([] if request.checkpoints else ["--no-checkpoints"]))


@dataclass
class Report:
    """What a reproduction did: every job, the lines skipped for absent data, the pages rendered, the wall time."""

    jobs: list[Job]
    absent: list[Line]
    pages: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, state: str) -> int:
        return sum(job.state == state for job in self.jobs)

    @property
    def failed(self) -> list[Job]:
        return [job for job in self.jobs if job.state == "failed"]

    def text(self) -> str:
        counts = ", ".join(f"{self.count(state)} {state}" for state in (*DONE, "failed"))
        lines = [f"{len(self.jobs)} units in {_duration(self.seconds)}: {counts}."]
        lines += [
            f"Skipped {line.label}: its data is not on this machine (no {line.missing[0]})." for line in self.absent
        ]
        for job in self.failed:
            lines.append(f"Failed: {job.where}: {job.error}")
            lines.append(f"  resume: {job.resume()}" + (f"  (log: {job.log})" if job.log and job.log.is_file() else ""))
        return "\n".join(lines)


def lines(requests: Sequence[Request], names: Sequence[str] = (), *, catalog: Catalog | None = None) -> list[Line]:
    """Plan every request (an error names its line); note the ones whose data is absent here."""
    catalog = catalog if catalog is not None else load_catalog()
    planned = []
    for number, request in enumerate(requests, 1):
        name = names[number - 1] if number <= len(names) else f"request {number}"
        try:
            found = plan(request, catalog=catalog)
        except MsabenchError as error:
            raise RequestError(f"{name}: {error}") from None
        planned.append(Line(name, request, found, tuple(missing_files(found.dataset))))
    return planned


def missing_files(dataset: Dataset) -> list[Path]:
    """The files `dataset` declares that are not on this machine (none for generated data)."""
    if dataset.synthetic:
        return []
    folder = Path(getattr(dataset, "directory", dataset.root))
    return [folder / relative for relative in dataset.files if not (folder / relative).is_file()]


def expand(planned: Sequence[Line]) -> list[Job]:
    """The units of every line with data, in order: shared units once, a final unit after its stage units, and a
    unit after an earlier, different one with the same result file."""
    jobs: list[Job] = []
    by_path: dict[Path, tuple[str, Job]] = {}
    for line in planned:
        if line.missing:
            continue
        for seed in line.plan.seeds:
            stages: list[Job] = []
            for index, unit in enumerate(line.plan.units(seed)):
                identity = _identity(line.request, unit)
                earlier = by_path.get(unit.path)
                if earlier is not None and earlier[0] == identity:
                    job = earlier[1]
                    job.shared.append(line)
                else:
                    job = Job(line, seed, index, unit, after=[] if unit.stage else list(stages))
                    job.after += [earlier[1]] if earlier is not None else []
                    by_path[unit.path] = (identity, job)
                    jobs.append(job)
                    line.left += 1
                if unit.stage:
                    stages.append(job)
    return jobs


def describe(planned: Sequence[Line], jobs: Sequence[Job]) -> str:
    """What `reproduce` would do, one line per unit (``--dry-run``)."""
    text = [f"{len(jobs)} units from {len(planned)} lines"]
    text += [
        f"{line.label}: skipped, its data is not on this machine (no {line.missing[0]})"
        for line in planned
        if line.missing
    ]
    for job in jobs:
        also = f" (also {', '.join(line.name for line in job.shared)})" if job.shared else ""
        text.append(f"  {job.where}{also}: {status(job.unit)} -> {job.unit.path}")
    return "\n".join(text)


def reproduce(
    requests: Sequence[Request],
    names: Sequence[str] = (),
    *,
    workers: int | None = None,
    address: str | None = None,
    cpus_per_run: float | None = None,
    gpus_per_run: float = 0.0,
    logs: str | os.PathLike = "logs",
    progress: bool = True,
    catalog: Catalog | None = None,
) -> Report:
    """Train every unit of `requests` (see the module's docstring), render their datasets' pages once, and report.
    `names` label the requests in messages (``runs.txt:3``). Failed units are in `Report.failed`; nothing raises for
    them."""
    started = time.perf_counter()
    if workers is not None and workers < 1:
        raise RequestError(f"--workers must be at least 1; got {workers}.")
    if gpus_per_run < 0 or (cpus_per_run is not None and cpus_per_run <= 0):
        raise RequestError("--cpus-per-run must be above 0 and --gpus-per-run at least 0.")
    planned = lines(requests, names, catalog=catalog)
    jobs = expand(planned)
    for line in planned:
        if line.missing:
            log.warning("%s: skipped, its data is not on this machine (no %s)", line.label, line.missing[0])
    folders = sorted({line.request.results for line in planned} | {str(logs)})
    check_outputs(*folders, *{line.request.leaderboards or DEFAULT_PAGES for line in planned})
    for job in jobs:
        job.log = Path(logs) / job.unit.path.relative_to(job.line.request.results).with_suffix(".log")
    threads = max((line.plan.threads for line in planned), default=1)
    with contextlib.ExitStack() as stack:
        if address is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="msabench-reproduce-"))
            backend: Workers | OnRay = Workers(workers or cpus(), folder, _plugins(planned))
        else:
            backend = OnRay(address, cpus_per_run or threads, gpus_per_run, workers, folders)
        stack.callback(backend.close)
        _Driver(jobs, backend, progress).run()
    report = Report(jobs, [line for line in planned if line.missing], seconds=time.perf_counter() - started)
    report.pages = render_pages(planned)
    return report


def render_pages(planned: Sequence[Line]) -> list[Path]:
    """The pages (with their charts) of the datasets the lines trained, once each, from the results folder they wrote
    to, as `msabench leaderboard` renders them (`--leaderboards`, else where `msabench run` would put them)."""
    wanted: dict[tuple[str, Path], list[str]] = {}
    for line in planned:
        name = line.data_name or line.plan.name
        if not line.missing and any(True for _ in result_files(Path(line.request.results) / name)):
            names = wanted.setdefault((line.request.results, page_folder(line.request, name)), [])
            names += [] if name in names else [name]
    written = []
    for (results, folder), names in wanted.items():
        written += [Path(folder) / f"{name}.md" for name in store.render_pages(results, folder, datasets=tuple(names))]
    for page in written:
        log.log(NOTICE, "Leaderboard: %s", page)
    return written


# -- the driver -------------------------------------------------------------------------------------------


class _Driver:
    """Starts every job whose units before it are done while the backend has room, and collects what finishes: one
    bar (done / total, running, failed, an ETA from the units trained so far) and a line per finished unit."""

    def __init__(self, jobs: list[Job], backend: Workers | OnRay, progress: bool):
        self.jobs, self.backend, self.done = jobs, backend, 0
        self.times: list[float] = []
        self.bar = tqdm(total=len(jobs), desc="reproduce", unit="unit", disable=None if progress else True)

    def run(self) -> None:
        waiting = list(self.jobs)
        try:
            while waiting or self.backend.running:
                room = self.backend.free()
                for job in list(waiting):
                    if failed := [earlier for earlier in job.after if earlier.state == "failed"]:
                        waiting.remove(job)
                        self.finish(job, {"state": "failed", "error": f"not started: {failed[0].unit.where} failed"})
                    elif room > 0 and all(earlier.state in DONE for earlier in job.after):
                        waiting.remove(job)
                        room -= self.start(job)
                for job, outcome in self.backend.wait(1.0 if self.backend.running else 0.0):
                    self.finish(job, outcome)
                self.show()
        finally:
            self.bar.close()

    def start(self, job: Job) -> bool:
        """Start `job` (True), or settle it here (False): its line's data did not load, or its result exists (the
        driver checks it: skipped, or refused when it is another run's)."""
        line = job.line
        if line.data is None and not line.error:
            _load(line, self.backend)
        if line.error:
            self.finish(job, {"state": "failed", "error": line.error})
            return False
        assert line.data is not None and job.log is not None  # loaded above; set by reproduce
        if job.unit.path.is_file():
            with _quiet():  # its own line says it
                outcome = run_unit(line.plan, line.data, job.seed, job.index, device="cpu", runner={"kind": "driver"})
            self.finish(job, outcome)
            return False
        job.state = "running"
        job.log.parent.mkdir(parents=True, exist_ok=True)
        device, results = line.request.device, line.request.results
        self.backend.start(job, line.payload, job.seed, job.index, device=device, logfile=job.log, results=results)
        return True

    def finish(self, job: Job, outcome: dict[str, Any]) -> None:
        job.state, job.error, job.seconds = outcome["state"], outcome.get("error", ""), outcome.get("seconds", 0.0)
        job.line.left -= 1
        if job.line.left == 0 and job.line.payload is not None:  # the data goes once the line's units are done
            self.backend.drop(job.line.payload)
            job.line.data = job.line.payload = None
        self.done += 1
        self.bar.update(1)
        done = f"[{self.done}/{len(self.jobs)}] {job.where}"
        if job.state == "failed":
            where_logged = f" (log: {job.log})" if job.log and job.log.is_file() else ""
            log.error("%s: failed: %s%s", done, job.error, where_logged)
        elif job.state == "skipped":
            log.log(NOTICE, "%s: done already; skipped", done)
        else:
            self.times.append(job.seconds)
            shown = "  ".join(f"{key} {value:.4f}" for key, value in outcome["metrics"].items())
            took = _duration(job.seconds)
            log.log(NOTICE, "%s: %s in %s, best epoch %d  %s", done, job.state, took, outcome["best"], shown)

    def show(self) -> None:
        running = sum(job.state == "running" for job in self.jobs)
        failed = sum(job.state == "failed" for job in self.jobs)
        left = len(self.jobs) - self.done
        mean = sum(self.times) / len(self.times) if self.times else 0
        eta = f"~{_duration(mean * left / self.backend.slots())}" if self.times and left else "?"
        self.bar.set_postfix_str(f"{running} running, {failed} failed, eta {eta}", refresh=False)


def _load(line: Line, backend: Workers | OnRay) -> None:
    try:
        data = line.plan.load()
    except MsabenchError as error:
        line.error = f"its data did not load: {error}"
        log.error("%s: %s", line.label, line.error)
        return
    line.data, line.data_name = data, data.name
    line.payload = backend.put(pickle.dumps((line.plan, data), protocol=pickle.HIGHEST_PROTOCOL))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)


def _identity(request: Request, unit: Unit) -> str:
    """What decides a unit's result besides its file: two lines' units are one job when these agree."""
    parts = [unit.method.name, unit.hparams, unit.variant, unit.keep, request.data_root, request.verify]
    parts += [dict(request.data_options), request.overwrite, request.device, request.precision, request.threads]
    return json.dumps(parts, sort_keys=True, default=str)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def _plugins(planned: Sequence[Line]) -> list[str]:
    """The modules of the catalog's components (the plugins), which a unit imports when it unpickles its plan."""
    catalogs = {id(line.plan.catalog): line.plan.catalog for line in planned}.values()
    kinds = ("datasets", "encoders", "fusions", "objectives")
    return sorted({c.__module__ for g in catalogs for k in kinds for c, _ in getattr(g, k).entries.values()})
