"""The `train` section of a method's hyper-parameters: every setting, its type, range and default.

The catalog checks a method's settings when it is registered and again after `--set` overrides,
before any data loads, so `--set train.lr=-1` fails in a second with one line naming the setting.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from msabench.errors import CatalogError

OPTIMIZERS = ("adam", "adamw", "sgd", "adadelta")


@dataclass(frozen=True)
class Setting:
    """One training setting: what it means, which values it takes, and its default (None: off or derived)."""

    name: str
    help: str
    kind: str  # "int", "float", "choice" or "groups"
    accepts: Callable[[Any], bool]
    requirement: str  # what `accepts` asks for, in words
    default: Any = None


def _int(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _float(check: Callable[[float], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and check(v)


SETTINGS = {
    s.name: s
    for s in [
        Setting("batch_size", "training mini-batch size", "int", _int(1), "a whole number >= 1", 32),
        Setting(
            "eval_batch_size",
            "validation/test mini-batch size (default: batch_size)",
            "int",
            _int(1),
            "a whole number >= 1",
        ),
        Setting("lr", "learning rate", "float", _float(lambda v: v > 0), "a number > 0", 1e-3),
        Setting("weight_decay", "weight decay", "float", _float(lambda v: v >= 0), "a number >= 0", 0.0),
        Setting(
            "lr_groups",
            "{parameter-name prefix: lr or {lr, weight_decay}}",
            "groups",
            lambda v: isinstance(v, dict),
            "an object",
        ),
        Setting(
            "optimizer",
            "adam, adamw, sgd or adadelta",
            "choice",
            lambda v: v in OPTIMIZERS,
            f"one of {', '.join(OPTIMIZERS)}",
            "adam",
        ),
        Setting("momentum", "SGD momentum", "float", _float(lambda v: 0 <= v < 1), "a number in [0, 1)", 0.0),
        Setting(
            "max_epochs",
            "the method's own epoch count (the protocol's cap still applies)",
            "int",
            _int(1),
            "a whole number >= 1",
        ),
        Setting("grad_clip", "clip the gradient norm to this value", "float", _float(lambda v: v > 0), "a number > 0"),
        Setting(
            "grad_clip_value",
            "clip each gradient element to [-value, value]",
            "float",
            _float(lambda v: v > 0),
            "a number > 0",
        ),
        Setting(
            "accumulate",
            "batches whose gradients are averaged into one optimizer step",
            "int",
            _int(1),
            "a whole number >= 1",
            1,
        ),
        Setting(
            "lr_decay",
            "multiply the learning rates by this factor every lr_decay_every epochs",
            "float",
            _float(lambda v: 0 < v <= 1),
            "a number in (0, 1]",
        ),
        Setting("lr_decay_every", "epochs between learning-rate decays", "int", _int(1), "a whole number >= 1", 1),
        Setting(
            "plateau_patience",
            "ReduceLROnPlateau on the validation selection value: epochs without improvement",
            "int",
            _int(0),
            "a whole number >= 0",
        ),
        Setting(
            "plateau_factor",
            "ReduceLROnPlateau: multiply the learning rates by this factor",
            "float",
            _float(lambda v: 0 < v < 1),
            "a number in (0, 1)",
            0.1,
        ),
        Setting(
            "warmup_steps",
            "optimizer steps of linear learning-rate warm-up from 0",
            "int",
            _int(0),
            "a whole number >= 0",
            0,
        ),
    ]
}


def check_train(values: Mapping[str, Any], where: str) -> None:
    """Raise a one-line CatalogError for an unknown setting or a value of the wrong type or range."""
    for key, value in values.items():
        setting = SETTINGS.get(key)
        if setting is None:
            close = difflib.get_close_matches(key, SETTINGS, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise CatalogError(f"{where}: unknown training setting train.{key}.{hint} Known: {', '.join(SETTINGS)}.")
        if value is None and setting.default is None and key != "lr_groups":
            continue  # an optional setting left off
        if not setting.accepts(value):
            raise CatalogError(
                f"{where}: train.{key} must be {setting.requirement}; got {value!r}. "
                f"Set it with --set train.{key}=VALUE ({setting.help})."
            )
        if key == "lr_groups":
            _check_groups(value, where)


def _check_groups(groups: Mapping[str, Any], where: str) -> None:
    for prefix, group in groups.items():
        entries = group if isinstance(group, dict) else {"lr": group}
        for name, value in entries.items():
            if name not in ("lr", "weight_decay") or not SETTINGS[name].accepts(value):
                raise CatalogError(
                    f"{where}: train.lr_groups[{prefix!r}] must map to an lr > 0, "
                    f"or to {{lr, weight_decay}}; got {group!r}."
                )


def resolved(values: Mapping[str, Any]) -> dict[str, Any]:
    """The train section with every default filled in (eval_batch_size follows batch_size)."""
    settings = {key: setting.default for key, setting in SETTINGS.items()}
    settings.update({key: value for key, value in values.items() if value is not None})
    settings["eval_batch_size"] = settings["eval_batch_size"] or settings["batch_size"]
    settings["lr_groups"] = settings["lr_groups"] or {}
    return settings
