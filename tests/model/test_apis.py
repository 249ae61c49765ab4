"""Loading REST APIs, HTTP APIs and Function URLs from templates into the app model."""

from __future__ import annotations

import re
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fogbank import TemplateError
from fogbank.model import (
    ANY,
    DEFAULT_ROUTE,
    DEFAULT_STAGE,
    Api,
    ApiKind,
    ApiManagement,
    App,
    Authorizer,
    AuthorizerType,
    Cors,
    FunctionUrl,
    Integration,
    IntegrationResponse,
    IntegrationType,
    Route,
    RouteValidation,
    Stage,
    api_id_for,
    load_template,
)
from fogbank.model._function_urls import url_id_for

TEMPLATES = Path(__file__).parent.parent / "templates"
SAM = "Transform: AWS::Serverless-2016-10-31\n"
CORS_RESPONSE_TEMPLATE = {"application/json": "{}\n"}
CORS_REQUEST_TEMPLATE = {"application/json": '{\n  "statusCode" : 200\n}\n'}


def load(name: str) -> App:
    return load_template(TEMPLATES / name / "template.yaml")


def only_api(app: App) -> Api:
    (api,) = app.apis.values()
    return api


def lam(function: str, **fields: Any) -> Integration:
    """A Lambda proxy integration."""
    return Integration(IntegrationType.AWS_PROXY, function_name=function, **fields)


def http_lam(function: str, payload: str = "2.0", **fields: Any) -> Integration:
    """A Lambda proxy integration of an HTTP API (30 s limit)."""
    return lam(function, **{"payload_format_version": payload, "timeout_ms": 30_000, **fields})


def assert_api(api: Api, expected: Api) -> None:
    """The whole API compared exactly; routes by route key, as SAM orders them its own way."""
    assert replace(api, routes=()) == replace(expected, routes=())
    assert {r.route_key: r for r in api.routes} == {r.route_key: r for r in expected.routes}
    assert len(api.routes) == len(expected.routes)


