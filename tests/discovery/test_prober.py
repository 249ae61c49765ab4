"""The health prober against real sockets: HTTP, HTTPS and TCP checks, `FailureThreshold` in both
directions, hung endpoints, the instances it must leave alone, and instances that come and go.
Rounds are driven with `probe_once`; one test runs the loop itself."""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fogbank.discovery import HealthStatus, Owner, Registry
from fogbank.discovery._prober import HealthProber
from fogbank.model import (
    DiscoveryServiceSpec,
    HealthCheckConfig,
    Identity,
    NamespaceSpec,
    NamespaceType,
)

from ..conftest import eventually

pytestmark = pytest.mark.anyio

WEB = NamespaceSpec("Web", "web", NamespaceType.HTTP)
HTTP3 = DiscoveryServiceSpec(
    "Http3", "http3", "Web", health_check=HealthCheckConfig("HTTP", "/health", 3)
)
HTTP1 = DiscoveryServiceSpec(
    "Http1", "http1", "Web", health_check=HealthCheckConfig("HTTP", "/", 1)
)
HTTPS1 = DiscoveryServiceSpec(
    "Https1", "https1", "Web", health_check=HealthCheckConfig("HTTPS", "/ready", 1)
)
TCP1 = DiscoveryServiceSpec("Tcp1", "tcp1", "Web", health_check=HealthCheckConfig("TCP", "/", 1))
CUSTOM = DiscoveryServiceSpec("Custom", "custom", "Web", custom_health_failure_threshold=1)
PLAIN = DiscoveryServiceSpec("Plain", "plain", "Web")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def registry() -> Iterator[Registry]:
    registry = Registry(Identity(region="us-east-1", account_id="123456789012"))
    registry.apply_template([WEB], [HTTP3, HTTP1, HTTPS1, TCP1, CUSTOM, PLAIN])
    yield registry
    registry.close()


@pytest.fixture
async def prober(registry: Registry) -> AsyncIterator[HealthProber]:
    prober = HealthProber(
        registry, interval_s=0.1, timeout_s=0.2, connect_timeout_s=1.0, tcp_timeout_s=1.0
    )
    yield prober
    await prober.stop()


@pytest.fixture
def caplog_info(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="fogbank")
    return caplog


class Endpoint:
    """A tiny HTTP/1.1 server: answers `status` (keeping the connection open), or never answers
    while `hang` is set."""

    def __init__(self) -> None:
        self.status = 200
        self.hang = False
        self.paths: list[str] = []
        self.connections = 0
        self.on_request: Callable[[], object] = lambda: None
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.hang:
                await reader.read()  # until the prober gives up and closes
                return
            while True:  # keeps the connection open, so a prober could reuse it
                head = await reader.readuntil(b"\r\n\r\n")
                self.paths.append(head.split(b" ")[1].decode())
                self.on_request()
                writer.write(b"HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n" % self.status)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(tls: ssl.SSLContext | None = None) -> AsyncIterator[Endpoint]:
    endpoint = Endpoint()
    server = await asyncio.start_server(endpoint.handle, "127.0.0.1", 0, ssl=tls)
    endpoint.port = server.sockets[0].getsockname()[1]
    try:
        yield endpoint
    finally:
        server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def register(
    registry: Registry,
    spec: DiscoveryServiceSpec,
    instance_id: str,
    port: int,
    owner: Owner = Owner.API,
) -> None:
    attrs = {"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": str(port)}
    registry.register_instance(spec.service_id, instance_id, attrs, owner=owner)


def health(registry: Registry, spec: DiscoveryServiceSpec, instance_id: str) -> HealthStatus:
    return registry.get_instance(spec.service_id, instance_id).health


async def rounds(prober: HealthProber, n: int) -> None:
    for _ in range(n):
        await prober.probe_once()


async def test_threshold_failures_turn_unhealthy_and_as_many_passes_turn_back(
    registry: Registry, prober: HealthProber, caplog_info: pytest.LogCaptureFixture
) -> None:
    async with serving() as endpoint:
        register(registry, HTTP3, "web-1", endpoint.port)
        await prober.probe_once()
        assert endpoint.paths == ["/health"]
        assert health(registry, HTTP3, "web-1") is HealthStatus.HEALTHY
        endpoint.status = 500
        await rounds(prober, 2)
        assert health(registry, HTTP3, "web-1") is HealthStatus.HEALTHY
        await prober.probe_once()
        assert health(registry, HTTP3, "web-1") is HealthStatus.UNHEALTHY
        endpoint.status = 302  # a 3xx passes (and is not followed)
        await rounds(prober, 2)
        assert health(registry, HTTP3, "web-1") is HealthStatus.UNHEALTHY
        await prober.probe_once()
        assert health(registry, HTTP3, "web-1") is HealthStatus.HEALTHY
        assert endpoint.connections == 7  # a new connection for every check
    lines = [r.getMessage() for r in caplog_info.records if "web-1" in r.getMessage()]
    assert lines == [
        f"discovery: instance web-1 of service http3 is UNHEALTHY: "
        f"GET http://127.0.0.1:{endpoint.port}/health: HTTP 500",
        "discovery: instance web-1 of service http3 is HEALTHY",
    ]


async def test_only_consecutive_results_count(registry: Registry, prober: HealthProber) -> None:
    async with serving() as endpoint:
        register(registry, HTTP3, "web-1", endpoint.port)
        for status in (500, 500, 200, 500, 500):
            endpoint.status = status
            await prober.probe_once()
        assert health(registry, HTTP3, "web-1") is HealthStatus.HEALTHY
        await prober.probe_once()
        assert health(registry, HTTP3, "web-1") is HealthStatus.UNHEALTHY


