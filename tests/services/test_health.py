"""Health: the tracker's rules (times passed in) and the probes against real sockets and
processes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from fogbank.model import HealthCheck, HealthCheckKind
from fogbank.services import InstanceHealth
from fogbank.services._health import HealthChange, HealthTracker, probe

from ..conftest import eventually
from .conftest import gone

pytestmark = pytest.mark.anyio

CHECK = HealthCheck(
    kind=HealthCheckKind.HTTP, interval_s=1.0, retries=3, start_period_s=5.0, healthy_threshold=2
)
PASS = None
FAIL = "GET /: HTTP 503"


def test_a_new_instance_is_healthy_on_its_first_pass() -> None:
    tracker = HealthTracker(CHECK, started=0.0)
    assert tracker.health is InstanceHealth.UNKNOWN
    assert tracker.next_delay() == 1.0
    assert tracker.record(PASS, 0.5) is HealthChange.HEALTHY
    assert tracker.healthy_since == 0.5


def test_failures_in_the_grace_period_do_not_count() -> None:
    tracker = HealthTracker(CHECK, started=0.0)
    assert [tracker.record(FAIL, t) for t in (1.0, 2.0, 3.0, 4.0)] == [HealthChange.NONE] * 4
    assert tracker.health is InstanceHealth.UNKNOWN
    assert tracker.failures == 0
    assert tracker.reason == FAIL
    # After it: each failure counts, the third one replaces.
    assert tracker.record(FAIL, 5.0) is HealthChange.UNHEALTHY
    assert tracker.record(FAIL, 6.0) is HealthChange.NONE
    assert tracker.record(FAIL, 7.0) is HealthChange.REPLACE


def test_the_grace_period_is_at_least_one_interval() -> None:
    check = HealthCheck(kind=HealthCheckKind.HTTP, interval_s=2.0, start_period_s=0.0)
    tracker = HealthTracker(check, started=10.0)
    assert tracker.next_delay() == 1.0  # probed faster until its first pass
    assert tracker.record(FAIL, 11.0) is HealthChange.NONE
    assert tracker.record(FAIL, 12.0) is HealthChange.UNHEALTHY


def test_one_failure_makes_it_unhealthy_and_it_needs_n_passes_to_return() -> None:
    tracker = HealthTracker(CHECK, started=0.0)
    tracker.record(PASS, 1.0)
    assert tracker.next_delay() == 1.0
    assert tracker.record(FAIL, 2.0) is HealthChange.UNHEALTHY  # inside the start period: counts
    assert tracker.healthy_since is None
    assert tracker.record(PASS, 3.0) is HealthChange.NONE
    assert tracker.record(FAIL, 4.0) is HealthChange.NONE  # flapping: starts over
    assert tracker.record(PASS, 5.0) is HealthChange.NONE
    assert tracker.record(PASS, 6.0) is HealthChange.HEALTHY
    assert tracker.health is InstanceHealth.HEALTHY


def test_retries_count_consecutive_failures_only() -> None:
    tracker = HealthTracker(CHECK, started=0.0)
    tracker.record(PASS, 1.0)
    for t in (2.0, 3.0):
        tracker.record(FAIL, t)
    tracker.record(PASS, 4.0)
    assert tracker.record(FAIL, 5.0) is HealthChange.NONE
    assert tracker.failures == 1


def test_an_interval_of_zero_is_no_busy_loop() -> None:
    tracker = HealthTracker(HealthCheck(kind=HealthCheckKind.HTTP, interval_s=0.0), started=0.0)
    assert tracker.next_delay() == 0.05


def test_no_check_means_healthy_from_the_start() -> None:
    tracker = HealthTracker(HealthCheck(), started=3.0)
    assert tracker.health is InstanceHealth.HEALTHY
    assert tracker.healthy_since == 3.0


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[int]:
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()


def answering(status_line: bytes) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(status_line + b"\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    return handle


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)  # accepts, reads nothing, never answers


def http(path: str = "/health", timeout_s: float = 1.0) -> HealthCheck:
    return HealthCheck(kind=HealthCheckKind.HTTP, path=path, timeout_s=timeout_s)


@pytest.mark.parametrize(
    ("status_line", "expected"),
    [
        (b"HTTP/1.1 200 OK", None),
        (b"HTTP/1.0 302 Found", None),
        (b"HTTP/1.1 404 Not Found", "GET /health: HTTP 404"),
        (b"HTTP/1.1 503 Service Unavailable", "GET /health: HTTP 503"),
        (b"SSH-2.0-OpenSSH", "GET /health: not an HTTP answer ('SSH-2.0-OpenSSH')"),
    ],
)
async def test_http_probe_passes_on_2xx_and_3xx(status_line: bytes, expected: str | None) -> None:
    async with server(answering(status_line)) as port:
        assert await probe(http(), "127.0.0.1", port, {}, Path(".")) == expected


async def test_http_probe_times_out_when_the_instance_never_answers() -> None:
    async with server(silent) as port:
        result = await probe(http(timeout_s=0.2), "127.0.0.1", port, {}, Path("."))
    assert result == "GET /health: no answer within 0.2 s"


async def test_http_probe_reports_a_refused_connection() -> None:
    async with server(silent) as port:
        pass  # closed: nothing listens there now
    result = await probe(http(path="health"), "127.0.0.1", port, {}, Path("."))
    assert result == "GET /health: Connection refused"


def command(*argv: str, timeout_s: float = 2.0) -> HealthCheck:
    return HealthCheck(kind=HealthCheckKind.COMMAND, command=argv, timeout_s=timeout_s)


async def test_command_probe_uses_the_instance_environment_and_directory(tmp_path: Path) -> None:
    (tmp_path / "marker").write_text("")
    script = "import os, sys; sys.exit(0 if os.environ['PORT'] == '1234' and os.path.exists('marker') else 1)"
    check = command(sys.executable, "-c", script)
    assert await probe(check, "127.0.0.1", 1234, {"PORT": "1234"}, tmp_path) is None
    assert await probe(check, "127.0.0.1", 1234, {"PORT": "99"}, tmp_path) == (
        "health check command: exit status 1"
    )


async def test_command_probe_quotes_the_last_output_line(tmp_path: Path) -> None:
    check = command("/bin/sh", "-c", "echo starting; echo 'db unreachable' >&2; exit 2")
    assert await probe(check, "127.0.0.1", 1, {}, tmp_path) == (
        "health check command: exit status 2: db unreachable"
    )


async def test_a_hanging_command_probe_is_killed_at_its_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    check = command("/bin/sh", "-c", f"sleep 30 & echo $! > {pid_file}; wait", timeout_s=0.3)
    assert await probe(check, "127.0.0.1", 1, {}, tmp_path) == (
        "health check command timed out after 0.3 s"
    )
    # The check's own child went with it.
    child = int(pid_file.read_text())
    await eventually(lambda: gone(child), "the check's child's end")


async def test_a_missing_probe_command_is_reported(tmp_path: Path) -> None:
    check = command("/no/such/check")
    assert await probe(check, "127.0.0.1", 1, {}, tmp_path) == (
        "health check command not found: /no/such/check"
    )
    assert await probe(command(), "127.0.0.1", 1, {}, tmp_path) == "no health check command"
