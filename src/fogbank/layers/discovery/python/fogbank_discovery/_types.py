"""What the helper hands back (endpoints, responses) and what it raises."""

from __future__ import annotations

import email.message
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

# Instance attributes Cloud Map gives a meaning to (the same names the registry uses).
IPV4 = "AWS_INSTANCE_IPV4"
IPV6 = "AWS_INSTANCE_IPV6"
PORT = "AWS_INSTANCE_PORT"
ZONE = "AVAILABILITY_ZONE"


@dataclass(frozen=True)
class Endpoint:
    """One discovered instance of a service, with the address to call it on.

    Two endpoints are equal when they name the same instance at the same address; the attributes
    take no part in equality (they are a dict, and an instance is what a failure is recorded for).
    """

    host: str
    """`AWS_INSTANCE_IPV4`, or `AWS_INSTANCE_IPV6` when the instance has no IPv4 address."""
    port: int
    """`AWS_INSTANCE_PORT`."""
    instance_id: str
    """The instance's `InstanceId`."""
    attributes: Mapping[str, str] = field(default_factory=dict, compare=False)
    """Every attribute the instance was registered with, custom ones included."""

    @property
    def url(self) -> str:
        """`http://host:port` (an IPv6 host in brackets), without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def zone(self) -> str | None:
        """The instance's `AVAILABILITY_ZONE` attribute, when it has one."""
        return self.attributes.get(ZONE)


class Response(NamedTuple):
    """What `request` returns: unpack it as `status, headers, body = request(...)`."""

    status: int
    """The HTTP status code; 4xx and 5xx are returned, not raised."""
    headers: email.message.Message
    """The response headers (case-insensitive lookups: `headers["content-type"]`)."""
    body: bytes
    """The whole response body."""


class DiscoveryError(Exception):
    """Discovery could not give an instance to call: the base of every error the helper raises."""

    def __init__(
        self,
        message: str,
        *,
        service: str | None = None,
        namespace: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.service = service
        self.namespace = namespace
        self.code = code
        """Cloud Map's error type (`ServiceNotFound`, …) when Cloud Map answered with an error."""


class ServiceNotFound(DiscoveryError):
    """Cloud Map knows no such service in that namespace."""


class NamespaceNotFound(ServiceNotFound):
    """Cloud Map knows no such namespace (so no such service either)."""


class NoHealthyInstance(DiscoveryError):
    """The service exists but discovery returned no instance with an address to call."""


class InstanceUnreachable(DiscoveryError):
    """`request` could not connect to an instance, nor (when it may retry) to a second one."""
