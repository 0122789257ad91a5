"""Robustness of a trained run (`msabench robustness`): its selected checkpoint evaluated on its test split
under corrupted and missing inputs, without retraining and without selecting anything on the test split.

MultiBench's protocol (Liang et al., NeurIPS 2021; pliang279/MultiBench: `robustness/`,
`datasets/affect/get_data.py` and `eval_scripts/robustness.py`):

- **Curves.** Each modality's input alone at levels p = 0, 0.1, ..., 0.9 (`LEVELS`), and all modalities
  together at p = i/30 (`ALL_LEVELS`, as MultiBench's affect loaders do for their multimodal time-series noise).
  Level 0 is the clean input. The corruption depends on the corruption set (`msabench.corruptions.SETS`;
  ``multibench``, MultiBench's own definitions, by default) and on what the run's encoder reads (its kind):
  raw text (``words``), token ids (``token-ids``, [UNK] replacement: a declared proxy, MultiBench has no token
  ids), feature sequences (``frames``) and image files (``images``). Text features (MMSA's pickles hold no raw
  text) are corrupted as feature sequences: in the all-modalities curve that is what MultiBench does to its text
  features, in the text curve it is a declared proxy (MultiBench's text curve misspells raw words). Each input's
  record in the report (``inputs``) says which: ``definition`` is ``multibench``, ``proxy`` or ``msabench``.
  Corrupted raw inputs go through the encoder's preprocessing again (tokenizer, image resizing).
- **Missing modalities.** Each modality, and each pair (leaving at least one), removed as an encoder sees an
  absent input (`ABSENT`): the empty text, [CLS] [SEP] alone (mask and length 2), all-zero features with
  length 1 (the loader's minimum; packed RNNs refuse 0), a black image. (msabench's addition; not MultiBench's.)
- **Metric** per family (`msabench.metrics.HEADLINE`): mosi Acc-2_non0, sims Acc-2, classification Acc,
  iemocap Acc_mean; regression runs record MAE beside it (every metric of the family is kept per level).
- **Relative robustness**: the area under the metric-vs-level curve by the trapezoidal rule with a step of
  0.1 between levels, as MultiBench's ``relative_robustness_helper`` computes it for every curve (so the
  all-modalities curve, drawn at i/30, has the same scale). **Effective robustness**: sum over levels of
  f(p) - (r(p) + f(0) - r(0)), the gap to a reference run's curve r shifted to the same clean score
  (``effective_robustness_helper``); MultiBench's reference is late fusion (LF), so `--reference` should be a run
  whose fusion declares ``late = True`` (`msabench.components.Fusion`): the report records the reference's fusion
  and whether it is late (``reference.late_fusion``), and warns when it is not. A report holds these raw values
  per run (``summary``); MultiBench publishes them min-max normalised over the methods of a task, which is what
  the leaderboard's robustness table shows, over its rows (`msabench.leaderboard`).
- **Threads.** The clean evaluation runs with the thread count the run recorded (``hardware.torch_threads``;
  `measure`'s `threads` overrides it), since the count changes how sums are split; it then reproduces the run's
  test metrics exactly (``clean_matches_result``), and where it does not, ``clean_note`` says what differs.

Everything is seeded (the run's seed, the curve and the level) and deterministic. Frozen encoders run on
the corrupted inputs through the feature cache with the corruption in the cache key (`CorruptionCache`),
so entries of clean inputs are never overwritten; level 0 is the clean input and reads them.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tabulate import tabulate

from msabench.cache import FeatureCache
from msabench.catalog import Catalog, input_key
from msabench.components import Data, Dataset, Model, Split, Task
from msabench.corruptions import (
    SETS,
    black_image,
    corrupt_frames,
    corrupt_image,
    corrupt_text,
    corrupt_token_ids,
    generator,
    multibench_image,
    multibench_text,
    multibench_timeseries,
)
from msabench.errors import DataError
from msabench.inference import load_run, rebuild
from msabench.metrics import HEADLINE, evaluate
from msabench.results import RunResult, write_atomic
from msabench.runtime import DEFAULT_THREADS, select_device, set_threads
from msabench.train import predict_batches

log = logging.getLogger("msabench")

SCHEMA = 2  # 2: corruption sets, threads, the reference's fusion, the clean-metrics note
LEVELS = tuple(i / 10 for i in range(10))
ALL_LEVELS = tuple(i / 30 for i in range(10))
STEP = 0.1  # MultiBench's trapezoid step, for every curve
ABSENT = {
    "words": "the empty string",
    "token-ids": "[CLS] [SEP] only (mask and length 2)",
    "frames": "all zeros, length 1",
    "images": "a black image of the same size",
}
UNK_IDS = {"bert-base-uncased": 100, "bert-base-cased": 100, "bert-base-chinese": 100}  # their vocab.txt line 101
MULTIBENCH_ORDER = ("vision", "audio", "text")  # the arrays of its affect loaders' all-modalities noise, in order


# -- applying them to a split ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One input a run's encoder reads: its modality, its key in the split, how it is corrupted, its lengths key."""

    modality: str
    key: str
    kind: str  # words, token-ids, frames or images (a key of each of msabench.corruptions.SETS)
    lengths: str | None = None


