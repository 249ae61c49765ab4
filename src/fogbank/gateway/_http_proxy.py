"""HTTP_PROXY integrations: forward the request to an HTTP endpoint, return its answer as is.

An integration may target a discovered service instead of a fixed host: an HTTP API private
integration (`cloud_map_service`), or a URI whose host is a registered `service.namespace`. Then
the `Balancer` picks a healthy instance, and a connection failure of an idempotent request is
retried once on another instance.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode

from fogbank.gateway._balance import Balancer
from fogbank.gateway._connection import (
    BrokenResponse,
    ConnectionFailed,
    ConnectTimeout,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
)
from fogbank.gateway._errors import GatewayError, integration_timeout
from fogbank.gateway._pipeline import Exchange
from fogbank.gateway._stagevars import substitute_stage_variables
from fogbank.gateway._types import HttpResponse, RouteMatch
from fogbank.gateway._upstream import Upstream, split_url
from fogbank.model import ANY, DEFAULT_STAGE, ApiKind, IntegrationType

# Hop-by-hop headers never cross a proxy (RFC 9110 7.6.1), nor does Host.
_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
_PATH_PARAM = re.compile(r"\{([A-Za-z0-9_]+)\+?\}")
_INTEGRATION_HEADER = "integration.request.header."
_INTEGRATION_QUERY = "integration.request.querystring."
_INTEGRATION_PATH = "integration.request.path."
_SOURCES = (
    ("method.request.header.", "header"),
    ("method.request.path.", "path"),
    ("$request.header.", "header"),
    ("$request.path.", "path"),
    ("$stageVariables.", "stage"),
    ("stageVariables.", "stage"),
)
# An HTTP API `overwrite:path` value: literal text with `$request.path`, `${request.path.id}`,
# `$stageVariables.x`, `$request.header.x`, `$request.querystring.x`, `$context.x` in it.
_PATH_VALUE = re.compile(
    r"\$\{([^}]*)\}|\$((?:request\.(?:path|header|querystring)|stageVariables|context)"
    r"(?:\.[A-Za-z0-9_-]+)?)"
)
_OVERWRITE_PATH = "overwrite:path"
# RFC 9110 9.2.2: a retry of these has the effect of one request.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Answers that never carry a body, whatever their headers say.
_NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(slots=True)
class _Outgoing:
    """What is sent, whichever instance (or retry) it goes to."""

    method: str
    headers: list[tuple[str, str]]
    body: bytes
    timeout_s: float


class HttpProxy:
    """Forwards over pooled keep-alive connections (`Upstream`), streaming the answer back."""

    def __init__(self, balancer: Balancer | None = None) -> None:
        """`balancer` picks instances of discovered services (None: no registry, so no
        integration targets one)."""
        self.balancer = balancer
        self.upstream = Upstream()

    async def close(self) -> None:
        if self.balancer is not None:
            self.balancer.close()
        await self.upstream.close()

    async def __call__(self, exchange: Exchange) -> HttpResponse | None:
        match = exchange.match
        if not isinstance(match, RouteMatch):
            return None
        integration = match.route.integration
        service_id = integration.cloud_map_service
        if integration.type is not IntegrationType.HTTP_PROXY or (
            integration.uri is None and service_id is None
        ):
            return None
        request = exchange.request
        kind = match.api.kind
        method = request.method if integration.http_method == ANY else integration.http_method
        headers = [(k, v) for k, v in request.headers if k not in _HOP]
        parameters = integration.request_parameters
        path = None
        if parameters:
            path = _overwritten_path(parameters, match, headers, exchange)
            pairs = parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True)
            headers, pairs = _mapped(parameters, match, headers, pairs)
            query = urlencode(pairs)
        else:
            query = request.query_string.decode("latin-1")
        outgoing = _Outgoing(method, headers, request.body, integration.timeout_ms / 1000.0)
        balancer = self.balancer
        try:
            if service_id is not None:
                # AWS sends a private integration the client's path, stage included.
                rest = _private_path(match) if path is None else path
                if query:
                    rest = f"{rest}?{query}"
                upstream = await self._balanced(outgoing, service_id, "http", rest, kind)
            else:
                assert integration.uri is not None
                url = _target_url(integration.uri, match, query, path)
                found = _discovered(balancer, url) if balancer is not None else None
                if found is None:
                    key, host, target = split_url(url)
                    upstream = await self._send(outgoing, key, host, target)
                else:
                    upstream = await self._balanced(outgoing, *found, kind)
        except UpstreamTimeout:
            raise integration_timeout(kind) from None
        except UpstreamError as exc:
            raise _unreachable(kind) from exc
        return _response(upstream, method)

    async def _send(
        self, outgoing: _Outgoing, key: tuple[str, str, int], host: str, target: str
    ) -> UpstreamResponse:
        return await self.upstream.request(
            outgoing.method, key, host, target, outgoing.headers, outgoing.body, outgoing.timeout_s
        )

    async def _balanced(
        self, outgoing: _Outgoing, service_id: str, scheme: str, rest: str, kind: ApiKind
    ) -> UpstreamResponse:
        """Send to an instance of the service (`scheme` to its address, `rest` the path and
        query); after a connection failure with no answer begun, an idempotent request goes
        once more, to another instance."""
        balancer = self.balancer
        if balancer is None:
            raise _unreachable(kind)  # no registry: nothing is discovered
        retries = 1 if outgoing.method in _IDEMPOTENT else 0
        target = balancer.choose(service_id)
        if not rest.startswith("/"):
            rest = "/" + rest
        while True:
            if target is None:
                raise _unreachable(kind)
            key = (scheme, target.host, target.port)
            try:
                upstream = await self._send(outgoing, key, target.authority, rest)
            except ConnectionFailed:
                balancer.failed(target)
                if not retries:
                    raise
                retries -= 1
                target = balancer.choose(service_id, avoid=target)
                continue
            except (ConnectTimeout, BrokenResponse):
                # Count towards ejection; a timeout, or an answer begun, is not retried.
                balancer.failed(target)
                raise
            balancer.succeeded(target)
            return upstream


def _response(upstream: UpstreamResponse, method: str) -> HttpResponse:
    """The client's answer: the whole body when it came with the head, else a stream."""
    status = upstream.status
    headers = []
    length = None
    for name, value in upstream.headers:
        if name not in _HOP:
            headers.append((name, value))
        elif name == "content-length":
            length = value
    if method == "HEAD" or status in _NO_BODY_STATUSES:
        # No body follows. A HEAD answer's length is the resource's and stays; a 304's goes,
        # or the server would wait for that many body bytes.
        if length is not None and method == "HEAD":
            headers.append(("content-length", length))
        return HttpResponse(status=status, headers=headers, stream=upstream.stream())
    if upstream.complete:
        return HttpResponse(status=status, headers=headers, body=upstream.body())
    if length is not None:
        # A known length lets the client tell a body cut short from a whole one.
        headers.append(("content-length", length))
    return HttpResponse(status=status, headers=headers, stream=upstream.stream())


