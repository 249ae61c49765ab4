"""Model objects to JSON and back, for the admin state kept in SQLite.

The app model is made of frozen dataclasses whose fields are text, numbers, enums, tuples,
mappings, optional values and other such dataclasses. One generic codec covers them all, driven by
the field annotations, so a route snapshot (a deployment) survives a restart exactly as it was
deployed, and a field added to the model later needs no change here.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, Union

T = TypeVar("T")


def encode(value: Any) -> Any:
    """A JSON-ready form of a model object (dataclass, enum, tuple, mapping or scalar)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [encode(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): encode(item) for key, item in value.items()}
    return value


def decode(cls: type[T], data: Any) -> T:
    """Rebuild a dataclass of type `cls` from `encode`'s output; unknown keys are ignored (a
    record written by a newer fogbank) and missing ones take the field's default."""
    return typing.cast(T, _decode(cls, data))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(hint: Any, data: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if data is None:
            return None
        return _decode(options[0], data) if len(options) == 1 else data
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_decode(item, entry) for entry in data)
    if origin is not None and issubclass(origin, Mapping):
        value_hint = typing.get_args(hint)[1]
        return {key: _decode(value_hint, entry) for key, entry in data.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = _hints(hint)
        names = {f.name for f in dataclasses.fields(hint) if f.init}
        return hint(**{k: _decode(hints[k], v) for k, v in data.items() if k in names})
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(data)
    if hint is float and isinstance(data, int):
        return float(data)
    return data
