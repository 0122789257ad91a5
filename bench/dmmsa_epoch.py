"""What one CPU training epoch of DMMSA costs at CH-SIMS's real shapes.

CH-SIMS (MMSA's unaligned_39.pkl): 1368 train / 456 valid samples; text_bert 3x39 ids for a
bert-base-chinese-sized BERT (hidden 768, 12 layers, 12 heads, vocab 21128; random weights
from its config, no download); audio 400x33 and vision 55x709 through DMMSA's 1-layer, 768-wide
Transformer encoders; batch 64. The script times a few training steps (forward, backward,
AdamW step: fit()'s own `train_epoch` on one batch) after a warm-up, and a few evaluation batches
(`evaluate`), then extrapolates to a whole epoch (22 training steps + 456 validation samples).

    python bench/dmmsa_epoch.py                       # fine-tuned BERT (the paper's setting)
    python bench/dmmsa_epoch.py --text features       # the CPU path: --encoder text=transformer-seq
                                                      # on the 768-d text features
    python bench/dmmsa_epoch.py --steps 5 --threads 1
    python bench/dmmsa_epoch.py --precision bf16         # forward passes under torch.autocast(cpu, bfloat16)

Sequence lengths are the full padded ones (39/400/55); real CH-SIMS lengths vary below them,
but every batch is padded to them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import time
from dataclasses import replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from msabench import PROTOCOL, Catalog, Data, Split, Task, get_plugin_manager
from msabench.train import assemble, evaluate, resolve_hparams, train_epoch

TRAIN, VALID, BATCH = 1368, 456, 64
LENGTHS = {"text": 39, "audio": 400, "vision": 55}
DIMS = {"text": 768, "audio": 33, "vision": 709}
BERT_BASE_CHINESE = {"random_init": True, "hidden_size": 768, "layers": 12, "heads": 12, "intermediate_size": 3072}


def sims_shaped(n: int) -> Data:
    """`n` random samples with CH-SIMS's shapes, dims, vocabulary and unimodal labels."""
    generator = torch.Generator().manual_seed(0)
    text_lengths = torch.randint(10, LENGTHS["text"] + 1, (n,), generator=generator)
    mask = (torch.arange(LENGTHS["text"])[None, :] < text_lengths[:, None]).long()
    ids = torch.randint(672, 21128, (n, LENGTHS["text"]), generator=generator) * mask
    ids[:, 0] = 101
    tensors = {
        "text_bert": torch.stack([ids, mask, torch.zeros_like(ids)], dim=1),
        "text_lengths": text_lengths,
        "text": torch.randn(n, LENGTHS["text"], DIMS["text"], generator=generator),
        **{m: torch.randn(n, LENGTHS[m], DIMS[m], generator=generator) for m in ("audio", "vision")},
        **{
            f"{m}_lengths": torch.randint(LENGTHS[m] // 2, LENGTHS[m] + 1, (n,), generator=generator)
            for m in ("audio", "vision")
        },
        **{
            key: (torch.randint(-5, 6, (n,), generator=generator) / 5).float()
            for key in ("label", "label_T", "label_A", "label_V")
        },
    }
    split = Split("train", [str(i) for i in range(n)], tensors)
    task = Task("regression", "sims", label_range=(-1.0, 1.0))
    return Data(
        "ch-sims",
        task,
        {"train": split, "valid": split, "test": split},
        {},
        vocab_size=21128,
        tokenizer="bert-base-chinese",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="dmmsa")
    parser.add_argument("--text", choices=("bert", "features"), default="bert")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps (after one warm-up step)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="autocast on the CPU (bf16)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    catalog = Catalog.from_plugins(get_plugin_manager())
    method = catalog.methods[args.method]
    if args.text == "features":
        method = method.with_components({"text": "transformer-seq"})
    data = sims_shaped(BATCH)
    hparams = method.hparams_for(data)
    if args.text == "bert":
        hparams["text"].update(BERT_BASE_CHINESE)
    hparams["train"]["batch_size"] = hparams["train"]["eval_batch_size"] = BATCH
    protocol = replace(PROTOCOL, precision=args.precision)
    hparams = resolve_hparams(hparams, data, 1111, protocol)
    run = assemble(method, data, catalog=catalog, seed=1111, hparams=hparams, protocol=protocol)
    model = run.model
    parameters = run.parameters["total"]
    (batch,) = list(data.splits["train"].batches(BATCH))

    times, cpu = [], []
    for step in range(1 + args.steps):  # one batch per train_epoch: one training step as fit() takes it
        started, started_cpu = time.perf_counter(), time.process_time()
        train_epoch(run)
        if step:
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
    evals, shares = [], {}
    for _ in range(2):
        started = time.perf_counter()
        evaluate(run, "valid")
        evals.append(time.perf_counter() - started)
    with torch.no_grad():
        for modality, encoder in model.encoders.items():  # where the forward time goes
            started = time.perf_counter()
            encoder(batch[model.inputs[modality]], batch.get(f"{modality}_lengths"))
            shares[modality] = round(time.perf_counter() - started, 2)
    step_s, eval_s = sum(times) / len(times), min(evals)
    epoch_train_s = math.ceil(TRAIN / BATCH) * step_s
    valid_epoch = math.ceil(VALID / BATCH) * eval_s
    print(
        json.dumps(
            {
                "method": args.method,
                "text": "bert-text (bert-base-chinese sized, fine-tuned)"
                if args.text == "bert"
                else "transformer-seq on 768-d text features",
                "parameters_M": round(parameters / 1e6, 1),
                "threads": torch.get_num_threads(),
                "precision": args.precision,
                "load_average": os.getloadavg(),
                "train_step_s": [round(t, 2) for t in times],
                "train_step_cpu_s": [
                    round(t, 2) for t in cpu
                ],  # CPU time of all threads: what an idle machine would need, divided by the threads
                "eval_forward_s_by_encoder": shares,
                "train_epoch_s": round(epoch_train_s, 1),
                "valid_pass_s": round(valid_epoch, 1),
                "epoch_s": round(epoch_train_s + valid_epoch, 1),
                "samples_per_s": round(BATCH / step_s, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
