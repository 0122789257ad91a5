"""MMSA 2.2.1 and msabench side by side: seconds per training pass of the same model on the same pickle.

    python bench/side_by_side.py --mmsa-venv $SCRATCH/mmsa-venv --data-root $SCRATCH/mmsa-data
    python bench/side_by_side.py ... --models tfn --threads 1 --repeats 3 --epochs 4
    python bench/side_by_side.py ... --only msabench         # msabench alone (passes and floors)
    git archive 2e4fe62 | tar -x -C /tmp/msabench-before     # an older msabench to compare with, then
    python bench/side_by_side.py ... --before /tmp/msabench-before

For each thread count and model it runs MMSA (through ../shared/mmsa-reference/mmsa_anchor.sh, which
runs MMSA's own trainer) and msabench in alternation, each in its own fresh process: MMSA, msabench,
MMSA, msabench, ... Both read the same MOSI-shaped pickle (made by make_mosi_shaped.py beside the
anchor) with the same recipe and the same torch/OpenMP/MKL thread count, and both time the same
thing: one training pass over the train split (from asking for the first batch to the loop asking
for the batch after the last one: batching, forward, backward, optimizer step; no validation).
Epoch 1 is dropped; the figure is the median over the later epochs of every repeat.

msabench's pass is `fit()` itself, unchanged: the bench only wraps `Split.batches` for the shuffled
(training) passes to read the clock, as the anchor wraps MMSA's DataLoader. Beside it, each model's
compute floor: forward + loss + backward + optimizer step on ONE preallocated batch, repeated,
nothing else, scaled to the train split's sample count (floor step x samples / batch size).

The printed table: MMSA seconds / msabench seconds per pass (higher = msabench faster) and
msabench's pass / its floor, in wall seconds and, in brackets, CPU seconds of the process (all
threads; on a machine shared with other jobs the CPU seconds vary less than the wall seconds).
`--before DIR` adds a third harness in the rotation (MMSA, msabench from DIR, msabench): the
source tree of another commit, put first on PYTHONPATH so that its `msabench` and
`msabench_baselines` replace the installed ones in that process. Raw figures go to --out as
JSON. More models: add a Pair to PAIRS.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Pair:
    """One model in both harnesses."""

    method: str  # msabench method
    mmsa: str  # mmsa_anchor.sh model name
    dataset: str = "mosi"  # the msabench dataset that reads the same pickle as MMSA's config
    mmsa_env: dict[str, str] = field(default_factory=dict)  # extra environment for mmsa_anchor.sh
    max_batches: int = 0  # >0: time this many batches (first 2 dropped) and scale to a pass, as the anchor does
    sets: dict[str, dict] = field(default_factory=dict)  # msabench hparam sections to override (e.g. pretrained)


PAIRS = {
    pair.method: pair
    for pair in (
        Pair("lf-dnn", "lf_dnn"),
        Pair("tfn", "tfn"),
        Pair("lmf", "lmf"),
        # MulT, EF-LSTM, Self-MM and MISA come here (EF-LSTM reads aligned_50.pkl: dataset "mosi-aligned";
        # MulT unaligned is estimated from a few batches: max_batches=8, mmsa_env={"MAX_BATCHES_mult": "8"}).
    )
}


# ---- machine load ----------------------------------------------------------------------------------


def cpu_pressure_us() -> int | None:
    """Total microseconds some task waited for a CPU (/proc/pressure/cpu), or None where it is not exposed."""
    try:
        with open("/proc/pressure/cpu") as handle:
            return int(handle.readline().split("total=")[1])
    except (OSError, IndexError, ValueError):
        return None


def wait_quiet(psi: float, max_wait: float) -> None:
    """Wait (at most max_wait s) until the CPU pressure avg10 is below psi %, as mmsa_anchor.sh does."""
    waited = 0.0
    while waited < max_wait:
        try:
            with open("/proc/pressure/cpu") as handle:
                avg10 = float(handle.readline().split("avg10=")[1].split()[0])
        except (OSError, IndexError, ValueError):
            return
        if avg10 < psi:
            return
        time.sleep(5)
        waited += 5


# ---- msabench, in a child process ------------------------------------------------------------------


class StopBench(Exception):
    """Raised from the batch loop after `max_batches` training batches."""


def msabench_child(pair: Pair, threads: int, epochs: int, data_root: str, floor_rounds: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from msabench import Catalog, Protocol, Split, fit, get_plugin_manager
    from msabench.components import merge
    from msabench.features import prepare
    from msabench.optim import build_optimizer
    from msabench.runtime import seed_everything

    catalog = Catalog.from_plugins(get_plugin_manager())
    started = time.perf_counter()
    data = catalog.datasets[pair.dataset](data_root, verify=False).load()
    load_s = time.perf_counter() - started
    method = catalog.methods[pair.method]
    hparams = merge(method.hparams_for(data), pair.sets)
    batch_size = hparams["train"]["batch_size"]

    passes: list[list[float]] = []  # per training pass: the clock before the first batch and after each step
    cpu: list[list[float]] = []  # the same marks in CPU seconds of the process (all threads)
    original = Split.batches

    def timed(self, size, *, shuffle=False, generator=None):
        if not shuffle:  # validation and test: not timed
            yield from original(self, size, shuffle=shuffle, generator=generator)
            return
        marks, cpu_marks = [time.perf_counter()], [time.process_time()]
        passes.append(marks)
        cpu.append(cpu_marks)
        for batch in original(self, size, shuffle=shuffle, generator=generator):
            yield batch
            marks.append(time.perf_counter())
            cpu_marks.append(time.process_time())
            if pair.max_batches and len(marks) > pair.max_batches:
                raise StopBench

    Split.batches = timed
    pressure = cpu_pressure_us()
    fit_started = time.perf_counter()
    try:
        result = fit(
            method,
            data,
            catalog=catalog,
            seed=1111,
            protocol=Protocol(max_epochs=epochs, patience=epochs + 1),
            hparams=hparams,
            device="cpu",
        )
        valid_loss = [round(h["valid"]["loss"], 6) for h in result.history]
    except StopBench:
        valid_loss = None
    fit_s = time.perf_counter() - fit_started
    after = cpu_pressure_us()
    Split.batches = original
    n_train = len(data.splits["train"])
    if pair.max_batches:
        pass_s, pass_cpu_s = (
            [statistics.median([b - a for a, b in zip(m[0], m[0][1:], strict=False)][2:]) * n_train / batch_size]
            for m in (passes, cpu)
        )
    else:
        pass_s, pass_cpu_s = ([marks[-1] - marks[0] for marks in m] for m in (passes, cpu))

    # The floor: forward + loss + backward + step on one preallocated batch, nothing else.
    seed_everything(1111)
    model, objective = catalog.build(method, data, hparams)
    floor_data = prepare(model, data, device="cpu")
    optimizer = build_optimizer(model, objective, hparams["train"])
    batch = next(original(floor_data.splits["train"], batch_size, shuffle=True, generator=torch.Generator()))
    model.train()
    objective.train()
    step_s, step_cpu_s = [], []
    for _ in range(floor_rounds * math.ceil(n_train / batch_size) + 2):
        tick, tock = time.perf_counter(), time.process_time()
        losses = objective(model(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimizer.step()
        step_s.append(time.perf_counter() - tick)
        step_cpu_s.append(time.process_time() - tock)
    import resource

    return {
        "harness": "msabench",
        "method": pair.method,
        "threads": torch.get_num_threads(),
        "load_s": round(load_s, 2),
        "pass_s": [round(s, 4) for s in pass_s],
        "pass_cpu_s": [round(s, 4) for s in pass_cpu_s],
        "floor_step_s": round(statistics.median(step_s[2:]), 5),
        "floor_pass_s": round(statistics.median(step_s[2:]) * n_train / batch_size, 4),
        "floor_pass_cpu_s": round(statistics.median(step_cpu_s[2:]) * n_train / batch_size, 4),
        "batch_size": batch_size,
        "train_samples": n_train,
        "parameters": sum(p.numel() for p in model.parameters()),
        "valid_loss": valid_loss,
        "cpu_pressure_pct": round(100 * (after - pressure) / 1e6 / fit_s, 1) if pressure is not None else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "torch": torch.__version__,
    }


def run_msabench(pair: Pair, threads: int, args: argparse.Namespace, tree: str | None = None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    if tree is not None:  # another commit's source tree shadows the installed msabench and its baselines
        env["PYTHONPATH"] = os.pathsep.join([tree, os.path.join(tree, "plugins", "msabench-baselines")])
    command = [sys.executable, __file__, "--child", pair.method, "--threads", str(threads)]
    command += ["--epochs", str(args.epochs), "--data-root", args.data_root, "--floor-rounds", str(args.floor_rounds)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"msabench {pair.method} failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "tree": tree or str(REPO)}


# ---- MMSA, through the anchor script ---------------------------------------------------------------


def run_mmsa(pair: Pair, threads: int, args: argparse.Namespace, out: Path) -> dict:
    anchor = Path(args.reference) / "mmsa_anchor.sh"
    folder = Path(tempfile.mkdtemp(prefix=f"{pair.mmsa}-t{threads}-", dir=out))
    env = {
        **os.environ,
        "VENV": args.mmsa_venv,
        "DATA_ROOT": args.data_root,
        "OUT": str(folder),
        "MODELS": pair.mmsa,
        "THREADS": str(threads),
        "REPEATS": "1",
        "EPOCHS": str(args.epochs),
        f"EPOCHS_{pair.mmsa}": str(args.epochs),
        "QUIET_PSI": str(args.quiet_psi),
        "QUIET_MAX_WAIT": str(args.quiet_max_wait),
        **pair.mmsa_env,
    }
    done = subprocess.run(["bash", str(anchor)], env=env, capture_output=True, text=True)
    found = folder / f"{pair.mmsa}.r1.json"
    if done.returncode or not found.is_file():
        raise SystemExit(f"MMSA {pair.mmsa} failed (see {folder}):\n{done.stderr[-3000:]}")
    run = json.loads(found.read_text())
    if run["status"] == "capped_batches":
        steps = run["capped_batch_s"][2:]
        pass_s = [statistics.median(steps) * run["n_train_samples"] / run["batch_size"]]
        pass_cpu_s = []  # the anchor keeps no CPU time per batch
    else:
        pass_s = [epoch["train_s"] for epoch in run["epochs"]]
        pass_cpu_s = [epoch["train_cpu_s"] for epoch in run["epochs"]]
    return {
        "harness": "mmsa",
        "model": pair.mmsa,
        "threads": run["threads"],
        "load_s": round(run["data_load_s"], 2),
        "pass_s": [round(s, 4) for s in pass_s],
        "pass_cpu_s": [round(s, 4) for s in pass_cpu_s],
        "parameters": run["params"],
        "cpu_pressure_pct": round(run["psi_cpu_some_pct"], 1) if run.get("psi_cpu_some_pct") is not None else None,
        "peak_rss_mb": round(run["maxrss_self_mb"]),
        "out": str(folder),
    }


# ---- the table -------------------------------------------------------------------------------------


def steady(runs: list[dict], key: str = "pass_s") -> list[float]:
    """Every pass but each run's first (when a run has more than one)."""
    return [s for run in runs for s in (run[key][1:] if len(run[key]) > 1 else run[key])]


