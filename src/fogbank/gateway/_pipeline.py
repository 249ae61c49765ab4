"""The gateway pipeline: small steps with one signature, run in order for every request.

Each step reads and fills the `Exchange`; it either passes (returns None) or answers (returns a
response). A `GatewayError` raised anywhere becomes API Gateway's own error response here, and
nowhere else.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fogbank.gateway._errors import GatewayError, no_route, too_large
from fogbank.gateway._select import Selector
from fogbank.gateway._types import HttpRequest, HttpResponse, RouteMatch, UrlMatch
from fogbank.model import ApiKind, App

log = logging.getLogger("fogbank.gateway")

MAX_BODY_BYTES = 10 * 1024 * 1024


def new_request_id() -> str:
    """A random (version 4) UUID as text, without building a `uuid.UUID` on the hot path."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


CALLER_NOTE = "iam_caller"
"""`Exchange.notes` key: the IAM caller a verified SigV4 signature named (set by `_auth`, read by
the event builders and the stage cache)."""


@dataclass(slots=True)
class Exchange:
    """One request on its way through the pipeline."""

    request: HttpRequest
    request_id: str
    app: App
    selector: Selector
    match: RouteMatch | UrlMatch | None = None
    kind: ApiKind | None = None
    """Which product's error shapes apply (REST or HTTP API); None until known."""
    authorizer: dict[str, Any] | None = None
    """What an authorizer step established, for `requestContext.authorizer`."""
    notes: dict[str, Any] = field(default_factory=dict)
    """Scratch space for steps that cooperate (e.g. a cache lookup and a cache store)."""


class Step(Protocol):
    """One stage of the pipeline."""

    async def __call__(self, exchange: Exchange) -> HttpResponse | None: ...


Finisher = Callable[[Exchange, HttpResponse], HttpResponse]
"""Runs on every response on the way out (CORS headers, request id headers, access log)."""

ErrorRenderer = Callable[[Exchange, GatewayError], HttpResponse]
"""Turns a gateway error into the response the client gets (custom gateway responses hook here)."""


def default_error_renderer(exchange: Exchange, error: GatewayError) -> HttpResponse:
    return error.response(exchange.kind, exchange.request_id)


class SelectRoute:
    """Find the API, stage and route (or Function URL); answer "no route" when there is none."""

    async def __call__(self, exchange: Exchange) -> HttpResponse | None:
        request = exchange.request
        found = exchange.selector.select(request)
        wanted = request.header("access-control-request-method")
        if request.method == "OPTIONS" and wanted and not isinstance(found, RouteMatch | UrlMatch):
            # A CORS preflight is about the route the browser means to call next.
            request.method = wanted.upper()
            found = exchange.selector.select(request)
            request.method = "OPTIONS"
        if isinstance(found, RouteMatch):
            exchange.match, exchange.kind = found, found.api.kind
            return None
        if isinstance(found, UrlMatch):
            exchange.match, exchange.kind = found, ApiKind.HTTP
            return None
        exchange.kind = found
        raise no_route(found)


def add_request_id(exchange: Exchange, response: HttpResponse) -> HttpResponse:
    """Every answer names the request: `x-amzn-RequestId` (REST) or `apigw-requestid` (HTTP)."""
    name = "apigw-requestid" if exchange.kind is ApiKind.HTTP else "x-amzn-requestid"
    if not any(key == name for key, _ in response.headers):
        response.headers.append((name, exchange.request_id))
    return response


class LimitBody:
    """API Gateway refuses payloads over 10 MB."""

    async def __call__(self, exchange: Exchange) -> HttpResponse | None:
        if len(exchange.request.body) > MAX_BODY_BYTES:
            raise too_large(exchange.kind)
        return None


class Pipeline:
    """Runs the steps for each request against the app current at that moment."""

    def __init__(
        self,
        app_provider: Callable[[], App],
        steps: Sequence[Step],
        finishers: Sequence[Finisher] = (),
        error_renderer: ErrorRenderer = default_error_renderer,
    ) -> None:
        self._app_provider = app_provider
        self.steps = list(steps)
        self.finishers = list(finishers)
        self.render_error = error_renderer
        self._selector: Selector | None = None

    def selector(self, app: App) -> Selector:
        """Routing tables are rebuilt only when the app snapshot changes."""
        selector = self._selector
        if selector is None or selector.app is not app:
            selector = self._selector = Selector(app)
        return selector

    def _exchange(self, request: HttpRequest) -> Exchange:
        app = self._app_provider()
        return Exchange(
            request=request, request_id=new_request_id(), app=app, selector=self.selector(app)
        )

    def reject(self, request: HttpRequest, error: GatewayError) -> HttpResponse:
        """Answer with a gateway error before the pipeline runs (the body was refused).

        The error still takes the shape of the API the request was for, with a request id.
        """
        exchange = self._exchange(request)
        found = exchange.selector.select(request)
        if isinstance(found, RouteMatch | UrlMatch):
            exchange.match = found
            exchange.kind = found.api.kind if isinstance(found, RouteMatch) else ApiKind.HTTP
        else:
            exchange.kind = found
        response = self.render_error(exchange, error)
        for finish in self.finishers:
            response = finish(exchange, response)
        return response

    async def handle(self, request: HttpRequest) -> HttpResponse:
        exchange = self._exchange(request)
        response: HttpResponse | None = None
        try:
            for step in self.steps:
                response = await step(exchange)
                if response is not None:
                    break
            if response is None:
                raise GatewayError(500, "Internal server error", "InternalServerErrorException")
        except GatewayError as err:
            response = self.render_error(exchange, err)
        except Exception:
            log.exception(
                "request %s %s failed (request id %s)",
                request.method,
                request.raw_path,
                exchange.request_id,
            )
            failure = GatewayError(500, "Internal server error", "InternalServerErrorException")
            response = self.render_error(exchange, failure)
        for finish in self.finishers:
            response = finish(exchange, response)
        return response
