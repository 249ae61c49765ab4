"""Layers fogbank ships itself, which a function names by ARN without the template declaring them.

`Layers: [!Sub "arn:aws:lambda:${AWS::Region}:${AWS::AccountId}:layer:fogbank-discovery:1"]`
gives a function the discovery client (`import fogbank_discovery`). The ARN may carry the node's
region and account or fogbank's defaults, so a template written for one still loads on the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fogbank.model._app import Identity
from fogbank.model._function import PYTHON_RUNTIMES, Layer

_LAYERS_DIR = Path(__file__).resolve().parent.parent / "layers"

BUILTIN_LAYERS: Mapping[tuple[str, int], Path] = {
    ("fogbank-discovery", 1): _LAYERS_DIR / "discovery",
}
"""(layer name, version) -> the layer's content directory, inside the fogbank package."""


def builtin_layers(identity: Identity) -> dict[str, Layer]:
    """Every built-in layer by each ARN that names it (the node's account and the default one)."""
    layers: dict[str, Layer] = {}
    for (name, version), content in BUILTIN_LAYERS.items():
        for owner in (identity, Identity()):
            arn = owner.layer_arn(name, version)
            layers[arn] = Layer(name, content, version, arn, compatible_runtimes=PYTHON_RUNTIMES)
    return layers
