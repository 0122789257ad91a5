"""fit(): the one training loop every method runs under, and the Callback interface."""

from __future__ import annotations

import ctypes
import io
import json
import logging
import math
import os
import platform
import random
import resource
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from msabench.errors import TrainingError
from msabench.features import prepare, split_record
from msabench.metrics import evaluate
from msabench.protocol import PROTOCOL, Protocol
from msabench.results import RunResult, write_atomic

if TYPE_CHECKING:
    from collections.abc import Iterator

    from msabench.catalog import Catalog
    from msabench.components import Batch, Data, Method, Model, Objective, Split

log = logging.getLogger("msabench")

TRAIN_KEYS = {
    "batch_size": "training mini-batch size",
    "eval_batch_size": "validation/test mini-batch size (default: batch_size)",
    "lr": "learning rate",
    "weight_decay": "weight decay",
    "lr_groups": "{parameter-name prefix: lr or {lr, weight_decay}}",
    "optimizer": "adam, adamw or sgd",
    "max_epochs": "the method's own epoch count (the protocol's cap still applies)",
    "grad_clip": "clip the gradient norm to this value",
    "lr_decay": "multiply the learning rates by this factor every lr_decay_every epochs",
    "lr_decay_every": "epochs between learning-rate decays (default 1)",
}


OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


class Callback:
    """Hooks the trainer calls. Objectives are callbacks too, so stateful losses update here."""

    def on_fit_start(self, run: Run) -> None:
        """Before the first epoch; the model and optimizer are built."""

    def on_epoch_end(self, run: Run, epoch: int, logs: dict[str, Any]) -> None:
        """After validation. Add entries to `logs` (e.g. loss weights) to record them in the history."""

    def on_fit_end(self, run: Run, result: RunResult) -> None:
        """After the test evaluation."""

    def on_exception(self, run: Run, error: BaseException) -> None:
        """When training fails or is interrupted."""


@dataclass
class Run:
    """The state of one training run, as callbacks see it."""

    method: Method
    data: Data
    seed: int
    hparams: dict[str, Any]
    protocol: Protocol
    model: Model
    objective: Objective
    optimizer: torch.optim.Optimizer
    device: torch.device
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Evaluation:
    loss: float
    metrics: dict[str, float]
    predictions: list
    labels: list
    index: list[int]


