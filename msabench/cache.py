"""The feature cache: frozen encoders' outputs on disk, computed once per
(dataset, split, encoder, config, weights) and read back by later epochs, seeds and runs.

Each entry is a folder of Arrow files written with the `datasets` library (`save_to_disk`;
`load_from_disk` memory-maps it): an ``id`` column and a fixed-length float32 ``features``
column, plus ``key.json`` saying what was computed. The folder's name is a digest of that key:

    <root>/<dataset>/<split>/<encoder>-<digest>/

The key holds the dataset name, the split name, a digest of the split's ids and of the input
the encoder reads (with its lengths), the encoder's name and `Encoder.fingerprint()` (class,
pooling, tokenizer vocabulary and padding, image preprocessing, the versions of the libraries
that preprocess and run it...), a digest of its weights, the device type and the versions of
torch, numpy and datasets. Change any of them and the entry is a different one. An entry is
written to a temporary folder and renamed when complete, so a killed run leaves no half entry;
an entry that no longer loads (damaged files) is recomputed and replaced.

The root is ``$MSABENCH_CACHE`` (``off`` keeps features in memory only), else
``$XDG_CACHE_HOME/msabench/features``, else ``~/.cache/msabench/features``. Delete it at any
time to reclaim the space.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from msabench.paths import feature_cache_root
from msabench.results import remove_stale_temporaries, temporary_path

log = logging.getLogger("msabench")


class FeatureCache:
    """Arrow folders of frozen encoders' outputs under `root` (None: a cache that stores nothing)."""

    def __init__(self, root: str | Path | None):
        self.root = Path(root).expanduser() if root is not None else None

    @classmethod
    def default(cls) -> FeatureCache:
        """The cache under $MSABENCH_CACHE ("off": none), else under $XDG_CACHE_HOME or ~/.cache (msabench/features)."""
        return cls(feature_cache_root())

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def path(self, key: dict[str, Any]) -> Path:
        """Where the entry for `key` lives (whether or not it exists)."""
        if self.root is None:
            raise ValueError("this feature cache is off")
        return self.root / _safe(key["dataset"]) / _safe(key["split"]) / f"{_safe(key['encoder'])}-{digest(key)[:20]}"

    def load(self, key: dict[str, Any], ids: list[str]) -> torch.Tensor | None:
        """The cached features for `key` as a [N, D] float32 tensor, or None when there is no (valid) entry."""
        if self.root is None:
            return None
        path = self.path(key)
        if not (path / "key.json").is_file():
            return None
        try:
            stored_ids, values = _read(path)
        except Exception as error:  # a damaged entry is recomputed (and replaced by save), not trusted
            log.warning(
                "feature cache entry %s is unreadable (%s: %s); recomputing it", path, type(error).__name__, error
            )
            return None
        if stored_ids != [str(i) for i in ids]:
            log.warning("feature cache entry %s holds other ids than the split; recomputing it", path)
            return None
        return torch.from_numpy(values)

    def valid(self, key: dict[str, Any], ids: list[str]) -> bool:
        """Whether the entry for `key` exists, loads, and holds exactly `ids`."""
        if self.root is None:
            return False
        path = self.path(key)
        try:
            return (path / "key.json").is_file() and _read(path)[0] == [str(i) for i in ids]
        except Exception:
            return False

    def save(self, key: dict[str, Any], ids: list[str], features: torch.Tensor) -> Path | None:
        """Store [N, D] features for `key` atomically (temporary folder, then rename); returns the entry's folder."""
        if self.root is None:
            return None
        import datasets
        import pyarrow as pa

        features = features.detach().to("cpu", torch.float32)
        if features.dim() != 2 or len(features) != len(ids):
            raise ValueError(
                f"feature cache: expected features [{len(ids)}, D] for {len(ids)} ids, got {tuple(features.shape)}"
            )
        values, width = features.numpy(), int(features.shape[1])
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)  # entries a killed run was writing
        temporary = temporary_path(path)
        try:
            table = pa.table(
                {
                    "id": pa.array([str(i) for i in ids], pa.string()),
                    "features": pa.FixedSizeListArray.from_arrays(
                        pa.array(np.ascontiguousarray(values).reshape(-1)), width
                    ),
                }
            )
            schema = datasets.Features(
                {"id": datasets.Value("string"), "features": datasets.List(datasets.Value("float32"), length=width)}
            )
            dataset = datasets.Dataset(
                table, info=datasets.DatasetInfo(description="msabench feature cache", features=schema)
            )
            quiet = datasets.utils.are_progress_bars_disabled()
            datasets.utils.disable_progress_bars()
            try:
                # One shard even when empty: `datasets` writes no file for an empty dataset otherwise, and cannot
                # load that.
                dataset.save_to_disk(str(temporary), **({} if len(ids) else {"num_shards": 1}))
            finally:
                if not quiet:
                    datasets.utils.enable_progress_bars()
            (temporary / "key.json").write_text(json.dumps(key, indent=1, sort_keys=True) + "\n")
            self._publish(temporary, path, key, ids)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        return path

    def _publish(self, temporary: Path, path: Path, key: dict[str, Any], ids: list[str]) -> None:
        """Rename the complete `temporary` folder to `path`. An entry already there is kept when it loads and holds
        `ids` (another run wrote it first); otherwise it is moved aside, replaced, and then deleted."""
        try:
            os.replace(temporary, path)
            return
        except OSError:
            if not path.exists():
                raise
        if self.valid(key, ids):
            return
        aside = temporary_path(path)
        with contextlib.suppress(FileNotFoundError):  # another run moved it away already
            os.replace(path, aside)
        try:
            os.replace(temporary, path)
        except OSError:  # another run put a new entry in between: keep it when it is good
            if not self.valid(key, ids):
                raise
        else:
            log.warning("feature cache entry %s could not be loaded; replaced it with the features just computed", path)
        finally:
            shutil.rmtree(aside, ignore_errors=True)


