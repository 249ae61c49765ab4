"""Authorizers read from templates: SAM `Auth` (through aws-sam-translator's OpenAPI), raw
`AWS::ApiGateway::Authorizer` / `AWS::ApiGatewayV2::Authorizer`, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fogbank import TemplateError
from fogbank.model import Api, App, Authorizer, AuthorizerType, load_template

FN = """\
  Fn:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python3.12, Handler: app.handler, Code: src/}
  AuthFn:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python3.12, Handler: auth.handler, Code: src/}
"""
SAM_FN = """\
  AuthFn:
    Type: AWS::Serverless::Function
    Properties: {Runtime: python3.12, Handler: auth.handler, CodeUri: src/}
"""
AUTH_URI = (
    '!Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/'
    '${AuthFn.Arn}/invocations"'
)
FN_URI = AUTH_URI.replace("AuthFn", "Fn")
POOL = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc"


def write(directory: Path, resources: str, *, sam: bool = False) -> Path:
    (directory / "src").mkdir(exist_ok=True)
    head = "Transform: AWS::Serverless-2016-10-31\n" if sam else ""
    body = head + "Resources:\n" + (SAM_FN if sam else FN) + resources
    path = directory / "template.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def api(app: App, logical_id: str) -> Api:
    return next(a for a in app.apis.values() if a.logical_id == logical_id)


def access(found: Api) -> dict[str, tuple[str, str | None, tuple[str, ...]]]:
    """Route key -> (authorization type, authorizer, scopes)."""
    return {
        r.route_key: (r.authorization_type, r.authorizer, r.authorization_scopes)
        for r in found.routes
    }


def load_error(path: Path) -> str:
    with pytest.raises(TemplateError) as caught:
        load_template(path)
    return str(caught.value)


def test_sam_rest_auth(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Auth:
        DefaultAuthorizer: Token
        Authorizers:
          Token:
            FunctionArn: !GetAtt AuthFn.Arn
            Identity: {Header: X-Token, ValidationExpression: "^Bearer .+$", ReauthorizeEvery: 60}
          Request:
            FunctionPayloadType: REQUEST
            FunctionArn: !GetAtt AuthFn.Arn
            Identity: {Headers: [X-User], QueryStrings: [tenant], ReauthorizeEvery: 0}
          Pool:
            UserPoolArn: arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: src/
      Events:
        A: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /a, Method: get}}
        B: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /b, Method: get, Auth: {Authorizer: Request}}}
        C: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /c, Method: get, Auth: {Authorizer: NONE}}}
        D:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /d
            Method: get
            Auth: {Authorizer: Pool, AuthorizationScopes: [orders/read]}
        E: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /e, Method: get, Auth: {Authorizer: AWS_IAM}}}
""",
        sam=True,
    )
    app = load_template(path)
    found = api(app, "Api")
    assert dict(found.management.authorizers) == {
        "Token": Authorizer(
            name="Token",
            type=AuthorizerType.TOKEN,
            function_name="AuthFn",
            identity_sources=("method.request.header.X-Token",),
            validation_expression="^Bearer .+$",
            ttl_s=60,
        ),
        "Request": Authorizer(
            name="Request",
            type=AuthorizerType.REQUEST,
            function_name="AuthFn",
            identity_sources=("method.request.header.X-User", "method.request.querystring.tenant"),
            ttl_s=0,
        ),
        "Pool": Authorizer(
            name="Pool",
            type=AuthorizerType.COGNITO_USER_POOLS,
            identity_sources=("method.request.header.Authorization",),
            provider_arns=(POOL,),
        ),
    }
    assert access(found) == {
        "GET /a": ("CUSTOM", "Token", ()),
        "GET /b": ("CUSTOM", "Request", ()),
        "GET /c": ("NONE", None, ()),
        "GET /d": ("COGNITO_USER_POOLS", "Pool", ("orders/read",)),
        "GET /e": ("AWS_IAM", None, ()),
    }
    assert app.warnings == ()


