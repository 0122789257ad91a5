"""Run results: one JSON file per (dataset, method, seed), written atomically."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from msabench.errors import DataError

SCHEMA = 1


@dataclass
class RunResult:
    """Everything one training run produced and what it ran on."""

    dataset: str
    method: str
    seed: int
    metrics: dict[str, float]  # test metrics of the selected checkpoint
    protocol: dict[str, Any]
    task: dict[str, Any]  # kind and metric family
    variant: str = ""  # component or hyper-parameter changes from the registered method ("" = as registered)
    valid_metrics: dict[str, float] = field(default_factory=dict)  # at the selected epoch, with "loss"
    best_epoch: int = 0
    epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # per epoch: train loss terms, valid loss + metrics
    predictions: dict[str, list] = field(default_factory=dict)  # test split: ids, predictions, labels
    hparams: dict[str, Any] = field(default_factory=dict)
    method_info: dict[str, Any] = field(default_factory=dict)  # paper, components, plugin, reported numbers
    versions: dict[str, str] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # files + sha256, verified flag, synthetic, ...
    wall_time_s: float = 0.0
    peak_memory_mb: dict[str, float] = field(
        default_factory=dict
    )  # "rss": the process's peak since it started (data loading and earlier seeds included); "cuda": this run's
    schema: int = SCHEMA

    @property
    def row(self) -> str:
        """The leaderboard row this result belongs to."""
        return f"{self.method} [{self.variant}]" if self.variant else self.method

    def to_dict(self) -> dict[str, Any]:
        return _nan_to_none(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        if not isinstance(data, dict):
            raise DataError(f"a result is a JSON object, not {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        if unknown := set(data) - set(known):
            raise DataError(f"result has unknown keys {sorted(unknown)}: written by a newer msabench?")
        for name, value in data.items():
            if known[name].type.startswith("dict") and not isinstance(value, dict):
                raise DataError(f"result field {name!r} must be an object, not {type(value).__name__}")
        result = cls(**data)
        for name in ("metrics", "valid_metrics"):
            setattr(
                result,
                name,
                {key: math.nan if value is None else value for key, value in getattr(result, name).items()},
            )
        return result

    def save(self, path: str | Path) -> Path:
        write_atomic(path, json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> RunResult:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, DataError) as error:
            raise DataError(f"cannot read result file {path}: {error}") from error


def result_path(root: str | Path, dataset: str, method: str, seed: int, variant: str = "") -> Path:
    """`<root>/<dataset>/<method>[+variant]/seed-<seed>.json` (the checkpoint sits beside it as `.pt`)."""
    row = method + (f"+{_slug(variant)}" if variant else "")
    return Path(root) / dataset / row / f"seed-{seed}.json"


RESULT_FILE = re.compile(r"seed-(-?\d+)\.json")  # not seed-<n>.robustness.json and other reports beside it


def result_files(root: str | Path) -> list[Path]:
    """The result files (`seed-<n>.json`) under `root`, in a stable order."""
    return sorted(path for path in Path(root).rglob("seed-*.json") if RESULT_FILE.fullmatch(path.name))


def load_results(root: str | Path) -> list[RunResult]:
    """Every result file under `root`, in a stable order."""
    return [RunResult.load(path) for path in result_files(root)]


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write a file so that readers see the old contents or the new, never half: temp file, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:  # like mkstemp, but with a normal file's mode (0o666 less the umask), not 0o600
        temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _slug(text: str, limit: int = 120) -> str:
    """A folder-name-safe form of `text`. When characters had to be replaced or the name cut (to stay under
    255 bytes), it ends in a hash of the whole text, so two variants never share a folder."""
    slug = re.sub(r"[^A-Za-z0-9.=,_-]+", "_", text).strip("_")
    if slug != text or len(slug) > limit:
        slug = f"{slug[: limit - 13]}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    return slug


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(item) for item in value]
    return value
