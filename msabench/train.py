"""fit(): the one training loop every method runs under.

A run goes through four phases, each a function that `predict`, the conformance kit and the bench
scripts call too:

1. `assemble`: seed, build the model and objective, prepare the inputs (frozen encoders run once),
   move to the device, build the optimizer and schedulers;
2. `train_epoch`: one pass over the shuffled train split (with gradient accumulation and the
   callbacks' step hooks);
3. `evaluate` on the validation split and `select`: keep the best epoch's weights, count patience;
4. `evaluate` the test split once, on the selected weights, and `record` the result.

After each epoch the whole state is written to a resume file (`save_state`); a run started again
with the same file continues after its last finished epoch and, on the CPU, gives bit-identical
numbers to a run that was never interrupted.
"""

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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from msabench import __version__
from msabench.cache import FeatureCache
from msabench.catalog import Catalog
from msabench.components import Batch, Callback, Data, Method, Model, Objective, Split, Task
from msabench.errors import CatalogError, TrainingError
from msabench.features import prepare, split_record
from msabench.metrics import evaluate as metrics
from msabench.protocol import PROTOCOL, Protocol
from msabench.results import DATA_KEYS, RunResult, write_atomic
from msabench.settings import resolved

log = logging.getLogger("msabench")

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULT_THREADS = 1  # fixed, so a run's numbers never depend on the machine or its load (see set_threads)


@dataclass
class Best:
    """The selected epoch so far: its validation score, number and weights (on the CPU)."""

    score: float
    epoch: int = 0
    state: dict[str, torch.Tensor] | None = None


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


class Step(torch.nn.Module):
    """The model and objective as one module (what DDP wraps, so that both's gradients are all-reduced)."""

    def __init__(self, model: Model, objective: Objective):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self.objective(self.model(batch), batch)


@dataclass
class Run:
    """The state of one training run, as the phases and the callbacks see it."""

    method: Method
    data: Data
    seed: int
    hparams: dict[str, Any]
    protocol: Protocol
    model: Model
    objective: Objective
    optimizer: torch.optim.Optimizer
    device: torch.device
    settings: dict[str, Any]  # the train section with its defaults filled in
    schedulers: dict[str, Any]
    callbacks: list[Callback]
    generator: torch.Generator  # the shuffling order's random stream
    parameters: dict[str, int]
    best: Best
    epoch: int = 0  # finished epochs
    step: int = 0  # optimizer steps taken
    stale: int = 0  # epochs since the best one
    history: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0  # seconds spent in earlier sessions of a resumed run
    distributed: Distributed | None = None  # this process's rank among the processes training the run (torchrun)
    scaler: torch.amp.GradScaler | None = None  # fp16 loss scaling
    forward: torch.nn.Module | None = None  # the model and objective as one module, wrapped for DDP

    @property
    def writes(self) -> bool:
        """Whether this process writes the run's files: always, but for the ranks other than 0 of a DDP run."""
        return self.distributed is None or self.distributed.rank == 0

    @property
    def max_epochs(self) -> int:
        return min(self.protocol.max_epochs, self.settings["max_epochs"] or self.protocol.max_epochs)

    @property
    def finished(self) -> bool:
        return self.epoch >= self.max_epochs or self.stale >= self.protocol.patience

    @property
    def selection(self) -> tuple[str, str]:
        return self.protocol.selection(self.method.key_metric)


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
    state: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
    distributed: Distributed | None = None,
) -> RunResult:
    """Train `method` on `data` with one seed; select on validation; test once on the selected epoch.

    `checkpoint` receives the selected weights; `state` is the resume file, written after every epoch, read
    when it exists (the run continues after its last finished epoch) and deleted when the run is done. With
    `distributed` (see `init_distributed`), this process trains its share of each batch and only rank 0 writes."""
    started = time.perf_counter()
    keep_freed_memory()
    method = method.for_dataset(data)  # the encoders it names for this dataset, if any
    hparams = resolve_hparams(hparams if hparams is not None else method.hparams_for(data), data, seed, protocol)
    run = assemble(
        method,
        data,
        catalog=catalog,
        seed=seed,
        protocol=protocol,
        hparams=hparams,
        device=device,
        distributed=distributed,
    )
    run.callbacks += list(callbacks)
    key = state_key(run, variant)
    try:
        for callback in run.callbacks:
            callback.on_fit_start(run)
        if state is not None and Path(state).is_file():
            restore(run, state, key)
        while not run.finished:
            validate(run, train_epoch(run, progress=progress))
            if state is not None:
                save_state(run, state, key, started)
        test = test_once(run)
    except BaseException as error:
        for callback in run.callbacks:
            callback.on_exception(run, error)
        raise
    if checkpoint is not None and run.writes:
        save_checkpoint(run, checkpoint, variant)
    result = record(run, test, catalog, variant, wall_time=run.elapsed + time.perf_counter() - started)
    for callback in run.callbacks:
        callback.on_fit_end(run, result)
    if state is not None and run.writes:
        Path(state).unlink(missing_ok=True)
    return result


