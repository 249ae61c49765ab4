"""Fixtures shared by every test package: an event loop in a thread (a node's loop, as blocking
test code sees it), an ASGI app served by uvicorn on it, a real node on it, and waiting for a
condition with a deadline."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import boto3
import uvicorn
from botocore.config import Config
from mypy_boto3_servicediscovery import ServiceDiscoveryClient

from fogbank._node import Node
from fogbank.config import NodeConfig
from fogbank.model import App

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread. Objects that live on a node's loop (a registry,
    a gateway) are touched from test code through `run` or `call`, as the node would."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, make: Callable[[], Coroutine[Any, Any, T]], timeout: float = 60.0) -> T:
        """Run the coroutine `make()` on the loop and return its result."""
        fut: Future[T] = asyncio.run_coroutine_threadsafe(make(), self.loop)
        return fut.result(timeout)

    def run(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run the plain callable `fn` on the loop and return its result."""

        async def hop() -> T:
            return fn()

        return self.call(hop, timeout)

    def stop(self) -> None:
        """Stop and close the loop (a second call does nothing)."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class AsgiServer:
    """An ASGI app served by uvicorn on 127.0.0.1 (a free port) on a `LoopThread`."""

    def __init__(self, app: Any, on: LoopThread) -> None:
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only for sockets
        # that say TCP, and without it each keep-alive response waits ~40 ms for a delayed ACK.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            app, loop="none", lifespan="off", access_log=False, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.serving: Future[None] | None = asyncio.run_coroutine_threadsafe(
            self.server.serve(sockets=[self.sock]), on.loop
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

    def stop(self) -> None:
        """Stop serving (a second call does nothing)."""
        if self.serving is not None:
            self.server.should_exit = True
            self.serving.result(30)
            self.serving = None
            self.sock.close()


class NodeThread(LoopThread):
    """A real node on its own event loop in a background thread, for blocking clients (boto3).

    Port 0 is used unless the config says otherwise, so tests never collide.
    """

    def __init__(self, config: NodeConfig, app: App, **node_options: Any) -> None:
        """`node_options` go to `Node` (e.g. `clock=` for deterministic rate limits)."""
        super().__init__()
        self.config = config
        self.app = app
        self.node_options = node_options
        self.node: Node | None = None

    def start(self) -> NodeThread:
        async def boot() -> Node:
            node = Node(self.config, self.app, **self.node_options)
            await node.start()
            return node

        self.node = self.call(boot)
        return self

    @property
    def url(self) -> str:
        assert self.node is not None
        return self.node.control_url

    def stop(self) -> None:
        if self.node is not None:
            node = self.node
            self.call(node.stop)
            self.node = None
        super().stop()


def wait_until(condition: Callable[[], Any], what: str, within: float = 30.0) -> Any:
    """Poll `condition` until it returns something truthy, and return that."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


async def eventually(
    condition: Callable[[], Any], what: str = "the condition", within: float = 15.0
) -> Any:
    """`wait_until` for coroutines: polls without blocking the loop."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def cloud_map_client(url: str, *, inject_host_prefix: bool = False) -> ServiceDiscoveryClient:
    """boto3's `servicediscovery` client for the Cloud Map API at `url`, without retries; with
    `inject_host_prefix` it sends `DiscoverInstances` to `data-<host>` as botocore's model says."""
    return boto3.client(
        "servicediscovery",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="fogbank",
        aws_secret_access_key="fogbank",
        config=Config(inject_host_prefix=inject_host_prefix, retries={"total_max_attempts": 1}),
    )
