"""Route matching and API selection, without a server."""

from __future__ import annotations

import pytest

from fogbank.gateway._router import RouteConflict, Router
from fogbank.gateway._select import Selector
from fogbank.gateway._types import HttpRequest, RouteMatch, UrlMatch
from fogbank.model import (
    Api,
    ApiKind,
    App,
    FunctionUrl,
    Integration,
    IntegrationType,
    Route,
    Stage,
)

LAMBDA = Integration(IntegrationType.AWS_PROXY, function_name="fn")


def route(method: str, path: str) -> Route:
    return Route(method=method, path=path, integration=LAMBDA)


def test_literal_beats_parameter_beats_greedy() -> None:
    router = Router(
        [
            route("GET", "/items/special"),
            route("GET", "/items/{id}"),
            route("ANY", "/{proxy+}"),
            route("GET", "/"),
        ]
    )

    def hit(method: str, path: str) -> tuple[str, dict[str, str]] | None:
        found = router.match(method, path)
        return None if found is None else (found[0].path, found[1])

    assert hit("GET", "/items/special") == ("/items/special", {})
    assert hit("GET", "/items/42") == ("/items/{id}", {"id": "42"})
    assert hit("POST", "/items/42") == ("/{proxy+}", {"proxy": "items/42"})
    assert hit("GET", "/a/b/c") == ("/{proxy+}", {"proxy": "a/b/c"})
    assert hit("GET", "/") == ("/", {})
    assert hit("POST", "/") is None
    assert hit("GET", "/items/a%20b") == ("/items/{id}", {"id": "a b"})
    assert hit("GET", "/items/42/") == ("/items/{id}", {"id": "42"})


def test_backtracking_and_methods() -> None:
    router = Router([route("GET", "/a/b"), route("GET", "/a/{x}/c"), route("ANY", "/a/{x}")])
    found = router.match("GET", "/a/b/c")
    assert found is not None
    assert (found[0].path, found[1]) == ("/a/{x}/c", {"x": "b"})
    found = router.match("DELETE", "/a/b")
    assert found is not None
    # Exact method first, then ANY; a literal path without the method falls back to {x}.
    assert (found[0].path, found[0].method) == ("/a/{x}", "ANY")


def test_default_route_and_conflicts() -> None:
    router = Router([route("GET", "/x"), route("ANY", "$default")])
    found = router.match("GET", "/nowhere")
    assert found is not None
    assert found[0].path == "$default"
    with pytest.raises(RouteConflict):
        Router([route("GET", "/x"), route("get", "/x")])
    with pytest.raises(RouteConflict):
        Router([route("GET", "/a/{x}"), route("GET", "/a/{y}/b")])
    with pytest.raises(RouteConflict):
        Router([route("GET", "/{p+}/more")])


def request(path: str, host: str = "127.0.0.1", method: str = "GET") -> HttpRequest:
    return HttpRequest(
        method=method,
        raw_path=path,
        path=path,
        query_string=b"",
        headers=[("host", host)],
        body=b"",
        source_ip="127.0.0.1",
        host=host,
        port=3000,
    )


def _app() -> App:
    rest = Api(
        api_id="rest000001",
        name="shop",
        kind=ApiKind.REST,
        routes=(route("GET", "/orders/{id}"), route("GET", "/same")),
        stages={"Prod": Stage("Prod", {"v": "1"}), "Dev": Stage("Dev")},
    )
    http = Api(
        api_id="http000001",
        name="shop-http",
        kind=ApiKind.HTTP,
        routes=(route("GET", "/same"), route("ANY", "$default")),
        stages={"$default": Stage("$default"), "beta": Stage("beta")},
    )
    url = FunctionUrl(function_name="fn", url_id="u" * 32)
    return App.build(apis=[rest, http], function_urls=[url])


def test_selection_precedence_on_the_node_host() -> None:
    selector = Selector(_app())

    def pick(path: str) -> tuple[str, str, str, bool] | ApiKind | None:
        found = selector.select(request(path))
        if isinstance(found, RouteMatch):
            return found.api.name, found.stage.name, found.route.path, found.stage_in_path
        assert not isinstance(found, UrlMatch)
        return found

    assert pick("/Prod/orders/7") == ("shop", "Prod", "/orders/{id}", True)
    assert pick("/Dev/same") == ("shop", "Dev", "/same", True)
    assert pick("/beta/same") == ("shop-http", "beta", "/same", True)
    # At the root: HTTP API $default-stage routes first, then REST routes (SAM CLI style).
    assert pick("/same") == ("shop-http", "$default", "/same", False)
    assert pick("/orders/7") == ("shop", "Prod", "/orders/{id}", False)
    # Nothing else: the HTTP API's $default catch-all route.
    assert pick("/elsewhere") == ("shop-http", "$default", "$default", False)


def test_selection_on_api_and_url_hosts() -> None:
    selector = Selector(_app())
    found = selector.select(request("/Prod/orders/1", host="rest000001.execute-api.localhost"))
    assert isinstance(found, RouteMatch)
    assert found.api.api_id == "rest000001"
    assert found.domain_name == "rest000001.execute-api.localhost"
    # A REST API needs its stage in the path on its own host.
    assert (
        selector.select(request("/orders/1", host="rest000001.execute-api.localhost"))
        is ApiKind.REST
    )
    on_http = selector.select(request("/anything", host="http000001.execute-api.localhost"))
    assert isinstance(on_http, RouteMatch)
    assert on_http.route.path == "$default"
    url = selector.select(request("/x", host="u" * 32 + ".lambda-url.us-east-1.localhost"))
    assert isinstance(url, UrlMatch)
    assert url.url.function_name == "fn"
    assert selector.select(request("/x", host="nope.execute-api.localhost")) is ApiKind.REST


def test_unmatched_kind() -> None:
    only_http = App.build(
        apis=[
            Api(
                api_id="h",
                name="h",
                kind=ApiKind.HTTP,
                routes=(route("GET", "/a"),),
                stages={"$default": Stage("$default")},
            )
        ]
    )
    assert Selector(only_http).select(request("/b")) is ApiKind.HTTP
    assert Selector(App.build()).select(request("/b")) is None
