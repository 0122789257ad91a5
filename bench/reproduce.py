"""`msabench reproduce` against one `msabench run` after another: wall time, the same numbers, Ray's cost per unit.

    OMP_NUM_THREADS=1 .venv/bin/python bench/reproduce.py                      # every mode on bench/reproduce-runs.txt
    .venv/bin/python bench/reproduce.py --modes workers,local --out /tmp/b     # some of them
    .venv/bin/python bench/reproduce.py --modes overhead,extrapolate

Modes (each into a fresh results folder under --out, from empty results):
- ``sequential``: each line as `msabench run` in turn, what `make reproduce` did before (one process, one thread);
- ``workers``: `msabench reproduce --workers 2`;
- ``local``: `msabench reproduce --address local` (Ray started on this machine);
- ``two-nodes``: a Ray head and a second Ray node started here (one CPU each, ports of their own), and
  `msabench reproduce --address 127.0.0.1:PORT`;
- ``overhead``: each way above with 16 units that train one epoch of lf-dnn on a tenth of synthetic-mosi: the time
  a unit holds its slot in the steady state (from the result files' times) less its own recorded time, and the fixed
  rest (start-up, Ray, pages);
- ``extrapolate``: the whole committed board (leaderboards/runs.txt) scheduled as `reproduce` schedules it, each unit
  taking its committed result's recorded wall time, on 1 to 32 slots.

Each timed mode prints its wall time with the load average before and after (the machine is shared), and whether
every result's metrics and test predictions equal those of the sequential runs and of the committed results
(leaderboards/results). A JSON report goes to --out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MSABENCH = str(Path(sys.executable).with_name("msabench"))
COMMITTED = ROOT / "leaderboards" / "results"
TINY = "lf-dnn synthetic-mosi --max-epochs 1 --data-option train_fraction=0.1\n"


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def numbers(folder: Path) -> dict[str, tuple]:
    found = {}
    for path in sorted(folder.rglob("seed-*.json")):
        result = json.loads(path.read_text())
        found[str(path.relative_to(folder))] = (result["metrics"], result["predictions"])
    return found


def recorded(folder: Path) -> list[float]:
    return [json.loads(path.read_text())["wall_time_s"] for path in folder.rglob("seed-*.json")]


def timed(argv: list[str], cwd: Path, log: Path) -> float:
    started = time.perf_counter()
    with open(log, "a") as out:
        out.write("$ " + shlex.join(argv) + "\n")
        out.flush()
        done = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=ENV)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {shlex.join(argv)}; see {log}")
    return time.perf_counter() - started


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}


def sequential(runs: Path, seeds: str | None, folder: Path) -> float:
    total = 0.0
    for text in runs.read_text().splitlines():
        if text.strip() and not text.lstrip().startswith("#"):
            method, dataset, *flags = shlex.split(text)
            argv = [MSABENCH, "run", "--method", method, "--dataset", dataset, *flags, "--no-progress", "-q"]
            argv += ["--no-checkpoints", "--results", "results", "--leaderboards", "pages"]
            total += timed(argv + (["--seeds", seeds] if seeds else []), folder, folder / "log.txt")
    return total


def reproduce(runs: Path, seeds: str | None, folder: Path, *flags: str) -> float:
    argv = [MSABENCH, "reproduce", str(runs.absolute()), "--no-checkpoints", "--no-progress", "--results", "results"]
    argv += ["--leaderboards", "pages", *(["--seeds", seeds] if seeds else []), *flags]
    return timed(argv, folder, folder / "log.txt")


class TwoNodes:
    """A Ray head and a second node on this machine, one CPU each; stopped (every process they started) on exit."""

    def __enter__(self) -> str:
        self.temp = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))
        self.nodes: list[subprocess.Popen] = []
        port = free_port()
        self.start("head", "--head", "--port", port, "--temp-dir", self.temp, "--include-dashboard", "false")
        self.start("second", "--address", f"127.0.0.1:{port}")
        return f"127.0.0.1:{port}"

    def start(self, name: str, *flags) -> None:
        out = self.temp / f"{name}.out"
        first = 20000 + os.getpid() % 49 * 200 + 100 * len(self.nodes)  # below the ephemeral ports, above 10001
        argv = [str(Path(sys.executable).with_name("ray")), "start", *map(str, flags), "--num-cpus", "1"]
        argv += ["--num-gpus", "0", "--block", "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
        argv += ["--min-worker-port", str(first), "--max-worker-port", str(first + 99)]
        for flag in ("node-manager", "object-manager", "dashboard-agent-listen", "dashboard-agent-grpc"):
            argv += [f"--{flag}-port", str(free_port())]
        argv += ["--metrics-export-port", str(free_port()), "--runtime-env-agent-port", str(free_port())]
        with open(out, "w") as stream:
            node = subprocess.Popen(argv, env=ENV, stdout=stream, stderr=subprocess.STDOUT, start_new_session=True)
        self.nodes.append(node)
        while "Ray runtime started" not in out.read_text():
            if node.poll() is not None:
                raise SystemExit(out.read_text()[-3000:])
            time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        for node in reversed(self.nodes):
            node.send_signal(signal.SIGTERM)
        for node in reversed(self.nodes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.wait(60)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)  # anything its process group still holds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_mode(mode: str, runs: Path, seeds: str | None, folder: Path) -> float:
    folder.mkdir(parents=True)
    if mode == "sequential":
        return sequential(runs, seeds, folder)
    if mode == "workers":
        return reproduce(runs, seeds, folder, "--workers", "2")
    if mode == "local":
        return reproduce(runs, seeds, folder, "--address", "local")
    with TwoNodes() as address:
        return reproduce(runs, seeds, folder, "--address", address)


def timings(runs: Path, out: Path, modes: list[str]) -> list[dict]:
    rows, reference = [], None
    for mode in modes:
        before = load()
        seconds = run_mode(mode, runs, None, out / mode)
        found = numbers(out / mode / "results")
        reference = reference if reference is not None else found
        committed = {path: value for path, value in numbers(COMMITTED).items() if path in found}
        row = {
            "mode": mode,
            "wall_s": round(seconds, 1),
            "units": len(found),
            "load_before": before,
            "load_after": load(),
            "same_as_first_mode": found == reference,
            "same_as_committed": found == committed and len(committed) == len(found),
            "recorded_unit_s": round(sum(recorded(out / mode / "results")), 1),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def overhead(out: Path, modes: list[str], count: int = 16) -> list[dict]:
    """`count` one-epoch units each way: in the steady state between the first and the last unit to finish (their
    result files' modification times), each unit holds its slot for `per_unit_s`; less the unit's own recorded time,
    that is the cost of running it this way (the median unit's: the first unit of a process also pays its imports).
    `fixed_s` is the rest of the wall time (start-up, Ray, pages)."""
    runs = out / "tiny-runs.txt"
    runs.write_text(TINY)
    seeds = ",".join(str(1111 + i) for i in range(count))
    rows = []
    for mode in modes:
        before = load()
        wall = run_mode(mode, runs, seeds, out / f"overhead-{mode}")
        paths = sorted((out / f"overhead-{mode}" / "results").rglob("seed-*.json"), key=lambda p: p.stat().st_mtime)
        slots = 1 if mode == "sequential" else 2
        span = paths[-1].stat().st_mtime - paths[0].stat().st_mtime
        per_unit = span * slots / (count - slots)
        own = statistics.median(recorded(out / f"overhead-{mode}" / "results"))  # not the first's imports
        row = {
            "mode": mode,
            "units": count,
            "wall_s": round(wall, 1),
            "per_unit_s": round(per_unit, 2),
            "unit_recorded_s": round(own, 2),
            "per_unit_overhead_s": round(per_unit - own, 2),
            "fixed_s": round(wall - count * per_unit / slots, 1),
            "load_before": before,
            "load_after": load(),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def extrapolate(slots: tuple[int, ...] = (1, 2, 4, 8, 16, 32), overhead_s: float = 0.0) -> list[dict]:
    """The committed board's units, each taking its recorded wall time (+ `overhead_s`), scheduled as the driver
    schedules them: in order, each as soon as its units before it are done and a slot is free."""
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    from msabench.api import Request
    from msabench.boards import expand, lines

    requests = []
    for text in (ROOT / "leaderboards" / "runs.txt").read_text().splitlines():
        if text.strip() and not text.startswith("#"):
            method, dataset, *flags = shlex.split(text)
            protocol = {k.strip("-").replace("-", "_"): int(v) for k, v in zip(flags[::2], flags[1::2], strict=True)}
            requests.append(Request(method, dataset, results="leaderboards/results", checkpoints=False, **protocol))
    jobs = expand(lines(requests))
    cost = {id(job): json.loads(job.unit.path.read_text())["wall_time_s"] + overhead_s for job in jobs}
    total = sum(cost.values())
    rows = []
    for count in slots:
        clock, running, done, waiting = 0.0, [], {}, list(jobs)
        while waiting or running:
            for job in list(waiting):
                if len(running) < count and all(id(earlier) in done for earlier in job.after):
                    waiting.remove(job)
                    running.append((clock + cost[id(job)], id(job)))
            running.sort()
            clock, finished = running.pop(0)
            done[finished] = clock
        rows.append({"slots": count, "hours": round(clock / 3600, 2), "speedup": round(total / clock, 2)})
    longest = max(cost.values())
    print(json.dumps({"units": len(jobs), "hours_summed": round(total / 3600, 2), "longest_unit_s": round(longest)}))
    for row in rows:
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path(__file__).with_name("reproduce-runs.txt"))
    parser.add_argument("--modes", default="sequential,workers,local,two-nodes,overhead,extrapolate")
    parser.add_argument("--overhead-modes", default="sequential,workers,local,two-nodes")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "msabench-bench-reproduce")
    args = parser.parse_args()
    out = args.out / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True)
    modes = args.modes.split(",")
    report: dict = {"runs": str(args.runs), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count()}
    timed_modes = [m for m in modes if m in ("sequential", "workers", "local", "two-nodes")]
    if timed_modes:
        report["timings"] = timings(args.runs, out, timed_modes)
    if "overhead" in modes:
        report["overhead"] = overhead(out, args.overhead_modes.split(","))
    if "extrapolate" in modes:
        report["extrapolate"] = extrapolate()
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print(f"report: {out / 'report.json'}")


if __name__ == "__main__":
    main()