def fit(
    method: Method,
    data: Data,
    *,
    catalog: Catalog,
    seed: int,
    protocol: Protocol = PROTOCOL,
    hparams: dict[str, Any] | None = None,
    variant: str = "",
    device: str | torch.device | None = None,
    checkpoint: str | Path | None = None,
    callbacks: tuple[Callback, ...] = (),
    progress: bool = False,
) -> RunResult:
    """Train `method` on `data` with one seed; select on validation; test once on the selected epoch."""
    started = time.perf_counter()
    keep_freed_memory()
    device = select_device(device)
    # Strings may name {seed} and {dataset}, e.g. a per-seed checkpoint to start an encoder from.
    hparams = json.loads(
        json.dumps(hparams if hparams is not None else method.hparams_for(data))
        .replace("{seed}", str(seed))
        .replace("{dataset}", data.name)
    )
    train_hp = hparams.setdefault("train", {})
    batch_size = train_hp.setdefault("batch_size", 32)
    eval_batch_size = train_hp.setdefault("eval_batch_size", batch_size)
    max_epochs = min(protocol.max_epochs, train_hp.get("max_epochs", protocol.max_epochs))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    # Build: everything below depends only on the seed.
    seed_everything(seed)
    model, objective = catalog.build(method, data, hparams)
    data = prepare(model, data, device=device)  # raw inputs preprocessed once; frozen encoders run once (cached)
    model.to(device)
    objective.to(device)
    optimizer = build_optimizer(model, objective, train_hp)
    scheduler = (
        torch.optim.lr_scheduler.StepLR(optimizer, train_hp.get("lr_decay_every", 1), train_hp["lr_decay"])
        if train_hp.get("lr_decay")
        else None
    )
    run = Run(method, data, seed, hparams, protocol, model, objective, optimizer, device)
    callbacks = (objective, *callbacks)
    generator = torch.Generator().manual_seed(seed)
    key, mode = protocol.selection(method.key_metric)
    best_score, best_epoch, best_state, stale = math.inf if mode == "min" else -math.inf, 0, None, 0
    family = data.task.family

    try:
        for callback in callbacks:
            callback.on_fit_start(run)
        for epoch in range(1, max_epochs + 1):
            epoch_started = time.perf_counter()
            # Train one epoch on shuffled mini-batches.
            model.train()
            objective.train()
            sums, seen = defaultdict(float), 0
            split = data.splits["train"]
            batches = split.batches(batch_size, shuffle=True, generator=generator)
            for step, batch in enumerate(
                tqdm(
                    batches,
                    total=-(-len(split) // batch_size),
                    desc=f"epoch {epoch}",
                    leave=False,
                    disable=None if progress else True,
                )
            ):
                batch = batch.to(device)
                losses = objective(model(batch), batch)
                if not torch.isfinite(losses["total"]):
                    raise TrainingError(
                        f"{method.name} on {data.name}, seed {seed}: the loss became {losses['total'].item()} "
                        f"at epoch {epoch}, step {step}. Lower the learning rate (--set train.lr=...) or check the data."
                    )
                optimizer.zero_grad(set_to_none=True)
                losses["total"].backward()
                if train_hp.get("grad_clip"):
                    torch.nn.utils.clip_grad_norm_(model.parameters(), train_hp["grad_clip"])
                optimizer.step()
                for name, value in losses.items():
                    sums[name] += float(value.detach()) * batch.size
                seen += batch.size

            # Validate; only the validation split decides which epoch is kept.
            valid = evaluate_split(model, objective, data.splits["valid"], eval_batch_size, device, family)
            logs = {
                "epoch": epoch,
                "train": {name: total / seen for name, total in sums.items()},
                "valid": {"loss": valid.loss, **valid.metrics},
            }
            for callback in callbacks:
                callback.on_epoch_end(run, epoch, logs)
            run.history.append(logs)
            current = logs["valid"][key]
            if (mode == "min" and current <= best_score - 1e-6) or (mode == "max" and current >= best_score + 1e-6):
                best_score, best_epoch, stale = current, epoch, 0
                best_state = {name: value.detach().to("cpu", copy=True) for name, value in model.state_dict().items()}
            else:
                stale += 1
            selected = "" if key == "loss" else f" {key} {current:.4f}"
            log.info(
                "%s %s seed %d | epoch %d/%d | train loss %.4f | valid loss %.4f%s | best epoch %d | %.1fs",
                method.name,
                data.name,
                seed,
                epoch,
                max_epochs,
                logs["train"]["total"],
                valid.loss,
                selected,
                best_epoch,
                time.perf_counter() - epoch_started,
            )
            if scheduler is not None:
                scheduler.step()
            if stale >= protocol.patience:
                break

        if best_state is None:
            raise TrainingError(f"{method.name} on {data.name}, seed {seed}: no epoch gave a finite validation {key}.")
        # Test once, on the selected epoch's weights.
        model.load_state_dict(best_state)
        test = evaluate_split(model, objective, data.splits["test"], eval_batch_size, device, family)
    except BaseException as error:
        for callback in callbacks:
            callback.on_exception(run, error)
        raise

    if checkpoint is not None:
        buffer = io.BytesIO()
        torch.save(
            {
                "model": best_state,
                "method": method.name,
                "variant": variant,
                "dataset": data.name,
                "seed": seed,
                "hparams": hparams,
                "encoders": dict(method.encoders),
                "fusion": method.fusion,
                "objective": method.objective,
                "splits": split_record(data),
            },
            buffer,
        )
        write_atomic(checkpoint, buffer.getvalue())

    result = RunResult(
        dataset=data.name,
        method=method.name,
        seed=seed,
        metrics=test.metrics,
        protocol=protocol.to_dict(),
        task={"kind": data.task.kind, "family": family, "classes": list(data.task.classes)},
        variant=variant,
        valid_metrics=run.history[best_epoch - 1]["valid"],
        best_epoch=best_epoch,
        epochs=len(run.history),
        history=run.history,
        predictions={
            "ids": [data.splits["test"].ids[i] for i in test.index],
            "predictions": test.predictions,
            "labels": test.labels,
        },
        hparams=hparams,
        method_info=catalog.describe(method),
        versions=versions(catalog, method),
        hardware=hardware(device),
        data=data.provenance,
        wall_time_s=round(time.perf_counter() - started, 3),
        peak_memory_mb=peak_memory(device),
    )
    for callback in callbacks:
        callback.on_fit_end(run, result)
    return result


@torch.no_grad()
def predict_batches(
    model: Model, split: Split, batch_size: int, device: torch.device
) -> Iterator[tuple[Batch, dict[str, torch.Tensor]]]:
    """(batch, model outputs) over a split in eval mode, in split order (never shuffled): how every split is
    evaluated, and how `msabench predict` labels new inputs."""
    model.eval()
    for batch in split.batches(batch_size):
        batch = batch.to(device)
        yield batch, model(batch)


@torch.no_grad()
def evaluate_split(
    model: Model, objective: Objective, split: Split, batch_size: int, device: torch.device, family: str
) -> Evaluation:
    """Loss and metrics on a split, in split order (never shuffled)."""
    objective.eval()
    total, predictions, labels, index = 0.0, [], [], []
    for batch, outputs in predict_batches(model, split, batch_size, device):
        total += float(objective(outputs, batch)["total"]) * batch.size
        prediction = outputs["prediction"]
        prediction = prediction.argmax(-1) if family == "classification" else prediction.reshape(-1)
        predictions.append(prediction.cpu())
        labels.append(batch["label"].reshape(-1).cpu())
        index.append(batch["index"].cpu())
    predictions, labels = torch.cat(predictions), torch.cat(labels)
    return Evaluation(
        loss=total / len(split),
        metrics=evaluate(family, predictions.double().numpy(), labels.double().numpy()),
        predictions=predictions.tolist(),
        labels=labels.tolist(),
        index=torch.cat(index).tolist(),
    )


def build_optimizer(model: Model, objective: Objective, train_hp: dict[str, Any]) -> torch.optim.Optimizer:
    """One optimizer over every trainable parameter of the model and objective.

    ``lr_groups`` maps a parameter-name prefix (``encoders.text``, ``fusion.factors``) to a
    learning rate, or to ``{"lr": ..., "weight_decay": ...}``; the longest matching prefix wins.
    Adam and AdamW use torch's fused kernels (``fused=True``): one vectorised pass per tensor
    instead of the default CPU loop's eight, with its temporaries (TFN's 9.5 M parameters: 8 ms
    instead of 75 ms per step on one CPU thread). The update is the same algorithm, rounded
    differently in the last bit (about 0.05 % of a step's updates), so results are not
    bit-identical to those of the unfused loop; they repeat exactly from run to run.
    """
    named = [*model.named_parameters(), *(("objective." + name, p) for name, p in objective.named_parameters())]
    defaults = {"lr": train_hp.get("lr", 1e-3), "weight_decay": train_hp.get("weight_decay", 0.0)}
    groups: dict[str, dict[str, Any]] = {}
    prefixes = sorted(train_hp.get("lr_groups", {}).items(), key=lambda item: -len(item[0]))
    for name, parameter in named:
        if not parameter.requires_grad:
            continue
        prefix, settings = next(((p, s) for p, s in prefixes if name == p or name.startswith(p + ".")), ("", {}))
        settings = settings if isinstance(settings, dict) else {"lr": settings}
        group = groups.setdefault(prefix, {"params": [], **defaults, **settings})
        group["params"].append(parameter)
    kind = train_hp.get("optimizer", "adam")
    params = [p for group in groups.values() for p in group["params"]]
    if kind in ("adam", "adamw") and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params):
        try:
            return OPTIMIZERS[kind](list(groups.values()), **defaults, fused=True)
        except RuntimeError:  # a torch without fused kernels for these tensors (CPU: torch < 2.4)
            pass
    return OPTIMIZERS[kind](list(groups.values()), **defaults)


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
    """CUDA when present, CPU otherwise, unless a device is named."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def versions(catalog: Catalog, method: Method) -> dict[str, str]:
    from msabench import __version__

    found = {
        "msabench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    for module in ("transformers", "datasets"):
        if module in sys.modules:
            found[module] = sys.modules[module].__version__
    found.update(catalog.distributions(method))
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
