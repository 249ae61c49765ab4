"""The admin token: bearer for plain HTTP, SigV4 for boto3; AWS's error shapes without it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from openapi_spec_validator import validate

from .conftest import TOKEN, Running, openapi


def test_every_operation_over_plain_http_with_the_bearer_token(running: Running) -> None:
    call = running.admin
    imported = call("POST", "/restapis?mode=import", content=json.dumps(openapi("/x")))
    assert imported.status_code == 201
    api_id = imported.json()["id"]
    assert imported.headers["x-amzn-requestid"]
    assert api_id in [a["id"] for a in call("GET", "/restapis").json()["item"]]
    assert call("GET", f"/restapis/{api_id}").json()["name"] == "imported"
    dep = call("POST", f"/restapis/{api_id}/deployments", json={"stageName": "a"}).json()
    assert call("GET", f"/restapis/{api_id}/deployments").json()["item"][0]["id"] == dep["id"]
    made = call(
        "POST", f"/restapis/{api_id}/stages", json={"stageName": "b", "deploymentId": dep["id"]}
    )
    assert made.status_code == 201
    assert {s["stageName"] for s in call("GET", f"/restapis/{api_id}/stages").json()["item"]} == {
        "a",
        "b",
    }
    patch = {"patchOperations": [{"op": "replace", "path": "/variables/v", "value": "1"}]}
    assert call("PATCH", f"/restapis/{api_id}/stages/b", json=patch).json()["variables"] == {
        "v": "1"
    }
    assert call("GET", f"/restapis/{api_id}/stages/b").json()["variables"] == {"v": "1"}
    assert running.echo("/b/x")["stageVariables"] == {"v": "1"}
    assert call("DELETE", f"/restapis/{api_id}/stages/b/cache/data").status_code == 202
    key = call("POST", "/apikeys", json={"name": "k", "enabled": True}).json()
    assert [k["id"] for k in call("GET", "/apikeys").json()["item"]] == [key["id"]]
    plan = call("POST", "/usageplans", json={"name": "p"}).json()
    added = call(
        "POST", f"/usageplans/{plan['id']}/keys", json={"keyId": key["id"], "keyType": "API_KEY"}
    )
    assert added.status_code == 201
    usage = call("GET", f"/usageplans/{plan['id']}/usage?startDate=2026-01-01&endDate=2026-01-01")
    assert usage.json()["values"] == {key["id"]: [[0, 0]]}
    body = {"body": json.dumps(openapi("/h", title="h"))}
    http_api = call("PUT", "/v2/apis", json=body).json()
    assert http_api["protocolType"] == "HTTP"
    assert (
        call("POST", f"/v2/apis/{http_api['apiId']}/stages", json={"stageName": "s"}).status_code
        == 201
    )
    assert len(call("GET", f"/v2/apis/{http_api['apiId']}/stages").json()["items"]) == 1
    assert len(call("GET", "/v2/apis").json()["items"]) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "AWS4-HMAC-SHA256 garbage"},
    ],
)
def test_without_the_token_nothing_changes(running: Running, headers: dict[str, str]) -> None:
    url = running.control_url
    body = json.dumps(openapi("/x"))
    refused = httpx.post(f"{url}/restapis?mode=import", content=body, headers=headers)
    assert refused.status_code == 401
    assert refused.headers["x-amzn-errortype"] == "UnauthorizedException"
    assert refused.json() == {"message": "The security token included in the request is invalid"}
    patch = {"patchOperations": [{"op": "replace", "path": "/variables/color", "value": "x"}]}
    stage = f"{url}/restapis/{running.shop_id()}/stages/prod"
    assert httpx.patch(stage, json=patch, headers=headers).status_code == 401
    v2 = httpx.put(f"{url}/v2/apis", json={"body": body}, headers=headers)
    assert (v2.status_code, v2.headers["x-amzn-errortype"]) == (403, "AccessDeniedException")
    assert [a["name"] for a in running.v1.get_rest_apis()["items"]] == ["shop"]
    assert running.echo("/prod/hello")["stageVariables"] == {"color": "blue"}


@pytest.mark.parametrize(
    ("service", "secret", "key", "status", "code"),
    [
        ("apigateway", "wrong-token", "fogbank-admin", 401, "UnauthorizedException"),
        ("apigateway", TOKEN, "AKIDEXAMPLE", 401, "UnauthorizedException"),
        ("apigatewayv2", "wrong-token", "fogbank-admin", 403, "AccessDeniedException"),
    ],
)
def test_boto3_with_wrong_credentials(
    running: Running, service: str, secret: str, key: str, status: int, code: str
) -> None:
    client: Any = running.client(service, secret=secret, key=key)
    document = json.dumps(openapi("/x"))
    operation, argument = (
        ("import_rest_api", "body") if service == "apigateway" else ("import_api", "Body")
    )
    with pytest.raises(ClientError) as caught:
        getattr(client, operation)(**{argument: document})
    response = caught.value.response
    assert (response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]) == (
        status,
        code,
    )
    assert [a["name"] for a in running.v1.get_rest_apis()["items"]] == ["shop"]


def test_unknown_paths_and_methods(running: Running) -> None:
    assert running.admin("GET", "/restapis/x/nothing").json()["message"].startswith("No admin")
    refused = running.admin("DELETE", "/apikeys")
    assert (refused.status_code, refused.headers["x-amzn-errortype"]) == (
        400,
        "BadRequestException",
    )
    bad_json = running.admin("POST", "/apikeys", content=b"{nope")
    assert bad_json.status_code == 400


def test_openapi_document_is_served_without_a_token_and_valid(running: Running) -> None:
    response = httpx.get(f"{running.control_url}/admin/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    # Every operation the admin API routes is described.
    described = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    served = {(op.method, op.template) for op in running.node.control_plane.admin.operations}
    assert served <= described


def test_lambda_api_is_still_served_beside_it(running: Running) -> None:
    listed = httpx.get(f"{running.control_url}/2015-03-31/functions/").json()
    assert sorted(f["FunctionName"] for f in listed["Functions"]) == ["allow", "echo"]
