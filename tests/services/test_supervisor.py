"""The supervisor with real processes (`app.py`) and a real registry."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import sys
from typing import Any

import httpx
import pytest

from fogbank.discovery import HealthStatus
from fogbank.model import DeploymentConfig, HealthCheck, HealthCheckKind, RegistryBinding
from fogbank.services import InstanceHealth, InstanceState, RolloutState, ServiceStatus

from ..conftest import eventually
from .conftest import FAST, Harness, gone, http_check

pytestmark = pytest.mark.anyio


def status(h: Harness, name: str = "web") -> ServiceStatus:
    found = h.supervisor.service_status(name)
    assert found is not None
    return found


async def get(port: int, path: str = "/") -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as client:
        answer = await client.get(f"http://127.0.0.1:{port}{path}")
    assert answer.status_code == 200
    doc = answer.json()
    assert isinstance(doc, dict)
    return doc


async def rest_of_line(harness: Harness, start: str) -> str:
    """What follows `start` on its line in the service's log, once it is there."""

    def found() -> str | None:
        text = harness.log_text()
        return text.split(start, 1)[1].split("\n", 1)[0] if start in text else None

    line: str = await eventually(found, repr(start))
    return line


async def test_the_desired_count_runs_registered_and_healthy(harness: Harness) -> None:
    await harness.apply(harness.spec(desired_count=2, environment={"APP_VERSION": "1"}))
    await harness.settled()
    assert len(harness.healthy_ids()) == 2
    service = status(harness)
    assert (service.desired, service.running, service.healthy) == (2, 2, 2)
    assert service.rollout is RolloutState.COMPLETED
    assert sorted(harness.supervisor.instance_pids("web")) == sorted(
        i.pid for i in service.instances if i.pid is not None
    )
    by_id = {i.id: i for i in service.instances}
    for instance in harness.registry.instances(harness.service_id()):
        mine = by_id[instance.id]
        assert len(instance.id) == 32
        assert (mine.state, mine.health) == (InstanceState.RUNNING, InstanceHealth.HEALTHY)
        assert dict(instance.attributes) == {
            "AWS_INSTANCE_IPV4": "127.0.0.1",
            "AWS_INSTANCE_PORT": str(mine.port),
            "AVAILABILITY_ZONE": "local-1a",
            "ECS_SERVICE_NAME": "web",
            "ECS_TASK_DEFINITION_FAMILY": "web-task",
        }
        assert instance.health is HealthStatus.HEALTHY
        answer = await get(mine.port)
        assert answer["instance"] == instance.id
        assert answer["FOGBANK_SERVICE"] == "web"
        assert answer["AVAILABILITY_ZONE"] == "local-1a"
        assert answer["PORT"] == str(mine.port)
        assert answer["APP_VERSION"] == "1"
        assert f"[{instance.id}] listening on {mine.port}\n" in harness.log_text()


async def test_a_killed_instance_is_deregistered_at_once_and_replaced(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await harness.apply(harness.spec())
    await eventually(harness.healthy_ids, "a healthy instance")
    [first] = status(harness).instances
    assert first.pid is not None
    seen: list[list[str]] = []
    service_id = harness.service_id()
    harness.registry.watch(lambda sid: seen.append(harness.registered_ids()))
    caplog.set_level(logging.INFO, logger="fogbank")
    os.kill(first.pid, signal.SIGKILL)

    await eventually(lambda: harness.healthy_ids() and harness.healthy_ids() != [first.id])
    # The first change the registry saw was the dead instance leaving it.
    assert seen[0] == []
    [second] = status(harness).instances
    assert second.pid != first.pid
    assert second.id != first.id
    assert [i.id for i in harness.registry.instances(service_id)] == [second.id]
    assert status(harness).restarts == 1
    text = f"instance {first.id} ended: killed by SIGKILL; next start in 0.1 s"
    assert f"[fogbank] {text}\n" in harness.log_text()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"service web: {text}"]