def targets(encoders: Mapping[str, str], catalog: Catalog, split: Split) -> dict[str, Target]:
    """modality -> the input its encoder (by name, as the run's checkpoint records them) reads from `split`."""
    found = {}
    for modality, name in encoders.items():
        key = input_key(catalog.encoders[name], modality)
        lengths = f"{modality}_lengths" if f"{modality}_lengths" in split.tensors else None
        if key in split.raw:
            sample = next((v for v in split.raw[key] if v is not None), "")
            kind = "images" if isinstance(sample, bytes) else "words"
        elif key not in split.tensors:
            raise DataError(f"the test split has no input {key!r} for the {modality} encoder {name!r}.")
        elif split.tensors[key].is_floating_point():
            kind = "frames"
        elif split.tensors[key].dim() == 3 and split.tensors[key].shape[1] == 3:
            kind = "token-ids"
        else:
            raise DataError(
                f"cannot corrupt input {key!r} ({modality}): integer tensor of shape {tuple(split.tensors[key].shape)} "
                "is neither [N, 3, L] token ids nor features."
            )
        found[modality] = Target(modality, key, kind, lengths)
    return found


def corrupt(
    split: Split, chosen: Sequence[Target], p: float, rng: Any, unk: int | None, corruptions: str = "multibench"
) -> Split:
    """A copy of `split` with the `chosen` inputs corrupted at level p by the named corruption set, drawing from
    `rng` (`msabench.corruptions.generator`); every other input is the same object. With ``multibench``, the
    feature sequences are corrupted first and together, as one ``add_timeseries_noise`` call over MultiBench's
    array order (`MULTIBENCH_ORDER`), then the other inputs in the order given."""
    if corruptions not in SETS:
        raise ValueError(f"unknown corruption set {corruptions!r}; known: {', '.join(SETS)}")
    tensors, raw = dict(split.tensors), dict(split.raw)
    multibench = corruptions == "multibench"
    if multibench:
        frames = sorted((t for t in chosen if t.kind == "frames"), key=_multibench_order)
        arrays = multibench_timeseries([split.tensors[t.key] for t in frames], p, rng)
        tensors.update({t.key: array for t, array in zip(frames, arrays, strict=True)})
    for target in chosen:
        if target.kind == "words":
            misspell = multibench_text if multibench else corrupt_text
            raw[target.key] = [misspell(text, p, rng) for text in split.raw[target.key]]
        elif target.kind == "images":
            noise = multibench_image if multibench else corrupt_image
            raw[target.key] = [noise(image, p, rng) for image in split.raw[target.key]]
        elif target.kind == "token-ids":
            if unk is None:
                raise DataError("corrupting token ids needs the tokenizer's [UNK] id; none was found.")
            tensors[target.key] = corrupt_token_ids(split.tensors[target.key], p, rng, unk)
        elif not multibench:
            lengths = split.tensors.get(target.lengths) if target.lengths else None
            tensors[target.key] = corrupt_frames(split.tensors[target.key], lengths, p, rng)
    return Split(split.name, split.ids, tensors, raw)


