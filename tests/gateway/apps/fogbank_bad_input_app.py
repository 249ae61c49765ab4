"""Handlers for the bad-input tests: an echo of what arrived, and a stream the test paces."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def echo(event: dict[str, Any], context: object) -> dict[str, Any]:
    summary = {
        "path": event.get("rawPath", event.get("path")),
        "pathParameters": event.get("pathParameters"),
        "body": event.get("body"),
        "isBase64Encoded": event.get("isBase64Encoded"),
    }
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(summary),
    }


def ticker(event: dict[str, Any], context: object) -> Iterator[Any]:
    """Streams `tick 0`, then one more tick each time the test creates the next go-file."""
    gate = Path(os.environ["GATE_DIR"])
    yield {"statusCode": 200, "headers": {"content-type": "text/plain"}}
    for n in range(3):
        deadline = time.monotonic() + 10
        while n and not (gate / f"go{n}").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        yield f"tick {n}\n"
