"""Inputs made ready once, before training: raw inputs preprocessed once per split, and frozen
encoders run once per split (their outputs cached on disk, see `msabench.cache`).

`fit()` calls `prepare(model, data)` right after building the model. For each modality:

- **Frozen encoder with a fingerprint** (no parameter needs a gradient; `Encoder.fingerprint()`
  is not None) that returns vectors: its outputs for every sample of every split are computed
  once, in eval mode (no dropout, BatchNorm uses its running statistics), read from or written
  to the feature cache, and stored in the split as a tensor. The model's encoder is replaced by
  `Precomputed`, which passes those features through; the frozen weights are therefore not part
  of the checkpoint, which records the weights' digest instead (``data.encoders`` in the result)
  and is checked against it by `msabench predict`.
- **Encoder reading a raw input** (``raw_text`` strings, ``image`` bytes) that is trained: its
  `Encoder.preprocess` (tokenizer, image resizing) runs once per split and the tensors are kept in
  memory for every epoch, and for later seeds in the same process.

An encoder started from an earlier run's checkpoint (``init_from``) must have been trained on
exactly this run's train and valid samples, or it may have fitted this run's test samples: each
checkpoint records a digest of every split's ids (`split_record`), and `prepare` refuses one whose
train or valid ids are not this run's (`check_started_from`).

Nothing here draws random numbers, so a run gives the same numbers with a cold or a warm cache.
"""

from __future__ import annotations

import hashlib
import logging
import time
import weakref
from dataclasses import replace
from typing import Any, cast

import torch
from torch import nn

from msabench.cache import FeatureCache, digest, input_digest, library_versions, weights_digest
from msabench.components import Data, Encoder, Model, Split
from msabench.errors import DataError

log = logging.getLogger("msabench")

CHUNK = 64  # samples per preprocess + forward call when computing frozen features

# Per-process memory of preprocessed inputs and content digests, keyed by the loaded Split object.
_PREPROCESSED: weakref.WeakKeyDictionary[Split, dict[str, torch.Tensor]] = weakref.WeakKeyDictionary()
_DIGESTS: weakref.WeakKeyDictionary[Split, dict[str, str]] = weakref.WeakKeyDictionary()


class Precomputed(Encoder):
    """Stands in for a frozen encoder whose outputs were computed before training: returns its input."""

    def __init__(self, encoder: Encoder, weights: str):
        nn.Module.__init__(self)
        # A stand-in answers for the encoder it replaces, whose class-level name and output kind it takes per instance.
        self.name = encoder.name  # type: ignore[misc]
        self.pretrained, self.started_from = encoder.pretrained, encoder.started_from
        self.weights_sha256 = encoder.weights_sha256
        self.returns = encoder.returns  # type: ignore[misc]
        self.out_dim = encoder.out_dim
        self.weights = weights

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        return x

    def extra_repr(self) -> str:
        return f"{self.name}, out_dim={self.out_dim}, weights={self.weights[:12]}"


def prepare(model: Model, data: Data, *, device: torch.device | str = "cpu", cache: FeatureCache | None = None) -> Data:
    """Make every split hold what the model's encoders read; replace frozen encoders by their outputs.

    Mutates `model` (encoders and input keys) and returns a new `Data` whose splits carry the added
    tensors; `data` itself is unchanged. Synthetic data are never written to the disk cache.
    """
    device = torch.device(device)
    check_started_from(model, data)
    cache = FeatureCache.default() if cache is None else cache
    if data.synthetic:
        cache = FeatureCache(None)
    splits = {name: _copy(split) for name, split in data.splits.items()}
    report: dict[str, Any] = {}
    for modality, encoder in _encoders(model):
        key = model.inputs[modality]
        raw = any(key in split.raw for split in data.splits.values())
        fingerprint = encoder.fingerprint()
        if fingerprint is not None and encoder.frozen and encoder.returns == "vector":
            report[modality] = _precompute(model, modality, encoder, fingerprint, data, splits, device, cache)
        elif raw:
            memo = f"{key}@{encoder.name}:{digest(fingerprint)[:16]}" if fingerprint is not None else None
            for name, split in data.splits.items():
                splits[name].tensors[f"{key}@{encoder.name}"] = _preprocessed(encoder, split, key, memo)
            model.inputs[modality] = f"{key}@{encoder.name}"
    if not report:
        return replace(data, splits=splits)
    return replace(data, splits=splits, provenance={**data.provenance, "encoders": report})


def _encoders(model: Model) -> list[tuple[str, Encoder]]:
    """The model's (modality, encoder) pairs, listed before any is replaced."""
    # nn.ModuleDict does not keep its values' type; a Model's holds only Encoders.
    return cast(list[tuple[str, Encoder]], list(model.encoders.items()))


