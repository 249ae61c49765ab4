"""HTTP_PROXY integrations through a real gateway to a real scripted upstream: what the client
gets for each kind of answer, and the gateway's errors for upstreams that fail."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from fogbank.discovery._registry import Registry
from fogbank.model import Api, ApiKind, App, Identity, Integration, IntegrationType, Route, Stage

from .scripted import BIG, BIG_SHA, Scripted
from .test_discovered_services import Clock, Front

TIMEOUT_MS = 300


def proxy_app(port: int) -> App:
    """A REST API (stage `Prod`) and an HTTP API (stage `h`) sending every path upstream."""

    def route() -> Route:
        uri = f"http://127.0.0.1:{port}/{{proxy}}"
        integration = Integration(
            IntegrationType.HTTP_PROXY,
            uri=uri,
            timeout_ms=TIMEOUT_MS,
            payload_format_version="1.0",
        )
        return Route("ANY", "/{proxy+}", integration)

    rest = Api(
        api_id="restprox01",
        name="rest",
        kind=ApiKind.REST,
        routes=(route(),),
        stages={"Prod": Stage("Prod")},
    )
    http = Api(
        api_id="httpprox01",
        name="http",
        kind=ApiKind.HTTP,
        routes=(route(),),
        stages={"h": Stage("h")},
    )
    return App.build([], apis=[rest, http])


class Setup:
    def __init__(self, front: Front, upstream: Scripted) -> None:
        self.front = front
        self.upstream = upstream
        self.client = httpx.Client(base_url=front.base, timeout=10)

    def get(self, path: str, method: str = "GET", **kwargs: object) -> httpx.Response:
        return self.client.request(method, path, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def setup() -> Iterator[Setup]:
    upstream = Scripted()
    registry = Registry(Identity())
    try:
        with Front(proxy_app(upstream.port), registry, zone=None, clock=Clock()) as front:
            made = Setup(front, upstream)
            with made.client:
                yield made
    finally:
        upstream.stop()
        registry.close()


@pytest.mark.parametrize("stage", ["/Prod", "/h"])
def test_a_chunked_answer_reaches_the_client(setup: Setup, stage: str) -> None:
    resp = setup.get(f"{stage}/chunked")
    assert (resp.status_code, resp.content) == (200, b"hello world")
    assert resp.headers["content-type"] == "text/plain"


def test_a_large_answer_is_streamed_whole(setup: Setup) -> None:
    with setup.client.stream("GET", "/Prod/big") as resp:
        assert resp.headers["content-length"] == str(len(BIG))
        digest = hashlib.sha256()
        for chunk in resp.iter_bytes():
            digest.update(chunk)
    assert digest.hexdigest() == BIG_SHA
    assert setup.get("/Prod/ok").content == b"ok"
    assert setup.upstream.connections == 1


@pytest.mark.parametrize("path", ["/Prod/cut-length", "/h/cut-chunked"])
def test_an_answer_cut_short_reaches_the_client_cut_short(setup: Setup, path: str) -> None:
    # Not a whole-looking 200: the gateway drops the client's connection too.
    with pytest.raises(httpx.RemoteProtocolError):
        setup.get(path)
    assert setup.get("/Prod/ok").status_code == 200


def test_a_hung_upstream_times_out(setup: Setup) -> None:
    rest = setup.get("/Prod/hang")
    assert rest.status_code == 504
    assert rest.json() == {"message": "Endpoint request timed out"}
    assert rest.headers["x-amzn-errortype"] == "IntegrationTimeout"
    http = setup.get("/h/hang")
    assert (http.status_code, http.json()) == (503, {"message": "Service Unavailable"})


@pytest.mark.parametrize(("stage", "status"), [("/Prod", 502), ("/h", 503)])
def test_an_upstream_that_fails_answers_with_the_gateways_error(
    setup: Setup, stage: str, status: int
) -> None:
    for path in ("/garbage", "/hang-up", "/cut-small"):
        resp = setup.get(f"{stage}{path}")
        assert resp.status_code == status
        assert resp.headers["content-type"] == "application/json"


def test_keep_alive_goes_on_after_a_connection_close_answer(setup: Setup) -> None:
    bodies = [setup.get(f"/Prod/{path}").content for path in ("close", "ok", "ok", "eof")]
    assert bodies == [b"bye", b"ok", b"ok", b"until the end"]
    # `close` and `eof` end their connections; the two `ok` share one.
    assert setup.upstream.connections == 2


def test_head_answers_have_no_body(setup: Setup) -> None:
    resp = setup.get("/Prod/head", "HEAD")
    assert (resp.status_code, resp.content) == (200, b"")
    assert resp.headers["content-length"] == "1234"
    assert setup.get("/Prod/ok").content == b"ok"
    assert setup.upstream.connections == 1


@pytest.mark.parametrize(
    ("path", "status", "header"),
    [("/no-content", 204, ("x-kind", "none")), ("/not-modified", 304, ("etag", '"v1"'))],
)
def test_answers_without_a_body(
    setup: Setup, path: str, status: int, header: tuple[str, str]
) -> None:
    resp = setup.get(f"/Prod{path}")
    assert (resp.status_code, resp.content) == (status, b"")
    assert resp.headers[header[0]] == header[1]
    assert "transfer-encoding" not in resp.headers
    assert setup.get("/Prod/ok").content == b"ok"
    assert setup.upstream.connections == 1


def test_the_request_reaches_the_upstream_without_hop_by_hop_headers(setup: Setup) -> None:
    resp = setup.get(
        "/Prod/echo?x=1",
        "POST",
        content=b'{"k": 1}',
        headers={"x-custom": "yes", "te": "trailers", "keep-alive": "timeout=5"},
    )
    head, _, body = resp.content.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    names = {line.partition(b":")[0] for line in lines[1:]}
    assert lines[0] == b"POST /echo?x=1 HTTP/1.1"
    assert f"host: 127.0.0.1:{setup.upstream.port}".encode() in lines
    assert b"x-custom: yes" in lines
    assert b"content-length: 8" in lines
    assert not names & {b"connection", b"te", b"keep-alive", b"transfer-encoding"}
    assert body == b'{"k": 1}'