def write(directory: Path, body: str, *, name: str = "template.yaml") -> Path:
    (directory / "src").mkdir(exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(TemplateError) as caught:
        load_template(path)
    return str(caught.value)


def test_sam_api_events_make_the_implicit_rest_api() -> None:
    app = load("sam_api_events")
    assert_api(
        only_api(app),
        Api(
            api_id=api_id_for("ServerlessRestApi"),
            name="ServerlessRestApi",
            kind=ApiKind.REST,
            routes=(
                Route("GET", "/orders", lam("ListOrdersFunction")),
                Route("GET", "/orders/{orderId}", lam("orders-get")),
                Route("DELETE", "/orders/{orderId}", lam("orders-get")),
                Route(ANY, "/{proxy+}", lam("FallbackFunction")),
            ),
            # Prod from SAM's stage, Stage from the StageName of SAM's deployment: AWS has both.
            stages={"Prod": Stage("Prod"), "Stage": Stage("Stage")},
            logical_id="ServerlessRestApi",
        ),
    )
    assert app.function_urls == {}
    assert app.warnings == ()


def test_sam_explicit_rest_api_with_openapi_2_body() -> None:
    app = load("sam_rest_api")
    cors = {
        "method.response.header.Access-Control-Allow-Origin": "'https://photos.example.com'",
        "method.response.header.Access-Control-Allow-Methods": "'GET,PUT'",
        "method.response.header.Access-Control-Allow-Headers": "'Content-Type,Authorization'",
        "method.response.header.Access-Control-Max-Age": "'600'",
    }
    preflight = Integration(
        IntegrationType.MOCK,
        request_templates=CORS_REQUEST_TEMPLATE,
        responses=(IntegrationResponse("200", "", cors, CORS_RESPONSE_TEMPLATE),),
    )
    assert_api(
        only_api(app),
        Api(
            api_id=api_id_for("ThumbnailsApi"),
            name="thumbnails",
            kind=ApiKind.REST,
            routes=(
                Route(
                    "GET",
                    "/images/{key}",
                    lam("ThumbnailFunction", timeout_ms=10_000),
                    operation_name="getImage",
                ),
                # A stage variable in the ARN: kept, with the name, to be resolved per request.
                Route(
                    "PUT",
                    "/images/{key}",
                    lam("ThumbnailFunction:${stageVariables.thumbnailAlias}"),
                ),
                Route("OPTIONS", "/images/{key}", preflight),
                Route(
                    "GET",
                    "/health",
                    Integration(
                        IntegrationType.MOCK,
                        request_templates={"application/json": '{"statusCode": 200}'},
                        responses=(
                            IntegrationResponse(
                                "200", "", {}, {"application/json": '{"status": "ok"}'}
                            ),
                        ),
                    ),
                ),
                Route("OPTIONS", "/health", preflight),
            ),
            stages={
                "v1": Stage("v1", {"thumbnailAlias": "live", "maxWidth": "640"}),
                "Stage": Stage("Stage"),
            },
            logical_id="ThumbnailsApi",
            binary_media_types=("image/png", "image/jpeg"),
            description="Resize and fetch images",
        ),
    )
    assert app.warnings == ()


def test_definition_uri_reads_a_local_openapi_3_file() -> None:
    app = load("sam_rest_definition_uri")
    assert_api(
        only_api(app),
        Api(
            api_id=api_id_for("InventoryApi"),
            name="InventoryApi",
            kind=ApiKind.REST,
            routes=(
                Route(
                    "GET",
                    "/items",
                    lam("inventory"),
                    api_key_required=True,
                    operation_name="listItems",
                ),
                Route(ANY, "/items/{sku}", lam("inventory")),
            ),
            # OpenApiVersion set: SAM's deployment names no stage, so there is no `Stage` stage.
            stages={"prod": Stage("prod")},
            logical_id="InventoryApi",
            binary_media_types=("application/pdf",),
            api_key_source="AUTHORIZER",
        ),
    )
    assert app.warnings == ()


def test_aws_include_of_an_openapi_snippet() -> None:
    api = only_api(load("include_openapi"))
    assert api.routes == (
        Route("GET", "/books", lam("BooksFunction")),
        Route("GET", "/books/{isbn}", lam("BooksFunction", response_transfer_mode="STREAM")),
    )
    assert api.stages == {"Prod": Stage("Prod"), "Stage": Stage("Stage")}


def test_sam_implicit_http_api() -> None:
    app = load("sam_http_implicit")
    assert_api(
        only_api(app),
        Api(
            api_id=api_id_for("ServerlessHttpApi"),
            name="ServerlessHttpApi",
            kind=ApiKind.HTTP,
            routes=(
                Route("GET", "/todos/{id}", http_lam("TodoFunction")),
                Route("POST", "/v1/todos", http_lam("TodoFunction", "1.0", timeout_ms=5000)),
                Route(ANY, DEFAULT_ROUTE, http_lam("CatchAllFunction")),
            ),
            stages={DEFAULT_STAGE: Stage(DEFAULT_STAGE)},
            logical_id="ServerlessHttpApi",
        ),
    )
    assert app.warnings == ()


def test_sam_explicit_http_api_with_stage_cors_and_jwt() -> None:
    app = load("sam_http_explicit")
    jwt: dict[str, Any] = {"authorization_type": "JWT", "authorizer": "Auth0"}
    assert_api(
        only_api(app),
        Api(
            api_id=api_id_for("ProfilesApi"),
            name="ProfilesApi",
            kind=ApiKind.HTTP,
            routes=(
                Route("GET", "/profiles/{id}", http_lam("ProfileFunction"), **jwt),
                Route(
                    "PATCH",
                    "/profiles/{id}",
                    http_lam("ProfileFunction"),
                    authorization_scopes=("profiles:write",),
                    **jwt,
                ),
            ),
            stages={"beta": Stage("beta", {"avatarBucket": "profiles-avatars-beta"})},
            logical_id="ProfilesApi",
            management=ApiManagement(
                authorizers={
                    "Auth0": Authorizer(
                        name="Auth0",
                        type=AuthorizerType.JWT,
                        identity_sources=("$request.header.Authorization",),
                        issuer="https://login.example.com/",
                        audience=("profiles",),
                    )
                }
            ),
            cors=Cors(
                allow_origins=("https://app.example.com",),
                allow_methods=("GET", "PATCH"),
                allow_headers=("authorization", "content-type"),
                expose_headers=("x-request-id",),
                max_age=3600,
                allow_credentials=True,
            ),
        ),
    )
    assert app.warnings == ()


def test_raw_rest_api_from_resources_and_methods() -> None:
    app = load("raw_rest")
    assert only_api(app) == Api(
        api_id=api_id_for("NotesApi"),
        name="notes-api",
        kind=ApiKind.REST,
        routes=(
            Route("GET", "/notes", lam("notes"), api_key_required=True, operation_name="ListNotes"),
            Route(
                "GET",
                "/notes/{noteId}",
                Integration(
                    IntegrationType.HTTP_PROXY,
                    uri="https://archive.example.com/notes/{id}",
                    http_method="GET",
                    timeout_ms=8000,
                    request_parameters={
                        "integration.request.header.X-Tenant": "method.request.header.X-Tenant-Id",
                        "integration.request.path.id": "method.request.path.noteId",
                    },
                ),
            ),
            Route(
                "GET",
                "/",
                Integration(
                    IntegrationType.MOCK,
                    request_templates={"application/json": '{"statusCode": 200}'},
                    responses=(
                        IntegrationResponse(
                            "200",
                            "",
                            {"method.response.header.Cache-Control": "'no-store'"},
                            {"application/json": '{"pong": true}'},
                        ),
                        IntegrationResponse("503", r"5\d{2}"),
                    ),
                ),
            ),
        ),
        stages={
            "prod": Stage("prod", {"tier": "gold"}),
            "dev": Stage("dev", {"tier": "bronze"}),  # the Deployment's own StageName
        },
        logical_id="NotesApi",
        binary_media_types=("application/pdf",),
        description="Notes, old style",
        # The Method's `RequestParameters` mark the tenant header required (for validators).
        management=ApiManagement(
            route_validation={
                "GET /notes/{noteId}": RouteValidation(
                    required_parameters=("method.request.header.X-Tenant-Id",)
                )
            }
        ),
    )
    assert app.warnings == ()


def test_raw_http_api_from_routes_and_integrations() -> None:
    app = load("raw_http")
    tasks = http_lam("TasksFunction", timeout_ms=8000)
    assert only_api(app) == Api(
        api_id=api_id_for("TasksApi"),
        name="tasks",
        kind=ApiKind.HTTP,
        routes=(
            Route("GET", "/tasks", tasks, operation_name="ListTasks"),
            Route("POST", "/tasks", tasks, authorization_type="AWS_IAM"),
            Route(
                ANY,
                "/status/{proxy+}",
                Integration(
                    IntegrationType.HTTP_PROXY,
                    uri="https://status.example.com/{proxy}",
                    http_method="GET",
                    timeout_ms=30_000,
                    request_parameters={"append:header.x-forwarded-by": "fogbank-docs"},
                ),
            ),
        ),
        stages={"live": Stage("live", {"region": "eu-west-1"})},
        logical_id="TasksApi",
        description="Task tracking",
    )
    assert app.warnings == ()


def test_quick_create_target() -> None:
    app = load("quick_create")
    assert only_api(app) == Api(
        api_id=api_id_for("EchoApi"),
        name="echo",
        kind=ApiKind.HTTP,
        routes=(Route(ANY, DEFAULT_ROUTE, http_lam("echo")),),
        stages={DEFAULT_STAGE: Stage(DEFAULT_STAGE)},
        logical_id="EchoApi",
        cors=Cors(allow_origins=("*",), allow_methods=("GET", "POST"), allow_headers=()),
    )
    assert app.warnings == ()


def test_function_urls_buffered_and_streaming() -> None:
    app = load("function_urls")
    assert app.apis == {}
    assert app.function_urls == {
        "report-summary": FunctionUrl(
            function_name="report-summary",
            url_id=url_id_for("report-summary"),
            auth_type="NONE",
            invoke_mode="BUFFERED",
            cors=Cors(
                allow_origins=("https://reports.example.com",),
                allow_methods=("GET",),
                allow_headers=("content-type",),
                max_age=300,
            ),
        ),
        "ExportFunction": FunctionUrl(
            function_name="ExportFunction",
            url_id=url_id_for("ExportFunction"),
            qualifier="live",  # SAM points the URL at the AutoPublishAlias
            auth_type="AWS_IAM",
            invoke_mode="RESPONSE_STREAM",
        ),
    }
    assert app.functions["ExportFunction"].streaming
    assert not app.functions["report-summary"].streaming
    assert app.warnings == ()


def test_url_ids_look_like_aws_and_are_stable() -> None:
    url_id = url_id_for("report-summary")
    assert re.fullmatch(r"[a-z0-9]{32}", url_id)
    assert url_id == url_id_for("report-summary") != url_id_for("report-export")


def test_http_proxy_with_stage_variables() -> None:
    api = only_api(load("stage_variables"))
    assert api.routes == (
        Route(
            ANY,
            "/legacy/{path+}",
            Integration(
                IntegrationType.HTTP_PROXY,
                uri="https://${stageVariables.backend}/{path}",
                http_method=ANY,
                request_parameters={"integration.request.path.path": "method.request.path.path"},
            ),
        ),
        Route("GET", "/accounts", lam("${stageVariables.accountsFunction}")),
    )
    assert api.stages["staging"] == Stage(
        "staging", {"backend": "legacy-staging.example.com", "accountsFunction": "accounts-staging"}
    )


def test_what_is_not_served_is_one_warning_each() -> None:
    app = load("unserved")
    api = only_api(app)
    assert (api.name, api.routes, list(api.stages)) == ("chat-rest", (), ["prod"])
    assert app.warnings == (
        "ChatRestApi: not served by fogbank (non-proxy Lambda integration): GET /history",
        "ChatRestApi: not served by fogbank (VPC link integration): ANY /",
        "UsersLink (AWS::ApiGateway::VpcLink) is not served by fogbank",
        "ChatDomain (AWS::ApiGateway::DomainName) is not served by fogbank",
        "ChatMapping (AWS::ApiGateway::BasePathMapping) is not served by fogbank",
        "ChatSocket is a WebSocket API, which fogbank does not serve",
    )


FUNCTION = """\
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Code: src/
"""
INVOKE = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{}/invocations"
FN_ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}"


