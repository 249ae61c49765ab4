"""API keys, usage plans, quotas and throttling over real HTTP, on a clock the test moves.

One node serves one template for the module; before each test the clock jumps a day ahead, so
every bucket is full again and every quota window is new.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from fogbank.config import NodeConfig
from fogbank.gateway import Exchange, HttpResponse
from fogbank.gateway._usage import UsagePlans
from fogbank.model import App, Throttle, load_template

from ..functions.async_support import FakeClock
from ..store.test_limits import REDIS_URL, T0
from .conftest import NodeThread, scratch_dir

GOLD = "gold-key-0123456789abcdef"
QUOTA = "quota-key-0123456789abcdef"
DISABLED = "disabled-key-0123456789abcdef"
LONELY = "lonely-key-0123456789abcdef"

TEMPLATE = f"""
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.11
    CodeUri: src
    Handler: app.ok
Resources:
  Keyed:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Auth:
        ApiKeyRequired: true
      MethodSettings:
        - ResourcePath: /~1open
          HttpMethod: GET
          ThrottlingRateLimit: 1
          ThrottlingBurstLimit: 2
        - ResourcePath: /*
          HttpMethod: "*"
          ThrottlingRateLimit: 100
          ThrottlingBurstLimit: 4
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      DefaultRouteSettings:
        ThrottlingRateLimit: 1
        ThrottlingBurstLimit: 2
      RouteSettings:
        "GET /tight":
          ThrottlingRateLimit: 1
          ThrottlingBurstLimit: 1
  Ok:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Items: {{Type: Api, Properties: {{RestApiId: !Ref Keyed, Path: /items, Method: get}}}}
        Slow: {{Type: Api, Properties: {{RestApiId: !Ref Keyed, Path: /slow, Method: get}}}}
        Open:
          Type: Api
          Properties: {{RestApiId: !Ref Keyed, Path: /open, Method: get, Auth: {{ApiKeyRequired: false}}}}
        Other:
          Type: Api
          Properties: {{RestApiId: !Ref Keyed, Path: /other, Method: get, Auth: {{ApiKeyRequired: false}}}}
        Tight: {{Type: HttpApi, Properties: {{ApiId: !Ref Http, Path: /tight, Method: get}}}}
        Loose: {{Type: HttpApi, Properties: {{ApiId: !Ref Http, Path: /loose, Method: get}}}}
  ByAuthorizer:
    Type: AWS::ApiGateway::RestApi
    Properties:
      Name: by-authorizer
      ApiKeySourceType: AUTHORIZER
  Whoami:
    Type: AWS::ApiGateway::Resource
    Properties:
      RestApiId: !Ref ByAuthorizer
      ParentId: !GetAtt ByAuthorizer.RootResourceId
      PathPart: whoami
  WhoamiGet:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref ByAuthorizer
      ResourceId: !Ref Whoami
      HttpMethod: GET
      AuthorizationType: NONE
      ApiKeyRequired: true
      Integration:
        Type: AWS_PROXY
        IntegrationHttpMethod: POST
        Uri: !Sub arn:aws:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/${{Ok.Arn}}/invocations
  ByAuthorizerDeployment:
    Type: AWS::ApiGateway::Deployment
    DependsOn: WhoamiGet
    Properties:
      RestApiId: !Ref ByAuthorizer
      StageName: v1
  Plan:
    Type: AWS::ApiGateway::UsagePlan
    Properties:
      ApiStages:
        - ApiId: !Ref Keyed
          Stage: prod
          Throttle:
            "/slow/GET": {{RateLimit: 1, BurstLimit: 1}}
        - ApiId: !Ref ByAuthorizer
          Stage: v1
      Throttle: {{RateLimit: 1, BurstLimit: 3}}
  QuotaPlan:
    Type: AWS::ApiGateway::UsagePlan
    Properties:
      ApiStages: [{{ApiId: !Ref Keyed, Stage: prod}}]
      Quota: {{Limit: 3, Period: DAY}}
  Gold: {{Type: AWS::ApiGateway::ApiKey, Properties: {{Value: {GOLD}, Enabled: true}}}}
  Counted: {{Type: AWS::ApiGateway::ApiKey, Properties: {{Value: {QUOTA}, Enabled: true}}}}
  Disabled: {{Type: AWS::ApiGateway::ApiKey, Properties: {{Value: {DISABLED}, Enabled: false}}}}
  Lonely: {{Type: AWS::ApiGateway::ApiKey, Properties: {{Value: {LONELY}, Enabled: true}}}}
  GoldInPlan:
    Type: AWS::ApiGateway::UsagePlanKey
    Properties: {{KeyId: !Ref Gold, KeyType: API_KEY, UsagePlanId: !Ref Plan}}
  DisabledInPlan:
    Type: AWS::ApiGateway::UsagePlanKey
    Properties: {{KeyId: !Ref Disabled, KeyType: API_KEY, UsagePlanId: !Ref Plan}}
  CountedInQuotaPlan:
    Type: AWS::ApiGateway::UsagePlanKey
    Properties: {{KeyId: !Ref Counted, KeyType: API_KEY, UsagePlanId: !Ref QuotaPlan}}
"""

HANDLER = """
def ok(event, context):
    return {"statusCode": 200, "body": "ok"}
"""


def write_template(directory: Path) -> Path:
    (directory / "src").mkdir()
    (directory / "src" / "app.py").write_text(HANDLER, encoding="utf-8")
    path = directory / "template.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    return path


class AuthorizerStandIn:
    """Test-only step: plays a Lambda authorizer that returns `usageIdentifierKey`."""

    async def __call__(self, exchange: Exchange) -> HttpResponse | None:
        key = exchange.request.header("x-test-usage-key")
        exchange.authorizer = {"principalId": "me", "usageIdentifierKey": key} if key else None
        return None


class Served:
    def __init__(self, node: NodeThread, clock: FakeClock) -> None:
        self.node, self.clock = node, clock
        assert node.node is not None
        self.url = node.node.url
        self.app: App = node.app

    def get(self, path: str, key: str | None = None, **headers: str) -> httpx.Response:
        if key is not None:
            headers["x-api-key"] = key
        return httpx.get(self.url + path, headers=headers)

    def statuses(self, path: str, times: int, key: str | None = None, **headers: str) -> list[int]:
        return [self.get(path, key, **headers).status_code for _ in range(times)]

    def api_host(self, logical_id: str) -> str:
        api = next(a for a in self.app.apis.values() if a.logical_id == logical_id)
        return f"{api.api_id}.execute-api.localhost"


def start(app: App, state: Path, clock: FakeClock, **config: Any) -> NodeThread:
    node = NodeThread(
        NodeConfig(port=0, control_port=0, state_dir=state, **config), app, clock=clock
    )
    node.start()
    assert node.node is not None
    steps = node.node.gateway.pipeline.steps
    at = next(i for i, step in enumerate(steps) if isinstance(step, UsagePlans))
    steps.insert(at, AuthorizerStandIn())
    return node


@pytest.fixture(scope="module")
def module_served() -> Iterator[Served]:
    with scratch_dir("fogbank-usage-") as root:
        clock = FakeClock(T0)
        node = start(load_template(write_template(root)), root / "state", clock)
        try:
            yield Served(node, clock)
        finally:
            node.stop()


@pytest.fixture
def served(module_served: Served) -> Served:
    module_served.clock.advance(86_400.0)  # full buckets, fresh quota windows
    return module_served


def assert_gateway_error(response: httpx.Response, status: int, message: str, kind: str) -> None:
    assert response.status_code == status
    assert response.json() == {"message": message}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-amzn-errortype"] == kind
    assert len(response.headers["x-amzn-requestid"]) == 36


def test_a_missing_unknown_disabled_or_planless_key_is_forbidden(served: Served) -> None:
    for key in (None, "no-such-key-0123456789", DISABLED, LONELY):
        assert_gateway_error(served.get("/prod/items", key), 403, "Forbidden", "ForbiddenException")
    # The plan covers stage prod only, not the `Stage` stage SAM's deployment also makes.
    assert_gateway_error(served.get("/Stage/items", GOLD), 403, "Forbidden", "ForbiddenException")
    assert served.get("/prod/items", GOLD).text == "ok"


def test_the_plan_throttles_each_key_then_refills(served: Served) -> None:
    assert served.statuses("/prod/items", 3, GOLD) == [200, 200, 200]
    throttled = served.get("/prod/items", GOLD)
    assert_gateway_error(throttled, 429, "Too Many Requests", "TooManyRequestsException")
    served.clock.advance(1.0)  # one token at 1 request a second
    assert served.statuses("/prod/items", 2, GOLD) == [200, 429]
    # Another key of another plan has its own allowance.
    assert served.get("/prod/items", QUOTA).status_code == 200


def test_a_per_method_plan_throttle_replaces_the_plans(served: Served) -> None:
    assert served.statuses("/prod/slow", 2, GOLD) == [200, 429]
    assert served.statuses("/prod/items", 4, GOLD) == [200, 200, 200, 429]


def test_the_quota_runs_out_for_the_day_and_usage_is_recorded(served: Served) -> None:
    assert served.statuses("/prod/items", 3, QUOTA) == [200, 200, 200]
    spent = served.get("/prod/items", QUOTA)
    assert_gateway_error(spent, 429, "Limit Exceeded", "LimitExceededException")
    served.clock.advance(86_400.0)
    assert served.get("/prod/items", QUOTA).status_code == 200

    plan = next(p for p in served.app.usage_plans.values() if p.name == "QuotaPlan")
    key = next(k for k in served.app.api_keys.values() if k.value == QUOTA)
    today = datetime.datetime.fromtimestamp(served.clock.now, datetime.UTC).date()
    yesterday = today - datetime.timedelta(days=1)
    node = served.node.node
    assert node is not None
    usage = served.node.call(lambda: node.stores.quotas.usage(plan.plan_id, yesterday, today))
    assert usage == {key.key_id: {yesterday: 3, today: 1}}


def test_stage_method_settings_throttle_each_method(served: Served) -> None:
    assert served.statuses("/prod/open", 3) == [200, 200, 429]  # /open/GET: burst 2
    assert served.statuses("/prod/other", 5) == [200, 200, 200, 200, 429]  # */*: burst 4
    throttled = served.get("/prod/open")
    assert_gateway_error(throttled, 429, "Too Many Requests", "TooManyRequestsException")


