"""MMSA's pickle layout (MOSI, MOSEI, CH-SIMS and any file in the same layout) turned into checked tensors."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from msabench.components import Data, Dataset, Split, Task
from msabench.errors import DataError
from msabench.integrity import check_file
from msabench.options import flag
from msabench.pickles import DiskArray, read_pickle

log = logging.getLogger("msabench")

MMSA_SOURCE = (
    "MMSA's processed features (https://github.com/thuiar/MMSA#datasets: links to Baidu Netdisk "
    "and Google Drive); put them under the data root in the same layout"
)


# MMSA key -> our batch key, and how each is stored in memory.
MMSA_FEATURES = {"text": "text", "audio": "audio", "vision": "vision"}
MMSA_LABELS = {
    "regression_labels": "label",
    "regression_labels_T": "label_T",
    "regression_labels_A": "label_A",
    "regression_labels_V": "label_V",
}
# Classification tasks read class ids (0..K-1) from this key instead.
MMSA_CLASS_LABELS = {"classification_labels": "label"}


def read_features(raw: Any, keys: Iterable[str]) -> Any:
    """`raw` (an MMSA dict read with `read_pickle(lazy=True)`) with the feature arrays `keys` of each split
    read from the file into float32, one at a time; anything else is left as it is."""
    if isinstance(raw, dict):
        for part in raw.values():
            for key in keys:
                if isinstance(part, dict) and isinstance(part.get(key), DiskArray):
                    part[key] = part[key].read(np.float32)
    return raw


def zero_nonfinite(values: np.ndarray, chunk: int = 1 << 24) -> tuple[np.ndarray, int]:
    """`values` with -inf/inf/NaN set to 0 (in place unless read-only), `chunk` values at a time, and how many
    there were: no mask the size of the array (MOSEI's train audio alone is 604 M values)."""
    flat = values.ravel(order="K")
    if not np.shares_memory(flat, values):  # not one block in memory: one mask over the whole array
        bad = ~np.isfinite(values)
        if count := int(bad.sum()):
            values = values if values.flags.writeable else values.copy()
            values[bad] = 0
        return values, count
    count = 0
    for start in range(0, flat.size, chunk):
        bad = ~np.isfinite(flat[start : start + chunk])
        if found := int(bad.sum()):
            if not values.flags.writeable:
                values = values.copy(order="K")
                flat = values.ravel(order="K")
            flat[start : start + chunk][bad] = 0
            count += found
    return values, count


def mmsa_data(
    raw: Any,
    *,
    name: str,
    task: Task,
    inputs: tuple[str, ...],
    labels: tuple[str, ...],
    dims: Mapping[str, int],
    provenance: dict[str, Any],
    where: str,
    repair: bool = False,
    **data_fields: Any,
) -> Data:
    """Check a pickle in MMSA's layout and turn it into in-memory tensors.

    Shapes come from the arrays and are checked against each other and against `dims`;
    -inf/NaN in features become 0 and are counted; lengths come from `*_lengths`, or for
    aligned files from the text mask. `raw` is consumed: arrays are zeroed in place and
    shared with the tensors, so a multi-GB file is not held twice.

    A length outside 1..steps of its sequence, or a label outside the task's range, is refused,
    naming the split and row; with ``repair=True`` it is clipped instead, and the repairs are
    counted, logged and recorded in the provenance (``repairs``).
    """
    if not isinstance(raw, dict) or not all(split in raw for split in ("train", "valid", "test")):
        found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise DataError(f"{where}: expected a dict with 'train', 'valid' and 'test' (MMSA's layout); found {found}.")
    reader = _SplitReader(name=name, task=task, inputs=inputs, labels=labels, dims=dims, where=where, repair=repair)
    splits = {split: reader.read(split, raw[split]) for split in ("train", "valid", "test")}
    check_consistent(splits, where)
    for key, count in reader.nonfinite.items():
        log.warning("%s: %s had %d non-finite values (-inf/NaN), set to 0", where, key, count)
    for key, count in reader.repairs.items():
        log.warning("%s: %s: %d values outside their range were clipped into it (repair=true)", where, key, count)
    provenance = {**provenance, "nonfinite": reader.nonfinite, "sizes": {s: len(v) for s, v in splits.items()}}
    if reader.repairs:
        provenance["repairs"] = reader.repairs
    return Data(name=name, task=task, splits=splits, provenance=provenance, **data_fields)


@dataclass
class _SplitReader:
    """Turns one split of an MMSA pickle into a checked `Split`, counting what it zeroed or repaired."""

    name: str
    task: Task
    inputs: tuple[str, ...]
    labels: tuple[str, ...]
    dims: Mapping[str, int]
    where: str
    repair: bool
    nonfinite: dict[str, int] = field(default_factory=dict)
    repairs: dict[str, int] = field(default_factory=dict)

    def read(self, split: str, part: Any) -> Split:
        label_keys = MMSA_CLASS_LABELS if self.task.kind == "classification" else MMSA_LABELS
        wanted = [
            "id",
            *(["text_bert"] if "text_bert" in self.inputs else []),
            *[k for k in MMSA_FEATURES if k in self.inputs],
            *[k for k, v in label_keys.items() if v in self.labels],
        ]
        if not isinstance(part, dict) or (missing := [key for key in wanted if key not in part]):
            has = sorted(part) if isinstance(part, dict) else type(part).__name__
            raise DataError(
                f"{self.where}: split {split!r} lacks {missing or wanted} (has {has}). "
                f"Is this the right file for {self.name}?"
            )
        ids = [str(i) for i in np.asarray(part["id"]).reshape(-1)]
        self.split, self.part, self.ids = split, part, ids
        tensors: dict[str, torch.Tensor] = {}
        # The text_bert length, which aligned files share with audio and vision.
        token_steps = self.text_tokens(tensors) if "text_bert" in part else None
        for key in (k for k in MMSA_FEATURES if k in self.inputs):
            self.sequence(key, tensors, token_steps)
        for key, ours in label_keys.items():
            if ours in self.labels:
                tensors[ours] = self.class_ids(key) if key in MMSA_CLASS_LABELS else self.values(key)
        return Split(split, ids, tensors)

    def text_tokens(self, tensors: dict[str, torch.Tensor]) -> int:
        """Read text_bert, whose mask gives the text lengths whichever text input is used, into `tensors` (the ids
        too when text_bert is an input); its length in tokens."""
        tokens = self.array("text_bert", 3, np.float64)
        if tokens.shape[1] != 3 or not np.all(np.isfinite(tokens)) or not np.all(tokens == np.round(tokens)):
            raise DataError(
                f"{self.where}: {self.split}/text_bert must be [N, 3, L] integer ids/mask/segments; "
                f"got shape {tokens.shape}."
            )
        tokens = tokens.astype(np.int64)
        lengths = self.checked(tokens[:, 1].sum(1), "text_bert", 1, tokens.shape[2], "its mask marks no token")
        tensors["text_lengths"] = torch.from_numpy(np.ascontiguousarray(lengths))
        if "text_bert" in self.inputs:
            tensors["text_bert"] = torch.from_numpy(tokens)
        return tokens.shape[2]

    def sequence(self, key: str, tensors: dict[str, torch.Tensor], token_steps: int | None) -> None:
        """Read the feature sequences `key` and their lengths into `tensors`: the text's from text_bert's mask (or
        every step), the others' from ``<key>_lengths``, or from the text's when aligned to the text tokens."""
        tensors[key] = self.features(key)
        steps = tensors[key].shape[1]
        length_key = f"{key}_lengths"
        if key == "text":
            tensors.setdefault("text_lengths", torch.full((len(self.ids),), steps, dtype=torch.long))
            tensors["text_lengths"] = tensors["text_lengths"].clamp(max=steps)
        elif length_key in self.part:
            lengths = self.array(length_key, 1, np.int64)
            lengths = self.checked(lengths, length_key, 1, steps, f"its {key} has {steps} steps")
            tensors[length_key] = torch.from_numpy(np.ascontiguousarray(lengths))
        elif "text_lengths" in tensors and steps == token_steps:
            tensors[length_key] = tensors["text_lengths"].clone()  # aligned files: aligned to the text tokens
        else:
            raise DataError(
                f"{self.where}: {self.split} has no {length_key!r}, and its {key} ({steps} steps) is not aligned to "
                f"the text tokens. Add {length_key} (the number of real frames per sample) to the file."
            )

    def values(self, key: str) -> torch.Tensor:
        """Regression labels as float32: finite, and in the task's label range when it declares one."""
        values = self.array(key, 1, np.float32)
        if not np.all(np.isfinite(values)):
            raise DataError(f"{self.where}: {self.split}/{key} holds NaN or infinite labels.")
        if self.task.label_range is not None:
            values = self.checked(values, key, *self.task.label_range, f"{self.name}'s label range")
        return torch.from_numpy(values.copy())

    def class_ids(self, key: str) -> torch.Tensor:
        """Whole class ids in 0..K-1 (K = the task's classes) as int64."""
        values = self.array(key, 1, np.float64)
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{self.where}: {self.split}/{key} of row {row} (id {self.ids[row]}) is {values[row]:g}; class ids are "
                f"whole numbers 0..{len(self.task.classes) - 1}."
            )
        count = len(self.task.classes)
        values = self.checked(values, key, 0, count - 1, f"{self.name}'s {count} classes")
        return torch.from_numpy(values.astype(np.int64))

    def features(self, key: str) -> torch.Tensor:
        """A [N, L, D] float32 feature array, its dim checked, non-finite values zeroed in place and counted."""
        values = self.array(key, 3, np.float32)
        if key in self.dims and values.shape[2] != self.dims[key]:
            raise DataError(
                f"{self.where}: {self.split}/{key} has feature dim {values.shape[2]}; {self.name} has "
                f"{self.dims[key]}. Is this the right file?"
            )
        values, count = zero_nonfinite(values)  # in place, in chunks: MOSEI's audio alone is gigabytes
        if count:
            self.nonfinite[f"{self.split}/{key}"] = count
        return torch.from_numpy(np.ascontiguousarray(values))

    def array(self, key: str, ndim: int, dtype: type) -> np.ndarray:
        value = np.asarray(self.part[key])
        if value.ndim != ndim or len(value) != len(self.ids):
            raise DataError(
                f"{self.where}: {self.split}/{key} has shape {value.shape}; expected {ndim} dims with "
                f"{len(self.ids)} samples (one per id)."
            )
        if value.dtype.kind not in "biuf":  # complex, strings, objects: never cast (a cast drops imaginary parts)
            raise DataError(
                f"{self.where}: {self.split}/{key} holds {value.dtype} values; expected real numbers (int or float)."
            )
        if np.issubdtype(dtype, np.integer) and value.dtype.kind == "f":
            whole = np.isfinite(value) & (value == np.round(value))
            if not whole.all():
                row = int(np.flatnonzero(~whole)[0])
                raise DataError(
                    f"{self.where}: {self.split}/{key} of row {row} (id {self.ids[row]}) is {value[row]:g}; "
                    "expected a whole number."
                )
        return value.astype(dtype, copy=False)

    def checked(self, values: np.ndarray, key: str, low: float, high: float, what: str) -> np.ndarray:
        """`values` when all lie in [low, high]; else an error naming the first bad row, or clipped (repair)."""
        bad = (values < low) | (values > high)
        if not bad.any():
            return values
        if not self.repair:
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{self.where}: {self.split}/{key} of row {row} (id {self.ids[row]}) is {values[row]:g}, outside "
                f"{low:g}..{high:g} ({what}); {int(bad.sum())} rows of {self.split} are. Fix the file, or pass "
                "--data-option repair=true to clip them into range (counted in the log and the result)."
            )
        self.repairs[f"{self.split}/{key}"] = int(bad.sum())
        return values.clip(low, high)


