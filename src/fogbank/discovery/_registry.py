"""The registry: Cloud Map's model (namespaces, services, instances, operations) on one node.

SKELETON — the signatures below are the contract other modules code against; the bodies are
being written. Reads are synchronous and cheap (the DNS server and the gateway call them on every
query); writes persist API-owned records to SQLite when the registry has a path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from fogbank.discovery._records import (
    HealthFilter,
    HealthStatus,
    Instance,
    Namespace,
    Operation,
    Owner,
    Service,
)
from fogbank.model import DiscoveryServiceSpec, Identity, NamespaceSpec


class Registry:
    """Namespaces, services and instances, with change notification."""

    def __init__(
        self,
        identity: Identity,
        path: Path | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        raise NotImplementedError

    # -- the template's resources -------------------------------------------------------------
    def apply_template(
        self, namespaces: Iterable[NamespaceSpec], services: Iterable[DiscoveryServiceSpec]
    ) -> None:
        """Create or update the template's namespaces and services (ids from `discovery_id`)."""
        raise NotImplementedError

    # -- reads used by DNS, the gateway and the supervisor ---------------------------------------
    def resolve_name(self, host: str) -> Service | None:
        """The service a `service.namespace` host name names (case-insensitive), or None."""
        raise NotImplementedError

    def find_service(self, namespace_name: str, service_name: str) -> Service | None:
        raise NotImplementedError

    def get_namespace(self, namespace_id: str) -> Namespace:
        """Raises `CloudMapError("NamespaceNotFound", …)`."""
        raise NotImplementedError

    def get_service(self, service_id: str) -> Service:
        """Raises `CloudMapError("ServiceNotFound", …)`."""
        raise NotImplementedError

    def instances(self, service_id: str) -> Sequence[Instance]:
        """Every instance of a service, in registration order."""
        raise NotImplementedError

    def healthy(self, service_id: str) -> Sequence[Instance]:
        """Instances whose health is HEALTHY or UNKNOWN, in registration order (not shuffled)."""
        raise NotImplementedError

    def discover(
        self,
        namespace_name: str,
        service_name: str,
        *,
        query: Mapping[str, str] | None = None,
        optional: Mapping[str, str] | None = None,
        health: HealthFilter = HealthFilter.ALL,
        max_results: int = 100,
    ) -> tuple[list[Instance], int]:
        """`DiscoverInstances`: the matching instances, shuffled, and the service's revision."""
        raise NotImplementedError

    def watch(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call `callback(service_id)` after any change to a service's instances or their
        health; returns the function that stops watching."""
        raise NotImplementedError

    # -- writes ---------------------------------------------------------------------------------
    def register_instance(
        self,
        service_id: str,
        instance_id: str,
        attributes: Mapping[str, str],
        *,
        creator_request_id: str | None = None,
        owner: Owner = Owner.API,
    ) -> Operation:
        """Upsert an instance; returns the (already finished) REGISTER_INSTANCE operation."""
        raise NotImplementedError

    def deregister_instance(self, service_id: str, instance_id: str) -> Operation:
        raise NotImplementedError

    def ensure_service(self, namespace_name: str, service_name: str) -> Service:
        """The named service, created first when missing (a DNS_PRIVATE namespace with A and SRV
        records, TTL 10 s, MULTIVALUE) — how a supervised service's binding finds its registry."""
        raise NotImplementedError

    def set_health(self, service_id: str, instance_id: str, status: HealthStatus) -> None:
        """Set an instance's health (the supervisor's checks, or custom health through the API)."""
        raise NotImplementedError
