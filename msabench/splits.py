"""Splitting a dataset into train, valid and test: seeded and stratified per label, or from a split file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from msabench.errors import DataError

SPLITS = ("train", "valid", "test")


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
    aliases = {"train": ("train",), "valid": ("valid", "val", "dev"), "test": ("test",)}
    if path.is_dir():
        parts = {}
        for split, names in aliases.items():
            found = next((path / f"{name}.txt" for name in names if (path / f"{name}.txt").is_file()), None)
            if found is None:
                raise DataError(
                    f"split folder {path} has no {' or '.join(f'{n}.txt' for n in names)} (one id per line)."
                )
            lines = [
                line.split("\t")[0].split(",")[0].strip() for line in found.read_text(encoding="utf-8-sig").splitlines()
            ]
            parts[split] = [line for line in lines if line and line.lower() not in ("id", "guid")]
    elif path.is_file():
        try:
            raw = json.loads(path.read_text(encoding="utf-8-sig"))
        except ValueError as error:
            raise DataError(f"split file {path} is not JSON: {error}") from None
        parts = {}
        for split, names in aliases.items():
            key = next((name for name in names if isinstance(raw, dict) and name in raw), None)
            if key is None or not isinstance(raw[key], list):
                raise DataError(f"split file {path} needs a list of ids under {' or '.join(repr(n) for n in names)}.")
            parts[split] = [str(sample) for sample in raw[key]]
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


# -- assembling Data ----------------------------------------------------------------------------
