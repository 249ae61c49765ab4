"""Real nodes with a data plane, for gateway tests over real HTTP."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fogbank.config import NodeConfig

from ..conftest import NodeThread
from ..functions.conftest import write_code

__all__ = ["NodeThread", "write_code"]


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fogbank-gw-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def node_config(root: Path) -> NodeConfig:
    return NodeConfig(port=0, control_port=0, state_dir=root / "state")
