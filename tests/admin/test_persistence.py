"""The admin state survives a restart, replayed over the template; a changed template is a
new deployment that the template's stages move to."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import Running, http_openapi, openapi


def test_everything_survives_a_restart(running: Running) -> None:
    v1 = running.v1
    api_id = v1.import_rest_api(body=json.dumps(openapi("/one", title="kept")))["id"]
    first = v1.create_deployment(restApiId=api_id, stageName="prod")["id"]
    v1.put_rest_api(restApiId=api_id, mode="overwrite", body=json.dumps(openapi("/two")))
    v1.create_deployment(restApiId=api_id, stageName="prod")
    rollback = [{"op": "replace", "path": "/deploymentId", "value": first}]
    v1.update_stage(restApiId=api_id, stageName="prod", patchOperations=rollback)
    shop = running.shop_id()
    change = [{"op": "replace", "path": "/variables/color", "value": "red"}]
    v1.update_stage(restApiId=shop, stageName="prod", patchOperations=change)
    key = v1.create_api_key(name="k", enabled=True)
    plan = v1.create_usage_plan(name="p")
    v1.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    http_id = running.v2.import_api(Body=http_openapi("/h"))["ApiId"]
    running.v2.create_stage(ApiId=http_id, StageName="auto", AutoDeploy=True)

    running.restart()

    v1 = running.v1
    assert v1.get_rest_api(restApiId=api_id)["name"] == "kept"
    assert len(v1.get_deployments(restApiId=api_id)["items"]) == 2
    assert v1.get_stage(restApiId=api_id, stageName="prod")["deploymentId"] == first
    # The rolled-back stage still serves the first deployment, not the API's current routes.
    assert running.echo("/prod/one")["route"] == "GET /one"
    assert running.echo("/prod/hello")["stageVariables"] == {"color": "red"}
    assert [k["id"] for k in v1.get_api_keys()["items"]] == [key["id"]]
    assert running.node.app.api_keys[key["id"]].plan_ids == (plan["id"],)
    assert [p["id"] for p in v1.get_usage_plans()["items"]] == [plan["id"]]
    assert running.v2.get_stage(ApiId=http_id, StageName="auto")["AutoDeploy"] is True
    assert running.echo("/auto/h")["stage"] == "auto"
    # Restarting with the same template makes no new deployment.
    assert len(v1.get_deployments(restApiId=running.shop_id())["items"]) == 1


def test_a_changed_template_is_a_new_deployment(running: Running, root: Path) -> None:
    shop = running.shop_id()
    before = running.v1.get_deployments(restApiId=shop)["items"][0]["id"]
    pinned = [{"op": "replace", "path": "/variables/color", "value": "red"}]
    running.v1.update_stage(restApiId=shop, stageName="prod", patchOperations=pinned)
    template = root / "app" / "template.yaml"
    template.write_text(
        template.read_text().replace("Path: /hello", "Path: /hello2"), encoding="utf-8"
    )
    running.restart()
    deployments = running.v1.get_deployments(restApiId=shop)["items"]
    assert deployments[0]["id"] == before
    assert len(deployments) == 2
    after = deployments[1]["id"]
    stages = {s["stageName"]: s for s in running.v1.get_stages(restApiId=shop)["item"]}
    assert stages["prod"]["deploymentId"] == after
    assert stages["prod"]["variables"] == {"color": "red"}
    assert stages["Stage"]["deploymentId"] == after
    assert running.echo("/prod/hello2")["route"] == "GET /hello2"
    # The old template deployment is still there to roll back to.
    back = [{"op": "replace", "path": "/deploymentId", "value": before}]
    running.v1.update_stage(restApiId=shop, stageName="prod", patchOperations=back)
    assert running.echo("/prod/hello")["route"] == "GET /hello"