def digest(value: Any) -> str:
    """A stable hex digest of a JSON-able value."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def weights_digest(module: torch.nn.Module) -> str:
    """A digest of a module's parameters and buffers (names, dtypes, shapes and bytes)."""
    hasher = hashlib.blake2b(digest_size=20)
    for name, tensor in module.state_dict().items():
        _hash_tensor(hasher, tensor, name)
    return hasher.hexdigest()


def input_digest(ids: list[str], values: Any, lengths: torch.Tensor | None = None) -> str:
    """A digest of a split's ids and of one input's values (strings, bytes, or a tensor, with its lengths if any)."""
    hasher = hashlib.blake2b(digest_size=20)
    for sample in ids:
        hasher.update(str(sample).encode() + b"\0")
    if isinstance(values, torch.Tensor):
        _hash_tensor(hasher, values)
        if lengths is not None:
            _hash_tensor(hasher, lengths, "lengths")
    else:
        for value in values:
            data = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
            hasher.update(len(data).to_bytes(8, "little") + data)
    return hasher.hexdigest()


def library_versions() -> dict[str, str]:
    """The versions of torch, numpy and datasets (the store), part of every cache key; encoders add the libraries
    that preprocess and run them (transformers, tokenizers, Pillow...) to their fingerprint."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"torch": torch.__version__, "numpy": np.__version__}
    try:
        found["datasets"] = version("datasets")
    except PackageNotFoundError:
        found["datasets"] = "unknown"
    return found


def _hash_tensor(hasher: Any, tensor: torch.Tensor, name: str = "") -> None:
    tensor = tensor.detach().to("cpu").contiguous()
    hasher.update(
        f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode()
        if name
        else f"{tensor.dtype}:{tuple(tensor.shape)};".encode()
    )
    hasher.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")


def _read(path: Path) -> tuple[list[str], np.ndarray]:
    """(ids, [N, D] float32 features) of an entry; raises when it does not load."""
    import datasets

    table = datasets.load_from_disk(str(path)).data
    stored_ids = [str(i) for i in table.column("id").to_pylist()]
    column = table.column("features")
    width = int(column.type.list_size)  # from the schema, so that an empty split reads back as [0, D]
    column = column.combine_chunks()
    values = column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), width)
    return stored_ids, np.array(values, dtype=np.float32)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)) or "_"
