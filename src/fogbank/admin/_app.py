"""The admin API on the control port: a raw ASGI application that boto3 talks to unchanged.

Requests are routed by method and path, as API Gateway's own endpoint routes them
(`/restapis/...`, `/apikeys`, `/usageplans/...` for `apigateway`; `/v2/apis/...` for
`apigatewayv2`); `GET /admin/openapi.json` serves the OpenAPI document describing all of it, and
is the only path that needs no token. Every other call must show the admin token (`_auth`).

Errors are `{"message": ...}` with `x-amzn-ErrorType` and `x-amzn-RequestId`; an unexpected
exception becomes a 500 and one log line with the request id, never a traceback to the client.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson

from fogbank._asgi import BodyTooLarge, ClientGone, Receive, Scope, Send, read_body
from fogbank.admin._auth import AuthFailure, check
from fogbank.admin._errors import AccessDenied, AdminError, BadRequest, NotFound, Unauthorized

OPENAPI_PATH = "/admin/openapi.json"
PREFIXES = ("/restapis", "/apikeys", "/usageplans", "/v2/", "/admin/")
"""Paths the admin API answers on the control port; everything else is the Lambda API's."""
MAX_BODY = 10 * 1024 * 1024

_log = logging.getLogger("fogbank.admin")


@dataclass(slots=True)
class AdminRequest:
    """One admin call: the path parameters, query, headers (lower-case names) and body."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    host: str = "localhost"

    def json(self) -> dict[str, Any]:
        """The JSON body as an object (`{}` when empty), or 400."""
        if not self.body.strip():
            return {}
        try:
            data = orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"Invalid JSON in the request body: {exc}") from None
        if not isinstance(data, dict):
            raise BadRequest("The request body must be a JSON object")
        return data


@dataclass(slots=True)
class Reply:
    status: int = 200
    body: Any = None


Handler = Callable[[AdminRequest], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Operation:
    """One route of the admin API: method, path template (`/restapis/{restapi_id}`), handler."""

    method: str
    template: str
    handler: Handler
    v2: bool = False
    """An `apigatewayv2` operation (its errors say `AccessDeniedException` for a bad token)."""
    pattern: re.Pattern[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        object.__setattr__(self, "pattern", re.compile(regex))


class AdminApi:
    """The admin API as an ASGI 3 application: operations, the token, the OpenAPI document."""

    def __init__(self, operations: Sequence[Operation], token: str) -> None:
        self.operations = list(operations)
        self.token = token
        self._document: bytes | None = None

    def document(self) -> bytes:
        if self._document is None:
            self._document = resources.files("fogbank.admin").joinpath("openapi.json").read_bytes()
        return self._document

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        rid = str(uuid.uuid4())
        path: str = scope["path"]
        v2 = path.startswith("/v2/")
        try:
            if path == OPENAPI_PATH and scope["method"] in ("GET", "HEAD"):
                await _send(send, 200, self.document(), rid, content_type=b"application/json")
                return
            reply = await self._handle(scope, receive, path, v2)
            body = b"" if reply.body is None else orjson.dumps(reply.body)
            await _send(send, reply.status, body, rid)
        except AdminError as exc:
            await _send(send, exc.status, orjson.dumps(exc.body()), rid, exc.error_type)
        except ClientGone:
            pass  # the caller left mid-body: a truncated request is never applied
        except Exception:
            _log.exception("admin API %s %s failed, request id %s", scope["method"], path, rid)
            body = orjson.dumps({"message": "Internal server error"})
            await _send(send, 500, body, rid, "InternalServerErrorException")

    async def _handle(self, scope: Scope, receive: Receive, path: str, v2: bool) -> Reply:
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        try:
            body = await read_body(receive, MAX_BODY)
        except BodyTooLarge:
            raise BadRequest("Request body is too large (10 MB at most)") from None
        raw_path = scope.get("raw_path") or path.encode()
        query = scope.get("query_string", b"")
        host = headers.get("host", "localhost")
        url = f"http://{host}{raw_path.decode('latin-1')}" + (
            f"?{query.decode('latin-1')}" if query else ""
        )
        try:
            check(self.token, method=scope["method"], url=url, headers=headers, body=body)
        except AuthFailure as exc:
            _log.info("admin API %s %s refused: %s", scope["method"], path, exc)
            refusal = "The security token included in the request is invalid"
            raise (AccessDenied if v2 else Unauthorized)(refusal) from None
        operation, params = self._route(scope["method"], raw_path.decode("latin-1"))
        request = AdminRequest(
            method=scope["method"],
            path=path,
            params=params,
            query=dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)),
            headers=headers,
            body=body,
            host=host,
        )
        return await operation.handler(request)

    def _route(self, method: str, raw_path: str) -> tuple[Operation, dict[str, str]]:
        path_known = False
        for operation in self.operations:
            found = operation.pattern.fullmatch(raw_path)
            if found is None:
                continue
            path_known = True
            if operation.method == method:
                return operation, {k: unquote(v) for k, v in found.groupdict().items()}
        if path_known:
            raise BadRequest(f"{method} is not supported on {raw_path}")
        raise NotFound(f"No admin operation at {raw_path}")


async def _send(
    send: Send,
    status: int,
    body: bytes,
    rid: str,
    error_type: str | None = None,
    *,
    content_type: bytes = b"application/json",
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"x-amzn-requestid", rid.encode()),
    ]
    if error_type is not None:
        headers.append((b"x-amzn-errortype", error_type.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
