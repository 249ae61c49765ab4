"""Every fixture template that describes an API, served by a real node and called over HTTP.

Each test copies one template from `tests/templates/` (never changed in place), starts a node
on free ports and sends the requests that show its feature working on the wire. HTTP_PROXY
targets on the internet are pointed at a local upstream in the copy, so what the gateway
forwards can be checked; nothing else in a template is changed.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from .conftest import EventLog, Served, scratch_dir, serving

TEMPLATES = Path(__file__).parent.parent / "templates"
NO_AUTHENTICATION = (
    "authentication is not implemented yet: the pipeline has no authenticate step"
    " (API key, JWT, SigV4), so the route is served to anyone"
)


@dataclass(frozen=True)
class Forwarded:
    """One request as the upstream received it: `path` is the raw request target."""

    method: str
    path: str
    headers: dict[str, str]


class Upstream(ThreadingHTTPServer):
    """A local HTTP server standing in for the internet hosts HTTP_PROXY templates name."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.seen: list[Forwarded] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Recorder(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        assert isinstance(self.server, Upstream)
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.seen.append(Forwarded(self.command, self.path, headers))
        body = b'{"from": "upstream"}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read what was forwarded from `Upstream.seen`."""


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    server.thread.start()
    yield server
    server.shutdown()
    server.server_close()


@contextlib.contextmanager
def template(name: str, *replacements: tuple[str, str]) -> Iterator[Served]:
    """Serve a copy of `tests/templates/<name>`, each `(old, new)` replaced in its template."""
    with scratch_dir(f"fogbank-{name}-") as directory:
        copy = directory / name
        shutil.copytree(TEMPLATES / name, copy, ignore=shutil.ignore_patterns("__pycache__"))
        path = copy / "template.yaml"
        text = path.read_text(encoding="utf-8")
        for old, new in replacements:
            assert old in text, f"{old!r} is not in {name}/template.yaml"
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
        with serving(path, directory / "state") as served:
            yield served


def request(
    served: Served,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    json: object = None,
) -> httpx.Response:
    return httpx.request(
        method, served.base + path, headers=headers, content=content, json=json, timeout=30
    )


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def get(served: Served, path: str, *, headers: Mapping[str, str] | None = None) -> httpx.Response:
    return request(served, "GET", path, headers=headers)


def test_sam_api_events_build_the_implicit_rest_api() -> None:
    with template("sam_api_events") as served:
        listed = get(served, "/Prod/orders")
        one = get(served, "/Prod/orders/42")
        cancelled = request(served, "DELETE", "/Prod/orders/42")
        fallback = get(served, "/Prod/no/such/thing")
    assert (listed.status_code, listed.json()) == (200, [])
    assert (one.status_code, one.json()) == (200, {"id": "42"})
    assert (cancelled.status_code, cancelled.json()) == (200, {"id": "42"})
    # The greedy catch-all takes what no other route matches.
    assert (fallback.status_code, fallback.json()) == (404, {"path": "/no/such/thing"})


def test_sam_rest_api_inline_openapi_binary_cors_and_mock(proxy_events: EventLog) -> None:
    preflight_headers = {
        "origin": "https://photos.example.com",
        "access-control-request-method": "PUT",
    }
    with template("sam_rest_api") as served:
        image = get(served, "/v1/images/cat.png", headers={"accept": "image/png"})
        event = proxy_events.last("rest_event")
        health = get(served, "/v1/health")
        preflight = request(served, "OPTIONS", "/v1/images/cat.png", headers=preflight_headers)
        # The PUT's ARN names the alias `${stageVariables.thumbnailAlias}` = `live`, which the
        # template never publishes: AWS answers 500 for an integration it cannot invoke.
        missing_alias = request(served, "PUT", "/v1/images/cat.png", content=b"x")
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content == b"\x89PNG\r\n"
    assert event["stageVariables"] == {"thumbnailAlias": "live", "maxWidth": "640"}
    assert event["requestContext"]["operationName"] == "getImage"
    assert event["pathParameters"] == {"key": "cat.png"}
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    # SAM's Cors on a REST API is an OPTIONS method with a MOCK integration.
    assert preflight.status_code == 200
    assert cors_headers(preflight) == {
        "access-control-allow-origin": "https://photos.example.com",
        "access-control-allow-methods": "GET,PUT",
        "access-control-allow-headers": "Content-Type,Authorization",
        "access-control-max-age": "600",
    }
    assert missing_alias.status_code == 500
    assert missing_alias.json() == {"message": "Internal server error"}


