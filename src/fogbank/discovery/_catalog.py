"""Namespaces and services: the registry's catalog, as the Cloud Map API manages it.

`Catalog` holds the registry's state (namespaces, services with their instances, operations,
tags, service attributes), the name indexes that DNS and discovery read, the state file, and the
template's resources; `Registry` (in `_registry`) adds instances, health and discovery on top.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from fogbank.discovery._ledgers import LabelBook, OperationLog, token
from fogbank.discovery._records import (
    CloudMapError,
    Instance,
    Namespace,
    Operation,
    Service,
)
from fogbank.discovery._registry_store import (
    Change,
    RegistryStore,
    namespace_change,
    service_change,
)
from fogbank.discovery._rules import (
    MAX_TAGS,
    check_description,
    check_namespace_name,
    check_ttl,
    invalid,
    name_key,
)
from fogbank.discovery._services import Entry, build_service
from fogbank.model import (
    DnsRecord,
    HealthCheckConfig,
    Identity,
    NamespaceType,
)

DEFAULT_SOA_TTL = 15
"""A DNS namespace's SOA TTL when none is given (Cloud Map's default)."""


class Catalog:
    """The registry's state and its namespace, service, tag and operation management."""

    def __init__(
        self, identity: Identity, store: RegistryStore | None, clock: Callable[[], float]
    ) -> None:
        self.identity = identity
        self._store = store
        self._clock = clock
        self._namespaces: dict[str, Namespace] = {}
        self._soa_ttl: dict[str, int] = {}
        self._entries: dict[str, Entry] = {}
        self._implicit: set[str] = set()
        """Ids of what `ensure_service` created: the template's updates leave them alone."""
        self._parked: dict[str, list[Instance]] = {}
        """Stored instances of services not created yet (a template's, until it is applied)."""
        self._stored_revisions: dict[str, int] = {}
        self._index: tuple[dict[str, str], dict[str, Service]] | None = None
        self.operations = OperationLog(clock)
        self.tags = LabelBook("tags", MAX_TAGS, "TooManyTagsException", 128, 256)
        self.service_attributes = LabelBook(
            "service_attributes", 30, "ServiceAttributesLimitExceededException", 255, 1024
        )

    def _notify(self, service_id: str) -> None:
        """Tell watchers a service changed (the registry keeps the watchers)."""

    def _save(self, changes: Sequence[Change]) -> None:
        if self._store is not None and changes:
            self._store.write(changes)

    def _add_entry(self, service: Service) -> Entry:
        entry = Entry(service, self._stored_revisions.pop(service.id, 0))
        for instance in self._parked.pop(service.id, ()):
            entry.put(instance)
        self._entries[service.id] = entry
        self._index = None
        return entry

    # -- name indexes (what DNS and discovery look up) ---------------------------------------------
    def _indexes(self) -> tuple[dict[str, str], dict[str, Service]]:
        if self._index is None:
            names = {name_key(ns.name): ns.id for ns in self._namespaces.values()}
            hosts: dict[str, Service] = {}
            for entry in self._entries.values():
                namespace = self._namespaces.get(entry.service.namespace_id)
                if namespace is not None:
                    host = name_key(f"{entry.service.name}.{namespace.name}")
                    hosts[host] = entry.service
            self._index = (names, hosts)
        return self._index

    def _namespace_names(self) -> dict[str, str]:
        """Lower-case namespace name -> id."""
        return self._indexes()[0]

    def _hosts(self) -> dict[str, Service]:
        """Lower-case `service.namespace` -> service."""
        return self._indexes()[1]

    # -- namespaces ---------------------------------------------------------------------------------
    def get_namespace(self, namespace_id: str) -> Namespace:
        """Raises `CloudMapError("NamespaceNotFound", …)`."""
        namespace = self._namespaces.get(namespace_id)
        if namespace is None:
            raise CloudMapError("NamespaceNotFound", f"Namespace {namespace_id} not found.")
        return namespace

    def namespaces(self) -> list[Namespace]:
        return list(self._namespaces.values())

    def soa_ttl(self, namespace_id: str) -> int | None:
        """A DNS namespace's SOA TTL (None for an HTTP namespace)."""
        return self._soa_ttl.get(namespace_id)

    def service_count(self, namespace_id: str) -> int:
        return sum(1 for e in self._entries.values() if e.service.namespace_id == namespace_id)

    def create_namespace(
        self,
        name: str,
        kind: NamespaceType,
        *,
        description: str = "",
        creator_request_id: str | None = None,
        soa_ttl: int | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Operation:
        """`Create*Namespace`; a retry with the same `creator_request_id` gets the first
        operation back, any other duplicate name is `NamespaceAlreadyExists`."""
        check_namespace_name(name, kind)
        check_description(description)
        if soa_ttl is not None:
            check_ttl(soa_ttl, "The SOA")
        existing_id = self._namespace_names().get(name_key(name))
        if existing_id is not None:
            existing = self._namespaces[existing_id]
            if creator_request_id and existing.creator_request_id == creator_request_id:
                first = self.operations.find("CREATE_NAMESPACE", "NAMESPACE", existing_id)
                if first is not None:
                    return first
            fields = {"NamespaceId": existing_id}
            if existing.creator_request_id:
                fields["CreatorRequestId"] = existing.creator_request_id
            raise CloudMapError(
                "NamespaceAlreadyExists", f"Namespace {name} already exists.", fields=fields
            )
        namespace_id = f"ns-{token(16)}"
        now = self._clock()
        namespace = Namespace(
            id=namespace_id,
            arn=self.namespace_arn(namespace_id),
            name=name,
            type=kind,
            description=description,
            created=now,
            updated=now,
            creator_request_id=creator_request_id,
        )
        soa = None if kind is NamespaceType.HTTP else (soa_ttl or DEFAULT_SOA_TTL)
        labels = self.tags.merged(namespace.arn, tags or {})
        operation = self.operations.make("CREATE_NAMESPACE", {"NAMESPACE": namespace_id})
        self._save(
            [
                namespace_change(namespace, soa),
                self.tags.change(namespace.arn, labels),
                *self.operations.changes(operation),
            ]
        )
        self._put_namespace(namespace, soa)
        self.tags.put(namespace.arn, labels)
        self.operations.add(operation)
        return operation

    def update_namespace(
        self,
        namespace_id: str,
        kind: NamespaceType,
        *,
        description: str | None = None,
        soa_ttl: int | None = None,
    ) -> Operation:
        """`Update{Http,PrivateDns,PublicDns}Namespace`: `kind` is the type the call is for."""
        namespace = self.get_namespace(namespace_id)
        if namespace.type is not kind:
            raise invalid(f"Namespace {namespace_id} is {namespace.type.value}, not {kind.value}.")
        if description is not None:
            check_description(description)
        if soa_ttl is not None:
            check_ttl(soa_ttl, "The SOA")
        updated = replace(
            namespace,
            description=namespace.description if description is None else description,
            updated=self._clock(),
        )
        soa = self._soa_ttl.get(namespace_id) if soa_ttl is None else soa_ttl
        operation = self.operations.make("UPDATE_NAMESPACE", {"NAMESPACE": namespace_id})
        changes = self.operations.changes(operation)
        if not namespace.from_template:
            changes.append(namespace_change(updated, soa))
        self._save(changes)
        self._put_namespace(updated, soa)
        self.operations.add(operation)
        return operation

    def delete_namespace(self, namespace_id: str) -> Operation:
        """`DeleteNamespace`: refused (`ResourceInUse`) while it has services."""
        namespace = self.get_namespace(namespace_id)
        if self.service_count(namespace_id):
            raise CloudMapError(
                "ResourceInUse", f"Namespace {namespace_id} has services: delete them first."
            )
        operation = self.operations.make("DELETE_NAMESPACE", {"NAMESPACE": namespace_id})
        self._save(
            [
                ("namespace", namespace_id, None),
                self.tags.change(namespace.arn, {}),
                *self.operations.changes(operation),
            ]
        )
        self._drop_namespace(namespace)
        self.operations.add(operation)
        return operation

    def namespace_arn(self, namespace_id: str) -> str:
        identity = self.identity
        return f"arn:aws:servicediscovery:{identity.region}:{identity.account_id}:namespace/{namespace_id}"

    def _put_namespace(self, namespace: Namespace, soa_ttl: int | None) -> None:
        self._namespaces[namespace.id] = namespace
        if soa_ttl is not None:
            self._soa_ttl[namespace.id] = soa_ttl
        self._index = None

    def _drop_namespace(self, namespace: Namespace) -> None:
        del self._namespaces[namespace.id]
        self._soa_ttl.pop(namespace.id, None)
        self._implicit.discard(namespace.id)
        self.tags.put(namespace.arn, {})
        self._index = None

    # -- services -----------------------------------------------------------------------------------
    def get_service(self, service_id: str) -> Service:
        """Raises `CloudMapError("ServiceNotFound", …)`."""
        return self._entry(service_id).service

    def _entry(self, service_id: str) -> Entry:
        entry = self._entries.get(service_id)
        if entry is None:
            raise CloudMapError("ServiceNotFound", f"Service {service_id} not found.")
        return entry

    def services(self) -> list[Service]:
        return [entry.service for entry in self._entries.values()]

    def instances(self, service_id: str) -> Sequence[Instance]:
        """Every instance of a service, in registration order."""
        return self._entry(service_id).all()

    def instance_count(self, service_id: str) -> int:
        return len(self._entry(service_id).instances)

    def service_arn(self, service_id: str) -> str:
        identity = self.identity
        return (
            f"arn:aws:servicediscovery:{identity.region}:{identity.account_id}:service/{service_id}"
        )

    def create_service(
        self,
        name: str,
        namespace_id: str,
        *,
        description: str = "",
        dns_records: Sequence[DnsRecord] = (),
        routing_policy: str = "MULTIVALUE",
        health_check: HealthCheckConfig | None = None,
        custom_health_failure_threshold: int | None = None,
        type: str | None = None,
        creator_request_id: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Service:
        """`CreateService`; a duplicate name in the namespace is `ServiceAlreadyExists` (a retry
        with the same `creator_request_id` gets the service back)."""
        namespace = self.get_namespace(namespace_id)
        existing = self._hosts().get(name_key(f"{name}.{namespace.name}"))
        if existing is not None and existing.namespace_id == namespace_id:
            if creator_request_id and existing.creator_request_id == creator_request_id:
                return existing
            fields = {"ServiceId": existing.id, "ServiceArn": existing.arn}
            if existing.creator_request_id:
                fields["CreatorRequestId"] = existing.creator_request_id
            raise CloudMapError(
                "ServiceAlreadyExists", f"Service {name} already exists.", fields=fields
            )
        service_id = f"srv-{token(16)}"
        service = build_service(
            service_id,
            self.service_arn(service_id),
            name,
            namespace,
            dns_records=tuple(dns_records),
            routing_policy=routing_policy,
            health_check=health_check,
            custom_health_failure_threshold=custom_health_failure_threshold,
            description=description,
            type=type,
            created=self._clock(),
            creator_request_id=creator_request_id,
        )
        labels = self.tags.merged(service.arn, tags or {})
        self._save([service_change(service), self.tags.change(service.arn, labels)])
        self._add_entry(service)
        self.tags.put(service.arn, labels)
        return service

    def update_service(
        self,
        service_id: str,
        *,
        description: str | None = None,
        dns_records: Sequence[DnsRecord] | None = None,
        health_check: HealthCheckConfig | None = None,
    ) -> Operation:
        """`UpdateService`: a new description (None keeps it), new TTLs for the existing record
        types (a type left out is removed; None keeps them all), and the `HealthCheckConfig`
        (None removes it, as AWS does when it is left out)."""
        entry = self._entry(service_id)
        service = entry.service
        records = service.dns_records if dns_records is None else tuple(dns_records)
        existing = {record.type for record in service.dns_records}
        if not {record.type for record in records} <= existing:
            raise invalid("UpdateService can change the TTLs of existing DNS records only.")
        if health_check is not None and service.custom_health_failure_threshold is not None:
            raise invalid("A service with HealthCheckCustomConfig cannot have HealthCheckConfig.")
        updated = build_service(
            service.id,
            service.arn,
            service.name,
            self.get_namespace(service.namespace_id),
            dns_records=records,
            routing_policy=service.routing_policy,
            health_check=health_check,
            custom_health_failure_threshold=service.custom_health_failure_threshold,
            description=service.description if description is None else description,
            type=service.type,
            created=service.created,
            creator_request_id=service.creator_request_id,
            from_template=service.from_template,
        )
        operation = self.operations.make("UPDATE_SERVICE", {"SERVICE": service_id})
        changes = self.operations.changes(operation)
        if not service.from_template:
            changes.append(service_change(updated))
        self._save(changes)
        entry.service = updated
        self._index = None
        self.operations.add(operation)
        self._notify(service_id)
        return operation

    def delete_service(self, service_id: str) -> None:
        """`DeleteService`: refused (`ResourceInUse`) while it has instances."""
        entry = self._entry(service_id)
        if entry.instances:
            raise CloudMapError(
                "ResourceInUse", f"Service {service_id} has instances: deregister them first."
            )
        arn = entry.service.arn
        self._save(
            [
                ("service", service_id, None),
                ("revision", service_id, None),
                self.tags.change(arn, {}),
                self.service_attributes.change(service_id, {}),
            ]
        )
        self._drop_service(entry)

    def _drop_service(self, entry: Entry) -> None:
        service = entry.service
        del self._entries[service.id]
        self._implicit.discard(service.id)
        self.tags.put(service.arn, {})
        self.service_attributes.put(service.id, {})
        self._index = None
        self._notify(service.id)
