"""Real nodes with a data plane, for gateway tests over real HTTP."""

from __future__ import annotations

import contextlib
import functools
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec

import pydantic
import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
)

from fogbank.config import NodeConfig
from fogbank.gateway import _lambda
from fogbank.model import App, load_template

from ..conftest import NodeThread
from ..functions.conftest import write_code

__all__ = ["NodeThread", "write_code"]

P = ParamSpec("P")

APPS = Path(__file__).parent / "apps"
"""Handler modules of the acceptance tests, copied next to each template that uses them."""

EVENT_MODELS: dict[str, type[pydantic.BaseModel]] = {
    "rest_event": APIGatewayProxyEventModel,
    "http_event_v1": APIGatewayProxyEventModel,
    "http_event": APIGatewayProxyEventV2Model,
    "function_url_event": APIGatewayProxyEventV2Model,
}
"""The event builders the Lambda proxy calls, and the Powertools model each event must pass."""


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fogbank-gw-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def node_config(root: Path) -> NodeConfig:
    return NodeConfig(port=0, control_port=0, state_dir=root / "state")


class EventLog:
    """Every Lambda proxy event the gateway built during one test, and those Powertools refused.

    Events are built on the node's own thread, hence the lock.
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.invalid: list[str] = []
        self._lock = threading.Lock()

    def record(self, builder: str, event: dict[str, Any]) -> None:
        problem = None
        try:
            EVENT_MODELS[builder].model_validate(event)
        except pydantic.ValidationError as exc:
            problem = f"{builder} for {_described(event)}: {exc}"
        with self._lock:
            self.events.append((builder, event))
            if problem is not None:
                self.invalid.append(problem)

    def last(self, builder: str) -> dict[str, Any]:
        """The most recent event the named builder made."""
        with self._lock:
            return next(event for name, event in reversed(self.events) if name == builder)


def _described(event: dict[str, Any]) -> str:
    context = event.get("requestContext") or {}
    http = context.get("http") or {}
    method = event.get("httpMethod") or http.get("method")
    return f"{method} {event.get('path') or event.get('rawPath')}"


def _validating(
    build: Callable[P, dict[str, Any]], name: str, log: EventLog
) -> Callable[P, dict[str, Any]]:
    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> dict[str, Any]:
        event = build(*args, **kwargs)
        log.record(name, event)
        return event

    return wrapper


@pytest.fixture(autouse=True)
def proxy_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[EventLog]:
    """Every event the gateway produces in a test must validate against Powertools' models.

    The builders are wrapped where the Lambda proxy looks them up, so nodes started before the
    test (module-scoped ones) are covered too; the test fails at teardown naming each bad event.
    """
    log = EventLog()
    for name in EVENT_MODELS:
        monkeypatch.setattr(_lambda, name, _validating(getattr(_lambda, name), name, log))
    yield log
    if log.invalid:
        pytest.fail(
            f"{len(log.invalid)} event(s) failed Powertools' models:\n" + "\n".join(log.invalid),
            pytrace=False,
        )


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A directory outside /tmp (environments get a private /tmp), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Served:
    """A real node serving one template, and the host names of its APIs and Function URLs."""

    def __init__(self, template: Path, state_dir: Path) -> None:
        self.app: App = load_template(template)
        self.node = NodeThread(NodeConfig(port=0, control_port=0, state_dir=state_dir), self.app)

    @property
    def base(self) -> str:
        """The data plane's base URL, `http://127.0.0.1:<port>`."""
        assert self.node.node is not None
        return self.node.node.url

    @property
    def port(self) -> int:
        assert self.node.node is not None
        return self.node.node.port

    def api_host(self, logical_id: str) -> str:
        """`{apiId}.execute-api.localhost`, the API's own host, as on AWS."""
        api = next(a for a in self.app.apis.values() if a.logical_id == logical_id)
        return f"{api.api_id}.execute-api.localhost"

    def url_host(self, function: str) -> str:
        """`{urlId}.lambda-url.us-east-1.localhost`, the host of a function's URL."""
        return f"{self.app.function_urls[function].url_id}.lambda-url.us-east-1.localhost"


@contextlib.contextmanager
def serving(template: Path, state_dir: Path) -> Iterator[Served]:
    """Load `template` and serve it on free ports until the block ends."""
    served = Served(template, state_dir)
    served.node.start()
    try:
        yield served
    finally:
        served.node.stop()


def write_app_template(directory: Path, template: str) -> Path:
    """`template` as `directory/template.yaml`, with the test apps copied to `directory/src`."""
    shutil.copytree(APPS, directory / "src", ignore=shutil.ignore_patterns("__pycache__"))
    path = directory / "template.yaml"
    path.write_text(template, encoding="utf-8")
    return path
