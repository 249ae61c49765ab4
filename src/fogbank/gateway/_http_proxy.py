"""HTTP_PROXY integrations: forward the request to an HTTP endpoint, return its answer as is."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote

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
_METHOD_HEADER = "method.request.header."
_METHOD_PATH = "method.request.path."
_INTEGRATION_HEADER = "integration.request.header."


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
        url = _target_url(integration.uri, match, request.query_string)
        method = request.method if integration.http_method == ANY else integration.http_method
        mapped = _mapped_headers(integration.request_parameters, match, request.headers)
        replaced = {name for name, _ in mapped}
        headers = [(k, v) for k, v in request.headers if k not in _HOP and k not in replaced]
        headers += mapped
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


def _target_url(uri: str, match: RouteMatch, query: bytes) -> str:
    url = substitute_stage_variables(uri, match.stage.variables)

    def param(m: re.Match[str]) -> str:
        value = match.path_params.get(m.group(1), "")
        # A greedy value keeps its slashes; everything else is one path segment.
        return quote(value, safe="/" if m.group(0).endswith("+}") else "")

    url = _PATH_PARAM.sub(param, url)
    if query:
        url += ("&" if "?" in url else "?") + query.decode("latin-1")
    return url


def _mapped_headers(
    parameters: Mapping[str, str], match: RouteMatch, headers: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """`integration.request.header.X` <- `method.request.header.Y` / path / `'literal'`."""
    out: list[tuple[str, str]] = []
    for target, source in parameters.items():
        if not target.startswith(_INTEGRATION_HEADER):
            continue
        name = target[len(_INTEGRATION_HEADER) :].lower()
        value: str | None = None
        if source.startswith(_METHOD_HEADER):
            wanted = source[len(_METHOD_HEADER) :].lower()
            value = next((v for k, v in headers if k == wanted), None)
        elif source.startswith(_METHOD_PATH):
            value = match.path_params.get(source[len(_METHOD_PATH) :])
        elif len(source) >= 2 and source[0] == source[-1] == "'":
            value = source[1:-1]
        if value is not None:
            out = [(k, v) for k, v in out if k != name]
            out.append((name, value))
    return out


def _unreachable(kind: ApiKind) -> GatewayError:
    if kind is ApiKind.HTTP:
        return GatewayError(503, "Service Unavailable", "ServiceUnavailableException")
    return GatewayError(502, "Internal server error", "InternalServerErrorException")
