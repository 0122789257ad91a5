"""CMU-MultimodalSDK computational sequences (``.csd``): HDF5 files, read with h5py, that hold one sequence.

The SDK's layout: one top-level group (the sequence's root name, e.g. ``Opinion Segment Labels``) holding

- ``data/<video id>/features``: ``[n, d]`` per video (labels: d = 1; words: bytes; GloVe, COVAREP, FACET,
  OpenFace: floats), and ``data/<video id>/intervals``: ``[n, 2]`` start and end times in seconds, one row per
  feature row;
- ``metadata/<key>``: one string each (``dataset name``, ``root name``, ``dimension names``, ``creator``,
  ``computational sequence version``, ...), written as JSON by the SDK (some files hold plain text there).

`open_csd` reads the metadata at once and each video's arrays when asked for (a feature sequence of MOSEI
is gigabytes); `write_csd` writes the same layout (small files for tests, or a user's own features).
Every problem is a `DataError` of one line that names the file (and the video).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from msabench import DataError

SDK = "the CMU-MultimodalSDK (https://github.com/CMU-MultiComp-Lab/CMU-MultimodalSDK)"


@dataclass(frozen=True)
class Segments:
    """One video's rows of a computational sequence: ``features`` [n, d] and ``intervals`` [n, 2] (seconds)."""

    features: np.ndarray
    intervals: np.ndarray

    def __len__(self) -> int:
        return len(self.features)

    def words(self) -> list[str]:
        """A word sequence's features as text (the SDK stores them as bytes, one per row)."""
        column = self.features.reshape(len(self.features), -1)[:, 0]
        return [value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value) for value in column]


class ComputationalSequence:
    """An open ``.csd`` file: ``name`` (its root group), ``metadata`` (key -> value), ``videos`` (ids in the file's
    order) and, per video, `Segments` (``sequence[video]``). Use it as a context manager, or call `close`."""

    def __init__(self, path: str | Path):
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: no such file. Computational sequences come from {SDK}.")
        if not h5py.is_hdf5(self.path):
            raise DataError(
                f"{self.path} is not an HDF5 file; a computational sequence (.csd) is one. "
                f"Is it the right file, or a download that failed? Get it again from {SDK}."
            )
        try:
            self.file = h5py.File(self.path, "r")
        except OSError as error:
            raise DataError(f"{self.path} is truncated or corrupt ({_first(error)}); download it again.") from None
        try:
            roots = [key for key, item in self.file.items() if isinstance(item, h5py.Group)]
            valid = [key for key in roots if {"data", "metadata"} <= set(self.file[key].keys())]
            if len(valid) != 1 or len(self.file.keys()) != 1:
                raise DataError(
                    f"{self.path}: not a computational sequence: expected one top-level group holding 'data' and "
                    f"'metadata' (the CMU-MultimodalSDK's layout); found {sorted(self.file.keys())}."
                )
            self.name = valid[0]
            self.group = self.file[self.name]["data"]
            self.videos = list(self.group.keys())
            self.metadata = {key: _value(item) for key, item in self.file[self.name]["metadata"].items()}
        except OSError as error:
            self.file.close()
            raise DataError(f"{self.path} is truncated or corrupt ({_first(error)}); download it again.") from None
        except DataError:
            self.file.close()
            raise

    def __enter__(self) -> ComputationalSequence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()

    def __contains__(self, video: str) -> bool:
        return video in self.group

    def __iter__(self) -> Iterator[str]:
        return iter(self.videos)

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, video: str) -> Segments:
        import h5py

        if video not in self.group:
            raise KeyError(video)
        item = self.group[video]
        if not isinstance(item, h5py.Group) or not {"features", "intervals"} <= set(item.keys()):
            found = sorted(item.keys()) if isinstance(item, h5py.Group) else type(item).__name__
            raise DataError(
                f"{self.path}: video {video!r} holds {found}; a computational sequence has 'features' and "
                "'intervals' per video."
            )
        try:
            features, intervals = item["features"][()], item["intervals"][()]
        except OSError as error:
            raise DataError(
                f"{self.path}: video {video!r} cannot be read ({_first(error)}): the file is truncated or corrupt; "
                "download it again."
            ) from None
        if features.ndim == 1:
            features = features.reshape(-1, 1)
        if intervals.ndim != 2 or intervals.shape[1] != 2 or features.ndim != 2 or len(features) != len(intervals):
            raise DataError(
                f"{self.path}: video {video!r} has features {features.shape} and intervals {intervals.shape}; "
                "expected [n, d] and [n, 2] (start, end), one interval per feature row."
            )
        return Segments(features, intervals)

    @property
    def dataset(self) -> str | None:
        """The dataset the metadata names (``dataset name``), when it names one."""
        value = self.metadata.get("dataset name")
        return value if isinstance(value, str) and value.strip() else None


def open_csd(path: str | Path) -> ComputationalSequence:
    """Open a ``.csd`` file: its metadata is read now, each video's arrays when asked for."""
    return ComputationalSequence(path)


def write_csd(
    path: str | Path, name: str, data: Mapping[str, tuple[Any, Any]], metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write a computational sequence in the SDK's layout: ``data`` maps video id -> (features [n, d], intervals
    [n, 2]); ``metadata`` values are stored as the SDK stores them (JSON text, one string per key)."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        root = handle.create_group(name)
        group = root.create_group("data")
        for video, (features, intervals) in data.items():
            entry = group.create_group(video)
            entry.create_dataset("features", data=np.asarray(features))
            entry.create_dataset("intervals", data=np.asarray(intervals, dtype=np.float64))
        meta = root.create_group("metadata")
        for key, value in {"root name": name, **dict(metadata or {})}.items():
            meta.create_dataset(key, (1,), dtype=h5py.special_dtype(vlen=bytes), data=[json.dumps(value).encode()])
    return path


def _value(item: Any) -> Any:
    """A metadata entry as a Python value: JSON where it parses, else the text."""
    value = item[()]
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size == 1 else value.tolist()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value.item() if isinstance(value, np.generic) else value


def _first(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