def check_consistent(splits: dict[str, Split], where: str) -> None:
    train = splits["train"].tensors
    for split in ("valid", "test"):
        for key, value in splits[split].tensors.items():
            if key.startswith("label") or key.endswith("_lengths"):
                continue
            if key == "text_bert" or key == "text":
                same = value.shape[-1] == train[key].shape[-1] and value.shape[1:-1] == train[key].shape[1:-1]
            else:
                same = value.shape[2:] == train[key].shape[2:]
            if not same:
                raise DataError(
                    f"{where}: {split}/{key} has shape {tuple(value.shape)}, "
                    f"but train/{key} has {tuple(train[key].shape)}."
                )


class MMSADataset(Dataset):
    """A dataset stored as one MMSA pickle below the data root (`files` names it and its SHA-256)."""

    inputs = ("text_bert", "text", "audio", "vision")
    source = MMSA_SOURCE
    sizes: ClassVar[Mapping[str, int]] = {}  # published split sizes (a subset only gets a warning)
    vocab_size: ClassVar[int | None] = None  # size of the tokenizer vocabulary behind text_bert
    tokenizer: ClassVar[str | None] = None  # the tokenizer that produced text_bert (a transformers name)

    def __init__(self, root: str | Path | None = None, *, verify: bool = True, repair: bool = False):
        super().__init__(root, verify=verify)
        self.repair = flag(repair, "repair")

    def load(self, inputs: Iterable[str] | None = None) -> Data:
        """The splits as tensors: `inputs` (default: every input the class declares) and the labels.

        The pickle's big arrays stay in the file until used: features are read straight into
        float32, and arrays that no input needs are never read (MOSEI's float64 audio and vision
        are 10 GB on disk, 5 GB as float32). `msabench run` passes the inputs its encoders read.
        """
        ((relative, expected),) = self.files.items()
        found = check_file(self.root, relative, expected, verify=self.verify, dataset=self.name, source=self.source)
        inputs = tuple(self.inputs if inputs is None else inputs)
        raw = read_features(read_pickle(self.root / relative, lazy=True), [k for k in MMSA_FEATURES if k in inputs])
        provenance = {"source": "file", "files": {relative: found["sha256"]}, "verified": found["verified"]}
        return self.from_mmsa(raw, provenance, where=str(self.root / relative), inputs=inputs)

    def from_mmsa(self, raw: Any, provenance: dict[str, Any], where: str, inputs: Iterable[str] | None = None) -> Data:
        """Tensors from MMSA's dict of arrays, checked against what this class declares."""
        data = mmsa_data(
            raw,
            name=self.name,
            task=self.task,
            inputs=tuple(self.inputs if inputs is None else inputs),
            labels=self.labels,
            dims=self.dims,
            provenance={**provenance, "synthetic": self.synthetic},
            where=where,
            repair=self.repair,
            synthetic=self.synthetic,
            vocab_size=self.vocab_size,
            tokenizer=self.tokenizer,
            hparams_from=self.hparams_from,
        )
        found = {split: len(part) for split, part in data.splits.items()}
        if self.sizes and found != dict(self.sizes):
            log.warning("%s: split sizes %s differ from the published %s", where, found, dict(self.sizes))
        return data
