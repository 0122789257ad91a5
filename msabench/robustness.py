"""Robustness of a trained run (`msabench robustness`): its selected checkpoint evaluated on its test split
under corrupted and missing inputs, without retraining and without selecting anything on the test split.

MultiBench's protocol (Liang et al., NeurIPS 2021, `robustness/` and `eval_scripts/robustness.py`):

- **Curves.** Each modality's input alone at levels p = 0, 0.1, ..., 0.9 (`LEVELS`), and all modalities
  together at p = i/30 (`ALL_LEVELS`, as MultiBench does for its multimodal time-series noise). The
  corruption depends on what the run's encoder reads (`KINDS`):
  raw text (``raw_text``): each word of more than 3 characters is, with probability p, misspelt by one of
  five operations (swap of two adjacent inner letters, shuffle of the inner letters, a QWERTY-neighbour
  typo, a repeated "sticky" letter, an omitted inner letter); words are what whitespace separates, with
  their leading and trailing punctuation kept aside. MMSA's pickles hold no raw text, so where the encoder
  reads **token ids** (``text_bert``) each token between [CLS] and [SEP] becomes [UNK] with probability p
  (a misspelt word is out of the vocabulary), and where it reads **text features** they are treated like
  audio and vision: Gaussian noise with sigma = p on every real time step (element-wise), then every real
  time step zeroed with probability p; padding is never touched (MultiBench's own code adds one noise value
  per time step, padding included). Images: Gaussian pixel noise (sigma = p, pixels in [0, 1]) and a black
  rectangle of the image's shape covering a fraction p of its area (occlusion), re-encoded as PNG.
  Corrupted raw inputs go through the encoder's preprocessing again (tokenizer, image resizing).
- **Missing modalities.** Each modality, and each pair (leaving at least one), removed as an encoder sees an
  absent input (`ABSENT`): the empty text, [CLS] [SEP] alone (mask and length 2), all-zero features with
  length 1 (the loader's minimum; packed RNNs refuse 0), a black image.
- **Metric** per family (`msabench.metrics.HEADLINE`): mosi Acc-2_non0, sims Acc-2, classification Acc,
  iemocap Acc_mean; regression runs record MAE beside it (every metric of the family is kept per level).
- **Relative robustness**: the area under the metric-vs-level curve by the trapezoidal rule with a step of
  0.1 between levels, as MultiBench's helper computes it for every curve (so the all-modalities curve, drawn
  at i/30, has the same scale). **Effective robustness**: sum over levels of f(p) - (r(p) + f(0) - r(0)),
  the gap to a late-fusion reference run's curve r shifted to the same clean score (MultiBench compares
  with LF); it needs `--reference`, a run on the same dataset and seed. Both are reported as computed,
  without MultiBench's max-min normalisation over the methods of a task.

Everything is seeded (the run's seed, the curve and the level) and deterministic. Frozen encoders run on
the corrupted inputs through the feature cache with the corruption in the cache key (`CorruptionCache`),
so entries of clean inputs are never overwritten; level 0 is the clean input and reads them. The clean
evaluation reproduces the run's test metrics (``clean_matches_result`` in the report).
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import math
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tabulate import tabulate

from msabench.cache import FeatureCache
from msabench.catalog import Catalog, input_key
from msabench.components import Data, Dataset, Model, Split, Task
from msabench.errors import DataError
from msabench.inference import load_run, rebuild
from msabench.metrics import HEADLINE, evaluate
from msabench.results import RunResult, write_atomic
from msabench.runtime import select_device
from msabench.train import predict_batches

log = logging.getLogger("msabench")

SCHEMA = 1
LEVELS = tuple(i / 10 for i in range(10))
ALL_LEVELS = tuple(i / 30 for i in range(10))
STEP = 0.1  # MultiBench's trapezoid step, for every curve
KINDS = {
    "words": "each word of more than 3 characters misspelt with probability p (swap, inner shuffle, QWERTY typo, "
    "sticky letter or omission), then preprocessed again",
    "token-ids": "each token between [CLS] and [SEP] replaced by [UNK] with probability p",
    "frames": "Gaussian noise (sigma = p) on every real time step, then each real time step zeroed with probability p",
    "images": "Gaussian pixel noise (sigma = p on [0, 1]) and a black rectangle over a fraction p of the area, "
    "re-encoded as PNG and preprocessed again",
}
ABSENT = {
    "words": "the empty string",
    "token-ids": "[CLS] [SEP] only (mask and length 2)",
    "frames": "all zeros, length 1",
    "images": "a black image of the same size",
}
UNK_IDS = {"bert-base-uncased": 100, "bert-base-cased": 100, "bert-base-chinese": 100}  # their vocab.txt line 101


# -- corruption functions (pure: same inputs and generator state, same output) -------------------------------


def _keyboard() -> dict[str, str]:
    """QWERTY neighbours: same-row keys beside a key, and keys of the rows above and below within one key width
    (rows staggered by a quarter and three quarters of a key)."""
    rows = [("qwertyuiop", 0.0), ("asdfghjkl", 0.25), ("zxcvbnm", 0.75)]
    where = {key: (r, c + offset) for r, (keys, offset) in enumerate(rows) for c, key in enumerate(keys)}
    return {
        key: "".join(
            other
            for other, (row2, x2) in where.items()
            if other != key and ((row2 == row and abs(x2 - x) == 1) or (abs(row2 - row) == 1 and abs(x2 - x) < 1))
        )
        for key, (row, x) in where.items()
    }


NEIGHBOURS = _keyboard()
TOKEN = re.compile(r"\S+")


def misspell(word: str, rng: np.random.Generator) -> str:
    """One of MultiBench's five misspellings of a word of 4+ characters, chosen uniformly."""
    n = len(word)
    operation = int(rng.integers(5))
    if operation == 0:  # swap two adjacent letters, first and last kept
        i = int(rng.integers(1, n - 2))
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if operation == 1:  # shuffle the inner letters
        inner = list(word[1:-1])
        return word[0] + "".join(inner[i] for i in rng.permutation(len(inner))) + word[-1]
    if operation == 2:  # a neighbouring key instead of one letter
        typeable = [i for i, c in enumerate(word) if c.lower() in NEIGHBOURS]
        if not typeable:
            return word
        i = typeable[int(rng.integers(len(typeable)))]
        near = NEIGHBOURS[word[i].lower()]
        key = near[int(rng.integers(len(near)))]
        return word[:i] + (key.upper() if word[i].isupper() else key) + word[i + 1 :]
    if operation == 3:  # a sticky key: one letter twice
        i = int(rng.integers(n))
        return word[: i + 1] + word[i] + word[i + 1 :]
    i = int(rng.integers(1, n - 1))  # omit an inner letter
    return word[:i] + word[i + 1 :]