def _multibench_order(target: Target) -> tuple[int, str]:
    known = target.modality in MULTIBENCH_ORDER
    return (MULTIBENCH_ORDER.index(target.modality) if known else len(MULTIBENCH_ORDER), target.modality)


def describe(target: Target, corruptions: str) -> dict[str, str]:
    """What the report says of an input: its corruption, whose definition it is (``multibench``, ``proxy`` or
    ``msabench``) and what "missing" means for it."""
    definition = "msabench" if corruptions == "msabench" else "multibench"
    corruption = SETS[corruptions][target.kind]
    if target.kind == "token-ids":
        definition = "proxy"
    elif corruptions == "multibench" and target.kind == "frames" and target.modality == "text":
        definition = "proxy"
        corruption += (
            " (text features: MultiBench does this to them in its all-modalities curve; its text curve misspells raw "
            "words, which features no longer have)"
        )
    return {"corruption": corruption, "definition": definition, "absent": ABSENT[target.kind]}


def remove(split: Split, chosen: Sequence[Target]) -> Split:
    """A copy of `split` where the `chosen` inputs are absent, as an encoder sees a missing input (`ABSENT`)."""
    tensors, raw = dict(split.tensors), dict(split.raw)
    for target in chosen:
        if target.kind == "words":
            raw[target.key] = ["" for _ in split.raw[target.key]]
            continue
        if target.kind == "images":
            raw[target.key] = [black_image(image) for image in split.raw[target.key]]
            continue
        value = split.tensors[target.key]
        if target.kind == "token-ids":
            ids = torch.zeros_like(value)
            last = (value[:, 1].sum(1) - 1).clamp(min=0)
            ids[:, 0, 0] = value[:, 0, 0]  # [CLS]
            ids[:, 0, 1] = value[torch.arange(len(value)), 0, last]  # [SEP]
            ids[:, 1, :2] = 1
            tensors[target.key], length = ids, 2
        else:
            tensors[target.key], length = torch.zeros_like(value), 1
        if target.lengths:
            tensors[target.lengths] = torch.full_like(split.tensors[target.lengths], length)
    return Split(split.name, split.ids, tensors, raw)


def unk_id(dataset: Dataset, data: Data) -> int | None:
    """The [UNK] id of the tokenizer behind a dataset's token ids: the dataset's own vocabulary (synthetic data),
    a known BERT vocabulary, or the tokenizer loaded from local files."""
    vocabulary = getattr(dataset, "vocabulary", None)
    if vocabulary and "[UNK]" in vocabulary:
        return list(vocabulary).index("[UNK]")
    if data.tokenizer in UNK_IDS:
        return UNK_IDS[data.tokenizer]
    if data.tokenizer:
        try:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(data.tokenizer, local_files_only=True).unk_token_id
        except Exception:
            return None
    return None


class CorruptionCache(FeatureCache):
    """The feature cache with the corruption added to the key of every entry whose input it corrupted (the clean
    inputs of a condition read their clean entries), so corrupted features never replace clean ones."""

    def __init__(self, base: FeatureCache, corruption: dict[str, Any], inputs: Sequence[str]):
        super().__init__(base.root)
        self.corruption, self.inputs = corruption, set(inputs)

    def tagged(self, key: dict[str, Any]) -> dict[str, Any]:
        return {**key, "corruption": self.corruption} if key.get("input") in self.inputs else key

    def load(self, key: dict[str, Any], ids: list[str]) -> torch.Tensor | None:
        return super().load(self.tagged(key), ids)

    def save(self, key: dict[str, Any], ids: list[str], features: torch.Tensor) -> Path | None:
        return super().save(self.tagged(key), ids, features)


