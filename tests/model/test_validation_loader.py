"""Loading request validation, cache keys, stage cache settings and gateway responses."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from fogbank import TemplateError
from fogbank.model import (
    Api,
    GatewayResponse,
    MethodSettings,
    RequestValidator,
    RouteValidation,
    StageSettings,
    load_template,
)

SAM = "Transform: AWS::Serverless-2016-10-31\n"
FUNCTION = """
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      InlineCode: "def handler(event, context): return {'statusCode': 200}"
"""
RAW_API = """
Resources:
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties: {Name: raw}
  Items:
    Type: AWS::ApiGateway::Resource
    Properties: {RestApiId: !Ref Api, ParentId: !GetAtt Api.RootResourceId, PathPart: items}
  Deployment:
    Type: AWS::ApiGateway::Deployment
    Properties: {RestApiId: !Ref Api, StageName: prod}
"""
MOCK = "Integration: {Type: MOCK, RequestTemplates: {application/json: '{\"statusCode\": 200}'}}"


def load(tmp_path: Path, template: str) -> Api:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(template), encoding="utf-8")
    (api,) = load_template(path).apis.values()
    return api


def load_error(tmp_path: Path, template: str) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        load(tmp_path, template)
    return caught.value


def openapi_api(body: str, **extra: str) -> str:
    """A SAM API with an inline OpenAPI body (indented under `DefinitionBody:`)."""
    props = "".join(f"      {key}: {value}\n" for key, value in extra.items())
    return (
        SAM
        + "Resources:\n  Api:\n    Type: AWS::Serverless::Api\n    Properties:\n"
        + "      StageName: prod\n"
        + props
        + "      DefinitionBody:\n"
        + textwrap.indent(textwrap.dedent(body), "        ")
        + FUNCTION
    )


INTEGRATION = """x-amazon-apigateway-integration:
  type: aws_proxy
  httpMethod: POST
  uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations
"""


def op(indent: int, integration_extra: str = "") -> str:
    """An operation's integration, indented to sit under an operation key in a body string."""
    return textwrap.indent(INTEGRATION + textwrap.indent(integration_extra, "  "), " " * indent)


ONE_ROUTE = f"""
swagger: "2.0"
info: {{title: t, version: "1"}}
paths:
  /x:
    get:
{op(6)}
"""
"""A body with one route and nothing else."""


def test_openapi_2_validators_models_parameters_and_cache_keys(tmp_path: Path) -> None:
    body = f"""
    swagger: "2.0"
    info: {{title: t, version: "1"}}
    x-amazon-apigateway-request-validators:
      all: {{validateRequestBody: true, validateRequestParameters: true}}
      params: {{validateRequestParameters: true}}
    x-amazon-apigateway-request-validator: all
    consumes: [application/json, application/x-www-form-urlencoded]
    parameters:
      tenant: {{name: X-Tenant, in: header, required: true, type: string}}
    definitions:
      Item:
        type: object
        required: [name]
        properties:
          name: {{type: string}}
          tags: {{type: array, items: {{$ref: "#/definitions/Tag"}}}}
      Tag: {{type: string, maxLength: 5}}
    paths:
      /items/{{id}}:
        parameters:
          - {{name: id, in: path, required: true, type: string}}
          - {{$ref: "#/parameters/tenant"}}
        get:
          x-amazon-apigateway-request-validator: params
          parameters:
            - {{name: q, in: query, required: true, type: string}}
            - {{name: page, in: query, required: false, type: string}}
{op(10, "cacheKeyParameters: [method.request.path.id, method.request.querystring.q]")}
        put:
          consumes: [application/json]
          parameters:
            - {{name: body, in: body, required: true, schema: {{$ref: "#/definitions/Item"}}}}
{op(10)}
      /bulk:
        post:
          parameters:
            - {{name: body, in: body, schema: {{type: array}}}}
{op(10)}
    """
    management = load(tmp_path, openapi_api(body)).management
    assert management.validators == {
        "all": RequestValidator("all", validate_body=True, validate_parameters=True),
        "params": RequestValidator("params", validate_parameters=True),
    }
    assert management.default_validator == "all"
    assert management.models == {
        "Item": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "tags": {"type": "array", "items": {"$ref": "#/definitions/Tag"}},
            },
        },
        "Tag": {"type": "string", "maxLength": 5},
        "POST /bulk": {"type": "array"},  # an inline schema becomes a model of its own
    }
    tenant = "method.request.header.X-Tenant"
    assert management.route_validation == {
        "GET /items/{id}": RouteValidation(
            validator="params",
            required_parameters=(tenant, "method.request.querystring.q"),
        ),
        "PUT /items/{id}": RouteValidation(
            request_models={"application/json": "Item"}, required_parameters=(tenant,)
        ),
        "POST /bulk": RouteValidation(
            request_models={
                "application/json": "POST /bulk",
                "application/x-www-form-urlencoded": "POST /bulk",
            }
        ),
    }
    assert management.cache_key_parameters == {
        "GET /items/{id}": ("method.request.path.id", "method.request.querystring.q")
    }


