"""The statistics' JSON form in the database: frozen dataclasses to plain JSON and back, losslessly.

Decimals travel as strings (every digit kept), durations as seconds, times as ISO 8601, and non-finite floats as
"NaN"/"Infinity"/"-Infinity" strings (PostgreSQL's JSON type refuses the bare tokens Python writes). Decoding is
driven by the dataclasses' own type hints, so a field added to a statistics type needs no change here.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class StatisticsCodecError(ValueError):
    """A stored payload does not fit the statistics types (written by another version of the code)."""


def encode(value: Any) -> Any:
    """A JSON-ready form of `value` (dataclasses, Decimals, times, durations, mappings, sequences)."""
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [encode(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__} as statistics JSON")


def decode(cls: type[T], data: Any) -> T:
    """The `cls` dataclass that `encode` turned into `data`; StatisticsCodecError when it does not fit."""
    try:
        return typing.cast(T, _decode(cls, data, cls.__name__))
    except (TypeError, ValueError, ArithmeticError, KeyError) as e:
        if isinstance(e, StatisticsCodecError):
            raise
        raise StatisticsCodecError(f"stored statistics do not fit {cls.__name__}: {e}") from e


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(hint: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if data is None:
            if type(None) in options:
                return None
            raise StatisticsCodecError(f"{where}: null where a value is required")
        present = [o for o in options if o is not type(None)]
        if len(present) != 1:  # the statistics types only use `X | None`
            raise StatisticsCodecError(f"{where}: no decoding for {hint!r}")
        return _decode(present[0], data, where)
    if data is None:
        raise StatisticsCodecError(f"{where}: null where a value is required")
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(data, Mapping):
            raise StatisticsCodecError(f"{where}: expected an object")
        hints = _hints(hint)
        values = {
            f.name: _decode(hints[f.name], data[f.name], f"{where}.{f.name}")
            for f in dataclasses.fields(hint)
            if f.name in data or (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
        }
        return hint(**values)
    if origin is tuple:
        args = typing.get_args(hint)
        return tuple(_decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(_list(data, where)))
    if origin in (list, Sequence):
        (arg,) = typing.get_args(hint)
        return tuple(_decode(arg, item, f"{where}[{i}]") for i, item in enumerate(_list(data, where)))
    if origin in (dict, Mapping):
        key, value = typing.get_args(hint)
        if not isinstance(data, Mapping):
            raise StatisticsCodecError(f"{where}: expected an object")
        return {_decode(key, k, where): _decode(value, v, f"{where}.{k}") for k, v in data.items()}
    return _scalar(hint, data, where)


def _list(data: Any, where: str) -> list[Any]:
    if not isinstance(data, list):
        raise StatisticsCodecError(f"{where}: expected a list")
    return data


def _scalar(hint: Any, data: Any, where: str) -> Any:
    if hint is float:
        if isinstance(data, str) and data in _NON_FINITE:
            return _NON_FINITE[data]
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise StatisticsCodecError(f"{where}: expected a number")
        return float(data)
    if hint is bool or hint is int or hint is str:
        if type(data) is not hint:
            raise StatisticsCodecError(f"{where}: expected {hint.__name__}")
        return data
    if hint is Decimal:
        if not isinstance(data, str):
            raise StatisticsCodecError(f"{where}: expected a decimal string")
        return Decimal(data)
    if hint is timedelta:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise StatisticsCodecError(f"{where}: expected seconds")
        return timedelta(seconds=data)
    if hint is datetime:
        return datetime.fromisoformat(data)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(data)
    raise StatisticsCodecError(f"{where}: no decoding for {hint!r}")
