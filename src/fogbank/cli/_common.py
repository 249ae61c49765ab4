"""Pieces every command shares: finding the template, building the config, printing errors."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from rich.console import Console

from fogbank._errors import ConfigError, FogbankError
from fogbank.model import App, load_template

TEMPLATE_NAMES = ("template.yaml", "template.yml", "template.json")
EXAMPLE_TEMPLATE = Path(__file__).resolve().parent.parent / "examples" / "demo" / "template.yaml"

err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """One clear line on stderr and a non-zero exit; never a traceback."""
    err.print(f"[bold red]error:[/] {message}")
    sys.exit(code)


def find_template(given: Path | None) -> Path:
    """The template to serve: `-t`, else one in the current directory, else the bundled demo."""
    if given is not None:
        if not given.is_file():
            fail(f"template {given} does not exist")
        return given
    for name in TEMPLATE_NAMES:
        candidate = Path.cwd() / name
        if candidate.is_file():
            return candidate
    return EXAMPLE_TEMPLATE


def parse_pairs(values: Sequence[str], option: str) -> dict[str, str]:
    """`K=V` arguments (several per value allowed, space separated) into a dict."""
    out: dict[str, str] = {}
    for value in values:
        for item in value.split():
            key, sep, val = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"{option}: expected KEY=VALUE, got {item!r}")
            out[key] = val
    return out


def load_app(template: Path, overrides: dict[str, str]) -> App:
    try:
        return load_template(template, parameter_overrides=overrides)
    except FogbankError as exc:
        fail(str(exc))
