"""A real node serving the echo app, with boto3 clients for its admin API and HTTP for its APIs."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from fogbank._node import Node
from fogbank.admin import ADMIN_ACCESS_KEY
from fogbank.config import NodeConfig
from fogbank.model import load_template

from ..conftest import NodeThread

APP = Path(__file__).parent / "app"
TOKEN = "test-admin-token-0123456789"

ECHO_ARN = (
    "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
    "arn:aws:lambda:us-east-1:123456789012:function:echo/invocations"
)


def openapi(*paths: str, title: str = "imported", version: str = "2.0") -> dict[str, Any]:
    """An OpenAPI 3 document whose `GET` paths all reach the echo function."""
    integration = {
        "type": "aws_proxy",
        "httpMethod": "POST",
        "uri": ECHO_ARN,
        "payloadFormatVersion": version if version != "2.0" else "1.0",
    }
    return {
        "openapi": "3.0.1",
        "info": {"title": title, "version": "1"},
        "paths": {
            path: {"get": {"x-amazon-apigateway-integration": integration}} for path in paths
        },
    }


def http_openapi(*paths: str, title: str = "imported-http") -> str:
    document = openapi(*paths, title=title)
    for item in document["paths"].values():
        item["get"]["x-amazon-apigateway-integration"]["payloadFormatVersion"] = "2.0"
    return json.dumps(document)


class Running:
    """One node on a state directory, restartable; clients for every plane."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.thread: NodeThread | None = None

    def start(self, template: Path | None = None) -> Running:
        app = load_template(template or self.root / "app" / "template.yaml")
        config = NodeConfig(
            port=0, control_port=0, state_dir=self.root / "state", admin_token=TOKEN
        )
        self.thread = NodeThread(config, app).start()
        self.http = httpx.Client(base_url=self.data_url, timeout=30)
        return self

    def stop(self) -> None:
        if self.thread is not None:
            self.http.close()
            self.thread.stop()
            self.thread = None

    def restart(self, template: Path | None = None) -> None:
        self.stop()
        self.start(template)

    @property
    def node(self) -> Node:
        assert self.thread is not None
        assert self.thread.node is not None
        return self.thread.node

    @property
    def control_url(self) -> str:
        return self.node.control_url

    @property
    def data_url(self) -> str:
        return f"http://127.0.0.1:{self.node.port}"

    def client(self, service: str, secret: str = TOKEN, key: str = ADMIN_ACCESS_KEY) -> Any:
        make: Any = boto3.client  # typed per service name; these tests take both
        return make(
            service,
            endpoint_url=self.control_url,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )

    @property
    def v1(self) -> Any:
        return self.client("apigateway")

    @property
    def v2(self) -> Any:
        return self.client("apigatewayv2")

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """A request to the data plane."""
        return self.http.get(path, **kwargs)

    def echo(self, path: str) -> dict[str, Any]:
        """The echo function's answer for `path`, which must be served."""
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text)
        body: dict[str, Any] = response.json()
        return body

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A plain HTTP call to the admin API with the bearer token."""
        headers = {"Authorization": f"Bearer {TOKEN}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.control_url + path, headers=headers, **kwargs)

    def shop_id(self) -> str:
        """The id of the template's REST API (`shop`)."""
        apis = self.v1.get_rest_apis()["items"]
        return str(next(api["id"] for api in apis if api["name"] == "shop"))


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fogbank-admin-", dir="/var/tmp"))
    shutil.copytree(APP, path / "app")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def running(root: Path) -> Iterator[Running]:
    node = Running(root).start()
    yield node
    node.stop()
