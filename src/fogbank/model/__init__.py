"""The app model: immutable descriptions of what is deployed, and the loaders that build them."""

from fogbank.model._app import DEFAULT_ACCOUNT, DEFAULT_REGION, App, Identity
from fogbank.model._function import (
    CUSTOM_RUNTIMES,
    LATEST,
    PYTHON_RUNTIMES,
    SUPPORTED_RUNTIMES,
    Alias,
    Destination,
    EventInvokeConfig,
    Function,
    FunctionConfig,
    Layer,
    TenancyMode,
)
from fogbank.model._template import load_template

__all__ = [
    "CUSTOM_RUNTIMES",
    "DEFAULT_ACCOUNT",
    "DEFAULT_REGION",
    "LATEST",
    "PYTHON_RUNTIMES",
    "SUPPORTED_RUNTIMES",
    "Alias",
    "App",
    "Destination",
    "EventInvokeConfig",
    "Function",
    "FunctionConfig",
    "Identity",
    "Layer",
    "TenancyMode",
    "load_template",
]