def _target_url(uri: str, match: RouteMatch, query: str, path: str | None = None) -> str:
    """The URL sent: the URI with stage variables and path parameters filled in, its path
    replaced by `path` when an `overwrite:path` mapping gives one, and the query."""
    url = substitute_stage_variables(uri, match.stage.variables)
    # REST: `integration.request.path.x` <- `method.request.path.y` renames a path parameter.
    values = dict(match.path_params)
    for target, source in match.route.integration.request_parameters.items():
        if target.startswith(_INTEGRATION_PATH):
            value = _source_value(source, match, [])
            if value is not None:
                values[target[len(_INTEGRATION_PATH) :]] = value

    def param(m: re.Match[str]) -> str:
        # Slashes stay: a greedy value keeps its segments even in a plain `{name}` placeholder.
        return quote(values.get(m.group(1), ""), safe="/")

    url = _PATH_PARAM.sub(param, url)
    if path is not None:
        authority = _authority(url)
        if authority is not None:
            url = url[: authority[1]] + path
    if query:
        url += ("&" if "?" in url else "?") + query
    return url


def _authority(url: str) -> tuple[int, int] | None:
    """Where the host (and port) of an absolute URL start and end."""
    start = url.find("://")
    if start < 0:
        return None
    start += 3
    end = len(url)
    for mark in "/?#":
        found = url.find(mark, start, end)
        if found >= 0:
            end = found
    return start, end


