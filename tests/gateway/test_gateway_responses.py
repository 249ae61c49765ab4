"""Custom gateway responses over real HTTP: per response type, the DEFAULT_4XX / 5XX fallbacks,
status, headers and body templates."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .served_app import ServedApp, lambda_uri, sam_template, serving

HANDLER = """
def handler(event, context):
    raise RuntimeError("boom")
"""
INTEGRATION = {"type": "aws_proxy", "httpMethod": "POST", "uri": lambda_uri("Boom")}
GATEWAY_RESPONSES: dict[str, Any] = {
    "MISSING_AUTHENTICATION_TOKEN": {
        "StatusCode": 404,
        "ResponseTemplates": {
            "application/json": '{"error": $context.error.messageString, "type":'
            ' "$context.error.responseType", "id": "$context.requestId",'
            ' "path": "$context.path", "api": "${context.apiId}", "unknown": "$context.nope"}',
            "text/plain": "nothing at $context.path",
        },
    },
    "BAD_REQUEST_BODY": {
        "ResponseTemplates": {
            "application/json": '{"why": "$context.error.validationErrorString",'
            ' "message": "$context.error.message"}'
        },
    },
    "DEFAULT_4XX": {
        "ResponseParameters": {
            "Headers": {
                "Access-Control-Allow-Origin": "'*'",
                "X-Origin": "method.request.header.Origin",
                "X-Color": "stageVariables.color",
                "X-Search": "method.request.querystring.page",
            }
        },
    },
    "DEFAULT_5XX": {
        "StatusCode": 503,
        "ResponseParameters": {"Headers": {"Retry-After": "'5'"}},
        "ResponseTemplates": {
            "application/json": '{"failed": $context.error.messageString,'
            ' "color": "$stageVariables.color", "stage": "$context.stage"}'
        },
    },
}
DEFINITION: dict[str, Any] = {
    "swagger": "2.0",
    "info": {"title": "responses", "version": "1"},
    "x-amazon-apigateway-request-validators": {
        "all": {"validateRequestBody": True, "validateRequestParameters": True}
    },
    "x-amazon-apigateway-request-validator": "all",
    "definitions": {"Pet": {"type": "object", "required": ["name"]}},
    "paths": {
        "/pets": {
            "post": {
                "parameters": [
                    {"in": "body", "name": "pet", "schema": {"$ref": "#/definitions/Pet"}}
                ],
                "x-amazon-apigateway-integration": INTEGRATION,
            }
        },
        "/search": {
            "get": {
                "parameters": [{"name": "q", "in": "query", "required": True, "type": "string"}],
                "x-amazon-apigateway-integration": INTEGRATION,
            }
        },
        "/boom": {"get": {"x-amazon-apigateway-integration": INTEGRATION}},
    },
}


def template() -> str:
    api = {
        "StageName": "prod",
        "Variables": {"color": "blue"},
        "GatewayResponses": GATEWAY_RESPONSES,
        "DefinitionBody": DEFINITION,
    }
    return sam_template(api, "Boom")


@pytest.fixture(scope="module")
def served() -> Iterator[ServedApp]:
    with serving(template(), handler=HANDLER, function="Boom") as served:
        yield served


def headers_of(response: httpx.Response) -> dict[str, str]:
    """Every header but the date; the request id is checked against the body where it is used."""
    return {k: v for k, v in response.headers.items() if k not in ("date", "x-amzn-requestid")}


@pytest.mark.parametrize("on_api_host", [False, True])
def test_a_type_of_its_own_replaces_status_and_body(served: ServedApp, on_api_host: bool) -> None:
    headers = {"host": served.api_host} if on_api_host else {}
    response = httpx.get(served.url + "/prod/nowhere", headers=headers)
    assert response.status_code == 404
    request_id = response.headers["x-amzn-requestid"]
    assert response.json() == {
        "error": "Missing Authentication Token",
        "type": "MISSING_AUTHENTICATION_TOKEN",
        "id": request_id,
        "path": "/prod/nowhere",
        "api": served.api_id,
        "unknown": "",
    }
    # Its own type is used, not DEFAULT_4XX: none of the fallback's headers.
    assert headers_of(response) == {
        "content-type": "application/json",
        "x-amzn-errortype": "MissingAuthenticationTokenException",
        "content-length": str(len(response.content)),
    }


def test_the_template_follows_the_accepted_media_type(served: ServedApp) -> None:
    response = httpx.get(served.url + "/prod/nowhere", headers={"accept": "text/plain"})
    assert (response.status_code, response.text) == (404, "nothing at /prod/nowhere")
    assert response.headers["content-type"] == "text/plain"


def test_bad_request_body_template_sees_the_validation_errors(served: ServedApp) -> None:
    response = httpx.post(served.url + "/prod/pets", json={"kind": "cat"})
    assert response.status_code == 400
    assert response.json() == {
        "why": "['name' is a required property]",
        "message": "Invalid request body",
    }
    assert headers_of(response) == {
        "content-type": "application/json",
        "x-amzn-errortype": "BadRequestException",
        "content-length": str(len(response.content)),
    }


def test_a_type_without_its_own_falls_back_to_default_4xx(served: ServedApp) -> None:
    response = httpx.get(
        served.url + "/prod/search?page=3", headers={"origin": "https://app.example.com"}
    )
    assert response.status_code == 400
    assert response.json() == {"message": "Missing required request parameters: [q]"}
    assert headers_of(response) == {
        "content-type": "application/json",
        "x-amzn-errortype": "BadRequestException",
        "access-control-allow-origin": "*",
        "x-origin": "https://app.example.com",
        "x-color": "blue",
        "x-search": "3",
        "content-length": str(len(response.content)),
    }


def test_a_request_value_that_is_absent_leaves_its_header_out(served: ServedApp) -> None:
    response = httpx.get(served.url + "/prod/search")
    assert response.status_code == 400
    assert "x-origin" not in response.headers
    assert "x-search" not in response.headers
    assert response.headers["x-color"] == "blue"


def test_default_5xx_reshapes_a_function_error(served: ServedApp) -> None:
    response = httpx.get(served.url + "/prod/boom")
    assert response.status_code == 503
    assert response.json() == {"failed": "Internal server error", "color": "blue", "stage": "prod"}
    assert headers_of(response) == {
        "content-type": "application/json",
        "x-amzn-errortype": "InternalServerErrorException",
        "retry-after": "5",
        "content-length": str(len(response.content)),
    }


RAW_TEMPLATE = """
Resources:
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties:
      Name: raw
      Body:
        swagger: "2.0"
        info: {title: raw, version: "1"}
        x-amazon-apigateway-gateway-responses:
          THROTTLED: {statusCode: "503"}
        paths:
          /ping:
            get:
              x-amazon-apigateway-request-validator: params
              parameters: [{name: n, in: query, required: true, type: string}]
              x-amazon-apigateway-integration:
                type: mock
                requestTemplates: {application/json: '{"statusCode": 200}'}
                responses: {default: {statusCode: "200"}}
        x-amazon-apigateway-request-validators:
          params: {validateRequestParameters: true}
  Params:
    Type: AWS::ApiGateway::GatewayResponse
    Properties:
      RestApiId: !Ref Api
      ResponseType: BAD_REQUEST_PARAMETERS
      StatusCode: "422"
      ResponseParameters: {gatewayresponse.header.X-Request: context.requestId}
      ResponseTemplates: {application/json: '{"missing": "$context.error.message"}'}
  Deployment:
    Type: AWS::ApiGateway::Deployment
    Properties: {RestApiId: !Ref Api, StageName: prod}
"""


def test_gateway_response_resources_of_a_raw_api() -> None:
    with serving(RAW_TEMPLATE, handler=HANDLER, function="Boom") as served:
        response = httpx.get(served.url + "/prod/ping")
        assert response.status_code == 422
        assert response.json() == {"missing": "Missing required request parameters: [n]"}
        assert response.headers["x-request"] == response.headers["x-amzn-requestid"]
        assert httpx.get(served.url + "/prod/ping?n=1").status_code == 200
