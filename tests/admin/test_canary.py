"""REST canaries: a seeded random split, overridden stage variables, promotion and removal."""

from __future__ import annotations

import json
import math
import random

from .conftest import Running, openapi

REQUESTS = 400
PERCENT = 25.0


def _two_deployments(running: Running) -> tuple[str, str, str]:
    """An imported API whose stage `live` serves the first deployment and has the second as a
    canary (`/v` in both, `/old` only in the first, `/new` only in the canary), with an
    overridden variable."""
    v1 = running.v1
    api_id = v1.import_rest_api(body=json.dumps(openapi("/v", "/old", title="shop-v")))["id"]
    stable = v1.create_deployment(
        restApiId=api_id, stageName="live", variables={"flavour": "stable", "shared": "yes"}
    )["id"]
    v1.put_rest_api(restApiId=api_id, mode="overwrite", body=json.dumps(openapi("/v", "/new")))
    canary = v1.create_deployment(
        restApiId=api_id,
        stageName="live",
        canarySettings={
            "percentTraffic": PERCENT,
            "stageVariableOverrides": {"flavour": "canary"},
            "useStageCache": False,
        },
    )["id"]
    return api_id, stable, canary


def test_canary_split_is_statistically_right(running: Running) -> None:
    api_id, stable, canary = _two_deployments(running)
    stage = running.v1.get_stage(restApiId=api_id, stageName="live")
    assert stage["deploymentId"] == stable
    assert stage["canarySettings"] == {
        "deploymentId": canary,
        "percentTraffic": PERCENT,
        "stageVariableOverrides": {"flavour": "canary"},
        "useStageCache": False,
    }
    running.node.gateway.canary.rng = random.Random(20261128)
    seen = [running.echo("/live/v")["stageVariables"] for _ in range(REQUESTS)]
    hits = sum(1 for variables in seen if variables["flavour"] == "canary")
    # Canary requests see the overrides laid over the stage's own variables.
    assert all(variables["shared"] == "yes" for variables in seen)
    mean = REQUESTS * PERCENT / 100
    sd = math.sqrt(REQUESTS * PERCENT / 100 * (1 - PERCENT / 100))
    assert abs(hits - mean) <= 5 * sd, hits
    assert 0 < hits < REQUESTS


def test_canary_requests_are_routed_by_the_canary_deployment(running: Running) -> None:
    _two_deployments(running)
    running.node.gateway.canary.rng = random.Random(7)
    statuses = [running.get("/live/old").status_code for _ in range(60)]
    # /old is gone from the canary deployment: canary requests get API Gateway's 403.
    assert set(statuses) == {200, 403}
    assert statuses.count(403) < statuses.count(200)
    # /new is only in the canary deployment: canary requests reach it, the others get 403.
    answers = [running.get("/live/new") for _ in range(60)]
    served = [a.json()["stageVariables"]["flavour"] for a in answers if a.status_code == 200]
    assert {a.status_code for a in answers} == {200, 403}
    assert served == ["canary"] * len(served)
    assert len(served) < 60 - len(served)


def test_promotion_by_patch_as_aws_documents_it(running: Running) -> None:
    api_id, _, canary = _two_deployments(running)
    promote = [
        {"op": "replace", "path": "/canarySettings/percentTraffic", "value": "0.0"},
        {"op": "copy", "from": "/canarySettings/stageVariableOverrides", "path": "/variables"},
        {"op": "copy", "from": "/canarySettings/deploymentId", "path": "/deploymentId"},
    ]
    stage = running.v1.update_stage(restApiId=api_id, stageName="live", patchOperations=promote)
    assert stage["deploymentId"] == canary
    assert stage["variables"] == {"flavour": "canary", "shared": "yes"}
    assert stage["canarySettings"]["percentTraffic"] == 0.0
    for _ in range(20):
        assert running.echo("/live/new")["stageVariables"]["flavour"] == "canary"
    removed = running.v1.update_stage(
        restApiId=api_id,
        stageName="live",
        patchOperations=[{"op": "remove", "path": "/canarySettings"}],
    )
    assert "canarySettings" not in removed


def test_canary_settings_changed_and_removed(running: Running) -> None:
    api_id, _, _ = _two_deployments(running)
    everything = [
        {"op": "replace", "path": "/canarySettings/percentTraffic", "value": "100"},
        {"op": "replace", "path": "/canarySettings/stageVariableOverrides/extra", "value": "1"},
        {"op": "replace", "path": "/canarySettings/useStageCache", "value": "true"},
    ]
    stage = running.v1.update_stage(restApiId=api_id, stageName="live", patchOperations=everything)
    assert stage["canarySettings"]["stageVariableOverrides"] == {"flavour": "canary", "extra": "1"}
    assert stage["canarySettings"]["useStageCache"] is True
    for _ in range(10):
        assert running.echo("/live/v")["stageVariables"]["extra"] == "1"
    running.v1.update_stage(
        restApiId=api_id,
        stageName="live",
        patchOperations=[{"op": "remove", "path": "/canarySettings"}],
    )
    for _ in range(10):
        assert running.echo("/live/v")["stageVariables"]["flavour"] == "stable"
