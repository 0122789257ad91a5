"""Peak memory of loading and training on CMU-MOSEI's real shapes, against the bytes of the arrays the run uses.

    python bench/mosei_memory.py --out /tmp/mosei-bench --fractions 0.1 0.25 0.5
    python bench/mosei_memory.py --out /tmp/mosei-bench --fractions 0.1 --before /tmp/msabench-before

For each fraction f it writes a MOSEI-shaped pickle in MMSA's layout (f x 16,326 / 1,871 / 4,659
samples; text 50x768 float32, audio 500x74 and vision 500x35 float64 as MMSA stores them, text_bert
3x50, lengths, ids, raw text, labels; -inf in audio as in MOSEI), one array in memory at a time.
Then, in a fresh process per method, it loads the file through msabench's MOSEI dataset (check_file,
the restricted unpickler, mmsa_data: the code `msabench run` uses, reading only the inputs the
method's encoders take) and trains --steps batches of fit()'s loop. It reports the process's peak
RSS (ru_maxrss) after start-up, after loading and after training, and the bytes of the arrays the
run uses: the float32 tensors of the inputs its encoders read, in all three splits. `--before DIR`
runs the same with another commit's source tree first on PYTHONPATH (see side_by_side.py).
Nothing is kept between fractions unless --keep.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZES = {"train": 16326, "valid": 1871, "test": 4659}
STEPS = {"text": 50, "audio": 500, "vision": 500}
DIMS = {"text": 768, "audio": 74, "vision": 35}
RELATIVE = "MOSEI/Processed/unaligned_50.pkl"


class Generated:
    """An array made only when it is pickled, so that the writer holds one big array at a time."""

    def __init__(self, make):
        self.make = make

    def __reduce_ex__(self, protocol):
        return self.make().__reduce_ex__(protocol)


def normal(seed: int, shape: tuple[int, ...], dtype, chunk: int = 1 << 22) -> np.ndarray:
    """Standard-normal values made in float32 chunks, stored as `dtype` (no full-size float64 temporary)."""
    rng = np.random.default_rng(seed)
    out = np.empty(shape, dtype=dtype)
    flat = out.reshape(-1)
    for start in range(0, flat.size, chunk):
        flat[start : start + chunk] = rng.standard_normal(min(chunk, flat.size - start), dtype=np.float32)
    return out


def mosei_shaped(fraction: float) -> dict:
    raw = {}
    for index, (split, size) in enumerate(SIZES.items()):
        n = max(2, round(size * fraction))
        rng = np.random.default_rng(index)
        labels = np.round(rng.uniform(-3, 3, n) * 3) / 3

        def audio(n=n, index=index):
            values = normal(10 + index, (n, STEPS["audio"], DIMS["audio"]), np.float64)
            values[:, 0, :3] = -np.inf  # MOSEI's COVAREP audio holds -inf
            return values

        raw[split] = {
            "raw_text": np.array([f"clip {i}" for i in range(n)], dtype=object),
            "text": Generated(
                lambda n=n, index=index: normal(20 + index, (n, STEPS["text"], DIMS["text"]), np.float32)
            ),
            "text_bert": Generated(
                lambda n=n: np.stack([np.full((n, 50), 101.0), np.ones((n, 50)), np.zeros((n, 50))], axis=1)
            ),
            "audio": Generated(audio),
            "vision": Generated(
                lambda n=n, index=index: normal(30 + index, (n, STEPS["vision"], DIMS["vision"]), np.float64)
            ),
            "audio_lengths": [int(x) for x in rng.integers(50, STEPS["audio"] + 1, n)],
            "vision_lengths": [int(x) for x in rng.integers(50, STEPS["vision"] + 1, n)],
            "id": np.array([f"video{i}$_${i % 9}" for i in range(n)], dtype=object),
            "annotations": np.array(["Positive" if v > 0 else "Negative" for v in labels], dtype=object),
            "classification_labels": (np.sign(labels) + 1).astype(np.float64),
            "regression_labels": labels.astype(np.float32),
        }
    return raw


def make(root: Path, fraction: float) -> Path:
    path = root / RELATIVE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickler = pickle.Pickler(handle, protocol=4)
        pickler.fast = True  # no memo: each generated array is freed once written
        pickler.dump(mosei_shaped(fraction))
    return path


# ---- the measured process --------------------------------------------------------------------------


def rss_mb() -> float:
    """This process's peak resident memory so far (VmHWM: unlike ru_maxrss, not inherited from the parent)."""
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:")) / 1024


