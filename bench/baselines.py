"""Per-epoch time, samples/s, peak memory and input-pipeline share of LF-DNN, TFN and LMF
on synthetic data with CMU-MOSI's real shapes (1284/229/686 samples; text 50x768, audio
375x5, vision 500x20).

    python bench/baselines.py                 # all three, 3 timed epochs each after 1 warm-up
    python bench/baselines.py tfn --epochs 5

Each method runs in its own process so peak RSS is its own. The epochs are fit()'s own
(`msabench.train.assemble` and `train_epoch`); "input" is the time the same shuffled batching
and device transfer take without the model, as a share of an epoch.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from msabench import PROTOCOL, Catalog, Task, get_plugin_manager
from msabench.train import assemble, resolve_hparams, train_epoch
from msabench_core.synthetic import SyntheticMMSA


class MOSIShaped(SyntheticMMSA):
    """Synthetic data with MOSI's split sizes, sequence lengths and feature dims."""

    name = "mosi-shaped"
    task = Task("regression", "mosi", label_range=(-3.0, 3.0))
    dims = {"text": 768, "audio": 5, "vision": 20}
    sizes = {"train": 1284, "valid": 229, "test": 686}
    lengths = {"text": 50, "audio": 375, "vision": 500}
    files = {"mosi-shaped/unaligned.pkl": None}
    hparams_from = "mosi"


def measure(method_name: str, epochs: int, device: str) -> dict:
    catalog = Catalog.from_plugins(get_plugin_manager())
    started = time.perf_counter()
    data = MOSIShaped("/nonexistent").load()
    load_s = time.perf_counter() - started
    method = catalog.methods[method_name]
    hparams = resolve_hparams(method.hparams_for(data), data, 1111, PROTOCOL)
    run = assemble(method, data, catalog=catalog, seed=1111, hparams=hparams, device=device)
    timings = []
    for epoch in range(epochs + 1):  # epoch 0 warms up
        epoch_started = time.perf_counter()
        train_epoch(run)
        if run.device.type == "cuda":
            torch.cuda.synchronize()
        if epoch:
            timings.append(time.perf_counter() - epoch_started)
    # The input pipeline alone: the same shuffled batching and device transfer, without the model.
    split, batch_size = data.splits["train"], run.settings["batch_size"]
    input_started = time.perf_counter()
    for batch in split.batches(batch_size, shuffle=True, generator=torch.Generator().manual_seed(0)):
        batch.to(run.device)
    input_s = time.perf_counter() - input_started
    epoch_s = sum(timings) / len(timings)
    return {
        "method": method_name,
        "batch_size": batch_size,
        "parameters": sum(p.numel() for p in run.model.parameters()),
        "data_load_s": round(load_s, 2),
        "epoch_s": round(epoch_s, 3),
        "samples_per_s": round(len(split) / epoch_s, 1),
        "input_share": round(input_s / epoch_s, 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "device": str(run.device),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("methods", nargs="*", default=["lf-dnn", "tfn", "lmf"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.methods[0], args.epochs, args.device)))
        return
    rows = []
    for method in args.methods:
        out = subprocess.run(
            [sys.executable, __file__, method, "--epochs", str(args.epochs), "--device", args.device, "--child"],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    from tabulate import tabulate

    print(tabulate(rows, headers="keys", tablefmt="github"))


if __name__ == "__main__":
    main()
