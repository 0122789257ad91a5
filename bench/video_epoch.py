"""One CPU training epoch of each video-track method at CMU-MOSI's shapes, extrapolated from a few steps.

    python ../shared/mmsa-reference/make_mosi_shaped.py /tmp/mmsa-data      # once (MOSI-shaped pickles)
    OMP_NUM_THREADS=1 .venv/bin/python bench/video_epoch.py --data-root /tmp/mmsa-data
    .venv/bin/python bench/video_epoch.py --data-root /tmp/mmsa-data --only self-mm --only misa --steps 3

Each method runs in its own process with its MMSA MOSI recipe, on the pickle it reads in MMSA (``mosi``:
unaligned_50.pkl, text 50x768, audio 375x5, vision 500x20 with varying lengths; ``mosi-aligned``: aligned_50.pkl,
50/50/50, for EF-LSTM, MFN and MAG-BERT). The BERT methods (MISA, Self-MM, MAG-BERT) get a BERT-base-sized
model with random weights built from a config (hidden 768, 12 layers, 12 heads, feed-forward 3072, vocabulary
30522): nothing is downloaded, and a step costs what it costs with bert-base-uncased. It times `--steps`
training batches after one warm-up (`fit`'s step: batch, forward, backward, and the optimizer step where the
method's accumulation makes one) and extrapolates to one pass over the 1284 training samples; the figures are
estimates from those steps, not a measured epoch. CPU time is reported beside wall time: on a shared machine it
is the figure that does not depend on the other jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from msabench import Catalog, get_plugin_manager
from msabench.components import merge
from msabench.protocol import PROTOCOL
from msabench.runtime import set_threads
from msabench.train import assemble, optimizer_step, resolve_hparams
from msabench_core.mmsa import MOSI, MOSIAligned

BERT_BASE = {"random_init": True, "hidden_size": 768, "layers": 12, "heads": 12, "intermediate_size": 3072}
METHODS = {  # method -> (dataset, hyper-parameter changes)
    "mult": (MOSI, {}),
    "mult-causal": (MOSI, {}),
    "misa": (MOSI, {"text": BERT_BASE}),
    "self-mm": (MOSI, {"text": BERT_BASE}),
    "ef-lstm": (MOSIAligned, {}),
    "lf-lstm": (MOSI, {}),
    "mfn": (MOSIAligned, {}),
    "mag-bert": (
        MOSIAligned,
        {"text": BERT_BASE, "fusion": {"pretrained": None, "layers": 12, "heads": 12, "intermediate_size": 3072}},
    ),
}


def measure(name: str, data_root: str, steps: int, threads: int) -> dict:
    set_threads(threads)
    dataset, changes = METHODS[name]
    data = dataset(data_root, verify=False).load()
    catalog = Catalog.from_plugins(get_plugin_manager())
    method = catalog.methods[name]
    hparams = resolve_hparams(merge(method.hparams_for(data), changes), data, 1111, PROTOCOL)
    run = assemble(method, data, catalog=catalog, seed=1111, hparams=hparams, device="cpu")
    train = data.splits["train"]
    size, every = run.settings["batch_size"], run.settings["accumulate"]
    count = -(-len(train) // size)
    run.model.train()
    run.objective.train()
    run.objective.on_fit_start(run)
    run.objective.on_epoch_start(run, 1)
    batches = train.batches(size, shuffle=True, generator=run.generator)
    wall = cpu = 0.0
    load_before = os.getloadavg()[0]
    for number in range(steps + 1):
        started, started_cpu = time.perf_counter(), time.process_time()
        batch = next(batches).to(run.device)
        losses = run.objective(run.model(batch), batch)
        (losses["total"] / every).backward()
        for callback in run.callbacks:
            callback.on_after_backward(run, batch)
        if (number + 1) % every == 0:
            optimizer_step(run)
        if number:  # the first step warms up
            wall += time.perf_counter() - started
            cpu += time.process_time() - started_cpu
    return {
        "method": name,
        "dataset": data.name,
        "batch": size,
        "steps_timed": steps,
        "step_s": wall / steps,
        "step_cpu_s": cpu / steps,
        "epoch_s_estimate": count * wall / steps,
        "epoch_cpu_s_estimate": count * cpu / steps,
        "samples_per_s": size * steps / wall,
        "parameters": run.parameters["trainable"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": threads,
        "loadavg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True, help="folder with MOSI/Processed/{unaligned,aligned}_50.pkl")
    parser.add_argument("--only", choices=METHODS, action="append", help="these methods only (repeatable)")
    parser.add_argument("--steps", type=int, default=4, help="timed training steps after one warm-up")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.data_root, args.steps, args.threads)))
        return
    for name in args.only or METHODS:
        command = [sys.executable, __file__, "--child", name, "--data-root", args.data_root]
        command += ["--steps", str(args.steps), "--threads", str(args.threads)]
        row = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)


if __name__ == "__main__":
    main()
