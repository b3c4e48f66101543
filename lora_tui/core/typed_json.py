"""The tolerant reader and writer of the run files' dataclasses (`core.run_files`, whose docstring gives the rules).

`load(cls, data)` builds a dataclass from a JSON object: a value of the field's type sets it (an int where a float
is wanted counts as that float, a bool is never a number, a nested object or a list of objects becomes the field's
dataclass), anything else leaves the default; keys no field knows go to `extra`. `dump(obj)` is the other way.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

_T = TypeVar("_T")


_HINTS: dict[type, dict[str, Any]] = {}
"""Field name -> type, per dataclass read so far."""


def _hints(cls: type) -> dict[str, Any]:
    """Field name -> type of a dataclass, evaluated once."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value has the type a field needs."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if hint is bool or isinstance(value, bool):
        return hint is bool and isinstance(value, bool)
    if hint is int:
        return isinstance(value, int)
    if hint is float:
        return isinstance(value, (int, float)) and (not isinstance(value, int) or abs(value) < 2**1023)
    if hint is str:
        return isinstance(value, str)
    origin = typing.get_origin(hint) or hint
    if origin is dict or is_dataclass(origin):
        return isinstance(value, dict)
    return origin is list and isinstance(value, list)


def _convert(value: Any, hint: Any) -> Any:
    """A fitting JSON value as the field holds it (int -> float, dict -> nested dataclass)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(arg for arg in typing.get_args(hint) if _fits(value, arg))
    if hint is float:
        return float(value)
    if isinstance(hint, type) and is_dataclass(hint):
        return load(hint, value)
    item = (typing.get_args(hint) or (None,))[0] if typing.get_origin(hint) is list else None
    if isinstance(item, type) and is_dataclass(item):  # a list of records: the objects among its items
        return [load(item, v) for v in value if isinstance(v, dict)]
    return value


def load(cls: type[_T], data: Mapping[str, Any]) -> _T:
    """A dataclass from a JSON object: fitting values set their field, unknown keys go to `extra` if it has one."""
    hints = _hints(cls)
    known: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        if key == "extra" or key not in hints:
            extra[key] = value
        elif _fits(value, hints[key]):
            known[key] = _convert(value, hints[key])
    if "extra" in hints:
        known["extra"] = extra
    return cls(**known)


def dump(obj: Any, *, drop_none: bool = False) -> dict[str, Any]:
    """A dataclass as a JSON object: nested dataclasses as objects, `extra` merged in at the top level; with
    `drop_none`, fields left at None are left out (of the records in a list too)."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name == "extra" or (drop_none and value is None):
            continue
        if isinstance(value, list):
            value = [dump(v, drop_none=drop_none) if is_dataclass(v) and not isinstance(v, type) else v for v in value]
        out[f.name] = dump(value) if is_dataclass(value) and not isinstance(value, type) else value
    out.update({k: v for k, v in getattr(obj, "extra", {}).items() if k not in out})
    return out
