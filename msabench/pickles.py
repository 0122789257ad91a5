"""Pickles without running code: a restricted unpickler that admits numpy arrays, dtypes and builtin containers
only, and a lazy one that leaves large arrays in the file until they are used."""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from msabench.errors import DataError
from msabench.results import write_atomic


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

    # What pickle's pure-Python unpickler sets up as it loads; typeshed's stub leaves these internals out.
    stack: list[Any]
    memo: dict[int, Any]
    append: Callable[[Any], None]
    read: Callable[[int], bytes]
    readinto: Callable[[bytearray], int]
    _unframer: Any  # pickle._Unframer, which has no stub

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
        super().load_build()  # type: ignore[misc]  # typeshed's pickle._Unpickler lacks the opcode handlers

    # typeshed types these handlers as taking the C `_pickle.Unpickler`; they take this pure-Python one.
    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = dict(pickle._Unpickler.dispatch)
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
                    view = part.data.cast("B")
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
        super().load_reduce()  # type: ignore[misc]  # not in typeshed's pickle._Unpickler

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
        super().load_setitem()  # type: ignore[misc]  # not in typeshed's pickle._Unpickler

    def load_setitems(self) -> None:  # the stack holds key, value, ... since the mark
        self.stack[::2] = [self._plain(key) for key in self.stack[::2]]
        super().load_setitems()  # type: ignore[misc]  # not in typeshed's pickle._Unpickler

    def load_additems(self) -> None:  # set members are hashed too (the stack holds them since the mark)
        self.stack[:] = [self._plain(item) for item in self.stack]
        super().load_additems()  # type: ignore[misc]  # not in typeshed's pickle._Unpickler

    def load_frozenset(self) -> None:
        self.stack[:] = [self._plain(item) for item in self.stack]
        super().load_frozenset()  # type: ignore[misc]  # not in typeshed's pickle._Unpickler

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
