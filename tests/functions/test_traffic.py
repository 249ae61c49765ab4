"""Gradual alias deployments: the steps of every deployment type, the shifter with a timer the
test moves, hooks, and a real node whose published versions keep their own code."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest

from fogbank.config import NodeConfig
from fogbank.functions import InMemoryInvoker
from fogbank.functions._reload import Reload
from fogbank.functions._traffic import AliasShifter, Shift
from fogbank.model import (
    Alias,
    App,
    DeploymentPreference,
    Function,
    FunctionConfig,
    ShiftKind,
    load_template,
)
from fogbank.model._traffic import PREDEFINED

from ..conftest import NodeThread

TRAFFIC_APP = Path(__file__).parent / "traffic_app"


class ManualTimer:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.t = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.t + seconds, future))
        await future

    async def advance(self, seconds: float) -> None:
        self.t += seconds
        for deadline, future in list(self._sleepers):
            if deadline <= self.t and not future.done():
                future.set_result(None)
        self._sleepers = [(d, f) for d, f in self._sleepers if not f.done()]
        for _ in range(20):  # let the woken shifter deploy its step
            await asyncio.sleep(0)


@pytest.mark.parametrize("name", sorted(PREDEFINED))
def test_every_predefined_type(name: str) -> None:
    kind, percentage, interval = PREDEFINED[name]
    pref = DeploymentPreference("live", name, kind, percentage, interval)
    steps = pref.steps()
    assert steps[-1][1] == 1.0
    assert [w for _, w in steps] == sorted(w for _, w in steps)
    if kind is ShiftKind.ALL_AT_ONCE:
        assert steps == ((0.0, 1.0),)
    elif kind is ShiftKind.CANARY:
        assert steps == ((0.0, 0.1), (interval, 1.0))
    else:
        assert len(steps) == 10
        assert steps[0] == (0.0, 0.1)
        assert steps[-1] == (9 * interval, 1.0)


class Deployed:
    """An app holder standing in for the node."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.history: list[App] = []

    async def deploy(self, app: App) -> None:
        self.app = app
        self.history.append(app)


def _app(code: Path, pref: DeploymentPreference, *hooks: str) -> App:
    config = FunctionConfig(name="price", runtime="python3.12", handler="a.h", code_dir=code)
    fn = Function(
        latest=config,
        versions={"1": config.published("1")},
        aliases={"live": Alias("live", "1")},
        deployment_preference=pref,
    )
    others = [
        Function(FunctionConfig(name=h, runtime="python3.12", handler="a.h", code_dir=code))
        for h in hooks
    ]
    return App.build([fn, *others])


@pytest.fixture
def code(tmp_path: Path) -> Path:
    directory = tmp_path / "code"
    directory.mkdir()
    (directory / "a.py").write_text("RELEASE = 'old'\n")
    return directory


def _alias(app: App) -> Alias:
    return app.functions["price"].aliases["live"]


