"""Training a result again from its recorded request, for `msabench verify --rerun`.

The request is the result's ``request.command`` (from format version 2), else the command rebuilt from the result
(`msabench.command`). It runs in a subprocess, for the result's seed only, with the recorded thread count, into a
temporary folder. On the CPU the new run's metrics and per-sample predictions must equal the stored ones bit for bit;
a run recorded on a GPU must give every metric within `GPU_TOLERANCE` (GPU kernels need not be deterministic).
"""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from msabench import schema
from msabench.command import command, rerun_argv
from msabench.results import RunResult, result_files

GPU_TOLERANCE = 5e-3  # a rerun of a GPU run: every metric within this (0.5 points of accuracy, 0.005 MAE or Corr)


def rerun(
    result: RunResult,
    request: dict | None,
    *,
    data_root: str | Path,
    program: Sequence[str],
    timeout: float | None = None,
) -> str | None:
    """Train `result` again (see the module's docstring): None when it matches, else what went wrong (one line)."""
    found = command(result, request)
    threads = (request or {}).get("threads") or result.hardware.get("torch_threads") or 1
    gpu = str(result.hardware.get("device", "cpu")).startswith("cuda")
    if gpu:
        import torch

        if not torch.cuda.is_available():
            return "recorded on a GPU: its rerun needs a machine with CUDA"
    with tempfile.TemporaryDirectory(prefix="msabench-rerun-") as folder:
        try:
            argv = rerun_argv(
                found.text,
                seed=result.seed,
                results=str(Path(folder) / "results"),
                threads=int(threads),
                device="cuda" if gpu else "cpu",
                data_root=str(data_root),
                program=program,
            )
        except ValueError as error:
            return f"{error}: its request cannot be rerun"
        try:
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return f"`{found.text}` did not finish in {timeout} s"
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            return f"`{found.text}` failed (exit {done.returncode}): {last}"
        again = [
            r
            for r in _load_all(result_files(Path(folder) / "results"))
            if r.method == result.method and r.seed == result.seed
        ]
    how = "its recorded command" if found.recorded else f"the command rebuilt from it (`{found.text}`)"
    if not again:
        return f"{how} wrote no result for {result.method}, seed {result.seed}"
    other = again[0]
    tolerance = GPU_TOLERANCE if gpu else 0.0
    wrong = [
        key
        for key in sorted(set(result.metrics) | set(other.metrics))
        if not same(result.metrics.get(key), other.metrics.get(key), tolerance)
    ]
    if not gpu and not wrong and other.predictions.get("predictions") != result.predictions.get("predictions"):
        wrong = ["the per-sample predictions"]
    if not wrong:
        return None
    key = wrong[0]
    detail = (
        f"{key}: stored {number(result.metrics.get(key))}, rerun {number(other.metrics.get(key))}"
        if key in result.metrics or key in other.metrics
        else f"{key} differ"
    )
    limit = f"within {GPU_TOLERANCE}" if gpu else "bit-identically on the CPU"
    note = f" ({'; '.join(found.missing)} not restored)" if found.missing else ""
    return (
        f"trained again by {how}{note}, it does not match {limit} ({detail}; {len(wrong)} differing): the result "
        "does not come from this code and request; rerun it and submit the new result"
    )


def same(stored: Any, recomputed: Any, tolerance: float) -> bool:
    stored = math.nan if stored is None else stored
    recomputed = math.nan if recomputed is None else recomputed
    if math.isnan(stored) or math.isnan(recomputed):
        return math.isnan(stored) and math.isnan(recomputed)
    return abs(stored - recomputed) <= tolerance


def number(value: Any) -> str:
    return "null" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(value)


def _load_all(paths: Iterable[Path]) -> list[RunResult]:
    loaded = []
    for path in paths:
        data, problems = schema.load(path)
        if not problems:
            loaded.append(schema.to_result(data)[0])
    return loaded
