"""The Cloud Map API's wire shapes: records to JSON (botocore's member names) and request
members read with their types checked.

A member of the wrong JSON type is a `SerializationException` (what AWS answers when a body does
not fit the model); a value of the right type that breaks a rule is `InvalidInput`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from fogbank.discovery._records import CloudMapError, Instance, Namespace, Operation, Service
from fogbank.discovery._rules import invalid
from fogbank.model import DnsRecord, HealthCheckConfig, NamespaceType

Body = dict[str, Any]


def malformed(message: str) -> CloudMapError:
    return CloudMapError("SerializationException", message)


# -- reading requests ----------------------------------------------------------------------------


def text(body: Mapping[str, Any], name: str, *, required: bool = False, limit: int = 1024) -> Any:
    """A string member (None when absent and not required)."""
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(f"{name} is required.")
        return None
    if not isinstance(value, str):
        raise malformed(f"{name} must be a string.")
    if len(value) > limit:
        raise invalid(f"{name} must be at most {limit} characters.")
    return value


def number(body: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise malformed(f"{name} must be an integer.")
    if not low <= value <= high:
        raise invalid(f"{name} must be from {low} to {high}.")
    return value


def section(body: Mapping[str, Any], name: str, *, required: bool = False) -> Body | None:
    """A structure member."""
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(f"{name} is required.")
        return None
    if not isinstance(value, dict):
        raise malformed(f"{name} must be an object.")
    return value


def listing(body: Mapping[str, Any], name: str) -> list[Any]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise malformed(f"{name} must be a list.")
    return value


def strings(body: Mapping[str, Any], name: str) -> list[str]:
    values = listing(body, name)
    if not all(isinstance(value, str) for value in values):
        raise malformed(f"{name} must be a list of strings.")
    return values


def string_map(body: Mapping[str, Any], name: str, *, required: bool = False) -> dict[str, str]:
    value = section(body, name, required=required) or {}
    if not all(isinstance(v, str) for v in value.values()):
        raise malformed(f"{name} must map strings to strings.")
    return value


def tags(body: Mapping[str, Any], name: str = "Tags") -> dict[str, str]:
    """A `[{"Key": …, "Value": …}]` list as a dict."""
    out: dict[str, str] = {}
    for tag in listing(body, name):
        if not isinstance(tag, dict):
            raise malformed(f"{name} must be a list of objects.")
        key = text(tag, "Key", required=True, limit=128)
        value = text(tag, "Value", required=True, limit=256)
        out[key] = value
    return out


def dns_records(config: Mapping[str, Any]) -> list[DnsRecord]:
    records = []
    for record in listing(config, "DnsRecords"):
        if not isinstance(record, dict):
            raise malformed("DnsRecords must be a list of objects.")
        kind = text(record, "Type", required=True)
        ttl = record.get("TTL")
        if ttl is None:
            raise invalid("DnsRecords: TTL is required.")
        if isinstance(ttl, bool) or not isinstance(ttl, int):
            raise malformed("DnsRecords: TTL must be an integer.")
        records.append(DnsRecord(kind, ttl))
    return records


def health_check(body: Mapping[str, Any]) -> HealthCheckConfig | None:
    config = section(body, "HealthCheckConfig")
    if config is None:
        return None
    kind = text(config, "Type", required=True)
    path = text(config, "ResourcePath", limit=255)
    threshold = number(config, "FailureThreshold", 1, 10)
    default_path = "" if kind == "TCP" else "/"
    return HealthCheckConfig(kind, default_path if path is None else path, threshold or 1)


def soa_ttl(body: Mapping[str, Any], *, required: bool = False) -> int | None:
    """`Properties.DnsProperties.SOA.TTL` of a DNS namespace's create or update request."""
    properties = section(body, "Properties", required=required) or {}
    dns = section(properties, "DnsProperties", required=required) or {}
    soa = section(dns, "SOA", required=required) or {}
    return number(soa, "TTL", 0, 2147483647)


