"""The root of fogbank's exception hierarchy."""

from __future__ import annotations


class FogbankError(Exception):
    """Base class of every error fogbank raises on purpose."""


class ConfigError(FogbankError):
    """A command-line argument or configuration value is invalid."""


class TemplateError(FogbankError):
    """A template cannot be loaded; the message names the file, resource and property."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        resource: str | None = None,
        prop: str | None = None,
    ) -> None:
        self.file = file
        self.resource = resource
        self.prop = prop
        self.detail = message
        where = ": ".join(
            part
            for part in (
                file,
                f"resource {resource}" if resource else None,
                f"property {prop}" if prop else None,
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)
