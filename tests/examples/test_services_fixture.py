"""The `tests/templates/services` fixture served by a real node: both service shapes (a
`Fogbank::Service` and an ECS task definition + service) run and register, the REST and HTTP
APIs reach the catalog, the function reaches it through the layer."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from fogbank.config import NodeConfig
from fogbank.model import load_template

from ..conftest import NodeThread, wait_until

FIXTURE = Path(__file__).parent.parent / "templates" / "services"

pytestmark = pytest.mark.slow


def test_the_fixture_serves_both_service_shapes(tmp_path: Path) -> None:
    project = tmp_path / "app"
    shutil.copytree(FIXTURE, project, ignore=shutil.ignore_patterns(".fogbank", "__pycache__"))
    config = NodeConfig(port=0, control_port=0, state_dir=tmp_path / "state")
    shop = NodeThread(config, load_template(project / "template.yaml")).start()
    try:
        assert shop.node is not None
        node = shop.node
        registry = node.registry

        def healthy(name: str) -> list[str]:
            service = registry.find_service("shop.local", name)
            return [i.id for i in registry.healthy(service.id)] if service else []

        wait_until(lambda: len(healthy("catalog")) == 2, "two healthy catalog instances")
        wait_until(lambda: len(healthy("stock")) == 1, "the ECS-shaped stock service")
        stock = registry.find_service("shop.local", "stock")
        assert stock is not None
        (instance,) = registry.instances(stock.id)
        assert instance.attributes["ECS_TASK_DEFINITION_FAMILY"] == "stock"
        with httpx.Client(base_url=node.url) as client:
            rest = client.get("/prod/items/1")
            assert rest.status_code == 200
            assert rest.json()["name"] == "Espresso cup"
            assert rest.json()["servedBy"] in healthy("catalog")
            private = client.get("/items/2")
            assert private.status_code == 200
            assert private.json()["name"] == "Milk jug"
            order = client.post("/prod/orders", json={})
            assert order.status_code == 201
            assert order.json() == {"ordered": ["1", "2"]}
    finally:
        shop.stop()
