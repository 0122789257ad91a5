"""What a fresh `msabench run` process pays before its first training step, phase by phase.

    python bench/startup.py --data-root $SCRATCH/mmsa-data                  # mosi (the MOSI-shaped pickle), tfn
    python bench/startup.py --data-root $SCRATCH/mmsa-data --before /tmp/msabench-before --repeats 5

Each repeat starts `msabench run --method M --dataset D --seeds 1111 --no-verify` in a new process
(the CLI's own code, through a small bootstrap that only reads the clock) and records, from the
moment the parent starts it: the interpreter up, `import msabench.cli` done, the plugins' catalog
built, the data loaded (check_file, the pickle, mmsa_data), fit() entered, the first training batch
asked for, and that step done; then the process exits. `--before DIR` alternates with another
commit's source tree (first on PYTHONPATH, as in side_by_side.py). Medians over the repeats.
The slowest imports of a run are listed with `python -X importtime`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

BOOTSTRAP = r"""
import json, os, sys, time
marks = {"interpreter": time.time()}
import msabench.cli as cli
marks["import msabench.cli"] = time.time()
from msabench import catalog, components, mmsa, synthetic, train

def wrap(owner, name, before, after):
    original = getattr(owner, name)
    def wrapped(*args, **kwargs):
        if before:
            marks.setdefault(before, time.time())
        result = original(*args, **kwargs)
        if after:
            marks.setdefault(after, time.time())
        return result
    setattr(owner, name, wrapped)

wrap(catalog.Catalog, "from_plugins", "catalog start", "catalog built")
for owner in (mmsa.MMSADataset, synthetic.SyntheticMMSA):
    wrap(owner, "load", "load start", "data loaded")
wrap(train, "fit", "fit entered", None)
batches = components.Split.batches
def timed(self, size, *, shuffle=False, generator=None):
    for count, batch in enumerate(batches(self, size, shuffle=shuffle, generator=generator)):
        if shuffle:
            marks.setdefault("first batch asked", time.time())
            if count == 1:
                marks["first step done"] = time.time()
                print("MARKS " + json.dumps(marks), flush=True)
                os._exit(0)
        yield batch
components.Split.batches = timed
sys.argv = ["msabench", *sys.argv[1:]]
cli.cli()
"""

ORDER = [
    "interpreter",
    "import msabench.cli",
    "catalog built",
    "data loaded",
    "fit entered",
    "first batch asked",
    "first step done",
]


def once(args: argparse.Namespace, tree: str | None, workdir: str) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    if tree:
        env["PYTHONPATH"] = os.pathsep.join([tree, os.path.join(tree, "plugins", "msabench-baselines")])
    command = [sys.executable, "-c", BOOTSTRAP, "run", "--method", args.method, "--dataset", args.dataset]
    command += ["--seeds", "1111", "--no-verify", "--no-progress", "--no-checkpoints", "--quiet"]
    command += ["--results", os.path.join(workdir, "results"), "--leaderboards", os.path.join(workdir, "boards")]
    if args.data_root:
        command += ["--data-root", args.data_root]
    started = time.time()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=workdir)
    line = next((x for x in done.stdout.splitlines() if x.startswith("MARKS ")), None)
    if line is None:
        raise SystemExit(f"the run did not reach its first step:\n{done.stderr[-3000:]}")
    marks = json.loads(line[6:])
    return {name: marks[name] - started for name in ORDER if name in marks}


def slowest_imports(args: argparse.Namespace, count: int = 12) -> list[tuple[str, float]]:
    """Top-level packages by cumulative import time in `python -X importtime -c 'import msabench.cli; catalog'`."""
    code = "import msabench.cli; from msabench import Catalog, get_plugin_manager as pm; Catalog.from_plugins(pm())"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True)
    totals: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        if not name.startswith(" ") and cumulative.isdigit():  # importtime indents nested imports
            top = name.strip().split(".")[0]
            totals[top] = max(totals.get(top, 0.0), int(cumulative) / 1e6)
    return sorted(totals.items(), key=lambda item: -item[1])[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="tfn")
    parser.add_argument("--dataset", default="mosi")
    parser.add_argument("--data-root", default=os.environ.get("MMSA_DATA"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", help="also time the msabench source tree in this folder")
    args = parser.parse_args()
    from tabulate import tabulate

    trees = ([args.before] if args.before else []) + [None]
    runs: dict[str | None, list[dict[str, float]]] = {tree: [] for tree in trees}
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(args.repeats):
            for tree in trees:
                runs[tree].append(once(args, tree, workdir))
    rows = []
    for name in ORDER:
        row = {"reached (s from start)": name}
        for tree in trees:
            values = [run[name] for run in runs[tree] if name in run]
            row["before" if tree else "this tree"] = f"{statistics.median(values):.2f}" if values else "-"
        rows.append(row)
    print(f"{args.method} on {args.dataset}, {args.threads} thread(s), median of {args.repeats}")
    print(tabulate(rows, headers="keys", tablefmt="github"))
    print("\nslowest imports (cumulative s):", ", ".join(f"{n} {s:.2f}" for n, s in slowest_imports(args)))


if __name__ == "__main__":
    main()
