"""Loading API keys, usage plans and throttling settings from templates into the app model."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fogbank import TemplateError
from fogbank.model import (
    Api,
    ApiKey,
    ApiKind,
    ApiManagement,
    App,
    Integration,
    IntegrationType,
    MethodSettings,
    Quota,
    QuotaPeriod,
    Route,
    Stage,
    StageSettings,
    Throttle,
    UsagePlan,
    UsagePlanStage,
    api_id_for,
    load_template,
)
from fogbank.model._usage_plans import build_usage_plans, generated_key_value

SAM = "Transform: AWS::Serverless-2016-10-31\n"
FUNCTION = """
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.11
      Handler: app.handler
      CodeUri: src
"""


def write(directory: Path, body: str) -> Path:
    (directory / "src").mkdir(exist_ok=True)
    path = directory / "template.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def api_of(app: App, logical_id: str) -> Api:
    return next(api for api in app.apis.values() if api.logical_id == logical_id)


def test_sam_auth_usage_plan_per_api(tmp_path: Path) -> None:
    app = load_template(
        write(
            tmp_path,
            SAM
            + """
Resources:
  Shop:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Auth:
        ApiKeyRequired: true
        UsagePlan:
          CreateUsagePlan: PER_API
          Description: the shop's plan
          Quota: {Limit: 500, Period: MONTH, Offset: 2}
          Throttle: {RateLimit: 5, BurstLimit: 10}
"""
            + FUNCTION
            + """
      Events:
        Items: {Type: Api, Properties: {RestApiId: !Ref Shop, Path: /items, Method: get}}
        Open:
          Type: Api
          Properties: {RestApiId: !Ref Shop, Path: /open, Method: get, Auth: {ApiKeyRequired: false}}
""",
        )
    )
    shop = api_of(app, "Shop")
    required = {route.route_key: route.api_key_required for route in shop.routes}
    assert required == {"GET /items": True, "GET /open": False}
    plan_id, key_id = api_id_for("ShopUsagePlan", "usageplan:"), api_id_for("ShopApiKey", "apikey:")
    assert app.usage_plans == {
        plan_id: UsagePlan(
            plan_id=plan_id,
            name="ShopUsagePlan",
            stages=(UsagePlanStage(shop.api_id, "prod"),),
            throttle=Throttle(5.0, 10),
            quota=Quota(500, QuotaPeriod.MONTH, 2),
            description="the shop's plan",
        )
    }
    value = generated_key_value("ShopApiKey")
    assert len(value) == 40
    assert app.api_keys == {key_id: ApiKey(key_id, "ShopApiKey", value, True, (plan_id,))}
    assert app.warnings == ()


def test_sam_shared_usage_plan_covers_every_api(tmp_path: Path) -> None:
    apis = "".join(
        f"""
  {name}:
    Type: AWS::Serverless::Api
    Properties:
      StageName: {stage}
      Auth:
        ApiKeyRequired: true
        UsagePlan: {{CreateUsagePlan: SHARED}}
"""
        for name, stage in (("First", "v1"), ("Second", "v2"))
    )
    events = """
      Events:
        A: {Type: Api, Properties: {RestApiId: !Ref First, Path: /a, Method: get}}
        B: {Type: Api, Properties: {RestApiId: !Ref Second, Path: /b, Method: get}}
