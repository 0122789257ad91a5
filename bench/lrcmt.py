"""LRCMT at BERT-base size: trainable share, and the memory and time of a training step with LoRA, with a frozen
BERT and with full fine-tuning (random weights built from BERT-base's config: nothing is downloaded).

    OMP_NUM_THREADS=1 .venv/bin/python bench/lrcmt.py --count          # parameter counts only (seconds)
    OMP_NUM_THREADS=1 .venv/bin/python bench/lrcmt.py --steps 3        # + step time and memory, one process each
    .venv/bin/python bench/lrcmt.py --steps 10 --device cuda

Each adapter setting runs in its own process (peak RSS is then its own). A step is what `fit()` runs: forward,
L1 loss, backward, AdamW step, on a batch of 32 MOSI-shaped samples (text 50 BERT tokens, audio 375x5, vision
500x20) with the methods' hyper-parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

from msabench import InputSpec, Model, Task
from msabench.optim import build_optimizer
from msabench.train import count_parameters
from msabench_lrcmt import LoraBert, LowRankCrossmodal
from msabench_lrcmt.encoder import TARGETS

BERT_BASE = {"hidden_size": 768, "layers": 12, "heads": 12, "intermediate_size": 3072}
DIMS = {"mosi": (5, 20), "mosei": (74, 35), "ch-sims": (33, 709)}
SHAPES = {"text": 50, "audio": 375, "vision": 500}  # MOSI's unaligned lengths


def build(adapter: str, dataset: str = "mosi", rank: int = 8, targets=TARGETS) -> tuple[Model, torch.nn.Module]:
    from msabench_core.objectives import L1

    vocab = 21128 if dataset == "ch-sims" else 30522
    spec = InputSpec("text_bert", (3, SHAPES["text"]), vocab_size=vocab)
    text = LoraBert(spec, adapter=adapter, rank=rank, targets=list(targets), random_init=True, **BERT_BASE)
    audio, vision = DIMS[dataset]
    task = Task("regression", "mosi", (-3.0, 3.0))
    fusion = LowRankCrossmodal({"text": 768, "audio": audio, "vision": vision}, task)
    from msabench_core.sequence import Identity

    encoders = {
        "text": text,
        "audio": Identity(InputSpec("audio", (SHAPES["audio"], audio))),
        "vision": Identity(InputSpec("vision", (SHAPES["vision"], vision))),
    }
    return Model(encoders, {"text": "text_bert", "audio": "audio", "vision": "vision"}, fusion), L1(task)


def counts() -> list[dict]:
    rows = []
    for dataset in DIMS:
        for adapter in ("lora", "frozen", "full"):
            model, objective = build(adapter, dataset)
            counted = count_parameters(model, objective)
            lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
            fusion = sum(p.numel() for p in model.fusion.parameters())
            rows.append(
                {
                    "dataset": dataset,
                    "adapter": adapter,
                    **counted,
                    "lora": lora,
                    "fusion+head": fusion,
                    "share": round(100 * counted["trainable"] / counted["total"], 3),
                }
            )
    return rows


def step_times(adapter: str, steps: int, device: str) -> dict:
    torch.manual_seed(0)
    model, objective = build(adapter)
    model.to(device).train()
    settings = {"lr": 5e-4, "optimizer": "adamw", "weight_decay": 0.01}
    if adapter == "full":
        settings["lr_groups"] = {"encoders.text": 2e-5}
    optimizer = build_optimizer(model, objective, settings)
    batch = 32
    ids = torch.randint(1, 30522, (batch, 1, SHAPES["text"]))
    tokens = torch.cat([ids, torch.ones_like(ids), torch.zeros_like(ids)], dim=1)
    inputs = {
        "text_bert": tokens,
        "audio": torch.randn(batch, SHAPES["audio"], 5),
        "vision": torch.randn(batch, SHAPES["vision"], 20),
        "text_lengths": torch.full((batch,), SHAPES["text"]),
        "audio_lengths": torch.randint(50, SHAPES["audio"] + 1, (batch,)),
        "vision_lengths": torch.randint(50, SHAPES["vision"] + 1, (batch,)),
        "label": torch.randn(batch),
        "index": torch.arange(batch),
    }
    from msabench import Batch

    data = Batch(inputs).to(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    saved = saved_for_backward_mib(model, objective, data)
    times, cpu, gradients = [], [], 0
    for step in range(steps + 1):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        loss = objective(model(data), data)["total"]
        loss.backward()
        gradients = round(
            sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None) / 2**20
        )
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if step:  # the first step warms up
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    result = {
        "adapter": adapter,
        "device": device,
        "threads": torch.get_num_threads(),
        "step_s": [round(t, 2) for t in times],
        "cpu_s": [round(t, 2) for t in cpu],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rss_after_step_mib": rss_mib(),  # what stays between steps: weights, gradients' buffers, optimizer state
        "weights_mib": round(sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20),
        "gradients_mib": gradients,
        "saved_for_backward_mib": saved,  # the activations the backward needs (each storage counted once)
        "optimizer_state_mib": round(
            sum(
                t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t)
            )
            / 2**20
        ),
        "load": os.getloadavg()[0],
    }
    if device.startswith("cuda"):
        result["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    return result


def saved_for_backward_mib(model, objective, batch) -> int:
    """The bytes of the tensors autograd keeps for the backward of one training forward (each storage once): the
    activation memory a step needs, which the process's RSS cannot show (the allocator keeps freed memory)."""
    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = objective(model(batch), batch)["total"]
    del loss
    return round(sum(size for ptr, size in storages.items() if ptr not in parameters) / 2**20)


def rss_mib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS:"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", action="store_true", help="parameter counts only")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--adapter", help="(internal) time one adapter setting in this process")
    args = parser.parse_args()
    if args.adapter:
        print(json.dumps(step_times(args.adapter, args.steps, args.device)))
        return
    print(f"load average at start: {os.getloadavg()}")
    for row in counts():
        print(json.dumps(row))
    if args.count:
        return
    for adapter in ("lora", "frozen", "full"):
        command = [sys.executable, __file__, "--adapter", adapter, "--steps", str(args.steps), "--device", args.device]
        print(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip())
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