def test_definition_uri_openapi_3_file(proxy_events: EventLog) -> None:
    with template("sam_rest_definition_uri") as served:
        fetched = get(served, "/prod/items/sku-1")
        deleted = request(served, "DELETE", "/prod/items/sku-1")
        uploaded = request(
            served,
            "POST",
            "/prod/items/sku-1",
            content=b"%PDF-1.7\n\xe2\xe3",
            headers={"content-type": "application/pdf"},
        )
        upload_event = proxy_events.last("rest_event")
    # x-amazon-apigateway-any-method: every method reaches the function.
    for response in (fetched, deleted, uploaded):
        assert (response.status_code, response.text) == (200, "/items/{sku}")
    # x-amazon-apigateway-binary-media-types from the file: the PDF arrives base64-encoded.
    assert upload_event["isBase64Encoded"] is True
    assert upload_event["body"] == "JVBERi0xLjcK4uM="


def test_aws_include_snippet_with_a_streamed_route() -> None:
    with template("include_openapi") as served:
        books = get(served, "/Prod/books")
        # responseTransferMode STREAM, but the handler returns a plain result: sent buffered.
        book = get(served, "/Prod/books/978-0")
    assert (books.status_code, books.json()) == (200, [])
    assert (book.status_code, book.json()) == (200, [])


def test_sam_implicit_http_api_routes_payloads_and_default_route(proxy_events: EventLog) -> None:
    with template("sam_http_implicit") as served:
        todo = get(served, "/todos/7")
        legacy = request(served, "POST", "/v1/todos", json={"title": "x"})
        legacy_event = proxy_events.last("http_event_v1")
        other = get(served, "/somewhere/else")
    # Payload 2.0: a result without statusCode is the JSON body of a 200.
    assert todo.status_code == 200
    assert todo.headers["content-type"] == "application/json"
    assert todo.json() == {"id": "7"}
    # Payload 1.0 has no such inference: the same result is a bad proxy output.
    assert legacy_event["version"] == "1.0"
    assert legacy_event["body"] == '{"title":"x"}'
    assert (legacy.status_code, legacy.json()) == (500, {"message": "Internal Server Error"})
    # The $default route catches what no route matches.
    assert (other.status_code, other.text) == (404, "/somewhere/else")


def test_sam_explicit_http_api_named_stage_answers_cors_preflight() -> None:
    # The routes sit behind a JWT authorizer; a preflight is answered before any authorizer.
    asking = {"origin": "https://app.example.com", "access-control-request-method": "PATCH"}
    with template("sam_http_explicit") as served:
        preflight = request(served, "OPTIONS", "/beta/profiles/7", headers=asking)
        not_at_root = request(served, "OPTIONS", "/profiles/7", headers=asking)
    assert preflight.status_code == 204
    assert cors_headers(preflight) == {
        "access-control-allow-origin": "https://app.example.com",
        "access-control-allow-methods": "GET,PATCH",
        "access-control-allow-headers": "authorization,content-type",
        "access-control-max-age": "3600",
        "access-control-allow-credentials": "true",
    }
    # Only a `$default` stage is served at the root.
    assert (not_at_root.status_code, not_at_root.json()) == (404, {"message": "Not Found"})


def test_sam_explicit_http_api_jwt_route_refuses_a_request_without_token() -> None:
    with template("sam_http_explicit") as served:
        response = get(served, "/beta/profiles/7")
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


