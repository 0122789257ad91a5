"""MulT's processed pickles (IEMOCAP): no ids, no lengths, one-hot emotion pairs, turned into checked tensors."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from msabench.components import Data, Dataset, Split, Task
from msabench.errors import DataError
from msabench.integrity import check_file
from msabench.mmsa import MMSA_FEATURES, check_consistent
from msabench.pickles import read_pickle

log = logging.getLogger("msabench")

MULT_SOURCE = (
    "MulT's processed features (https://github.com/yaohungt/Multimodal-Transformer#data: the link in its README); "
    "put them under the data root in the same layout"
)
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def mult_data(
    raw: Any,
    *,
    name: str,
    task: Task,
    dims: Mapping[str, int],
    provenance: dict[str, Any],
    where: str,
    **data_fields: Any,
) -> Data:
    """Check a pickle in MulT's layout and turn it into in-memory tensors.

    The layout: ``{"train"|"valid"|"test": {"text", "audio", "vision": [N, L, D], "labels": [N, K, 2]}}``, one
    one-hot pair (absent, present) per entry of ``task.classes``. The files carry no ids and no lengths: ids are
    the row numbers, and each sequence's length is read from its zero padding. Non-finite values become 0 first
    (counted); then the padding end is found per modality over the whole file (the end where the all-zero frames
    lie, ``provenance["padding"]``), and sequences padded at the front are moved to the front of their rows, so
    that, as everywhere in msabench, frames ``0 .. length-1`` are the real ones. A sequence with no non-zero
    frame gets length 1 (counted in ``provenance["empty"]``).
    """
    if not isinstance(raw, dict) or not all(split in raw for split in ("train", "valid", "test")):
        found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise DataError(f"{where}: expected a dict with 'train', 'valid' and 'test' (MulT's layout); found {found}.")
    nonfinite: dict[str, int] = {}
    parts = {split: _features(raw[split], split, name, dims, where, nonfinite) for split in ("train", "valid", "test")}
    empty: dict[str, int] = {}
    padding = {key: _unpad(parts, key, empty) for key in MMSA_FEATURES}
    splits = {split: _labelled(split, part, raw[split]["labels"], task, where) for split, part in parts.items()}
    check_consistent(splits, where)
    for key, count in nonfinite.items():
        log.warning("%s: %s had %d non-finite values (-inf/NaN), set to 0", where, key, count)
    for key, count in empty.items():
        log.warning("%s: %s: %d sequences have no non-zero frame; given length 1", where, key, count)
    provenance = {
        **provenance,
        "nonfinite": nonfinite,
        "padding": padding,
        "sizes": {split: len(part) for split, part in splits.items()},
        "ids": "row numbers (the files carry no ids)",
    }
    if empty:
        provenance["empty"] = empty
    return Data(name=name, task=task, splits=splits, provenance=provenance, **data_fields)


def _features(
    part: Any, split: str, name: str, dims: Mapping[str, int], where: str, nonfinite: dict[str, int]
) -> dict[str, np.ndarray]:
    """One split's feature sequences, checked ([N, L, D], one row per label, numeric, the dataset's feature dims),
    as float32 with non-finite values set to 0 (counted in `nonfinite`)."""
    missing = [key for key in (*MMSA_FEATURES, "labels") if not isinstance(part, dict) or key not in part]
    if missing:
        has = sorted(part) if isinstance(part, dict) else type(part).__name__
        raise DataError(f"{where}: split {split!r} lacks {missing} (has {has}). Is this one of MulT's files?")
    features = {}
    for key in MMSA_FEATURES:
        values = np.asarray(part[key])
        if values.ndim != 3 or len(values) != len(np.asarray(part["labels"])):
            raise DataError(
                f"{where}: {split}/{key} has shape {values.shape}; expected [N, L, D] with one row per label."
            )
        try:
            values = values.astype(np.float32, copy=False)
        except (TypeError, ValueError) as error:
            raise DataError(f"{where}: {split}/{key} is not numeric ({values.dtype}): {error}") from None
        if key in dims and values.shape[2] != dims[key]:
            raise DataError(
                f"{where}: {split}/{key} has feature dim {values.shape[2]}; {name} has {dims[key]}. "
                "Is this the right file?"
            )
        bad = ~np.isfinite(values)
        if count := int(bad.sum()):
            values = values if values.flags.writeable else values.copy()
            values[bad] = 0
            nonfinite[f"{split}/{key}"] = count
        features[key] = values
    return features


def _unpad(parts: dict[str, dict[str, np.ndarray]], key: str, empty: dict[str, int]) -> str:
    """Where the `key` sequences are padded over the whole file ("front", "back" or "none"); front padding is moved
    to the back of each row, and each split gets ``<key>_lengths`` (at least 1: rows with no non-zero frame are
    counted in `empty`)."""
    ends = {split: _zero_runs(parts[split][key]) for split in parts}
    front = sum(int(lead.sum()) for lead, _ in ends.values())
    back = sum(int(trail.sum()) for _, trail in ends.values())
    padding = "front" if front > back else "back" if back else "none"
    for split, (lead, trail) in ends.items():
        values = parts[split][key]
        steps = values.shape[1]
        if padding == "front":
            values = values if values.flags.writeable else values.copy()
            for row in np.flatnonzero((lead > 0) & (lead < steps)):
                real = steps - lead[row]
                values[row, :real] = values[row, lead[row] :]
                values[row, real:] = 0
            lengths = steps - lead
        else:
            lengths = steps - trail
        if count := int((lengths == 0).sum()):
            empty[f"{split}/{key}"] = count
        parts[split][key] = values
        parts[split][f"{key}_lengths"] = np.maximum(lengths, 1)
    return padding


def _labelled(split: str, part: dict[str, np.ndarray], raw_labels: Any, task: Task, where: str) -> Split:
    """A split's tensors and its labels: each (absent, present) pair checked one-hot, the label the present index."""
    labels = np.asarray(raw_labels)
    if labels.ndim != 3 or labels.shape[1:] != (len(task.classes), 2):
        raise DataError(
            f"{where}: {split}/labels has shape {labels.shape}; expected [N, {len(task.classes)}, 2] (one "
            f"(absent, present) pair per {'/'.join(task.classes)})."
        )
    one_hot = np.all(((labels == 0) | (labels == 1)) & (labels.sum(-1, keepdims=True) == 1), axis=(1, 2))
    if not one_hot.all():
        row = int(np.flatnonzero(~one_hot)[0])
        raise DataError(
            f"{where}: {split}/labels of row {row} is {labels[row].tolist()}; each pair must be one-hot "
            "(1 0 = absent, 0 1 = present)."
        )
    tensors = {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in part.items()}
    tensors = {key: value.long() if key.endswith("_lengths") else value for key, value in tensors.items()}
    tensors["label"] = torch.from_numpy(labels.argmax(-1).astype(np.int64))
    return Split(split, [str(row) for row in range(len(labels))], tensors)


