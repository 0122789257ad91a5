"""Hyper-parameters as a run uses them: resolved once, read-only, each value with where it came from, and every
value checked against what the component that takes it declares, before any data loads.

A method's hyper-parameters have sections: ``train`` (see `msabench.settings`), one per modality (its encoder's
keyword arguments), ``fusion`` and ``objective``. They are resolved in layers, each recorded as a value's source:

- ``method``: the method's registered defaults;
- ``dataset:<name>``: the paper's values for that dataset (the method's ``overrides``);
- ``stage:<method>``: for an encoder a multi-stage method starts from an earlier run, that run's settings for it;
- ``user``: ``--set SECTION.KEY=VALUE`` (or ``sets=`` in the Python API);
- ``tuned``: values a sweep chose.

A component declares what each argument takes in its constructor's signature: the annotation (``int``, ``float``,
``bool``, ``str``, a ``Literal``, a union with ``None``) and, for a range, ``Annotated[float, Range(0, 1)]``.
Whole-number arguments whose default is positive are sizes or counts (at least 1); float arguments are finite, and
those named ``dropout`` / ``*_dropout`` / ``p`` are probabilities in [0, 1); a ``Sequence[int]`` (layer widths) is a
list whose elements follow the same rules.
"""

from __future__ import annotations

import collections.abc
import copy
import inspect
import json
import math
import types
import typing
from collections.abc import Iterator, Mapping, ValuesView
from dataclasses import dataclass
from typing import Any

from msabench.errors import CatalogError


@dataclass(frozen=True)
class Range:
    """A numeric argument's range, declared in a constructor signature:
    ``Annotated[float, Range(0, 1, high_open=True)]``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.high_open and value == self.high))

    def __str__(self) -> str:
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        opening = "(" if self.low_open or self.low is None else "["
        closing = ")" if self.high_open or self.high is None else "]"
        return f"{opening}{low}, {high}{closing}"


PROBABILITY = Range(0, 1, high_open=True)


@dataclass(frozen=True)
class Value:
    """One hyper-parameter value and where it came from (``method``, ``dataset:<name>``, ``user``, ...)."""

    value: Any
    source: str


class Hparams(Mapping[str, Mapping[str, Any]]):
    """Section -> name -> value, read-only; `source` says where a value came from, `to_dict` gives a plain copy."""

    def __init__(self, sections: Mapping[str, Mapping[str, Value]] | None = None):
        self._sections = {
            section: {key: Value(copy.deepcopy(v.value), v.source) for key, v in values.items()}
            for section, values in (sections or {}).items()
        }

    @classmethod
    def layered(cls, *layers: tuple[str, Mapping[str, Mapping[str, Any]]]) -> Hparams:
        """Merge `(source, sections)` layers in order: a later value replaces an earlier one (nested mappings such as
        ``train.lr_groups`` are merged key by key) and becomes that value's source."""
        sections: dict[str, dict[str, Value]] = {}
        for source, values in layers:
            for section, items in values.items():
                if not isinstance(items, Mapping):
                    raise CatalogError(f"hyper-parameter section {section!r} must map names to values, not {items!r}.")
                target = sections.setdefault(section, {})
                for key, value in items.items():
                    old = target.get(key)
                    if old is not None and isinstance(old.value, Mapping) and isinstance(value, Mapping):
                        value = _merged(old.value, value)
                    target[key] = Value(copy.deepcopy(value), source)
        return cls(sections)

    def __getitem__(self, section: str) -> Mapping[str, Any]:
        return types.MappingProxyType({key: v.value for key, v in self._sections[section].items()})

    def __iter__(self) -> Iterator[str]:
        return iter(self._sections)

    def __len__(self) -> int:
        return len(self._sections)

    def __repr__(self) -> str:
        return f"Hparams({json.dumps(self.to_dict(), default=str, sort_keys=True)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Hparams) and self._sections == other._sections

    __hash__ = None  # type: ignore[assignment]

    @typing.overload
    def values(self) -> ValuesView[Mapping[str, Any]]: ...

    @typing.overload
    def values(self, section: str) -> dict[str, Value]: ...

    def values(self, section: str | None = None) -> ValuesView[Mapping[str, Any]] | dict[str, Value]:
        """A section's values with their sources; without a section, the sections (as any Mapping's `values()`)."""
        if section is None:
            return super().values()
        return {key: Value(copy.deepcopy(v.value), v.source) for key, v in self._sections[section].items()}

    def source(self, section: str, key: str) -> str:
        return self._sections[section][key].source

    def sources(self) -> dict[str, str]:
        """``"section.key"`` -> source, for every value."""
        return {f"{s}.{k}": v.source for s, values in self._sections.items() for k, v in values.items()}

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """A plain, deep copy: what components are built with and results record."""
        return {s: {k: copy.deepcopy(v.value) for k, v in values.items()} for s, values in self._sections.items()}

    def with_values(self, source: str, sections: Mapping[str, Mapping[str, Any]]) -> Hparams:
        """These hyper-parameters with `sections` laid over them as `source`."""
        base = {s: dict(values) for s, values in self._sections.items()}
        merged = Hparams.layered(("", {}), (source, sections))
        for section, values in merged._sections.items():
            target = base.setdefault(section, {})
            for key, value in values.items():
                old = target.get(key)
                if old is not None and isinstance(old.value, Mapping) and isinstance(value.value, Mapping):
                    value = Value(_merged(old.value, value.value), source)
                target[key] = value
        return Hparams(base)