# -- summary numbers -------------------------------------------------------------------------------------------


def relative_robustness(values: Sequence[float], step: float = STEP) -> float:
    """MultiBench's relative robustness: the trapezoidal area under a metric-vs-level curve, levels `step` apart."""
    return float(sum((a + b) * step / 2 for a, b in itertools.pairwise(values)))


def effective_robustness(values: Sequence[float], reference: Sequence[float]) -> float:
    """MultiBench's effective robustness: sum of f - (r + f[0] - r[0]) over the levels, r the reference's curve
    (computed as (f - f[0]) - (r - r[0]), so that a curve against itself gives exactly 0)."""
    if len(values) != len(reference):
        raise ValueError(f"curves of {len(values)} and {len(reference)} levels cannot be compared")
    f, r = np.asarray(values, np.float64), np.asarray(reference, np.float64)
    return float(np.sum((f - f[0]) - (r - r[0]))) + 0.0  # + 0.0: no -0.0


# -- rebuilding a run and measuring it ------------------------------------------------------------------------


@torch.no_grad()
def score(model: Model, split: Split, task: Task, batch_size: int, device: torch.device) -> dict:
    """The family's metrics of the model's predictions on a split, as `msabench.train.evaluate_split` computes them."""
    predictions, labels = [], []
    for batch, outputs in predict_batches(model, split, batch_size, device):
        prediction = task.decide(outputs["prediction"])
        predictions.append(prediction.cpu())
        labels.append(batch["label"].reshape(len(prediction), -1).squeeze(-1).cpu())
    p, y = torch.cat(predictions).double().numpy(), torch.cat(labels).double().numpy()
    return evaluate(task.family, p, y)


def measure(
    path: str | Path,
    catalog: Catalog,
    *,
    data_root: str | Path | None = None,
    data_options: Mapping[str, Any] | None = None,
    device: str | torch.device | None = "cpu",
    reference: str | Path | None = None,
    loaded: tuple[Dataset, Data] | None = None,
    corruptions: str = "multibench",
    threads: int | None = None,
) -> dict[str, Any]:
    """The robustness report of the run at `path` (a result JSON with its checkpoint beside it) under the named
    corruption set (`msabench.corruptions.SETS`): every curve, the missing-modality scores and the raw summary
    numbers; with `reference`, that run's curves and effective robustness.

    Torch runs on `threads` CPU threads, by default the count the run recorded (``hardware.torch_threads``; 1
    without a result file), and the caller's count is restored afterwards."""
    if corruptions not in SETS:
        raise ValueError(f"unknown corruption set {corruptions!r}; known: {', '.join(SETS)}")
    checkpoint, result = load_run(path)
    name = checkpoint.get("dataset") or (result.dataset if result else None)
    found = _reference(reference, name, int(checkpoint.get("seed", 0))) if reference is not None else None
    recorded = (result.hardware or {}).get("torch_threads") if result is not None else None
    used = threads if threads is not None else (recorded or DEFAULT_THREADS)
    before = torch.get_num_threads()
    set_threads(used)
    try:
        report, loaded = _measure(checkpoint, result, catalog, data_root, data_options, device, loaded, corruptions)
        source = "given" if threads is not None else ("result" if recorded else "default")
        report["threads"] = {"used": used, "source": source, "result": recorded}
        report["clean_note"] = clean_note(report, result, used, select_device(device))
        if found is not None:
            report["reference"], report["summary"]["effective"] = _compare(
                report, found, catalog, device, loaded, threads
            )
    finally:
        torch.set_num_threads(before)
    if report["clean_note"] is not None:
        log.warning("%s: %s", path, report["clean_note"])
    return report


