"""Fixtures shared by every test package."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from fogbank._node import Node
from fogbank.config import NodeConfig
from fogbank.model import App

T = TypeVar("T")


class NodeThread:
    """A real node on its own event loop in a background thread, for blocking clients (boto3).

    Port 0 is used unless the config says otherwise, so tests never collide.
    """

    def __init__(self, config: NodeConfig, app: App, **node_options: Any) -> None:
        """`node_options` go to `Node` (e.g. `clock=` for deterministic rate limits)."""
        self.config = config
        self.app = app
        self.node_options = node_options
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.node: Node | None = None

    def call(self, make: Callable[[], Coroutine[Any, Any, T]], timeout: float = 60.0) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(make(), self.loop)
        return fut.result(timeout)

    def start(self) -> NodeThread:
        self.thread.start()

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
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