def test_raw_rest_api_mock_on_root_and_both_stages() -> None:
    with template("raw_rest") as served:
        prod = get(served, "/prod/")
        dev = get(served, "/dev")
    for response in (prod, dev):
        assert response.status_code == 200
        assert response.json() == {"pong": True}
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-type"] == "application/json"


def test_raw_rest_api_http_proxy_maps_a_request_header(upstream: Upstream) -> None:
    with template("raw_rest", *_local_backends("raw_rest", upstream)) as served:
        response = get(served, "/prod/notes/42", headers={"x-tenant-id": "acme"})
    assert (response.status_code, response.json()) == (200, {"from": "upstream"})
    forwarded = upstream.seen[-1]
    assert forwarded.method == "GET"
    # integration.request.header.X-Tenant <- method.request.header.X-Tenant-Id
    assert forwarded.headers["x-tenant"] == "acme"


def test_raw_rest_api_http_proxy_maps_a_path_parameter(upstream: Upstream) -> None:
    with template("raw_rest", *_local_backends("raw_rest", upstream)) as served:
        response = get(served, "/prod/notes/42", headers={"x-tenant-id": "acme"})
    assert response.status_code == 200
    assert upstream.seen[-1].path == "/notes/42"


def test_raw_rest_api_key_required_refuses_a_request_without_key() -> None:
    with template("raw_rest") as served:
        response = get(served, "/prod/notes")
    assert (response.status_code, response.json()) == (403, {"message": "Forbidden"})
    assert response.headers["x-amzn-errortype"] == "ForbiddenException"


def test_raw_http_api_named_stage_variables_and_http_proxy(
    upstream: Upstream, proxy_events: EventLog
) -> None:
    with template("raw_http", *_local_backends("raw_http", upstream)) as served:
        tasks = get(served, "/live/tasks")
        event = proxy_events.last("http_event")
        at_root = get(served, "/tasks")
        proxied = request(served, "POST", "/live/status/health?verbose=1", content=b"{}")
    assert (tasks.status_code, tasks.json()) == (200, {"tasks": [], "route": "GET /tasks"})
    assert event["rawPath"] == "/live/tasks"
    assert event["requestContext"]["stage"] == "live"
    assert event["stageVariables"] == {"region": "eu-west-1"}
    assert (at_root.status_code, at_root.json()) == (404, {"message": "Not Found"})
    assert (proxied.status_code, proxied.json()) == (200, {"from": "upstream"})
    forwarded = upstream.seen[-1]
    # IntegrationMethod GET: the backend is called with GET whatever the client used.
    assert (forwarded.method, forwarded.path) == ("GET", "/health?verbose=1")


def test_raw_http_api_http_proxy_appends_a_header(upstream: Upstream) -> None:
    with template("raw_http", *_local_backends("raw_http", upstream)) as served:
        response = get(served, "/live/status/health")
    assert response.status_code == 200
    assert upstream.seen[-1].headers.get("x-forwarded-by") == "fogbank-docs"


def test_raw_http_api_iam_route_refuses_an_unsigned_request() -> None:
    with template("raw_http") as served:
        response = request(served, "POST", "/live/tasks", json={})
    assert (response.status_code, response.json()) == (403, {"message": "Forbidden"})


@pytest.mark.parametrize(
    ("name", "path", "expected"),
    [
        pytest.param("raw_http", "/live/status/a/b", "/a/b", id="http-api"),
        pytest.param("stage_variables", "/staging/legacy/a/b", "/a/b", id="rest-api"),
    ],
)
def test_http_proxy_keeps_the_slashes_of_a_greedy_path(
    upstream: Upstream, name: str, path: str, expected: str
) -> None:
    with template(name, *_local_backends(name, upstream)) as served:
        response = get(served, path)
    assert response.status_code == 200
    assert upstream.seen[-1].path == expected


