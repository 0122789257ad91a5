"""Where msabench reads and writes when nothing else is said: the data root and the caches."""

from __future__ import annotations

import os
from pathlib import Path

OFF = ("off", "0", "none", "false")


def data_root(root: str | Path | None = None) -> Path:
    """`root`, else $MSABENCH_DATA, else ~/.local/share/msabench/data (XDG_DATA_HOME honoured)."""
    if root is None:
        root = os.environ.get("MSABENCH_DATA") or None
    if root is None:
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        root = Path(base) / "msabench" / "data"
    return Path(root).expanduser()


def cache_home() -> Path:
    """msabench's cache folder: $XDG_CACHE_HOME/msabench, else ~/.cache/msabench."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "msabench"


def feature_cache_root() -> Path | None:
    """$MSABENCH_CACHE ("off" disables the feature cache: None), else <cache home>/features."""
    value = os.environ.get("MSABENCH_CACHE")
    if value is not None:
        return None if value.strip().lower() in OFF or not value.strip() else Path(value).expanduser()
    return cache_home() / "features"
