"""CORS as HTTP APIs and Function URLs apply it: preflight answered by the gateway, headers added.

REST APIs do not do this: SAM's `Cors` on a REST API becomes OPTIONS methods with MOCK
integrations (served by `MockIntegration`), and proxy integrations send their own headers.
"""

from __future__ import annotations

from fogbank.gateway._pipeline import Exchange
from fogbank.gateway._types import HttpResponse, RouteMatch, UrlMatch
from fogbank.model import ApiKind, Cors


def _cors_of(exchange: Exchange) -> Cors | None:
    match = exchange.match
    if isinstance(match, UrlMatch):
        return match.url.cors
    if isinstance(match, RouteMatch) and match.api.kind is ApiKind.HTTP:
        return match.api.cors
    return None


def _allowed_origin(cors: Cors, origin: str) -> str | None:
    if "*" in cors.allow_origins:
        # With credentials, "*" is not allowed by browsers: echo the origin instead.
        return origin if cors.allow_credentials else "*"
    return origin if origin in cors.allow_origins else None


class CorsPreflight:
    """Answer `OPTIONS` preflight requests for APIs that configure CORS and route no OPTIONS."""

    async def __call__(self, exchange: Exchange) -> HttpResponse | None:
        request = exchange.request
        if request.method != "OPTIONS":
            return None
        cors = _cors_of(exchange)
        origin = request.header("origin")
        if (
            cors is None
            or origin is None
            or request.header("access-control-request-method") is None
        ):
            return None
        match = exchange.match
        if isinstance(match, RouteMatch) and match.route.method == "OPTIONS":
            return None
        headers: list[tuple[str, str]] = []
        allowed = _allowed_origin(cors, origin)
        if allowed is not None:
            headers.append(("access-control-allow-origin", allowed))
            headers.append(("access-control-allow-methods", ",".join(cors.allow_methods)))
            if cors.allow_headers:
                headers.append(("access-control-allow-headers", ",".join(cors.allow_headers)))
            if cors.max_age is not None:
                headers.append(("access-control-max-age", str(cors.max_age)))
            if cors.allow_credentials:
                headers.append(("access-control-allow-credentials", "true"))
        return HttpResponse(status=204, headers=headers)


def add_cors_headers(exchange: Exchange, response: HttpResponse) -> HttpResponse:
    """On simple and actual requests, add the configured `access-control-*` headers."""
    origin = exchange.request.header("origin")
    if origin is None or (response.status == 204 and exchange.request.method == "OPTIONS"):
        return response
    cors = _cors_of(exchange)
    if cors is None:
        return response
    allowed = _allowed_origin(cors, origin)
    if allowed is None:
        return response
    response.headers.append(("access-control-allow-origin", allowed))
    if cors.expose_headers:
        response.headers.append(("access-control-expose-headers", ",".join(cors.expose_headers)))
    if cors.allow_credentials:
        response.headers.append(("access-control-allow-credentials", "true"))
    return response
