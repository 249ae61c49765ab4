"""Cloud Map's input rules: names, instance attributes and DNS configurations.

Each check raises `CloudMapError("InvalidInput", …)` with a message that names the offending
value, so the registry refuses bad input the way AWS does, whatever the caller (the API, a
template, the supervisor).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence

from fogbank.discovery._records import (
    CNAME,
    INIT_HEALTH,
    IPV4,
    IPV6,
    PORT,
    CloudMapError,
    HealthStatus,
    Service,
)
from fogbank.model import DnsRecord, HealthCheckConfig, NamespaceType

MAX_CUSTOM_ATTRIBUTES = 30
MAX_ATTRIBUTES_SIZE = 5000
"""The sum of every key's and value's length in one registration."""
MAX_TAGS = 200

# The patterns are botocore's (service-2.json) for the same shapes.
_NAMESPACE_NAME = re.compile(r"(?!arn:)[!-~]{1,1024}")
_DNS_NAMESPACE_NAME = re.compile(r"(?!arn:)[!-~]{1,253}")
_PUBLIC_NAMESPACE_NAME = re.compile(
    r"([a-zA-Z0-9]([a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z0-9]([a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?"
)
_LABEL = r"([a-zA-Z0-9_][a-zA-Z0-9\-_]{0,61}[a-zA-Z0-9_]|[a-zA-Z0-9])"
_SERVICE_NAME = re.compile(rf"(?=.{{1,127}}$){_LABEL}(\.{_LABEL})*")
_INSTANCE_ID = re.compile(r"[0-9a-zA-Z_/:.@-]{1,64}")
_ATTR_KEY = re.compile(r"[!-~]{1,255}")
_ATTR_VALUE = re.compile(r"([!-~][ \t!-~]*)?[!-~]?")
_RECORD_TYPES = ("A", "AAAA", "SRV", "CNAME")
_ROUTING_POLICIES = ("MULTIVALUE", "WEIGHTED")
_CHECK_TYPES = ("HTTP", "HTTPS", "TCP")


def invalid(message: str) -> CloudMapError:
    return CloudMapError("InvalidInput", message)


def name_key(name: str) -> str:
    """A namespace or `service.namespace` name as lookups compare it (DNS names):
    case-insensitive, without the root's trailing dot."""
    return name.rstrip(".").lower()


def check_namespace_name(name: str, kind: NamespaceType) -> None:
    if kind is NamespaceType.DNS_PUBLIC:
        pattern = _PUBLIC_NAMESPACE_NAME
    elif kind is NamespaceType.DNS_PRIVATE:
        pattern = _DNS_NAMESPACE_NAME
    else:
        pattern = _NAMESPACE_NAME
    if not isinstance(name, str) or not pattern.fullmatch(name):
        raise invalid(f"Namespace name {name!r} is not valid for a {kind.value} namespace.")


def check_service_name(name: str) -> None:
    if not isinstance(name, str) or not _SERVICE_NAME.fullmatch(name):
        raise invalid(f"Service name {name!r} is not valid.")


def check_instance_id(instance_id: str) -> None:
    if not isinstance(instance_id, str) or not _INSTANCE_ID.fullmatch(instance_id):
        raise invalid(
            f"Instance id {instance_id!r} must be 1-64 characters of letters, digits and _/:.@-."
        )


def check_description(description: str) -> None:
    if len(description) > 1024:
        raise invalid("Description must be at most 1024 characters.")


def check_ttl(ttl: int, what: str) -> None:
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 2147483647:
        raise invalid(f"{what} TTL must be an integer from 0 to 2147483647, not {ttl!r}.")


def check_dns_config(
    records: Sequence[DnsRecord],
    routing_policy: str,
    health_check: HealthCheckConfig | None,
    namespace_type: NamespaceType,
) -> None:
    """A service's `DnsConfig` (and whether its namespace may have one at all)."""
    if routing_policy not in _ROUTING_POLICIES:
        raise invalid(f"RoutingPolicy must be MULTIVALUE or WEIGHTED, not {routing_policy!r}.")
    if not records:
        return
    if namespace_type is NamespaceType.HTTP:
        raise invalid("A service in an HTTP namespace cannot have DNS records.")
    types = [record.type for record in records]
    for record in records:
        if record.type not in _RECORD_TYPES:
            raise invalid(
                f"DNS record type must be one of A, AAAA, SRV, CNAME, not {record.type!r}."
            )
        check_ttl(record.ttl, f"The {record.type} record's")
    if len(set(types)) != len(types):
        raise invalid("DnsRecords must not name a record type twice.")
    if "CNAME" in types:
        if len(types) != 1 or routing_policy != "WEIGHTED":
            raise invalid("A CNAME record must be the only record, with WEIGHTED routing.")
        if health_check is not None:
            raise invalid("A service with a CNAME record cannot have a HealthCheckConfig.")