def child(root: str, method_name: str, steps: int) -> dict:
    import torch

    from msabench import Catalog, Protocol, Split, fit, get_plugin_manager
    from msabench.catalog import input_key

    torch.set_num_threads(2)
    catalog = Catalog.from_plugins(get_plugin_manager())
    method = catalog.methods[method_name]
    start_mb = rss_mb()
    inputs = tuple(input_key(catalog.encoders[name], modality) for modality, name in method.encoders.items())
    dataset = catalog.datasets["mosei"](root, verify=False)
    started = time.perf_counter()
    try:
        data = dataset.load(inputs=inputs)
    except TypeError:  # an msabench from before load(inputs=...): it reads every input
        data = dataset.load()
    load_s = time.perf_counter() - started
    loaded_mb = rss_mb()
    used = sum(split.tensors[key].nbytes for split in data.splits.values() for key in inputs)

    class Enough(Exception):
        pass

    original = Split.batches

    def capped(self, size, *, shuffle=False, generator=None):
        for count, batch in enumerate(original(self, size, shuffle=shuffle, generator=generator)):
            if shuffle and count == steps:
                raise Enough
            yield batch

    Split.batches = capped
    started = time.perf_counter()
    with contextlib.suppress(Enough):
        fit(method, data, catalog=catalog, seed=1111, protocol=Protocol(max_epochs=1), device="cpu")
    return {
        "method": method_name,
        "samples": {name: len(split) for name, split in data.splits.items()},
        "inputs": list(inputs),
        "used_mb": round(used / 2**20, 1),
        "start_mb": round(start_mb, 1),
        "after_load_mb": round(loaded_mb, 1),
        "after_train_mb": round(rss_mb(), 1),
        "load_s": round(load_s, 1),
        "train_s": round(time.perf_counter() - started, 1),
    }


def measure(root: Path, method: str, steps: int, tree: str | None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    if tree:
        env["PYTHONPATH"] = os.pathsep.join([tree, os.path.join(tree, "plugins", "msabench-baselines")])
    command = [sys.executable, __file__, "--child", method, "--root", str(root), "--steps", str(steps)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{method} on {root} failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "tree": tree or "this"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="/tmp/msabench-mosei-memory", help="where the pickles are written")
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.1, 0.25, 0.5])
    parser.add_argument("--methods", nargs="+", default=["lf-dnn", "tfn"])
    parser.add_argument("--steps", type=int, default=20, help="training batches per run")
    parser.add_argument("--before", help="also measure the msabench source tree in this folder")
    parser.add_argument("--keep", action="store_true", help="keep the generated pickles")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.root, args.child, args.steps)))
        return
    from tabulate import tabulate

    rows = []
    for fraction in args.fractions:
        root = Path(args.out) / f"mosei-{fraction}"
        started = time.perf_counter()
        path = make(root, fraction)
        made = {
            "fraction": fraction,
            "file_mb": round(path.stat().st_size / 2**20),
            "make_s": round(time.perf_counter() - started),
        }
        for method in args.methods:
            for tree in ([args.before] if args.before else []) + [None]:
                run = {**made, **measure(root, method, args.steps, tree)}
                run["peak_over_used"] = round(max(run["after_load_mb"], run["after_train_mb"]) / run["used_mb"], 3)
                print(json.dumps(run), file=sys.stderr)
                rows.append(run)
        if not args.keep:
            shutil.rmtree(root)
    (Path(args.out) / "mosei_memory.json").write_text(json.dumps(rows, indent=1))
    print(tabulate(rows, headers="keys", tablefmt="github"))


if __name__ == "__main__":
    main()
