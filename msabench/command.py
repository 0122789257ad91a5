"""The command that reproduces a result: the one it recorded (``request.command``), else one rebuilt from it.

A result records its request from format version 2 on. For an older result the command is rebuilt from what the
result holds: the method, the dataset, the seed, the protocol's departures from the defaults (``--max-epochs``,
``--patience``, ``--precision``), the thread count, and the row's variant, which spells out every ``--encoder``,
``--objective``, ``--set`` and ``--data-option`` the run was given (a ``--set`` value is taken from the resolved
hyper-parameters, so a long path that the variant shortens is given in full). What a result does not hold is named
in `Command.missing`: the data root, a file a dataset option named (only its name and a hash are in the variant),
the sweep behind a tuned row.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from msabench.protocol import PROTOCOL
from msabench.results import RunResult

# Options of `msabench run` a rerun sets itself (with a value), and flags it drops.
RERUN_OPTIONS = ("--seeds", "--results", "--leaderboards", "--threads", "--data-root", "--device", "--tuned")
RERUN_FLAGS = ("--overwrite", "--progress", "--no-progress", "--checkpoints", "--no-checkpoints", "-q", "--quiet")
# A variant's parts are joined by ", "; a part starts with its key (JSON values may hold ", " themselves).
PART = re.compile(r", (?=tuned(?:, |$)|[A-Za-z0-9_-]+(?::[A-Za-z0-9_-]+)?(?:\.[A-Za-z0-9_]+)?=)")


@dataclass(frozen=True)
class Command:
    """A command line that reproduces a result, where it came from, and what it cannot restore."""

    text: str
    recorded: bool  # True: the result's request.command; False: rebuilt from the result
    missing: tuple[str, ...] = field(default=())  # what the rebuilt command cannot restore, one phrase each

    @property
    def exact(self) -> bool:
        return self.recorded or not self.missing


def command(result: RunResult, request: dict[str, Any] | None = None) -> Command:
    """The command that reproduces `result`: its recorded request's (`request`, or ``result.request`` where the
    result type has it), else one rebuilt from the result."""
    request = request if request is not None else getattr(result, "request", None)
    if isinstance(request, dict) and isinstance(request.get("command"), str):
        return Command(request["command"], recorded=True)
    return rebuild(result)


def rebuild(result: RunResult) -> Command:
    """`msabench run` flags that reproduce `result`, from the result alone (see the module's docstring)."""
    words = ["msabench", "run", "--method", result.method, "--dataset", result.dataset, "--seeds", str(result.seed)]
    words += _runtime_flags(result)
    missing: list[str] = []
    for part in variant_parts(result.variant):
        flags, lost = _variant_flags(result, part)
        words += flags
        missing += lost
    if result.data.get("files") and not result.data.get("synthetic"):
        if not result.data.get("verified", True):
            words.append("--no-verify")
        missing.append("the data root (pass --data-root DIR, or set MSABENCH_DATA)")
    return Command(" ".join(shlex.quote(word) for word in words), recorded=False, missing=tuple(missing))


def _runtime_flags(result: RunResult) -> list[str]:
    """The protocol's departures from the defaults, and a thread count other than 1, as flags."""
    words = []
    protocol = result.protocol
    for key, flag in (("max_epochs", "--max-epochs"), ("patience", "--patience"), ("precision", "--precision")):
        value = protocol.get(key)
        if value is not None and value != getattr(PROTOCOL, key):
            words += [flag, str(value)]
    threads = result.hardware.get("torch_threads")
    if isinstance(threads, int) and threads != 1:
        words += ["--threads", str(threads)]
    return words


def _variant_flags(result: RunResult, part: str) -> tuple[list[str], list[str]]:
    """One part of the row's variant as flags, and what they cannot restore (one phrase each)."""
    key, _, value = part.partition("=")
    stage, colon, setting = key.rpartition(":")
    section, dot, name = setting.partition(".")
    if part == "tuned":
        summary = result.tuned.get("summary", "its sweep")
        return [], [f"the sweep that tuned it ({summary}): this command trains its chosen values untuned"]
    if key == "objective":
        return ["--objective", value], []
    if not dot and not colon:
        return ["--encoder", f"{key}={value}"], []
    if section == "data" and not colon:
        lost = []
        if re.fullmatch(r"[^\"/]*~[0-9a-f]{6}", value):
            lost.append(f"the file of --data-option {name} (the result keeps only its name {value})")
        return ["--data-option", f"{name}={_plain(value)}"], lost
    stored = result.hparams.get(section, {}).get(name) if not colon else None
    text = json.dumps(stored) if not colon and name in result.hparams.get(section, {}) else value
    return ["--set", f"{key}={_plain(text)}"], []


def variant_parts(variant: str) -> list[str]:
    """A row's variant split into its changes (``text=lstm-text``, ``train.lr=0.001``, ``data.x=...``, ``tuned``)."""
    return [part for part in PART.split(variant) if part] if variant else []


def rerun_argv(
    text: str,
    *,
    seed: int,
    results: str,
    threads: int,
    device: str,
    data_root: str | None = None,
    program: Sequence[str] = ("msabench",),
) -> list[str]:
    """The argument list that runs `text` (an ``msabench run`` command) again for one seed into `results`: the
    seeds, results, leaderboards, thread, device and data-root options are replaced, and the progress bar,
    checkpoints and --overwrite dropped; ``msabench`` becomes `program`."""
    words = shlex.split(text)
    if words[:2] != ["msabench", "run"]:
        raise ValueError(f"not an `msabench run` command: {text}")
    kept: list[str] = []
    rest = iter(words[2:])
    for word in rest:
        option = word.split("=", 1)[0]
        if option in RERUN_OPTIONS:
            if "=" not in word:
                next(rest, None)
        elif word not in RERUN_FLAGS:
            kept.append(word)
    kept += ["--seeds", str(seed), "--results", results, "--leaderboards", f"{results}/leaderboards"]
    kept += ["--threads", str(threads), "--device", device, "--no-progress", "--no-checkpoints", "--quiet"]
    if data_root is not None:
        kept += ["--data-root", data_root]
    return [*program, "run", *kept]


def _plain(value: str) -> str:
    """A JSON string value as the bare text the command line takes (``"pooler"`` -> ``pooler``); others as given."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, str) and not _looks_like_json(parsed) else value


def _looks_like_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