def _measure(checkpoint, result, catalog, data_root, data_options, device, loaded, corruptions) -> tuple[dict, tuple]:
    device = select_device(device)
    name = checkpoint.get("dataset") or (result.dataset if result else None)
    loaded, test = _test_split(name, result, catalog, data_root, data_options, loaded)
    dataset, data = loaded
    hparams = checkpoint["hparams"].get("train", {})
    batch_size = int(hparams.get("eval_batch_size") or hparams.get("batch_size", 32))
    seed = int(checkpoint.get("seed", 0))
    task, family = data.task, data.task.family
    metric = HEADLINE[family]
    inputs = targets(checkpoint["encoders"], catalog, test)
    unk = unk_id(dataset, data) if any(t.kind == "token-ids" for t in inputs.values()) else None
    base = FeatureCache.default()

    def run(split: Split, corruption: dict[str, Any] | None) -> dict[str, float]:
        cache = base if corruption is None else CorruptionCache(base, corruption, corruption["inputs"])
        rebuilt = rebuild(
            checkpoint, result, replace(data, splits={"test": split}), catalog, device=device, cache=cache
        )
        return score(rebuilt.model, rebuilt.data.splits["test"], task, batch_size, device)

    clean = run(test, None)
    curves = _curves(run, clean, test, inputs, seed, corruptions, unk)
    missing = _missing(run, test, inputs)
    relative = {curve: relative_robustness([m[metric] for m in c["metrics"]]) for curve, c in curves.items()}
    report = {
        "schema": SCHEMA,
        "dataset": name,
        "method": checkpoint["method"],
        "variant": checkpoint.get("variant", ""),
        "row": result.row if result else checkpoint["method"],
        "seed": seed,
        "protocol": result.protocol.get("id") if result else None,
        "family": family,
        "metric": metric,
        "secondary": "MAE" if task.kind == "regression" else None,
        "test_samples": len(test),
        "corruptions": corruptions,
        "inputs": {m: {"input": t.key, "kind": t.kind, **describe(t, corruptions)} for m, t in inputs.items()},
        "clean": clean,
        "clean_matches_result": None if result is None else _same(clean, result.metrics),
        "curves": curves,
        "missing": missing,
        "summary": {
            "scale": "raw: MultiBench's helper values per run, before its max-min normalisation over methods",
            "relative": relative,
            "effective": None,
        },
        "reference": None,
    }
    return report, loaded


def _test_split(
    name: str | None,
    result: RunResult | None,
    catalog: Catalog,
    data_root: str | Path | None,
    data_options: Mapping[str, Any] | None,
    loaded: tuple[Dataset, Data] | None,
) -> tuple[tuple[Dataset, Data], Split]:
    """The run's dataset and data (loaded here unless given) and the test split, checked to be the run's."""
    if loaded is None:
        dataset = catalog.datasets[name](data_root, **dict(data_options or {}))
        loaded = (dataset, dataset.load())
    data = loaded[1]
    if data.name != name:
        raise DataError(f"the run was trained on {name}; the data given are {data.name}.")
    test = data.splits.get("test")
    if test is None:
        raise DataError(f"{name} has no test split to measure robustness on.")
    if result is not None and result.predictions.get("ids") and list(result.predictions["ids"]) != list(test.ids):
        raise DataError(
            f"the test split of {name} as loaded now holds other samples than the run's ({len(test)} vs "
            f"{len(result.predictions['ids'])}): pass the --data-root and --data-option values the run used."
        )
    return loaded, test


Scorer = Callable[[Split, dict[str, Any] | None], dict[str, float]]  # the test metrics of a (corrupted) split


def _curves(
    run: Scorer,
    clean: dict[str, float],
    test: Split,
    inputs: Mapping[str, Target],
    seed: int,
    corruptions: str,
    unk: int | None,
) -> dict[str, dict[str, Any]]:
    """One curve per modality, and one for all of them together: the metrics at each corruption level."""
    curves: dict[str, dict[str, Any]] = {}
    plans = [(m, [t], LEVELS) for m, t in inputs.items()]
    if len(inputs) > 1:
        plans.append(("all", list(inputs.values()), ALL_LEVELS))
    for curve, chosen, levels in plans:
        points = [clean]
        for index, p in enumerate(levels[1:], start=1):
            keys = [t.key for t in chosen]
            corruption = {
                "set": corruptions,
                "curve": curve,
                "level": p,
                "seed": seed,
                "inputs": keys,
                "schema": SCHEMA,
            }
            rng = generator(corruptions, seed, curve, index)
            points.append(run(corrupt(test, chosen, p, rng, unk, corruptions), corruption))
        curves[curve] = {"levels": list(levels), "metrics": points}
    return curves


