"""Reading one template resource's properties with checks that name the file, resource and property."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fogbank._errors import TemplateError
from fogbank.model._intrinsics import text


@dataclass
class Props:
    """One resource's resolved properties, read with checks that name the resource and property."""

    file: str
    logical_id: str
    values: Mapping[str, Any]

    def error(self, prop: str, message: str) -> TemplateError:
        return TemplateError(message, file=self.file, resource=self.logical_id, prop=prop)

    def nested(self, *keys: str) -> Any:
        node: Any = self.values
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    def text(self, *keys: str, default: str | None = None) -> str:
        value = self.nested(*keys)
        if value is None and default is not None:
            return default
        try:
            return text(value)
        except TypeError:
            raise self.error(".".join(keys), f"expected a string, got {value!r}") from None

    def strings(self, *keys: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.nested(*keys)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.error(".".join(keys), f"expected a list of strings, got {value!r}")
        return tuple(value)

    def number(self, *keys: str, default: int, low: int, high: int, unit: str = "") -> int:
        value, prop = self.nested(*keys), ".".join(keys)
        if value is None:
            return default
        try:
            number = int(text(value))
        except (TypeError, ValueError):
            raise self.error(prop, f"{prop} must be a whole number, got {value!r}") from None
        if not low <= number <= high:
            raise self.error(prop, f"{prop} {number} is outside {low}-{high}{unit}")
        return number
