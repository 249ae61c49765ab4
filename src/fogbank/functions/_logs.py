"""Function logs: the START/END/REPORT framing of each invocation and a file per function."""

from __future__ import annotations

import asyncio
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
    """Appends each function's log to `<logs_dir>/<function>.log`, which `fogbank logs` reads.

    Under an event loop, writes are gathered and flushed every `FLUSH_EVERY_S` (or at 64 KB), so
    a busy function costs one write a tick instead of one per invocation; `flush()` and `close()`
    write everything at once.
    """

    FLUSH_EVERY_S = 0.05
    FLUSH_BYTES = 64 * 1024

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = logs_dir
        self._files: dict[str, BinaryIO] = {}
        self._pending: dict[str, list[bytes]] = {}
        self._pending_bytes = 0
        self._timer: asyncio.TimerHandle | None = None

    def path(self, function_name: str) -> Path:
        return self.logs_dir / f"{_safe_name(function_name)}.log"

    def append(self, function_name: str, text: bytes) -> None:
        self._pending.setdefault(function_name, []).append(text)
        self._pending_bytes += len(text)
        if self._pending_bytes >= self.FLUSH_BYTES:
            self.flush()
            return
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self.FLUSH_EVERY_S, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending, self._pending_bytes = self._pending, {}, 0
        for function_name, parts in pending.items():
            fh = self._files.get(function_name)
            if fh is None:
                self.logs_dir.mkdir(parents=True, exist_ok=True)
                fh = self._files[function_name] = open(  # noqa: SIM115 (kept open on purpose)
                    self.path(function_name), "ab", buffering=0
                )
            fh.write(b"".join(parts))

    def close(self) -> None:
        self.flush()
        for fh in self._files.values():
            fh.close()
        self._files.clear()
