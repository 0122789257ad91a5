"""Labelling unlabelled inputs with a trained run (what `msabench predict` does).

A run is its checkpoint (``seed-<n>.pt``, saved beside the result JSON): the trained weights, the
method, its components and resolved hyper-parameters. The model is rebuilt from the catalog with
the same seed; frozen encoders are not in the checkpoint (see `msabench.features`), so they are
rebuilt from their source (pretrained name or folder, `init_from` checkpoint) and run on the new
inputs through the feature cache, and their weights' digest must equal the one the result
recorded. An ``init_from`` checkpoint is looked for where the run found it (the absolute path
the result records), then relative to the working folder. Samples are predicted in the dataset's
order, in batches of the run's ``eval_batch_size``, through the trainer's own batching
(`msabench.train.predict_batches`), exactly as the run evaluated its test split.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from msabench.cache import FeatureCache
from msabench.catalog import Catalog
from msabench.components import Data, Dataset, Method, Task
from msabench.errors import DataError
from msabench.features import Precomputed
from msabench.results import RunResult
from msabench.runtime import load_torch
from msabench.train import Run, assemble, predict_batches

log = logging.getLogger("msabench")


@dataclass
class Predictions:
    ids: list[str]
    labels: list[str]  # class names (classification) or formatted values (regression)
    batch_size: int
    method: str
    seed: int
    skipped: int = 0  # unreadable inputs the dataset left out (``skip_unreadable=true``), written as not predicted


def load_run(path: str | os.PathLike[str]) -> tuple[dict[str, Any], RunResult | None]:
    """(checkpoint, result or None) from a result JSON (its .pt beside it) or a checkpoint .pt."""
    path = Path(path)
    checkpoint_path = path.with_suffix(".pt")
    result_path = path.with_suffix(".json")
    if not checkpoint_path.is_file():
        raise DataError(
            f"no checkpoint {checkpoint_path} beside {path}: `msabench run` saves one unless --no-checkpoints; "
            "rerun the method to get it."
        )
    try:
        checkpoint = load_torch(checkpoint_path)
    except ValueError as error:
        raise DataError(f"cannot read checkpoint {checkpoint_path}: {error}; rerun the method to get it.") from None
    if not isinstance(checkpoint, dict) or "model" not in checkpoint or "method" not in checkpoint:
        raise DataError(f"{checkpoint_path} is not an msabench run checkpoint (it lacks 'model' and 'method').")
    result = RunResult.load(result_path) if result_path.is_file() else None
    return checkpoint, result


def predict(
    checkpoint: dict[str, Any],
    result: RunResult | None,
    dataset: Dataset,
    catalog: Catalog,
    *,
    device: str | torch.device | None = "cpu",
) -> Predictions:
    """Predict every readable sample of `dataset.unlabelled()` with the run's weights."""
    if result is not None and result.task.get("classes") and list(dataset.task.classes) != list(result.task["classes"]):
        raise DataError(
            f"the run predicts classes {result.task['classes']}; "
            f"dataset {dataset.name!r} has {list(dataset.task.classes)}."
        )
    catalog.check(recipe_of(checkpoint, catalog), type(dataset))
    unlabelled = Data(
        name=dataset.name,
        task=dataset.task,
        splits={"predict": dataset.unlabelled()},
        provenance={},
        synthetic=dataset.synthetic,
    )
    run = rebuild(checkpoint, result, unlabelled, catalog, device=device)
    split, batch_size = run.data.splits["predict"], run.settings["eval_batch_size"]
    outputs = [
        dataset.task.decide(output["prediction"]).cpu()
        for _, output in predict_batches(run.model, split, batch_size, run.device)
    ]
    values = torch.cat(outputs).tolist() if outputs else []
    skipped = getattr(dataset, "skipped_unlabelled", {}).get("count", 0)
    labels = [label(dataset.task, v) for v in values]
    return Predictions(split.ids, labels, batch_size, run.method.name, run.seed, skipped)


def recipe_of(checkpoint: dict[str, Any], catalog: Catalog) -> Method:
    """The method a checkpoint was trained with: the registered recipe with the run's swapped components."""
    recipe = catalog.methods[checkpoint["method"]]
    swapped = {m: e for m, e in checkpoint.get("encoders", {}).items() if recipe.encoders.get(m) != e}
    objective = checkpoint.get("objective")
    if swapped or (objective and objective != recipe.objective):
        recipe = recipe.with_components(swapped, objective)
    if checkpoint.get("fusion", recipe.fusion) != recipe.fusion:
        raise DataError(
            f"the run used fusion {checkpoint['fusion']!r}, but method {recipe.name!r} now has {recipe.fusion!r}; "
            "install the plugin version that made the run."
        )
    return recipe


