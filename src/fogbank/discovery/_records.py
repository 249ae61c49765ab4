"""The registry's records: what Cloud Map's API, the DNS server and the gateway read."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from fogbank.model import DnsRecord, HealthCheckConfig, NamespaceType

# Instance attributes Cloud Map gives a meaning to.
IPV4 = "AWS_INSTANCE_IPV4"
IPV6 = "AWS_INSTANCE_IPV6"
PORT = "AWS_INSTANCE_PORT"
CNAME = "AWS_INSTANCE_CNAME"
ZONE = "AVAILABILITY_ZONE"
INIT_HEALTH = "AWS_INIT_HEALTH_STATUS"


class HealthStatus(enum.Enum):
    """An instance's health as Cloud Map reports it."""

    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"
    UNKNOWN = "UNKNOWN"
    """No health check: discovery treats it as healthy."""


class HealthFilter(enum.Enum):
    """`DiscoverInstances`' `HealthStatus` parameter."""

    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"
    ALL = "ALL"
    HEALTHY_OR_ELSE_ALL = "HEALTHY_OR_ELSE_ALL"
    """Healthy instances, or every instance when none is healthy (fail open)."""


class Owner(enum.Enum):
    """Who registered an instance (and so who may remove it)."""

    API = "API"
    """`RegisterInstance` or a template's `AWS::ServiceDiscovery::Instance`: kept across restarts."""
    SUPERVISOR = "SUPERVISOR"
    """A supervised service instance: gone with the node that runs it."""


@dataclass(frozen=True, slots=True)
class Namespace:
    id: str
    arn: str
    name: str
    type: NamespaceType
    description: str = ""
    created: float = 0.0
    updated: float = 0.0
    creator_request_id: str | None = None
    from_template: bool = False


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    arn: str
    name: str
    namespace_id: str
    dns_records: tuple[DnsRecord, ...] = ()
    routing_policy: str = "MULTIVALUE"
    health_check: HealthCheckConfig | None = None
    custom_health_failure_threshold: int | None = None
    description: str = ""
    type: str = "HTTP"
    """`HTTP`, `DNS_HTTP` or `DNS` (Cloud Map's service type)."""
    created: float = 0.0
    creator_request_id: str | None = None
    from_template: bool = False


@dataclass(frozen=True, slots=True)
class Instance:
    id: str
    service_id: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    health: HealthStatus = HealthStatus.UNKNOWN
    owner: Owner = Owner.API
    creator_request_id: str | None = None

    @property
    def address(self) -> tuple[str, int] | None:
        """`(ip, port)` when the instance has an IPv4 (or IPv6) address and a port."""
        host = self.attributes.get(IPV4) or self.attributes.get(IPV6)
        port = self.attributes.get(PORT)
        if not host or not port or not port.isdigit():
            return None
        return host, int(port)

    @property
    def zone(self) -> str | None:
        return self.attributes.get(ZONE)


class OperationStatus(enum.Enum):
    SUBMITTED = "SUBMITTED"
    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Operation:
    """An asynchronous Cloud Map operation (fogbank completes them at once: SUCCESS or FAIL)."""

    id: str
    type: str
    """`CREATE_NAMESPACE`, `DELETE_NAMESPACE`, `UPDATE_NAMESPACE`, `UPDATE_SERVICE`,
    `REGISTER_INSTANCE` or `DEREGISTER_INSTANCE`."""
    status: OperationStatus
    targets: Mapping[str, str]
    """`NAMESPACE` / `SERVICE` / `INSTANCE` -> id."""
    created: float
    updated: float
    error_message: str | None = None
    error_code: str | None = None


# The HTTP status botocore's model gives each error (400 for the rest).
_ERROR_STATUS = {
    "CustomHealthNotFound": 404,
    "DuplicateRequest": 409,
    "InstanceNotFound": 404,
    "NamespaceNotFound": 404,
    "OperationNotFound": 404,
    "RequestLimitExceeded": 429,
    "ResourceInUse": 409,
    "ResourceNotFoundException": 404,
    "ServiceNotFound": 404,
}


class CloudMapError(Exception):
    """An error in Cloud Map's shape: `{"__type": code, "Message": message}` with `status`.

    `status` defaults to the one AWS gives `code`; `fields` are the error's other members
    (`NamespaceAlreadyExists` carries `NamespaceId`, `ServiceAlreadyExists` `ServiceId`, …).
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        *,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else _ERROR_STATUS.get(code, 400)
        self.fields: Mapping[str, str] = fields or {}