def _missing(run: Scorer, test: Split, inputs: Mapping[str, Target]) -> dict[str, dict[str, float]]:
    """The metrics with each modality, and each pair of them, left out (while another remains)."""
    missing = {}
    modalities = list(inputs)
    for size in (1, 2):
        for group in itertools.combinations(modalities, size):
            if size < len(modalities):
                label = "+".join(group)
                corruption = {"missing": list(group), "inputs": [inputs[m].key for m in group], "schema": SCHEMA}
                missing[label] = run(remove(test, [inputs[m] for m in group]), corruption)
    return missing


def clean_note(report: Mapping[str, Any], result: RunResult | None, threads: int, device: torch.device) -> str | None:
    """None when the clean metrics equal the run's result (or there is no result); else what differs and why."""
    if result is None or report["clean_matches_result"]:
        return None
    clean, theirs = report["clean"], result.metrics
    differences = [
        f"{key} {clean[key]!r} vs {theirs[key]!r}"
        for key in clean
        if key in theirs and not (clean[key] == theirs[key] or (math.isnan(clean[key]) and math.isnan(theirs[key])))
    ]
    if set(clean) != set(theirs):
        differences.append(f"metrics {sorted(clean)} vs {sorted(theirs)}")
    causes = []
    recorded = (result.hardware or {}).get("torch_threads")
    if recorded is not None and recorded != threads:
        causes.append(
            f"{threads} torch threads here, {recorded} in the run (the count changes how sums are split; measure "
            "without --threads to use the run's)"
        )
    ran_on = str((result.hardware or {}).get("device", "cpu")).split(":")[0]
    if ran_on != device.type:
        causes.append(f"evaluated on {device.type}, trained on {ran_on}")
    if result.versions.get("torch") not in (None, torch.__version__):
        causes.append(f"torch {torch.__version__} here, {result.versions['torch']} in the run")
    machine = (result.hardware or {}).get("machine")
    if machine not in (None, platform.machine()):
        causes.append(f"a {platform.machine()} machine here, {machine} in the run")
    if not causes:
        causes.append(
            "same threads, device, torch and machine: the data or the checkpoint differ from the run's (check "
            "--data-root, --data-option and the data files)"
        )
    return f"the clean test metrics differ from the run's result ({'; '.join(differences)}): {'; '.join(causes)}."


def _reference(path: str | Path, dataset: str | None, seed: int) -> tuple[Path, RunResult]:
    """The reference run's result, checked before anything is measured."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"no reference run {path}: give --reference the result JSON of a late-fusion run (e.g. lf-dnn)."
        )
    result = RunResult.load(path)
    if result.dataset != dataset or result.seed != seed:
        raise DataError(
            f"the reference {path} is {result.row} on {result.dataset}, seed {result.seed}; effective robustness "
            f"compares runs on the same dataset and seed: {dataset}, seed {seed}."
        )
    return path, result


def late_fusion(catalog: Catalog, fusion: str | None) -> bool | None:
    """Whether a fusion (by name) declares itself MultiBench's late fusion; None when it is not installed."""
    if fusion is None or fusion not in catalog.fusions:
        return None
    return bool(catalog.fusions[fusion].late)


