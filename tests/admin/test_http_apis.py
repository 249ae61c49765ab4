"""`apigatewayv2` operations through boto3: imports, stages, auto-deploy."""

from __future__ import annotations

import pytest

from .conftest import Running, http_openapi


def test_import_and_auto_deploy(running: Running) -> None:
    v2 = running.v2
    api = v2.import_api(Body=http_openapi("/tasks", title="tasks"))
    api_id = api["ApiId"]
    assert (api["Name"], api["ProtocolType"]) == ("tasks", "HTTP")
    assert api["ApiEndpoint"] == f"http://{api_id}.execute-api.localhost:{running.node.port}"
    assert api_id in [a["ApiId"] for a in v2.get_apis()["Items"]]
    stage = v2.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    assert stage["AutoDeploy"] is True
    assert stage["DeploymentId"]
    host = {"Host": f"{api_id}.execute-api.localhost"}
    answer = running.get("/tasks", headers=host).json()
    assert (answer["route"], answer["stage"]) == ("GET /tasks", "$default")
    # A reimport reaches an auto-deploy stage at once, as AWS deploys every change there.
    v2.reimport_api(ApiId=api_id, Body=http_openapi("/tasks", "/done", title="tasks"))
    assert running.get("/done", headers=host).json()["route"] == "GET /done"
    deployments = v2.get_deployments(ApiId=api_id)["Items"]
    assert [d["AutoDeployed"] for d in deployments] == [True, True]
    assert (
        v2.get_stage(ApiId=api_id, StageName="$default")["DeploymentId"]
        == (deployments[-1]["DeploymentId"])
    )


def test_manual_stage_keeps_its_deployment(running: Running) -> None:
    v2 = running.v2
    api_id = v2.import_api(Body=http_openapi("/a"))["ApiId"]
    manual = v2.create_stage(ApiId=api_id, StageName="pinned", StageVariables={"k": "v"})
    assert manual["AutoDeploy"] is False
    assert running.echo("/pinned/a")["stageVariables"] == {"k": "v"}
    v2.reimport_api(ApiId=api_id, Body=http_openapi("/b"))
    assert running.echo("/pinned/a")["stage"] == "pinned"
    host = {"Host": f"{api_id}.execute-api.localhost"}
    assert running.get("/pinned/b", headers=host).status_code == 404
    deployment = v2.create_deployment(ApiId=api_id, StageName="pinned", Description="b")
    assert deployment["DeploymentStatus"] == "DEPLOYED"
    assert running.echo("/pinned/b")["route"] == "GET /b"
    other = v2.create_stage(ApiId=api_id, StageName="old", DeploymentId=manual["DeploymentId"])
    assert other["DeploymentId"] == manual["DeploymentId"]
    assert running.echo("/old/a")["route"] == "GET /a"
    stages = {s["StageName"]: s for s in v2.get_stages(ApiId=api_id)["Items"]}
    assert set(stages) == {"pinned", "old"}
    assert stages["pinned"]["StageVariables"] == {"k": "v"}


def test_errors(running: Running) -> None:
    v2 = running.v2
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.import_api(Body="openapi: [")
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.get_stages(ApiId="nosuchapi0")
    api_id = v2.import_api(Body=http_openapi("/a"))["ApiId"]
    v2.create_stage(ApiId=api_id, StageName="s", AutoDeploy=True)
    with pytest.raises(v2.exceptions.ConflictException):
        v2.create_stage(ApiId=api_id, StageName="s")
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.reimport_api(
            ApiId=api_id, Body='{"openapi": "3.0.1", "info": {"title": "t"}, "paths": 1}'
        )
    assert running.echo("/s/a")["route"] == "GET /a"
    # The template's REST API is not an HTTP API.
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.get_api(ApiId=running.shop_id())