async def test_the_backoff_resets_once_an_instance_stays_healthy(harness: Harness) -> None:
    harness.supervisor.restart = dataclasses.replace(FAST, reset_after_s=0.3)
    await harness.apply(harness.spec())
    waits: list[str] = []
    killed: list[str] = []
    for _ in range(3):
        [instance_id] = await eventually(
            lambda: [i for i in harness.healthy_ids() if i not in killed], "a healthy instance"
        )
        [instance] = status(harness).instances
        assert instance.pid is not None
        if len(waits) == 2:
            # Healthy for longer than reset_after_s: the next wait is the first one again.
            await asyncio.sleep(0.5)
        os.kill(instance.pid, signal.SIGKILL)
        killed.append(instance_id)
        ended = f"[fogbank] instance {instance_id} ended: killed by SIGKILL; next start in "
        waits.append(await rest_of_line(harness, ended))
    assert waits == ["0.1 s", "0.2 s", "0.1 s"]


async def test_one_failed_check_makes_it_unhealthy_and_it_needs_n_passes_to_return(
    harness: Harness,
) -> None:
    check = http_check(retries=100, healthy_threshold=3)
    await harness.apply(harness.spec(health_check=check))
    [instance_id] = await eventually(harness.healthy_ids, "a healthy instance")
    # At each change of health in the registry: the checks the app has answered so far.
    changes: list[tuple[HealthStatus, list[str]]] = []

    def record(service_id: str) -> None:
        [instance] = harness.registry.instances(service_id)
        if not changes or changes[-1][0] is not instance.health:
            changes.append((instance.health, harness.checks(instance_id)))

    harness.registry.watch(record)
    before = len(harness.checks(instance_id))
    (harness.state / f"down-{instance_id}").touch()
    await eventually(lambda: changes, "UNHEALTHY")
    assert not harness.healthy_ids()
    assert status(harness).instances[0].health is InstanceHealth.UNHEALTHY
    (harness.state / f"down-{instance_id}").unlink()
    await eventually(harness.healthy_ids, "HEALTHY again")

    [(down, at_down), (up, at_up)] = changes
    assert (down, up) == (HealthStatus.UNHEALTHY, HealthStatus.HEALTHY)
    assert at_down[before:] == ["fail"]  # one failed check
    assert at_up[-3:] == ["pass"] * 3  # three passes in a row, and the one before failed
    assert at_up[-4] == "fail"
    assert [i.id for i in status(harness).instances] == [instance_id]  # never replaced


async def test_retries_failed_checks_replace_the_instance_replacement_first(
    harness: Harness,
) -> None:
    await harness.apply(harness.spec(health_check=http_check(retries=2)))
    [first] = await eventually(harness.healthy_ids, "a healthy instance")
    first_pid = status(harness).instances[0].pid
    assert first_pid is not None
    (harness.state / f"down-{first}").touch()
    await eventually(lambda: harness.healthy_ids() not in ([], [first]), "a replacement")
    stopped = f"[fogbank] instance {first} stopped (killed by SIGTERM)\n"
    await eventually(lambda: stopped in harness.log_text(), "the old instance's end")
    assert gone(first_pid)
    [second] = harness.registered_ids()
    assert second != first
    assert harness.checks(first)[-2:] == ["fail", "fail"]
    log_text = harness.log_text()
    assert (
        f"[fogbank] instance {first} failed 2 health checks in a row (last: GET /health: HTTP 503)"
        in log_text
    )
    # The replacement was started before the old instance was stopped.
    assert log_text.index(f"instance {second} started") < log_text.index(stopped)


async def test_scale_up_and_down_through_apply(harness: Harness) -> None:
    spec = harness.spec(desired_count=1)
    await harness.apply(spec)
    await eventually(lambda: len(harness.healthy_ids()) == 1)
    await harness.apply(dataclasses.replace(spec, desired_count=3))
    await eventually(lambda: len(harness.healthy_ids()) == 3, "three instances")
    pids = harness.supervisor.instance_pids("web")
    await harness.apply(dataclasses.replace(spec, desired_count=1))
    await eventually(lambda: len(harness.registered_ids()) == 1, "one instance")
    await eventually(lambda: len(harness.supervisor.instance_pids("web")) == 1)
    assert sum(gone(pid) for pid in pids) == 2
    assert status(harness).rollout is RolloutState.COMPLETED
    # A service that is no longer in the app is stopped and leaves the registry.
    await harness.supervisor.apply({})
    assert harness.registered_ids() == []
    assert all(gone(pid) for pid in pids)
    assert harness.supervisor.status() == []