def test_openapi_3_components_request_bodies_and_model_urls(tmp_path: Path) -> None:
    body = f"""
    openapi: "3.0.1"
    info: {{title: t, version: "1"}}
    x-amazon-apigateway-request-validators:
      body: {{validateRequestBody: true}}
    components:
      schemas:
        Order:
          type: object
          properties:
            line: {{$ref: "#/components/schemas/Line"}}
            other: {{$ref: "https://apigateway.amazonaws.com/restapis/abc123/models/Line"}}
        Line: {{type: object}}
    paths:
      /orders:
        post:
          x-amazon-apigateway-request-validator: body
          requestBody:
            content:
              application/json:
                schema: {{$ref: "#/components/schemas/Order"}}
              text/plain:
                schema: {{type: string}}
{op(10)}
    """
    management = load(tmp_path, openapi_api(body)).management
    assert management.models["Order"] == {
        "type": "object",
        "properties": {
            "line": {"$ref": "#/definitions/Line"},
            "other": {"$ref": "#/definitions/Line"},
        },
    }
    assert management.route_validation == {
        "POST /orders": RouteValidation(
            validator="body",
            request_models={"application/json": "Order", "text/plain": "POST /orders text/plain"},
        )
    }
    assert management.default_validator is None


def test_sam_models_request_model_and_request_parameters(tmp_path: Path) -> None:
    template = (
        SAM
        + """
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Models:
        Pet: {type: object, required: [name], properties: {name: {type: string}}}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      InlineCode: "def handler(event, context): return {'statusCode': 200}"
      Events:
        Add:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /pets
            Method: post
            RequestModel: {Model: Pet, Required: true, ValidateBody: true}
        Find:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /pets
            Method: get
            RequestParameters:
              - method.request.querystring.species: {Required: true, Caching: true}
              - method.request.header.Accept-Language: {Caching: true}
"""
    )
    management = load(tmp_path, template).management
    # SAM lower-cases model names in the definitions it writes.
    assert management.models == {
        "pet": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    }
    (validator,) = management.validators.values()
    assert (validator.validate_body, validator.validate_parameters) == (True, False)
    assert management.route_validation["POST /pets"] == RouteValidation(
        validator=validator.name, request_models={"application/json": "pet"}
    )
    assert management.route_validation["GET /pets"] == RouteValidation(
        required_parameters=("method.request.querystring.species",)
    )
    assert management.cache_key_parameters == {
        "GET /pets": (
            "method.request.querystring.species",
            "method.request.header.Accept-Language",
        )
    }


def test_raw_validators_models_and_methods(tmp_path: Path) -> None:
    template = (
        RAW_API
        + f"""
  Validator:
    Type: AWS::ApiGateway::RequestValidator
    Properties: {{RestApiId: !Ref Api, Name: strict, ValidateRequestBody: true, ValidateRequestParameters: true}}
  ItemModel:
    Type: AWS::ApiGateway::Model
    Properties:
      RestApiId: !Ref Api
      Name: Item
      ContentType: application/json
      Schema: '{{"type": "object", "properties": {{"part": {{"$ref": "#/definitions/Part"}}}}}}'
  PartModel:
    Type: AWS::ApiGateway::Model
    Properties:
      RestApiId: !Ref Api
      Name: Part
      Schema:
        type: object
        properties:
          self: {{$ref: !Sub "https://apigateway.amazonaws.com/restapis/${{Api}}/models/${{PartModel}}"}}
  Post:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref Items
      HttpMethod: POST
      AuthorizationType: NONE
      RequestValidatorId: !Ref Validator
      RequestModels: {{application/json: !Ref ItemModel, text/plain: Empty}}
      RequestParameters:
        method.request.querystring.mode: true
        method.request.header.X-Trace: false
      {MOCK}
  Get:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref Items
      HttpMethod: GET
      AuthorizationType: NONE
      Integration:
        Type: MOCK
        CacheKeyParameters: [method.request.querystring.page]
"""
    )
    management = load(tmp_path, template).management
    assert management.validators == {
        "Validator": RequestValidator("strict", validate_body=True, validate_parameters=True)
    }
    assert management.models == {
        "Item": {"type": "object", "properties": {"part": {"$ref": "#/definitions/Part"}}},
        "Part": {"type": "object", "properties": {"self": {"$ref": "#/definitions/Part"}}},
    }
    assert management.route_validation == {
        "POST /items": RouteValidation(
            validator="Validator",
            request_models={"application/json": "Item", "text/plain": "Empty"},
            required_parameters=("method.request.querystring.mode",),
        )
    }
    assert management.cache_key_parameters == {"GET /items": ("method.request.querystring.page",)}