def cfn(directory: Path, resources: str) -> Path:
    """A plain CloudFormation template with the function `Fn` plus `resources`."""
    return write(
        directory, "Resources:\n" + FUNCTION + textwrap.indent(textwrap.dedent(resources), "  ")
    )


def rest_method(integration: str, *, resource: str = "!GetAtt Api.RootResourceId") -> str:
    """A REST API `Api` with one GET method `Get` on `resource`, deployed to `prod`."""
    return f"""\
    Api:
      Type: AWS::ApiGateway::RestApi
      Properties: {{Name: api}}
    Get:
      Type: AWS::ApiGateway::Method
      Properties:
        RestApiId: !Ref Api
        ResourceId: {resource}
        HttpMethod: GET
        AuthorizationType: NONE
        Integration: {integration}
    Deployment:
      Type: AWS::ApiGateway::Deployment
      Properties: {{RestApiId: !Ref Api, StageName: prod}}
    """


def http_route(integration: str, route_key: str = "GET /items") -> str:
    """An HTTP API `Api` with the integration `Integ` behind the route `Route` on `$default`."""
    return f"""\
    Api:
      Type: AWS::ApiGatewayV2::Api
      Properties: {{Name: api, ProtocolType: HTTP}}
    Integ:
      Type: AWS::ApiGatewayV2::Integration
      Properties: {integration}
    Route:
      Type: AWS::ApiGatewayV2::Route
      Properties:
        ApiId: !Ref Api
        RouteKey: {route_key}
        Target: !Sub integrations/${{Integ}}
    Stage:
      Type: AWS::ApiGatewayV2::Stage
      Properties: {{ApiId: !Ref Api, StageName: $default, AutoDeploy: true}}
    """


