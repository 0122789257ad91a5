"""Data files and their SHA-256: find a dataset's file under the data root and check it against the published
digest (remembered per file, so a multi-GB pickle is hashed once)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from msabench.errors import DataError
from msabench.paths import cache_home
from msabench.results import write_atomic

log = logging.getLogger("msabench")


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