def corrupt_text(text: str, p: float, rng: np.random.Generator) -> str:
    """`text` with each whitespace-separated word whose letters (punctuation at its ends aside) number more than 3
    misspelt with probability p. p = 0 returns `text` itself; p = 1 misspells every such word."""
    if p <= 0:
        return text

    def one(match: re.Match) -> str:
        token = match.group()
        start, end = 0, len(token)
        while start < end and not token[start].isalnum():
            start += 1
        while end > start and not token[end - 1].isalnum():
            end -= 1
        word = token[start:end]
        if len(word) > 3 and rng.random() < p:
            word = misspell(word, rng)
        return token[:start] + word + token[end:]

    return TOKEN.sub(one, text)


def corrupt_token_ids(ids: torch.Tensor, p: float, rng: np.random.Generator, unk: int) -> torch.Tensor:
    """[N, 3, L] ids/mask/segments (right-padded, [CLS] first, [SEP] last): each token strictly between them becomes
    `unk` with probability p."""
    if p <= 0:
        return ids.clone()
    ids = ids.clone()
    positions = torch.arange(ids.shape[2])[None, :]
    lengths = ids[:, 1].sum(1, keepdim=True)
    inner = (positions >= 1) & (positions < lengths - 1) & (ids[:, 1] > 0)
    hit = torch.from_numpy(rng.random(tuple(inner.shape)) < p) & inner
    ids[:, 0][hit] = unk
    return ids


