"""The app model for long-running services (the Fargate role) and the Cloud Map resources a
template declares (namespaces and discovery services).

A service is a command in a directory, run as `desired_count` instances; each instance is given a
free port of its own (`PORT` in its environment, `${PORT}` in its command) and is registered in the
discovery registry under every `RegistryBinding` of its service.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


def discovery_id(prefix: str, logical_id: str) -> str:
    """A stable Cloud Map id (`ns-…`, `srv-…`, 16 lower-case characters after the prefix), derived
    from the template's logical id so that `Ref` and `GetAtt …Arn` agree across loads."""
    digest = hashlib.sha256(f"cloudmap:{prefix}:{logical_id}".encode()).hexdigest()
    return f"{prefix}-{digest[:16]}"


class HealthCheckKind(enum.Enum):
    """How the supervisor checks that an instance is healthy."""

    NONE = "NONE"
    """No check: a running process is healthy."""
    HTTP = "HTTP"
    """`GET http://127.0.0.1:{port}{path}`; a 2xx or 3xx answer within the timeout passes."""
    COMMAND = "COMMAND"
    """Run `command` with the instance's environment; exit status 0 within the timeout passes."""


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """An instance health check, ECS's `HealthCheck` plus an HTTP form (seconds throughout)."""

    kind: HealthCheckKind = HealthCheckKind.NONE
    path: str = "/"
    command: tuple[str, ...] = ()
    """COMMAND: an argv; ECS's `["CMD-SHELL", "…"]` becomes `("/bin/sh", "-c", "…")`."""
    interval_s: float = 30.0
    timeout_s: float = 5.0
    retries: int = 3
    """Consecutive failed checks after which the instance is replaced."""
    start_period_s: float = 0.0
    """Failures in this grace period after start do not count (a pass ends the grace period)."""
    healthy_threshold: int = 2
    """Consecutive passes an UNHEALTHY instance needs before it is HEALTHY again (a new instance
    turns HEALTHY on its first pass)."""


@dataclass(frozen=True, slots=True)
class DeploymentConfig:
    """ECS's `DeploymentConfiguration`: how instances are replaced and rolled over."""

    maximum_percent: int = 200
    """Upper bound on running instances during a replacement, in percent of the desired count."""
    minimum_healthy_percent: int = 100
    """Lower bound on healthy instances during a replacement, in percent of the desired count."""
    circuit_breaker: bool = True
    """Stop a rollout whose new instances keep failing (ECS's deployment circuit breaker)."""
    rollback: bool = True
    """When the circuit breaker trips, go back to the last revision that ran healthy."""


@dataclass(frozen=True, slots=True)
class RegistryBinding:
    """Where a service's instances are registered: a Cloud Map service in a namespace, by name."""

    namespace: str
    """The namespace's name, e.g. `shop.local`."""
    service: str
    """The discovery service's name, e.g. `catalog`."""


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A long-running service: what to run, how many, how to check it, where to register it."""

    name: str
    """The service's name (ECS `ServiceName`, or the logical id)."""
    command: tuple[str, ...]
    """The argv to run; `${PORT}` and `$PORT` in any argument become the instance's port."""
    working_dir: Path
    environment: Mapping[str, str] = field(default_factory=dict)
    logical_id: str = ""
    desired_count: int = 1
    health_check: HealthCheck = field(default_factory=HealthCheck)
    zone: str | None = None
    """The availability-zone label of its instances; None = the node's zone."""
    deployment: DeploymentConfig = field(default_factory=DeploymentConfig)
    registries: tuple[RegistryBinding, ...] = ()
    stop_timeout_s: float = 30.0
    """Grace between SIGTERM and SIGKILL when an instance is stopped (ECS `StopTimeout`)."""
    task_family: str = ""
    """ECS task definition family, when the service came from one (an instance attribute)."""
    generation: int = 0
    """Bumped to force a new deployment of an unchanged spec (a code change in `working_dir`
    under `fogbank up`'s reload, or ECS's `--force-new-deployment`)."""

    @property
    def revision(self) -> str:
        """A digest of everything that defines the instances: a new one means a new deployment."""
        parts = repr(
            (
                self.command,
                str(self.working_dir),
                sorted(self.environment.items()),
                self.health_check,
                self.zone,
                self.registries,
                self.generation,
            )
        )
        return hashlib.sha256(parts.encode()).hexdigest()[:12]


class NamespaceType(enum.Enum):
    """Cloud Map namespace types."""

    HTTP = "HTTP"
    """Discoverable through `DiscoverInstances` only."""
    DNS_PRIVATE = "DNS_PRIVATE"
    """Also answered by fogbank's DNS server (A and SRV records)."""
    DNS_PUBLIC = "DNS_PUBLIC"
    """Treated as DNS_PRIVATE: fogbank's DNS server answers it."""


@dataclass(frozen=True, slots=True)
class DnsRecord:
    """One record type a DNS service publishes for each instance, with its TTL in seconds."""

    type: str
    """`A`, `AAAA`, `SRV` or `CNAME`."""
    ttl: int = 60


@dataclass(frozen=True, slots=True)
class NamespaceSpec:
    """A namespace declared in a template (`AWS::ServiceDiscovery::*Namespace`)."""

    logical_id: str
    name: str
    type: NamespaceType
    description: str = ""

    @property
    def namespace_id(self) -> str:
        return discovery_id("ns", self.logical_id)


@dataclass(frozen=True, slots=True)
class HealthCheckConfig:
    """Cloud Map's `HealthCheckConfig` (Route 53 checks): fogbank probes each instance itself."""

    type: str = "HTTP"
    """`HTTP`, `HTTPS` or `TCP`."""
    resource_path: str = "/"
    failure_threshold: int = 1


@dataclass(frozen=True, slots=True)
class DiscoveryServiceSpec:
    """A discovery service declared in a template (`AWS::ServiceDiscovery::Service`)."""

    logical_id: str
    name: str
    namespace_logical_id: str
    dns_records: tuple[DnsRecord, ...] = ()
    routing_policy: str = "MULTIVALUE"
    """`MULTIVALUE` (up to 8 healthy answers) or `WEIGHTED` (one random answer)."""
    health_check: HealthCheckConfig | None = None
    custom_health_failure_threshold: int | None = None
    """Set when the service has `HealthCheckCustomConfig` (health is set through the API)."""
    description: str = ""
    type: str | None = None
    """`HTTP` for services without DNS records; None lets the registry derive it."""

    @property
    def service_id(self) -> str:
        return discovery_id("srv", self.logical_id)


TEMPLATE_REQUEST = "fogbank-template:"
"""The `CreatorRequestId` prefix of instances a template registers (the logical id follows): how
the registry tells them from the API's when a later template drops one."""


@dataclass(frozen=True, slots=True)
class DiscoveryInstanceSpec:
    """An instance declared in a template (`AWS::ServiceDiscovery::Instance`): an endpoint
    fogbank does not run (a database, another host), registered as `RegisterInstance` would."""

    logical_id: str
    service_logical_id: str
    instance_id: str
    attributes: Mapping[str, str]

    @property
    def service_id(self) -> str:
        return discovery_id("srv", self.service_logical_id)

    @property
    def creator_request_id(self) -> str:
        return TEMPLATE_REQUEST + self.logical_id
