"""What the supervisor reports about services and their instances (for the CLI, the console and
the admin API): typed, immutable snapshots."""

from __future__ import annotations

from dataclasses import dataclass

from fogbank.services._health import InstanceHealth
from fogbank.services._instance import InstanceState
from fogbank.services._rollout import RolloutState


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    """One instance, as ECS describes a task."""

    id: str
    """32 hex characters, like an ECS task id."""
    pid: int | None
    """None until the process has started."""
    port: int
    revision: str
    """The `ServiceSpec.revision` it was started from."""
    state: InstanceState
    health: InstanceHealth
    health_reason: str
    """Why the last check failed, while the instance is not HEALTHY ("" otherwise)."""
    started_at: float
    """Wall-clock time (seconds since the epoch) of its start."""
    replacing: bool = False
    """It failed its health checks `retries` times and is being replaced."""


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """One service: its deployment and its instances."""

    name: str
    revision: str
    """The revision being deployed, or running once the deployment is over."""
    desired: int
    running: int
    """Instances whose process runs (stopping ones excluded)."""
    healthy: int
    rollout: RolloutState
    rollout_reason: str
    failed_instances: int
    """Instances of the revision that failed in this deployment (the circuit breaker's count)."""
    restarts: int
    """Instances that failed (exited or failed their checks) since the service started."""
    instances: tuple[InstanceStatus, ...]
