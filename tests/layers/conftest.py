"""Real servers for the discovery layer's tests: Cloud Map's API under uvicorn, and instances.

The layer's `python/` directory goes on `sys.path` here, as Lambda puts `/opt/python` there, so
the tests import `fogbank_discovery` exactly as a function does.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import fogbank
from fogbank._asgi import Receive, Scope, Send
from fogbank.discovery._cloudmap import CloudMapApi
from fogbank.discovery._records import Instance, Service
from fogbank.discovery._registry import Registry
from fogbank.model import Identity

from ..conftest import AsgiServer, LoopThread

LAYER_PYTHON = Path(fogbank.__file__).parent / "layers" / "discovery" / "python"
if str(LAYER_PYTHON) not in sys.path:
    sys.path.insert(0, str(LAYER_PYTHON))

NAMESPACE = "shop.local"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class TargetRecorder:
    """ASGI middleware noting each call's Cloud Map operation (`X-Amz-Target`'s last part)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.operations: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-amz-target":
                    self.operations.append(value.decode().rpartition(".")[2])
        await self.app(scope, receive, send)

    def take(self) -> list[str]:
        """The operations called since the last `take`."""
        taken, self.operations[:] = list(self.operations), []
        return taken


class CloudMapServer(LoopThread):
    """`CloudMapApi` over a real `Registry`, served by uvicorn on 127.0.0.1 (port 0) from an event
    loop in a background thread. The registry is not locked, so every test-side change runs on
    that loop (`run`)."""

    def __init__(self) -> None:
        super().__init__()
        self.registry = Registry(Identity())
        self.recorder = TargetRecorder(CloudMapApi(self.registry))
        self.server: AsgiServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def start(self) -> CloudMapServer:
        self.server = AsgiServer(self.recorder, self)
        return self

    def stop(self) -> None:
        """Stop serving and close the loop (a second call does nothing)."""
        if self.server is not None:
            self.server.stop()
        super().stop()

    def service(self, name: str) -> Service:
        """The service `name` in `shop.local`, created when missing."""
        return self.run(lambda: self.registry.ensure_service(NAMESPACE, name))

    def register(
        self,
        service: str,
        instance_id: str,
        port: int | str | None,
        *,
        zone: str | None = None,
        host: str = "127.0.0.1",
        **custom: str,
    ) -> None:
        """Register (or update) an instance of `service` at `host:port`."""
        attributes = {"AWS_INSTANCE_IPV4": host, **custom}
        if port is not None:
            attributes["AWS_INSTANCE_PORT"] = str(port)
        if zone is not None:
            attributes["AVAILABILITY_ZONE"] = zone
        service_id = self.service(service).id
        self.run(lambda: self.registry.register_instance(service_id, instance_id, attributes))

    def deregister(self, service: str, instance_id: str) -> None:
        service_id = self.service(service).id
        self.run(lambda: self.registry.deregister_instance(service_id, instance_id))

    def instances(self, service: str) -> list[Instance]:
        service_id = self.service(service).id
        return list(self.run(lambda: self.registry.instances(service_id)))


@pytest.fixture
def cloudmap() -> Iterator[CloudMapServer]:
    server = CloudMapServer().start()
    try:
        yield server
    finally:
        server.stop()


class InstanceServer:
    """A real HTTP server standing for one service instance: it answers every request with JSON
    naming itself and echoing the method, path and body, with the status `/status/<code>` asks."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                owner.requests.append(f"{self.command} {self.path}")
                status = int(self.path.rpartition("/")[2]) if "/status/" in self.path else 200
                doc = {
                    "name": owner.name,
                    "method": self.command,
                    "path": self.path,
                    "body": body,
                    "type": self.headers.get("Content-Type"),
                }
                raw = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = answer

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet tests

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


class HangUpServer:
    """Accepts connections, reads the request and closes without answering (a crashing
    instance), counting the connections."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed by stop()
            with conn:
                self.accepted += 1
                conn.recv(65536)

    def stop(self) -> None:
        # shutdown wakes the blocked accept() on Linux; close alone may not.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(10)


@pytest.fixture
def instance_server() -> Iterator[Callable[[str], InstanceServer]]:
    """Start named instance servers; all are stopped after the test."""
    started: list[InstanceServer] = []

    def start(name: str) -> InstanceServer:
        server = InstanceServer(name)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def hang_up_server() -> Iterator[HangUpServer]:
    server = HangUpServer()
    yield server
    server.stop()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