def rebuild(
    checkpoint: dict[str, Any],
    result: RunResult | None,
    data: Data,
    catalog: Catalog,
    *,
    device: str | torch.device | None = "cpu",
    cache: FeatureCache | None = None,
) -> Run:
    """A trained run on new `data` (its unlabelled inputs, or a corrupted test split): the model assembled as the
    run was, with its selected weights; frozen encoders rebuilt from their source, run on `data` through `cache`,
    and checked against the weights' digest the result recorded."""
    recipe = recipe_of(checkpoint, catalog)
    hparams = locate_init_from(checkpoint["hparams"], result, recipe.encoders)
    seed = int(checkpoint.get("seed", 0))
    run = assemble(recipe, data, catalog=catalog, seed=seed, hparams=hparams, device=device, cache=cache)
    recorded = (result.data.get("encoders") or {}) if result is not None else {}
    for modality, encoder in run.model.encoders.items():
        if isinstance(encoder, Precomputed):
            expected = recorded.get(modality, {}).get("weights")
            if expected is None:
                log.warning(
                    "cannot check the frozen %s encoder's weights: no result file with their digest beside the "
                    "checkpoint",
                    modality,
                )
            elif expected != encoder.weights:
                raise DataError(
                    f"the frozen {modality} encoder ({encoder.name}) rebuilt now has other weights (digest "
                    f"{encoder.weights[:12]}) than in the run ({expected[:12]}): its pretrained folder or init_from "
                    f"checkpoint changed since. Restore the files the run used: {hparams.get(modality)}."
                )
    try:
        run.model.load_state_dict(checkpoint["model"], strict=True)
    except RuntimeError as error:
        raise DataError(
            f"the checkpoint's weights do not fit method {recipe.name!r} as installed now: {str(error).splitlines()[0]}"
        ) from None
    run.model.to(run.device)
    return run


def label(task: Task, value: Any) -> str:
    """How a decided prediction is written: the class name, the present entries (multilabel), or the value."""
    if task.kind == "classification":
        return task.classes[int(value)]
    if task.kind == "multilabel":
        return "+".join(name for name, present in zip(task.classes, value, strict=True) if present) or "none"
    return f"{value:.4f}"


def locate_init_from(hparams: dict[str, Any], result: RunResult | None, encoders: Mapping[str, str]) -> dict[str, Any]:
    """The run's hyper-parameters with each encoder's ``init_from`` found on disk: the absolute path the result
    recorded when it is there, else the stored (often relative) path from the working folder. A trained encoder's
    weights are all in the run's checkpoint, so a missing ``init_from`` is dropped for it; a frozen one needs it."""
    hparams = copy.deepcopy(hparams)
    recorded = (result.data.get("encoders") or {}) if result is not None else {}
    for modality, name in encoders.items():
        section = hparams.get(modality) or {}
        stored = section.get("init_from")
        if not stored:
            continue
        started = ((recorded.get(modality) or {}).get("fingerprint") or {}).get("init_from") or {}
        candidates = [Path(started["path"]).expanduser()] if started.get("path") else []
        candidates.append(Path(stored).expanduser())
        found = next((path for path in candidates if path.is_file()), None)
        if found is not None:
            section["init_from"] = str(found.resolve())
            continue
        frozen = modality in recorded if result is not None else bool(section.get("freeze"))
        if not frozen:
            log.info(
                "%s: init_from %s is gone; the run's checkpoint holds all of this trained encoder's weights",
                name,
                stored,
            )
            section["init_from"] = None
            continue
        where = f"{stored} (from {Path.cwd()})" + (
            f" or {started['path']}" if started.get("path") and started["path"] != stored else ""
        )
        raise DataError(
            f"the run's frozen {modality} encoder ({name}) starts from the checkpoint init_from={stored!r}, "
            f"which predict cannot find at {where}; its weights are not in the run's checkpoint. "
            "Run `msabench predict` from the folder the run was made in (a relative init_from "
            "is read from there), or restore that checkpoint if it was moved or deleted."
        )
    return hparams
