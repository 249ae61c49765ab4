"""The Cloud Map API served for real: a registry and `CloudMapApi` on uvicorn (127.0.0.1, port
0) in a background event loop, and boto3 `servicediscovery` clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mypy_boto3_servicediscovery import ServiceDiscoveryClient

from fogbank.discovery import Registry
from fogbank.discovery._cloudmap import CloudMapApi
from fogbank.model import Identity

from ..conftest import AsgiServer, LoopThread, cloud_map_client

ACCOUNT = "123456789012"
IDENTITY = Identity(region="us-east-1", account_id=ACCOUNT)


class ApiThread(LoopThread):
    """A registry and its Cloud Map API on their own loop thread (the node's situation): test
    code that touches the registry directly goes through `run`."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__()
        self.registry = self.run(lambda: Registry(IDENTITY, path))
        self.app = CloudMapApi(self.registry)
        self.server = AsgiServer(self.app, self)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.server.url

    def reopen(self, path: Path | None = None) -> Registry:
        """Serve a new registry (on `path`), as a restarted node would; the old one is closed."""
        old = self.registry
        self.registry = self.run(lambda: Registry(IDENTITY, path))
        self.app.registry = self.registry
        self.run(old.close)
        return self.registry

    def client(self, *, inject_host_prefix: bool = False) -> ServiceDiscoveryClient:
        return cloud_map_client(self.url, inject_host_prefix=inject_host_prefix)

    def stop(self) -> None:
        self.server.stop()
        self.run(self.registry.close)
        super().stop()


@pytest.fixture(scope="module")
def served() -> Iterator[ApiThread]:
    served = ApiThread()
    yield served
    served.stop()


@pytest.fixture
def api(served: ApiThread) -> ApiThread:
    """The module's server, with an empty registry for each test."""
    served.reopen()
    return served


@pytest.fixture(scope="module")
def module_client(served: ApiThread) -> ServiceDiscoveryClient:
    return served.client()


@pytest.fixture
def sd(api: ApiThread, module_client: ServiceDiscoveryClient) -> ServiceDiscoveryClient:
    """A boto3 `servicediscovery` client for `api`, with `inject_host_prefix=False`."""
    return module_client
