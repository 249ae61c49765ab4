"""Fixtures for the supervisor's tests: a real registry, a log store and a supervisor on a
scratch directory, and the test app (`app.py`) run as real processes."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fogbank.discovery import Registry
from fogbank.functions import LogStore
from fogbank.model import (
    DeploymentConfig,
    HealthCheck,
    HealthCheckKind,
    Identity,
    RegistryBinding,
    ServiceSpec,
)
from fogbank.services import RestartPolicy, RolloutState, Supervisor

from ..conftest import eventually

APP = Path(__file__).parent / "app.py"
FAST = RestartPolicy(initial_s=0.1, max_s=0.4, reset_after_s=5.0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def gone(pid: int) -> bool:
    """The process has ended: no such pid, or a zombie (whose reaper, when it is the container's
    init, may take its time)."""
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (ProcessLookupError, FileNotFoundError):
        return True
    return stat[stat.rfind(")") + 2] == "Z"


def http_check(**overrides: Any) -> HealthCheck:
    options: dict[str, Any] = {
        "kind": HealthCheckKind.HTTP,
        "path": "/health",
        "interval_s": 0.1,
        "timeout_s": 0.5,
        "retries": 3,
        "start_period_s": 3.0,
        "healthy_threshold": 2,
    }
    options.update(overrides)
    return HealthCheck(**options)


class Harness:
    """A supervisor over a real registry, with the test app's spec at hand."""

    def __init__(self, root: Path, supervisor: Supervisor, registry: Registry) -> None:
        self.root = root
        self.state = root / "app-state"
        self.state.mkdir()
        self.supervisor = supervisor
        self.registry = registry
        self.logs = supervisor.logs

    def spec(self, name: str = "web", **overrides: Any) -> ServiceSpec:
        environment = {"APP_STATE": str(self.state), **overrides.pop("environment", {})}
        options: dict[str, Any] = {
            "name": name,
            "command": (sys.executable, str(APP)),
            "working_dir": self.root,
            "environment": environment,
            "desired_count": 1,
            "health_check": http_check(),
            "registries": (RegistryBinding("shop.local", name),),
            "stop_timeout_s": 2.0,
            "deployment": DeploymentConfig(),
            "task_family": f"{name}-task",
        }
        options.update(overrides)
        return ServiceSpec(**options)

    async def apply(self, *specs: ServiceSpec) -> None:
        await self.supervisor.apply({spec.name: spec for spec in specs})

    async def settled(self, name: str = "web") -> None:
        """Wait until the service's deployment has COMPLETED (its desired count healthy)."""

        def completed() -> bool:
            found = self.supervisor.service_status(name)
            return found is not None and found.rollout is RolloutState.COMPLETED

        await eventually(completed, f"{name}'s deployment to complete")

    def service_id(self, name: str = "web") -> str:
        return self.registry.ensure_service("shop.local", name).id

    def healthy_ids(self, name: str = "web") -> list[str]:
        return [i.id for i in self.registry.healthy(self.service_id(name))]

    def registered_ids(self, name: str = "web") -> list[str]:
        return [i.id for i in self.registry.instances(self.service_id(name))]

    def log_text(self, name: str = "web") -> str:
        self.logs.flush()
        path = self.logs.path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def checks(self, instance_id: str) -> list[str]:
        path = self.state / f"checks-{instance_id}"
        return path.read_text().split() if path.exists() else []


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    registry = Registry(Identity())
    logs = LogStore(tmp_path / "logs")
    supervisor = Supervisor(registry, logs, zone="local-1a", run_dir=tmp_path / "run", restart=FAST)
    await supervisor.start()
    try:
        yield Harness(tmp_path, supervisor, registry)
    finally:
        await supervisor.stop()
        logs.close()