def _discovered(balancer: Balancer, url: str) -> tuple[str, str, str] | None:
    """`(service id, scheme, rest of the URL)` when the URL's host names a discovered service,
    else None (the URL goes out as it is)."""
    authority = _authority(url)
    if authority is None:
        return None
    start, end = authority
    host = url[start:end].rpartition("@")[2]
    if host.startswith("["):
        return None  # an IPv6 literal names no service
    service_id = balancer.service_for_host(host.partition(":")[0])
    if service_id is None:
        return None
    return service_id, url[: start - 3].lower(), url[end:].partition("#")[0]


def _private_path(match: RouteMatch) -> str:
    """The path a private integration receives: the client's, with a named stage's prefix."""
    stage = match.stage.name
    if match.api.kind is ApiKind.HTTP and stage != DEFAULT_STAGE:
        return f"/{stage}{match.path}"
    return match.path


def _overwritten_path(
    parameters: Mapping[str, str],
    match: RouteMatch,
    headers: list[tuple[str, str]],
    exchange: Exchange,
) -> str | None:
    """An HTTP API `overwrite:path` mapping's value, its references filled in, or None."""
    template = parameters.get(_OVERWRITE_PATH)
    if template is None:
        return None

    def value(m: re.Match[str]) -> str:
        expression = m.group(1) or m.group(2)
        if expression == "request.path":
            return match.path  # without the stage, still percent-encoded
        if expression.startswith("context."):
            name = expression[len("context.") :]
            known = {
                "stage": match.stage.name,
                "apiId": match.api.api_id,
                "requestId": exchange.request_id,
            }
            found: str | None = known.get(name)
        elif expression.startswith("request.querystring."):
            # Repeated names are joined with commas, as in HTTP API events.
            wanted = expression[len("request.querystring.") :]
            query = exchange.request.query_string.decode("latin-1")
            pairs = parse_qsl(query, keep_blank_values=True)
            found = ",".join(v for k, v in pairs if k == wanted) or None
        else:
            found = _source_value("$" + expression, match, headers)
        return quote(found, safe="/") if found else ""

    path = _PATH_VALUE.sub(value, template)
    return path if path.startswith("/") else "/" + path


def _source_value(source: str, match: RouteMatch, headers: list[tuple[str, str]]) -> str | None:
    """A mapping's source: REST `method.request.*` or HTTP API `$request.*`, or a literal."""
    if len(source) >= 2 and source[0] == source[-1] == "'":
        return source[1:-1]
    for prefix, kind in _SOURCES:
        if source.startswith(prefix):
            name = source[len(prefix) :]
            if kind == "header":
                wanted = name.lower()
                return next((v for k, v in headers if k == wanted), None)
            if kind == "path":
                return match.path_params.get(name)
            if kind == "stage":
                return match.stage.variables.get(name)
    if source.startswith("$"):
        return None
    return source  # HTTP API mappings take bare literals


def _mapped(
    parameters: Mapping[str, str],
    match: RouteMatch,
    headers: list[tuple[str, str]],
    query: list[tuple[str, str]],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Apply header and query-string mappings (REST `integration.request.*`, HTTP API
    `append:`/`overwrite:`/`remove:`) to the forwarded headers and query."""
    original = list(headers)
    for target, source in parameters.items():
        value = _source_value(source, match, original)
        if target.startswith(_INTEGRATION_HEADER):
            action, where, name = "overwrite", "header", target[len(_INTEGRATION_HEADER) :]
        elif target.startswith(_INTEGRATION_QUERY):
            action, where, name = "overwrite", "querystring", target[len(_INTEGRATION_QUERY) :]
        elif ":" in target and "." in target:
            action, _, rest = target.partition(":")
            where, _, name = rest.partition(".")
        else:
            continue
        items = headers if where == "header" else query if where == "querystring" else None
        if items is None:
            continue
        key = name.lower() if where == "header" else name
        if action in ("overwrite", "remove"):
            items[:] = [(k, v) for k, v in items if k != key]
        if action in ("overwrite", "append") and value is not None:
            items.append((key, value))
    return headers, query


def _unreachable(kind: ApiKind) -> GatewayError:
    if kind is ApiKind.HTTP:
        return GatewayError(503, "Service Unavailable", "ServiceUnavailableException")
    return GatewayError(
        502,
        "Internal server error",
        "InternalServerErrorException",
        response_type="INTEGRATION_FAILURE",
    )