def assemble(
    method: Method,
    data: Data,
    *,
    catalog: Catalog,
    seed: int,
    hparams: dict[str, Any],
    protocol: Protocol = PROTOCOL,
    device: str | torch.device | None = None,
    distributed: Distributed | None = None,
    cache: FeatureCache | None = None,
) -> Run:
    """Everything before the first epoch: seed, build, prepare the inputs, move to the device, optimizer, schedulers.

    `hparams` are used as given (see `resolve_hparams`); frozen encoders' features go through `cache` (default: the
    user's feature cache)."""
    device = select_device(device)
    check_precision(protocol.precision, device)
    if method.key_metrics:  # the metric this method selects on for this dataset
        method = replace(method, key_metric=method.key_metric_for(data))
    settings = resolved(hparams.get("train", {}))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seed_everything(seed)
    model, objective = catalog.build(method, data, hparams)
    parameters = count_parameters(model, objective)
    data = prepare(model, data, device=device, cache=cache)  # raw inputs preprocessed once; frozen encoders run once
    model.to(device)
    objective.to(device)
    optimizer = build_optimizer(model, objective, settings)
    key, mode = protocol.selection(method.key_metric)
    forward = Step(model, objective)
    if distributed is not None:
        ids = [device.index] if device.type == "cuda" else None
        forward = torch.nn.parallel.DistributedDataParallel(forward, device_ids=ids, find_unused_parameters=True)
    return Run(
        method=method,
        data=data,
        seed=seed,
        hparams=hparams,
        protocol=protocol,
        model=model,
        objective=objective,
        optimizer=optimizer,
        device=device,
        settings=settings,
        schedulers=build_schedulers(optimizer, settings, mode),
        callbacks=component_callbacks(model, objective),
        generator=torch.Generator().manual_seed(seed),
        parameters=parameters,
        best=Best(math.inf if mode == "min" else -math.inf),
        distributed=distributed,
        scaler=torch.amp.GradScaler(device.type, enabled=protocol.precision == "fp16"),
        forward=forward,
    )


