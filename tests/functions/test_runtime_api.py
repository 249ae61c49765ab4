"""The Runtime API server over real HTTP: endpoints, status codes, bodies, keep-alive, streaming."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import h11
import httpx
import pytest

from fogbank.functions._runtime_api import MAX_RESPONSE_BYTES as MAX
from fogbank.functions._runtime_api import ReplyKind, RuntimeApiServer, RuntimeState
from fogbank.functions._types import Invocation

pytestmark = pytest.mark.anyio

ARN = "arn:aws:lambda:us-east-1:123456789012:function:fn"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def server() -> AsyncIterator[RuntimeApiServer]:
    srv = RuntimeApiServer()
    await srv.start()
    yield srv
    await srv.close()


@pytest.fixture
async def client(server: RuntimeApiServer) -> AsyncIterator[httpx.AsyncClient]:
    base = f"http://{server.address}/2018-06-01/runtime"
    async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=30) as http:
        yield http


def invocation(request_id: str = "req-1") -> Invocation:
    deadline = int(time.time() * 1000) + 30_000
    return Invocation(
        request_id=request_id, payload=b'{"x": 1}', invoked_arn=ARN, deadline_ms=deadline
    )


class RawClient:
    """One HTTP/1.1 connection driven by hand, for what httpx hides: reuse, chunks, trailers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    async def connect(cls, address: str) -> RawClient:
        host, _, port = address.partition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer)

    def send(self, *events: h11.Event) -> None:
        if (self.conn.our_state, self.conn.their_state) == (h11.DONE, h11.DONE):
            self.conn.start_next_cycle()
        for event in events:
            data = self.conn.send(event)
            if data:
                self.writer.write(data)

    def request(self, method: str, path: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        fields = [("Host", "runtime"), *headers]
        self.send(h11.Request(method=method, target=f"/2018-06-01/runtime{path}", headers=fields))

    async def receive(self) -> tuple[int, dict[str, str], bytes]:
        """The next response (or a 100 Continue), its headers and body."""
        status, headers, body = 0, {}, b""
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.reader.read(65536))
            elif isinstance(event, h11.InformationalResponse):
                return event.status_code, {}, b""
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return status, headers, body

    async def next_event(self) -> tuple[int, dict[str, str], bytes]:
        self.request("GET", "/invocation/next")
        self.send(h11.EndOfMessage())
        return await self.receive()

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def test_next_long_polls_then_delivers_the_event_and_its_headers(
    server: RuntimeApiServer, client: httpx.AsyncClient
) -> None:
    poll = asyncio.create_task(client.get("/invocation/next"))
    await server.settled.wait()  # the runtime is polling and nothing has been dispatched yet
    assert not poll.done()
    inv = replace(
        invocation(),
        trace_id="Root=1-00000000-000000000000000000000000",
        client_context='{"custom":\n{"a": 1}}',
        cognito_identity='{"cognitoIdentityId": "id", "cognitoIdentityPoolId": "pool"}',
        tenant_id="tenant-a",
    )
    handover = server.dispatch(inv)
    response = await poll
    assert response.status_code == 200
    assert response.content == b'{"x": 1}'
    assert response.headers["content-type"] == "application/json"
    assert response.headers["lambda-runtime-aws-request-id"] == "req-1"
    assert response.headers["lambda-runtime-deadline-ms"] == str(inv.deadline_ms)
    assert response.headers["lambda-runtime-invoked-function-arn"] == ARN
    assert response.headers["lambda-runtime-trace-id"] == inv.trace_id
    assert json.loads(response.headers["lambda-runtime-client-context"]) == {"custom": {"a": 1}}
    assert "pool" in response.headers["lambda-runtime-cognito-identity"]
    assert response.headers["lambda-runtime-aws-tenant-id"] == "tenant-a"
    assert handover.handed_at is not None
    assert server.first_next_at is not None
    assert server.state is RuntimeState.READY


async def test_next_without_optional_fields_still_gets_a_trace_id(
    server: RuntimeApiServer, client: httpx.AsyncClient
) -> None:
    server.dispatch(invocation())
    response = await client.get("/invocation/next")
    assert re.fullmatch(
        r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0",
        response.headers["lambda-runtime-trace-id"],
    )
    for absent in ("client-context", "cognito-identity", "aws-tenant-id"):
        assert f"lambda-runtime-{absent}" not in response.headers


async def test_response_is_accepted_and_resolves_the_invocation(
    server: RuntimeApiServer, client: httpx.AsyncClient
) -> None:
    handover = server.dispatch(invocation())
    await client.get("/invocation/next")
    response = await client.post("/invocation/req-1/response", content=b'{"ok": true}')
    assert response.status_code == 202
    assert response.json() == {"status": "OK"}
    reply = handover.reply.result()
    assert (reply.kind, reply.body, reply.error_type) == (ReplyKind.RESPONSE, b'{"ok": true}', None)
    assert server.state is RuntimeState.RESPONSE_SENT


