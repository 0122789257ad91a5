"""Whole leaderboards in parallel (`msabench reproduce`): many runs' units trained at once by local worker processes
or as Ray tasks, each with the numbers it would have had in one `msabench run` after another.

    from msabench.api import Request
    from msabench.reproduce import reproduce

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
  `cpus_per_run` CPUs (default: the line's thread count; torch uses the line's thread count whatever the reservation,
  since the count changes the numbers) and `gpus_per_run` GPUs (a fraction shares one; with any, the task trains on
  CUDA). At most as many run at once as the cluster's CPUs (and GPUs) hold, and `workers` when given. **Tasks write
  their results themselves**, with the same atomic writes and lock: the results and logs folders and the working
  directory must be at the same path on every node (one machine, or shared storage such as NFS); a task on a node
  that does not see them fails with that message.
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
import multiprocessing
import os
import pickle
import shlex
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from msabench.api import Plan, Request, Unit, load_catalog, plan
from msabench.catalog import Catalog
from msabench.components import Data, Dataset
from msabench.errors import MsabenchError, RequestError, RunError
from msabench.results import result_files, resume_path
from msabench.runtime import select_device, set_threads
from msabench.store import (
    DEFAULT_PAGES,
    NOTICE,
    check_outputs,
    page_folder,
    stage_record,
    status,
    train_unit,
    write_page,
)

log = logging.getLogger("msabench")

INSTALL = "in your msabench checkout, pip install -c constraints.txt -e '.[sweep]'"
DONE = ("trained", "resumed", "skipped")
PROBE = ".msabench-reproduce-probe"
# What a unit's process would import on first use (the trainer, the metrics' scikit-learn and SciPy, the optimizers'
# torch._dynamo: seconds a unit): the worker processes' server imports them once (a name that fails is left out).
PRELOAD = ("msabench.reproduce", "msabench.train", "sklearn.metrics", "scipy.stats", "torch._dynamo")


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
            backend: Workers | OnRay = Workers(workers or _cpus(), folder, _plugins(planned))
        else:
            backend = OnRay(address, cpus_per_run or threads, gpus_per_run, workers, folders)
        stack.callback(backend.close)
        _Driver(jobs, backend, progress).run()
    report = Report(jobs, [line for line in planned if line.missing], seconds=time.perf_counter() - started)
    report.pages = render_pages(planned)
    return report


def render_pages(planned: Sequence[Line]) -> list[Path]:
    """Each dataset's page, once, from the results folder its lines wrote to (datasets with results only)."""
    pages, seen = [], set()
    for line in planned:
        name = line.data_name or line.plan.name
        key = (line.request.results, name)
        if line.missing or key in seen:
            continue
        seen.add(key)
        if any(True for _ in result_files(Path(line.request.results) / name)):
            pages.append(write_page(line.request.results, page_folder(line.request, name), name))
    return pages


# -- the driver -------------------------------------------------------------------------------------------


class _Driver:
    """Starts every job whose units before it are done while the backend has room, and collects what finishes: one
    bar (done / total, running, failed, an ETA from the units trained so far) and a line per finished unit."""

    def __init__(self, jobs: list[Job], backend: Workers | OnRay, progress: bool):
        self.jobs, self.backend, self.done, self.times = jobs, backend, 0, []
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
        if job.unit.path.is_file():
            self.finish(
                job, run_unit(line.plan, line.data, job.seed, job.index, device="cpu", runner={"kind": "driver"})
            )
            return False
        job.state = "running"
        job.log.parent.mkdir(parents=True, exist_ok=True)
        self.backend.start(job, line.payload)
        return True

    def finish(self, job: Job, outcome: dict[str, Any]) -> None:
        job.state, job.error, job.seconds = outcome["state"], outcome.get("error", ""), outcome.get("seconds", 0.0)
        job.line.left -= 1
        if job.line.left == 0:  # the data goes once the line's last unit has finished
            job.line.data = job.line.payload = None
        self.done += 1
        self.bar.update(1)
        done = f"[{self.done}/{len(self.jobs)}] {job.where}"
        if job.state == "failed":
            log.error("%s: failed: %s%s", done, job.error, f" (log: {job.log})" if job.log.is_file() else "")
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
    line.payload = backend.put(pickle.dumps((line.plan, data), protocol=pickle.HIGHEST_PROTOCOL), line)


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


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# -- one unit, wherever it runs ------------------------------------------------------------------------------


