"""What every authorizer shares: AWS's 401 / 403 / 500 answers, identity sources, ARNs, caching.

The answers follow what API Gateway sends by default (before any custom gateway response):

| situation | REST | HTTP API |
| --- | --- | --- |
| identity source missing or empty, token refused | 401 `{"message":"Unauthorized"}` | 401, same |
| Lambda authorizer policy denies | 403 `{"Message":"User is not authorized to access this resource with an explicit deny"}` | 403 `{"message":"Forbidden"}` |
| policy allows nothing for this method | 403 `{"Message":"User is not authorized to access this resource"}` | 403 `{"message":"Forbidden"}` |
| authorizer throws, times out or returns garbage | 500 `{"message":null}`, `AuthorizerConfigurationException` | 500 `{"message":"Internal Server Error"}` |

Note the capital `M` of REST's two policy answers: that is what AWS sends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import lru_cache
from urllib.parse import parse_qsl

from fogbank.gateway._errors import GatewayError
from fogbank.gateway._types import HttpRequest, HttpResponse, RouteMatch
from fogbank.model import ApiKind, Authorizer, Identity

Clock = Callable[[], float]
CACHE_PREFIX = "authorizer:"
"""Every authorizer cache entry's key starts with this (flush by prefix)."""


class _NullMessage(GatewayError):
    """REST's authorizer failures carry `{"message": null}`: not a string, a JSON null."""

    def response(self, kind: ApiKind | None, request_id: str) -> HttpResponse:
        response = super().response(kind, request_id)
        response.body = b'{"message":null}'
        return response


def unauthorized(www_authenticate: str | None = None) -> GatewayError:
    """401: no identity, a token the validation expression or a JWT check refused."""
    headers = [("www-authenticate", www_authenticate)] if www_authenticate else None
    return GatewayError(401, "Unauthorized", "UnauthorizedException", headers=headers)


def forbidden(www_authenticate: str | None = None) -> GatewayError:
    """HTTP APIs' 403 for any authorizer refusal (and a JWT without the route's scopes)."""
    headers = [("www-authenticate", www_authenticate)] if www_authenticate else None
    return GatewayError(403, "Forbidden", "ForbiddenException", headers=headers)


def access_denied(kind: ApiKind, *, explicit: bool) -> GatewayError:
    """A policy that denies (explicit) or allows nothing for the method (implicit)."""
    if kind is ApiKind.HTTP:
        return forbidden()
    message = "User is not authorized to access this resource"
    if explicit:
        message += " with an explicit deny"
    return GatewayError(403, message, "AccessDeniedException", message_key="Message")


def authorizer_failure(kind: ApiKind) -> GatewayError:
    """The authorizer could not decide: it failed, timed out, or answered something unusable."""
    if kind is ApiKind.HTTP:
        return GatewayError(500, "Internal Server Error", "InternalServerErrorException")
    return _NullMessage(500, "", "AuthorizerConfigurationException")


def method_arn(identity: Identity, match: RouteMatch, method: str) -> str:
    """`arn:aws:execute-api:REGION:ACCOUNT:apiId/stage/METHOD/path`, with the request's own path.

    REST calls it `methodArn`, HTTP APIs `routeArn`; both name the path as requested (`/items/7`),
    not the route's template, so a policy can allow single items.
    """
    path = match.path if match.path.startswith("/") else f"/{match.path}"
    return (
        f"arn:aws:execute-api:{identity.region}:{identity.account_id}:"
        f"{match.api.api_id}/{match.stage.name}/{method}{path}"
    )


def split_sources(value: str | Sequence[str]) -> tuple[str, ...]:
    """Identity sources as a tuple: REST writes them comma-separated, HTTP APIs as a list."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(item.strip() for item in items if item.strip())


def identity_values(
    sources: Sequence[str], request: HttpRequest, match: RouteMatch
) -> list[str] | None:
    """The value of each identity source, or None when one is missing or empty (a 401).

    Both spellings are understood: REST's `method.request.header.X`, `method.request.querystring.X`,
    `stageVariables.X`, `context.X` and HTTP APIs' `$request.header.X`, `$request.querystring.X`,
    `$stageVariables.X`, `$context.X`.
    """
    values: list[str] = []
    query: dict[str, str] | None = None
    for source in sources:
        name = source.removeprefix("$").removeprefix("method.")
        value: str | None = None
        if name.lower().startswith(("request.header.", "request.multivalueheader.")):
            wanted = name.split(".", 2)[2].lower()
            found = [v for k, v in request.headers if k == wanted]
            value = ",".join(found) if found else None
        elif name.lower().startswith(("request.querystring.", "request.multivaluequerystring.")):
            if query is None:
                query = {}
                for key, item in parse_qsl(request.query_string.decode("utf-8", "replace"), True):
                    query[key] = f"{query[key]},{item}" if key in query else item
            value = query.get(name.split(".", 2)[2])
        elif name.startswith("stageVariables."):
            value = match.stage.variables.get(name.removeprefix("stageVariables."))
        elif name.startswith("context."):
            value = _context_value(name.removeprefix("context."), request, match)
        if not value:
            return None
        values.append(value)
    return values


def _context_value(name: str, request: HttpRequest, match: RouteMatch) -> str | None:
    # The context variables a cache key is usually built from; others count as missing.
    known = {
        "httpMethod": request.method,
        "path": request.raw_path,
        "resourcePath": match.route.path,
        "routeKey": match.route.route_key,
        "stage": match.stage.name,
        "apiId": match.api.api_id,
        "identity.sourceIp": request.source_ip,
        "identity.userAgent": request.header("user-agent"),
        "domainName": match.domain_name,
    }
    return known.get(name)


def cache_key(match: RouteMatch, authorizer: Authorizer, values: Sequence[str]) -> str:
    """Per API, stage and authorizer, by the identity source values (hashed: they are secrets).

    The authorizer's settings are part of the key, so a reloaded template that changes them
    (another function, another TTL) never serves answers cached under the old ones.
    """
    digest = hashlib.sha256("\x1f".join(values).encode()).hexdigest()
    api = match.api.api_id
    return f"{CACHE_PREFIX}{api}:{match.stage.name}:{_settings_digest(authorizer)}:{digest}"


@lru_cache(maxsize=256)
def _settings_digest(authorizer: Authorizer) -> str:
    # `repr` of the frozen dataclass is the same on every node, unlike `hash` of its strings.
    return f"{authorizer.name}-{hashlib.sha256(repr(authorizer).encode()).hexdigest()[:12]}"
