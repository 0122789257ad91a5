"""Dataset options (``--data-option KEY=VALUE``) coerced to the values a dataset takes, with one-line errors."""

from __future__ import annotations

from typing import Any

from msabench.errors import DataError


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
