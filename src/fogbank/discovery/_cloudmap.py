"""The Cloud Map API: AWS JSON 1.1 over `POST /`, as boto3's `servicediscovery` client speaks it.

The operation is named by `X-Amz-Target: Route53AutoNaming_v20170314.<Operation>`; bodies are
JSON both ways (`application/x-amz-json-1.1`); errors are `{"__type": code, "Message": …}` with
the status botocore's model gives the code. Any `Host` is accepted, including the `data-` prefix
boto3 puts before `DiscoverInstances` and `DiscoverInstancesRevision` calls.

Operations run synchronously on the event loop, like every other registry caller (see
`_registry`): none of them awaits, so each is atomic with respect to DNS and the gateway.
"""

from __future__ import annotations

import logging
import uuid

import orjson

from fogbank._asgi import BodyTooLarge, ClientGone, Receive, Scope, Send, lifespan, read_body
from fogbank._errors import FogbankError
from fogbank.discovery import _cloudmap_instances as instances
from fogbank.discovery import _cloudmap_operations as resources
from fogbank.discovery._cloudmap_operations import Handler
from fogbank.discovery._records import CloudMapError
from fogbank.discovery._registry import Registry
from fogbank.model import NamespaceType

TARGET_PREFIX = "Route53AutoNaming_v20170314."
MAX_BODY = 1024 * 1024
"""Far above any valid request (the largest, `RegisterInstance`, carries 5,000 characters of
attributes); a bigger body is refused as soon as it passes the limit."""
_CONTENT_TYPE = b"application/x-amz-json-1.1"
_PREFIX = TARGET_PREFIX.encode()

log = logging.getLogger("fogbank.discovery.api")

OPERATIONS: dict[str, Handler] = {
    "CreateHttpNamespace": resources.create_namespace(NamespaceType.HTTP),
    "CreatePrivateDnsNamespace": resources.create_namespace(NamespaceType.DNS_PRIVATE),
    "CreatePublicDnsNamespace": resources.create_namespace(NamespaceType.DNS_PUBLIC),
    "CreateService": resources.create_service,
    "DeleteNamespace": resources.delete_namespace,
    "DeleteService": resources.delete_service,
    "DeleteServiceAttributes": resources.delete_service_attributes,
    "DeregisterInstance": instances.deregister_instance,
    "DiscoverInstances": instances.discover_instances,
    "DiscoverInstancesRevision": instances.discover_instances_revision,
    "GetInstance": instances.get_instance,
    "GetInstancesHealthStatus": instances.get_instances_health_status,
    "GetNamespace": resources.get_namespace,
    "GetOperation": instances.get_operation,
    "GetService": resources.get_service,
    "GetServiceAttributes": resources.get_service_attributes,
    "ListInstances": instances.list_instances,
    "ListNamespaces": resources.list_namespaces,
    "ListOperations": instances.list_operations,
    "ListServices": resources.list_services,
    "ListTagsForResource": instances.list_tags_for_resource,
    "RegisterInstance": instances.register_instance,
    "TagResource": instances.tag_resource,
    "UntagResource": instances.untag_resource,
    "UpdateHttpNamespace": resources.update_namespace(NamespaceType.HTTP),
    "UpdateInstanceCustomHealthStatus": instances.update_instance_custom_health_status,
    "UpdatePrivateDnsNamespace": resources.update_namespace(NamespaceType.DNS_PRIVATE),
    "UpdatePublicDnsNamespace": resources.update_namespace(NamespaceType.DNS_PUBLIC),
    "UpdateService": resources.update_service,
    "UpdateServiceAttributes": resources.update_service_attributes,
}
"""Every operation of botocore's `servicediscovery` model, by name."""


def is_cloud_map(scope: Scope) -> bool:
    """Whether a control-port request is for this API (its `X-Amz-Target` names Cloud Map)."""
    for name, value in scope.get("headers", ()):
        if name == b"x-amz-target":
            return bool(value.startswith(_PREFIX))
    return False


class CloudMapApi:
    """The Cloud Map API over a registry, as an ASGI 3 application."""

    def __init__(self, registry: Registry, *, max_body: int = MAX_BODY) -> None:
        self.registry = registry
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        rid = str(uuid.uuid4())
        target = _target(scope)
        try:
            body = await self._handle(scope, receive, target)
            await _send(send, 200, orjson.dumps(body), rid)
        except CloudMapError as exc:
            error = {"__type": exc.code, "Message": exc.message, **exc.fields}
            await _send(send, exc.status, orjson.dumps(error), rid)
        except ClientGone:
            pass  # the caller left mid-body: a truncated request is never applied
        except FogbankError as exc:  # the state file could not be written: nothing changed
            log.error("Cloud Map %s failed, request id %s: %s", target, rid, exc)
            error = {"__type": "InternalFailure", "Message": str(exc)}
            await _send(send, 500, orjson.dumps(error), rid)
        except Exception:
            log.exception("Cloud Map %s failed, request id %s", target, rid)
            error = {"__type": "InternalFailure", "Message": "Internal server error"}
            await _send(send, 500, orjson.dumps(error), rid)

    async def _handle(self, scope: Scope, receive: Receive, target: str) -> dict[str, object]:
        if scope["method"] != "POST":
            raise CloudMapError("UnknownOperationException", "Cloud Map takes POST / only.")
        handler = OPERATIONS.get(target.removeprefix(TARGET_PREFIX))
        if not target.startswith(TARGET_PREFIX) or handler is None:
            raise CloudMapError("UnknownOperationException", f"Unknown operation {target!r}.")
        try:
            raw = await read_body(receive, self.max_body)
        except BodyTooLarge:
            raise CloudMapError(
                "SerializationException", f"The request body is over {self.max_body} bytes."
            ) from None
        try:
            body = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError as exc:
            raise CloudMapError("SerializationException", f"Malformed JSON: {exc}") from None
        if not isinstance(body, dict):
            raise CloudMapError("SerializationException", "The request body must be an object.")
        return handler(self.registry, body)


def _target(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-amz-target":
            return str(value.decode("latin-1"))
    return ""


async def _send(send: Send, status: int, body: bytes, rid: str) -> None:
    headers = [
        (b"content-type", _CONTENT_TYPE),
        (b"content-length", str(len(body)).encode()),
        (b"x-amzn-requestid", rid.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