def _merged(base: Mapping[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in updates.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# -- what a constructor declares -------------------------------------------------------------------


def check_arguments(cls: type, what: str, section: str, positional: int, values: Mapping[str, Any]) -> None:
    """The names in `values` are keyword arguments of ``cls`` (after `positional` arguments), and each value has
    the declared type and lies in the declared range; else a one-line CatalogError naming the setting and the fix."""
    signature = inspect.signature(cls)
    try:
        signature.bind_partial(*([None] * positional), **values)
    except TypeError as error:
        accepted = [p for p in list(signature.parameters)[positional:] if p not in ("args", "kwargs", "hparams")]
        raise CatalogError(
            f"{what} cannot take the hyper-parameters of section {section!r}: {error}. "
            f"It accepts: {', '.join(accepted) or 'none'}."
        ) from None
    hints = _hints(cls)
    for name, value in values.items():
        parameter = signature.parameters.get(name)
        if parameter is None or name not in hints:
            continue
        if problem := _problem(name, value, hints[name], parameter.default):
            raise CatalogError(
                f"{what}: {section}.{name} must be {problem}; got {json.dumps(value, default=str)}. "
                f"Set it with --set {section}.{name}=VALUE."
            )


def declared(cls: type) -> dict[str, tuple[Any, Any]]:
    """Each keyword argument's (annotation, default) as the constructor declares them (for tests and docs)."""
    hints = _hints(cls)
    return {
        name: (hints[name], parameter.default)
        for name, parameter in inspect.signature(cls).parameters.items()
        if name in hints
    }


def _hints(cls: type[Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__, include_extras=True)
    except Exception:  # an annotation that does not resolve: its names are checked, not its values
        return {}


def _problem(name: str, value: Any, hint: Any, default: Any) -> str | None:
    """What `value` should be, when it is not what `hint` declares; None when it is."""
    ranges = []
    if typing.get_origin(hint) is typing.Annotated:
        hint, *extras = typing.get_args(hint)
        ranges = [extra for extra in extras if isinstance(extra, Range)]
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None:
        return None if type(None) in options or default is None else "a value (not null)"
    kinds = [option for option in options if option is not type(None)]
    problems = []
    for kind in kinds:
        problem = _check_one(name, value, kind, default, ranges)
        if problem is None:
            return None
        problems.append(problem)
    return " or ".join(problems) if problems else None


def _check_one(name: str, value: Any, kind: Any, default: Any, ranges: list[Range]) -> str | None:
    if typing.get_origin(kind) is typing.Literal:
        choices = typing.get_args(kind)
        return None if value in choices else f"one of {', '.join(map(str, choices))}"
    if kind is bool:
        return None if isinstance(value, bool) else "true or false"
    if kind is int:
        return _check_whole(value, default, ranges)
    if kind is float:
        return _check_number(name, value, ranges)
    if kind is str:
        return None if isinstance(value, str) else "text"
    if typing.get_origin(kind) in (list, tuple, collections.abc.Sequence):
        return _check_list(name, value, kind, default, ranges)
    return None  # mappings and anything else: the constructor checks them


def _check_whole(value: Any, default: Any, ranges: list[Range]) -> str | None:
    """An `int` argument: a whole number, in the declared ranges (a positive default: a size or count, at least 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        return "a whole number"
    low = 1 if isinstance(default, int) and not isinstance(default, bool) and default >= 1 else None
    for declared_range in ranges or ([Range(low)] if low is not None else []):
        if value not in declared_range:
            return f"a whole number in {declared_range}"
    return None


def _check_number(name: str, value: Any, ranges: list[Range]) -> str | None:
    """A `float` argument: finite, in the declared ranges (a dropout or `p`: a probability)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "a finite number"
    probability = name == "p" or name == "dropout" or name.endswith("_dropout") or name.startswith("dropout_")
    for declared_range in ranges or ([PROBABILITY] if probability else []):
        if value not in declared_range:
            return f"a number in {declared_range}"
    return None


def _check_list(name: str, value: Any, kind: Any, default: Any, ranges: list[Range]) -> str | None:
    """A `Sequence[...]` argument: a list whose elements follow their own declaration (checked like `_check_one`)."""
    items = typing.get_args(kind)
    if isinstance(value, str) or not isinstance(value, list | tuple):
        return "a list"
    item = items[0] if items else None
    example = default[0] if isinstance(default, list | tuple) and default else None
    for element in value if item is not None and item is not Ellipsis else ():
        if problem := _check_one(name, element, item, example, ranges):
            return f"a list of {problem.removeprefix('a ').removeprefix('an ')}s"
    return None
