"""The data plane as a raw ASGI application in front of the pipeline."""

from __future__ import annotations

import logging
import time

from fogbank._asgi import (
    BodyTooLarge,
    ClientGone,
    Receive,
    Scope,
    Send,
    lifespan,
    read_body,
)
from fogbank._errors import FogbankError
from fogbank.gateway._errors import headers_too_large, too_large
from fogbank.gateway._pipeline import MAX_BODY_BYTES, Pipeline
from fogbank.gateway._types import HttpRequest, HttpResponse

log = logging.getLogger("fogbank.gateway")

# API Gateway refuses requests whose headers (names and values) exceed about 10 KB.
MAX_HEADER_BYTES = 10 * 1024


def split_host(value: str) -> tuple[str, int]:
    """`name:3000` -> (`name`, 3000); `[::1]:3000` -> (`::1`, 3000); no port -> 0."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = value.partition(":")
    return host, int(port) if port.isdigit() else 0


def to_request(scope: Scope, body: bytes) -> HttpRequest:
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    host_header = ""
    for name, value in headers:
        if name == "host":
            host_header = value
            break
    host, port = split_host(host_header)
    server = scope.get("server") or ("127.0.0.1", 80)
    client = scope.get("client") or ("127.0.0.1", 0)
    raw_path = scope.get("raw_path")
    return HttpRequest(
        method=scope["method"],
        raw_path=raw_path.decode("latin-1") if raw_path else scope["path"],
        path=scope["path"],
        query_string=scope.get("query_string", b""),
        headers=headers,
        body=body,
        source_ip=client[0],
        host=(host or str(server[0])).lower(),
        port=port or int(server[1] or 80),
        scheme=scope.get("scheme", "http"),
        http_version=scope.get("http_version", "1.1"),
        received_ms=int(time.time() * 1000),
    )


class DataPlane:
    """ASGI 3 app: read the request, run the pipeline, write the (possibly streamed) response."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await lifespan(receive, send)
            return
        request = to_request(scope, b"")
        size = 0
        declared: str | None = None
        chunked = False
        for name, value in request.headers:
            size += len(name) + len(value)
            if name == "content-length":
                if declared is None:
                    declared = value
            elif name == "transfer-encoding":
                chunked = True
        if size > MAX_HEADER_BYTES:
            await _send(send, self.pipeline.reject(request, headers_too_large()))
            return
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            # Refused before a byte of the body is read: a client declaring 20 MB gets its
            # answer at once instead of a wait for data that may never come.
            await _send(send, self.pipeline.reject(request, too_large(None)))
            return
        if declared is None and not chunked:
            # Neither a length nor chunks: HTTP/1.1 says there is no body to wait for.
            await _send(send, await self.pipeline.handle(request))
            return
        try:
            request.body = await read_body(receive, MAX_BODY_BYTES)
        except BodyTooLarge:
            await _send(send, self.pipeline.reject(request, too_large(None)))
            return
        except ClientGone:
            return
        await _send(send, await self.pipeline.handle(request))


async def _send(send: Send, response: HttpResponse) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    if response.stream is None:
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
        return
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    try:
        async for chunk in response.stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except FogbankError as exc:
        # The body failed midway (an upstream hung up). The response is left unfinished, so the
        # server drops the connection and the client sees the body cut short, not a whole one.
        log.warning("response body cut short: %s", exc)
        return
    await send({"type": "http.response.body", "body": b""})
