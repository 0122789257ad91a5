"""MulT's training speed and memory at CMU-MOSI's unaligned shapes, on the MOSI-shaped pickle MMSA was timed on.

    python ../shared/mmsa-reference/make_mosi_shaped.py /tmp/mmsa-data        # once: ~12 s, ~900 MB
    OMP_NUM_THREADS=1 .venv/bin/python bench/mult.py --data-root /tmp/mmsa-data              # every setting
    .venv/bin/python bench/mult.py --data-root /tmp/mmsa-data --only unaligned --threads 2 --batches 20

Each setting runs in its own process (so peak RSS is its own): `mult` with MMSA's MOSI recipe (width 50, 10
heads, 4 layers, kernels 5, batch 16, gradients accumulated over 8 batches, clipped to 0.6) through the host's
training step (`fit`'s: in-memory batches, forward, backward, optimizer step every 8 batches), on

- ``unaligned``: the pickle as it is (text 50x768 all real; audio 375x5 and vision 500x20 with lengths drawn in
  10..374 and 10..499, so attention skips the padding);
- ``full``: the same pickle with every audio and vision length set to its full 375 / 500 frames (no padding to
  skip: the gain of the kernels alone);
- ``aligned``: aligned_50.pkl (50/50/50, full length), MMSA's other MulT figure;
- ``causal``: ``mult-causal`` (MMSA's masking: attention over the padded frames, causal mask) on the unaligned file.

It times `--batches` training batches after `--warmup` (a whole epoch with ``--batches 0``) and reports samples/s
(wall and CPU time, the latter insensitive to other jobs on the machine), the share of the time spent producing
batches (index-selecting the in-memory tensors and moving them to the device), peak RSS of the process (data
included) and the load average. ``--repeat`` runs a setting twice and checks that the losses are identical.
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
from msabench.protocol import PROTOCOL
from msabench.runtime import set_threads
from msabench.train import assemble, optimizer_step, resolve_hparams
from msabench_core.mmsa import MOSI, MOSIAligned

MMSA = {  # MMSA 2.2.1 on this machine kind, 2 threads, quiet (../shared/mmsa-reference/README.md)
    "unaligned": {"samples_per_s": 0.584, "peak_rss_mb": 8308},
    "aligned": {"samples_per_s": 20.5, "peak_rss_mb": 2683},
}
SETTINGS = ("unaligned", "full", "aligned", "causal")


def measure(setting: str, data_root: str, batches: int, warmup: int, threads: int, drop: str) -> dict:
    set_threads(threads)
    load_started = time.perf_counter()
    dataset = MOSIAligned if setting == "aligned" else MOSI
    data = dataset(data_root, verify=False).load()
    load_s = time.perf_counter() - load_started
    train = data.splits["train"]
    if setting == "full":
        for key in ("audio", "vision"):
            train.tensors[f"{key}_lengths"][:] = train.tensors[key].shape[1]
    catalog = Catalog.from_plugins(get_plugin_manager())
    method = catalog.methods["mult-causal" if setting == "causal" else "mult"]
    hparams = method.hparams_for(data)
    hparams["fusion"]["attention_dropout"] = drop
    hparams = resolve_hparams(hparams, data, 1111, PROTOCOL)
    run = assemble(method, data, catalog=catalog, seed=1111, hparams=hparams, device="cpu")
    size, every = run.settings["batch_size"], run.settings["accumulate"]
    count = -(-len(train) // size)
    wanted = count if batches == 0 else min(count, warmup + batches)
    run.model.train()
    run.objective.train()
    run.optimizer.zero_grad(set_to_none=True)
    losses, timed = [], {"wall": 0.0, "cpu": 0.0, "input": 0.0, "samples": 0}
    iterator = train.batches(size, shuffle=True, generator=run.generator)
    load_before = os.getloadavg()[0]
    for number in range(wanted):
        wall, cpu = time.perf_counter(), time.process_time()
        batch = next(iterator).to(run.device)
        produced = time.perf_counter()
        loss = run.objective(run.model(batch), batch)["total"]
        (loss / every).backward()
        if (number + 1) % every == 0 or number + 1 == count:
            optimizer_step(run)
        losses.append(float(loss.detach()))
        if number >= warmup or batches == 0:
            timed["wall"] += time.perf_counter() - wall
            timed["cpu"] += time.process_time() - cpu
            timed["input"] += produced - wall
            timed["samples"] += batch.size
    return {
        "setting": setting,
        "attention_dropout": drop,
        "threads": threads,
        "batches_timed": wanted - (0 if batches == 0 else warmup),
        "samples_per_s": timed["samples"] / timed["wall"],
        "cpu_s_per_sample": timed["cpu"] / timed["samples"],
        "epoch_s_estimate": len(train) * timed["wall"] / timed["samples"],
        "input_share": timed["input"] / timed["wall"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load_s": load_s,
        "parameters": run.parameters["trainable"],
        "loadavg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "losses": losses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True, help="folder with MOSI/Processed/{unaligned,aligned}_50.pkl")
    parser.add_argument("--only", choices=SETTINGS, action="append", help="run only these settings (repeatable)")
    parser.add_argument("--batches", type=int, default=16, help="timed batches per setting (0: a whole epoch)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches first")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--attention-dropout", choices=("weights", "keys"), action="append", help="MulT's fusion.attention_dropout"
    )
    parser.add_argument("--repeat", action="store_true", help="run each setting twice and compare the losses")
    parser.add_argument("--out", help="write every row as JSON here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    drops = args.attention_dropout or ["weights", "keys"]
    if args.child:
        print(json.dumps(measure(args.child, args.data_root, args.batches, args.warmup, args.threads, drops[0])))
        return
    rows = []
    for setting, drop in [(setting, drop) for setting in args.only or SETTINGS for drop in drops]:
        runs = []
        for _ in range(2 if args.repeat else 1):
            command = [sys.executable, __file__, "--child", setting, "--data-root", args.data_root]
            command += ["--batches", str(args.batches), "--warmup", str(args.warmup), "--threads", str(args.threads)]
            command += ["--attention-dropout", drop]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
        row = runs[0]
        if args.repeat:
            row["identical_on_repeat"] = runs[0]["losses"] == runs[1]["losses"]
        reference = MMSA.get("aligned" if setting == "aligned" else "unaligned")
        row["vs_mmsa_speed"] = row["samples_per_s"] / reference["samples_per_s"]
        row["vs_mmsa_memory"] = row["peak_rss_mb"] / reference["peak_rss_mb"]
        rows.append(row)
        shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items() if k != "losses"}
        print(json.dumps(shown), flush=True)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