def _local_backends(name: str, upstream: Upstream) -> list[tuple[str, str]]:
    """Replacements pointing an HTTP_PROXY template's internet backend at the local upstream."""
    if name == "stage_variables":
        return [
            ("https://${stageVariables.backend}", "http://${stageVariables.backend}"),
            ("legacy-staging.example.com", upstream.address),
        ]
    host = {"raw_http": "https://status.example.com", "raw_rest": "https://archive.example.com"}
    return [(host[name], f"http://{upstream.address}")]


def test_stage_variables_pick_the_function_and_the_backend(upstream: Upstream) -> None:
    with template("stage_variables", *_local_backends("stage_variables", upstream)) as served:
        accounts = get(served, "/staging/accounts")
        legacy = request(served, "PUT", "/staging/legacy/reports?year=2024", content=b"{}")
    # The function is named by `${stageVariables.accountsFunction}`; it echoes the variables.
    assert accounts.status_code == 200
    assert accounts.text == str(
        {"backend": upstream.address, "accountsFunction": "accounts-staging"}
    )
    assert (legacy.status_code, legacy.json()) == (200, {"from": "upstream"})
    forwarded = upstream.seen[-1]
    assert (forwarded.method, forwarded.path) == ("PUT", "/reports?year=2024")


def test_quick_create_target_serves_every_path() -> None:
    with template("quick_create") as served:
        posted = request(
            served, "POST", "/", content=b"hello", headers={"content-type": "text/plain"}
        )
        anywhere = get(served, "/any/where?x=1")
        preflight = request(
            served,
            "OPTIONS",
            "/any/where",
            headers={"origin": "https://a.example", "access-control-request-method": "POST"},
        )
    assert (posted.status_code, posted.json()) == (200, {"echo": "hello"})
    assert (anywhere.status_code, anywhere.json()) == (200, {"echo": None})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-methods"] == "GET,POST"


def test_function_url_buffered_with_cors(proxy_events: EventLog) -> None:
    with template("function_urls") as served:
        host = served.url_host("report-summary")
        origin = "https://reports.example.com"
        summary = get(served, "/", headers={"host": host, "origin": origin})
        event = proxy_events.last("function_url_event")
        preflight = request(
            served,
            "OPTIONS",
            "/",
            headers={"host": host, "origin": origin, "access-control-request-method": "GET"},
        )
    assert (summary.status_code, summary.text) == (200, "{}")
    assert summary.headers["access-control-allow-origin"] == origin
    assert event["requestContext"]["accountId"] == "anonymous"  # AuthType NONE
    assert event["requestContext"]["domainName"] == host
    assert preflight.status_code == 204
    assert cors_headers(preflight) == {
        "access-control-allow-origin": origin,
        "access-control-allow-methods": "GET",
        "access-control-allow-headers": "content-type",
        "access-control-max-age": "300",
    }


def test_function_url_response_stream_on_an_alias() -> None:
    with template("function_urls") as served:
        host = served.url_host("ExportFunction")
        with httpx.stream("GET", served.base + "/export.csv", headers={"host": host}) as response:
            body = b"".join(response.iter_raw())
    assert response.status_code == 200
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["content-type"] == "application/octet-stream"
    assert body == b"id,total\n"


def test_unserved_pieces_answer_as_missing_routes() -> None:
    with template("unserved") as served:
        warnings = served.app.warnings
        history = get(served, "/prod/history")
    assert len(warnings) == 6
    assert history.status_code == 403
    assert history.json() == {"message": "Missing Authentication Token"}
    assert history.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"


def test_every_api_template_is_covered() -> None:
    """A new fixture template gets a test here too (this list is what the tests above serve)."""
    covered = {
        "function_urls",
        "include_openapi",
        "quick_create",
        "raw_http",
        "raw_rest",
        "sam_api_events",
        "sam_http_explicit",
        "sam_http_implicit",
        "sam_rest_api",
        "sam_rest_definition_uri",
        "services",  # served in tests/examples/test_services_fixture.py
        "stage_variables",
        "unserved",
    }
    assert {p.parent.name for p in TEMPLATES.glob("*/template.yaml")} == covered