def lambda_integration(function: str = "Fn", **extra: str) -> str:
    fields = {
        "ApiId": "!Ref Api",
        "IntegrationType": "AWS_PROXY",
        "IntegrationUri": FN_ARN.format(function),
        "PayloadFormatVersion": "'2.0'",
        **extra,
    }
    return "{" + ", ".join(f"{k}: {v}" for k, v in fields.items()) + "}"


@pytest.mark.parametrize(
    ("resources", "where", "message"),
    [
        pytest.param(
            rest_method(f"{{Type: AWS_PROXY, Uri: '{INVOKE.format(FN_ARN.format('Missing'))}'}}"),
            "resource Get: property Integration.Uri",
            "function Missing is not defined in this template",
            id="method-unknown-function",
        ),
        pytest.param(
            rest_method("{Type: AWS_PROXY, Uri: 'arn:aws:apigateway:us-east-1:s3:path/bucket'}"),
            "resource Get: property Integration.Uri",
            "arn:aws:apigateway:us-east-1:s3:path/bucket is not a Lambda function ARN or"
            " invocation URI",
            id="method-not-lambda",
        ),
        pytest.param(
            rest_method("{Type: HTTP_PROXY, Uri: 'ftp://files.example.com/'}"),
            "resource Get: property Integration.Uri",
            "an HTTP_PROXY integration needs an http(s) URL, got ftp://files.example.com/",
            id="http-proxy-not-http",
        ),
        pytest.param(
            rest_method("{Type: LAMBDA}"),
            "resource Get: property Integration.Type",
            "unknown integration type LAMBDA",
            id="unknown-type",
        ),
        pytest.param(
            rest_method("{Type: MOCK}", resource="a1b2c3"),
            "resource Get: property ResourceId",
            "a1b2c3 is not a resource of Api",
            id="method-unknown-resource",
        ),
        pytest.param(
            http_route(lambda_integration("Missing")),
            "resource Integ: property IntegrationUri",
            "function Missing is not defined in this template",
            id="route-unknown-function",
        ),
        pytest.param(
            http_route(lambda_integration(), route_key="GET/items"),
            "resource Route: property RouteKey",
            "route key 'GET/items' must be $default or 'METHOD /path'",
            id="malformed-route-key",
        ),
        pytest.param(
            http_route(lambda_integration(), route_key="'GET /{proxy+}/more'"),
            "resource Route: property RouteKey",
            "path /{proxy+}/more: the greedy parameter {proxy+} must be the last segment",
            id="greedy-not-last",
        ),
        pytest.param(
            http_route(lambda_integration(IntegrationType="MOCK")),
            "resource Integ: property IntegrationType",
            "HTTP APIs have only AWS_PROXY and HTTP_PROXY integrations, not MOCK",
            id="http-api-mock",
        ),
        pytest.param(
            http_route(lambda_integration(TimeoutInMillis="31000")),
            "resource Integ: property TimeoutInMillis",
            "31000 is above the maximum, 30000",
            id="http-api-timeout",
        ),
        pytest.param(
            http_route(lambda_integration(PayloadFormatVersion="'3.0'")),
            "resource Integ: property PayloadFormatVersion",
            "expected 1.0 or 2.0, got 3.0",
            id="payload-version",
        ),
        pytest.param(
            """\
            Api:
              Type: AWS::ApiGatewayV2::Api
              Properties: {Name: api, ProtocolType: HTTP}
            Route:
              Type: AWS::ApiGatewayV2::Route
              Properties: {ApiId: !Ref Api, RouteKey: $default, Target: integrations/Elsewhere}
            """,
            "resource Route: property Target",
            "integrations/Elsewhere names no integration of Api (expected integrations/<id>)",
            id="route-target",
        ),
        pytest.param(
            """\
            Api:
              Type: AWS::ApiGateway::RestApi
              Properties: {Body: [swagger, '2.0']}
            """,
            "resource Api: property Body",
            "an OpenAPI definition must be a mapping, got list",
            id="body-not-mapping",
        ),
        pytest.param(
            """\
            Api:
              Type: AWS::ApiGateway::RestApi
              Properties: {Name: api}
            Items:
              Type: AWS::ApiGateway::Resource
              Properties: {RestApiId: !Ref Api, ParentId: !GetAtt Api.RootResourceId, PathPart: '{proxy+}'}
            More:
              Type: AWS::ApiGateway::Resource
              Properties: {RestApiId: !Ref Api, ParentId: !Ref Items, PathPart: more}
            """,
            "resource More: property PathPart",
            "path /{proxy+}/more: the greedy parameter {proxy+} must be the last segment",
            id="resource-under-greedy",
        ),
        pytest.param(
            """\
            Api:
              Type: AWS::ApiGateway::RestApi
              Properties: {Name: api}
            Items:
              Type: AWS::ApiGateway::Resource
              Properties: {RestApiId: !Ref Api, ParentId: !GetAtt Api.RootResourceId, PathPart: a/b}
            """,
            "resource Items: property PathPart",
            "expected one path segment, got 'a/b'",
            id="path-part",
        ),
        pytest.param(
            """\
            Url:
              Type: AWS::Lambda::Url
              Properties: {TargetFunctionArn: !Ref Fn, AuthType: PUBLIC}
            """,
            "resource Url: property AuthType",
            "expected NONE or AWS_IAM, got PUBLIC",
            id="url-auth-type",
        ),
        pytest.param(
            """\
            Api:
              Type: AWS::ApiGatewayV2::Api
              Properties: {Name: api, ProtocolType: HTTP, Target: !GetAtt Nope.Arn}
            Nope:
              Type: AWS::SQS::Queue
            """,
            "resource Api: property Target",
            "arn:aws:sqs:us-east-1:123456789012:Nope is not a Lambda function ARN or invocation URI",
            id="quick-create-target",
        ),
    ],
)
def test_template_errors(tmp_path: Path, resources: str, where: str, message: str) -> None:
    path = cfn(tmp_path, resources)
    assert load_error(path) == f"{path}: {where}: {message}"


