"""One service instance: a process in a session of its own, its environment, output and end."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import os
import re
import signal
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from fogbank.model import ServiceSpec
from fogbank.services._ports import port_in_use_line

# Variables of the host an instance keeps: the search path, locale, home and user.
_INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
_PORT_REF = re.compile(r"\$\{PORT\}|\$PORT(?![A-Za-z0-9_])")
# A line longer than this is logged in pieces (a process printing without newlines can't grow the
# buffer without bound).
_MAX_LINE = 64 * 1024
_TAIL_LINES = 20
# After the leader exits, its output is read to the end for at most this long (the group has been
# killed, so the pipe closes at once unless something outside the group holds it).
_DRAIN_S = 2.0


class InstanceState(enum.Enum):
    """Where an instance is in its life, with the names of ECS's task `lastStatus`."""

    PENDING = "PENDING"
    """Being started."""
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    """Sent SIGTERM (SIGKILL follows after the stop timeout)."""
    STOPPED = "STOPPED"


class LaunchError(Exception):
    """An instance could not be started at all (no such command or directory, and the like)."""


def new_instance_id() -> str:
    """An ECS-style task id: 32 lower-case hex characters."""
    return uuid.uuid4().hex


def describe_exit(returncode: int) -> str:
    """`exit status 3`, `killed by SIGKILL`."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"killed by {name}"


def command_for(command: tuple[str, ...], port: int) -> list[str]:
    """The argv with `${PORT}` and `$PORT` replaced by the instance's port."""
    return [_PORT_REF.sub(str(port), arg) for arg in command]


def environment_for(spec: ServiceSpec, *, instance_id: str, port: int, zone: str) -> dict[str, str]:
    """An instance's whole environment: a few host variables, the service's, then fogbank's.

    The directory of fogbank's own interpreter comes first on the search path, as if its virtual
    environment were activated: `python` is the interpreter fogbank runs on, and tools installed
    beside it (uvicorn, say) are found.
    """
    env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
    own_bin = str(Path(sys.executable).parent)
    path = env.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(os.pathsep)
    env["PATH"] = os.pathsep.join([own_bin, *(p for p in path if p != own_bin)])
    # Python services print line by line, so `fogbank logs` shows output as it is written.
    env["PYTHONUNBUFFERED"] = "1"
    env.update(spec.environment)
    env.update(
        {
            "PORT": str(port),
            "FOGBANK_INSTANCE_ID": instance_id,
            "FOGBANK_SERVICE": spec.name,
            "AVAILABILITY_ZONE": zone,
        }
    )
    return env


class InstanceProcess:
    """The process of one instance.

    It runs in a new session (so in a process group of its own): a stop signals the whole group,
    and once the leader has exited whatever it left in the group is killed, so an instance never
    leaves orphans behind. stdout and stderr share one pipe and reach `on_line` line by line.
    """

    def __init__(
        self,
        spec: ServiceSpec,
        *,
        instance_id: str,
        port: int,
        env: Mapping[str, str],
        on_line: Callable[[bytes], None],
    ) -> None:
        self.spec = spec
        self.id = instance_id
        self.port = port
        self.env = dict(env)
        self.state = InstanceState.PENDING
        self.tail: collections.deque[bytes] = collections.deque(maxlen=_TAIL_LINES)
        """The last lines of output, for the reason given when the instance ends."""
        self._on_line = on_line
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def revision(self) -> str:
        return self.spec.revision

    async def spawn(self) -> None:
        """Start the process; raises `LaunchError` with a one-line reason when it cannot."""
        argv = command_for(self.spec.command, self.port)
        if not argv or not argv[0]:
            raise LaunchError("the service has no command")
        cwd = self.spec.working_dir
        if not cwd.is_dir():
            raise LaunchError(f"working directory {cwd} does not exist")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise LaunchError(f"command not found: {argv[0]}") from exc
        except PermissionError as exc:
            raise LaunchError(f"permission denied: {argv[0]}") from exc
        except OSError as exc:
            raise LaunchError(f"cannot start {argv[0]}: {exc.strerror or exc}") from exc
        self.state = InstanceState.RUNNING
        assert self._proc.stdout is not None
        self._reader = asyncio.create_task(self._read(self._proc.stdout))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        pending = b""
        while chunk := await stream.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            while len(pending) > _MAX_LINE:
                lines.append(pending[:_MAX_LINE])
                pending = pending[_MAX_LINE:]
            for line in lines:
                self._emit(line)
        if pending:
            self._emit(pending)

    def _emit(self, line: bytes) -> None:
        line = line.rstrip(b"\r")
        self.tail.append(line)
        self._on_line(line)

    async def wait(self) -> int:
        """Wait for the leader to exit and return its status (negative: killed by a signal)."""
        assert self._proc is not None
        return await self._proc.wait()

    async def finish(self) -> None:
        """After the leader's exit: kill what is left of its group and read the output to the end."""
        self.signal(signal.SIGKILL)
        if self._reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), _DRAIN_S)
            if not self._reader.done():
                self._reader.cancel()
        self.state = InstanceState.STOPPED

    def exit_reason(self, returncode: int) -> str:
        """Why the instance ended, in one line: its status, and what it said last."""
        reason = describe_exit(returncode)
        # The last thing a process that gives up prints is most often why (a signal says
        # nothing of the kind).
        last = next((line for line in reversed(self.tail) if line.strip()), b"")
        in_use = port_in_use_line(self.tail)
        if in_use is not None:
            reason = f"port already in use ({reason}; it was given $PORT={self.port})"
            last = in_use
        if last and returncode > 0:
            reason += f": {last.decode(errors='replace').strip()[:200]}"
        return reason

    def signal(self, signum: int) -> None:
        """Signal the instance's whole process group (nothing when it has gone)."""
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signum)

    async def terminate(self, timeout_s: float) -> None:
        """SIGTERM to the group, then SIGKILL after `timeout_s` if the leader is still there."""
        self.state = InstanceState.STOPPING
        if self._proc is None or self._proc.returncode is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self._proc.wait()), timeout_s)
        except TimeoutError:
            self.signal(signal.SIGKILL)
            await self._proc.wait()
