"""Where the units of `msabench reproduce` run: `run_unit` trains one wherever it is, `Workers` starts each in a
local process of its own, `OnRay` sends each to a Ray cluster as a task (see `msabench.boards` for the whole).

Both take a line's pickled (plan, data) once (`put`), start units from it (`start`), and say which have finished
(`wait`), each with its outcome: ``{"state": "trained" | "resumed" | "skipped" | "failed", "error", "seconds",
"metrics", "best"}``. A unit that crashes, is killed or whose Ray task is lost is a failed outcome, never an error of
the caller.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msabench.errors import MsabenchError, RunError
from msabench.results import resume_path
from msabench.runtime import select_device, set_threads
from msabench.store import stage_record, train_unit

if TYPE_CHECKING:
    from msabench.api import Plan
    from msabench.components import Data

log = logging.getLogger("msabench")

INSTALL = "in your msabench checkout, pip install -c constraints.txt -e '.[sweep]'"
PROBE = ".msabench-reproduce-probe"
# What a unit's process would import on first use (the trainer, the metrics' scikit-learn and SciPy, the optimizers'
# torch._dynamo: seconds a unit): the worker processes' server imports them once (a name that fails is left out).
PRELOAD = ("msabench.workers", "msabench.train", "sklearn.metrics", "scipy.stats", "torch._dynamo")


def cpus() -> int:
    """The CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_unit(
    plan: Plan, data: Data, seed: int, index: int, *, device: str, runner: dict[str, Any], logfile: str | None = None
) -> dict[str, Any]:
    """Train unit `index` of `seed` through `train_unit` (its stage records read from the stage results, as `execute`
    makes them), logging to `logfile`; returns its outcome (see the module's docstring)."""
    handler = None
    level, propagate = log.level, log.propagate
    if logfile is not None:  # the unit's messages go to its file, and only there
        handler = logging.FileHandler(logfile, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
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
            log.propagate = propagate
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
        self.count, self.folder, self.lines = count, Path(folder), itertools.count()
        self.running: dict[Any, tuple[Any, Any, Any]] = {}  # the process's sentinel -> key, process, its pipe
        methods = multiprocessing.get_all_start_methods()
        self.context: Any = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            self.context.set_forkserver_preload([*PRELOAD, *plugins])

    def slots(self) -> int:
        return self.count

    def free(self) -> int:
        return self.count - len(self.running)

    def put(self, payload: bytes) -> Path:
        path = self.folder / f"line-{next(self.lines)}.pkl"
        path.write_bytes(payload)
        return path

    def drop(self, payload: Path) -> None:
        """The line's units are done: its data goes."""
        payload.unlink(missing_ok=True)

    def start(
        self, key: Any, payload: Path, seed: int, index: int, *, device: str, logfile: Path, results: str
    ) -> None:
        """Start unit `index` of `seed` of the line whose data is `payload`; `key` names it in `wait`'s answer."""
        receive, send = self.context.Pipe()  # both ways: the worker learns from it that the driver died
        process = self.context.Process(
            target=_worker, args=(str(payload), seed, index, device, str(logfile), send), name="msabench-unit"
        )
        process.start()
        send.close()
        self.running[process.sentinel] = (key, process, receive)

    def wait(self, timeout: float) -> list[tuple[Any, dict[str, Any]]]:
        """(key, outcome) of the units whose processes have ended, waiting up to `timeout` seconds for one."""
        finished = []
        for sentinel in multiprocessing.connection.wait(list(self.running), timeout):
            key, process, receive = self.running.pop(sentinel)
            process.join()
            try:
                outcome = receive.recv() if receive.poll() else None
            except (EOFError, OSError):
                outcome = None
            if outcome is None:
                code = process.exitcode
                how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
                hint = " (out of memory?)" if code == -signal.SIGKILL else ""
                outcome = {"state": "failed", "error": f"its process {how}{hint}"}
            receive.close()
            process.close()
            finished.append((key, outcome))
        return finished

    def close(self) -> None:
        for _, process, _ in self.running.values():  # only when the caller stops early
            process.terminate()
            process.join()


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
    """Units as Ray tasks on this machine (``local``) or a cluster, each with `cpus_per_run` CPUs and `gpus_per_run`
    GPUs, at most `workers` at a time (default: as many as the cluster's CPUs and GPUs hold). The tasks write to the
    `folders` (results, logs) themselves, which must be shared: each checks that it sees the probe file the driver
    wrote there."""

    def __init__(
        self, address: str, cpus_per_run: float, gpus_per_run: float, workers: int | None, folders: Sequence[str]
    ):
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # before Ray starts: it would otherwise send usage statistics
        try:
            import ray
        except ImportError:
            raise RunError(f"--address runs units as Ray tasks, and Ray is not installed: {INSTALL}.") from None
        self.ray, self.cpus, self.gpus, self.workers = ray, cpus_per_run, gpus_per_run, workers
        self.started_here = not ray.is_initialized()
        if self.started_here and address == "local":
            import torch

            gpus_here = torch.cuda.device_count() if torch.cuda.is_available() else 0
            ray.init(num_cpus=cpus(), num_gpus=gpus_here, include_dashboard=False, log_to_driver=False)
        elif self.started_here:
            try:
                ray.init(address=address, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as error:
                first = (str(error).strip().splitlines() or [""])[0]
                raise RunError(f"--address {address}: cannot join a Ray cluster there ({first}).") from None
        self.task = ray.remote(_on_ray).options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)
        self.running: dict[Any, Any] = {}  # the task's object ref -> its key
        self.token = f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"
        self.probes = [Path(folder) / PROBE for folder in folders]
        for probe in self.probes:
            probe.parent.mkdir(parents=True, exist_ok=True)
            probe.write_text(self.token)

    def slots(self) -> int:
        resources = self.ray.cluster_resources()
        slots = int(resources.get("CPU", 0) // self.cpus)
        if self.gpus:
            slots = min(slots, int(resources.get("GPU", 0) // self.gpus))
        return max(1, min(slots, self.workers or slots))

    def free(self) -> int:
        return self.slots() - len(self.running)

    def put(self, payload: bytes) -> Any:
        return self.ray.put(payload)

    def drop(self, payload: Any) -> None:
        """The line's units are done: its object goes with the last reference to it."""

    def start(self, key: Any, payload: Any, seed: int, index: int, *, device: str, logfile: Path, results: str) -> None:
        """As `Workers.start`; the task trains on CUDA when it has GPUs, else on the CPU (`device` is the line's)."""
        device = "cuda" if self.gpus > 0 else "cpu"
        probe = str(Path(results) / PROBE)
        ref = self.task.remote(payload, seed, index, device, str(logfile), os.getcwd(), probe, self.token)
        self.running[ref] = key

    def wait(self, timeout: float) -> list[tuple[Any, dict[str, Any]]]:
        if not self.running:
            return []
        ready, _ = self.ray.wait(list(self.running), num_returns=len(self.running), timeout=timeout)
        finished = []
        for ref in ready:
            key = self.running.pop(ref)
            try:
                outcome = self.ray.get(ref)
            except self.ray.exceptions.RayError as error:  # the task's worker or node died: killed, out of memory
                first = (str(error).strip().splitlines() or [""])[0]
                outcome = {"state": "failed", "error": f"its Ray task was lost ({type(error).__name__}: {first})"}
            finished.append((key, outcome))
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
