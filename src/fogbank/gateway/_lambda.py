"""Lambda proxy integrations (REST payload 1.0, HTTP API 1.0 / 2.0, Function URLs), streaming included."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import orjson

from fogbank.functions._resolve import Resolved, resolve
from fogbank.functions._types import (
    InvocationError,
    Invoker,
    InvokeRequest,
    InvokeResult,
    TooManyRequests,
)
from fogbank.gateway._errors import (
    BadProxyOutput,
    GatewayError,
    bad_integration_output,
    integration_timeout,
)
from fogbank.gateway._events import function_url_event, http_event, http_event_v1, rest_event
from fogbank.gateway._pipeline import CALLER_NOTE, Exchange
from fogbank.gateway._responses import http_response, rest_response
from fogbank.gateway._stagevars import substitute_stage_variables
from fogbank.gateway._types import HttpResponse, RouteMatch, UrlMatch
from fogbank.model import ApiKind, App, Identity, IntegrationType

# Node's streaming handlers (and fogbank's) put a JSON prelude before the body, then 8 NULs.
PRELUDE_DELIMITER = b"\0" * 8
_DONE = object()
URL_TIMEOUT_MS = 900_000


class LambdaProxy:
    """Turns a matched request into an invocation and the result into an HTTP response."""

    def __init__(self, invoker: Invoker, identity: Identity) -> None:
        self._invoker = invoker
        self._identity = identity
        self._cache: dict[tuple[str, str | None], Resolved] = {}
        self._cache_app: App | None = None

    async def __call__(self, exchange: Exchange) -> HttpResponse | None:
        match = exchange.match
        if isinstance(match, UrlMatch):
            return await self._function_url(exchange, match)
        if not isinstance(match, RouteMatch):
            return None
        integration = match.route.integration
        if integration.type is not IntegrationType.AWS_PROXY:
            return None
        assert integration.function_name is not None
        name = substitute_stage_variables(integration.function_name, match.stage.variables)
        kind = match.api.kind
        if kind is ApiKind.REST:
            event = rest_event(
                exchange.request,
                match,
                request_id=exchange.request_id,
                identity=self._identity,
                authorizer=exchange.authorizer,
                caller=exchange.notes.get(CALLER_NOTE),
            )
            mapper: Callable[[bytes], HttpResponse] = rest_response
        elif integration.payload_format_version == "1.0":
            event = http_event_v1(
                exchange.request,
                match,
                request_id=exchange.request_id,
                identity=self._identity,
                authorizer=exchange.authorizer,
            )
            mapper = partial(rest_response, kind=ApiKind.HTTP)
        else:
            event = http_event(
                exchange.request,
                match,
                request_id=exchange.request_id,
                identity=self._identity,
                authorizer=exchange.authorizer,
            )
            mapper = http_response
        request = self._request(exchange.app, name, integration.qualifier, event, exchange, kind)
        if integration.response_transfer_mode == "STREAM":
            return await self._stream(request, kind, integration.timeout_ms, mapper)
        result = await self._invoke(request, kind, integration.timeout_ms)
        return _mapped(result, kind, mapper)

    async def _function_url(self, exchange: Exchange, match: UrlMatch) -> HttpResponse:
        url = match.url
        event = function_url_event(
            exchange.request, match, request_id=exchange.request_id, identity=self._identity
        )
        request = self._request(
            exchange.app, url.function_name, url.qualifier, event, exchange, ApiKind.HTTP
        )
        if url.invoke_mode == "RESPONSE_STREAM":
            return await self._stream(request, ApiKind.HTTP, URL_TIMEOUT_MS, http_response)
        result = await self._invoke(request, ApiKind.HTTP, URL_TIMEOUT_MS)
        return _mapped(result, ApiKind.HTTP, http_response)

    def _request(
        self,
        app: App,
        name: str,
        qualifier: str | None,
        event: dict[str, Any],
        exchange: Exchange,
        kind: ApiKind,
    ) -> InvokeRequest:
        found = self._resolved(app, name, qualifier, kind)
        return InvokeRequest(
            function_name=found.function.name,
            config=found.config,
            payload=orjson.dumps(event),
            request_id=exchange.request_id,
            invoked_arn=found.invoked_arn,
            trace_id=exchange.request.header("x-amzn-trace-id") or "",
        )

    def _resolved(self, app: App, name: str, qualifier: str | None, kind: ApiKind) -> Resolved:
        """Resolve the integration's target; memoised per app snapshot unless weights apply."""
        if app is not self._cache_app:
            self._cache.clear()
            self._cache_app = app
        key = (name, qualifier)
        found = self._cache.get(key)
        if found is not None:
            return found
        try:
            found = resolve(app, name, qualifier, identity=self._identity)
        except InvocationError as exc:
            # The template named a function that is not deployed (a stage variable, say).
            raise _integration_failure(kind) from exc
        alias = found.function.aliases.get(found.qualifier or "")
        if alias is None or not alias.additional_weights:
            self._cache[key] = found
        return found

    async def _invoke(self, request: InvokeRequest, kind: ApiKind, timeout_ms: int) -> InvokeResult:
        try:
            return await invoke_within(self._invoker, request, timeout_ms / 1000.0)
        except TimeoutError:
            raise integration_timeout(kind) from None
        except TooManyRequests as exc:
            raise _throttled(kind) from exc
        except InvocationError as exc:
            raise _integration_failure(kind) from exc

    async def _stream(
        self,
        request: InvokeRequest,
        kind: ApiKind,
        timeout_ms: int,
        mapper: Callable[[bytes], HttpResponse],
    ) -> HttpResponse:
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def sink(chunk: bytes) -> None:
            await queue.put(chunk)

        task = asyncio.ensure_future(self._invoker.invoke(request, sink))
        task.add_done_callback(lambda _t: queue.put_nowait(_DONE))
        try:
            first = await asyncio.wait_for(queue.get(), timeout_ms / 1000.0)
        except TimeoutError:
            task.add_done_callback(_consume)
            raise integration_timeout(kind) from None
        if first is _DONE:
            # The handler returned a plain value: answer as a buffered integration would.
            try:
                result = task.result()
            except TooManyRequests as exc:
                raise _throttled(kind) from exc
            except InvocationError as exc:
                raise _integration_failure(kind) from exc
            return _mapped(result, kind, mapper)
        status, headers, rest = _prelude(first)
        return HttpResponse(status=status, headers=headers, stream=_drain(queue, rest, task))


