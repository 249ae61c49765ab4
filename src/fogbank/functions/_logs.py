"""Function logs: the START/END/REPORT framing of each invocation and a file per function."""

from __future__ import annotations

import datetime
import math
import re
from pathlib import Path
from typing import BinaryIO

from fogbank.functions._types import EnvResult


def _safe_name(function_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", function_name)


def invocation_log(request_id: str, version: str, memory_mb: int, result: EnvResult) -> bytes:
    """The text Lambda writes to CloudWatch for one invocation."""
    duration = result.duration_ms
    report = (
        f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms"
        f"\tBilled Duration: {max(1, math.ceil(duration))} ms"
        f"\tMemory Size: {memory_mb} MB\tMax Memory Used: {result.max_memory_mb} MB"
    )
    if result.init_duration_ms is not None:
        report += f"\tInit Duration: {result.init_duration_ms:.2f} ms"
    parts = [f"START RequestId: {request_id} Version: {version}\n".encode(), result.output]
    if result.output and not result.output.endswith(b"\n"):
        parts.append(b"\n")
    parts.append(f"END RequestId: {request_id}\n{report}\t\n".encode())
    if result.error_type == "Sandbox.Timedout":
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        seconds = duration / 1000.0
        parts.append(f"{stamp} {request_id} Task timed out after {seconds:.2f} seconds\n".encode())
    return b"".join(parts)


class LogStore:
    """Appends each function's log to `<logs_dir>/<function>.log`, which `fogbank logs` reads."""

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = logs_dir
        self._files: dict[str, BinaryIO] = {}

    def path(self, function_name: str) -> Path:
        return self.logs_dir / f"{_safe_name(function_name)}.log"

    def append(self, function_name: str, text: bytes) -> None:
        fh = self._files.get(function_name)
        if fh is None:
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            fh = self._files[function_name] = open(self.path(function_name), "ab", buffering=0)  # noqa: SIM115
        fh.write(text)

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()
