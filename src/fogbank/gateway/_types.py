"""What flows through the gateway pipeline: the request, the matched route, the response."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from fogbank.model import Api, FunctionUrl, Route, Stage


@dataclass(slots=True)
class HttpRequest:
    """One client request as the data plane received it."""

    method: str
    raw_path: str
    """The path as sent, still percent-encoded (without the query string)."""
    path: str
    """The percent-decoded path."""
    query_string: bytes
    headers: list[tuple[str, str]]
    """Header names lower-cased (the HTTP server does that), values as sent, in order."""
    body: bytes
    source_ip: str
    host: str
    """The Host header without the port."""
    port: int
    scheme: str = "http"
    http_version: str = "1.1"
    received_ms: int = 0
    """Epoch milliseconds at arrival."""

    def header(self, name: str) -> str | None:
        """The first value of a header (name lower-case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(slots=True)
class RouteMatch:
    """Where the request goes: the API, its stage, the route and the path parameters."""

    api: Api
    stage: Stage
    route: Route
    path_params: dict[str, str]
    path: str
    """The request path inside the stage (without the stage prefix): `/items/7`."""
    stage_in_path: bool
    """True when the request path started with `/{stage}` (REST style, or a named HTTP stage)."""
    domain_name: str
    """`{apiId}.execute-api.localhost` style name used in the event's `requestContext`."""
    canary_only: bool = False
    """Matched only by the stage's canary deployment: served to canary requests alone."""


@dataclass(slots=True)
class UrlMatch:
    """A request for a Function URL."""

    url: FunctionUrl
    domain_name: str


@dataclass(slots=True)
class HttpResponse:
    """A complete response, or the start of a streamed one (`stream` set)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None


@dataclass(frozen=True, slots=True)
class RequestIds:
    """The ids API Gateway gives one request."""

    request_id: str
    """`requestContext.requestId` and `x-amzn-RequestId` / `apigw-requestid`."""
    extended_id: str = ""


def header_map(headers: list[tuple[str, str]]) -> Mapping[str, str]:
    """Single-value view: repeated names joined with commas (HTTP API style)."""
    out: dict[str, str] = {}
    for key, value in headers:
        out[key] = f"{out[key]},{value}" if key in out else value
    return out
