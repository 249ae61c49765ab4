"""Instance health: the probes (HTTP, command) and the state each instance's results build up."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import signal
from collections.abc import Mapping
from pathlib import Path

from fogbank.model import HealthCheck, HealthCheckKind
from fogbank.services._instance import describe_exit

# Until its first pass an instance is probed at least this often, so that a service becomes
# discoverable soon after it listens rather than one full (ECS default: 30 s) interval later.
FIRST_PASS_PROBE_S = 1.0
# Checks never come closer together than this, whatever the spec says (an interval of 0 would
# probe in a busy loop).
MIN_INTERVAL_S = 0.05
# The most of a status line (or a command's output) a failure reason quotes.
_REASON_BYTES = 200


class InstanceHealth(enum.Enum):
    """An instance's health, as ECS reports a task's `healthStatus`."""

    UNKNOWN = "UNKNOWN"
    """Not checked yet, or still in its start period: not discoverable as HEALTHY."""
    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"


class HealthChange(enum.Enum):
    """What one check result changed."""

    NONE = "NONE"
    HEALTHY = "HEALTHY"
    """The instance turned HEALTHY."""
    UNHEALTHY = "UNHEALTHY"
    """The instance turned UNHEALTHY."""
    REPLACE = "REPLACE"
    """`retries` consecutive failures: the instance is UNHEALTHY and must be replaced."""


class HealthTracker:
    """The health of one instance, built from its check results (times are passed in, so the
    rules are tested without a clock).

    A new instance is HEALTHY on its first pass; failures before that pass do not count during the
    grace period (the start period, and at least one interval: ECS's first check comes one
    interval after the start). After that one failure makes it UNHEALTHY at once; an UNHEALTHY
    instance needs `healthy_threshold` passes in a row to be HEALTHY again; `retries` failures in a
    row mean it is to be replaced.
    """

    def __init__(self, check: HealthCheck, started: float) -> None:
        self.check = check
        self.health = (
            InstanceHealth.HEALTHY if check.kind is HealthCheckKind.NONE else InstanceHealth.UNKNOWN
        )
        self.healthy_since: float | None = (
            started if self.health is InstanceHealth.HEALTHY else None
        )
        self.passes = 0
        self.failures = 0
        self.reason = ""
        """The last failure's reason."""
        self._passed_once = self.health is InstanceHealth.HEALTHY
        self._grace_until = started + max(check.start_period_s, check.interval_s)

    @property
    def healthy(self) -> bool:
        return self.health is InstanceHealth.HEALTHY

    def next_delay(self) -> float:
        """Seconds until the next probe."""
        interval = max(self.check.interval_s, MIN_INTERVAL_S)
        return interval if self._passed_once else min(interval, FIRST_PASS_PROBE_S)

    def record(self, failure: str | None, now: float) -> HealthChange:
        """Take one result: None for a pass, else the failure's reason."""
        if failure is None:
            self.failures = 0
            self.passes += 1
            self._passed_once = True
            needed = 1 if self.health is InstanceHealth.UNKNOWN else self.check.healthy_threshold
            if self.health is not InstanceHealth.HEALTHY and self.passes >= needed:
                self.health = InstanceHealth.HEALTHY
                self.healthy_since = now
                return HealthChange.HEALTHY
            return HealthChange.NONE
        self.passes = 0
        self.reason = failure
        if not self._passed_once and now < self._grace_until:
            return HealthChange.NONE
        self.failures += 1
        was = self.health
        self.health = InstanceHealth.UNHEALTHY
        self.healthy_since = None
        if self.failures >= max(1, self.check.retries):
            return HealthChange.REPLACE
        return HealthChange.UNHEALTHY if was is not InstanceHealth.UNHEALTHY else HealthChange.NONE


async def probe(
    check: HealthCheck, host: str, port: int, env: Mapping[str, str], cwd: Path
) -> str | None:
    """Run one check; None when it passes, else why it failed. Never takes longer than the
    check's timeout (give or take the killing of a command that overran it)."""
    if check.kind is HealthCheckKind.HTTP:
        return await _probe_http(host, port, check.path, check.timeout_s)
    if check.kind is HealthCheckKind.COMMAND:
        return await _probe_command(check.command, env, cwd, check.timeout_s)
    return None


async def _probe_http(host: str, port: int, path: str, timeout_s: float) -> str | None:
    target = path if path.startswith("/") else f"/{path}"
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            request = f"GET {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
            writer.write(request.encode("latin-1"))
            await writer.drain()
            status_line = await reader.readline()
    except TimeoutError:
        return f"GET {target}: no answer within {timeout_s:g} s"
    except OSError as exc:
        # asyncio's connect error says "Connect call failed"; the errno says why.
        return f"GET {target}: {os.strerror(exc.errno) if exc.errno else exc}"
    finally:
        if writer is not None:
            writer.close()
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        shown = status_line[:_REASON_BYTES].decode("latin-1").strip()
        return f"GET {target}: not an HTTP answer ({shown!r})"
    status = int(parts[1])
    if 200 <= status < 400:
        return None
    return f"GET {target}: HTTP {status}"


async def _probe_command(
    command: tuple[str, ...], env: Mapping[str, str], cwd: Path, timeout_s: float
) -> str | None:
    if not command:
        return "no health check command"
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # a timeout kills the check and whatever it started
        )
    except FileNotFoundError:
        return f"health check command not found: {command[0]}"
    except OSError as exc:
        return f"health check command {command[0]}: {exc.strerror or exc}"
    try:
        async with asyncio.timeout(timeout_s):
            output, _ = await proc.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        return f"health check command timed out after {timeout_s:g} s"
    finally:
        # A check's children may outlive it (a backgrounded command): they go with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode == 0:
        return None
    last = (
        output.strip().splitlines()[-1][:_REASON_BYTES].decode(errors="replace") if output else ""
    )
    described = describe_exit(proc.returncode or 0)
    return f"health check command: {described}" + (f": {last}" if last else "")
