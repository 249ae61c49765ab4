"""The registry's durable state: API-owned records in one SQLite file.

What survives a restart: namespaces and services created through the API, API-owned instances
(in any service, template services included: their ids are stable), operations, tags, service
attributes and each service's instance revision. Template resources are not stored (the template
brings them back) and neither are supervised instances (they end with the node that ran them).

Writes are synchronous, on the event loop's thread, one small transaction per change: the
registry's methods are synchronous and a change must be on disk before it is acknowledged. WAL
with `synchronous=NORMAL` keeps a commit well under a millisecond (no fsync per commit); the
supervisor's frequent changes (health) never come here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fogbank._errors import FogbankError
from fogbank.discovery._records import (
    HealthStatus,
    Instance,
    Namespace,
    Operation,
    OperationStatus,
    Owner,
    Service,
)
from fogbank.model import DnsRecord, HealthCheckConfig, NamespaceType

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (kind, key)
)
"""

Change = tuple[str, str, Any]
"""(kind, key, JSON-ready body), or a None body to delete the record."""


@dataclass
class StoredState:
    """Everything `RegistryStore.load` found, each kind in the order it was first written."""

    namespaces: list[tuple[Namespace, int | None]] = field(default_factory=list)
    """With each namespace its SOA TTL (DNS namespaces)."""
    services: list[Service] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    service_attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)


class RegistryStore:
    """The SQLite file behind a registry opened with a path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise self._unreadable(exc) from exc

    def _unreadable(self, exc: BaseException | str) -> FogbankError:
        return FogbankError(
            f"{self.path}: the discovery registry's state cannot be read ({exc}); "
            "move the file aside to start with an empty registry"
        )

    def load(self) -> StoredState:
        state = StoredState()
        try:
            rows = self._db.execute("SELECT kind, key, body FROM records ORDER BY rowid").fetchall()
        except sqlite3.Error as exc:
            raise self._unreadable(exc) from exc
        for kind, key, body in rows:
            try:
                _decode_into(state, kind, key, orjson.loads(body))
            except (KeyError, ValueError, TypeError) as exc:
                raise self._unreadable(f"record {kind} {key}: {exc!r}") from exc
        return state

    def write(self, changes: Iterable[Change]) -> None:
        """Apply the changes in one transaction; a failure is a `FogbankError` naming the file."""
        try:
            with self._transaction():
                for kind, key, body in changes:
                    if body is None:
                        self._db.execute(
                            "DELETE FROM records WHERE kind = ? AND key = ?", (kind, key)
                        )
                    else:
                        # An update keeps the row (and its rowid): listings keep creation order.
                        self._db.execute(
                            "INSERT INTO records (kind, key, body) VALUES (?, ?, ?)"
                            " ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body",
                            (kind, key, orjson.dumps(body)),
                        )
        except sqlite3.Error as exc:
            raise FogbankError(
                f"{self.path}: the discovery registry's state cannot be written ({exc})"
            ) from exc

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


# -- the records as JSON ----------------------------------------------------------------------


def namespace_change(namespace: Namespace, soa_ttl: int | None) -> Change:
    body = {
        "id": namespace.id,
        "arn": namespace.arn,
        "name": namespace.name,
        "type": namespace.type.value,
        "description": namespace.description,
        "created": namespace.created,
        "updated": namespace.updated,
        "creator_request_id": namespace.creator_request_id,
        "soa_ttl": soa_ttl,
    }
    return ("namespace", namespace.id, body)


def service_change(service: Service) -> Change:
    check = service.health_check
    body = {
        "id": service.id,
        "arn": service.arn,
        "name": service.name,
        "namespace_id": service.namespace_id,
        "dns_records": [[record.type, record.ttl] for record in service.dns_records],
        "routing_policy": service.routing_policy,
        "health_check": (
            [check.type, check.resource_path, check.failure_threshold] if check else None
        ),
        "custom_health_failure_threshold": service.custom_health_failure_threshold,
        "description": service.description,
        "type": service.type,
        "created": service.created,
        "creator_request_id": service.creator_request_id,
    }
    return ("service", service.id, body)


def instance_change(instance: Instance) -> Change:
    body = {
        "id": instance.id,
        "service_id": instance.service_id,
        "attributes": dict(instance.attributes),
        "health": instance.health.value,
        "creator_request_id": instance.creator_request_id,
    }
    return ("instance", instance_key(instance.service_id, instance.id), body)


def instance_key(service_id: str, instance_id: str) -> str:
    return f"{service_id}/{instance_id}"


def operation_change(operation: Operation) -> Change:
    body = {
        "id": operation.id,
        "type": operation.type,
        "status": operation.status.value,
        "targets": dict(operation.targets),
        "created": operation.created,
        "updated": operation.updated,
        "error_message": operation.error_message,
        "error_code": operation.error_code,
    }
    return ("operation", operation.id, body)


def _decode_into(state: StoredState, kind: str, key: str, body: Any) -> None:
    if kind == "namespace":
        namespace = Namespace(
            id=body["id"],
            arn=body["arn"],
            name=body["name"],
            type=NamespaceType(body["type"]),
            description=body["description"],
            created=body["created"],
            updated=body["updated"],
            creator_request_id=body["creator_request_id"],
        )
        state.namespaces.append((namespace, body["soa_ttl"]))
    elif kind == "service":
        check = body["health_check"]
        state.services.append(
            Service(
                id=body["id"],
                arn=body["arn"],
                name=body["name"],
                namespace_id=body["namespace_id"],
                dns_records=tuple(DnsRecord(kind, ttl) for kind, ttl in body["dns_records"]),
                routing_policy=body["routing_policy"],
                health_check=HealthCheckConfig(*check) if check else None,
                custom_health_failure_threshold=body["custom_health_failure_threshold"],
                description=body["description"],
                type=body["type"],
                created=body["created"],
                creator_request_id=body["creator_request_id"],
            )
        )
    elif kind == "instance":
        state.instances.append(
            Instance(
                id=body["id"],
                service_id=body["service_id"],
                attributes=dict(body["attributes"]),
                health=HealthStatus(body["health"]),
                owner=Owner.API,
                creator_request_id=body["creator_request_id"],
            )
        )
    elif kind == "operation":
        state.operations.append(
            Operation(
                id=body["id"],
                type=body["type"],
                status=OperationStatus(body["status"]),
                targets=dict(body["targets"]),
                created=body["created"],
                updated=body["updated"],
                error_message=body["error_message"],
                error_code=body["error_code"],
            )
        )
    elif kind == "tags":
        state.tags[key] = {str(k): str(v) for k, v in body.items()}
    elif kind == "service_attributes":
        state.service_attributes[key] = {str(k): str(v) for k, v in body.items()}
    elif kind == "revision":
        state.revisions[key] = int(body)
    else:
        raise ValueError(f"unknown record kind {kind!r}")