async def test_a_response_outside_an_invocation_is_an_invalid_state_transition(
    server: RuntimeApiServer, client: httpx.AsyncClient
) -> None:
    early = await client.post("/invocation/req-1/response", content=b"0")
    assert early.status_code == 403
    assert early.json()["errorMessage"].startswith("State transition from Started to Invoc")
    server.dispatch(invocation())
    await client.get("/invocation/next")
    await client.post("/invocation/req-1/response", content=b"1")
    again = await client.post("/invocation/req-1/response", content=b"2")
    assert again.status_code == 403
    assert again.json() == {
        "errorMessage": "State transition from RuntimeResponseSentState to InvocationResponse "
        "failed for runtime. Error: State transition is not allowed",
        "errorType": "InvalidStateTransition",
    }


async def test_unknown_request_id_is_rejected_and_the_invocation_stays_open(
    server: RuntimeApiServer, client: httpx.AsyncClient
) -> None:
    handover = server.dispatch(invocation())
    await client.get("/invocation/next")
    for endpoint in ("response", "error"):
        wrong = await client.post(f"/invocation/not-the-id/{endpoint}", content=b"{}")
        assert wrong.status_code == 400
        assert wrong.json() == {
            "errorMessage": "Invalid request ID",
            "errorType": "InvalidRequestID",
        }
    assert not handover.reply.done()
    right = await client.post("/invocation/req-1/response", content=b"fine")
    assert right.status_code == 202
    assert handover.reply.result().body == b"fine"


async def test_error_takes_its_type_from_the_header_or_else_the_body(
    server: RuntimeApiServer, client: httpx.AsyncClient
) -> None:
    doc = {"errorMessage": "boom", "errorType": "ValueError", "stackTrace": ["line 1"]}
    for request_id, headers, expected in (
        ("a", {"Lambda-Runtime-Function-Error-Type": "Custom.Error"}, "Custom.Error"),
        ("b", {}, "ValueError"),
    ):
        handover = server.dispatch(invocation(request_id))
        await client.get("/invocation/next")
        response = await client.post(
            f"/invocation/{request_id}/error", content=json.dumps(doc), headers=headers
        )
        assert response.status_code == 202
        assert response.json() == {"status": "OK"}
        reply = handover.reply.result()
        assert (reply.kind, reply.error_type) == (ReplyKind.ERROR, expected)
        assert json.loads(reply.body) == doc


async def test_init_error_fails_the_waiting_invocation_and_ends_the_runtime(
    server: RuntimeApiServer, client: httpx.AsyncClient
) -> None:
    handover = server.dispatch(invocation())
    doc = {
        "errorMessage": "Unable to import module 'app'",
        "errorType": "Runtime.ImportModuleError",
    }
    response = await client.post(
        "/init/error",
        content=json.dumps(doc),
        headers={"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"},
    )
    assert response.status_code == 202
    reply = handover.reply.result()
    assert (reply.kind, reply.error_type) == (ReplyKind.INIT_ERROR, "Runtime.ImportModuleError")
    assert json.loads(reply.body) == doc
    assert server.settled.is_set()
    # Later invocations get the same error at once, and the runtime may not poll any more.
    assert server.dispatch(invocation("req-2")).reply.result() is reply
    after = await client.get("/invocation/next")
    assert after.status_code == 403
    assert after.json()["errorType"] == "InvalidStateTransition"


async def test_unknown_path_and_wrong_method(client: httpx.AsyncClient) -> None:
    missing = await client.get("/invocation/next/extra")
    assert missing.status_code == 404
    assert (await client.get("/nothing-here")).status_code == 404
    assert (await client.post("/invocation/next", content=b"x")).status_code == 405
    assert (await client.get("/init/error")).status_code == 405


