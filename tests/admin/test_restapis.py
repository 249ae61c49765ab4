"""`apigateway` REST API operations through boto3 against a real node."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from .conftest import ECHO_ARN, Running, openapi


def test_template_api_is_listed_with_its_template_deployment(running: Running) -> None:
    api_id = running.shop_id()
    api = running.v1.get_rest_api(restApiId=api_id)
    assert (api["name"], api["apiKeySource"]) == ("shop", "HEADER")
    deployments = running.v1.get_deployments(restApiId=api_id)["items"]
    assert [d["description"] for d in deployments] == ["loaded from the template"]
    assert deployments[0]["apiSummary"] == {
        "/hello": {"GET": {"authorizationType": "NONE", "apiKeyRequired": False}}
    }
    stages = {s["stageName"]: s for s in running.v1.get_stages(restApiId=api_id)["item"]}
    assert set(stages) == {"prod", "Stage"}
    assert stages["prod"]["deploymentId"] == deployments[0]["id"]
    assert stages["prod"]["variables"] == {"color": "blue"}
    assert running.echo("/prod/hello")["stageVariables"] == {"color": "blue"}


def test_import_deploy_and_serve(running: Running) -> None:
    v1 = running.v1
    imported = v1.import_rest_api(body=json.dumps(openapi("/items", title="catalog")))
    api_id = imported["id"]
    assert imported["name"] == "catalog"
    assert api_id in [api["id"] for api in v1.get_rest_apis()["items"]]
    assert v1.get_rest_api(restApiId=api_id)["name"] == "catalog"
    # Imported but not deployed: no stage serves it yet.
    assert v1.get_stages(restApiId=api_id)["item"] == []
    deployment = v1.create_deployment(restApiId=api_id, stageName="v1", description="first")
    assert v1.get_deployment(restApiId=api_id, deploymentId=deployment["id"])["description"] == (
        "first"
    )
    stage = v1.get_stage(restApiId=api_id, stageName="v1")
    assert stage["deploymentId"] == deployment["id"]
    assert running.echo("/v1/items")["route"] == "GET /items"
    on_own_host = running.get("/v1/items", headers={"Host": f"{api_id}.execute-api.localhost"})
    assert on_own_host.status_code == 200


def test_yaml_import_and_put_rest_api_needs_a_new_deployment(running: Running) -> None:
    v1 = running.v1
    yaml_doc = (
        "openapi: 3.0.1\ninfo: {title: yamlish, version: '1'}\npaths:\n"
        + "  /a:\n    get:\n      x-amazon-apigateway-integration:\n"
        + "        {type: aws_proxy, httpMethod: POST, uri: 'arn:aws:lambda:us-east-1:"
        + "123456789012:function:echo'}\n"
    )
    api_id = v1.import_rest_api(body=yaml_doc)["id"]
    v1.create_deployment(restApiId=api_id, stageName="live")
    v1.put_rest_api(restApiId=api_id, mode="merge", body=json.dumps(openapi("/b")))
    # The stage serves its deployment until the next one.
    assert running.get("/live/b").status_code == 403
    assert running.echo("/live/a")["route"] == "GET /a"
    v1.create_deployment(restApiId=api_id, stageName="live")
    assert running.echo("/live/b")["route"] == "GET /b"
    v1.put_rest_api(restApiId=api_id, mode="overwrite", body=json.dumps(openapi("/c")))
    v1.create_deployment(restApiId=api_id, stageName="live")
    assert running.get("/live/a").status_code == 403
    assert running.echo("/live/c")["route"] == "GET /c"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "neither JSON nor YAML"),
        ("[1, 2]", "must be an OpenAPI document"),
        ('{"info": {"title": "x"}, "paths": {}}', "names no OpenAPI version"),
        ('{"openapi": "3.0.1", "paths": {}}', "info.title"),
        (json.dumps(openapi("/items/{id")), "paths./items/{id"),
        (json.dumps(openapi("/x")).replace("function:echo", "function:nope"), "nope"),
    ],
)
def test_invalid_import_is_a_bad_request_and_changes_nothing(
    running: Running, body: str, message: str
) -> None:
    before = running.v1.get_rest_apis()["items"]
    with pytest.raises(ClientError) as caught:
        running.v1.import_rest_api(body=body)
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "BadRequestException"
    assert message in error["Error"]["Message"]
    assert running.v1.get_rest_apis()["items"] == before
    assert running.echo("/prod/hello")["stage"] == "prod"


def test_invalid_reimport_keeps_the_deployed_routes(running: Running) -> None:
    v1 = running.v1
    api_id = v1.import_rest_api(body=json.dumps(openapi("/items")))["id"]
    v1.create_deployment(restApiId=api_id, stageName="v1")
    with pytest.raises(v1.exceptions.BadRequestException):
        v1.put_rest_api(restApiId=api_id, mode="overwrite", body='{"openapi": "3.0.1"}')
    with pytest.raises(v1.exceptions.BadRequestException):
        v1.create_deployment(
            restApiId=api_id, stageName="v1", canarySettings={"percentTraffic": 101}
        )
    assert running.echo("/v1/items")["route"] == "GET /items"
    assert len(v1.get_deployments(restApiId=api_id)["items"]) == 1


def test_stages_are_served_at_once_and_rolled_back(running: Running) -> None:
    v1 = running.v1
    api_id = v1.import_rest_api(body=json.dumps(openapi("/one")))["id"]
    first = v1.create_deployment(restApiId=api_id, stageName="prod")["id"]
    v1.put_rest_api(restApiId=api_id, mode="overwrite", body=json.dumps(openapi("/two")))
    second = v1.create_deployment(restApiId=api_id, stageName="prod")["id"]
    created = v1.create_stage(
        restApiId=api_id, stageName="old", deploymentId=first, variables={"tier": "gold"}
    )
    assert created["deploymentId"] == first
    with pytest.raises(v1.exceptions.ConflictException):
        v1.create_stage(restApiId=api_id, stageName="old", deploymentId=first)
    with pytest.raises(v1.exceptions.BadRequestException):
        v1.create_stage(restApiId=api_id, stageName="other", deploymentId="nosuch")
    # Two stages of one API, two deployments, each with its own variables.
    assert running.echo("/old/one")["stageVariables"] == {"tier": "gold"}
    assert running.get("/old/two").status_code == 403
    assert running.echo("/prod/two")["stageVariables"] is None
    listed = v1.get_stages(restApiId=api_id, deploymentId=first)["item"]
    assert [s["stageName"] for s in listed] == ["old"]
    # Rollback: re-point prod at the first deployment.
    patch = [{"op": "replace", "path": "/deploymentId", "value": first}]
    assert (
        v1.update_stage(restApiId=api_id, stageName="prod", patchOperations=patch)["deploymentId"]
        == first
    )
    assert running.echo("/prod/one")["route"] == "GET /one"
    assert running.get("/prod/two").status_code == 403
    forward = [{"op": "replace", "path": "/deploymentId", "value": second}]
    v1.update_stage(restApiId=api_id, stageName="prod", patchOperations=forward)
    assert running.echo("/prod/two")["route"] == "GET /two"
    v1.delete_stage(restApiId=api_id, stageName="old")
    assert running.get("/old/one").status_code == 403
    with pytest.raises(v1.exceptions.NotFoundException):
        v1.get_stage(restApiId=api_id, stageName="old")


def test_update_stage_variables_and_method_settings(running: Running) -> None:
    api_id = running.shop_id()
    patch = [
        {"op": "replace", "path": "/variables/color", "value": "green"},
        {"op": "add", "path": "/variables/size", "value": "xl"},
        {"op": "replace", "path": "/description", "value": "the live one"},
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "100"},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "20"},
        {"op": "replace", "path": "/~1hello/GET/caching/enabled", "value": "true"},
        {"op": "replace", "path": "/~1hello/GET/caching/ttlInSeconds", "value": "60"},
        {"op": "replace", "path": "/*/*/metrics/enabled", "value": "true"},
        {"op": "replace", "path": "/cacheClusterEnabled", "value": "true"},
    ]
    stage = running.v1.update_stage(restApiId=api_id, stageName="prod", patchOperations=patch)
    assert stage["variables"] == {"color": "green", "size": "xl"}
    assert stage["description"] == "the live one"
    assert stage["cacheClusterEnabled"] is True
    everything = stage["methodSettings"]["*/*"]
    assert (everything["throttlingRateLimit"], everything["throttlingBurstLimit"]) == (100.0, 20)
    hello = stage["methodSettings"]["~1hello/GET"]
    assert (hello["cachingEnabled"], hello["cacheTtlInSeconds"]) == (True, 60)
    again = running.v1.get_stage(restApiId=api_id, stageName="prod")
    assert {**again, "ResponseMetadata": None} == {**stage, "ResponseMetadata": None}
    settings = running.node.app.apis[api_id].management.stage_settings["prod"]
    # Stored as the template loader stores keys, so throttling and caching both find it.
    assert settings.method_settings["/hello/GET"].cache_ttl_s == 60
    assert settings.throttle is not None
    assert settings.throttle.rate_limit == 100.0
    assert running.echo("/prod/hello")["stageVariables"] == {"color": "green", "size": "xl"}
    # The other stage of the API is untouched.
    assert running.echo("/Stage/hello")["stageVariables"] is None
    remove = [{"op": "remove", "path": "/variables/size"}]
    running.v1.update_stage(restApiId=api_id, stageName="prod", patchOperations=remove)
    # Caching is on for GET /hello: the stage answers from its cache until flushed.
    assert running.echo("/prod/hello")["stageVariables"] == {"color": "green", "size": "xl"}
    running.v1.flush_stage_cache(restApiId=api_id, stageName="prod")
    assert running.echo("/prod/hello")["stageVariables"] == {"color": "green"}


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "/nonsense", "value": "1"},
        {"op": "replace", "path": "/deploymentId", "value": "nosuch"},
        {"op": "replace", "path": "/~1hello/GET/caching/ttlInSeconds", "value": "4000"},
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "fast"},
        {"op": "replace", "path": "/canarySettings/percentTraffic", "value": "120"},
        {"op": "jump", "path": "/description", "value": "x"},
    ],
)
def test_bad_patches_are_refused_whole(running: Running, operation: dict[str, str]) -> None:
    api_id = running.shop_id()
    good = {"op": "replace", "path": "/variables/color", "value": "red"}
    with pytest.raises(running.v1.exceptions.BadRequestException):
        running.v1.update_stage(
            restApiId=api_id, stageName="prod", patchOperations=[good, operation]
        )
    assert running.echo("/prod/hello")["stageVariables"] == {"color": "blue"}


def test_unknown_ids_are_not_found(running: Running) -> None:
    v1 = running.v1
    with pytest.raises(v1.exceptions.NotFoundException):
        v1.get_rest_api(restApiId="nosuchapi0")
    with pytest.raises(v1.exceptions.NotFoundException):
        v1.get_stage(restApiId=running.shop_id(), stageName="nosuch")
    with pytest.raises(v1.exceptions.NotFoundException):
        v1.get_deployment(restApiId=running.shop_id(), deploymentId="nosuch")


def test_flush_stage_cache(running: Running) -> None:
    api_id = running.shop_id()
    response = running.v1.flush_stage_cache(restApiId=api_id, stageName="prod")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    with pytest.raises(running.v1.exceptions.NotFoundException):
        running.v1.flush_stage_cache(restApiId=api_id, stageName="nosuch")


def test_an_imported_api_keeps_its_validation_and_gateway_responses(running: Running) -> None:
    document = openapi("/items", title="validated")
    document["x-amazon-apigateway-request-validators"] = {
        "params": {"validateRequestParameters": True, "validateRequestBody": False}
    }
    document["x-amazon-apigateway-gateway-responses"] = {
        "MISSING_AUTHENTICATION_TOKEN": {
            "statusCode": 404,
            "responseTemplates": {"application/json": '{"oops": "$context.error.message"}'},
        }
    }
    get = document["paths"]["/items"]["get"]
    get["x-amazon-apigateway-request-validator"] = "params"
    get["parameters"] = [
        {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}}
    ]
    api_id = running.v1.import_rest_api(body=json.dumps(document))["id"]
    running.v1.create_deployment(restApiId=api_id, stageName="v")
    host = {"Host": f"{api_id}.execute-api.localhost"}
    missing = running.get("/v/items", headers=host)
    assert (missing.status_code, missing.json()) == (
        400,
        {"message": "Missing required request parameters: [q]"},
    )
    assert running.get("/v/items?q=1", headers=host).status_code == 200
    unknown = running.get("/v/nothing", headers=host)
    assert (unknown.status_code, unknown.json()) == (404, {"oops": "Missing Authentication Token"})
    bad = dict(document, **{"x-amazon-apigateway-gateway-responses": {"NOPE": {}}})
    with pytest.raises(running.v1.exceptions.BadRequestException):
        running.v1.import_rest_api(body=json.dumps(bad))


def test_an_imported_api_keeps_its_authorizers(running: Running) -> None:
    document = openapi("/secret", title="guarded")
    allow = ECHO_ARN.replace("function:echo", "function:allow")
    document["components"] = {
        "securitySchemes": {
            "gate": {
                "type": "apiKey",
                "name": "Authorization",
                "in": "header",
                "x-amazon-apigateway-authtype": "custom",
                "x-amazon-apigateway-authorizer": {"type": "token", "authorizerUri": allow},
            }
        }
    }
    document["paths"]["/secret"]["get"]["security"] = [{"gate": []}]
    api_id = running.v1.import_rest_api(body=json.dumps(document))["id"]
    running.v1.create_deployment(restApiId=api_id, stageName="v")
    assert running.get("/v/secret").status_code == 401
    assert running.get("/v/secret", headers={"Authorization": "nope"}).status_code == 401
    allowed = running.get("/v/secret", headers={"Authorization": "let-me-in"})
    assert allowed.status_code == 200
    document["paths"]["/secret"]["get"]["security"] = [{"missing": []}]
    document["components"]["securitySchemes"]["gate"]["x-amazon-apigateway-authorizer"] = {
        "type": "token",
        "authorizerUri": allow.replace("function:allow", "function:nobody"),
    }
    with pytest.raises(running.v1.exceptions.BadRequestException):
        running.v1.import_rest_api(body=json.dumps(document))


def test_a_method_throttle_set_by_patch_is_enforced(running: Running) -> None:
    api_id = running.shop_id()
    patch = [
        # A bucket of one that refills once every 100 s: the second request must be throttled.
        {"op": "replace", "path": "/~1hello/GET/throttling/rateLimit", "value": "0.01"},
        {"op": "replace", "path": "/~1hello/GET/throttling/burstLimit", "value": "1"},
    ]
    stage = running.v1.update_stage(restApiId=api_id, stageName="prod", patchOperations=patch)
    assert stage["methodSettings"]["~1hello/GET"]["throttlingBurstLimit"] == 1
    assert running.get("/prod/hello").status_code == 200
    throttled = running.get("/prod/hello")
    assert throttled.status_code == 429
    assert throttled.json() == {"message": "Too Many Requests"}
