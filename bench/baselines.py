"""Per-epoch time, samples/s, peak memory and input-pipeline share of LF-DNN, TFN and LMF
on synthetic data with CMU-MOSI's real shapes (1284/229/686 samples; text 50x768, audio
375x5, vision 500x20).

    python bench/baselines.py                 # all three, 3 timed epochs each after 1 warm-up
    python bench/baselines.py tfn --epochs 5

Each method runs in its own process so peak RSS is its own. The step loop is fit()'s:
the same batches (index batching of in-memory tensors), forward, backward, optimizer step;
"input" is the time spent producing a batch and moving it to the device.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from msabench import Catalog, Task, get_plugin_manager
from msabench.core.synthetic import SyntheticMMSA
from msabench.train import build_optimizer, seed_everything, select_device


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
    hparams = method.hparams_for(data)
    device = select_device(device)
    seed_everything(1111)
    model, objective = catalog.build(method, data, hparams)
    model.to(device)
    objective.to(device)
    optimizer = build_optimizer(model, objective, hparams["train"])
    batch_size = hparams["train"]["batch_size"]
    generator = torch.Generator().manual_seed(1111)
    split = data.splits["train"]
    timings = []
    for epoch in range(epochs + 1):  # epoch 0 warms up
        model.train()
        input_s = compute_s = 0.0
        epoch_started = time.perf_counter()
        batches = split.batches(batch_size, shuffle=True, generator=generator)
        while True:
            tick = time.perf_counter()
            batch = next(batches, None)
            if batch is None:
                break
            batch = batch.to(device)
            tock = time.perf_counter()
            losses = objective(model(batch), batch)
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            input_s += tock - tick
            compute_s += time.perf_counter() - tock
        if epoch:
            timings.append({"epoch_s": time.perf_counter() - epoch_started, "input_s": input_s, "compute_s": compute_s})
    epoch_s = sum(t["epoch_s"] for t in timings) / len(timings)
    input_s = sum(t["input_s"] for t in timings) / len(timings)
    return {
        "method": method_name,
        "batch_size": batch_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "data_load_s": round(load_s, 2),
        "epoch_s": round(epoch_s, 3),
        "samples_per_s": round(len(split) / epoch_s, 1),
        "input_share": round(input_s / epoch_s, 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "device": str(device),
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
