"""The Cloud Map API's operations: one function per `X-Amz-Target` operation, each taking the
registry and the request body and returning the response body (or raising `CloudMapError`)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from fogbank.discovery import _cloudmap_views as views
from fogbank.discovery._cloudmap_views import Body, enum, number, text
from fogbank.discovery._registry import Registry
from fogbank.discovery._rules import invalid
from fogbank.model import NamespaceType

T = TypeVar("T")
Handler = Callable[[Registry, Body], Body]

_TOKEN_PREFIX = "fogbank:"


# -- pagination and filters ------------------------------------------------------------------


def paginate(items: list[T], body: Body, limit: int = 100) -> tuple[list[T], dict[str, str]]:
    """One page of `items` and the `NextToken` member that fetches the next (an offset)."""
    size = number(body, "MaxResults", 1, limit) or limit
    token = text(body, "NextToken", limit=4096)
    start = 0
    if token is not None:
        try:
            decoded = base64.urlsafe_b64decode(token.encode()).decode()
            if not decoded.startswith(_TOKEN_PREFIX):
                raise ValueError(decoded)
            start = int(decoded.removeprefix(_TOKEN_PREFIX))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise invalid("NextToken is not valid.") from None
    end = start + size
    if end >= len(items):
        return items[start:], {}
    return items[start:end], {
        "NextToken": base64.urlsafe_b64encode(f"fogbank:{end}".encode()).decode()
    }


Filter = tuple[str, str, list[str]]


def read_filters(body: Body, conditions: Mapping[str, tuple[str, ...]]) -> list[Filter]:
    """`Filters`: (name, condition, values), checked against the conditions each name allows."""
    out: list[Filter] = []
    for raw in views.listing(body, "Filters"):
        if not isinstance(raw, dict):
            raise views.malformed("Filters must be a list of objects.")
        name = enum(raw.get("Name"), "Filter Name", tuple(conditions))
        condition = enum(raw.get("Condition", "EQ"), "Filter Condition", conditions[name])
        values = views.strings(raw, "Values")
        wanted = {"EQ": 1, "BEGINS_WITH": 1, "BETWEEN": 2}.get(condition)
        if not values or (wanted is not None and len(values) != wanted):
            raise invalid(f"Filter {name} {condition} takes {wanted or 'one or more'} value(s).")
        out.append((name, condition, values))
    return out


def _passes(value: str | None, condition: str, values: list[str]) -> bool:
    if value is None:
        return False
    if condition == "EQ":
        return value == values[0]
    if condition == "IN":
        return value in values
    if condition == "BEGINS_WITH":
        return value.startswith(values[0])
    try:  # BETWEEN, for dates in epoch seconds
        return float(values[0]) <= float(value) <= float(values[1])
    except ValueError:
        raise invalid("BETWEEN takes two dates in epoch seconds.") from None


def select(
    items: Iterable[T], filters: list[Filter], field: Callable[[T, str], str | None]
) -> list[T]:
    return [
        item
        for item in items
        if all(_passes(field(item, name), cond, values) for name, cond, values in filters)
    ]


# -- namespaces ---------------------------------------------------------------------------------


def create_namespace(kind: NamespaceType) -> Handler:
    def create(registry: Registry, body: Body) -> Body:
        operation = registry.create_namespace(
            text(body, "Name", required=True),
            kind,
            description=text(body, "Description") or "",
            creator_request_id=text(body, "CreatorRequestId", limit=64),
            soa_ttl=None if kind is NamespaceType.HTTP else views.soa_ttl(body),
            tags=views.tags(body),
        )
        return {"OperationId": operation.id}

    return create


def update_namespace(kind: NamespaceType) -> Handler:
    def update(registry: Registry, body: Body) -> Body:
        namespace_id = text(body, "Id", required=True, limit=255)
        change = views.section(body, "Namespace", required=True) or {}
        operation = registry.update_namespace(
            namespace_id,
            kind,
            description=text(change, "Description", required=kind is NamespaceType.HTTP),
            soa_ttl=None if kind is NamespaceType.HTTP else views.soa_ttl(change),
        )
        return {"OperationId": operation.id}

    return update


def _namespace_body(registry: Registry, namespace_id: str, *, full: bool = True) -> Body:
    namespace = registry.get_namespace(namespace_id)
    account = registry.identity.account_id
    count = registry.service_count(namespace_id)
    return views.namespace_view(
        namespace, account, count, registry.soa_ttl(namespace_id), full=full
    )


def get_namespace(registry: Registry, body: Body) -> Body:
    return {"Namespace": _namespace_body(registry, text(body, "Id", required=True, limit=255))}


def list_namespaces(registry: Registry, body: Body) -> Body:
    named = ("EQ", "BEGINS_WITH")
    conditions = {
        "TYPE": ("EQ", "IN"),
        "NAME": named,
        "HTTP_NAME": named,
        "RESOURCE_OWNER": ("EQ",),
    }
    filters = read_filters(body, conditions)

    def field(namespace: Any, name: str) -> str:
        if name == "TYPE":
            return str(namespace.type.value)
        return "SELF" if name == "RESOURCE_OWNER" else str(namespace.name)

    found = select(registry.namespaces(), filters, field)
    page, token = paginate(found, body)
    summaries = [_namespace_body(registry, ns.id, full=False) for ns in page]
    return {"Namespaces": summaries, **token}


def delete_namespace(registry: Registry, body: Body) -> Body:
    operation = registry.delete_namespace(text(body, "Id", required=True, limit=255))
    return {"OperationId": operation.id}


# -- services ----------------------------------------------------------------------------------


def create_service(registry: Registry, body: Body) -> Body:
    dns = views.section(body, "DnsConfig")
    namespace_id = text(body, "NamespaceId", limit=255)
    if namespace_id is None and dns is not None:
        namespace_id = text(dns, "NamespaceId", limit=64)  # the deprecated place
    if namespace_id is None:
        raise invalid("NamespaceId is required.")
    custom = views.section(body, "HealthCheckCustomConfig")
    service = registry.create_service(
        text(body, "Name", required=True, limit=127),
        namespace_id,
        description=text(body, "Description") or "",
        dns_records=views.dns_records(dns) if dns is not None else (),
        routing_policy=(text(dns, "RoutingPolicy") if dns else None) or "MULTIVALUE",
        health_check=views.health_check(body),
        custom_health_failure_threshold=(
            None if custom is None else number(custom, "FailureThreshold", 1, 10) or 1
        ),
        type=text(body, "Type"),
        creator_request_id=text(body, "CreatorRequestId", limit=64),
        tags=views.tags(body),
    )
    account = registry.identity.account_id
    return {"Service": views.service_view(service, account, 0)}


def _service_body(registry: Registry, service_id: str, *, full: bool = True) -> Body:
    service = registry.get_service(service_id)
    count = registry.instance_count(service_id)
    return views.service_view(service, registry.identity.account_id, count, full=full)


def get_service(registry: Registry, body: Body) -> Body:
    return {"Service": _service_body(registry, text(body, "Id", required=True, limit=255))}


def list_services(registry: Registry, body: Body) -> Body:
    conditions = {"NAMESPACE_ID": ("EQ", "IN"), "RESOURCE_OWNER": ("EQ",)}
    filters = read_filters(body, conditions)

    def field(service: Any, name: str) -> str:
        return "SELF" if name == "RESOURCE_OWNER" else str(service.namespace_id)

    page, token = paginate(select(registry.services(), filters, field), body)
    return {"Services": [_service_body(registry, s.id, full=False) for s in page], **token}


def update_service(registry: Registry, body: Body) -> Body:
    service_id = text(body, "Id", required=True, limit=255)
    change = views.section(body, "Service", required=True) or {}
    dns = views.section(change, "DnsConfig")
    operation = registry.update_service(
        service_id,
        description=text(change, "Description"),
        dns_records=views.dns_records(dns) if dns is not None else None,
        health_check=views.health_check(change),
    )
    return {"OperationId": operation.id}


def delete_service(registry: Registry, body: Body) -> Body:
    registry.delete_service(text(body, "Id", required=True, limit=255))
    return {}


def get_service_attributes(registry: Registry, body: Body) -> Body:
    service = registry.get_service(text(body, "ServiceId", required=True, limit=255))
    attributes = {
        "ServiceArn": service.arn,
        "ResourceOwner": registry.identity.account_id,
        "Attributes": registry.service_attributes.get(service.id),
    }
    return {"ServiceAttributes": attributes}


def update_service_attributes(registry: Registry, body: Body) -> Body:
    service_id = text(body, "ServiceId", required=True, limit=255)
    registry.update_service_attributes(
        service_id, views.string_map(body, "Attributes", required=True)
    )
    return {}


def delete_service_attributes(registry: Registry, body: Body) -> Body:
    service_id = text(body, "ServiceId", required=True, limit=255)
    keys = views.strings(body, "Attributes")
    if not 1 <= len(keys) <= 30:
        raise invalid("Attributes must name 1 to 30 keys.")
    registry.delete_service_attributes(service_id, keys)
    return {}
