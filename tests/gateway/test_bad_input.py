"""What clients should not send, sent over raw sockets: the node answers like a server, never hangs,
and keeps serving the next request.

Every exchange has a socket timeout, so a hang fails the test instead of stalling the suite.
Weaknesses found are marked `xfail(strict=True)` with the component at fault.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .conftest import EventLog, Served, scratch_dir, serving, write_app_template

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {{Runtime: python3.11, CodeUri: src/, Timeout: 30}}
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Handler: fogbank_bad_input_app.echo
      Events:
        Rest:
          Type: Api
          Properties: {{Path: '/rest/{{proxy+}}', Method: any}}
        Http:
          Type: HttpApi
          Properties: {{Path: '/http/{{proxy+}}', Method: any}}
  Ticker:
    Type: AWS::Serverless::Function
    Properties:
      Handler: fogbank_bad_input_app.ticker
      Environment: {{Variables: {{GATE_DIR: '{gate}'}}}}
      FunctionUrlConfig: {{AuthType: NONE, InvokeMode: RESPONSE_STREAM}}
"""
TIMEOUT_S = 20.0
"""The longest any exchange may take; far above what a healthy answer needs."""
INVALID = b"Invalid HTTP request received."
"""uvicorn's body for a request its parser (httptools) refuses."""
PATHS = {"rest": "/Prod/rest", "http": "/http"}


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Node:
    served: Served
    gate: Path
    """Where the streaming handler looks for its go-files."""

    @property
    def port(self) -> int:
        return self.served.port

    def assert_still_serving(self) -> None:
        response = httpx.get(self.served.base + "/http/still-there", timeout=TIMEOUT_S)
        assert response.status_code == 200
        assert response.json()["path"] == "/http/still-there"


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    with scratch_dir("fogbank-bad-input-") as directory:
        gate = directory / "gate"
        gate.mkdir()
        template = write_app_template(directory, TEMPLATE.format(gate=gate))
        with serving(template, directory / "state") as served:
            yield Node(served, gate)


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def no_server_errors() -> Iterator[None]:
    """Nothing here may make the HTTP server or the gateway log an error (a 500 in disguise)."""
    errors = _Errors()
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "fogbank")]
    for logger in loggers:
        logger.addHandler(errors)
    yield
    for logger in loggers:
        logger.removeHandler(errors)
    assert [record.getMessage() for record in errors.records] == []


def connect(port: int, timeout: float = TIMEOUT_S) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_reply(sock: socket.socket) -> Reply | None:
    """One HTTP response from the socket; None if the server closed without answering.

    A socket timeout propagates: a server that hangs fails the test.
    """
    response = http.client.HTTPResponse(sock)
    try:
        response.begin()
    except (http.client.RemoteDisconnected, ConnectionResetError):
        return None
    headers = {name.lower(): value for name, value in response.getheaders()}
    return Reply(response.status, headers, response.read())


def exchange(port: int, data: bytes, *, timeout: float = TIMEOUT_S) -> Reply | None:
    """Send raw bytes on a new connection and read the answer."""
    with connect(port, timeout) as sock:
        # The server may stop reading and answer before all is sent.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        return read_reply(sock)


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)), id="tls"),
        pytest.param(b"\x00" * 64 + b"\r\n\r\n", id="nul-bytes"),
        pytest.param(b"G@T /http/x HTTP/1.1\r\nHost: x\r\n\r\n", id="bad-method"),
        pytest.param(b"GET /http/x HTTP/7.5\r\nHost: x\r\n\r\n", id="bad-version"),
        pytest.param(b"GET /http/x HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n", id="bad-header"),
        pytest.param(
            b"POST /http/x HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
            id="bad-content-length",
        ),
        pytest.param(
            b"POST /http/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            id="bad-chunk-size",
        ),
        # Raw bytes that are not ASCII (here not UTF-8 either) in the request target.
        pytest.param(b"GET /http/caf\xe9\xff HTTP/1.1\r\nHost: x\r\n\r\n", id="raw-non-ascii-path"),
    ],
)
def test_malformed_requests_get_400_and_a_closed_connection(node: Node, data: bytes) -> None:
    with connect(node.port) as sock:
        sock.sendall(data)
        reply = read_reply(sock)
        assert reply is not None
        assert (reply.status, reply.body) == (400, INVALID)
        assert reply.headers["connection"] == "close"
        assert closed_by_server(sock)
    node.assert_still_serving()


@pytest.mark.parametrize("kind", ["rest", "http"])
def test_percent_encoded_invalid_utf8_in_the_path(node: Node, kind: str) -> None:
    reply = exchange(
        node.port, f"GET {PATHS[kind]}/%FF%FE HTTP/1.1\r\nHost: x\r\n\r\n".encode("ascii")
    )
    assert reply is not None
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    echoed = httpx.Response(200, content=reply.body).json()
    if kind == "rest":
        # REST APIs pass the path and its parameters on still percent-encoded.
        assert echoed["path"] == "/rest/%FF%FE"
        assert echoed["pathParameters"] == {"proxy": "%FF%FE"}
    else:
        # HTTP APIs decode the path; bytes that are not UTF-8 become U+FFFD.
        assert echoed["path"] == "/http/\ufffd\ufffd"
        assert echoed["pathParameters"] == {"proxy": "\ufffd\ufffd"}
    node.assert_still_serving()