def test_gateway_responses_from_sam_and_resources(tmp_path: Path) -> None:
    template = openapi_api(
        ONE_ROUTE,
        GatewayResponses="""
        UNAUTHORIZED:
          StatusCode: 418
          ResponseParameters:
            Headers:
              Access-Control-Allow-Origin: "'*'"
              X-Origin: method.request.header.Origin
          ResponseTemplates:
            application/json: '{"error": $context.error.messageString}'
        DEFAULT_4XX:
          ResponseParameters:
            Headers: {X-Stage: stageVariables.color}""".replace("\n", "\n  "),
    )
    responses = load(tmp_path, template).management.gateway_responses
    assert responses == {
        "UNAUTHORIZED": GatewayResponse(
            "UNAUTHORIZED",
            status_code=418,
            headers={
                "Access-Control-Allow-Origin": "*",
                "X-Origin": "method.request.header.Origin",
            },
            templates={"application/json": '{"error": $context.error.messageString}'},
        ),
        "DEFAULT_4XX": GatewayResponse("DEFAULT_4XX", headers={"X-Stage": "stageVariables.color"}),
    }


def test_a_gateway_response_resource_replaces_the_extension(tmp_path: Path) -> None:
    template = (
        RAW_API
        + f"""
  Get:
    Type: AWS::ApiGateway::Method
    Properties: {{RestApiId: !Ref Api, ResourceId: !Ref Items, HttpMethod: GET, AuthorizationType: NONE, {MOCK}}}
  NotFound:
    Type: AWS::ApiGateway::GatewayResponse
    Properties:
      RestApiId: !Ref Api
      ResponseType: MISSING_AUTHENTICATION_TOKEN
      StatusCode: "404"
      ResponseTemplates: {{application/json: '{{"message": "no such path"}}'}}
"""
    )
    api = load(tmp_path, template)
    assert api.management.gateway_responses == {
        "MISSING_AUTHENTICATION_TOKEN": GatewayResponse(
            "MISSING_AUTHENTICATION_TOKEN",
            status_code=404,
            templates={"application/json": '{"message": "no such path"}'},
        )
    }


def test_stage_cache_settings_from_sam_and_a_stage_description(tmp_path: Path) -> None:
    sam = openapi_api(
        ONE_ROUTE,
        CacheClusterEnabled="true",
        CacheClusterSize='"0.5"',
        MethodSettings="""
        - {ResourcePath: "/*", HttpMethod: "*", CachingEnabled: true, CacheTtlInSeconds: 60}
        - ResourcePath: /~1x
          HttpMethod: GET
          CachingEnabled: true
          RequireAuthorizationForCacheControl: false
          UnauthorizedCacheControlHeaderStrategy: FAIL_WITH_403
        - {ResourcePath: "/*", HttpMethod: "*", ThrottlingRateLimit: 5}""".replace("\n", "\n  "),
    )
    settings = load(tmp_path, sam).management.stage_settings["prod"]
    assert settings.cache_cluster_enabled is True
    assert settings.method_settings["*/*"].caching_enabled is True
    assert settings.method_settings["*/*"].cache_ttl_s == 60
    assert settings.method_settings["/x/GET"] == MethodSettings(
        caching_enabled=True,
        require_authorization_for_cache_control=False,
        unauthorized_cache_control_header_strategy="FAIL_WITH_403",
    )
    raw = RAW_API.replace(
        "Properties: {RestApiId: !Ref Api, StageName: prod}",
        """Properties:
      RestApiId: !Ref Api
      StageName: prod
      StageDescription: {CacheClusterEnabled: true, CachingEnabled: true, CacheTtlInSeconds: 0}""",
    ) + (
        f"  Get:\n    Type: AWS::ApiGateway::Method\n    Properties: {{RestApiId: !Ref Api,"
        f" ResourceId: !Ref Items, HttpMethod: GET, AuthorizationType: NONE, {MOCK}}}\n"
    )
    assert load(tmp_path, raw).management.stage_settings == {
        "prod": StageSettings(
            cache_cluster_enabled=True,
            method_settings={"*/*": MethodSettings(caching_enabled=True, cache_ttl_s=0)},
        )
    }


