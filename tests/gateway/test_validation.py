"""REST request validation over real HTTP: required parameters and JSON Schema body models.

A refused request never reaches the function: its log shows no invocation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .served_app import ServedApp, lambda_uri, sam_template, serving

HANDLER = """
import json

def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"body": event["body"], "query": event["queryStringParameters"]})}
"""
INTEGRATION = {"type": "aws_proxy", "httpMethod": "POST", "uri": lambda_uri("Echo")}
PET_BODY = {"in": "body", "name": "pet", "required": True, "schema": {"$ref": "#/definitions/Pet"}}
DEFINITION: dict[str, Any] = {
    "swagger": "2.0",
    "info": {"title": "validated", "version": "1"},
    "x-amazon-apigateway-request-validators": {
        "all": {"validateRequestBody": True, "validateRequestParameters": True},
        "body": {"validateRequestBody": True, "validateRequestParameters": False},
        "params": {"validateRequestBody": False, "validateRequestParameters": True},
    },
    "x-amazon-apigateway-request-validator": "params",
    "definitions": {
        "Pet": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "tags": {
                    "type": "array",
                    # API Gateway's own way to refer to another model of the API.
                    "items": {"$ref": "https://apigateway.amazonaws.com/restapis/x/models/Tag"},
                },
            },
        },
        "Tag": {"type": "string", "maxLength": 5},
    },
    "paths": {
        "/pets": {
            "post": {
                "x-amazon-apigateway-request-validator": "body",
                "consumes": ["application/json"],
                "parameters": [PET_BODY],
                "x-amazon-apigateway-integration": INTEGRATION,
            }
        },
        "/search": {
            "get": {  # the API's default validator: parameters
                "parameters": [
                    {"name": "q", "in": "query", "required": True, "type": "string"},
                    {"name": "X-Key", "in": "header", "required": True, "type": "string"},
                    {"name": "page", "in": "query", "required": False, "type": "string"},
                ],
                "x-amazon-apigateway-integration": INTEGRATION,
            }
        },
        "/both": {
            "post": {
                "x-amazon-apigateway-request-validator": "all",
                "parameters": [
                    {"name": "q", "in": "query", "required": True, "type": "string"},
                    PET_BODY,
                ],
                "x-amazon-apigateway-integration": INTEGRATION,
            }
        },
        "/loose": {
            "post": {
                "x-amazon-apigateway-request-validator": "params",
                "parameters": [PET_BODY],
                "x-amazon-apigateway-integration": INTEGRATION,
            }
        },
    },
}


@pytest.fixture(scope="module")
def served() -> Iterator[ServedApp]:
    template = sam_template({"StageName": "prod", "DefinitionBody": DEFINITION}, "Echo")
    with serving(template, handler=HANDLER, function="Echo") as served:
        yield served


def assert_bad_request(response: httpx.Response, message: str) -> None:
    assert response.status_code == 400
    assert response.json() == {"message": message}
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "x-amzn-requestid")}
    assert headers == {
        "content-type": "application/json",
        "x-amzn-errortype": "BadRequestException",
        "content-length": str(len(response.content)),
    }
    assert len(response.headers["x-amzn-requestid"]) == 36


def test_a_body_the_model_accepts_reaches_the_function(served: ServedApp) -> None:
    before = served.invocations()
    pet = {"name": "Rex", "tags": ["good", "dog"]}
    response = httpx.post(served.base + "/pets", json=pet)
    assert response.status_code == 200
    assert json.loads(response.json()["body"]) == pet
    assert served.invocations() == before + 1


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"tags": []}', "application/json"),  # `name` is required
        (b'{"name": 7}', "application/json"),
        (b'{"name": "Rex", "tags": ["toolong"]}', "application/json"),  # via the Tag model
        (b"{not json", "application/json"),
        (b"", "application/json"),  # validated as {}
        (b'{"tags": []}', "Application/JSON; charset=utf-8"),
        (b'{"tags": []}', None),  # no type: application/json
    ],
)
def test_a_body_the_model_refuses_is_a_400_and_never_invoked(
    served: ServedApp, content: bytes, content_type: str | None
) -> None:
    before = served.invocations()
    headers = {"content-type": content_type} if content_type else {}
    response = httpx.post(served.base + "/pets", content=content, headers=headers)
    assert_bad_request(response, "Invalid request body")
    assert served.invocations() == before


def test_a_media_type_without_a_model_is_not_validated(served: ServedApp) -> None:
    response = httpx.post(
        served.base + "/pets", content=b"anything", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 200
    assert response.json()["body"] == "anything"


def test_missing_required_parameters_are_named_in_declaration_order(served: ServedApp) -> None:
    before = served.invocations()
    url = served.base + "/search"
    assert_bad_request(httpx.get(url), "Missing required request parameters: [q, X-Key]")
    assert_bad_request(
        httpx.get(url, params={"page": "2"}), "Missing required request parameters: [q, X-Key]"
    )
    assert_bad_request(
        httpx.get(url, params={"q": "cats"}), "Missing required request parameters: [X-Key]"
    )
    assert served.invocations() == before
    # Header names match in any case; an empty value is still a value.
    ok = httpx.get(url + "?q=", headers={"x-key": "k"})
    assert ok.status_code == 200
    assert ok.json()["query"] == {"q": ""}
    assert served.invocations() == before + 1


def test_parameters_are_checked_before_the_body(served: ServedApp) -> None:
    response = httpx.post(served.base + "/both", json={"tags": []})
    assert_bad_request(response, "Missing required request parameters: [q]")
    response = httpx.post(served.base + "/both", params={"q": "x"}, json={"tags": []})
    assert_bad_request(response, "Invalid request body")
    response = httpx.post(served.base + "/both", params={"q": "x"}, json={"name": "Rex"})
    assert response.status_code == 200


def test_a_validator_that_skips_the_body_lets_any_body_through(served: ServedApp) -> None:
    response = httpx.post(served.base + "/loose", content=b"{not json")
    assert response.status_code == 200


RAW_TEMPLATE = """
Resources:
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties: {Name: raw}
  Orders:
    Type: AWS::ApiGateway::Resource
    Properties: {RestApiId: !Ref Api, ParentId: !GetAtt Api.RootResourceId, PathPart: orders}
  Strict:
    Type: AWS::ApiGateway::RequestValidator
    Properties: {RestApiId: !Ref Api, ValidateRequestBody: true, ValidateRequestParameters: true}
  Order:
    Type: AWS::ApiGateway::Model
    Properties:
      RestApiId: !Ref Api
      Name: Order
      ContentType: application/json
      Schema: {type: object, required: [qty], properties: {qty: {type: integer, minimum: 1}}}
  Post:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref Orders
      HttpMethod: POST
      AuthorizationType: NONE
      RequestValidatorId: !Ref Strict
      RequestModels: {application/json: !Ref Order}
      RequestParameters: {method.request.header.X-Shop: true}
      Integration:
        Type: MOCK
        RequestTemplates: {application/json: '{"statusCode": 201}'}
        IntegrationResponses:
          - StatusCode: "201"
            ResponseTemplates: {application/json: '{"accepted": true}'}
  Deployment:
    Type: AWS::ApiGateway::Deployment
    DependsOn: Post
    Properties: {RestApiId: !Ref Api, StageName: prod}
"""


def test_raw_validator_model_and_method_resources() -> None:
    with serving(RAW_TEMPLATE, handler=HANDLER, function="Echo") as served:
        url = served.base + "/orders"
        shop = {"X-Shop": "north"}
        assert_bad_request(
            httpx.post(url, json={"qty": 1}), "Missing required request parameters: [X-Shop]"
        )
        assert_bad_request(httpx.post(url, json={"qty": 0}, headers=shop), "Invalid request body")
        accepted = httpx.post(url, json={"qty": 2}, headers=shop)
        assert (accepted.status_code, accepted.json()) == (201, {"accepted": True})