"""
    app = load_template(write(tmp_path, SAM + "Resources:" + apis + FUNCTION + events))
    (plan,) = app.usage_plans.values()
    assert plan.name == "ServerlessUsagePlan"
    assert plan.stages == (
        UsagePlanStage(api_of(app, "First").api_id, "v1"),
        UsagePlanStage(api_of(app, "Second").api_id, "v2"),
    )
    (key,) = app.api_keys.values()
    assert key.plan_ids == (plan.plan_id,)


RAW = """
Resources:
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties: {Name: raw}
  Items:
    Type: AWS::ApiGateway::Resource
    Properties: {RestApiId: !Ref Api, ParentId: !GetAtt Api.RootResourceId, PathPart: items}
  ItemsGet:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref Items
      HttpMethod: GET
      ApiKeyRequired: true
      Integration: {Type: MOCK}
  Prod:
    Type: AWS::ApiGateway::Stage
    Properties:
      RestApiId: !Ref Api
      StageName: prod
      DeploymentId: !Ref Deployment
      MethodSettings:
        - {ResourcePath: /~1items, HttpMethod: GET, ThrottlingRateLimit: 2.5, ThrottlingBurstLimit: 3}
        - {ResourcePath: /*, HttpMethod: "*", ThrottlingRateLimit: 50}
  Deployment:
    Type: AWS::ApiGateway::Deployment
    DependsOn: ItemsGet
    Properties:
      RestApiId: !Ref Api
      StageName: beta
      StageDescription:
        ThrottlingRateLimit: 7
        ThrottlingBurstLimit: 8
        MethodSettings: [{ResourcePath: /items, HttpMethod: GET, ThrottlingBurstLimit: 1}]
  Plan:
    Type: AWS::ApiGateway::UsagePlan
    Properties:
      UsagePlanName: gold
      ApiStages:
        - ApiId: !Ref Api
          Stage: !Ref Prod
          Throttle: {"/items/GET": {RateLimit: 1, BurstLimit: 2}}
      Quota: {Limit: 100, Period: WEEK, Offset: 3}
  Key:
    Type: AWS::ApiGateway::ApiKey
    Properties: {Name: alice, Value: alice-key-0123456789abc, Enabled: true, Description: hers}
  Sleeping:
    Type: AWS::ApiGateway::ApiKey
    Properties: {Value: sleeping-key-0123456789}
  KeyInPlan:
    Type: AWS::ApiGateway::UsagePlanKey
    Properties: {KeyId: !Ref Key, KeyType: API_KEY, UsagePlanId: !Ref Plan}
"""


def test_raw_resources_plans_keys_and_rest_method_settings(tmp_path: Path) -> None:
    app = load_template(write(tmp_path, RAW))
    api = api_of(app, "Api")
    everything = Throttle(50.0, 5000)  # a limit left out is the account's
    assert api.management.stage_settings == {
        "prod": StageSettings(
            throttle=everything,
            method_settings={
                "/items/GET": MethodSettings(throttle=Throttle(2.5, 3)),
                "*/*": MethodSettings(throttle=everything),
            },
        ),
        "beta": StageSettings(
            throttle=Throttle(7.0, 8),
            method_settings={
                "/items/GET": MethodSettings(throttle=Throttle(10_000.0, 1)),
                "*/*": MethodSettings(throttle=Throttle(7.0, 8)),
            },
        ),
    }
    (plan,) = app.usage_plans.values()
    assert plan.name == "gold"
    assert plan.stages == (UsagePlanStage(api.api_id, "prod", {"/items/GET": Throttle(1.0, 2)}),)
    assert plan.quota == Quota(100, QuotaPeriod.WEEK, 3)
    assert plan.throttle is None
    keys = {key.name: key for key in app.api_keys.values()}
    assert keys["alice"].value == "alice-key-0123456789abc"
    assert keys["alice"].plan_ids == (plan.plan_id,)
    assert keys["alice"].description == "hers"
    assert keys["Sleeping"].enabled is False
    assert keys["Sleeping"].plan_ids == ()
    assert app.warnings == (
        "Sleeping: the API key is disabled (Enabled is false, CloudFormation's default);"
        " requests with it get 403 Forbidden",
    )


def test_http_api_default_and_route_settings(tmp_path: Path) -> None:
    body = (
        SAM
        + """
Resources:
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      StageName: live
      DefaultRouteSettings: {ThrottlingRateLimit: 2, ThrottlingBurstLimit: 4}
      RouteSettings:
        "GET /items": {ThrottlingRateLimit: 1, ThrottlingBurstLimit: 1}
        "POST /items": {DetailedMetricsEnabled: true}
"""
        + FUNCTION
        + """
      Events:
        Get: {Type: HttpApi, Properties: {ApiId: !Ref Http, Path: /items, Method: get}}
"""
    )
    api = api_of(load_template(write(tmp_path, body)), "Http")
    assert api.management.stage_settings == {
        "live": StageSettings(
            throttle=Throttle(2.0, 4), route_throttle={"GET /items": Throttle(1.0, 1)}
        )
    }