BAD: list[tuple[str, dict[str, str], str]] = [
    (
        "x-amazon-apigateway-request-validator: nope\n",
        {"prop": "DefinitionBody.x-amazon-apigateway-request-validator"},
        "request validator nope is not defined",
    ),
    (
        "definitions: {Bad: {type: 12}}\n",
        {"prop": "DefinitionBody.definitions.Bad"},
        "not a JSON Schema (draft 4): 12 is not valid under any of the given schemas",
    ),
    (
        'definitions: {A: {$ref: "#/definitions/Missing"}}\n',
        {"prop": "DefinitionBody.definitions.A"},
        "#/definitions/Missing names no model of this API",
    ),
    (
        "x-amazon-apigateway-gateway-responses: {NOT_A_TYPE: {}}\n",
        {"prop": "DefinitionBody.x-amazon-apigateway-gateway-responses.NOT_A_TYPE"},
        "unknown gateway response type NOT_A_TYPE",
    ),
    (
        "x-amazon-apigateway-gateway-responses: {THROTTLED: {statusCode: '42'}}\n",
        {"prop": "DefinitionBody.x-amazon-apigateway-gateway-responses.THROTTLED.statusCode"},
        "expected an HTTP status code (100-599), got 42",
    ),
    (
        "x-amazon-apigateway-gateway-responses:\n"
        "  THROTTLED: {responseParameters: {gatewayresponse.header.X: unquoted}}\n",
        {
            "prop": "DefinitionBody.x-amazon-apigateway-gateway-responses.THROTTLED"
            ".responseParameters.gatewayresponse.header.X"
        },
        "expected a 'quoted literal' or a method.request, stageVariables or context reference,"
        " got unquoted",
    ),
]


@pytest.mark.parametrize(("top", "where", "message"), BAD)
def test_bad_openapi_input_is_one_line_naming_the_place(
    tmp_path: Path, top: str, where: dict[str, Any], message: str
) -> None:
    body = f"""
    swagger: "2.0"
    info: {{title: t, version: "1"}}
    {textwrap.indent(top, "    ").strip()}
    paths:
      /x:
        get:
{op(10)}
    """
    error = load_error(tmp_path, openapi_api(body))
    assert (error.resource, error.prop, error.detail) == ("Api", where["prop"], message)


def test_bad_resources_are_one_line_naming_the_place(tmp_path: Path) -> None:
    method = (
        "  Post:\n    Type: AWS::ApiGateway::Method\n    Properties:\n"
        "      RestApiId: !Ref Api\n      ResourceId: !Ref Items\n      HttpMethod: POST\n"
        "      AuthorizationType: NONE\n      {extra}\n      " + MOCK + "\n"
    )
    cases = [
        ("RequestModels: {application/json: Nope}", "RequestModels", "model Nope is not defined"),
        (
            "RequestParameters: {querystring.q: true}",
            "RequestParameters",
            "querystring.q is not a method request parameter"
            " (method.request.querystring|header|path.<name>)",
        ),
        (
            "RequestValidatorId: Ghost",
            "RequestValidatorId",
            "request validator Ghost is not defined",
        ),
    ]
    for extra, prop, message in cases:
        error = load_error(tmp_path, RAW_API + method.replace("{extra}", extra))
        assert (error.resource, error.prop, error.detail) == ("Post", prop, message)
    stage = RAW_API + (
        "  Stage:\n    Type: AWS::ApiGateway::Stage\n    Properties:\n"
        "      RestApiId: !Ref Api\n      StageName: live\n      DeploymentId: !Ref Deployment\n"
        "      MethodSettings: [{ResourcePath: /*, HttpMethod: '*', CacheTtlInSeconds: 4000}]\n"
    )
    error = load_error(tmp_path, stage)
    assert (error.resource, error.prop, error.detail) == (
        "Stage",
        "MethodSettings[0].CacheTtlInSeconds",
        "4000 is above the maximum, 3600",
    )