async def test_a_new_revision_rolls_over_without_losing_healthy_instances(
    harness: Harness,
) -> None:
    v1 = harness.spec(desired_count=2, environment={"APP_VERSION": "1"})
    await harness.apply(v1)
    await harness.settled()
    old_pids = harness.supervisor.instance_pids("web")
    fewest: list[int] = []
    service_id = harness.service_id()
    harness.registry.watch(lambda sid: fewest.append(len(harness.registry.healthy(service_id))))

    v2 = harness.spec(desired_count=2, environment={"APP_VERSION": "2"})
    assert v2.revision != v1.revision
    await harness.apply(v2)
    assert status(harness).rollout is RolloutState.IN_PROGRESS
    await eventually(lambda: status(harness).rollout is RolloutState.COMPLETED, "COMPLETED")
    service = status(harness)
    assert service.revision == v2.revision
    assert [i.revision for i in service.instances] == [v2.revision] * 2
    assert min(fewest) >= 2  # minimum healthy 100 %
    assert len(harness.registered_ids()) == 2
    for instance in service.instances:
        assert (await get(instance.port))["APP_VERSION"] == "2"
    await eventually(lambda: all(gone(pid) for pid in old_pids), "the old instances' end")


async def test_the_circuit_breaker_rolls_a_failing_revision_back(harness: Harness) -> None:
    good = harness.spec()
    await harness.apply(good)
    await harness.settled()
    [kept] = harness.healthy_ids()
    kept_pid = harness.supervisor.instance_pids("web")
    bad = harness.spec(environment={"APP_CRASH": "1"})
    await harness.apply(bad)
    await eventually(lambda: status(harness).rollout is RolloutState.ROLLED_BACK, "ROLLED_BACK")
    service = status(harness)
    assert service.revision == good.revision
    assert service.restarts == 3  # the breaker's threshold for one instance
    assert harness.healthy_ids() == [kept]  # the good instance served throughout
    assert harness.supervisor.instance_pids("web") == kept_pid
    log_text = harness.log_text()
    assert (
        f"circuit breaker: 3 instances of revision {bad.revision} failed (last: ended: exit status 3: "
        f"crashing on purpose); rolling back to revision {good.revision}"
    ) in log_text
    assert f"rolled back to revision {good.revision}" in log_text
    # Asking for the bad revision again changes nothing.
    await harness.apply(bad)
    assert status(harness).rollout is RolloutState.ROLLED_BACK


async def test_a_command_that_exits_at_once_is_backed_off(harness: Harness) -> None:
    spec = harness.spec(command=(sys.executable, "-c", "raise SystemExit(3)"))
    await harness.apply(spec)
    await eventually(lambda: status(harness).restarts >= 2, "two restarts")
    await asyncio.sleep(1.5)
    # 0.1, 0.2, 0.4, 0.4 ... s apart: a handful, where a spinning loop would make hundreds.
    assert status(harness).restarts <= 10
    assert "ended: exit status 3; next start in 0.4 s" in harness.log_text()
    assert status(harness).rollout is RolloutState.FAILED