@pytest.mark.parametrize("kind", ["rest", "http"])
def test_invalid_utf8_body_of_a_text_type(node: Node, kind: str) -> None:
    body = b"caf\xe9 \xff\xfe"
    response = httpx.post(
        node.served.base + PATHS[kind] + "/upload",
        content=body,
        headers={"content-type": "text/plain; charset=utf-8"},
        timeout=TIMEOUT_S,
    )
    assert response.status_code == 200
    echoed = response.json()
    # AWS would replace the bad bytes; fogbank keeps every byte, base64 with the flag set.
    assert echoed["isBase64Encoded"] is True
    assert base64.b64decode(echoed["body"]) == body


HUGE_HEADERS = [
    pytest.param([("X-Big", "a" * 100_000)], id="100KB-value"),
    pytest.param([("X-Big", "a" * 1_000_000)], id="1MB-value"),
    pytest.param([(f"X-Header-{n}", "v") for n in range(10_000)], id="10000-headers"),
]


def _request_with(headers: list[tuple[str, str]]) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return f"GET /http/huge HTTP/1.1\r\nHost: x\r\n{lines}Connection: close\r\n\r\n".encode()


@pytest.mark.parametrize("headers", HUGE_HEADERS)
def test_huge_headers_neither_hang_nor_stop_the_server(
    node: Node, headers: list[tuple[str, str]]
) -> None:
    reply = exchange(node.port, _request_with(headers))
    # Answered (whatever the status) or closed cleanly, within the socket timeout.
    assert reply is None or reply.status in (200, 400, 431)
    node.assert_still_serving()


@pytest.mark.parametrize("headers", HUGE_HEADERS)
def test_huge_headers_are_refused(node: Node, headers: list[tuple[str, str]]) -> None:
    reply = exchange(node.port, _request_with(headers))
    assert reply is None or reply.status in (400, 431)


def _declared_body(size: int, sent: bytes) -> bytes:
    head = f"POST /Prod/rest/big HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n"
    return head.encode("ascii") + sent


def test_body_past_10mb_gets_413_while_the_rest_is_still_coming(node: Node) -> None:
    # 20 MB declared, a little over 10 MB sent: the gateway stops reading and answers at once.
    reply = exchange(node.port, _declared_body(20_000_000, b"x" * (10 * 1024 * 1024 + 1)))
    assert reply is not None
    assert reply.status == 413
    assert reply.body == b'{"message":"Request Too Long"}'
    assert reply.headers["x-amzn-errortype"] == "RequestTooLongException"
    node.assert_still_serving()


def test_declared_oversized_body_is_refused_before_it_arrives(node: Node) -> None:
    with connect(node.port, timeout=3.0) as sock:
        sock.sendall(_declared_body(20_000_000, b"x" * 1024))
        try:
            reply = read_reply(sock)
        except TimeoutError:
            reply = None
    assert reply is not None
    assert reply.status == 413


def test_body_limit_answer_names_the_request(node: Node) -> None:
    reply = exchange(node.port, _declared_body(20_000_000, b"x" * (10 * 1024 * 1024 + 1)))
    assert reply is not None
    assert reply.status == 413
    assert reply.headers["x-amzn-requestid"] != "-"


def _wait_for(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_client_gone_mid_body_is_not_sent_to_the_function(
    node: Node, proxy_events: EventLog
) -> None:
    with connect(node.port) as sock:
        sock.sendall(_declared_body(100, b"TRUNCATED!"))
    node.assert_still_serving()

    def dispatched() -> bool:
        return any(event.get("body") == "TRUNCATED!" for _, event in proxy_events.events)

    assert not _wait_for(dispatched)


@pytest.mark.parametrize("kind", ["rest", "http"])
def test_slowly_streamed_body_arrives_whole(node: Node, kind: str) -> None:
    pieces = [f"piece {n};".encode() for n in range(8)]

    def trickle() -> Iterator[bytes]:
        for piece in pieces:
            time.sleep(0.05)
            yield piece

    response = httpx.post(
        node.served.base + PATHS[kind] + "/slow",
        content=trickle(),
        headers={"content-type": "text/plain"},
        timeout=TIMEOUT_S,
    )
    assert response.status_code == 200
    assert response.json()["body"] == b"".join(pieces).decode()
    assert response.json()["isBase64Encoded"] is False


def test_client_leaving_a_function_url_stream_midway(node: Node) -> None:
    for stale in node.gate.iterdir():
        stale.unlink()
    host = node.served.url_host("Ticker")
    with connect(node.port) as sock:
        sock.sendall(f"GET /ticks HTTP/1.1\r\nHost: {host}\r\n\r\n".encode("ascii"))
        received = b""
        while b"tick 0\n" not in received:
            chunk = sock.recv(4096)
            assert chunk, "the stream ended before its first tick"
            received += chunk
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    # The client is gone with the stream half sent; let the handler run to its end.
    (node.gate / "go1").touch()
    (node.gate / "go2").touch()
    node.assert_still_serving()
    again = httpx.get(node.served.base + "/ticks", headers={"host": host}, timeout=TIMEOUT_S)
    assert again.status_code == 200
    assert again.content == b"tick 0\ntick 1\ntick 2\n"