def test_route_defined_twice(tmp_path: Path) -> None:
    body = f"""\
    Api:
      Type: AWS::ApiGateway::RestApi
      Properties:
        Body:
          swagger: '2.0'
          paths:
            /:
              get:
                x-amazon-apigateway-integration:
                  type: aws_proxy
                  uri: {INVOKE.format(FN_ARN.format("Fn"))}
    Get:
      Type: AWS::ApiGateway::Method
      Properties:
        RestApiId: !Ref Api
        ResourceId: !GetAtt Api.RootResourceId
        HttpMethod: GET
        Integration: {{Type: MOCK}}
    """
    path = cfn(tmp_path, body)
    assert load_error(path) == f"{path}: resource Get: route GET / is defined twice"


def test_sam_definition_body_path_without_slash(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        SAM
        + textwrap.dedent(
            """\
        Resources:
          Api:
            Type: AWS::Serverless::Api
            Properties:
              StageName: prod
              DefinitionBody:
                swagger: '2.0'
                paths:
                  items:
                    get: {}
        """
        ),
    )
    assert load_error(path) == (
        f"{path}: resource Api: property DefinitionBody.paths.items: path items must start with /"
    )


def sam_api_with_definition_uri(directory: Path, uri: str) -> Path:
    return write(
        directory,
        SAM
        + textwrap.dedent(
            f"""\
            Resources:
              Api:
                Type: AWS::Serverless::Api
                Properties:
                  StageName: prod
                  DefinitionUri: {uri}
            """
        ),
    )


