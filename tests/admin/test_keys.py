"""API keys, usage plans and usage through boto3, enforced by the gateway on real requests."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from .conftest import Running, openapi


def _keyed_api(running: Running) -> str:
    """An imported API whose GET /paid needs an API key, deployed to stage `v1`."""
    document: dict[str, Any] = openapi("/paid", title="paid")
    document["paths"]["/paid"]["get"]["security"] = [{"api_key": []}]
    document["components"] = {
        "securitySchemes": {"api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"}}
    }
    api_id = str(running.v1.import_rest_api(body=json.dumps(document))["id"])
    running.v1.create_deployment(restApiId=api_id, stageName="v1")
    return api_id


def test_keys_plans_and_usage(running: Running) -> None:
    v1 = running.v1
    api_id = _keyed_api(running)
    key = v1.create_api_key(name="alice", enabled=True, value="alice-key-0123456789abcdef")
    assert (key["name"], key["enabled"], key["value"]) == (
        "alice",
        True,
        "alice-key-0123456789abcdef",
    )
    generated = v1.create_api_key(name="bob")
    assert 20 <= len(generated["value"]) <= 128
    assert generated["enabled"] is False
    listed = v1.get_api_keys(includeValues=True)["items"]
    assert {k["name"]: k["value"] for k in listed}["alice"] == key["value"]
    assert all("value" not in k for k in v1.get_api_keys()["items"])
    assert v1.get_api_key(apiKey=key["id"])["name"] == "alice"
    plan = v1.create_usage_plan(
        name="gold",
        apiStages=[{"apiId": api_id, "stage": "v1"}],
        throttle={"burstLimit": 100, "rateLimit": 50.0},
        quota={"limit": 3, "offset": 0, "period": "DAY"},
    )
    assert plan["quota"] == {"limit": 3, "offset": 0, "period": "DAY"}
    assert plan["apiStages"] == [{"apiId": api_id, "stage": "v1"}]
    attached = v1.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    assert (attached["id"], attached["type"], attached["name"]) == (key["id"], "API_KEY", "alice")
    with pytest.raises(v1.exceptions.ConflictException):
        v1.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    assert [p["name"] for p in v1.get_usage_plans()["items"]] == ["gold"]
    # The gateway enforces the key and counts the requests it lets through.
    assert running.get("/v1/paid").status_code == 403
    ok = [running.get("/v1/paid", headers={"x-api-key": key["value"]}) for _ in range(2)]
    assert [r.status_code for r in ok] == [200, 200]
    today = datetime.datetime.now(datetime.UTC).date()
    usage = v1.get_usage(
        usagePlanId=plan["id"],
        startDate=(today - datetime.timedelta(days=1)).isoformat(),
        endDate=today.isoformat(),
    )
    assert usage["usagePlanId"] == plan["id"]
    assert usage["items"] == {key["id"]: [[0, 3], [2, 1]]}
    only = v1.get_usage(
        usagePlanId=plan["id"],
        keyId="nosuch",
        startDate=today.isoformat(),
        endDate=today.isoformat(),
    )
    assert only["items"] == {}


def test_usage_counts_by_quota_period(running: Running) -> None:
    """`remaining` is what the quota had left at the end of each day of its period."""
    v1 = running.v1
    key = v1.create_api_key(name="carol", enabled=True)
    plan = v1.create_usage_plan(name="weekly", quota={"limit": 10, "period": "WEEK"})
    v1.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    monday = datetime.date(2026, 11, 23)
    quotas = running.node.stores.quotas

    async def record(day: datetime.date, times: int) -> None:
        for _ in range(times):
            await quotas.record_usage(plan["id"], key["id"], day)

    async def record_all() -> None:
        for offset, times in ((0, 2), (2, 3), (7, 1)):
            await record(monday + datetime.timedelta(days=offset), times)

    assert running.thread is not None
    running.thread.call(record_all)
    usage = v1.get_usage(
        usagePlanId=plan["id"],
        startDate=monday.isoformat(),
        endDate=(monday + datetime.timedelta(days=7)).isoformat(),
    )
    assert usage["items"][key["id"]] == [
        [2, 8],
        [0, 8],
        [3, 5],
        [0, 5],
        [0, 5],
        [0, 5],
        [0, 5],
        [1, 9],  # a new week
    ]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda v1: v1.create_api_key(name="short", value="tooshort"), "BadRequestException"),
        (
            lambda v1: v1.create_usage_plan(name="p", quota={"limit": 1, "period": "YEAR"}),
            "BadRequestException",
        ),
        (
            lambda v1: v1.create_usage_plan(name="p", apiStages=[{"apiId": "x", "stage": "y"}]),
            "BadRequestException",
        ),
        (
            lambda v1: v1.get_usage(
                usagePlanId="nosuch", startDate="2026-01-01", endDate="2026-01-02"
            ),
            "NotFoundException",
        ),
        (
            lambda v1: v1.create_usage_plan_key(usagePlanId="nosuch", keyId="k", keyType="API_KEY"),
            "NotFoundException",
        ),
        (lambda v1: v1.get_api_key(apiKey="nosuch"), "NotFoundException"),
    ],
)
def test_key_and_plan_errors(running: Running, call: Any, error: str) -> None:
    with pytest.raises(running.v1.exceptions.ClientError) as caught:
        call(running.v1)
    assert caught.value.response["Error"]["Code"] == error


def test_duplicate_key_value_conflicts(running: Running) -> None:
    running.v1.create_api_key(name="a", value="same-value-0123456789")
    with pytest.raises(running.v1.exceptions.ConflictException):
        running.v1.create_api_key(name="b", value="same-value-0123456789")