def test_http_api_route_and_default_route_throttles(served: Served) -> None:
    assert served.statuses("/tight", 2) == [200, 429]
    assert served.statuses("/loose", 3) == [200, 200, 429]
    throttled = served.get("/loose")
    assert throttled.status_code == 429
    assert throttled.json() == {"message": "Too Many Requests"}
    assert "x-amzn-errortype" not in throttled.headers
    assert len(throttled.headers["apigw-requestid"]) == 36


def test_the_authorizer_key_source_reads_usage_identifier_key(served: Served) -> None:
    host = {"host": served.api_host("ByAuthorizer")}
    assert served.get("/v1/whoami", GOLD, **host).status_code == 403  # the header is not read
    assert served.get("/v1/whoami", **host, **{"x-test-usage-key": LONELY}).status_code == 403
    assert served.get("/v1/whoami", **host, **{"x-test-usage-key": GOLD}).status_code == 200


def test_the_account_limit_applies_to_every_api_request(served: Served) -> None:
    with scratch_dir("fogbank-usage-account-") as root:
        clock = FakeClock(T0)
        node = start(served.app, root / "state", clock, account_throttle=Throttle(1.0, 2))
        try:
            url = node.node.url if node.node is not None else ""
            codes = [httpx.get(f"{url}/prod/other").status_code for _ in range(2)]
            codes.append(httpx.get(f"{url}/loose").status_code)
            assert codes == [200, 200, 429]
        finally:
            node.stop()


def test_two_nodes_on_one_redis_share_the_buckets(served: Served) -> None:
    prefix = f"fogbank-test:{uuid.uuid4().hex}:"
    clock = FakeClock(T0)
    with scratch_dir("fogbank-usage-a-") as a_root, scratch_dir("fogbank-usage-b-") as b_root:
        nodes = [
            start(served.app, root / "state", clock, redis_url=REDIS_URL, redis_prefix=prefix)
            for root in (a_root, b_root)
        ]
        try:
            urls = [node.node.url for node in nodes if node.node is not None]
            # /open/GET allows a burst of 2 in all: one on each node, then neither.
            codes = [httpx.get(f"{url}/prod/open").status_code for url in (*urls, *urls)]
            assert codes == [200, 200, 429, 429]
            quota = [httpx.get(f"{u}/prod/items", headers={"x-api-key": QUOTA}) for u in urls * 2]
            assert [r.status_code for r in quota] == [200, 200, 200, 429]
            assert quota[-1].json() == {"message": "Limit Exceeded"}
        finally:
            for node in nodes:
                node.stop()
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
            client.close()