def test_sam_http_auth(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        EnableIamAuthorizer: true
        Authorizers:
          Jwt:
            IdentitySource: $request.header.Authorization
            JwtConfiguration: {issuer: "https://issuer.example/", audience: [app1, app2]}
          Simple:
            FunctionArn: !GetAtt AuthFn.Arn
            AuthorizerPayloadFormatVersion: "2.0"
            EnableSimpleResponses: true
            Identity: {Headers: [Authorization], ReauthorizeEvery: 30}
          Policy:
            FunctionArn: !GetAtt AuthFn.Arn
            AuthorizerPayloadFormatVersion: "1.0"
            Identity: {Headers: [X-Key], QueryStrings: [who]}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: src/
      Events:
        A: {Type: HttpApi, Properties: {ApiId: !Ref Http, Path: /a, Method: get, Auth: {AuthorizationScopes: [read]}}}
        B: {Type: HttpApi, Properties: {ApiId: !Ref Http, Path: /b, Method: get, Auth: {Authorizer: Simple}}}
        C: {Type: HttpApi, Properties: {ApiId: !Ref Http, Path: /c, Method: get, Auth: {Authorizer: Policy}}}
        D: {Type: HttpApi, Properties: {ApiId: !Ref Http, Path: /d, Method: get, Auth: {Authorizer: NONE}}}
        E: {Type: HttpApi, Properties: {ApiId: !Ref Http, Path: /e, Method: get, Auth: {Authorizer: AWS_IAM}}}
""",
        sam=True,
    )
    found = api(load_template(path), "Http")
    assert dict(found.management.authorizers) == {
        "Jwt": Authorizer(
            name="Jwt",
            type=AuthorizerType.JWT,
            identity_sources=("$request.header.Authorization",),
            issuer="https://issuer.example/",
            audience=("app1", "app2"),
        ),
        "Simple": Authorizer(
            name="Simple",
            type=AuthorizerType.REQUEST,
            function_name="AuthFn",
            identity_sources=("$request.header.Authorization",),
            ttl_s=30,
            payload_format_version="2.0",
            simple_responses=True,
        ),
        "Policy": Authorizer(
            name="Policy",
            type=AuthorizerType.REQUEST,
            function_name="AuthFn",
            identity_sources=("$request.header.X-Key", "$request.querystring.who"),
            ttl_s=0,  # HTTP APIs document no default: fogbank caches only when told to
            payload_format_version="1.0",
        ),
    }
    assert access(found) == {
        "GET /a": ("JWT", "Jwt", ("read",)),
        "GET /b": ("CUSTOM", "Simple", ()),
        "GET /c": ("CUSTOM", "Policy", ()),
        "GET /d": ("NONE", None, ()),
        "GET /e": ("AWS_IAM", None, ()),
    }


REST_RESOURCES = f"""\
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties: {{Name: api}}
  TokenAuth:
    Type: AWS::ApiGateway::Authorizer
    Properties:
      RestApiId: !Ref Api
      Name: token
      Type: TOKEN
      AuthorizerUri: {AUTH_URI}
      IdentitySource: method.request.header.Authorization
      IdentityValidationExpression: "^allow"
      AuthorizerResultTtlInSeconds: 0
  PoolAuth:
    Type: AWS::ApiGateway::Authorizer
    Properties:
      RestApiId: !Ref Api
      Name: pool
      Type: COGNITO_USER_POOLS
      ProviderARNs: [{POOL}]
      IdentitySource: method.request.header.X-Id-Token
  Get:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !GetAtt Api.RootResourceId
      HttpMethod: GET
      AuthorizationType: CUSTOM
      AuthorizerId: !Ref TokenAuth
      Integration: {{Type: AWS_PROXY, IntegrationHttpMethod: POST, Uri: {FN_URI}}}
  Post:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !GetAtt Api.RootResourceId
      HttpMethod: POST
      AuthorizationType: COGNITO_USER_POOLS
      AuthorizerId: !GetAtt PoolAuth.AuthorizerId
      AuthorizationScopes: [orders/write]
      Integration: {{Type: AWS_PROXY, IntegrationHttpMethod: POST, Uri: {FN_URI}}}
  Deployment:
    Type: AWS::ApiGateway::Deployment
    Properties: {{RestApiId: !Ref Api, StageName: prod}}
"""


def test_raw_rest_authorizers(tmp_path: Path) -> None:
    app = load_template(write(tmp_path, REST_RESOURCES))
    found = api(app, "Api")
    token = Authorizer(
        name="TokenAuth",
        type=AuthorizerType.TOKEN,
        function_name="AuthFn",
        identity_sources=("method.request.header.Authorization",),
        validation_expression="^allow",
        ttl_s=0,
    )
    pool = Authorizer(
        name="PoolAuth",
        type=AuthorizerType.COGNITO_USER_POOLS,
        identity_sources=("method.request.header.X-Id-Token",),
        provider_arns=(POOL,),
    )
    # `!GetAtt X.AuthorizerId` names the authorizer as `!Ref X` does.
    assert dict(found.management.authorizers) == {
        "TokenAuth": token,
        "PoolAuth": pool,
        "PoolAuth.AuthorizerId": pool,
    }
    assert access(found) == {
        "GET /": ("CUSTOM", "TokenAuth", ()),
        "POST /": ("COGNITO_USER_POOLS", "PoolAuth.AuthorizerId", ("orders/write",)),
    }
    assert app.warnings == ()


HTTP_RESOURCES = f"""\
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {{Name: api, ProtocolType: HTTP}}
  Jwt:
    Type: AWS::ApiGatewayV2::Authorizer
    Properties:
      ApiId: !Ref Api
      Name: jwt
      AuthorizerType: JWT
      IdentitySource: [$request.header.Authorization]
      JwtConfiguration: {{Issuer: "https://issuer.example", Audience: [app]}}
  Lam:
    Type: AWS::ApiGatewayV2::Authorizer
    Properties:
      ApiId: !Ref Api
      Name: lam
      AuthorizerType: REQUEST
      AuthorizerUri: {AUTH_URI}
      AuthorizerPayloadFormatVersion: "2.0"
      EnableSimpleResponses: true
      IdentitySource: [$request.header.X-Key, $context.routeKey]
      AuthorizerResultTtlInSeconds: 120
  Integ:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !GetAtt Fn.Arn
      PayloadFormatVersion: "2.0"
  Read:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: GET /items
      AuthorizationType: JWT
      AuthorizerId: !Ref Jwt
      AuthorizationScopes: [items/read]
      Target: !Sub integrations/${{Integ}}
  Write:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: POST /items
      AuthorizationType: CUSTOM
      AuthorizerId: !Ref Lam
      Target: !Sub integrations/${{Integ}}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {{ApiId: !Ref Api, StageName: $default, AutoDeploy: true}}
"""


def test_raw_http_authorizers(tmp_path: Path) -> None:
    app = load_template(write(tmp_path, HTTP_RESOURCES))
    found = api(app, "Api")
    assert dict(found.management.authorizers) == {
        "Jwt": Authorizer(
            name="Jwt",
            type=AuthorizerType.JWT,
            identity_sources=("$request.header.Authorization",),
            issuer="https://issuer.example",
            audience=("app",),
        ),
        "Lam": Authorizer(
            name="Lam",
            type=AuthorizerType.REQUEST,
            function_name="AuthFn",
            identity_sources=("$request.header.X-Key", "$context.routeKey"),
            ttl_s=120,
            payload_format_version="2.0",
            simple_responses=True,
        ),
    }
    assert access(found) == {
        "GET /items": ("JWT", "Jwt", ("items/read",)),
        "POST /items": ("CUSTOM", "Lam", ()),
    }
    assert app.warnings == ()


def test_openapi_body_authorizer_with_explicit_identity_source(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties:
      Body:
        swagger: "2.0"
        info: {{title: api}}
        securityDefinitions:
          Mine:
            type: apiKey
            name: Unused
            in: header
            x-amazon-apigateway-authtype: custom
            x-amazon-apigateway-authorizer:
              type: request
              authorizerUri: {AUTH_URI}
              identitySource: "method.request.header.A, stageVariables.b, context.httpMethod"
        paths:
          /x:
            get:
              security: [{{Mine: []}}]
              x-amazon-apigateway-integration: {{type: aws_proxy, httpMethod: POST, uri: {FN_URI}}}
  Deployment:
    Type: AWS::ApiGateway::Deployment
    Properties: {{RestApiId: !Ref Api, StageName: prod}}
""",
    )
    found = api(load_template(path), "Api")
    assert found.management.authorizers["Mine"] == Authorizer(
        name="Mine",
        type=AuthorizerType.REQUEST,
        function_name="AuthFn",
        identity_sources=("method.request.header.A", "stageVariables.b", "context.httpMethod"),
    )


