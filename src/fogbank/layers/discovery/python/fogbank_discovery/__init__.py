"""Find and call the instances of a Cloud Map service from inside a function.

Shipped as the layer `fogbank-discovery`: a function that lists it can write

    import fogbank_discovery
    status, headers, body = fogbank_discovery.request("GET", "catalog", "shop.local", "/items")

The module-level functions share one `DiscoveryClient` per endpoint, built from the function's
environment (`AWS_ENDPOINT_URL_SERVICEDISCOVERY`, `AVAILABILITY_ZONE`) on first use, so a warm
function reuses its cached answers. Standard library only; Python 3.9 and later.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from ._client import ENDPOINT_VARIABLE, ZONE_VARIABLE, DiscoveryClient
from ._types import (
    DiscoveryError,
    Endpoint,
    InstanceUnreachable,
    NamespaceNotFound,
    NoHealthyInstance,
    Response,
    ServiceNotFound,
)

__all__ = [
    "DiscoveryClient",
    "DiscoveryError",
    "Endpoint",
    "InstanceUnreachable",
    "NamespaceNotFound",
    "NoHealthyInstance",
    "Response",
    "ServiceNotFound",
    "client",
    "instances",
    "mark_failed",
    "request",
    "resolve",
    "url",
]

_clients: dict[tuple[str | None, str | None], DiscoveryClient] = {}
_clients_lock = threading.Lock()


def client(endpoint: str | None = None) -> DiscoveryClient:
    """The shared client for `endpoint`, else for `AWS_ENDPOINT_URL_SERVICEDISCOVERY`.

    The environment is read on each call (cheaply), so a changed variable takes effect; the
    client, and so its cache, lives as long as the process.
    """
    key = (endpoint or os.environ.get(ENDPOINT_VARIABLE), os.environ.get(ZONE_VARIABLE))
    with _clients_lock:
        found = _clients.get(key)
        if found is None:
            found = DiscoveryClient.from_environment(os.environ, endpoint=endpoint)
            _clients[key] = found
        return found


def resolve(
    service: str,
    namespace: str,
    *,
    query: Mapping[str, str] | None = None,
    endpoint: str | None = None,
) -> Endpoint:
    """One healthy instance of `service` in `namespace` (see `DiscoveryClient.resolve`)."""
    return client(endpoint).resolve(service, namespace, query=query)


def instances(
    service: str,
    namespace: str,
    *,
    query: Mapping[str, str] | None = None,
    endpoint: str | None = None,
) -> list[Endpoint]:
    """Every discovered instance with an address, the caller's zone first."""
    return client(endpoint).instances(service, namespace, query=query)


def url(
    service: str,
    namespace: str,
    path: str = "/",
    *,
    query: Mapping[str, str] | None = None,
    endpoint: str | None = None,
) -> str:
    """`http://host:port/path` for one healthy instance of the service."""
    return client(endpoint).url(service, namespace, path, query=query)


def mark_failed(
    instance: Endpoint, seconds: float | None = None, *, endpoint: str | None = None
) -> None:
    """Keep `instance` out of `resolve`'s choice for a while (see `DiscoveryClient.mark_failed`)."""
    client(endpoint).mark_failed(instance, seconds)


def request(
    method: str,
    service: str,
    namespace: str,
    path: str = "/",
    *,
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    query: Mapping[str, str] | None = None,
    endpoint: str | None = None,
) -> Response:
    """Call one instance of the service over HTTP, retrying once on another instance after a
    connection failure when that is safe (see `DiscoveryClient.request`)."""
    return client(endpoint).request(
        method,
        service,
        namespace,
        path,
        body=body,
        headers=headers,
        timeout=timeout,
        query=query,
    )