def _compare(report, reference, catalog, device, loaded, threads) -> tuple[dict[str, Any], dict[str, float | None]]:
    path, found = reference
    other = measure(path, catalog, device=device, loaded=loaded, corruptions=report["corruptions"], threads=threads)
    metric = report["metric"]
    effective = {
        curve: effective_robustness(
            [m[metric] for m in values["metrics"]], [m[metric] for m in other["curves"][curve]["metrics"]]
        )
        if curve in other["curves"] and len(other["curves"][curve]["levels"]) == len(values["levels"])
        else None
        for curve, values in report["curves"].items()
    }
    fusion = found.method_info.get("fusion")
    late = late_fusion(catalog, fusion)
    if not late:
        log.warning(
            "the reference %s (%s) is %s: MultiBench's effective robustness is measured against late fusion (LF)",
            path,
            found.row,
            f"not late fusion (its fusion {fusion!r} does not declare late = True)"
            if late is False
            else f"of a fusion not installed here ({fusion!r}), so whether it is late fusion is unknown",
        )
    summary = {
        "run": str(path),
        "method": found.method,
        "row": found.row,
        "fusion": fusion,
        "late_fusion": late,
        "clean": other["clean"],
        "clean_matches_result": other["clean_matches_result"],
        "curves": other["curves"],
        "relative": other["summary"]["relative"],
    }
    return summary, effective


def _same(ours: Mapping[str, float], theirs: Mapping[str, float]) -> bool:
    return set(ours) == set(theirs) and all(
        (math.isnan(a) and math.isnan(theirs[k])) or a == theirs[k] for k, a in ours.items()
    )


def summary(report: Mapping[str, Any]) -> str:
    """A report for the terminal: each curve's headline metric (%) per level with its relative and effective
    robustness, then the clean score and the scores with modalities missing."""
    metric, effective = report["metric"], report["summary"]["effective"] or {}
    rows = [
        [
            name,
            " ".join(f"{100 * m[metric]:.1f}" for m in curve["metrics"]),
            f"{report['summary']['relative'][name]:.4f}",
            "—" if effective.get(name) is None else f"{effective[name]:+.4f}",
        ]
        for name, curve in report["curves"].items()
    ]
    headers = ["Curve", f"{metric} (%) at each level", "Relative (raw)", "Effective (raw)"]
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    missing = "".join(f"; no {name} {100 * m[metric]:.1f}" for name, m in report["missing"].items())
    proxies = [m for m, i in report["inputs"].items() if i["definition"] == "proxy"]
    lines = [
        f"corruptions: {report['corruptions']}" + (f" (proxies for {', '.join(proxies)})" if proxies else ""),
        f"threads: {report['threads']['used']} ({report['threads']['source']})",
        "",
        table,
        "",
        f"clean {metric} {100 * report['clean'][metric]:.1f}{missing}",
    ]
    if report.get("clean_note"):
        lines.append(report["clean_note"])
    reference = report.get("reference")
    if reference and not reference.get("late_fusion"):
        what = "not late fusion" if reference.get("late_fusion") is False else "not known to be late fusion"
        lines.append(f"effective robustness against {reference['row']} (fusion {reference['fusion']!r}): {what}")
    return "\n".join(lines)


def report_path(path: str | Path, corruptions: str = "multibench") -> Path:
    """Beside a run's `seed-<n>.json` (or `.pt`): `seed-<n>.robustness.json` for the default ``multibench`` set (the
    report `msabench leaderboard --robustness` and `msabench plot` read), `seed-<n>.robustness-<set>.json` for
    another set."""
    path = Path(path)
    suffix = ".robustness.json" if corruptions == "multibench" else f".robustness-{corruptions}.json"
    return path.with_name(path.name.rsplit(".", 1)[0] + suffix)


def write(report: dict[str, Any], path: str | Path) -> Path:
    """Write a report as JSON (NaN as null), atomically."""
    write_atomic(path, json.dumps(_nulls(report), indent=1, allow_nan=False) + "\n")
    return Path(path)


def _nulls(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _nulls(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nulls(item) for item in value]
    return value


def read(path: str | Path) -> dict[str, Any]:
    """A report written by `write`."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read robustness report {path}: {error}") from None
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        raise DataError(f"{path} is not a robustness report of schema {SCHEMA}: rerun `msabench robustness`.")
    return report