def run_unit(
    plan: Plan, data: Data, seed: int, index: int, *, device: str, runner: dict[str, Any], logfile: str | None = None
) -> dict[str, Any]:
    """Train unit `index` of `seed` through `train_unit` (its stage records read from the stage results, as `execute`
    makes them); returns its outcome: state (one of DONE, or failed with an error), seconds, metrics, best epoch."""
    handler = None
    level = log.level
    if logfile is not None:
        handler = logging.FileHandler(logfile, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    started = time.perf_counter()
    try:
        set_threads(plan.threads)
        units = plan.units(seed, data.name)
        unit = units[index]
        stages = None
        if plan.stages and unit.stage is None:
            stages = {}
            for earlier in units[:-1]:
                stages.update(stage_record(earlier))
        state = "skipped" if unit.path.is_file() else "resumed" if resume_path(unit.path).is_file() else "trained"
        where = f"{runner['kind']} pid {os.getpid()} on {socket.gethostname()}"
        doing = {"trained": "trains", "resumed": "resumes after its last finished epoch", "skipped": "done already"}
        log.info("== %s on %s, %s: %s (%s)", plan.method.name, data.name, unit.where, doing[state], where)
        result = train_unit(
            plan, unit, data, device=select_device(device), stages=stages, progress=False, runner=runner
        )
        outcome = {"state": state, "metrics": result.metrics, "best": result.best_epoch}
    except BaseException as error:  # noqa: BLE001 -- a unit's failure is reported, never raised into the driver
        if logfile is None and isinstance(error, KeyboardInterrupt):
            raise
        if logfile is not None:
            log.error("%s", traceback.format_exc().rstrip())
        outcome = {"state": "failed", "error": _reason(error)}
    finally:
        if handler is not None:
            log.removeHandler(handler)
            handler.close()
            log.setLevel(level)
    return {**outcome, "seconds": time.perf_counter() - started}


def _reason(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, MsabenchError):
        return str(error)
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


# -- local worker processes -------------------------------------------------------------------------------


class Workers:
    """At most `count` units at a time, each in a process of its own; a line's data goes to them as a pickle file."""

    def __init__(self, count: int, folder: str, plugins: Sequence[str] = ()):
        self.count, self.folder = count, Path(folder)
        self.running: dict[Any, tuple[Job, Any, Any]] = {}  # the process's sentinel -> job, process, its pipe
        methods = multiprocessing.get_all_start_methods()
        self.context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            self.context.set_forkserver_preload([*PRELOAD, *plugins])

    def slots(self) -> int:
        return self.count

    def free(self) -> int:
        return self.count - len(self.running)

    def put(self, payload: bytes, line: Line) -> Path:
        path = self.folder / f"line-{id(line)}.pkl"
        path.write_bytes(payload)
        return path

    def read(self, payload: Path) -> bytes:
        return payload.read_bytes()

    def start(self, job: Job, payload: Path) -> None:
        receive, send = self.context.Pipe()  # both ways: the worker learns from it that the driver died
        device = job.line.request.device
        process = self.context.Process(
            target=_worker, args=(str(payload), job.seed, job.index, device, str(job.log), send), name="msabench-unit"
        )
        process.start()
        send.close()
        self.running[process.sentinel] = (job, process, receive)

    def wait(self, timeout: float) -> list[tuple[Job, dict[str, Any]]]:
        """The jobs whose processes have ended within `timeout` seconds, with their outcomes."""
        finished = []
        for sentinel in multiprocessing.connection.wait(list(self.running), timeout):
            job, process, receive = self.running.pop(sentinel)
            process.join()
            try:
                outcome = receive.recv() if receive.poll() else None
            except (EOFError, OSError):
                outcome = None
            if outcome is None:
                code = process.exitcode
                how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
                outcome = {"state": "failed", "error": f"its process was {how} (out of memory?)"}
            receive.close()
            process.close()
            finished.append((job, outcome))
        return finished

    def close(self) -> None:
        for job, process, _ in self.running.values():  # only when the driver stops early
            process.terminate()
            process.join()
            job.state = "failed"


def _worker(payload: str, seed: int, index: int, device: str, logfile: str, send: Any) -> None:
    """A unit in a process of its own: it dies with the driver, writes everything to its log, sends its outcome."""
    _die_with_driver(send)
    with open(logfile, "a", encoding="utf-8") as stream:
        os.dup2(stream.fileno(), 1)
        os.dup2(stream.fileno(), 2)
    sys.stdout = open(1, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    try:
        plan, data = pickle.loads(Path(payload).read_bytes())
        outcome = run_unit(plan, data, seed, index, device=device, runner={"kind": "worker"}, logfile=logfile)
    except BaseException as error:  # noqa: BLE001 -- e.g. a plugin that no longer imports
        traceback.print_exc()
        outcome = {"state": "failed", "error": _reason(error)}
    send.send(outcome)


def _die_with_driver(connection: Any) -> None:
    """Kill this process (as if by the kernel: it resumes next time) when the driver dies and its end of the pipe
    closes. A pipe rather than the parent: a forkserver's children outlive their parent, the server."""

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            while True:
                connection.recv()
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="msabench-driver-watch", daemon=True).start()


# -- Ray ---------------------------------------------------------------------------------------------------


class OnRay:
    """Units as Ray tasks on this machine (``local``) or a cluster; they write to the shared results folder."""

    def __init__(self, address: str, cpus: float, gpus: float, workers: int | None, folders: Sequence[str]):
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # before Ray starts: it would otherwise send usage statistics
        try:
            import ray
        except ImportError:
            raise RunError(f"--address runs units as Ray tasks, and Ray is not installed: {INSTALL}.") from None
        self.ray, self.cpus, self.gpus, self.workers = ray, cpus, gpus, workers
        self.started_here = not ray.is_initialized()
        if self.started_here and address == "local":
            import torch

            gpus_here = torch.cuda.device_count() if torch.cuda.is_available() else 0
            ray.init(num_cpus=_cpus(), num_gpus=gpus_here, include_dashboard=False, log_to_driver=False)
        elif self.started_here:
            ray.init(address=address, log_to_driver=False)
        self.task = ray.remote(_on_ray).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
        self.running: dict[Any, Job] = {}
        self.token = f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"
        self.probes = [Path(folder) / PROBE for folder in folders]
        for probe in self.probes:
            probe.write_text(self.token)

    def slots(self) -> int:
        resources = self.ray.cluster_resources()
        slots = int(resources.get("CPU", 0) // self.cpus)
        if self.gpus:
            slots = min(slots, int(resources.get("GPU", 0) // self.gpus))
        return max(1, min(slots, self.workers or slots))

    def free(self) -> int:
        return self.slots() - len(self.running)

    def put(self, payload: bytes, line: Line) -> Any:
        return self.ray.put(payload)

    def read(self, payload: Any) -> bytes:
        return self.ray.get(payload)

    def start(self, job: Job, payload: Any) -> None:
        device = "cuda" if self.gpus > 0 else "cpu"
        probe = str(Path(job.line.request.results) / PROBE)
        ref = self.task.remote(payload, job.seed, job.index, device, str(job.log), os.getcwd(), probe, self.token)
        self.running[ref] = job

    def wait(self, timeout: float) -> list[tuple[Job, dict[str, Any]]]:
        if not self.running:
            return []
        ready, _ = self.ray.wait(list(self.running), num_returns=len(self.running), timeout=timeout)
        finished = []
        for ref in ready:
            job = self.running.pop(ref)
            try:
                outcome = self.ray.get(ref)
            except self.ray.exceptions.RayError as error:  # the task's worker or node died: killed, out of memory
                first = (str(error).strip().splitlines() or [""])[0]
                outcome = {"state": "failed", "error": f"its Ray task was lost ({type(error).__name__}: {first})"}
            finished.append((job, outcome))
        return finished

    def close(self) -> None:
        for ref in self.running:
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
        for probe in self.probes:
            probe.unlink(missing_ok=True)
        if self.started_here:
            self.ray.shutdown()


def _on_ray(payload: bytes, seed: int, index: int, device: str, logfile: str, cwd: str, probe: str, token: str):
    """A unit as a Ray task: in the driver's working directory, on the shared results folder, logging to its file."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    where = f"Ray node {node[:12]} on {socket.gethostname()}"
    try:
        os.chdir(cwd)
        seen = Path(probe).read_text() if Path(probe).is_file() else ""
    except OSError:
        seen = ""
    if seen != token:
        return {
            "state": "failed",
            "error": f"{where} does not see the driver's {Path(cwd) / Path(probe).parent}: with Ray, the results and "
            "logs must be on storage every node sees at the same path (run from a shared folder, or pass --results "
            "and --logs there)",
        }
    try:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        plan, data = pickle.loads(payload)
    except Exception as error:  # e.g. a plugin that is not installed on that node
        return {"state": "failed", "error": f"{where} cannot take the unit: {_reason(error)}"}
    return run_unit(plan, data, seed, index, device=device, runner={"kind": "ray", "node": node}, logfile=logfile)