def _replace(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


@pytest.mark.parametrize(
    ("resources", "where", "message"),
    [
        pytest.param(
            _replace(REST_RESOURCES, "AuthorizerId: !Ref TokenAuth", "AuthorizerId: Nope"),
            "resource Get: property AuthorizerId",
            "route GET / names authorizer Nope, which Api does not have",
            id="unknown-authorizer",
        ),
        pytest.param(
            _replace(REST_RESOURCES, "      AuthorizerId: !Ref TokenAuth\n", ""),
            "resource Get: property AuthorizationType",
            "route GET / has AuthorizationType CUSTOM but no authorizer",
            id="custom-without-authorizer",
        ),
        pytest.param(
            _replace(
                REST_RESOURCES, "AuthorizationType: CUSTOM", "AuthorizationType: COGNITO_USER_POOLS"
            ),
            "resource Get: property AuthorizerId",
            "route GET / has AuthorizationType COGNITO_USER_POOLS, but TokenAuth is a TOKEN"
            " authorizer (CUSTOM)",
            id="type-mismatch",
        ),
        pytest.param(
            _replace(REST_RESOURCES, "Type: TOKEN", "Type: JWT"),
            "resource TokenAuth: property Type",
            "authorizer type JWT is not one of TOKEN, REQUEST, COGNITO_USER_POOLS",
            id="jwt-on-rest",
        ),
        pytest.param(
            _replace(
                REST_RESOURCES,
                "IdentitySource: method.request.header.Authorization",
                "IdentitySource: method.request.querystring.token",
            ),
            "resource TokenAuth: property IdentitySource",
            "a TOKEN authorizer reads one header (method.request.header.X)",
            id="token-from-query",
        ),
        pytest.param(
            _replace(
                REST_RESOURCES,
                "AuthorizerResultTtlInSeconds: 0",
                "AuthorizerResultTtlInSeconds: 7200",
            ),
            "resource TokenAuth: property AuthorizerResultTtlInSeconds",
            "7200 is above the maximum, 3600",
            id="ttl-too-long",
        ),
        pytest.param(
            _replace(
                REST_RESOURCES,
                "${AuthFn.Arn}",
                "arn:aws:lambda:us-east-1:123456789012:function:Gone",
            ),
            "resource TokenAuth: property AuthorizerUri",
            "function Gone is not defined in this template",
            id="unknown-function",
        ),
        pytest.param(
            _replace(
                HTTP_RESOURCES,
                'AuthorizerPayloadFormatVersion: "2.0"',
                'AuthorizerPayloadFormatVersion: "1.0"',
            ),
            "resource Lam: property EnableSimpleResponses",
            "simple responses need payload format version 2.0",
            id="simple-needs-2.0",
        ),
        pytest.param(
            _replace(HTTP_RESOURCES, 'Issuer: "https://issuer.example", ', ""),
            "resource Jwt: property JwtConfiguration.Issuer",
            "a JWT authorizer needs an issuer",
            id="jwt-without-issuer",
        ),
        pytest.param(
            _replace(HTTP_RESOURCES, "$request.header.X-Key", "header.X-Key"),
            "resource Lam: property IdentitySource",
            "identity source header.X-Key must start with $request. or $stageVariables. or $context.",
            id="bad-identity-source",
        ),
        pytest.param(
            _replace(HTTP_RESOURCES, "AuthorizerId: !Ref Jwt", "AuthorizerId: !Ref Lam"),
            "resource Read: property AuthorizerId",
            "route GET /items has AuthorizationType JWT, but Lam is a REQUEST authorizer (CUSTOM)",
            id="http-type-mismatch",
        ),
    ],
)
def test_errors_name_file_resource_and_property(
    tmp_path: Path, resources: str, where: str, message: str
) -> None:
    path = write(tmp_path, resources)
    error = load_error(path)
    assert error == f"{path}: {where}: {message}"
    assert "\n" not in error


def test_openapi_route_naming_a_missing_authorizer(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Body:
        openapi: 3.0.1
        info: {{title: api}}
        components:
          securitySchemes:
            Ghost: {{type: oauth2}}
            Jwt:
              type: oauth2
              x-amazon-apigateway-authorizer:
                type: jwt
                jwtConfiguration: {{issuer: "https://issuer.example", audience: [a]}}
        paths:
          /x:
            get:
              security: [{{Jwt: []}}]
              x-amazon-apigateway-integration: {{type: aws_proxy, httpMethod: POST, uri: {FN_URI}, payloadFormatVersion: "2.0"}}
""",
    )
    found = api(load_template(path), "Api")
    # A scheme without API Gateway's extension is plain OpenAPI, not an authorizer.
    assert list(found.management.authorizers) == ["Jwt"]
    assert access(found) == {"GET /x": ("JWT", "Jwt", ())}
