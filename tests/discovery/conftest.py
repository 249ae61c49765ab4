"""The Cloud Map API served for real: a registry and `CloudMapApi` on uvicorn (127.0.0.1, port
0) in a background event loop, and boto3 `servicediscovery` clients pointed at it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

import boto3
import pytest
import uvicorn
from botocore.config import Config
from mypy_boto3_servicediscovery import ServiceDiscoveryClient

from fogbank.discovery import Registry
from fogbank.discovery._cloudmap import CloudMapApi
from fogbank.model import Identity

T = TypeVar("T")
ACCOUNT = "123456789012"
IDENTITY = Identity(region="us-east-1", account_id=ACCOUNT)


class ApiThread:
    """A registry and its Cloud Map API on their own loop thread (the node's situation): test
    code that touches the registry directly goes through `run`."""

    def __init__(self, path: Path | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.registry = self.run(lambda: Registry(IDENTITY, path))
        self.app = CloudMapApi(self.registry)
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only for sockets
        # that say TCP, and without it each keep-alive response waits ~40 ms for a delayed ACK.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            self.app,
            loop="none",
            lifespan="off",
            access_log=False,
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.serving: Future[None] = asyncio.run_coroutine_threadsafe(
            self.server.serve(sockets=[self.sock]), self.loop
        )
        deadline = time.monotonic() + 30
        while not self.server.started:
            if self.serving.done():
                self.serving.result()
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, call: Callable[[], T]) -> T:
        """Run `call` on the loop that owns the registry and return its result."""

        async def hop() -> T:
            return call()

        return asyncio.run_coroutine_threadsafe(hop(), self.loop).result(10)

    def reopen(self, path: Path | None = None) -> Registry:
        """Serve a new registry (on `path`), as a restarted node would; the old one is closed."""
        old = self.registry
        self.registry = self.run(lambda: Registry(IDENTITY, path))
        self.app.registry = self.registry
        self.run(old.close)
        return self.registry

    def client(self, *, inject_host_prefix: bool = False) -> ServiceDiscoveryClient:
        return boto3.client(
            "servicediscovery",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(inject_host_prefix=inject_host_prefix, retries={"total_max_attempts": 1}),
        )

    def stop(self) -> None:
        self.server.should_exit = True
        self.serving.result(30)
        self.run(self.registry.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.sock.close()


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