def test_definition_uri_errors(tmp_path: Path) -> None:
    path = sam_api_with_definition_uri(tmp_path, "missing.yaml")
    assert load_error(path) == (
        f"{path}: resource Api: property DefinitionUri:"
        f" definition file {tmp_path.resolve() / 'missing.yaml'} does not exist"
    )
    path = sam_api_with_definition_uri(tmp_path, "s3://artifacts/openapi.yaml")
    assert load_error(path) == (
        f"{path}: resource Api: property DefinitionUri:"
        " a definition in S3 is not supported, point DefinitionUri at a local file"
    )


def test_an_error_inside_a_definition_file_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "openapi.json").write_text(
        '{"openapi": "3.0.1", "paths": {"/x": {"get": {"x-amazon-apigateway-integration":'
        ' {"type": "aws_proxy", "uri": "' + FN_ARN.format("Missing") + '"}}}}}',
        encoding="utf-8",
    )
    path = sam_api_with_definition_uri(tmp_path, "api/openapi.json")
    assert load_error(path) == (
        f"{tmp_path / 'api' / 'openapi.json'}:"
        " property paths./x.get.x-amazon-apigateway-integration.uri:"
        " function Missing is not defined in this template"
    )


def test_raw_body_s3_location_may_name_a_local_file(tmp_path: Path) -> None:
    (tmp_path / "openapi.yaml").write_text(
        textwrap.dedent(
            f"""\
            openapi: 3.0.1
            paths:
              /ping:
                get:
                  x-amazon-apigateway-integration:
                    type: AWS_PROXY
                    uri: {FN_ARN.format("Fn")}
                    payloadFormatVersion: '2.0'
            """
        ),
        encoding="utf-8",
    )
    path = cfn(
        tmp_path,
        """\
        Api:
          Type: AWS::ApiGatewayV2::Api
          Properties: {BodyS3Location: openapi.yaml}
        Stage:
          Type: AWS::ApiGatewayV2::Stage
          Properties: {ApiId: !GetAtt Api.ApiId, StageName: v1}
        """,
    )
    app = load_template(path)
    api = app.apis[api_id_for("Api")]
    assert api.routes == (Route("GET", "/ping", http_lam("Fn")),)
    assert api.stages == {"v1": Stage("v1")}
    # No deployment and AutoDeploy off: AWS would not serve the stage yet; fogbank says so.
    assert app.warnings == (
        "Stage: stage v1 has AutoDeploy off and Api no Deployment;"
        " fogbank serves the routes as the template has them",
    )