def test_settings_made_by_other_readers_are_kept() -> None:
    route = Route("GET", "/items", Integration(IntegrationType.MOCK))
    cached = MethodSettings(caching_enabled=True, cache_ttl_s=60)
    api = Api(
        api_id="abc",
        name="api",
        kind=ApiKind.REST,
        routes=(route,),
        stages={"prod": Stage("prod")},
        logical_id="Api",
        management=ApiManagement(
            stage_settings={
                "prod": StageSettings(deployment_id="d1", method_settings={"/items/GET": cached})
            }
        ),
    )
    stage = {
        "Type": "AWS::ApiGateway::Stage",
        "Properties": {
            "RestApiId": "Api",
            "StageName": "prod",
            "MethodSettings": [
                {"ResourcePath": "/items", "HttpMethod": "GET", "ThrottlingBurstLimit": 9}
            ],
        },
    }
    (found,) = build_usage_plans({"Prod": stage}, [api], file="t.yaml").apis
    settings = found.management.stage_settings["prod"]
    assert settings.deployment_id == "d1"
    assert settings.method_settings["/items/GET"] == MethodSettings(
        throttle=Throttle(10_000.0, 9), caching_enabled=True, cache_ttl_s=60
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "Value: alice-key-0123456789abc",
            "Value: short",
            "resource Key: property Value: an API key must have 20-128 characters, this one has 5",
        ),
        (
            "ThrottlingRateLimit: 2.5",
            "ThrottlingRateLimit: -1",
            "resource Prod: property MethodSettings[0].ThrottlingRateLimit: -1 is below the"
            " minimum, 0",
        ),
        (
            "{RateLimit: 1, BurstLimit: 2}",
            "{RateLimit: 1, BurstLimit: -2}",
            "resource Plan: property ApiStages[0].Throttle./items/GET.BurstLimit: -2 is below"
            " the minimum, 0",
        ),
        (
            "Period: WEEK",
            "Period: YEAR",
            "resource Plan: property Quota.Period: unknown period YEAR (use DAY, WEEK or MONTH)",
        ),
        (
            "Offset: 3",
            "Offset: 7",
            "resource Plan: property Quota.Offset: 7 is above the maximum, 6",
        ),
        (
            "Period: WEEK, Offset: 3",
            "Period: DAY, Offset: 1",
            "resource Plan: property Quota.Offset: 1 is above the maximum, 0",
        ),
        (
            "HttpMethod: GET, ThrottlingRateLimit: 2.5",
            "HttpMethod: FETCH, ThrottlingRateLimit: 2.5",
            "resource Prod: property MethodSettings[0]: unknown HTTP method 'FETCH'",
        ),
        (
            "Stage: !Ref Prod",
            "Stage: gamma",
            "resource Plan: property ApiStages[0].Stage: gamma is not a stage of Api",
        ),
        (
            "KeyType: API_KEY",
            "KeyType: SECRET",
            "resource KeyInPlan: property KeyType: unknown key type SECRET (use API_KEY)",
        ),
        (
            "Value: sleeping-key-0123456789",
            "Value: alice-key-0123456789abc",
            "resource Sleeping: property Value: the same value as API key Key;"
            " key values must be unique",
        ),
    ],
)
def test_bad_values_are_one_line_naming_resource_and_property(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert RAW.count(old) == 1
    path = write(tmp_path, RAW.replace(old, new))
    with pytest.raises(TemplateError) as caught:
        load_template(path)
    assert str(caught.value) == f"{path}: {message}"


def test_a_key_may_be_in_one_plan_per_stage(tmp_path: Path) -> None:
    second = """
  Other:
    Type: AWS::ApiGateway::UsagePlan
    Properties:
      ApiStages: [{ApiId: !Ref Api, Stage: prod}]
  KeyInOther:
    Type: AWS::ApiGateway::UsagePlanKey
    Properties: {KeyId: !Ref Key, KeyType: API_KEY, UsagePlanId: !Ref Other}
"""
    path = write(tmp_path, RAW + second)
    with pytest.raises(TemplateError, match="resource KeyInOther: API key Key is already in usage"):
        load_template(path)


def test_a_plan_for_an_api_outside_the_template_is_a_warning(tmp_path: Path) -> None:
    outside = RAW.replace("- ApiId: !Ref Api\n", "- ApiId: a1b2c3d4e5\n")
    app = load_template(write(tmp_path, outside))
    (plan,) = app.usage_plans.values()
    assert plan.stages == ()
    assert "Plan: API a1b2c3d4e5 is not in this template; its stage is ignored" in app.warnings
