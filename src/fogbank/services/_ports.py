"""Ports for service instances, and the pid files that let a node clean up after a hard crash."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
from collections.abc import Iterable
from pathlib import Path

# Words with which servers in most languages say that the port they were given is taken.
_IN_USE = re.compile(rb"address already in use|eaddrinuse|port is already allocated", re.I)


class PortAllocator:
    """Hands out free TCP ports, one per instance, never the same one twice while it is held.

    A port is found by binding port 0 and closing the socket; the kernel may offer the same port
    again right away, so the ports handed out are remembered until they are released.
    """

    ATTEMPTS = 64

    def __init__(self, host: str) -> None:
        self.host = host
        self._held: set[int] = set()

    def allocate(self) -> int:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(self.ATTEMPTS):
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.bind((self.host, 0))
                port = int(sock.getsockname()[1])
            if port not in self._held:
                self._held.add(port)
                return port
        raise OSError(f"no free port on {self.host} after {self.ATTEMPTS} attempts")

    def release(self, port: int) -> None:
        self._held.discard(port)

    @property
    def held(self) -> frozenset[int]:
        return frozenset(self._held)


def port_in_use_line(lines: Iterable[bytes]) -> bytes | None:
    """The line of a process's last output that says a port it wanted was taken, if any."""
    return next((line for line in lines if _IN_USE.search(line)), None)


def _start_time(pid: int, *, running: bool = False) -> str | None:
    """The kernel's start time of a process (field 22 of /proc/PID/stat), which tells a process
    from a later one that was given the same pid; None when it is gone, when there is no /proc,
    or (with `running`) when it is a zombie: a node killed a moment ago is one until reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) <= 19 or (running and fields[0] == "Z"):
        return None
    return fields[19]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_runs(pid: int, started: str) -> bool:
    if started == "-":  # written without /proc: all there is to go by is the pid
        return _alive(pid)
    return _start_time(pid, running=True) == started


class PidFiles:
    """One file per running instance under the node's run directory: the owner's pid and start
    time, then the instance's process group and its start time.

    Instances run in sessions of their own so that a stop can reach all their children; the flip
    side is that they outlive a node killed with SIGKILL. The next node started on the same run
    directory kills what such a node left behind (`reap`), checking the start time so that a
    recycled pid is never hit.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def _path(self, instance_id: str) -> Path:
        return self.run_dir / f"{instance_id}.pid"

    def write(self, instance_id: str, pid: int) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        owner = os.getpid()
        line = f"{owner} {_start_time(owner) or '-'} {pid} {_start_time(pid) or '-'}\n"
        self._path(instance_id).write_text(line)

    def remove(self, instance_id: str) -> None:
        self._path(instance_id).unlink(missing_ok=True)

    def reap(self) -> list[int]:
        """Kill the process groups that a node which is no longer running left behind; returns
        their ids. Files of a live node (another one in this process, say) are left alone."""
        killed: list[int] = []
        if not self.run_dir.is_dir():
            return killed
        for path in self.run_dir.glob("*.pid"):
            try:
                owner, owner_started, pgid, started = path.read_text().split()
                owner_pid, group = int(owner), int(pgid)
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
                continue
            if _owner_runs(owner_pid, owner_started):
                continue  # a live node's instance: that node stops it
            if started != "-" and _start_time(group) == started:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(group, signal.SIGKILL)
                    killed.append(group)
            path.unlink(missing_ok=True)
        return killed