def test_canary_shifts_with_a_manual_timer(code: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        pref = DeploymentPreference("live", "Canary10Percent5Minutes", ShiftKind.CANARY, 10, 300)
        deployed = Deployed(_app(code, pref))
        shifts: list[Shift] = []
        timer = ManualTimer()
        shifter = AliasShifter(
            lambda: deployed.app,
            deployed.deploy,
            InMemoryInvoker(),
            tmp_path / "versions",
            timer=timer,
            on_shift=shifts.append,
        )
        deployed.app = await shifter.prepare(deployed.app)
        frozen = deployed.app.functions["price"].versions["1"].code_dir
        assert frozen == tmp_path / "versions" / "price" / "1"
        (code / "a.py").write_text("RELEASE = 'new'\n")
        assert await shifter.code_changed(["price", "unknown"]) == ["price"]
        await timer.advance(0)
        fn = deployed.app.functions["price"]
        assert set(fn.versions) == {"1", "2"}
        # Version 1 keeps the code it was published with; version 2 has the new code.
        assert (frozen / "a.py").read_text() == "RELEASE = 'old'\n"
        assert (fn.versions["2"].code_dir / "a.py").read_text() == "RELEASE = 'new'\n"
        assert _alias(deployed.app) == Alias("live", "1", {"2": 0.1})
        await timer.advance(299)
        assert _alias(deployed.app) == Alias("live", "1", {"2": 0.1})
        await timer.advance(1)
        await shifter.wait("price")
        assert _alias(deployed.app) == Alias("live", "2")
        assert [(s.weight, s.outcome) for s in shifts] == [(0.1, "shifted"), (1.0, "completed")]
        await shifter.stop()

    asyncio.run(scenario())


def test_a_new_change_restarts_the_shift(code: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        pref = PREDEFINED["Linear10PercentEvery1Minute"]
        preference = DeploymentPreference("live", "Linear10PercentEvery1Minute", *pref)
        deployed = Deployed(_app(code, preference))
        timer = ManualTimer()
        shifter = AliasShifter(
            lambda: deployed.app, deployed.deploy, InMemoryInvoker(), tmp_path / "v", timer=timer
        )
        deployed.app = await shifter.prepare(deployed.app)
        await shifter.code_changed(["price"])
        await timer.advance(0)  # the shift starts: 10 %
        await timer.advance(120)
        assert _alias(deployed.app) == Alias("live", "1", {"2": 0.3})
        await shifter.code_changed(["price"])
        await timer.advance(0)
        assert _alias(deployed.app) == Alias("live", "1", {"3": 0.1})
        await timer.advance(9 * 60)
        await shifter.wait("price")
        assert _alias(deployed.app) == Alias("live", "3")
        await shifter.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("failing", "final", "outcome"),
    [
        ("pre", Alias("live", "1"), "stopped"),
        ("post", Alias("live", "1"), "rolled back"),
        (None, Alias("live", "2"), "completed"),
    ],
)
def test_hooks_decide(
    code: Path, tmp_path: Path, failing: str | None, final: Alias, outcome: str
) -> None:
    async def scenario() -> None:
        pref = DeploymentPreference(
            "live", "AllAtOnce", pre_traffic_hook="pre", post_traffic_hook="post"
        )
        deployed = Deployed(_app(code, pref, "pre", "post"))
        calls: list[tuple[str, Any]] = []

        def hook(name: str) -> Any:
            def run(event: Any, context: Any) -> str:
                calls.append((name, event))
                if name == failing:
                    raise RuntimeError("hook says no")
                return "ok"

            return run

        invoker = InMemoryInvoker({"pre": hook("pre"), "post": hook("post")})
        shifts: list[Shift] = []
        shifter = AliasShifter(
            lambda: deployed.app,
            deployed.deploy,
            invoker,
            tmp_path / "v",
            timer=ManualTimer(),
            on_shift=shifts.append,
        )
        await shifter.code_changed(["price"])
        await shifter.wait("price")
        assert _alias(deployed.app) == final
        assert shifts[-1].outcome == outcome
        assert calls[0][0] == "pre"
        assert set(calls[0][1]) == {"DeploymentId", "LifecycleEventHookExecutionId"}
        await shifter.stop()

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_node_shifts_its_alias_and_versions_keep_their_code(tmp_path: Path) -> None:
    shutil.copytree(TRAFFIC_APP, tmp_path / "app")
    app = load_template(tmp_path / "app" / "template.yaml")
    assert app.functions["price"].deployment_preference is not None
    config = NodeConfig(port=0, control_port=0, state_dir=tmp_path / "state")
    thread = NodeThread(config, app).start()
    try:
        node = thread.node
        assert node is not None
        timer = ManualTimer()
        node.shifter.timer = timer
        client: Any = boto3.client(
            "lambda",
            endpoint_url=node.control_url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )

        def invoke(qualifier: str) -> dict[str, str]:
            out = client.invoke(FunctionName="price", Qualifier=qualifier)
            result: dict[str, str] = json.loads(out["Payload"].read())
            return result

        assert invoke("live") == {"release": "old", "version": "1"}
        source = tmp_path / "app" / "src" / "price_app.py"
        source.write_text(source.read_text().replace('"old"', '"new"'))

        # What the reload watcher does on a change: retire environments, then tell the node.
        async def reloaded() -> None:
            await node.invoker.invalidate(["price"])
            node._reloaded(Reload(functions=("price",), changed=(source,)))
            await asyncio.gather(*node._shifting)
            await timer.advance(0)

        thread.call(reloaded)
        alias = client.get_alias(FunctionName="price", Name="live")
        assert alias["FunctionVersion"] == "1"
        assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.1}
        assert invoke("1") == {"release": "old", "version": "1"}
        assert invoke("2") == {"release": "new", "version": "2"}
        assert invoke("$LATEST")["release"] == "new"
        thread.call(lambda: timer.advance(4 * 60))
        weights = client.get_alias(FunctionName="price", Name="live")["RoutingConfig"]
        assert weights["AdditionalVersionWeights"] == {"2": 0.5}
        thread.call(lambda: timer.advance(5 * 60))
        thread.call(lambda: node.shifter.wait("price"))
        alias = client.get_alias(FunctionName="price", Name="live")
        assert alias["FunctionVersion"] == "2"
        assert "RoutingConfig" not in alias or not alias["RoutingConfig"].get(
            "AdditionalVersionWeights"
        )
        assert invoke("live") == {"release": "new", "version": "2"}
        versions = client.list_versions_by_function(FunctionName="price")["Versions"]
        assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    finally:
        thread.stop()


def test_auto_publish_alias_alone_moves_at_once(code: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        deployed = Deployed(_app(code, DeploymentPreference("live")))
        shifter = AliasShifter(
            lambda: deployed.app,
            deployed.deploy,
            InMemoryInvoker(),
            tmp_path / "v",
            timer=ManualTimer(),
        )
        prepared = await shifter.prepare(deployed.app)
        # Nothing to freeze when the alias moves at once: no two versions serve together.
        assert prepared.functions["price"].versions["1"].code_dir == code
        await shifter.code_changed(["price"])
        await shifter.wait("price")
        fn = deployed.app.functions["price"]
        assert fn.aliases["live"] == Alias("live", "2")
        assert fn.versions["2"] == replace(fn.latest, version="2")

    asyncio.run(scenario())


def test_versions_live_at_an_absolute_path() -> None:
    """Environments start in their code directory: a relative state dir must not leak in."""
    shifter = AliasShifter(App.build, Deployed(App.build()).deploy, InMemoryInvoker(), Path("st"))
    assert shifter.versions_dir == Path.cwd() / "st"
