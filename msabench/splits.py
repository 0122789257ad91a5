"""Splitting a dataset into train, valid and test (seeded and stratified per label, or from a split file), and
keeping a seeded, stratified fraction of a train split."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from msabench.components import Data, Split
from msabench.errors import DataError
from msabench.metrics import polarity
from msabench.options import DEFAULT_FRACTION_SEED

log = logging.getLogger("msabench")

SPLITS = ("train", "valid", "test")
SPLIT_NAMES = {"train": ("train",), "valid": ("valid", "val", "dev"), "test": ("test",)}  # as a split file names them


def stratified_split(
    ids: Sequence[str], labels: Sequence[str], fractions: Sequence[float], seed: int, held_out: str = "nearest"
) -> dict[str, list[str]]:
    """Ids per split, drawn per label with a seeded permutation; each split keeps the input order.

    Per label of n samples: ``held_out="nearest"`` gives train round(n * f_train) and valid round(n * f_valid)
    samples, test the rest; ``"floor"`` gives valid floor(n * f_valid) and test floor(n * f_test), train the rest
    (how the MVSA literature's 3,611 / 450 / 450 split of 4,511 tweets comes about)."""
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1; got {fractions}")
    if held_out not in ("nearest", "floor"):
        raise ValueError(f"held_out must be 'nearest' or 'floor'; got {held_out!r}")
    rng = np.random.default_rng(seed)
    position = {sample: i for i, sample in enumerate(ids)}
    parts: dict[str, list[str]] = {split: [] for split in SPLITS}
    for label in sorted(set(labels)):
        members = [sample for sample, own in zip(ids, labels, strict=True) if own == label]
        order = [members[i] for i in rng.permutation(len(members))]
        if held_out == "floor":
            n_valid = int(len(members) * fractions[1] + 1e-9)
            n_train = len(members) - n_valid - int(len(members) * fractions[2] + 1e-9)
        else:
            n_train = int(round(len(members) * fractions[0]))
            n_valid = int(round(len(members) * fractions[1]))
        parts["train"] += order[:n_train]
        parts["valid"] += order[n_train : n_train + n_valid]
        parts["test"] += order[n_train + n_valid :]
    return {split: sorted(members, key=position.__getitem__) for split, members in parts.items()}


def read_split_file(path: str | Path) -> dict[str, list[str]]:
    """{"train"|"valid"|"test": ids} from a JSON file or a folder of train/valid/test .txt files."""
    path = Path(path).expanduser()
    if path.is_dir():
        parts = _split_folder(path)
    elif path.is_file():
        parts = _split_json(path)
    else:
        raise DataError(f"split file {path} does not exist.")
    seen: dict[str, str] = {}
    for split, members in parts.items():
        for sample in members:
            if sample in seen:
                raise DataError(
                    f"split file {path}: id {sample!r} is in {seen[sample]} and {split}"
                    + (" twice" if seen[sample] == split else "")
                    + "."
                )
            seen[sample] = split
    return parts


def _split_folder(path: Path) -> dict[str, list[str]]:
    """The ids of a folder of train/valid/test .txt files: one id per line (the first tab- or comma-separated
    field), a header line "id" or "guid" skipped."""
    parts = {}
    for split, names in SPLIT_NAMES.items():
        found = next((path / f"{name}.txt" for name in names if (path / f"{name}.txt").is_file()), None)
        if found is None:
            raise DataError(f"split folder {path} has no {' or '.join(f'{n}.txt' for n in names)} (one id per line).")
        lines = [
            line.split("\t")[0].split(",")[0].strip() for line in found.read_text(encoding="utf-8-sig").splitlines()
        ]
        parts[split] = [line for line in lines if line and line.lower() not in ("id", "guid")]
    return parts


def _split_json(path: Path) -> dict[str, list[str]]:
    """The ids of a JSON split file: a list of ids under each split's name."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as error:
        raise DataError(f"split file {path} is not JSON: {error}") from None
    parts = {}
    for split, names in SPLIT_NAMES.items():
        key = next((name for name in names if isinstance(raw, dict) and name in raw), None)
        if key is None or not isinstance(raw[key], list):
            raise DataError(f"split file {path} needs a list of ids under {' or '.join(repr(n) for n in names)}.")
        parts[split] = [str(sample) for sample in raw[key]]
    return parts


# -- assembling Data ----------------------------------------------------------------------------


# -- a fraction of the training split -------------------------------------------------------------


def subsample_train(data: Data, fraction: float, seed: int = DEFAULT_FRACTION_SEED) -> Data:
    """`data` with a seeded, stratified `fraction` of its train split (valid and test untouched), for learning curves
    such as DMMSA's Table 4 (10 ... 100 % of MOSEI's training data).

    Strata: the family's Acc-3 classes for regression (`msabench.metrics.polarity`: MOSI/MOSEI round(clip(y, -1, 1)),
    CH-SIMS (-1, -0.1], (-0.1, 0.1], (0.1, 1]), the class for classification, the label vector for multilabel
    tasks. Each stratum keeps round(n * fraction) samples (halves up), at least one; which ones is drawn per
    stratum with numpy's generator seeded by `seed`; the kept samples stay in split order. What was kept is
    recorded in the provenance under ``train_fraction`` (and so in every result and resume key)."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
        raise DataError(
            f"--data-option train_fraction={fraction}: expected a number in (0, 1], e.g. train_fraction=0.1."
        )
    train = data.splits["train"]
    labels = train.tensors["label"].numpy()
    if data.task.kind == "regression":
        strata, basis = polarity(data.task.family, labels).tolist(), "acc-3 classes"
    elif labels.ndim > 1:
        strata, basis = ["".join(str(int(v)) for v in row) for row in labels.reshape(len(labels), -1)], "label vector"
    else:
        strata, basis = labels.astype(np.int64).tolist(), "class"
    rng = np.random.default_rng(seed)
    kept: list[int] = []
    counts: dict[str, list[int]] = {}
    for stratum in sorted(set(strata)):
        members = [i for i, own in enumerate(strata) if own == stratum]
        n = max(1, int(np.floor(len(members) * fraction + 0.5)))
        kept += [members[i] for i in rng.permutation(len(members))[:n]]
        counts[str(stratum)] = [n, len(members)]
    kept.sort()
    index = torch.tensor(kept, dtype=torch.long)
    subset = Split(
        train.name,
        [train.ids[i] for i in kept],
        {key: value[index] for key, value in train.tensors.items()},
        {key: [values[i] for i in kept] for key, values in train.raw.items()},
    )
    record = {"fraction": fraction, "seed": seed, "strata": basis, "kept": len(kept), "of": len(train)}
    provenance = {**data.provenance, "train_fraction": {**record, "per_stratum": counts}}
    if isinstance(provenance.get("sizes"), dict):
        provenance["sizes"] = {**provenance["sizes"], "train": len(kept)}
    if isinstance(provenance.get("labels"), dict) and data.task.kind == "classification":
        found = np.bincount(labels[kept].astype(np.int64), minlength=len(data.task.classes)).tolist()
        provenance["labels"] = {**provenance["labels"], "train": dict(zip(data.task.classes, found, strict=True))}
    log.info(
        "%s: training on %d of %d train samples (train_fraction %s, seed %d)",
        data.name,
        len(kept),
        len(train),
        fraction,
        seed,
    )
    return replace(data, splits={**data.splits, "train": subset}, provenance=provenance)
