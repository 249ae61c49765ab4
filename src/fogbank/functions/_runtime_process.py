"""The process side of an execution environment: its output, its memory, its way of ending."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

_OUTPUT_CAP = 16 * 1024 * 1024
# A pipe holds 64 KB, so a few reads take everything written up to now; the bound keeps a process
# that writes without pause from holding the event loop.
_MAX_READS = 32

# How Go's os/exec, and so Lambda, names the signal that ended a process.
_SIGNAL_TEXT = {
    1: "hangup",
    2: "interrupt",
    3: "quit",
    4: "illegal instruction",
    5: "trace/breakpoint trap",
    6: "aborted",
    7: "bus error",
    8: "floating point exception",
    9: "killed",
    10: "user defined signal 1",
    11: "segmentation fault",
    12: "user defined signal 2",
    13: "broken pipe",
    14: "alarm clock",
    15: "terminated",
    16: "stack fault",
    24: "CPU time limit exceeded",
    25: "file size limit exceeded",
    26: "virtual timer expired",
    27: "profiling timer expired",
    29: "I/O possible",
    30: "power failure",
    31: "bad system call",
}


def describe_exit(returncode: int) -> str:
    """Lambda's words for a runtime process that ended, as in `Runtime.ExitError` messages."""
    if returncode == 0:
        return "Runtime exited without providing a reason"
    if returncode > 0:
        return f"Runtime exited with error: exit status {returncode}"
    name = _SIGNAL_TEXT.get(-returncode, f"signal {-returncode}")
    return f"Runtime exited with error: signal: {name}"


def _read_memory(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in kB, or None once the process is gone (or on a system without /proc)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    if len(found) < 2:
        return None  # a zombie has no memory lines
    return found["VmRSS"], found["VmHWM"]


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.scandir(f"/proc/{pid}/task"):
            with open(f"{task.path}/children") as listing:
                found.extend(int(child) for child in listing.read().split())
    except OSError:
        pass  # gone meanwhile, or a kernel without the children file: count what we saw
    return found


def tree_memory(pid: int) -> tuple[int, int] | None:
    """(RSS of the process and all its descendants, the peak seen) in kB; None once it is gone.

    A bootstrap script's children count too, as they do in a Lambda sandbox's memory cgroup.
    """
    own = _read_memory(pid)
    if own is None:
        return None
    rss, peak = own
    seen, pending = {pid}, _children(pid)
    while pending:
        child = pending.pop()
        if child in seen:
            continue
        seen.add(child)
        usage = _read_memory(child)
        if usage is not None:
            rss += usage[0]
        pending.extend(_children(child))
    return rss, max(peak, rss)


class OutputPipe:
    """One pipe for a process's stdout and stderr, so their lines stay in the order written."""

    def __init__(self) -> None:
        self._read_fd, self.write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        self._buffer = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open = True

    def start_reading(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._read_fd, self._read_available)

    def close_write_end(self) -> None:
        # The child has its own copy; ours must go or the pipe never reports end of file.
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def _read_available(self) -> None:
        for _ in range(_MAX_READS):
            if not self._open:
                return
            try:
                data = os.read(self._read_fd, 65536)
            except BlockingIOError:
                return
            if not data:
                self.close()
                return
            self._buffer += data
        if len(self._buffer) > _OUTPUT_CAP:
            del self._buffer[: len(self._buffer) - _OUTPUT_CAP]  # keep the newest, as log tails do

    def take(self) -> bytes:
        """Everything written so far. Reads synchronously: a process writes its output before it
        posts its response, so all of it is in the pipe by the time the response has arrived."""
        self._read_available()
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        if self._loop is not None:
            self._loop.remove_reader(self._read_fd)
        os.close(self._read_fd)
        self.close_write_end()