def corrupt_frames(x: torch.Tensor, lengths: torch.Tensor | None, p: float, rng: np.random.Generator) -> torch.Tensor:
    """[N, L, D] features (or [N, D], one step): Gaussian noise with sigma = p on the real steps (the first
    `lengths[i]`; all when None), then each real step zeroed with probability p. Padding is left as it is."""
    if p <= 0:
        return x.clone()
    steps = x if x.dim() == 3 else x[:, None]
    real = torch.ones(steps.shape[:2], dtype=torch.bool)
    if lengths is not None:
        real = torch.arange(steps.shape[1])[None, :] < lengths.reshape(-1, 1)
    noise = torch.from_numpy(rng.standard_normal(tuple(steps.shape)).astype(np.float32)) * p
    out = steps + noise.to(steps.dtype) * real[..., None]
    drop = torch.from_numpy(rng.random(tuple(real.shape)) < p) & real
    out[drop] = 0
    return out if x.dim() == 3 else out[:, 0]


def corrupt_image(data: bytes, p: float, rng: np.random.Generator) -> bytes:
    """An image file's bytes with Gaussian pixel noise (sigma = p on [0, 1]) and a black rectangle of the image's
    aspect covering a fraction p of its area at a random place, as PNG. p = 0 returns `data` itself; p = 1 gives
    an all-black image."""
    if p <= 0:
        return data
    pixels = np.asarray(_decode(data), dtype=np.float32) / 255.0
    height, width = pixels.shape[:2]
    pixels = pixels + rng.normal(0.0, p, pixels.shape).astype(np.float32)
    box_h, box_w = round(height * math.sqrt(p)), round(width * math.sqrt(p))
    top, left = int(rng.integers(0, height - box_h + 1)), int(rng.integers(0, width - box_w + 1))
    pixels[top : top + box_h, left : left + box_w] = 0.0
    return _png(np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8))


def black_image(data: bytes) -> bytes:
    """A black PNG of the same size as the image in `data`."""
    width, height = _decode(data).size
    return _png(np.zeros((height, width, 3), dtype=np.uint8))


def _decode(data: bytes) -> Any:
    from PIL import Image, ImageFile

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except OSError as error:  # a truncated file decodes as far as it goes, as the datasets read it
        if "truncated" not in str(error).lower():
            raise DataError(f"cannot decode an image to corrupt it: {error}") from None
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = False
    return image.convert("RGB")


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


# -- applying them to a split ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One input a run's encoder reads: its modality, its key in the split, how it is corrupted, its lengths key."""

    modality: str
    key: str
    kind: str  # a key of KINDS
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


def corrupt(split: Split, chosen: Sequence[Target], p: float, rng: np.random.Generator, unk: int | None) -> Split:
    """A copy of `split` with the `chosen` inputs corrupted at level p; every other input is the same object."""
    tensors, raw = dict(split.tensors), dict(split.raw)
    for target in chosen:
        if target.kind == "words":
            raw[target.key] = [corrupt_text(text, p, rng) for text in split.raw[target.key]]
        elif target.kind == "images":
            raw[target.key] = [corrupt_image(image, p, rng) for image in split.raw[target.key]]
        elif target.kind == "token-ids":
            if unk is None:
                raise DataError("corrupting token ids needs the tokenizer's [UNK] id; none was found.")
            tensors[target.key] = corrupt_token_ids(split.tensors[target.key], p, rng, unk)
        else:
            lengths = split.tensors.get(target.lengths) if target.lengths else None
            tensors[target.key] = corrupt_frames(split.tensors[target.key], lengths, p, rng)
    return Split(split.name, split.ids, tensors, raw)


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