def table(rows: list[dict]) -> str:
    """Wall seconds per pass (median), then CPU seconds in brackets; ratios likewise."""
    from tabulate import tabulate

    def median(values):
        return statistics.median(values) if values else None

    def cell(wall, cpu):
        return "-" if wall is None else f"{wall:.2f}" + (f" ({cpu:.2f})" if cpu else "")

    lines = []
    for row in rows:
        mmsa = median(steady(row["mmsa"])), median(steady(row["mmsa"], "pass_cpu_s"))
        line = {"model": row["method"], "threads": row["threads"], "MMSA s": cell(*mmsa)}
        for harness in ("before", "msabench"):
            if not row.get(harness):
                continue
            ours = median(steady(row[harness])), median(steady(row[harness], "pass_cpu_s"))
            floor = (
                median([run["floor_pass_s"] for run in row[harness]]),
                median([run["floor_pass_cpu_s"] for run in row[harness] if "floor_pass_cpu_s" in run]),
            )
            line[f"{harness} s"] = cell(*ours)
            if mmsa[0]:
                line[f"MMSA / {harness}"] = cell(mmsa[0] / ours[0], mmsa[1] / ours[1] if mmsa[1] and ours[1] else None)
            line[f"{harness} floor s"] = cell(*floor)
            line[f"{harness} / floor"] = cell(ours[0] / floor[0], ours[1] / floor[1] if ours[1] and floor[1] else None)
        line["passes"] = "/".join(str(len(steady(row[h]))) for h in ("mmsa", "before", "msabench") if row.get(h))
        lines.append(line)
    return tabulate(lines, headers="keys", tablefmt="github")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["lf-dnn", "tfn", "lmf"], choices=sorted(PAIRS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2, help="process pairs per (model, threads)")
    parser.add_argument("--epochs", type=int, default=3, help="training passes per process (the first is dropped)")
    parser.add_argument("--floor-rounds", type=int, default=1, help="floor steps: this many passes' worth")
    parser.add_argument("--data-root", default=os.environ.get("MMSA_DATA"), help="holds MOSI/Processed/*.pkl")
    parser.add_argument("--mmsa-venv", default=os.environ.get("MMSA_VENV"), help="a venv with mmsa 2.2.1")
    parser.add_argument("--reference", default=str(REPO.parent / "shared" / "mmsa-reference"))
    parser.add_argument("--only", choices=["msabench"], help="skip MMSA")
    parser.add_argument("--before", help="also time the msabench source tree in this folder (another commit)")
    parser.add_argument("--quiet-psi", type=float, default=10.0, help="wait for CPU pressure avg10 below this %%")
    parser.add_argument("--quiet-max-wait", type=int, default=120, help="seconds (mmsa_anchor.sh takes whole seconds)")
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "msabench-side-by-side"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.data_root:
        parser.error("--data-root (or $MMSA_DATA): the folder make_mosi_shaped.py wrote")
    if args.child:
        print(
            json.dumps(
                msabench_child(PAIRS[args.child], args.threads[0], args.epochs, args.data_root, args.floor_rounds)
            )
        )
        return
    if args.only is None and not args.mmsa_venv:
        parser.error("--mmsa-venv (or $MMSA_VENV), or --only msabench")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for threads in args.threads:
        for name in args.models:
            pair = PAIRS[name]
            row = {"method": name, "threads": threads, "mmsa": [], "before": [], "msabench": []}
            for repeat in range(args.repeats):
                if args.only is None:
                    row["mmsa"].append(run_mmsa(pair, threads, args, out))  # the anchor waits for a quiet CPU itself
                    print(json.dumps(row["mmsa"][-1]), file=sys.stderr)
                if args.before:
                    wait_quiet(args.quiet_psi, args.quiet_max_wait)
                    row["before"].append(run_msabench(pair, threads, args, args.before))
                    print(json.dumps(row["before"][-1]), file=sys.stderr)
                wait_quiet(args.quiet_psi, args.quiet_max_wait)
                row["msabench"].append(run_msabench(pair, threads, args))
                print(json.dumps(row["msabench"][-1]), file=sys.stderr)
                print(f"# {name} threads={threads} repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)
            rows.append(row)
            (out / "side_by_side.json").write_text(json.dumps(rows, indent=1))
    print(table(rows))
    print(f"\nraw figures: {out / 'side_by_side.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