def train_epoch(run: Run, *, progress: bool = False) -> dict[str, float]:
    """One pass over the shuffled train split; returns the sample-weighted mean of each loss term.

    With ``train.accumulate`` = N, the gradients of N consecutive batches are averaged (each loss divided by the
    number of batches in its group) into one optimizer step; a last, shorter group steps too."""
    run.epoch += 1
    for callback in run.callbacks:
        callback.on_epoch_start(run, run.epoch)
    run.model.train()
    run.objective.train()
    split, settings = run.data.splits["train"], run.settings
    size, every = settings["batch_size"], settings["accumulate"]
    count = -(-len(split) // size)
    sums: dict[str, float] = defaultdict(float)
    seen = 0.0
    run.optimizer.zero_grad(set_to_none=True)
    batches = split.batches(size, shuffle=True, generator=run.generator)
    shown = progress and run.writes
    bar = tqdm(batches, total=count, desc=f"epoch {run.epoch}", leave=False, disable=None if shown else True)
    for number, batch in enumerate(bar):
        batch, weight = run.distributed.share(batch) if run.distributed is not None else (batch, 1.0)
        batch = batch.to(run.device)
        with autocast(run):
            losses = run.forward(batch)
        if not torch.isfinite(losses["total"]):
            raise TrainingError(
                f"{run.method.name} on {run.data.name}, seed {run.seed}: the loss became {losses['total'].item()} at "
                f"epoch {run.epoch}, step {number}. Lower the learning rate (--set train.lr=...) or check the data."
            )
        for callback in run.callbacks:
            callback.on_before_backward(run, batch, losses)
        group = min(every, count - number // every * every)  # batches in this accumulation group
        run.scaler.scale(losses["total"] * (weight / group)).backward()
        for callback in run.callbacks:
            callback.on_after_backward(run, batch)
        if (number + 1) % every == 0 or number + 1 == count:
            optimizer_step(run)
        shared = batch.size * (weight > 0)
        for name, value in losses.items():
            sums[name] += float(value.detach()) * shared
        seen += shared
    return mean_over_ranks(run, sums, seen)


def mean_over_ranks(run: Run, sums: dict[str, float], seen: float) -> dict[str, float]:
    """The epoch's sample-weighted mean of each loss term, over every rank's share when the run is distributed."""
    if run.distributed is not None:
        totals = torch.tensor([*sums.values(), seen], dtype=torch.float64)
        torch.distributed.all_reduce(totals)
        sums, seen = dict(zip(sums, totals[:-1].tolist(), strict=True)), float(totals[-1])
    return {name: total / seen for name, total in sums.items()}


def autocast(run: Run) -> torch.autocast:
    """Forward passes in the protocol's precision (fp32: autocast off)."""
    dtype = PRECISIONS[run.protocol.precision]
    return torch.autocast(run.device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def optimizer_step(run: Run) -> None:
    """Clip, step, clear the gradients, and advance the warm-up."""
    parameters = [p for group in run.optimizer.param_groups for p in group["params"]]
    run.scaler.unscale_(run.optimizer)  # fp16: clip the true gradients
    if run.settings["grad_clip_value"]:
        torch.nn.utils.clip_grad_value_(parameters, run.settings["grad_clip_value"])
    if run.settings["grad_clip"]:
        torch.nn.utils.clip_grad_norm_(parameters, run.settings["grad_clip"])
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    run.step += 1
    if "warmup" in run.schedulers and run.step <= run.settings["warmup_steps"]:
        run.schedulers["warmup"].step()


def validate(run: Run, train: dict[str, float] | None = None) -> dict[str, Any]:
    """Evaluate the validation split, log the epoch, keep its weights when it is the best so far, count patience,
    step the epoch-level schedulers. Only the validation split decides which epoch is kept."""
    started = time.perf_counter()
    valid = evaluate(run, "valid")
    logs = {
        "epoch": run.epoch,
        "train": train if train is not None else {},
        "valid": {"loss": valid.loss, **valid.metrics},
    }
    for callback in run.callbacks:
        callback.on_epoch_end(run, run.epoch, logs)
    run.history.append(logs)
    key, mode = run.selection
    current = logs["valid"][key]
    better = current <= run.best.score - 1e-6 if mode == "min" else current >= run.best.score + 1e-6
    if better:
        run.best = Best(
            current, run.epoch, {k: v.detach().to("cpu", copy=True) for k, v in run.model.state_dict().items()}
        )
        run.stale = 0
    else:
        run.stale += 1
    warming = "warmup" in run.schedulers and run.step < run.settings["warmup_steps"]
    if "plateau" in run.schedulers and not warming and math.isfinite(current):
        run.schedulers["plateau"].step(current)
    if "decay" in run.schedulers and not warming:
        run.schedulers["decay"].step()
    shown = "" if key == "loss" else f" {key} {current:.4f}"
    (log.info if run.writes else log.debug)(
        "%s %s seed %d | epoch %d/%d | train loss %.4f | valid loss %.4f%s | best epoch %d | %.1fs",
        run.method.name,
        run.data.name,
        run.seed,
        run.epoch,
        run.max_epochs,
        logs["train"].get("total", math.nan),
        valid.loss,
        shown,
        run.best.epoch,
        time.perf_counter() - started,
    )
    return logs


def test_once(run: Run) -> Evaluation:
    """Evaluate the test split once, on the selected epoch's weights."""
    if run.best.state is None:
        key, _ = run.selection
        raise TrainingError(
            f"{run.method.name} on {run.data.name}, seed {run.seed}: no epoch gave a finite validation {key}."
        )
    run.model.load_state_dict(run.best.state)
    return evaluate(run, "test")


def evaluate(run: Run, split: str) -> Evaluation:
    """A split's loss and metrics in the protocol's precision (every rank of a distributed run evaluates it whole)."""
    with autocast(run):
        return evaluate_split(
            run.model, run.objective, run.data.splits[split], run.settings["eval_batch_size"], run.device, run.data.task
        )


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
    model: Model, objective: Objective, split: Split, batch_size: int, device: torch.device, task: Task
) -> Evaluation:
    """Loss and metrics on a split, in split order (never shuffled)."""
    objective.eval()
    total, predictions, labels, index = 0.0, [], [], []
    for batch, outputs in predict_batches(model, split, batch_size, device):
        total += float(objective(outputs, batch)["total"]) * batch.size
        predictions.append(task.decide(outputs["prediction"]).cpu())
        labels.append(batch["label"].reshape(batch.size, -1).squeeze(1).cpu())
        index.append(batch["index"].cpu())
    predictions, labels = torch.cat(predictions), torch.cat(labels)
    return Evaluation(
        loss=total / len(split),
        metrics=metrics(task.family, predictions.double().numpy(), labels.double().numpy()),
        predictions=predictions.tolist(),
        labels=labels.tolist(),
        index=torch.cat(index).tolist(),
    )


def record(run: Run, test: Evaluation, catalog: Catalog, variant: str, wall_time: float) -> RunResult:
    """The result of a finished run: test metrics and predictions, and everything it ran on."""
    task = run.data.task
    return RunResult(
        dataset=run.data.name,
        method=run.method.name,
        seed=run.seed,
        metrics=test.metrics,
        protocol=run.protocol.to_dict(),
        task={"kind": task.kind, "family": task.family, "classes": list(task.classes)},
        variant=variant,
        valid_metrics=run.history[run.best.epoch - 1]["valid"],
        best_epoch=run.best.epoch,
        epochs=len(run.history),
        history=run.history,
        predictions={
            "ids": [run.data.splits["test"].ids[i] for i in test.index],
            "predictions": test.predictions,
            "labels": test.labels,
        },
        hparams=run.hparams,
        method_info=catalog.describe(run.method),
        versions=versions(catalog, run.method),
        hardware={**hardware(run.device), "world_size": run.distributed.size if run.distributed else 1},
        data=run.data.provenance,
        wall_time_s=round(wall_time, 3),
        peak_memory_mb=peak_memory(run.device),
        parameters=run.parameters,
    )


# -- hyper-parameters, optimizer, schedulers -------------------------------------------------------


def resolve_hparams(
    hparams: Mapping[str, Any], data: Data, seed: int, protocol: Protocol, results: str | Path = "results"
) -> dict[str, Any]:
    """The hyper-parameters a run uses and records: a deep copy of `hparams` with ``{seed}``, ``{dataset}``,
    ``{protocol}`` and ``{results}`` in strings replaced by the run's seed, dataset name, protocol id and results
    folder (e.g. the checkpoint of an earlier stage), and the batch sizes filled in."""
    values = {"seed": str(seed), "dataset": data.name, "protocol": protocol.id, "results": str(results)}

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            for name, text in values.items():
                value = value.replace("{" + name + "}", text)
            return value
        if isinstance(value, Mapping):
            return {key: fill(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [fill(item) for item in value]
        return value

    filled = fill(json.loads(json.dumps(hparams)))
    settings = resolved(filled.get("train", {}))
    filled["train"] = {
        **filled.get("train", {}),
        "batch_size": settings["batch_size"],
        "eval_batch_size": settings["eval_batch_size"],
    }
    return filled


def build_optimizer(model: Model, objective: Objective, settings: dict[str, Any]) -> torch.optim.Optimizer:
    """One optimizer over every trainable parameter of the model and objective, except those a component updates
    itself (`manual_parameters`).

    ``lr_groups`` maps a parameter-name prefix (``encoders.text``, ``fusion.factors``) to a
    learning rate, or to ``{"lr": ..., "weight_decay": ...}``; the longest matching prefix wins.
    Adam and AdamW use torch's fused kernels (``fused=True``): one vectorised pass per tensor
    instead of the default CPU loop's eight, with its temporaries (TFN's 9.5 M parameters: 8 ms
    instead of 75 ms per step on one CPU thread). The update is the same algorithm, rounded
    differently in the last bit (about 0.05 % of a step's updates), so results are not
    bit-identical to those of the unfused loop; they repeat exactly from run to run.
    """
    settings = resolved(settings)
    manual = {id(p) for module in (*model.modules(), *objective.modules()) for p in _manual(module)}
    named = [*model.named_parameters(), *(("objective." + name, p) for name, p in objective.named_parameters())]
    defaults = {"lr": settings["lr"], "weight_decay": settings["weight_decay"]}
    groups: dict[str, dict[str, Any]] = {}
    prefixes = sorted(settings["lr_groups"].items(), key=lambda item: -len(item[0]))
    for name, parameter in named:
        if not parameter.requires_grad or id(parameter) in manual:
            continue
        prefix, chosen = next(((p, s) for p, s in prefixes if name == p or name.startswith(p + ".")), ("", {}))
        chosen = chosen if isinstance(chosen, dict) else {"lr": chosen}
        group = groups.setdefault(prefix, {"params": [], **defaults, **chosen})
        group["params"].append(parameter)
    if not groups:
        raise CatalogError("nothing to train: every parameter of the model and objective is frozen.")
    kind = settings["optimizer"]
    extra = {"momentum": settings["momentum"]} if kind == "sgd" else {}
    params = [p for group in groups.values() for p in group["params"]]
    if kind in ("adam", "adamw") and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params):
        try:
            return OPTIMIZERS[kind](list(groups.values()), **defaults, fused=True)
        except RuntimeError:  # a torch without fused kernels for these tensors (CPU: torch < 2.4)
            pass
    return OPTIMIZERS[kind](list(groups.values()), **defaults, **extra)


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


def _manual(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    own = getattr(module, "manual_parameters", None)
    return list(own()) if callable(own) else []


def build_schedulers(optimizer: torch.optim.Optimizer, settings: dict[str, Any], mode: str) -> dict[str, Any]:
    """Learning-rate schedules: linear warm-up over optimizer steps, then the epoch-level StepLR decay and
    ReduceLROnPlateau on the validation selection value (neither steps while the warm-up lasts)."""
    schedulers: dict[str, Any] = {}
    if settings["warmup_steps"]:
        steps = settings["warmup_steps"]
        schedulers["warmup"] = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / steps))
    if settings["lr_decay"]:
        schedulers["decay"] = torch.optim.lr_scheduler.StepLR(
            optimizer, settings["lr_decay_every"], settings["lr_decay"]
        )
    if settings["plateau_patience"] is not None:
        schedulers["plateau"] = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=mode, factor=settings["plateau_factor"], patience=settings["plateau_patience"]
        )
    return schedulers


def component_callbacks(model: Model, objective: Objective) -> list[Callback]:
    """The objective, then every module of the model that is a Callback too (each once)."""
    found: list[Callback] = [objective]
    for module in model.modules():
        if isinstance(module, Callback) and all(module is not other for other in found):
            found.append(module)
    return found


def count_parameters(model: Model, objective: Objective) -> dict[str, int]:
    parameters = [*model.parameters(), *objective.parameters()]
    return {
        "trainable": sum(p.numel() for p in parameters if p.requires_grad),
        "total": sum(p.numel() for p in parameters),
    }


# -- resuming --------------------------------------------------------------------------------------


def state_key(run: Run, variant: str) -> dict[str, Any]:
    """What a resume file must have been written for: method, variant, dataset, seed, protocol, hyper-parameters
    and the data's files and split."""
    return {
        "method": run.method.name,
        "variant": variant,
        "dataset": run.data.name,
        "seed": run.seed,
        "protocol": run.protocol.to_dict(),
        "hparams": run.hparams,
        "data": {key: run.data.provenance.get(key) for key in DATA_KEYS},
    }


def save_state(run: Run, path: str | Path, key: dict[str, Any], started: float) -> None:
    """Write everything the run needs to continue after this epoch, atomically (rank 0 of a distributed run, with
    every rank's random state)."""
    rngs = [rng_state(run)]
    if run.distributed is not None:
        rngs = [None] * run.distributed.size
        torch.distributed.all_gather_object(rngs, rng_state(run))
    if not run.writes:
        torch.distributed.barrier()  # wait until rank 0 has written it
        return
    state = {
        "key": json.dumps(key, sort_keys=True, default=str),
        "epoch": run.epoch,
        "step": run.step,
        "stale": run.stale,
        "history": json.dumps(run.history),
        "elapsed": run.elapsed + time.perf_counter() - started,
        "best": {"score": run.best.score, "epoch": run.best.epoch, "state": run.best.state},
        "model": run.model.state_dict(),
        "objective": run.objective.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "schedulers": {name: scheduler.state_dict() for name, scheduler in run.schedulers.items()},
        "callbacks": {_name(callback): callback.state_dict() for callback in _plain(run.callbacks)},
        "rng": rngs,
        "scaler": run.scaler.state_dict(),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())
    if run.distributed is not None:
        torch.distributed.barrier()


def restore(run: Run, path: str | Path, key: dict[str, Any]) -> None:
    """Continue a run from its resume file; refuse one written for another run."""
    try:
        state = torch.load(path, map_location=run.device, weights_only=True)
    except Exception as error:
        raise TrainingError(
            f"cannot read the resume state {path} ({type(error).__name__}: {error}); delete it to start this seed over."
        ) from None
    saved = json.loads(state["key"])
    expected = json.loads(json.dumps(key, sort_keys=True, default=str))
    if saved != expected:
        changed = sorted(name for name in expected if saved.get(name) != expected.get(name))
        raise TrainingError(
            f"the resume state {path} was written by a run with other {', '.join(changed)}; rerun that command to "
            "finish it, or pass --overwrite to discard it and start this seed over."
        )
    run.model.load_state_dict(state["model"])
    run.objective.load_state_dict(state["objective"])
    run.optimizer.load_state_dict(state["optimizer"])
    for name, scheduler in run.schedulers.items():
        scheduler.load_state_dict(state["schedulers"][name])
    for callback in _plain(run.callbacks):
        if _name(callback) in state["callbacks"]:
            callback.load_state_dict(state["callbacks"][_name(callback)])
    best = state["best"]
    run.best = Best(best["score"], best["epoch"], best["state"] and {k: v.cpu() for k, v in best["state"].items()})
    run.epoch, run.step, run.stale = state["epoch"], state["step"], state["stale"]
    run.history, run.elapsed = json.loads(state["history"]), state["elapsed"]
    rngs = state["rng"]
    if len(rngs) != (run.distributed.size if run.distributed else 1):
        raise TrainingError(
            f"the resume state {path} was written by a run on {len(rngs)} process(es); continue it on as many, or pass "
            "--overwrite to start this seed over."
        )
    set_rng_state(run, rngs[run.distributed.rank if run.distributed else 0])
    if state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    log.info("%s %s seed %d: resumed after epoch %d from %s", run.method.name, run.data.name, run.seed, run.epoch, path)


def _plain(callbacks: list[Callback]) -> list[Callback]:
    """The callbacks whose state is not already in the model's or objective's state_dict."""
    return [callback for callback in callbacks if not isinstance(callback, torch.nn.Module)]


def _name(callback: Callback) -> str:
    return f"{type(callback).__module__}.{type(callback).__qualname__}"


def rng_state(run: Run) -> dict[str, Any]:
    numpy = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "generator": run.generator.get_state(),
        "numpy": {
            "keys": torch.from_numpy(numpy[1].astype(np.int64)),
            "position": numpy[2],
            "gauss": [numpy[3], numpy[4]],
        },
        "python": json.dumps(random.getstate()),
    }
    if run.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(run.device)
    return state