def generator(seed: int, curve: str, level: int) -> np.random.Generator:
    """The random numbers of one curve point: from the run's seed, the curve's name and the level's index."""
    return np.random.default_rng([seed, zlib.crc32(curve.encode()), level])


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
) -> dict[str, Any]:
    """The robustness report of the run at `path` (a result JSON with its checkpoint beside it): every curve, the
    missing-modality scores and the summary numbers; with `reference`, that run's curves and effective robustness."""
    device = select_device(device)
    checkpoint, result = load_run(path)
    name = checkpoint.get("dataset") or (result.dataset if result else None)
    found = _reference(reference, name, int(checkpoint.get("seed", 0))) if reference is not None else None
    if loaded is None:
        dataset = catalog.datasets[name](data_root, **dict(data_options or {}))
        loaded = (dataset, dataset.load())
    dataset, data = loaded
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
    curves: dict[str, dict[str, Any]] = {}
    plans = [(m, [t], LEVELS) for m, t in inputs.items()]
    if len(inputs) > 1:
        plans.append(("all", list(inputs.values()), ALL_LEVELS))
    for curve, chosen, levels in plans:
        points = [clean]
        for index, p in enumerate(levels[1:], start=1):
            corruption = {"curve": curve, "level": p, "seed": seed, "inputs": [t.key for t in chosen], "schema": SCHEMA}
            points.append(run(corrupt(test, chosen, p, generator(seed, curve, index), unk), corruption))
        curves[curve] = {"levels": list(levels), "metrics": points}
    missing = {}
    modalities = list(inputs)
    for size in (1, 2):
        for group in itertools.combinations(modalities, size):
            if size < len(modalities):
                label = "+".join(group)
                corruption = {"missing": list(group), "inputs": [inputs[m].key for m in group], "schema": SCHEMA}
                missing[label] = run(remove(test, [inputs[m] for m in group]), corruption)
    relative = {curve: relative_robustness([m[metric] for m in c["metrics"]]) for curve, c in curves.items()}
    report: dict[str, Any] = {
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
        "inputs": {
            m: {"input": t.key, "kind": t.kind, "corruption": KINDS[t.kind], "absent": ABSENT[t.kind]}
            for m, t in inputs.items()
        },
        "clean": clean,
        "clean_matches_result": None if result is None else _same(clean, result.metrics),
        "curves": curves,
        "missing": missing,
        "summary": {"relative": relative, "effective": None},
        "reference": None,
    }
    if reference is not None:
        report["reference"], report["summary"]["effective"] = _compare(report, found, catalog, device, loaded)
    if report["clean_matches_result"] is False:
        log.warning(
            "%s: the clean test metrics differ from the run's result file; check the data and the install", path
        )
    return report


def _reference(path: str | Path, dataset: str, seed: int) -> tuple[Path, RunResult]:
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


def _compare(report, reference, catalog, device, loaded) -> tuple[dict[str, Any], dict[str, float | None]]:
    path, found = reference
    other = measure(path, catalog, device=device, loaded=loaded)
    metric = report["metric"]
    effective = {
        curve: effective_robustness(
            [m[metric] for m in values["metrics"]], [m[metric] for m in other["curves"][curve]["metrics"]]
        )
        if curve in other["curves"] and len(other["curves"][curve]["levels"]) == len(values["levels"])
        else None
        for curve, values in report["curves"].items()
    }
    summary = {
        "run": str(path),
        "method": found.method,
        "row": found.row,
        "fusion": found.method_info.get("fusion"),
        "clean": other["clean"],
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
    headers = ["Curve", f"{metric} (%) at each level", "Relative", "Effective"]
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    missing = "".join(f"; no {name} {100 * m[metric]:.1f}" for name, m in report["missing"].items())
    return f"{table}\n\nclean {metric} {100 * report['clean'][metric]:.1f}{missing}"


def report_path(path: str | Path) -> Path:
    """`seed-<n>.robustness.json` beside a run's `seed-<n>.json` (or `.pt`)."""
    path = Path(path)
    return path.with_name(path.name.rsplit(".", 1)[0] + ".robustness.json")


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