def test_stageless_api_orphans_and_duplicate_urls_warn(tmp_path: Path) -> None:
    path = cfn(
        tmp_path,
        """\
        Api:
          Type: AWS::ApiGateway::RestApi
          Properties: {Name: api}
        Ping:
          Type: AWS::ApiGateway::Method
          Properties:
            RestApiId: !Ref Api
            ResourceId: !GetAtt Api.RootResourceId
            HttpMethod: GET
        Imported:
          Type: AWS::ApiGateway::Stage
          Properties: {RestApiId: a1b2c3d4e5, StageName: prod}
        Url:
          Type: AWS::Lambda::Url
          Properties: {TargetFunctionArn: !Ref Fn, AuthType: NONE}
        AliasUrl:
          Type: AWS::Lambda::Url
          Properties: {TargetFunctionArn: !Ref Fn, Qualifier: live, AuthType: NONE}
        """,
    )
    app = load_template(path)
    assert app.apis[api_id_for("Api")].routes == ()
    assert list(app.function_urls) == ["Fn"]
    assert app.warnings == (
        "Api: not served by fogbank (no integration): GET /",
        "Api has no stage, so no URL serves it",
        "Imported (AWS::ApiGateway::Stage) is for API a1b2c3d4e5, which is not in this template",
        "AliasUrl: function Fn already has a URL; fogbank serves one URL per function",
    )


def test_sam_rest_auth_is_read_into_routes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        SAM
        + textwrap.dedent(
            """\
            Globals:
              Function: {Runtime: python3.12, CodeUri: src/, Handler: app.handler}
            Resources:
              Api:
                Type: AWS::Serverless::Api
                Properties:
                  StageName: prod
                  ApiKeySourceType: AUTHORIZER
                  Auth:
                    ApiKeyRequired: true
                    DefaultAuthorizer: TokenAuth
                    Authorizers:
                      TokenAuth:
                        FunctionArn: !GetAtt AuthFunction.Arn
              AuthFunction:
                Type: AWS::Serverless::Function
              Fn:
                Type: AWS::Serverless::Function
                Properties:
                  Events:
                    Secure:
                      Type: Api
                      Properties: {RestApiId: !Ref Api, Path: /secure, Method: get}
                    Open:
                      Type: Api
                      Properties:
                        RestApiId: !Ref Api
                        Path: /open
                        Method: get
                        Auth: {Authorizer: NONE, ApiKeyRequired: false}
            """
        ),
    )
    api = only_api(load_template(path))
    assert {r.route_key: r for r in api.routes} == {
        "GET /secure": Route(
            "GET",
            "/secure",
            lam("Fn"),
            authorization_type="CUSTOM",
            authorizer="TokenAuth",
            api_key_required=True,
        ),
        "GET /open": Route("GET", "/open", lam("Fn")),
    }
    assert api.api_key_source == "AUTHORIZER"