def _zero_runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``[N, L, D]``: how many all-zero frames lead it, and how many trail it (L for an all-zero row)."""
    real = np.any(values != 0, axis=2)
    steps = values.shape[1]
    anything = real.any(axis=1)
    lead = np.where(anything, real.argmax(axis=1), steps)
    trail = np.where(anything, real[:, ::-1].argmax(axis=1), steps)
    return lead.astype(np.int64), trail.astype(np.int64)


class MulTDataset(Dataset):
    """A dataset stored as one of MulT's processed pickles below the data root (see `mult_data`).

    No SHA-256 is published for MulT's files: results are unverified unless the user passes the digest of the
    file they trust (``--data-option sha256=HEX``); a file that does not match it is then refused."""

    inputs = ("text", "audio", "vision")
    source = MULT_SOURCE
    identity_options = ("sha256",)  # pins the file the user trusts: the same data, not a variant

    def __init__(self, root: str | Path | None = None, *, verify: bool = True, sha256: str | None = None):
        super().__init__(root, verify=verify)
        if sha256 is not None and not SHA256.match(str(sha256).lower()):
            raise DataError(
                f"--data-option sha256={sha256}: expected the file's SHA-256 as 64 hexadecimal digits "
                "(e.g. the output of `sha256sum FILE`)."
            )
        self.sha256 = str(sha256).lower() if sha256 is not None else None

    def load(self) -> Data:
        ((relative, published),) = self.files.items()
        expected = self.sha256 or published
        found = check_file(self.root, relative, expected, verify=self.verify, dataset=self.name, source=self.source)
        raw = read_pickle(self.root / relative)
        provenance = {"source": "file", "files": {relative: found["sha256"]}, "verified": found["verified"]}
        if self.sha256:
            provenance["sha256_from"] = "--data-option sha256"
        return self.from_mult(raw, provenance, where=str(self.root / relative))

    def from_mult(self, raw: Any, provenance: dict[str, Any], where: str) -> Data:
        """Tensors from MulT's dict of arrays, checked against what this class declares."""
        return mult_data(
            raw,
            name=self.name,
            task=self.task,
            dims=self.dims,
            provenance={**provenance, "synthetic": self.synthetic},
            where=where,
            synthetic=self.synthetic,
            hparams_from=self.hparams_from,
        )
