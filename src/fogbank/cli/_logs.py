"""`fogbank logs`: print a function's log, optionally following it as it grows."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fogbank.functions._logs import LogStore

_POLL_S = 0.2


def run(logs_dir: Path, function: str, follow: bool) -> int:
    path = LogStore(logs_dir).path(function)
    out = sys.stdout.buffer
    if not path.exists() and not follow:
        sys.stderr.write(f"error: no logs for {function} in {logs_dir}\n")
        return 2
    offset = 0
    try:
        while True:
            if path.exists():
                with path.open("rb") as fh:
                    fh.seek(offset)
                    data = fh.read()
                offset += len(data)
                if data:
                    out.write(data)
                    out.flush()
            if not follow:
                return 0
            time.sleep(_POLL_S)
    except KeyboardInterrupt:
        return 0