async def _drain(
    queue: asyncio.Queue[Any], first: bytes, task: asyncio.Future[InvokeResult]
) -> AsyncIterator[bytes]:
    if first:
        yield first
    while True:
        item = await queue.get()
        if item is _DONE:
            break
        yield item
    task.add_done_callback(_consume)


def _prelude(chunk: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Split an optional `{statusCode, headers, cookies}` JSON prelude off the first chunk."""
    head, sep, rest = chunk.partition(PRELUDE_DELIMITER)
    if sep and head.startswith(b"{"):
        try:
            meta = json.loads(head)
        except ValueError:
            meta = None
        if isinstance(meta, dict):
            status = int(meta.get("statusCode", 200))
            headers = [(str(k).lower(), str(v)) for k, v in (meta.get("headers") or {}).items()]
            headers += [("set-cookie", str(c)) for c in meta.get("cookies") or ()]
            if not any(k == "content-type" for k, _ in headers):
                headers.append(("content-type", "application/octet-stream"))
            return status, headers, rest
    return 200, [("content-type", "application/octet-stream")], chunk


def _mapped(
    result: InvokeResult, kind: ApiKind, mapper: Callable[[bytes], HttpResponse]
) -> HttpResponse:
    if result.function_error:
        raise bad_integration_output(kind)
    try:
        return mapper(result.payload)
    except BadProxyOutput as exc:
        raise bad_integration_output(kind) from exc


def _integration_failure(kind: ApiKind) -> GatewayError:
    if kind is ApiKind.HTTP:
        return GatewayError(500, "Internal Server Error", "InternalServerErrorException")
    return GatewayError(
        500,
        "Internal server error",
        "InternalServerErrorException",
        response_type="INTEGRATION_FAILURE",
    )


def _throttled(kind: ApiKind) -> GatewayError:
    # Lambda's 429 reaches the client as API Gateway's own throttling answer.
    return GatewayError(429, "Too Many Requests", "TooManyRequestsException")


async def invoke_within(invoker: Invoker, request: InvokeRequest, limit_s: float) -> InvokeResult:
    """Invoke, giving up waiting (TimeoutError) after `limit_s`.

    Shielded: when the gateway stops waiting, the invocation still runs to its end (as on AWS)
    and its environment is released properly. When the function's own timeout ends it first, no
    gateway timer is needed at all.
    """
    if request.config.timeout_s < limit_s:
        return await invoker.invoke(request)
    task = asyncio.ensure_future(invoker.invoke(request))
    try:
        return await asyncio.wait_for(asyncio.shield(task), limit_s)
    except TimeoutError:
        task.add_done_callback(_consume)
        raise


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve a background invocation's outcome so it is never reported as unhandled."""
    if not task.cancelled():
        task.exception()