def _precompute(
    model: Model,
    modality: str,
    encoder: Encoder,
    fingerprint: dict,
    data: Data,
    splits: dict[str, Split],
    device: torch.device,
    cache: FeatureCache,
) -> dict[str, Any]:
    key = model.inputs[modality]
    weights = weights_digest(encoder)
    target = f"{modality}@{encoder.name}"
    outcome, seconds = {}, {}
    for name, split in data.splits.items():
        started = time.perf_counter()
        cache_key = {
            "dataset": data.name,
            "split": name,
            "samples": len(split),
            "content": _content(split, key, f"{modality}_lengths"),
            "input": key,
            "encoder": encoder.name,
            "fingerprint": fingerprint,
            "weights": weights,
            "device": device.type,
            "versions": library_versions(),
        }
        features = cache.load(cache_key, split.ids)
        if features is not None:
            outcome[name] = "read"
        else:
            features = compute(encoder, split, key, device, lengths_key=f"{modality}_lengths")
            outcome[name] = "written" if cache.save(cache_key, split.ids, features) is not None else "memory"
        splits[name].tensors[target] = features
        seconds[name] = round(time.perf_counter() - started, 3)
        log.info(
            "%s: %s features of %s/%s %s (%.1fs)",
            data.name,
            encoder.name,
            name,
            modality,
            "read from the cache" if outcome[name] == "read" else "computed",
            seconds[name],
        )
    encoder.to("cpu")
    model.encoders[modality] = Precomputed(encoder, weights)
    model.inputs[modality] = target
    return {
        "encoder": encoder.name,
        "input": key,
        "frozen": True,
        "pretrained": encoder.pretrained,
        "weights": weights,
        "fingerprint": fingerprint,
        "cache": outcome,
        "seconds": seconds,
        "cached": cache.enabled,  # where the cache lies is this machine's business: no path in a shareable result
    }


@torch.no_grad()
def compute(
    encoder: Encoder, split: Split, key: str, device: torch.device | str, lengths_key: str | None = None
) -> torch.Tensor:
    """An encoder's outputs for every sample of a split, in eval mode and in chunks: [N, out_dim] float32."""
    was_training = encoder.training
    encoder.eval()
    encoder.to(device)
    raw = key in split.raw
    lengths = split.tensors.get(lengths_key) if lengths_key else None
    outputs = []
    try:
        for start in range(0, len(split), CHUNK):
            end = start + CHUNK
            x = encoder.preprocess(split.raw[key][start:end]) if raw else split.tensors[key][start:end]
            length = lengths[start:end].to(device) if lengths is not None else None
            outputs.append(encoder(x.to(device), length).float().cpu())
    finally:
        encoder.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0, encoder.out_dim)


def _preprocessed(encoder: Encoder, split: Split, key: str, memo: str | None) -> torch.Tensor:
    known = _PREPROCESSED.setdefault(split, {})
    if memo is not None and memo in known:
        return known[memo]
    started = time.perf_counter()
    values = split.raw[key]
    parts = [encoder.preprocess(values[start : start + 1024]) for start in range(0, len(values), 1024)]
    tensor = torch.cat(parts) if parts else encoder.preprocess([])
    log.info(
        "%s: preprocessed %d %s inputs of split %s (%.1fs)",
        encoder.name,
        len(values),
        key,
        split.name,
        time.perf_counter() - started,
    )
    if memo is not None:
        known[memo] = tensor
    return tensor


def _content(split: Split, key: str, lengths_key: str) -> str:
    known = _DIGESTS.setdefault(split, {})
    memo = f"{key}|{lengths_key}"
    if memo not in known:
        raw = key in split.raw
        known[memo] = input_digest(
            split.ids, split.raw[key] if raw else split.tensors[key], None if raw else split.tensors.get(lengths_key)
        )
    return known[memo]


def split_record(data: Data) -> dict[str, Any]:
    """What a checkpoint records about the samples it was trained, selected and tested on: the SHA-256 of
    each split's sorted ids, and the split as the dataset describes it (seed, split file...) and its folder."""
    ids = {
        name: hashlib.sha256("\n".join(sorted(map(str, split.ids))).encode()).hexdigest()
        for name, split in data.splits.items()
    }
    return {"ids_sha256": ids, "split": data.provenance.get("split"), "folder": data.provenance.get("folder")}


def check_started_from(model: Model, data: Data) -> None:
    """Refuse an encoder started from a checkpoint (``init_from``) whose train or valid samples are not this run's:
    it may have been fitted or selected on this run's test samples."""
    if not {"train", "valid", "test"} <= set(data.splits):
        return  # predicting unlabelled inputs: no test split to protect
    current = split_record(data)
    for modality, encoder in _encoders(model):
        started = encoder.started_from
        if not started:
            continue
        recorded = started.get("splits") or {}
        fix = (
            "Rerun the stage that wrote it with the same dataset, data root and --data-option values as this run, or "
            f"point --set {modality}.init_from=PATH at the checkpoint of a run on these splits."
        )
        where = f"encoder {encoder.name!r} ({modality}): checkpoint {started['path']}"
        if not recorded.get("ids_sha256"):
            raise DataError(
                f"{where} does not record which samples it was trained on (it was written before checkpoints "
                f"recorded their splits), so it may have seen this run's test samples. {fix}"
            )
        changed = [
            name for name in ("train", "valid") if recorded["ids_sha256"].get(name) != current["ids_sha256"][name]
        ]
        if changed:
            raise DataError(
                f"{where} ({started.get('method')} on {started.get('dataset')}; {_describe(recorded)}) was trained "
                f"on other {' and '.join(changed)} samples than this run ({data.name}; {_describe(current)}), so it "
                f"may have fitted this run's test samples. {fix}"
            )


def _describe(record: dict[str, Any]) -> str:
    split = record.get("split") or {}
    parts = [f"{key} {value}" for key, value in split.items() if key in ("kind", "seed", "path", "fractions")]
    if record.get("folder"):
        parts.append(f"folder {record['folder']}")
    return "split: " + ", ".join(parts) if parts else "split not described"


def _copy(split: Split) -> Split:
    copy = Split(split.name, split.ids, dict(split.tensors), split.raw)
    # The copy shares the original's memory of preprocessed inputs and digests.
    if split in _PREPROCESSED:
        _PREPROCESSED[copy] = _PREPROCESSED[split]
    if split in _DIGESTS:
        _DIGESTS[copy] = _DIGESTS[split]
    return copy
