"""Dataset options (``--data-option KEY=VALUE``) coerced to the values a dataset takes, with one-line errors."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from msabench.errors import DataError, RequestError

if TYPE_CHECKING:
    from msabench.components import Dataset


def flag(value: Any, option: str) -> bool:
    """A dataset option's true/false value (``--data-option NAME=true``), or a DataError saying what is expected."""
    if isinstance(value, str):
        if value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if value.strip().lower() in ("0", "false", "no", "off", ""):
            return False
    elif isinstance(value, bool):
        return value
    raise DataError(f"--data-option {option}={value}: expected true or false.")


def whole(value: Any, option: str) -> int:
    """A dataset option's whole-number value (``--data-option NAME=42``), or a DataError saying what is expected."""
    try:
        if isinstance(value, bool) or int(value) != float(value):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise DataError(
            f"--data-option {option}={value}: expected a whole number, e.g. --data-option {option}=42."
        ) from None


# Options the host applies to every dataset after it loads (not passed to the Dataset class).
HOST_OPTIONS = ("train_fraction", "train_fraction_seed")
DEFAULT_FRACTION_SEED = 42  # like the image-text split seed: independent of the training seeds


def dataset_options(dataset_cls: type[Dataset], options: Mapping[str, Any], *, host: bool = True) -> dict[str, Any]:
    """``options`` checked against the dataset class's keyword arguments (and, with `host`, the options the host
    applies to any dataset, `HOST_OPTIONS`); an unknown name is a one-line error listing what the dataset accepts."""
    parameters = inspect.signature(dataset_cls).parameters.items()
    accepted = [name for name, p in parameters if p.kind == p.KEYWORD_ONLY and name != "verify"]
    accepted += list(HOST_OPTIONS) if host else []
    if unknown := sorted(set(options) - set(accepted)):
        raise RequestError(
            f"--data-option {unknown[0]}: {dataset_cls.name} has no option {', '.join(unknown)}; "
            f"it accepts: {', '.join(accepted)}."
        )
    return dict(options)


def host_fraction(options: dict[str, Any]) -> tuple[float, int] | None:
    """(fraction, seed) of ``train_fraction=F [train_fraction_seed=N]``, checked; None for all of the train split
    (``train_fraction=1`` is dropped from `options`, so it is the same row as no option)."""
    if "train_fraction" not in options:
        if "train_fraction_seed" in options:
            raise RequestError(
                "--data-option train_fraction_seed draws the samples of train_fraction; give train_fraction too."
            )
        return None
    fraction = options["train_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
        raise RequestError(
            f"--data-option train_fraction={fraction}: expected a number in (0, 1], e.g. train_fraction=0.1."
        )
    seed = whole(options.get("train_fraction_seed", DEFAULT_FRACTION_SEED), "train_fraction_seed")
    if fraction == 1:
        options.pop("train_fraction")
        options.pop("train_fraction_seed", None)
        return None
    return float(fraction), seed