@pytest.mark.parametrize("problem", ["command", "directory"])
async def test_a_missing_command_or_directory_is_reported_and_backed_off(
    harness: Harness, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    if problem == "command":
        spec = harness.spec(command=("no-such-command-anywhere", "--port", "$PORT"))
        expected = "could not start: command not found: no-such-command-anywhere"
    else:
        spec = harness.spec(working_dir=harness.root / "missing")
        expected = f"could not start: working directory {harness.root / 'missing'} does not exist"
    await harness.apply(spec, harness.spec("other"))
    await eventually(lambda: status(harness).restarts >= 3, "three attempts")
    assert expected in harness.log_text()
    assert any(
        r.getMessage().startswith("service web: instance ") and expected in r.getMessage()
        for r in caplog.records
    )
    # The node and its other services carry on.
    await eventually(lambda: harness.healthy_ids("other"), "the other service")


async def test_a_hanging_health_check_times_out(harness: Harness) -> None:
    hanging = HealthCheck(
        kind=HealthCheckKind.COMMAND,
        command=("sleep", "30"),
        interval_s=0.1,
        timeout_s=0.2,
        retries=100,
    )
    never = http_check(path="/hang", timeout_s=0.2, retries=100, start_period_s=0.6)
    await harness.apply(
        harness.spec(health_check=hanging), harness.spec("web2", health_check=never)
    )

    def unhealthy(name: str) -> bool:
        instances = status(harness, name).instances
        return bool(instances) and instances[0].health is InstanceHealth.UNHEALTHY

    for name, reason in [
        ("web", "health check command timed out after 0.2 s"),
        ("web2", "GET /hang: no answer within 0.2 s"),
    ]:
        await eventually(lambda: unhealthy(name), f"{name} UNHEALTHY")  # noqa: B023
        assert f"is UNHEALTHY: {reason}" in harness.log_text(name)
        assert status(harness, name).instances[0].health_reason == reason
        assert harness.healthy_ids(name) == []


async def test_a_taken_port_is_named(harness: Harness) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        await harness.apply(harness.spec(environment={"APP_FIXED_PORT": str(port)}))
        await eventually(lambda: status(harness).restarts >= 1)
    assert ("ended: port already in use (exit status 1; it was given $PORT=") in harness.log_text()
    assert "): OSError: [Errno 98] Address already in use; next start in" in harness.log_text()


async def test_an_invalid_registration_is_reported_and_the_instance_runs(
    harness: Harness,
) -> None:
    spec = harness.spec(zone="zone with an ü", health_check=HealthCheck())
    await harness.apply(spec)
    await eventually(lambda: status(harness).healthy == 1)
    assert harness.registered_ids() == []
    assert "[fogbank] cannot register in web.shop.local: InvalidInput: " in harness.log_text()


async def test_stop_leaves_no_process_behind(harness: Harness) -> None:
    stubborn = harness.spec(
        environment={"APP_IGNORE_TERM": "1", "APP_CHILD": "1"}, stop_timeout_s=0.3, desired_count=2
    )
    await harness.apply(stubborn, harness.spec("plain"))
    await eventually(lambda: len(harness.healthy_ids()) == 2 and harness.healthy_ids("plain"))
    pids = harness.supervisor.instance_pids("web") + harness.supervisor.instance_pids("plain")
    log_text = harness.log_text()
    children = [int(line.split()[-1]) for line in log_text.splitlines() if "] child " in line]
    assert len(children) == 2
    await harness.supervisor.stop()
    assert harness.registered_ids() == []
    assert harness.registered_ids("plain") == []
    assert [pid for pid in pids if not gone(pid)] == []
    # SIGKILL has gone to the children; the kernel takes a moment to end them.
    await eventually(lambda: all(gone(pid) for pid in children), "the children's end")
    assert sorted(os.listdir(harness.root / "run")) == []


async def test_zone_and_registries_come_from_the_spec(harness: Harness) -> None:
    spec = harness.spec(
        zone="eu-west-1b",
        registries=(RegistryBinding("shop.local", "web"), RegistryBinding("other.local", "www")),
        deployment=DeploymentConfig(maximum_percent=100, minimum_healthy_percent=0),
    )
    await harness.apply(spec)
    await eventually(harness.healthy_ids)
    other = harness.registry.ensure_service("other.local", "www")
    [instance] = harness.registry.healthy(other.id)
    assert instance.attributes["AVAILABILITY_ZONE"] == "eu-west-1b"
    assert [instance.id] == harness.healthy_ids()
