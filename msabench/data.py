"""Reading data files safely: the data root, SHA-256 checks, a pickle reader that runs no code,
and MMSA's pickle layout turned into tensors."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import pickle
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from msabench.components import Data, Dataset, Split, Task
from msabench.errors import DataError
from msabench.metrics import polarity
from msabench.paths import cache_home
from msabench.results import write_atomic

log = logging.getLogger("msabench")

MMSA_SOURCE = (
    "MMSA's processed features (https://github.com/thuiar/MMSA#datasets: links to Baidu Netdisk "
    "and Google Drive); put them under the data root in the same layout"
)


def sha256(path: str | Path) -> str:
    """SHA-256 of a file, remembered by (path, size, mtime, inode, ctime) so a multi-GB pickle is hashed once."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}:{stat.st_ctime_ns}"
    store = cache_home() / "sha256.json"
    try:
        known = json.loads(store.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 24):
                digest.update(chunk)
        known[key] = digest.hexdigest()
        with contextlib.suppress(OSError):  # a read-only cache only costs a re-hash next time
            write_atomic(store, json.dumps(known, indent=0))
    return known[key]


def check_file(
    root: Path, relative: str, expected: str | None, *, verify: bool, dataset: str, source: str
) -> dict[str, Any]:
    """Find a dataset file under the data root and check its hash; returns {path, sha256, verified}."""
    path = root / relative
    if not path.is_file():
        raise DataError(
            f"{dataset}: expected {path} (data root {root}), which does not exist. "
            f"Get it from {source}, or point --data-root / MSABENCH_DATA at the folder that holds {relative}."
        )
    digest = sha256(path)
    verified = expected is not None and digest == expected
    if expected is not None and not verified and verify:
        raise DataError(
            f"{dataset}: {path} has SHA-256 {digest}, but the published file has {expected}. "
            "It may be truncated or a different version: download it again, or pass --no-verify to use it anyway "
            "(results are then marked unverified)."
        )
    if expected is None:
        log.warning(
            "%s: no SHA-256 is published for %s (it has %s); results will be marked unverified",
            dataset,
            path,
            digest[:12],
        )
    elif not verified:
        log.warning(
            "%s: %s is not the published file (SHA-256 %s); results will be marked unverified",
            dataset,
            path,
            digest[:12],
        )
    return {"path": relative, "sha256": digest, "verified": verified}


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle names a global, or sets a state, that could run code or forge pointers."""


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as protocol-2 pickles use it (bytes stored as latin-1 text), and nothing else."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise RefusedGlobal(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class SafeUnpickler(pickle._Unpickler):
    """Admits numpy arrays, dtypes and scalars and builtin containers; refuses every other global.

    It is pickle's pure-Python unpickler, so that the state given to a numpy dtype can be
    checked too: a dtype whose flags were altered (an object dtype that numpy no longer
    treats as holding objects) would let array bytes be read as object pointers.
    """

    ALLOWED = {
        ("builtins", "bytes"),  # protocols 0-2 store bytes (and empty arrays) through these
        ("builtins", "bytearray"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "complex"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module  # Python 2 names, as pickle maps them
        module = module.replace("numpy.core", "numpy._core", 1) if module.startswith("numpy.core.") else module
        if (module, name) == ("_codecs", "encode"):
            return _latin1
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise RefusedGlobal(f"refused to load {module}.{name}: only numpy arrays and builtin containers are allowed")

    def load_build(self) -> None:
        state, instance = self.stack[-1], self.stack[-2]
        if isinstance(instance, np.dtype):
            canonical = instance.__reduce__()[2]
            byte_order_only = (
                not instance.hasobject
                and isinstance(state, tuple)
                and len(state) == len(canonical)
                and state[1] in "<>|="
                and state[:1] + state[2:] == canonical[:1] + canonical[2:]
            )
            if (
                instance.names is not None
                or instance.subdtype is not None
                or not (state == canonical or byte_order_only)
            ):
                raise RefusedGlobal(f"refused a numpy dtype {instance} with the altered state {state!r}")
        super().load_build()

    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = load_build


class _Payload:
    """A large bytes payload left in the file: where it starts and how long it is."""

    __slots__ = ("length", "offset")

    def __init__(self, offset: int, length: int):
        self.offset, self.length = offset, length


class DiskArray:
    """A numpy array still in its pickle file: shape and dtype are known, the values are read on demand.

    `read(dtype)` reads the file in 64 MiB chunks straight into a new array of `dtype` (MMSA's
    float64 audio into float32 without a float64 copy); `np.asarray(disk_array)` reads it as stored.
    """

    CHUNK = 1 << 26

    def __init__(
        self, path: Path, payload: _Payload, shape: tuple[int, ...], stored: np.dtype, fortran: bool, native: bool
    ):
        if not isinstance(stored, np.dtype) or stored.hasobject:
            raise pickle.UnpicklingError(f"an array's raw bytes come with {stored!r}, not a plain numeric dtype")
        if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise pickle.UnpicklingError(f"an array's shape is {shape!r}")
        if int(np.prod(shape, dtype=np.int64)) * stored.itemsize != payload.length:
            raise ValueError(f"an array of shape {shape} and dtype {stored} does not hold {payload.length} bytes")
        self.path, self.offset, self.shape, self.fortran = path, payload.offset, shape, fortran
        self.stored = stored  # how the bytes are laid out in the file
        self.dtype = stored.newbyteorder("=") if native else stored  # what numpy's own unpickling would give

    ndim = property(lambda self: len(self.shape))
    nbytes = property(lambda self: int(np.prod(self.shape, dtype=np.int64)) * self.stored.itemsize)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"DiskArray(shape={self.shape}, dtype={self.dtype}, {self.path}@{self.offset})"

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.read(dtype)

    def read(self, dtype: Any = None) -> np.ndarray:
        """The values as a new array of `dtype` (default: as stored), converted chunk by chunk."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        out = np.empty(self.shape, dtype=dtype, order="F" if self.fortran else "C")
        flat = out.reshape(-1, order="F" if self.fortran else "C")  # a view, in memory order
        step = max(1, self.CHUNK // self.stored.itemsize)
        buffer = flat if dtype == self.stored else np.empty(min(step, flat.size), dtype=self.stored)
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                for start in range(0, flat.size, step):
                    part = flat[start : start + step] if buffer is flat else buffer[: min(step, flat.size - start)]
                    view = memoryview(part).cast("B")
                    while view.nbytes:
                        count = handle.readinto(view)
                        if not count:
                            raise EOFError(f"the file ends inside an array of {self.nbytes} bytes at {self.offset}")
                        view = view[count:]
                    if buffer is not flat:
                        flat[start : start + len(part)] = part
        except (OSError, EOFError) as error:
            raise DataError(
                f"{self.path} is truncated or changed since it was opened ({error}); download it again."
            ) from error
        return out


class LazyUnpickler(SafeUnpickler):
    """`SafeUnpickler` that leaves each numpy array of at least `threshold` bytes in the file, as a `DiskArray`.

    A large BINBYTES/BINBYTES8/BYTEARRAY8 payload outside a pickle frame is skipped (its offset and
    length kept); when it turns out to be an ndarray's data (protocol 2-4 `_reconstruct` state, or
    protocol 5 `_frombuffer`), the array becomes a `DiskArray`. A skipped payload used for anything
    else is read into bytes after all, so the loaded object is the same as `SafeUnpickler`'s. Every
    refusal of `SafeUnpickler` still applies.
    """

    def __init__(self, file: io.BufferedReader, path: Path, threshold: int = 1 << 20):
        super().__init__(file)
        self.source, self.path, self.threshold = file, path, threshold
        self.size = os.fstat(file.fileno()).st_size
        self.skipped = 0  # payloads not (yet) claimed by an array
        self.frombuffer = super().find_class("numpy._core.numeric", "_frombuffer")

    def _payload(self, length: int) -> Any:
        frame = self._unframer.current_frame
        if frame is not None:
            with frame.getbuffer() as buffer:
                framed = frame.tell() < buffer.nbytes
        if length < self.threshold or (frame is not None and framed):
            return None
        offset = self.source.tell()
        if offset + length > self.size:
            raise pickle.UnpicklingError("pickle data was truncated")
        self.source.seek(length, io.SEEK_CUR)
        self.skipped += 1
        return _Payload(offset, length)

    def _bytes(self, payload: _Payload) -> bytes:
        self.skipped -= 1
        position = self.source.tell()
        self.source.seek(payload.offset)
        data = self.source.read(payload.length)
        self.source.seek(position)
        if len(data) != payload.length:
            raise pickle.UnpicklingError("pickle data was truncated")
        return data

    def _plain(self, value: Any) -> Any:
        """`value` with every skipped payload in it read into bytes (containers rebuilt, dicts and lists in place)."""
        if isinstance(value, _Payload):
            return self._bytes(value)
        if isinstance(value, dict):
            for key, item in value.items():
                value[key] = self._plain(item)
        elif isinstance(value, list):
            value[:] = [self._plain(item) for item in value]
        elif isinstance(value, tuple | set | frozenset):
            value = type(value)(self._plain(item) for item in value)
        return value

    def _claim(self, payload: _Payload, shape: Any, dtype: Any, fortran: bool, native: bool) -> DiskArray:
        array = DiskArray(self.path, payload, shape, dtype, bool(fortran), native)
        self.skipped -= 1
        return array

    def load_binbytes(self) -> None:
        (length,) = np.frombuffer(self.read(4), dtype="<u4")
        self.append(self._payload(int(length)) or self.read(int(length)))

    def load_binbytes8(self) -> None:
        (length,) = np.frombuffer(self.read(8), dtype="<u8")
        self.append(self._payload(int(length)) or self.read(int(length)))

    def load_bytearray8(self) -> None:
        (length,) = np.frombuffer(self.read(8), dtype="<u8")
        payload = self._payload(int(length))
        if payload is None:
            payload = bytearray(int(length))
            self.readinto(payload)
        self.append(payload)

    def load_reduce(self) -> None:
        args, func = self.stack[-1], self.stack[-2]
        if func is self.frombuffer and len(args) == 4 and isinstance(args[0], _Payload):
            self.stack.pop()
            buffer, dtype, shape, order = args
            self.stack[-1] = self._claim(buffer, shape, dtype, order == "F", native=False)
            return
        self.stack[-1] = self._plain(args)
        super().load_reduce()

    def load_build(self) -> None:
        state, instance = self.stack[-1], self.stack[-2]
        if type(instance) is np.ndarray and isinstance(state, tuple) and state and isinstance(state[-1], _Payload):
            shape, dtype, fortran, payload = state[-4:]
            self.stack.pop()
            array = self._claim(payload, shape, dtype, fortran, native=True)  # setstate byte-swaps to native
            self.stack[-1] = array
            for key, value in self.memo.items():  # later references to the array get the DiskArray too
                if value is instance:
                    self.memo[key] = array
            return
        self.stack[-1] = self._plain(state)
        super().load_build()

    def load_setitem(self) -> None:  # keys are hashed when set: read them first
        self.stack[-2] = self._plain(self.stack[-2])
        super().load_setitem()

    def load_setitems(self) -> None:  # the stack holds key, value, ... since the mark
        self.stack[::2] = [self._plain(key) for key in self.stack[::2]]
        super().load_setitems()

    def load_additems(self) -> None:  # set members are hashed too (the stack holds them since the mark)
        self.stack[:] = [self._plain(item) for item in self.stack]
        super().load_additems()

    def load_frozenset(self) -> None:
        self.stack[:] = [self._plain(item) for item in self.stack]
        super().load_frozenset()

    def load(self) -> Any:
        result = super().load()
        return self._plain(result) if self.skipped else result

    dispatch = dict(SafeUnpickler.dispatch)
    dispatch[pickle.BINBYTES[0]] = load_binbytes
    dispatch[pickle.BINBYTES8[0]] = load_binbytes8
    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8
    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems
    dispatch[pickle.ADDITEMS[0]] = load_additems
    dispatch[pickle.FROZENSET[0]] = load_frozenset


def read_pickle(path: str | Path, *, lazy: bool = False) -> Any:
    """Load a pickle of numpy arrays and builtin containers without running any code it carries.

    With `lazy`, arrays of 1 MiB or more stay in the file as `DiskArray`s, read when (and only if)
    they are used.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return LazyUnpickler(handle, path).load() if lazy else SafeUnpickler(handle).load()
    except RefusedGlobal as error:
        raise DataError(
            f"{path}: {error}. The file is not a plain data pickle; it was not loaded and nothing in it ran."
        ) from error
    except MemoryError as error:
        raise DataError(f"{path} does not fit in memory ({error}).") from error
    except DataError:
        raise
    except Exception as error:  # anything else a malformed stream raises inside pickle or numpy
        raise DataError(
            f"{path} is truncated or corrupt ({type(error).__name__}: {error}); download it again."
        ) from error


def write_pickle(path: str | Path, obj: Any) -> None:
    """Write a pickle atomically (what `msabench data synth` and tests use)."""
    buffer = io.BytesIO()
    pickle.dump(obj, buffer, protocol=4)
    write_atomic(path, buffer.getvalue())


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
    _check_consistent(splits, where)
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
        token_steps = None  # the text_bert length, which aligned files share with audio and vision
        if "text_bert" in part:  # its mask gives the text lengths, whichever text input is used
            tokens = self.array("text_bert", 3, np.float64)
            if tokens.shape[1] != 3 or not np.all(np.isfinite(tokens)) or not np.all(tokens == np.round(tokens)):
                raise DataError(
                    f"{self.where}: {split}/text_bert must be [N, 3, L] integer ids/mask/segments; "
                    f"got shape {tokens.shape}."
                )
            tokens = tokens.astype(np.int64)
            token_steps = tokens.shape[2]
            lengths = self.checked(tokens[:, 1].sum(1), "text_bert", 1, tokens.shape[2], "its mask marks no token")
            tensors["text_lengths"] = torch.from_numpy(np.ascontiguousarray(lengths))
            if "text_bert" in self.inputs:
                tensors["text_bert"] = torch.from_numpy(tokens)
        for key in (k for k in MMSA_FEATURES if k in self.inputs):
            tensors[key] = self.features(key)
            steps = tensors[key].shape[1]
            length_key = f"{key}_lengths"
            if key == "text":
                tensors.setdefault("text_lengths", torch.full((len(ids),), steps, dtype=torch.long))
                tensors["text_lengths"] = tensors["text_lengths"].clamp(max=steps)
            elif length_key in part:
                lengths = self.array(length_key, 1, np.int64)
                lengths = self.checked(lengths, length_key, 1, steps, f"its {key} has {steps} steps")
                tensors[length_key] = torch.from_numpy(np.ascontiguousarray(lengths))
            elif "text_lengths" in tensors and steps == token_steps:
                tensors[length_key] = tensors["text_lengths"].clone()  # aligned files: aligned to the text tokens
            else:
                raise DataError(
                    f"{self.where}: {split} has no {length_key!r}, and its {key} ({steps} steps) is not aligned to "
                    f"the text tokens. Add {length_key} (the number of real frames per sample) to the file."
                )
        for key, ours in label_keys.items():
            if ours in self.labels and key in MMSA_CLASS_LABELS:
                tensors[ours] = self.class_ids(key)
            elif ours in self.labels:
                values = self.array(key, 1, np.float32)
                if not np.all(np.isfinite(values)):
                    raise DataError(f"{self.where}: {split}/{key} holds NaN or infinite labels.")
                if self.task.label_range is not None:
                    values = self.checked(values, key, *self.task.label_range, f"{self.name}'s label range")
                tensors[ours] = torch.from_numpy(values.copy())
        return Split(split, ids, tensors)

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
        try:
            return value.astype(dtype, copy=False)
        except (TypeError, ValueError) as error:
            raise DataError(f"{self.where}: {self.split}/{key} is not numeric ({value.dtype}): {error}") from None

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


def _check_consistent(splits: dict[str, Split], where: str) -> None:
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


def flag(value: Any, option: str) -> bool:
    """A dataset option's true/false value (``--data-option NAME=true``), or a DataError saying what is expected."""
    if isinstance(value, str):
        if value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if value.strip().lower() in ("0", "false", "no", "off", ""):
            return False
    elif isinstance(value, bool):
        return value
    raise DataError(f"--data-option {option}={value}: expected true or false.")


def whole(value: Any, option: str) -> int:
    """A dataset option's whole-number value (``--data-option NAME=42``), or a DataError saying what is expected."""
    try:
        if isinstance(value, bool) or int(value) != float(value):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise DataError(
            f"--data-option {option}={value}: expected a whole number, e.g. --data-option {option}=42."
        ) from None


# -- a fraction of the training split -------------------------------------------------------------

DEFAULT_FRACTION_SEED = 42  # like the image-text split seed: independent of the training seeds


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


# -- MulT's processed pickles (IEMOCAP) -----------------------------------------------------------

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
    parts: dict[str, dict[str, np.ndarray]] = {}
    nonfinite: dict[str, int] = {}
    for split in ("train", "valid", "test"):
        part = raw[split]
        missing = [key for key in (*MMSA_FEATURES, "labels") if not isinstance(part, dict) or key not in part]
        if missing:
            has = sorted(part) if isinstance(part, dict) else type(part).__name__
            raise DataError(f"{where}: split {split!r} lacks {missing} (has {has}). Is this one of MulT's files?")
        parts[split] = {}
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
            parts[split][key] = values
    padding, empty = {}, {}
    splits = {}
    for key in MMSA_FEATURES:
        ends = {split: _zero_runs(parts[split][key]) for split in parts}
        front = sum(int(lead.sum()) for lead, _ in ends.values())
        back = sum(int(trail.sum()) for _, trail in ends.values())
        padding[key] = "front" if front > back else "back" if back else "none"
        for split, (lead, trail) in ends.items():
            values = parts[split][key]
            steps = values.shape[1]
            if padding[key] == "front":
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
    for split, part in parts.items():
        labels = np.asarray(raw[split]["labels"])
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
        splits[split] = Split(split, [str(row) for row in range(len(labels))], tensors)
    _check_consistent(splits, where)
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
