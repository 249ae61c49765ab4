"""Merge a function's layers into one directory, as Lambda extracts them into `/opt`."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from fogbank.model import Layer


def layer_set_key(layers: Sequence[Layer]) -> str:
    """A stable name for an ordered set of layers."""
    digest = hashlib.sha256("\0".join(str(ly.content_dir.resolve()) for ly in layers).encode())
    return digest.hexdigest()[:16]


def merge_layers(layers: Sequence[Layer], root: Path) -> Path | None:
    """Build (once) a directory of symlinks holding every layer's files, a later layer winning.

    Lambda unpacks layers into `/opt` in order, so a file in layer 2 replaces the same path from
    layer 1 while the rest of both survive. Symlinking file by file reproduces exactly that merge
    without copying, and the code still runs from the layer's own directory.
    """
    if not layers:
        return None
    target = root / layer_set_key(layers)
    if target.is_dir():
        return target
    staging = target.with_name(target.name + f".{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for layer in layers:
        base = layer.content_dir.resolve()
        for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
            rel = Path(dirpath).relative_to(base)
            dest_dir = staging / rel
            dest_dir.mkdir(parents=True, exist_ok=True)
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in filenames:
                dest = dest_dir / name
                if dest.is_symlink() or dest.exists():
                    dest.unlink()
                dest.symlink_to(Path(dirpath) / name)
    try:
        staging.rename(target)
    except OSError:
        # Another process merged the same set first; theirs is identical.
        shutil.rmtree(staging, ignore_errors=True)
    return target


def python_paths(layer_root: Path | None, python_minor: str) -> list[str]:
    """The layer entries of `sys.path`, in Lambda's order."""
    if layer_root is None:
        return []
    return [
        str(layer_root / "python" / "lib" / f"python{python_minor}" / "site-packages"),
        str(layer_root / "python"),
    ]