def set_rng_state(run: Run, state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    run.generator.set_state(state["generator"].cpu())
    numpy = state["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["position"], *numpy["gauss"]))
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and run.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"].cpu(), run.device)


def save_checkpoint(run: Run, path: str | Path, variant: str) -> None:
    """The selected weights and what rebuilds the model (`msabench predict`, stage-2 methods' ``init_from``)."""
    buffer = io.BytesIO()
    torch.save(
        {
            "model": run.best.state,
            "method": run.method.name,
            "variant": variant,
            "dataset": run.data.name,
            "seed": run.seed,
            "protocol": run.protocol.id,
            "hparams": run.hparams,
            "encoders": dict(run.method.encoders),
            "fusion": run.method.fusion,
            "objective": run.method.objective,
            "splits": split_record(run.data),
        },
        buffer,
    )
    write_atomic(path, buffer.getvalue())


# -- the machine -----------------------------------------------------------------------------------


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


def set_threads(threads: int | None = None) -> int:
    """Use a fixed number of CPU threads (DEFAULT_THREADS unless given): the count changes how sums are split,
    so a count that followed the machine (or its load) would change the numbers; recorded in every result."""
    threads = DEFAULT_THREADS if threads is None else threads
    if threads < 1:
        raise CatalogError(f"--threads must be at least 1; got {threads}.")
    torch.set_num_threads(threads)
    return threads


def versions(catalog: Catalog, method: Method) -> dict[str, str]:
    found = {
        "msabench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    for module in ("transformers", "datasets", "peft"):
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
