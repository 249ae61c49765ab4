"""The Lambda Invoke API on the control port: a raw ASGI 3 application that boto3 talks to unchanged.

Operations: `Invoke`, `InvokeWithResponseStream`, and the read-only `ListFunctions`, `GetFunction`,
`GetFunctionConfiguration`, `ListAliases`, `GetAlias`, `ListVersionsByFunction` (see `_catalog`).
Signed and unsigned requests are both accepted: the signature is never checked.

Request rules, where AWS leaves room or fogbank had to choose:

- An empty (or all-whitespace) payload is invoked as `{}`, as Lambda does for a call without one.
- Any other payload must be JSON, else 400 `InvalidRequestContentException`
  (`Could not parse request body into json: Could not parse payload into json: ...`).
- Size limits: 6 MiB for `RequestResponse`, `DryRun` and streaming, 1 MiB for `Event`, else 413
  `RequestEntityTooLargeException` with AWS's wording for each.
- Content-Type: boto3 sends none, the AWS CLI and curl send anything. Only `multipart/*` is refused
  (415 `UnsupportedMediaTypeException`): such a body is never a JSON document. Everything else is
  judged by whether the body parses as JSON.
- `X-Amz-Client-Context` must be base64 of a JSON object, else 400 `InvalidRequestContentException`;
  the function gets the decoded text.
- A `PER_TENANT` function needs `X-Amz-Tenant-Id`; other functions refuse one.

Errors are `{"Type", "message"}` with `x-amzn-ErrorType`; an unexpected exception becomes 500
`ServiceException` and one log line with the request id, never a traceback to the client.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import random
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson

from fogbank._asgi import ClientGone, Receive, Scope, Send, lifespan
from fogbank.functions._catalog import Catalog
from fogbank.functions._resolve import Resolved, ValidationError, resolve
from fogbank.functions._stream_response import stream_invocation
from fogbank.functions._types import (
    LOG_TAIL_BYTES,
    MAX_ASYNC_PAYLOAD,
    MAX_SYNC_PAYLOAD,
    AsyncSubmitter,
    InvalidParameterValue,
    InvalidRequestContent,
    InvocationError,
    Invoker,
    InvokeRequest,
    RequestTooLarge,
    UnsupportedMediaType,
)
from fogbank.model import App, Identity, TenancyMode

Headers = list[tuple[bytes, bytes]]

_log = logging.getLogger("fogbank.functions.invoke_api")

_FUNCTIONS = "/2015-03-31/functions"
_STREAMING = "/2021-11-15/functions/"
_JSON = (b"content-type", b"application/json")
_SYNC, _EVENT, _DRY_RUN = "RequestResponse", "Event", "DryRun"
_INVOCATION_TYPES = (_SYNC, _EVENT, _DRY_RUN)


class ServiceError(InvocationError):
    """Something went wrong inside fogbank; the details are in the log, not the response."""


class InvokeApi:
    """The Lambda API (invoke and read-only operations) as an ASGI 3 application.

    `app_provider` returns the app currently deployed (it changes on redeploy), `invoker` runs
    synchronous and streaming invocations, `submitter` queues `Event` ones, `identity` names the
    region and account in every ARN. `rng` drives alias weights (seed it in tests).
    """

    def __init__(
        self,
        app_provider: Callable[[], App],
        invoker: Invoker,
        submitter: AsyncSubmitter,
        identity: Identity,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._app = app_provider
        self._invoker = invoker
        self._submitter = submitter
        self._identity = identity
        self._rng = rng
        self._catalog = Catalog(identity)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await lifespan(receive, send)
            return
        rid = str(uuid.uuid4())
        try:
            await self._route(scope, receive, send, rid)
        except InvocationError as exc:
            await _send_json(send, exc.status, exc.body(), rid, exc.error_type)
        except ClientGone:
            pass
        except Exception:
            _log.exception(
                "Lambda API %s %s failed, request id %s", scope["method"], scope["path"], rid
            )
            failure = ServiceError(
                f"An internal error occurred (request id {rid}); see the fogbank log."
            )
            await _send_json(send, failure.status, failure.body(), rid, failure.error_type)

    async def _route(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith(_FUNCTIONS):
            rest = path[len(_FUNCTIONS) :]
            if rest in ("", "/"):
                if method == "GET":
                    doc = self._catalog.list_functions(self._app(), _query(scope))
                    return await _send_json(send, 200, doc, rid)
            elif rest[0] == "/":
                parts = rest[1:].split("/")
                if parts[0]:
                    if method == "POST" and len(parts) == 2 and parts[1] == "invocations":
                        return await self._invoke(scope, receive, send, rid, parts[0])
                    if method == "GET":
                        found = self._read(parts, _query(scope))
                        if found is not None:
                            return await _send_json(send, 200, found, rid)
        elif path.startswith(_STREAMING) and method == "POST":
            parts = path[len(_STREAMING) :].split("/")
            if len(parts) == 2 and parts[0] and parts[1] == "response-streaming-invocations":
                return await self._invoke_stream(scope, receive, send, rid, parts[0])
        message = f"Unknown operation: {method} {path}"
        await _send_json(send, 404, {"message": message}, rid, "UnknownOperationException")

    def _read(self, parts: list[str], query: dict[str, str]) -> dict[str, Any] | None:
        """The read-only operations under `/functions/{name}`; None for a path that is none."""
        app, name, cat = self._app(), parts[0], self._catalog
        match parts[1:]:
            case []:
                return cat.get_function(app, name, query.get("Qualifier"))
            case ["configuration"]:
                return cat.get_function_configuration(app, name, query.get("Qualifier"))
            case ["aliases"]:
                return cat.list_aliases(app, name, query)
            case ["aliases", alias] if alias:
                return cat.get_alias(app, name, alias)
            case ["versions"]:
                return cat.list_versions(app, name, query)
        return None

    async def _prepare(
        self,
        scope: Scope,
        receive: Receive,
        headers: dict[bytes, bytes],
        name: str,
        invocation_type: str,
        rid: str,
        *,
        stream: bool = False,
    ) -> tuple[InvokeRequest, bool]:
        """Everything `Invoke` and `InvokeWithResponseStream` check before running anything."""
        tail = _log_type(headers.get(b"x-amz-log-type"))
        content_type = headers.get(b"content-type")
        if content_type is not None and content_type[:10].lower() == b"multipart/":
            raise UnsupportedMediaType(
                f"Unsupported Content-Type: {content_type.decode('latin-1')}"
            )
        limit = MAX_ASYNC_PAYLOAD if invocation_type == _EVENT else MAX_SYNC_PAYLOAD
        payload, size = await _read_body(receive, limit)
        if size > limit:
            raise RequestTooLarge(_too_large(size, invocation_type))
        qualifier = _query(scope).get("Qualifier") if scope["query_string"] else None
        found = resolve(self._app(), name, qualifier, identity=self._identity, rng=self._rng)
        payload = _check_json(payload)
        tenant = _tenant(found, headers.get(b"x-amz-tenant-id"))
        raw_context = headers.get(b"x-amz-client-context")
        trace = headers.get(b"x-amzn-trace-id")
        request = InvokeRequest(
            function_name=found.function.name,
            config=found.config,
            payload=payload,
            request_id=rid,
            invoked_arn=found.invoked_arn,
            client_context=None if raw_context is None else _client_context(raw_context),
            tenant_id=tenant,
            tail_log=tail,
            trace_id="" if trace is None else trace.decode("latin-1"),
            stream=stream,
        )
        return request, tail

    async def _invoke(
        self, scope: Scope, receive: Receive, send: Send, rid: str, name: str
    ) -> None:
        headers = dict(scope["headers"])
        raw_type = headers.get(b"x-amz-invocation-type")
        invocation_type = _choice(raw_type, _INVOCATION_TYPES, "invocationType", _SYNC)
        request, tail = await self._prepare(scope, receive, headers, name, invocation_type, rid)
        rid_b = rid.encode()
        if invocation_type == _EVENT:
            await self._submitter.submit(request)
            return await _send(send, 202, [_JSON, (b"x-amzn-RequestId", rid_b)], b"")
        if invocation_type == _DRY_RUN:
            return await _send(send, 204, [(b"x-amzn-RequestId", rid_b)], b"")
        result = await self._invoker.invoke(request)
        out = [
            _JSON,
            (b"x-amzn-RequestId", rid_b),
            (b"X-Amz-Executed-Version", result.executed_version.encode()),
        ]
        if result.function_error:
            out.append((b"X-Amz-Function-Error", result.function_error.encode()))
        if tail:
            out.append((b"X-Amz-Log-Result", base64.b64encode(result.log[-LOG_TAIL_BYTES:])))
        await _send(send, 200, out, result.payload)

    async def _invoke_stream(
        self, scope: Scope, receive: Receive, send: Send, rid: str, name: str
    ) -> None:
        headers = dict(scope["headers"])
        raw_type = headers.get(b"x-amz-invocation-type")
        invocation_type = _choice(raw_type, (_SYNC, _DRY_RUN), "invocationType", _SYNC)
        request, tail = await self._prepare(
            scope, receive, headers, name, invocation_type, rid, stream=True
        )
        if invocation_type == _DRY_RUN:
            return await _send(send, 204, [(b"x-amzn-RequestId", rid.encode())], b"")
        await stream_invocation(self._invoker, request, send, tail, _log)


async def _send(send: Send, status: int, headers: Headers, body: bytes) -> None:
    if status != 204:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_json(
    send: Send, status: int, doc: Any, rid: str, error_type: str | None = None
) -> None:
    """Answer with a JSON document; `error_type` becomes `x-amzn-ErrorType`."""
    headers = [_JSON, (b"x-amzn-RequestId", rid.encode())]
    if error_type is not None:
        headers.append((b"x-amzn-ErrorType", error_type.encode()))
    await _send(send, status, headers, orjson.dumps(doc))


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, int]:
    """The request body and its size; past `limit` the rest is read and dropped, not kept."""
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if message["type"] == "http.disconnect":
            raise ClientGone
        return body, len(body)
    chunks, size = [body], len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return (b"".join(chunks) if size <= limit else b""), size


def _query(scope: Scope) -> dict[str, str]:
    raw: bytes = scope["query_string"]
    return dict(parse_qsl(raw.decode("latin-1"))) if raw else {}


def _choice(raw: bytes | None, allowed: tuple[str, ...], member: str, default: str) -> str:
    if raw is None:
        return default
    value = raw.decode("latin-1")
    if value not in allowed:
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
            f"constraint: Member must satisfy enum value set: [{', '.join(allowed)}]"
        )
    return value


def _log_type(raw: bytes | None) -> bool:
    return raw is not None and _choice(raw, ("None", "Tail"), "logType", "None") == "Tail"


def _too_large(size: int, invocation_type: str) -> str:
    if invocation_type == _EVENT:
        return f"{size} byte payload is too large for the Event invocation type (limit {MAX_ASYNC_PAYLOAD} bytes)"
    return f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction operation"


def _check_json(payload: bytes) -> bytes:
    if not payload or payload.isspace():
        return b"{}"
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        # orjson refuses integers past 64 bits, which Lambda's parser takes: ask the stdlib too.
        try:
            json.loads(payload, parse_constant=_refuse_constant)
        except ValueError:
            raise InvalidRequestContent(
                f"Could not parse request body into json: Could not parse payload into json: {exc}"
            ) from None
    return payload


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"Non-standard token '{name}'")


def _client_context(raw: bytes) -> str:
    try:
        text = base64.b64decode(raw, validate=True).decode("utf-8")
        if isinstance(orjson.loads(text), dict):
            return text
    except (binascii.Error, UnicodeDecodeError, orjson.JSONDecodeError):
        pass
    raise InvalidRequestContent("Client context must be a valid Base64-encoded JSON object.")


def _tenant(found: Resolved, raw: bytes | None) -> str | None:
    per_tenant = found.function.tenancy is TenancyMode.PER_TENANT
    if raw is None or not raw:
        if per_tenant:
            raise InvalidParameterValue(
                "The invoked function is enabled with tenancy configuration. "
                "Add a valid tenant ID in your request and try again."
            )
        return None
    if not per_tenant:
        raise InvalidParameterValue(
            "The invoked function is not enabled with tenancy configuration. "
            "Remove the tenant ID from your request and try again."
        )
    return raw.decode("utf-8", "replace")