def enum(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise malformed(f"{name} must be a string.")
    if value not in allowed:
        raise invalid(f"{name} must be one of {', '.join(allowed)}, not {value!r}.")
    return value


# -- writing responses ---------------------------------------------------------------------------


def hosted_zone_id(namespace_id: str) -> str:
    """A stand-in Route 53 hosted zone id: stable for the namespace, shaped like AWS's."""
    digest = hashlib.sha256(namespace_id.encode()).hexdigest().upper()
    return f"Z{digest[:20]}"


def namespace_view(
    namespace: Namespace, account: str, services: int, soa: int | None, *, full: bool = True
) -> Body:
    properties: Body = {"DnsProperties": {}, "HttpProperties": {"HttpName": namespace.name}}
    if namespace.type is not NamespaceType.HTTP:
        properties["DnsProperties"] = {"HostedZoneId": hosted_zone_id(namespace.id)}
        if soa is not None:
            properties["DnsProperties"]["SOA"] = {"TTL": soa}
    view: Body = {
        "Id": namespace.id,
        "Arn": namespace.arn,
        "ResourceOwner": account,
        "Name": namespace.name,
        "Type": namespace.type.value,
        "Description": namespace.description,
        "ServiceCount": services,
        "Properties": properties,
        "CreateDate": namespace.created,
    }
    if full and namespace.creator_request_id:
        view["CreatorRequestId"] = namespace.creator_request_id
    return view


def service_view(service: Service, account: str, instances: int, *, full: bool = True) -> Body:
    view: Body = {
        "Id": service.id,
        "Arn": service.arn,
        "ResourceOwner": account,
        "Name": service.name,
        "Type": service.type,
        "Description": service.description,
        "InstanceCount": instances,
        "CreateDate": service.created,
        "CreatedByAccount": account,
    }
    if full:
        view["NamespaceId"] = service.namespace_id
        if service.creator_request_id:
            view["CreatorRequestId"] = service.creator_request_id
    if service.dns_records:
        view["DnsConfig"] = {
            "NamespaceId": service.namespace_id,
            "RoutingPolicy": service.routing_policy,
            "DnsRecords": [{"Type": r.type, "TTL": r.ttl} for r in service.dns_records],
        }
    if service.health_check is not None:
        check = service.health_check
        view["HealthCheckConfig"] = {
            "Type": check.type,
            "FailureThreshold": check.failure_threshold,
        }
        if check.type != "TCP":
            view["HealthCheckConfig"]["ResourcePath"] = check.resource_path
    if service.custom_health_failure_threshold is not None:
        view["HealthCheckCustomConfig"] = {
            "FailureThreshold": service.custom_health_failure_threshold
        }
    return view


def instance_view(instance: Instance, account: str, *, full: bool = True) -> Body:
    view: Body = {
        "Id": instance.id,
        "Attributes": dict(instance.attributes),
        "CreatedByAccount": account,
    }
    if full and instance.creator_request_id:
        view["CreatorRequestId"] = instance.creator_request_id
    return view


def discovered_view(instance: Instance, namespace_name: str, service_name: str) -> Body:
    """`HttpInstanceSummary`."""
    return {
        "InstanceId": instance.id,
        "NamespaceName": namespace_name,
        "ServiceName": service_name,
        "HealthStatus": instance.health.value,
        "Attributes": instance.attributes,
    }


def operation_view(operation: Operation, account: str) -> Body:
    view: Body = {
        "Id": operation.id,
        "OwnerAccount": account,
        "Type": operation.type,
        "Status": operation.status.value,
        "CreateDate": operation.created,
        "UpdateDate": operation.updated,
        "Targets": dict(operation.targets),
    }
    if operation.error_message is not None:
        view["ErrorMessage"] = operation.error_message
    if operation.error_code is not None:
        view["ErrorCode"] = operation.error_code
    return view


def tags_view(labels: Mapping[str, str]) -> list[Body]:
    return [{"Key": key, "Value": value} for key, value in labels.items()]
