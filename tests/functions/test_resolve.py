"""Resolving `FunctionName` + `Qualifier` to the version that runs."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from fogbank.functions._resolve import ValidationError, parse_function_name, resolve
from fogbank.functions._types import InvalidParameterValue, ResourceNotFound
from fogbank.model import Alias, App, Function, FunctionConfig, Identity

ARN = "arn:aws:lambda:us-east-1:123456789012:function"


class ScriptedRandom(random.Random):
    """A random source that returns the draws a test chose."""

    def __init__(self, *draws: float) -> None:
        super().__init__(0)
        self.draws = list(draws)

    def random(self) -> float:
        return self.draws.pop(0)


@pytest.fixture
def app() -> App:
    cfg = FunctionConfig(name="orders", runtime="python3.12", handler="app.h", code_dir=Path("/c"))
    fn = Function(
        latest=cfg,
        versions={"1": cfg.published("1"), "2": cfg.published("2")},
        aliases={
            "live": Alias("live", "1", {"2": 0.25}),
            "stable": Alias("stable", "2"),
            "broken": Alias("broken", "9"),
        },
        logical_id="OrdersFunction",
    )
    return App.build([fn])


@pytest.mark.parametrize(
    ("name", "qualifier", "version", "arn"),
    [
        ("orders", None, "$LATEST", f"{ARN}:orders"),
        ("OrdersFunction", None, "$LATEST", f"{ARN}:orders"),
        ("orders", "$LATEST", "$LATEST", f"{ARN}:orders:$LATEST"),
        ("orders:1", None, "1", f"{ARN}:orders:1"),
        ("orders", "2", "2", f"{ARN}:orders:2"),
        ("orders:stable", "stable", "2", f"{ARN}:orders:stable"),
        (f"{ARN}:orders", None, "$LATEST", f"{ARN}:orders"),
        (f"{ARN}:orders:1", None, "1", f"{ARN}:orders:1"),
        (f"{ARN}:OrdersFunction:stable", None, "2", f"{ARN}:orders:stable"),
        ("123456789012:function:orders", None, "$LATEST", f"{ARN}:orders"),
        ("123456789012:function:orders:2", None, "2", f"{ARN}:orders:2"),
    ],
)
def test_every_name_form(
    app: App, name: str, qualifier: str | None, version: str, arn: str
) -> None:
    found = resolve(app, name, qualifier)
    assert found.function.name == "orders"
    assert found.config.version == version
    assert found.invoked_arn == arn


def test_qualifier_is_reported(app: App) -> None:
    assert resolve(app, "orders").qualifier is None
    assert resolve(app, "orders:live", rng=ScriptedRandom(0.9)).qualifier == "live"


def test_conflicting_qualifiers_are_refused(app: App) -> None:
    with pytest.raises(InvalidParameterValue) as info:
        resolve(app, "orders:1", "2")
    assert info.value.status == 400
    assert info.value.message == (
        "The derived qualifier from the function name does not match the specified qualifier."
    )


@pytest.mark.parametrize(
    ("name", "qualifier", "message"),
    [
        ("nope", None, f"Function not found: {ARN}:nope"),
        ("nope", "3", f"Function not found: {ARN}:nope:3"),
        ("orders", "3", f"Function not found: {ARN}:orders:3"),
        ("orders:ghost", None, f"Function not found: {ARN}:orders:ghost"),
        ("orders", "broken", f"Function not found: {ARN}:orders:broken"),
        ("orders", "$LATEST.PUBLISHED", f"Function not found: {ARN}:orders:$LATEST.PUBLISHED"),
        (
            "arn:aws:lambda:eu-west-1:123456789012:function:orders",
            None,
            "Function not found: arn:aws:lambda:eu-west-1:123456789012:function:orders",
        ),
        (
            "999999999999:function:orders:1",
            None,
            "Function not found: arn:aws:lambda:us-east-1:999999999999:function:orders:1",
        ),
    ],
)
def test_not_found(app: App, name: str, qualifier: str | None, message: str) -> None:
    with pytest.raises(ResourceNotFound) as info:
        resolve(app, name, qualifier)
    assert info.value.message == message
    assert info.value.status == 404


@pytest.mark.parametrize("name", ["a:b:c:d:e", "orders:", "bad name:1", "x" * 300])
def test_malformed_names_fail_validation(app: App, name: str) -> None:
    with pytest.raises(ValidationError) as info:
        resolve(app, name)
    assert info.value.status == 400
    assert info.value.error_type == "ValidationException"


def test_alias_weights_pick_per_draw(app: App) -> None:
    assert resolve(app, "orders", "live", rng=ScriptedRandom(0.10)).config.version == "2"
    assert resolve(app, "orders", "live", rng=ScriptedRandom(0.25)).config.version == "1"
    assert resolve(app, "orders", "live", rng=ScriptedRandom(0.99)).config.version == "1"


def test_alias_weights_over_many_draws(app: App) -> None:
    rng = random.Random(1234)
    counts = Counter(resolve(app, "orders:live", rng=rng).config.version for _ in range(2000))
    assert set(counts) == {"1", "2"}
    assert 400 <= counts["2"] <= 600  # 25 % of 2000, seeded: always the same count


def test_unweighted_resolution_uses_the_primary_version(app: App) -> None:
    found = resolve(app, "orders", "live", weighted=False, rng=ScriptedRandom(0.0))
    assert found.config.version == "1"


def test_identity_override(app: App) -> None:
    ident = Identity(region="eu-central-1", account_id="210987654321")
    found = resolve(app, "arn:aws:lambda:eu-central-1:210987654321:function:orders", identity=ident)
    assert found.invoked_arn == "arn:aws:lambda:eu-central-1:210987654321:function:orders"
    with pytest.raises(ResourceNotFound):
        resolve(app, f"{ARN}:orders", identity=ident)


def test_parse_keeps_the_parts() -> None:
    ref = parse_function_name("arn:aws:lambda:us-west-2:123456789012:function:my-fn:PROD")
    assert (ref.name, ref.qualifier, ref.region, ref.account) == (
        "my-fn",
        "PROD",
        "us-west-2",
        "123456789012",
    )
    assert parse_function_name("my-fn").qualifier is None
