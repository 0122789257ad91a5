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

import json
import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from msabench.cache import FeatureCache
from msabench.catalog import Catalog
from msabench.components import Batch, Callback, Data, Method, Model, Objective, Split, Task
from msabench.errors import TrainingError
from msabench.features import prepare
from msabench.metrics import evaluate as metrics
from msabench.optim import build_optimizer, build_schedulers
from msabench.protocol import PROTOCOL, Protocol
from msabench.results import RunResult
from msabench.resume import restore, save_checkpoint, save_state, state_key
from msabench.runtime import (
    PRECISIONS,
    Distributed,
    check_precision,
    hardware,
    keep_freed_memory,
    peak_memory,
    seed_everything,
    select_device,
    versions,
)
from msabench.schema import labels_digest
from msabench.settings import resolved

log = logging.getLogger("msabench")


@dataclass
class Best:
    """The selected epoch so far: its validation score, number and weights (on the CPU)."""

    score: float
    epoch: int = 0
    state: dict[str, torch.Tensor] | None = None


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
    seconds: list[dict[str, float]] = field(default_factory=list)  # per epoch: its training and validation time
    elapsed: float = 0.0  # seconds spent in earlier sessions of a resumed run
    distributed: Distributed | None = None  # this process's rank among the processes training the run (torchrun)
    scaler: torch.amp.GradScaler = field(default_factory=lambda: torch.amp.GradScaler("cpu", enabled=False))
    forward: torch.nn.Module | None = None  # the model and objective as one module, wrapped for DDP (set by assemble)

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

    `checkpoint` receives the selected weights; `state` is the resume file, written after every epoch and read
    when it exists (the run continues after its last finished epoch). It is left in place: the caller deletes it
    once the result is saved (`msabench.store`), so that no failure between the two loses the run. With
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
    if distributed is not None and method.batches == "groups":
        raise TrainingError(
            f"{method.name} trains on whole groups of samples, which are not split across the processes of a "
            "distributed run (torchrun): run it in one process."
        )
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
    forward: torch.nn.Module = Step(model, objective)
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
    """One pass over the shuffled train split (or its shuffled groups, for a model that batches whole groups);
    returns the sample-weighted mean of each loss term.

    With ``train.accumulate`` = N, the gradients of N consecutive batches are averaged (each loss divided by the
    number of batches in its group) into one optimizer step; a last, shorter group steps too."""
    started = time.perf_counter()
    run.epoch += 1
    run.seconds.append({})
    for callback in run.callbacks:
        callback.on_epoch_start(run, run.epoch)
    run.model.train()
    run.objective.train()
    split, settings = run.data.splits["train"], run.settings
    size, every = settings["batch_size"], settings["accumulate"]
    count = split.batch_count(size, run.model.groups)
    sums: dict[str, float] = defaultdict(float)
    seen = 0.0
    run.optimizer.zero_grad(set_to_none=True)
    batches = split.batches(size, shuffle=True, generator=run.generator, groups=run.model.groups)
    shown = progress and run.writes
    bar = tqdm(batches, total=count, desc=f"epoch {run.epoch}", leave=False, disable=None if shown else True)
    for number, batch in enumerate(bar):
        batch, weight = run.distributed.share(batch) if run.distributed is not None else (batch, 1.0)
        batch = batch.to(run.device)
        with autocast(run):
            losses = (run.forward or Step(run.model, run.objective))(batch)
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
    means = mean_over_ranks(run, sums, seen)
    run.seconds[-1]["train"] = round(time.perf_counter() - started, 3)
    return means


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
    logs: dict[str, Any] = {
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
    if len(run.seconds) < run.epoch:  # validated without a training pass through train_epoch
        run.seconds.append({})
    run.seconds[-1]["valid"] = round(time.perf_counter() - started, 3)
    shown = "" if key == "loss" else f" {key} {current:.4f}"
    spent = run.seconds[-1]
    (log.info if run.writes else log.debug)(
        "%s %s seed %d | epoch %d/%d | train loss %.4f | valid loss %.4f%s | best epoch %d | train %.1fs, valid %.1fs",
        run.method.name,
        run.data.name,
        run.seed,
        run.epoch,
        run.max_epochs,
        logs["train"].get("total", math.nan),
        valid.loss,
        shown,
        run.best.epoch,
        spent.get("train", 0.0),
        spent["valid"],
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
    """A split's loss and metrics in the protocol's precision (every rank of a distributed run evaluates it whole);
    the metrics are those the method reports (`Method.metrics`)."""
    with autocast(run):
        evaluation = evaluate_split(
            run.model, run.objective, run.data.splits[split], run.settings["eval_batch_size"], run.device, run.data.task
        )
    if run.method.metrics:
        evaluation.metrics = {key: value for key, value in evaluation.metrics.items() if key in run.method.metrics}
    return evaluation


@torch.no_grad()
def predict_batches(
    model: Model, split: Split, batch_size: int, device: torch.device
) -> Iterator[tuple[Batch, dict[str, torch.Tensor]]]:
    """(batch, model outputs) over a split in eval mode, in split order (never shuffled; whole groups for a model
    that batches them): how every split is evaluated, and how `msabench predict` labels new inputs."""
    model.eval()
    for batch in split.batches(batch_size, groups=getattr(model, "groups", None)):
        batch = batch.to(device)
        yield batch, model(batch)


@torch.no_grad()
def evaluate_split(
    model: Model, objective: Objective, split: Split, batch_size: int, device: torch.device, task: Task
) -> Evaluation:
    """Loss and metrics on a split, in split order (never shuffled)."""
    objective.eval()
    total = 0.0
    decided: list[torch.Tensor] = []
    truth: list[torch.Tensor] = []
    index: list[torch.Tensor] = []
    for batch, outputs in predict_batches(model, split, batch_size, device):
        total += float(objective(outputs, batch)["total"]) * batch.size
        decided.append(task.decide(outputs["prediction"]).cpu())
        truth.append(batch["label"].reshape(batch.size, -1).squeeze(1).cpu())
        index.append(batch["index"].cpu())
    predictions, labels = torch.cat(decided), torch.cat(truth)
    return Evaluation(
        loss=total / len(split),
        metrics=metrics(task.family, predictions.double().numpy(), labels.double().numpy()),
        predictions=predictions.tolist(),
        labels=labels.tolist(),
        index=torch.cat(index).tolist(),
    )


def record(run: Run, test: Evaluation, catalog: Catalog, variant: str, wall_time: float) -> RunResult:
    """The result of a finished run: test metrics and predictions, and everything it ran on. For real (not
    synthetic) data, the test labels are withheld and their digest recorded (``data.labels_sha256``): a result can
    be shared or committed without a copy of the dataset's labels; `msabench verify` recomputes its metrics from the
    data where the data is present."""
    task = run.data.task
    provenance = dict(run.data.provenance)
    if pretrained := {
        modality: {"encoder": encoder.name, "pretrained": encoder.pretrained, "weights_sha256": encoder.weights_sha256}
        for modality, encoder in run.model.encoders.items()
        if encoder.pretrained
    }:
        provenance["pretrained"] = pretrained
    if not run.data.synthetic:
        provenance["labels_sha256"] = labels_digest(test.labels)
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
        epoch_seconds=run.seconds,
        predictions={
            "ids": [run.data.splits["test"].ids[i] for i in test.index],
            "predictions": test.predictions,
            **({"labels": test.labels} if run.data.synthetic else {}),
        },
        hparams=run.hparams,
        method_info=catalog.describe(run.method),
        versions=versions(catalog.distributions(run.method)),
        hardware={**hardware(run.device), "world_size": run.distributed.size if run.distributed else 1},
        data=provenance,
        wall_time_s=round(wall_time, 3),
        peak_memory_mb=peak_memory(run.device),
        parameters=run.parameters,
    )


# -- hyper-parameters ------------------------------------------------------------------------------


def resolve_hparams(
    hparams: Mapping[str, Any], data: Data | str, seed: int, protocol: Protocol, results: str | Path = "results"
) -> dict[str, Any]:
    """The hyper-parameters a run uses and records: a deep copy of `hparams` with ``{seed}``, ``{dataset}``,
    ``{protocol}`` and ``{results}`` in strings replaced by the run's seed, dataset name (`data` or its name),
    protocol id and results folder (e.g. the checkpoint of an earlier stage), and the batch sizes filled in."""
    name = data if isinstance(data, str) else data.name
    values = {"seed": str(seed), "dataset": name, "protocol": protocol.id, "results": str(results)}

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
