"""HTTP_PROXY integrations: forward the request to an HTTP endpoint, return its answer as is."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from urllib.parse import parse_qsl, quote, urlencode

import httpx

from fogbank.gateway._errors import GatewayError, integration_timeout
from fogbank.gateway._pipeline import Exchange
from fogbank.gateway._stagevars import substitute_stage_variables
from fogbank.gateway._types import HttpResponse, RouteMatch
from fogbank.model import ANY, ApiKind, IntegrationType

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


class HttpProxy:
    """Forwards with one shared HTTP client (connection pooling), streaming the answer back."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            # Timeouts come from each integration; redirects are the client's business.
            self._client = httpx.AsyncClient(follow_redirects=False, timeout=None)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __call__(self, exchange: Exchange) -> HttpResponse | None:
        match = exchange.match
        if not isinstance(match, RouteMatch):
            return None
        integration = match.route.integration
        if integration.type is not IntegrationType.HTTP_PROXY or integration.uri is None:
            return None
        request = exchange.request
        method = request.method if integration.http_method == ANY else integration.http_method
        forwarded = [(k, v) for k, v in request.headers if k not in _HOP]
        query = parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True)
        headers, query = _mapped(integration.request_parameters, match, forwarded, query)
        url = _target_url(integration.uri, match, urlencode(query))
        timeout = httpx.Timeout(integration.timeout_ms / 1000.0)
        try:
            upstream = await self.client.send(
                self.client.build_request(
                    method, url, headers=headers, content=request.body, timeout=timeout
                ),
                stream=True,
            )
        except httpx.TimeoutException:
            raise integration_timeout(match.api.kind) from None
        except httpx.HTTPError as exc:
            raise _unreachable(match.api.kind) from exc
        out = [(k.lower(), v) for k, v in upstream.headers.multi_items() if k.lower() not in _HOP]
        return HttpResponse(status=upstream.status_code, headers=out, stream=_body(upstream))


async def _body(upstream: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    finally:
        await upstream.aclose()


def _target_url(uri: str, match: RouteMatch, query: str) -> str:
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
    if query:
        url += ("&" if "?" in url else "?") + query
    return url


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