async def test_oversized_response_gets_413_and_fails_the_invocation(
    server: RuntimeApiServer, client: httpx.AsyncClient
) -> None:
    handover = server.dispatch(invocation())
    await client.get("/invocation/next")
    response = await client.post("/invocation/req-1/response", content=b"x" * (MAX + 1))
    assert response.status_code == 413
    assert response.json() == {
        "errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "RequestEntityTooLarge",
    }
    reply = handover.reply.result()
    assert reply.error_type == "Function.ResponseSizeTooLarge"
    assert json.loads(reply.body) == {
        "errorMessage": "Response payload size (6291557 bytes) exceeded maximum allowed payload "
        "size (6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }
    # Exactly at the limit is fine, on the same keep-alive connection.
    handover = server.dispatch(invocation("req-2"))
    await client.get("/invocation/next")
    ok = await client.post("/invocation/req-2/response", content=b"x" * MAX)
    assert ok.status_code == 202
    assert len(handover.reply.result().body) == MAX


async def test_one_keep_alive_connection_carries_every_call(server: RuntimeApiServer) -> None:
    raw = await RawClient.connect(server.address)
    try:
        for request_id in ("first", "second"):
            handover = server.dispatch(invocation(request_id))
            status, headers, _ = await raw.next_event()
            assert (status, headers["lambda-runtime-aws-request-id"]) == (200, request_id)
            raw.request("POST", f"/invocation/{request_id}/response", [("Content-Length", "2")])
            raw.send(h11.Data(data=b"ok"), h11.EndOfMessage())
            assert (await raw.receive())[0] == 202
            assert handover.reply.result().body == b"ok"
    finally:
        await raw.close()


async def test_expect_100_continue_is_answered_before_the_body(server: RuntimeApiServer) -> None:
    handover = server.dispatch(invocation())
    raw = await RawClient.connect(server.address)
    try:
        await raw.next_event()
        headers = [("Content-Length", "4"), ("Expect", "100-continue")]
        raw.request("POST", "/invocation/req-1/response", headers)
        assert (await raw.receive())[0] == 100
        raw.send(h11.Data(data=b"body"), h11.EndOfMessage())
        assert (await raw.receive())[0] == 202
        assert handover.reply.result().body == b"body"
    finally:
        await raw.close()


async def _start_stream(raw: RawClient) -> None:
    await raw.next_event()
    headers = [
        ("Lambda-Runtime-Function-Response-Mode", "streaming"),
        ("Transfer-Encoding", "chunked"),
        ("Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"),
    ]
    raw.request("POST", "/invocation/req-1/response", headers)


async def test_streamed_chunks_reach_the_sink_as_they_arrive(server: RuntimeApiServer) -> None:
    received: list[bytes] = []
    arrived = asyncio.Event()

    async def sink(chunk: bytes) -> None:
        received.append(chunk)
        arrived.set()

    handover = server.dispatch(invocation(), sink)
    raw = await RawClient.connect(server.address)
    try:
        await _start_stream(raw)
        for n in range(3):
            arrived.clear()
            raw.send(h11.Data(data=f"part {n}".encode()))
            await arrived.wait()  # each chunk reaches the sink before the next is even sent
            assert not handover.reply.done()
        raw.send(h11.EndOfMessage())
        assert (await raw.receive())[0] == 202
    finally:
        await raw.close()
    assert received == [b"part 0", b"part 1", b"part 2"]
    reply = handover.reply.result()
    assert (reply.kind, reply.body, reply.streamed) == (ReplyKind.RESPONSE, b"", True)


async def test_a_streamed_error_arrives_in_the_trailers(server: RuntimeApiServer) -> None:
    received: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        received.append(chunk)

    handover = server.dispatch(invocation(), sink)
    doc = b'{"errorMessage": "broke", "errorType": "StreamError"}'
    raw = await RawClient.connect(server.address)
    try:
        await _start_stream(raw)
        trailers = [
            ("Lambda-Runtime-Function-Error-Type", "StreamError"),
            ("Lambda-Runtime-Function-Error-Body", base64.b64encode(doc).decode()),
        ]
        raw.send(h11.Data(data=b"partial"), h11.EndOfMessage(headers=trailers))
        assert (await raw.receive())[0] == 202
    finally:
        await raw.close()
    reply = handover.reply.result()
    assert (reply.kind, reply.error_type, reply.body) == (ReplyKind.ERROR, "StreamError", doc)
    assert received == [b"partial"]


async def test_a_failing_sink_does_not_break_the_runtime(server: RuntimeApiServer) -> None:
    async def sink(chunk: bytes) -> None:
        raise ConnectionResetError("client went away")

    handover = server.dispatch(invocation(), sink)
    raw = await RawClient.connect(server.address)
    try:
        await _start_stream(raw)
        raw.send(h11.Data(data=b"a"), h11.Data(data=b"b"), h11.EndOfMessage())
        assert (await raw.receive())[0] == 202
    finally:
        await raw.close()
    assert isinstance(handover.sink_error, ConnectionResetError)
    assert handover.reply.result().kind is ReplyKind.RESPONSE


async def test_an_event_is_not_handed_to_a_runtime_that_hung_up(
    server: RuntimeApiServer, client: httpx.AsyncClient
) -> None:
    raw = await RawClient.connect(server.address)
    raw.request("GET", "/invocation/next")
    raw.send(h11.EndOfMessage())
    await server.settled.wait()
    await raw.close()
    for _ in range(500):  # until the server has seen the hang-up
        if not server._connections:
            break
        await asyncio.sleep(0.01)
    server.dispatch(invocation())
    response = await client.get("/invocation/next")
    assert response.headers["lambda-runtime-aws-request-id"] == "req-1"