async def test_tcp_check_connects(registry: Registry, prober: HealthProber) -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        open_port = listening.getsockname()[1]
        register(registry, TCP1, "up", open_port)
        register(registry, TCP1, "down", closed_port())
        await prober.probe_once()
        assert health(registry, TCP1, "up") is HealthStatus.HEALTHY
        assert health(registry, TCP1, "down") is HealthStatus.UNHEALTHY
        # Re-registered at a listening port (health is kept): the next pass counts.
        register(registry, TCP1, "down", open_port)
        assert health(registry, TCP1, "down") is HealthStatus.UNHEALTHY
        await prober.probe_once()
        assert health(registry, TCP1, "down") is HealthStatus.HEALTHY


async def test_a_refused_connection_is_named(
    registry: Registry, prober: HealthProber, caplog_info: pytest.LogCaptureFixture
) -> None:
    port = closed_port()
    register(registry, HTTP1, "gone", port)
    await prober.probe_once()
    assert health(registry, HTTP1, "gone") is HealthStatus.UNHEALTHY
    assert f"GET http://127.0.0.1:{port}/: Connection refused" in caplog_info.text


async def test_an_endpoint_that_never_answers_is_unhealthy(
    registry: Registry, prober: HealthProber, caplog_info: pytest.LogCaptureFixture
) -> None:
    async with serving() as endpoint:
        endpoint.hang = True
        register(registry, HTTP1, "hung", endpoint.port)
        await prober.probe_once()
        assert endpoint.connections == 1
    assert health(registry, HTTP1, "hung") is HealthStatus.UNHEALTHY
    assert "no answer within 0.2 s" in caplog_info.text


def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with an expired certificate for another name: Route 53 accepts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "elsewhere.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now - datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


async def test_https_checks_do_not_validate_certificates(
    registry: Registry, prober: HealthProber, tmp_path: Path
) -> None:
    async with serving(self_signed(tmp_path)) as endpoint:
        register(registry, HTTPS1, "tls", endpoint.port)
        await prober.probe_once()
        assert endpoint.paths == ["/ready"]
        assert health(registry, HTTPS1, "tls") is HealthStatus.HEALTHY
        endpoint.status = 503
        await prober.probe_once()
        assert health(registry, HTTPS1, "tls") is HealthStatus.UNHEALTHY


async def test_supervised_and_custom_health_instances_are_left_alone(
    registry: Registry, prober: HealthProber
) -> None:
    async with serving() as endpoint:
        endpoint.status = 500
        register(registry, HTTP1, "supervised", endpoint.port, Owner.SUPERVISOR)
        register(registry, CUSTOM, "custom", endpoint.port)
        register(registry, PLAIN, "plain", endpoint.port)
        register(registry, HTTP1, "probed", endpoint.port)
        await rounds(prober, 2)
        assert endpoint.connections == 2  # "probed", twice
    assert health(registry, HTTP1, "supervised") is HealthStatus.HEALTHY
    assert health(registry, CUSTOM, "custom") is HealthStatus.HEALTHY
    assert health(registry, PLAIN, "plain") is HealthStatus.UNKNOWN
    assert health(registry, HTTP1, "probed") is HealthStatus.UNHEALTHY


async def test_a_deregistered_instance_is_forgotten(
    registry: Registry, prober: HealthProber
) -> None:
    async with serving() as endpoint:
        endpoint.status = 500
        register(registry, HTTP3, "web-1", endpoint.port)
        await rounds(prober, 2)
        registry.deregister_instance(HTTP3.service_id, "web-1")
        await prober.probe_once()
        register(registry, HTTP3, "web-1", endpoint.port)
        await prober.probe_once()  # the count starts again: 1 of 3, not 3 of 3
        assert health(registry, HTTP3, "web-1") is HealthStatus.HEALTHY
        await rounds(prober, 2)
        assert health(registry, HTTP3, "web-1") is HealthStatus.UNHEALTHY


async def test_an_instance_deregistered_while_probed_is_dropped(
    registry: Registry, prober: HealthProber
) -> None:
    async with serving() as endpoint:
        endpoint.status = 500
        register(registry, HTTP1, "brief", endpoint.port)
        endpoint.on_request = lambda: registry.deregister_instance(HTTP1.service_id, "brief")
        await prober.probe_once()
        assert endpoint.paths == ["/"]
    assert registry.instances(HTTP1.service_id) == ()


async def test_an_instance_without_an_address_fails(
    registry: Registry, prober: HealthProber, caplog_info: pytest.LogCaptureFixture
) -> None:
    registry.register_instance(HTTP1.service_id, "nowhere", {"AWS_INSTANCE_PORT": "80"})
    await prober.probe_once()
    assert health(registry, HTTP1, "nowhere") is HealthStatus.UNHEALTHY
    assert "no AWS_INSTANCE_IPV4, AWS_INSTANCE_IPV6 or AWS_INSTANCE_CNAME to check" in (
        caplog_info.text
    )


async def test_the_loop_probes_every_interval_and_picks_up_new_instances(
    registry: Registry, prober: HealthProber
) -> None:
    async with serving() as endpoint:
        await prober.start()
        register(registry, HTTP1, "late", endpoint.port)
        await eventually(lambda: len(endpoint.paths) >= 2, "two rounds")
        endpoint.status = 500
        await eventually(
            lambda: health(registry, HTTP1, "late") is HealthStatus.UNHEALTHY, "UNHEALTHY"
        )
        endpoint.status = 200
        await eventually(lambda: health(registry, HTTP1, "late") is HealthStatus.HEALTHY, "HEALTHY")
        await prober.stop()
