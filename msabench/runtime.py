"""What a run runs on: seeds, the device and precision, CPU threads, the processes of a distributed run, glibc's
memory reuse, and the versions and hardware a result records."""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import platform
import random
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from msabench import __version__
from msabench.components import Batch
from msabench.errors import CatalogError

log = logging.getLogger("msabench")

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULT_THREADS = 1  # fixed, so a run's numbers never depend on the machine or its load (see set_threads)


@dataclass(frozen=True)
class Distributed:
    """One process of a run trained by several (torchrun): each takes its share of every global batch."""

    rank: int
    size: int

    def share(self, batch: Batch) -> tuple[Batch, float]:
        """This rank's contiguous part of a global batch, and the weight that makes the ranks' averaged gradients
        those of the global batch's mean loss (shares can differ by one sample). A rank left without samples (a last
        batch smaller than the world) takes one with weight 0, so that every rank joins the gradient all-reduce."""
        rows = torch.tensor_split(torch.arange(batch.size), self.size)[self.rank]
        weight = len(rows) * self.size / batch.size
        if not len(rows):
            rows = torch.zeros(1, dtype=torch.long)
        return Batch({key: value[rows] for key, value in batch.items()}), weight


def keep_freed_memory(limit: int = 1 << 30) -> None:
    """Keep memory that training frees mapped for reuse, up to `limit` bytes (glibc's malloc; elsewhere a no-op).

    Each training step frees and reallocates the same buffers (gradients, activations, optimizer
    and dropout temporaries). By default glibc maps every block above 128 KiB-32 MiB afresh and
    hands freed memory at the top of its heap back to the kernel, which then page-faults and zeroes
    each 4 KiB page on the next touch: ~2.3 us a page on this machine, ~8 ms a step for one 18 MB
    activation of TFN. Blocks up to 32 MiB (glibc's largest mmap threshold) now come from the heap
    and stay there; larger ones are still mapped and unmapped, so that a step's peak memory does
    not grow by heap fragmentation around huge blocks (mmap off entirely: +450 MB for TFN on
    MOSEI). Process-wide, from the first `fit` on. Results are unchanged.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: blocks up to 32 MiB come from the heap
    mallopt(-1, limit)  # M_TRIM_THRESHOLD: keep up to `limit` free bytes at the top of the heap


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def select_device(device: str | torch.device | None) -> torch.device:
    """CUDA when present, CPU otherwise, unless a device is named; a device this machine lacks is a one-line error."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise CatalogError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N.") from None
    if chosen.type == "cuda":
        if torch.version.cuda is None:
            raise CatalogError(
                f"--device {device}: this torch ({torch.__version__}) is a CPU-only build. Install a CUDA build "
                "(pip install torch --index-url https://download.pytorch.org/whl/cu124, see pytorch.org), or use "
                "--device cpu."
            )
        count = torch.cuda.device_count()
        if count == 0 or (chosen.index or 0) >= count:
            raise CatalogError(f"--device {device}: this machine has {count} CUDA device(s) visible; use --device cpu.")
    elif chosen.type == "mps" and not torch.backends.mps.is_available():
        raise CatalogError(f"--device {device}: MPS is not available on this machine; use --device cpu.")
    elif chosen.type not in ("cpu", "cuda", "mps"):
        raise CatalogError(f"--device {device}: msabench runs on cpu, cuda or mps.")
    if chosen.type == "cpu" and chosen.index not in (None, 0):
        raise CatalogError(f"--device {device}: the CPU has no numbered devices; use --device cpu (and --threads N).")
    return chosen


def check_device(device: str, precision: str) -> torch.device:
    """The device exists here and computes in `precision` (before any data loads)."""
    chosen = select_device(device)
    check_precision(precision, chosen)
    return chosen


def check_precision(precision: str, device: torch.device) -> None:
    """The precision exists and this device computes in it."""
    if precision not in PRECISIONS:
        raise CatalogError(f"unknown precision {precision!r}: use fp32, bf16 or fp16.")
    if precision == "fp16" and device.type == "cpu":
        raise CatalogError(
            "--precision fp16 needs a GPU: autocast on the CPU computes in bf16 only. Use --precision bf16 on the CPU."
        )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise CatalogError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bf16; use --precision fp16.")


def init_distributed() -> Distributed | None:
    """Join the process group torchrun set up (NCCL on CUDA, gloo on the CPU), or None in a single process.

    Under ``torchrun --nproc-per-node N -m msabench run ...`` each process trains its share of every batch;
    validation and test run on the whole splits in every process, and rank 0 writes the result."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return None
    if not torch.distributed.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    return Distributed(torch.distributed.get_rank(), torch.distributed.get_world_size())


def usable_threads(threads: int | None = None) -> int:
    """The thread count a run uses: DEFAULT_THREADS unless given; more than this machine's CPUs is capped to them,
    with a warning (the count used is what the result records)."""
    if threads is None:
        return DEFAULT_THREADS
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise CatalogError(f"--threads must be a whole number >= 1; got {threads!r}.")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if threads > cpus:
        log.warning(
            "--threads %d: this machine has %d CPUs; using %d (the count the result records)", threads, cpus, cpus
        )
        return cpus
    return threads


def set_threads(threads: int | None = None) -> int:
    """Use a fixed number of CPU threads (DEFAULT_THREADS unless given): the count changes how sums are split,
    so a count that followed the machine (or its load) would change the numbers; recorded in every result."""
    threads = DEFAULT_THREADS if threads is None else threads
    if threads < 1:
        raise CatalogError(f"--threads must be at least 1; got {threads}.")
    torch.set_num_threads(threads)
    return threads


def versions(distributions: dict[str, str] | None = None) -> dict[str, str]:
    """msabench's, Python's and the main libraries' versions, and those of the plugin distributions given."""
    found = {
        "msabench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    for module in ("transformers", "datasets", "peft"):
        if module in sys.modules:
            found[module] = sys.modules[module].__version__
    found.update(distributions or {})
    return found


def hardware(device: torch.device) -> dict[str, Any]:
    info = {
        "device": str(device),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def peak_memory(device: torch.device) -> dict[str, float]:
    """Process peak resident memory (since start) and, on CUDA, this run's peak allocated memory, in MiB."""
    peak = {"rss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device.type == "cuda":
        peak["cuda"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return peak


@functools.cache
def source_commit() -> tuple[str | None, bool | None]:
    """(commit, uncommitted changes?) of the git checkout msabench runs from; (None, None) for an installed copy."""
    folder = Path(__file__).resolve().parent.parent
    if not (folder / ".git").exists():
        return None, None
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        changes = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    if head.returncode != 0:
        return None, None
    return head.stdout.strip(), bool(changes.stdout.strip()) if changes.returncode == 0 else None


def load_torch(path: str | Path, map_location: Any = "cpu") -> Any:
    """`torch.load` with weights only (a checkpoint never runs code); a file that is not such a checkpoint raises
    ValueError with one line saying why (not torch's advice to load it with ``weights_only=False``)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        text = " ".join(str(error).split())
        if "weights_only" in text or "Weights only load failed" in text:
            why = "it holds objects other than tensors and plain containers, which msabench does not load"
        elif isinstance(error, (EOFError, RuntimeError)) and ("zip" in text.lower() or "central directory" in text):
            why = "it is not a complete torch file (truncated or another format)"
        else:
            why = f"{type(error).__name__}: {text[:160]}"
        raise ValueError(why) from None