def check_health_check(config: HealthCheckConfig) -> None:
    if config.type not in _CHECK_TYPES:
        raise invalid(f"HealthCheckConfig Type must be HTTP, HTTPS or TCP, not {config.type!r}.")
    if config.type == "TCP" and config.resource_path not in ("", "/"):
        raise invalid("A TCP health check cannot have a ResourcePath.")
    if len(config.resource_path) > 255:
        raise invalid("ResourcePath must be at most 255 characters.")
    check_failure_threshold(config.failure_threshold)


def check_failure_threshold(threshold: int) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= 10:
        raise invalid(f"FailureThreshold must be an integer from 1 to 10, not {threshold!r}.")


def check_attributes(service: Service, attributes: Mapping[str, str]) -> None:
    """An instance's attributes, as `RegisterInstance` checks them for `service`."""
    size = 0
    custom = 0
    for key, value in attributes.items():
        if not isinstance(key, str) or not _ATTR_KEY.fullmatch(key):
            raise invalid(f"Attribute key {key!r} must be 1-255 printable ASCII characters.")
        if not isinstance(value, str) or len(value) > 1024 or not _ATTR_VALUE.fullmatch(value):
            raise invalid(
                f"Attribute {key}: the value must be at most 1024 printable ASCII characters, "
                "without leading or trailing white space."
            )
        size += len(key) + len(value)
        if not key.startswith("AWS_"):
            custom += 1
    if custom > MAX_CUSTOM_ATTRIBUTES:
        raise invalid(f"An instance can have at most {MAX_CUSTOM_ATTRIBUTES} custom attributes.")
    if size > MAX_ATTRIBUTES_SIZE:
        raise invalid(f"The attributes' keys and values add up to more than {MAX_ATTRIBUTES_SIZE}.")
    _check_reserved(attributes)
    _check_required(service, attributes)


def _check_reserved(attributes: Mapping[str, str]) -> None:
    if IPV4 in attributes:
        try:
            ipaddress.IPv4Address(attributes[IPV4])
        except ValueError:
            raise invalid(f"{IPV4} {attributes[IPV4]!r} is not an IPv4 address.") from None
    if IPV6 in attributes:
        try:
            ipaddress.IPv6Address(attributes[IPV6])
        except ValueError:
            raise invalid(f"{IPV6} {attributes[IPV6]!r} is not an IPv6 address.") from None
    if PORT in attributes:
        port = attributes[PORT]
        if not (port.isascii() and port.isdigit() and int(port) <= 65535):
            raise invalid(f"{PORT} {port!r} must be an integer from 0 to 65535.")
    if INIT_HEALTH in attributes and attributes[INIT_HEALTH] not in ("HEALTHY", "UNHEALTHY"):
        raise invalid(f"{INIT_HEALTH} must be HEALTHY or UNHEALTHY.")


def _check_required(service: Service, attributes: Mapping[str, str]) -> None:
    """What a service's DNS records and health check need from each instance."""
    for record in service.dns_records:
        if record.type == "A" and IPV4 not in attributes:
            raise invalid(f"Service {service.name} has an A record: {IPV4} is required.")
        if record.type == "AAAA" and IPV6 not in attributes:
            raise invalid(f"Service {service.name} has an AAAA record: {IPV6} is required.")
        if record.type == "SRV":
            if PORT not in attributes:
                raise invalid(f"Service {service.name} has an SRV record: {PORT} is required.")
            if IPV4 not in attributes and IPV6 not in attributes:
                raise invalid(
                    f"Service {service.name} has an SRV record: {IPV4} or {IPV6} is required."
                )
        if record.type == "CNAME" and CNAME not in attributes:
            raise invalid(f"Service {service.name} has a CNAME record: {CNAME} is required.")
    if service.health_check is not None and PORT not in attributes:
        raise invalid(f"Service {service.name} has a HealthCheckConfig: {PORT} is required.")


def initial_health(service: Service, attributes: Mapping[str, str]) -> HealthStatus:
    """A new instance's health: UNKNOWN without health checking; with custom health, HEALTHY
    unless `AWS_INIT_HEALTH_STATUS` says UNHEALTHY; with a probed check, HEALTHY until a probe
    fails (as Route 53 counts a new health check)."""
    if service.custom_health_failure_threshold is not None:
        if attributes.get(INIT_HEALTH) == "UNHEALTHY":
            return HealthStatus.UNHEALTHY
        return HealthStatus.HEALTHY
    if service.health_check is not None:
        return HealthStatus.HEALTHY
    return HealthStatus.UNKNOWN
