"""Run results: one JSON file per (dataset, method, seed), written atomically."""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import socket
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from msabench.errors import DataError, RunError

# 2: results record the request that made them (`RunResult.request`). Version 1 files are read as they are.
SCHEMA = 2


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
    epoch_seconds: list[dict[str, float]] = field(default_factory=list)  # per epoch: "train" and "valid" wall time
    # test split: ids, predictions, and labels for synthetic data (real data: their digest in data.labels_sha256)
    predictions: dict[str, list] = field(default_factory=dict)
    hparams: dict[str, Any] = field(default_factory=dict)
    method_info: dict[str, Any] = field(default_factory=dict)  # paper, components, plugin, reported numbers
    versions: dict[str, str] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # files + sha256, verified flag, synthetic, ...
    wall_time_s: float = 0.0
    # "rss": the process's peak since it started (data loading and earlier seeds included); "cuda": this run's
    peak_memory_mb: dict[str, float] = field(default_factory=dict)
    parameters: dict[str, int] = field(default_factory=dict)  # "trainable" and "total" parameter counts
    # A multi-stage method: per modality, the stage run its encoder started from ("method", "result" file, the
    # result's "sha256", "checkpoint").
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Set when `msabench sweep` chose these hyper-parameters on validation: the sweep, its grid, the chosen values.
    tuned: dict[str, Any] = field(default_factory=dict)
    # What made it: the equivalent `msabench run` command, the msabench commit (and whether the checkout had
    # uncommitted changes) when run from a checkout, a UTC timestamp, the thread count, each hyper-parameter's source.
    request: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA

    @property
    def row(self) -> str:
        """The leaderboard row this result belongs to."""
        return f"{self.method} [{self.variant}]" if self.variant else self.method

    def to_dict(self) -> dict[str, Any]:
        return _nan_to_none(asdict(self))

    def content(self) -> dict[str, Any]:
        """`to_dict` without the fields left at their defaults (other than `schema`): what a result says, the same
        whichever later version of the format (with fields it never set) reads it."""
        defaults = {
            f.name: f.default_factory() if f.default_factory is not MISSING else f.default for f in fields(self)
        }
        stored = self.to_dict()
        return {k: v for k, v in stored.items() if k == "schema" or k not in defaults or v != defaults[k]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        if not isinstance(data, dict):
            raise DataError(f"a result is a JSON object, not {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        schema = data.get("schema", 1)
        if not isinstance(schema, int) or isinstance(schema, bool) or schema > SCHEMA:
            raise DataError(
                f"result format version {schema!r} is newer than this msabench reads ({SCHEMA}): upgrade msabench."
            )
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


def result_path(root: str | Path, dataset: str, method: str, seed: int, variant: str = "", *, protocol: str) -> Path:
    """`<root>/<dataset>/<method>[+variant]/<protocol id>/seed-<seed>.json`; the selected weights sit beside it as
    `.pt`, and while the run trains, its resume state as `.resume.pt`. A shorter protocol is another folder, so it
    never touches a longer one's files."""
    row = method + (f"+{_slug(variant)}" if variant else "")
    folder = protocol if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.=,_+-]*", protocol) else _slug(protocol)
    return Path(root) / dataset / row / folder / f"seed-{seed}.json"


def resume_path(path: str | Path) -> Path:
    """Where a run keeps its resumable state while it trains (`seed-<n>.resume.pt` beside its result)."""
    return Path(path).with_suffix(".resume.pt")


# What a result records about its data that decides whether another run used the same data.
DATA_KEYS = ("files", "split", "content_sha256", "generator", "train_fraction")


def differences(
    result: RunResult,
    *,
    data: dict[str, Any],
    hparams: dict[str, Any],
    protocol: dict[str, Any],
    stages: dict[str, dict[str, Any]] | None = None,
) -> list[str]:
    """How an existing result differs from a run about to be made (data files and split, resolved hyper-parameters,
    protocol id, and the stage results it starts from), one phrase per difference; empty when the run would repeat
    it. Values are compared as JSON stores them."""
    data, hparams, protocol = _as_stored(data), _as_stored(hparams), _as_stored(protocol)
    found = []
    if stages is not None:
        for modality in sorted(set(result.stages) | set(stages)):
            old, new = result.stages.get(modality, {}), stages.get(modality, {})
            if (old.get("result"), old.get("sha256")) != (new.get("result"), new.get("sha256")):
                found.append(
                    f"{modality} stage: {old.get('result')} (sha256 {str(old.get('sha256'))[:12]}) then, "
                    f"{new.get('result')} (sha256 {str(new.get('sha256'))[:12]}) now"
                )
    for key in DATA_KEYS:
        if result.data.get(key) != data.get(key):
            found.append(f"data {key}: {_short(result.data.get(key))} then, {_short(data.get(key))} now")
    changes = _changed(result.hparams, hparams)
    found += [f"hyper-parameter {key}: {_short(old)} then, {_short(new)} now" for key, old, new in changes]
    if result.protocol.get("id") != protocol.get("id"):  # the id spells out every departure from the defaults
        found.append(f"protocol: {result.protocol.get('id')} then, {protocol.get('id')} now")
    return found


def _as_stored(value: Any) -> Any:
    return json.loads(json.dumps(_nan_to_none(value), default=str))


def _changed(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            change
            for key in sorted(set(old) | set(new), key=str)
            for change in _changed(old.get(key), new.get(key), f"{prefix}{key}.")
        ]
    return [] if old == new else [(prefix.rstrip("."), old, new)]


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


RESULT_FILE = re.compile(r"seed-(-?\d+)\.json")  # not seed-<n>.robustness.json and other reports beside it


def result_files(root: str | os.PathLike[str]) -> list[Path]:
    """The result files (`seed-<n>.json`) under `root`, in a stable order."""
    return sorted(path for path in Path(root).rglob("seed-*.json") if RESULT_FILE.fullmatch(path.name))


def load_results(root: str | Path) -> list[RunResult]:
    """Every result file under `root`, in a stable order."""
    return [RunResult.load(path) for path in result_files(root)]


def protect(path: str | os.PathLike[str]) -> None:
    """Refuse to write `path` (an output a user named: predictions, a plot, a page) when it is a run's result,
    checkpoint or resume state, by its name or its contents; msabench never overwrites those by accident."""
    path = Path(path)
    if path.is_dir():
        raise RunError(f"{path} is a folder; name a file to write.")
    if not path.exists():
        return
    name = path.name
    if RESULT_FILE.fullmatch(name) or name.endswith((".resume.pt", ".previous.json")):
        kind = "a run's result or resume state"
    else:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
        kind = None
        if head.startswith(b"PK\x03\x04") and b"data.pkl" in head:
            kind = "a torch checkpoint"
        elif head.lstrip().startswith(b"{") and b'"metrics"' in head and b'"protocol"' in head:
            kind = "a run's result"
    if kind:
        raise RunError(f"{path} is {kind}: msabench does not overwrite it. Write to another file.")


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write a file so that readers see the old contents or the new, never half: temp file, fsync, rename.

    The temporary file is named after this host and process; temporaries of `path` left by a process of this host
    that is gone (killed mid-write) are deleted first, so none outlives its writer for long.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    while True:  # like mkstemp, but with a normal file's mode (0o666 less the umask), not 0o600
        temporary = temporary_path(path)
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


def temporary_path(path: str | Path) -> Path:
    """A fresh name beside `path` for writing it before a rename: `.<name>.<host>.<pid>-<random>.tmp`."""
    path = Path(path)
    return path.parent / f".{path.name}.{_host()}.{os.getpid()}-{secrets.token_hex(4)}.tmp"


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporary files or folders of `path` (or, for a folder, of everything in it) whose writer, a
    process on this host, no longer runs; returns what was deleted."""
    path = Path(path)
    folder, pattern = (path, ".*.tmp") if path.is_dir() else (path.parent, f".{glob.escape(path.name)}.*.tmp")
    host = _host()
    removed = []
    for candidate in folder.glob(pattern):
        match = re.fullmatch(r"\..+\.(?P<host>[^.]+)\.(?P<pid>\d+)-[0-9a-f]+\.tmp", candidate.name)
        if match and match["host"] == host and not _alive(int(match["pid"])):
            if candidate.is_dir():
                shutil.rmtree(candidate, ignore_errors=True)
            else:
                candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
