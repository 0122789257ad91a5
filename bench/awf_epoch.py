"""What a CPU training epoch of AWF costs at MOSI's, MOSEI's and IEMOCAP's real shapes (beside the paper's Table 6).

Random tensors of each dataset's shapes (MMSA's unaligned pickles; MulT's unaligned IEMOCAP), lengths drawn
between half and all of each padded length, the method's Table 2 recipe for that dataset, BERT-base-sized
text BERT (hidden 768, 12 layers, 12 heads, vocabulary 30522; random weights from its config, nothing is
downloaded; IEMOCAP: the 300-d word vectors through the text LSTM). Steps are what fit() runs, B-fusion
included (gradient statistics with create_graph before the backward, omega's step after it): the host's
`train_epoch` over a train split of `--steps` batches, timed after one warm-up step, then extrapolated to the
dataset's train split; the validation pass is timed on `--steps` batches and extrapolated to its valid split.

    OMP_NUM_THREADS=1 .venv/bin/python bench/awf_epoch.py mosi --steps 3
    OMP_NUM_THREADS=1 .venv/bin/python bench/awf_epoch.py iemocap --steps 20
    .venv/bin/python bench/awf_epoch.py mosei --method awf-no-gb   # without B-fusion's extra gradient
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from msabench import EMOTIONS, PROTOCOL, Catalog, Data, Split, Task, get_plugin_manager
from msabench.train import assemble, evaluate, resolve_hparams, train_epoch

SHAPES = {  # split sizes (train, valid), padded lengths and feature dims (text = BERT ids or word vectors)
    "mosi": ((1284, 229), {"text": 50, "audio": 375, "vision": 500}, {"audio": 5, "vision": 20}),
    "mosei": ((16326, 1871), {"text": 50, "audio": 500, "vision": 500}, {"audio": 74, "vision": 35}),
    "iemocap": ((2717, 798), {"text": 20, "audio": 400, "vision": 500}, {"text": 300, "audio": 74, "vision": 35}),
}
BERT_BASE = {"random_init": True, "hidden_size": 768, "layers": 12, "heads": 12, "intermediate_size": 3072}
TABLE6 = {"mosi": 6.78, "mosei": 65.33, "iemocap": 12.76}  # the paper's seconds per epoch (hardware not stated)


def shaped(name: str, n: int) -> Data:
    """`n` random samples with the dataset's shapes."""
    (_, _), lengths, dims = SHAPES[name]
    g = torch.Generator().manual_seed(0)

    def real(steps):
        return torch.randint(steps // 2, steps + 1, (n,), generator=g)

    tensors = {f"{m}_lengths": real(lengths[m]) for m in ("audio", "vision")}
    for m in ("audio", "vision"):
        tensors[m] = torch.randn(n, lengths[m], dims[m], generator=g)
    tensors["text_lengths"] = real(lengths["text"])
    if name == "iemocap":
        tensors["text"] = torch.randn(n, lengths["text"], dims["text"], generator=g)
        tensors["label"] = torch.randint(0, 2, (n, len(EMOTIONS)), generator=g)
        task = Task("multilabel", "iemocap", classes=EMOTIONS)
    else:
        mask = (torch.arange(lengths["text"])[None, :] < tensors["text_lengths"][:, None]).long()
        ids = torch.randint(1000, 30522, (n, lengths["text"]), generator=g) * mask
        tensors["text_bert"] = torch.stack([ids, mask, torch.zeros_like(ids)], dim=1)
        tensors["label"] = torch.randint(-30, 31, (n,), generator=g) / 10
        task = Task("regression", "mosi", label_range=(-3.0, 3.0))
    split = Split("train", [str(i) for i in range(n)], tensors)
    return Data(name, task, {"train": split, "valid": split, "test": split}, {}, vocab_size=30522)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=sorted(SHAPES))
    parser.add_argument("--method", default="awf")
    parser.add_argument("--steps", type=int, default=3, help="timed training batches (after one warm-up batch)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    catalog = Catalog.from_plugins(get_plugin_manager())
    method = catalog.methods[args.method].for_dataset(args.dataset)
    hparams = method.hparams_for(shaped(args.dataset, 1))
    batch = hparams["train"]["batch_size"]
    if args.dataset != "iemocap":
        hparams["text"] = {**hparams.get("text", {}), **BERT_BASE}
    data = shaped(args.dataset, batch * args.steps)
    run = assemble(method, data, catalog=catalog, seed=1111, hparams=resolve_hparams(hparams, data, 1111, PROTOCOL))
    for callback in run.callbacks:
        callback.on_fit_start(run)
    warm = shaped(args.dataset, batch)
    run.data.splits["train"], kept = warm.splits["train"], run.data.splits["train"]
    train_epoch(run)  # one warm-up batch
    run.data.splits["train"] = kept
    started, started_cpu = time.perf_counter(), time.process_time()
    train_epoch(run)
    step_s = (time.perf_counter() - started) / args.steps
    step_cpu_s = (time.process_time() - started_cpu) / args.steps
    started = time.perf_counter()
    evaluate(run, "valid")
    eval_s = (time.perf_counter() - started) / args.steps
    (train_size, valid_size) = SHAPES[args.dataset][0]
    train = math.ceil(train_size / batch) * step_s
    valid = math.ceil(valid_size / batch) * eval_s
    print(
        json.dumps(
            {
                "dataset": args.dataset,
                "method": args.method,
                "batch": batch,
                "parameters_M": round(run.parameters["total"] / 1e6, 1),
                "threads": torch.get_num_threads(),
                "train_step_s": round(step_s, 2),
                "train_step_cpu_s": round(step_cpu_s, 2),
                "eval_batch_s": round(eval_s, 2),
                "epoch_s_extrapolated": round(train + valid, 1),
                "epoch_cpu_s_extrapolated": round(math.ceil(train_size / batch) * step_cpu_s + valid, 1),
                "paper_table6_s": TABLE6[args.dataset],
                "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
