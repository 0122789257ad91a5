"""Reading data files safely: the data root, SHA-256 checks, a pickle reader that runs no code,
and MMSA's pickle layout turned into tensors."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from msabench.components import Data, Dataset, Split, Task
from msabench.errors import DataError
from msabench.results import write_atomic

log = logging.getLogger("msabench")

MMSA_SOURCE = (
    "MMSA's processed features (https://github.com/thuiar/MMSA#datasets: links to Baidu Netdisk "
    "and Google Drive); put them under the data root in the same layout"
)


def data_root(root: str | Path | None = None) -> Path:
    """`root`, else $MSABENCH_DATA, else ~/.local/share/msabench/data (XDG_DATA_HOME honoured)."""
    if root is None:
        root = os.environ.get("MSABENCH_DATA") or None
    if root is None:
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        root = Path(base) / "msabench" / "data"
    return Path(root).expanduser()


def sha256(path: str | Path) -> str:
    """SHA-256 of a file, remembered by (path, size, mtime, inode, ctime) so a multi-GB pickle is hashed once."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}:{stat.st_ctime_ns}"
    store = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "msabench" / "sha256.json"
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
        try:
            write_atomic(store, json.dumps(known, indent=0))
        except OSError:
            pass  # a read-only cache only costs a re-hash next time
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
    **data_fields: Any,
) -> Data:
    """Check a pickle in MMSA's layout and turn it into in-memory tensors.

    Shapes come from the arrays and are checked against each other and against `dims`;
    -inf/NaN in features become 0 and are counted; lengths come from `*_lengths`, or for
    aligned files from the text mask. `raw` is consumed: arrays are zeroed in place and
    shared with the tensors, so a multi-GB file is not held twice.
    """
    if not isinstance(raw, dict) or not all(split in raw for split in ("train", "valid", "test")):
        found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise DataError(f"{where}: expected a dict with 'train', 'valid' and 'test' (MMSA's layout); found {found}.")
    splits, nonfinite = {}, {}
    for split in ("train", "valid", "test"):
        part = raw[split]
        wanted = [
            "id",
            *(["text_bert"] if "text_bert" in inputs else []),
            *[k for k in MMSA_FEATURES if k in inputs],
            *[k for k, v in MMSA_LABELS.items() if v in labels],
        ]
        if missing := [key for key in wanted if key not in part]:
            raise DataError(
                f"{where}: split {split!r} lacks {missing} (has {sorted(part)}). Is this the right file for {name}?"
            )
        n = len(part["id"])
        tensors: dict[str, torch.Tensor] = {}

        def array(key: str, ndim: int, dtype: type) -> np.ndarray:
            value = np.asarray(part[key])
            if value.ndim != ndim or len(value) != n:
                raise DataError(
                    f"{where}: {split}/{key} has shape {value.shape}; expected {ndim} dims with {n} samples (one per id)."
                )
            try:
                return value.astype(dtype, copy=False)
            except (TypeError, ValueError) as error:
                raise DataError(f"{where}: {split}/{key} is not numeric ({value.dtype}): {error}") from None

        if "text_bert" in part:  # its mask gives the text lengths, whichever text input is used
            ids = array("text_bert", 3, np.float64)
            if ids.shape[1] != 3 or not np.all(np.isfinite(ids)) or not np.all(ids == np.round(ids)):
                raise DataError(
                    f"{where}: {split}/text_bert must be [N, 3, L] integer ids/mask/segments; got shape {ids.shape}."
                )
            ids = torch.from_numpy(ids.astype(np.int64))
            tensors["text_lengths"] = ids[:, 1].sum(1).clamp(min=1)
            if "text_bert" in inputs:
                tensors["text_bert"] = ids
        for key in (k for k in MMSA_FEATURES if k in inputs):
            values = array(key, 3, np.float32)
            if key in dims and values.shape[2] != dims[key]:
                raise DataError(
                    f"{where}: {split}/{key} has feature dim {values.shape[2]}; {name} has {dims[key]}. Is this the right file?"
                )
            values, count = zero_nonfinite(values)  # in place, in chunks: MOSEI's audio alone is gigabytes
            if count:
                nonfinite[f"{split}/{key}"] = count
            tensors[key] = torch.from_numpy(np.ascontiguousarray(values))
            length_key = f"{key}_lengths"
            steps = values.shape[1]
            if key == "text":
                tensors.setdefault("text_lengths", torch.full((n,), steps, dtype=torch.long))
                tensors["text_lengths"] = tensors["text_lengths"].clamp(max=steps)
            elif length_key in part:
                tensors[length_key] = torch.from_numpy(array(length_key, 1, np.int64).clip(1, steps))
            elif "text_lengths" in tensors and "text_bert" in part and steps == np.asarray(part["text_bert"]).shape[2]:
                tensors[length_key] = tensors["text_lengths"].clone()  # aligned files: aligned to the text tokens
            else:
                raise DataError(
                    f"{where}: {split} has no {length_key!r}, and its {key} ({steps} steps) is not aligned to the text tokens. "
                    f"Add {length_key} (the number of real frames per sample) to the file."
                )
        for key, ours in MMSA_LABELS.items():
            if ours in labels:
                values = array(key, 1, np.float32)
                if not np.all(np.isfinite(values)):
                    raise DataError(f"{where}: {split}/{key} holds NaN or infinite labels.")
                tensors[ours] = torch.from_numpy(values.copy())
        ids = [str(i) for i in np.asarray(part["id"]).reshape(-1)]
        splits[split] = Split(split, ids, tensors)
    _check_consistent(splits, where)
    for key, count in nonfinite.items():
        log.warning("%s: %s had %d non-finite values (-inf/NaN), set to 0", where, key, count)
    provenance = {**provenance, "nonfinite": nonfinite, "sizes": {s: len(v) for s, v in splits.items()}}
    return Data(name=name, task=task, splits=splits, provenance=provenance, **data_fields)


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
                    f"{where}: {split}/{key} has shape {tuple(value.shape)}, but train/{key} has {tuple(train[key].shape)}."
                )


class MMSADataset(Dataset):
    """A dataset stored as one MMSA pickle below the data root (`files` names it and its SHA-256)."""

    inputs = ("text_bert", "text", "audio", "vision")
    source = MMSA_SOURCE
    sizes: ClassVar[Mapping[str, int]] = {}  # published split sizes (a subset only gets a warning)
    vocab_size: ClassVar[int | None] = None  # size of the tokenizer vocabulary behind text_bert
    tokenizer: ClassVar[str | None] = None  # the tokenizer that produced text_bert (a transformers name)

    def load(self, inputs: Iterable[str] | None = None) -> Data:
        """The splits as tensors: `inputs` (default: every input the class declares) and the labels.

        The pickle's big arrays stay in the file until used: features are read straight into
        float32, and arrays that no input needs are never read (MOSEI's float64 audio and vision
        are 10 GB on disk, 5 GB as float32).
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
            synthetic=self.synthetic,
            vocab_size=self.vocab_size,
            tokenizer=self.tokenizer,
            hparams_from=self.hparams_from,
        )
        found = {split: len(part) for split, part in data.splits.items()}
        if self.sizes and found != dict(self.sizes):
            log.warning("%s: split sizes %s differ from the published %s", where, found, dict(self.sizes))
        return data
