"""The Cloud Map API's instance, discovery, operation and tag operations (namespace and service
operations are in `_cloudmap_operations`)."""

from __future__ import annotations

from typing import Any

from fogbank.discovery import _cloudmap_views as views
from fogbank.discovery._cloudmap_operations import paginate, read_filters, select
from fogbank.discovery._cloudmap_views import Body, enum, text
from fogbank.discovery._records import CloudMapError, HealthFilter, HealthStatus, Owner
from fogbank.discovery._registry import Registry
from fogbank.discovery._rules import invalid

_HEALTH_FILTERS = tuple(member.value for member in HealthFilter)


def register_instance(registry: Registry, body: Body) -> Body:
    operation = registry.register_instance(
        text(body, "ServiceId", required=True, limit=255),
        text(body, "InstanceId", required=True, limit=64),
        views.string_map(body, "Attributes", required=True),
        creator_request_id=text(body, "CreatorRequestId", limit=64),
        owner=Owner.API,
    )
    return {"OperationId": operation.id}


def deregister_instance(registry: Registry, body: Body) -> Body:
    operation = registry.deregister_instance(
        text(body, "ServiceId", required=True, limit=255),
        text(body, "InstanceId", required=True, limit=64),
        owner=Owner.API,
    )
    return {"OperationId": operation.id}


def get_instance(registry: Registry, body: Body) -> Body:
    service_id = text(body, "ServiceId", required=True, limit=255)
    instance = registry.get_instance(service_id, text(body, "InstanceId", required=True, limit=64))
    account = registry.identity.account_id
    return {"ResourceOwner": account, "Instance": views.instance_view(instance, account)}


def list_instances(registry: Registry, body: Body) -> Body:
    service_id = text(body, "ServiceId", required=True, limit=255)
    page, token = paginate(list(registry.instances(service_id)), body)
    account = registry.identity.account_id
    instances = [views.instance_view(i, account, full=False) for i in page]
    return {"ResourceOwner": account, "Instances": instances, **token}


def _owner_account(registry: Registry, body: Body, namespace_name: str) -> None:
    owner = text(body, "OwnerAccount", limit=12)
    if owner is not None and owner != registry.identity.account_id:
        # Namespaces shared from other accounts do not exist here.
        raise CloudMapError("NamespaceNotFound", f"Namespace {namespace_name} not found.")


def discover_instances(registry: Registry, body: Body) -> Body:
    namespace_name = text(body, "NamespaceName", required=True)
    service_name = text(body, "ServiceName", required=True, limit=127)
    _owner_account(registry, body, namespace_name)
    health = enum(body.get("HealthStatus", "ALL"), "HealthStatus", _HEALTH_FILTERS)
    found, revision = registry.discover(
        namespace_name,
        service_name,
        query=views.string_map(body, "QueryParameters"),
        optional=views.string_map(body, "OptionalParameters"),
        health=HealthFilter(health),
        max_results=views.number(body, "MaxResults", 1, 1000) or 100,
    )
    service = registry.find_service(namespace_name, service_name)
    assert service is not None  # discover raised otherwise
    real_namespace = registry.get_namespace(service.namespace_id).name
    instances = [views.discovered_view(i, real_namespace, service.name) for i in found]
    return {"Instances": instances, "InstancesRevision": revision}


def discover_instances_revision(registry: Registry, body: Body) -> Body:
    namespace_name = text(body, "NamespaceName", required=True)
    service_name = text(body, "ServiceName", required=True, limit=127)
    _owner_account(registry, body, namespace_name)
    return {"InstancesRevision": registry.discover_revision(namespace_name, service_name)}


def update_instance_custom_health_status(registry: Registry, body: Body) -> Body:
    status = enum(body.get("Status"), "Status", ("HEALTHY", "UNHEALTHY"))
    registry.set_custom_health(
        text(body, "ServiceId", required=True, limit=255),
        text(body, "InstanceId", required=True, limit=64),
        HealthStatus(status),
    )
    return {}


def get_instances_health_status(registry: Registry, body: Body) -> Body:
    service_id = text(body, "ServiceId", required=True, limit=255)
    instances = list(registry.instances(service_id))
    if "Instances" in body:
        wanted = views.strings(body, "Instances")
        if not wanted:
            raise invalid("Instances must name at least one instance.")
        instances = [registry.get_instance(service_id, instance_id) for instance_id in wanted]
    page, token = paginate(instances, body)
    return {"Status": {i.id: i.health.value for i in page}, **token}


def get_operation(registry: Registry, body: Body) -> Body:
    operation = registry.operations.get(text(body, "OperationId", required=True, limit=255))
    return {"Operation": views.operation_view(operation, registry.identity.account_id)}


def list_operations(registry: Registry, body: Body) -> Body:
    conditions = {
        "NAMESPACE_ID": ("EQ",),
        "SERVICE_ID": ("EQ",),
        "STATUS": ("EQ", "IN"),
        "TYPE": ("EQ", "IN"),
        "UPDATE_DATE": ("BETWEEN",),
    }
    filters = read_filters(body, conditions)

    def field(operation: Any, name: str) -> str | None:
        if name in ("NAMESPACE_ID", "SERVICE_ID"):
            return operation.targets.get(name.removesuffix("_ID"))  # type: ignore[no-any-return]
        if name == "STATUS":
            return str(operation.status.value)
        return str(operation.type) if name == "TYPE" else str(operation.updated)

    page, token = paginate(select(registry.operations.all(), filters, field), body)
    return {"Operations": [{"Id": op.id, "Status": op.status.value} for op in page], **token}


def tag_resource(registry: Registry, body: Body) -> Body:
    arn = text(body, "ResourceARN", required=True, limit=1011)
    if "Tags" not in body:
        raise invalid("Tags is required.")
    registry.tag_resource(arn, views.tags(body))
    return {}


def untag_resource(registry: Registry, body: Body) -> Body:
    arn = text(body, "ResourceARN", required=True, limit=1011)
    registry.untag_resource(arn, views.strings(body, "TagKeys"))
    return {}


def list_tags_for_resource(registry: Registry, body: Body) -> Body:
    arn = text(body, "ResourceARN", required=True, limit=1011)
    registry.resource_for_arn(arn)
    return {"Tags": views.tags_view(registry.tags.get(arn))}
