"""The bundled demo's APIs over real HTTP: REST and HTTP APIs, binary, JSON body, streaming URL."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fogbank.cli._common import EXAMPLE_TEMPLATE
from fogbank.config import NodeConfig
from fogbank.model import load_template

from ..conftest import NodeThread


@pytest.fixture(scope="module")
def demo() -> Iterator[str]:
    state = Path(tempfile.mkdtemp(prefix="fogbank-demo-api-", dir="/var/tmp"))
    thread = NodeThread(
        NodeConfig(port=0, control_port=0, state_dir=state), load_template(EXAMPLE_TEMPLATE)
    ).start()
    assert thread.node is not None
    yield thread.node.url
    thread.stop()
    shutil.rmtree(state, ignore_errors=True)


def test_rest_api_with_stage_variables(demo: str) -> None:
    resp = httpx.get(demo + "/prod/products/1")
    assert resp.status_code == 200
    assert resp.json() == {"id": "1", "name": "Fog lamp", "price": 24.5, "greeting": "Welcome"}
    missing = httpx.get(demo + "/prod/products/9")
    assert missing.status_code == 404
    assert missing.json() == {"message": "no product 9"}


def test_http_api_and_layer(demo: str) -> None:
    resp = httpx.get(demo + "/hello/Ada")
    assert resp.status_code == 200
    assert resp.json()["message"] == "Hello, Ada! (stage dev)"


def test_json_body_through_alias(demo: str) -> None:
    resp = httpx.post(demo + "/prod/orders", json={"items": ["lamp"]})
    assert resp.status_code == 201
    doc = resp.json()
    assert doc["items"] == ["lamp"]
    assert doc["version"] == "1"
    bad = httpx.post(demo + "/prod/orders", json={"items": []})
    assert bad.status_code == 400
    assert bad.json() == {"message": "an order needs at least one item"}


def test_binary_response(demo: str) -> None:
    resp = httpx.get(demo + "/prod/products/2/image", headers={"accept": "image/png"})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "image/png"
    assert resp.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_cors_preflight_from_sam_cors(demo: str) -> None:
    resp = httpx.options(demo + "/prod/products")
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == "*"
    assert resp.headers["access-control-allow-methods"] == "GET,POST,OPTIONS"


def test_streaming_function_url(demo: str) -> None:
    app = load_template(EXAMPLE_TEMPLATE)
    url_id = app.function_urls["StreamFunction"].url_id
    host = f"{url_id}.lambda-url.us-east-1.localhost"
    with httpx.stream("GET", demo + "/?count=3", headers={"host": host}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/plain"
        chunks = list(resp.iter_raw())
    assert b"".join(chunks) == b"line 1 of 3\nline 2 of 3\nline 3 of 3\n"
    assert len(chunks) >= 2
