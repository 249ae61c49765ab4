"""IAM (`AWS_IAM`) routes over real HTTP: requests signed by botocore's SigV4 signer, sent by httpx.

A REST API and an HTTP API whose routes default to AWS_IAM, served by a node configured with
one credential. Every refusal is checked for AWS's exact status, body and error type.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import botocore.auth
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from typer.testing import CliRunner

from fogbank import cli
from fogbank.config import NodeConfig
from fogbank.model import load_template

from ..conftest import NodeThread
from .auth_apps import write_app
from .conftest import EventLog, scratch_dir, serving

KEY, SECRET = "AKIDFOGBANKTEST", "s3cr3t/Key+with=signs"
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your"
    " AWS Secret Access Key and signing method. Consult the service documentation for details."
)
STAMP = r"\d{8}T\d{6}Z"

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Rest:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Auth: {DefaultAuthorizer: AWS_IAM}
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth: {EnableIamAuthorizer: true, DefaultAuthorizer: AWS_IAM}
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: echo.handler
      CodeUri: echo/
      Events:
        RestGet: {Type: Api, Properties: {RestApiId: !Ref Rest, Path: "/things/{id}", Method: get}}
        RestPost: {Type: Api, Properties: {RestApiId: !Ref Rest, Path: /things, Method: post}}
        HttpPost: {Type: HttpApi, Properties: {ApiId: !Ref Http, Path: /things, Method: post}}
"""


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    with scratch_dir("fogbank-auth-iam-") as path:
        write_app(path, TEMPLATE)
        yield path


@pytest.fixture(scope="module")
def base(root: Path) -> Iterator[str]:
    config = NodeConfig(
        port=0, control_port=0, state_dir=root / "state", iam_credentials={KEY: SECRET}
    )
    node = NodeThread(config, load_template(root / "template.yaml")).start()
    assert node.node is not None
    yield node.node.url
    node.stop()


def signed_headers(
    method: str,
    url: str,
    body: bytes = b"",
    *,
    key: str = KEY,
    secret: str = SECRET,
    token: str | None = None,
    at: datetime.datetime | None = None,
) -> dict[str, str]:
    """The headers botocore's signer adds for this request (signed at `at`, default now)."""
    request = AWSRequest(method=method, url=url, data=body)
    signer = SigV4Auth(Credentials(key, secret, token), "execute-api", "us-east-1")
    if at is None:
        signer.add_auth(request)
    else:
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at):
            signer.add_auth(request)
    return dict(request.headers.items())


def send(method: str, url: str, body: bytes = b"", **sign: object) -> httpx.Response:
    headers = signed_headers(method, url, body, **sign)  # type: ignore[arg-type]
    return httpx.request(method, url, content=body, headers=headers)


def test_rest_signed_request_names_the_caller(base: str, proxy_events: EventLog) -> None:
    url = f"{base}/prod/things/7?b=2&a=1"
    response = send("GET", url)
    assert (response.status_code, response.json()) == (200, {"ok": True})
    context = proxy_events.last("rest_event")["requestContext"]
    identity = context["identity"]
    assert (identity["accessKey"], identity["accountId"]) == (KEY, "123456789012")
    assert (identity["caller"], identity["user"]) == (KEY, KEY)
    assert identity["userArn"] == f"arn:aws:iam::123456789012:user/{KEY}"
    assert "authorizer" not in context


def test_http_signed_post_with_body_and_session_token(base: str, proxy_events: EventLog) -> None:
    url = f"{base}/things"
    response = send("POST", url, b'{"name": "lamp"}', token="a-session-token")
    assert response.status_code == 200
    iam = proxy_events.last("http_event")["requestContext"]["authorizer"]["iam"]
    assert iam == {
        "accessKey": KEY,
        "accountId": "123456789012",
        "callerId": KEY,
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": f"arn:aws:iam::123456789012:user/{KEY}",
        "userId": KEY,
    }


def test_rest_tampered_body_gets_the_long_mismatch_message(base: str) -> None:
    url = f"{base}/prod/things"
    headers = signed_headers("POST", url, b'{"amount": 1}')
    response = httpx.post(url, content=b'{"amount": 1000}', headers=headers)
    assert response.status_code == 403
    message = response.json()["message"]
    assert message.startswith(MISMATCH + "\n\nThe Canonical String for this request should have")
    assert "\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n" in message
    assert response.headers["x-amzn-errortype"] == "InvalidSignatureException"


def test_http_tampered_body_gets_the_short_message(base: str) -> None:
    url = f"{base}/things"
    headers = signed_headers("POST", url, b"{}")
    response = httpx.post(url, content=b'{"x": 1}', headers=headers)
    assert (response.status_code, response.json()) == (403, {"message": MISMATCH})


def test_tampered_query_fails(base: str) -> None:
    headers = signed_headers("GET", f"{base}/prod/things/7?page=1")
    response = httpx.get(f"{base}/prod/things/7?page=2", headers=headers)
    assert response.status_code == 403
    assert response.json()["message"].startswith(MISMATCH)


def test_wrong_secret_fails(base: str) -> None:
    response = send("GET", f"{base}/prod/things/7", secret="not-the-secret")
    assert response.status_code == 403
    assert response.json()["message"].startswith(MISMATCH)


def test_unknown_access_key(base: str) -> None:
    response = send("GET", f"{base}/prod/things/7", key="AKIDNOBODY")
    assert response.status_code == 403
    assert response.json() == {"message": "The security token included in the request is invalid."}
    assert response.headers["x-amzn-errortype"] == "UnrecognizedClientException"


def test_expired_signature(base: str) -> None:
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=20)
    response = send("GET", f"{base}/prod/things/7", at=long_ago)
    assert response.status_code == 403
    expected = rf"Signature expired: {STAMP} is now earlier than {STAMP} \({STAMP} - 15 min\.\)"
    assert re.fullmatch(expected, response.json()["message"])
    assert response.headers["x-amzn-errortype"] == "InvalidSignatureException"


def test_signature_from_the_future(base: str) -> None:
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=20)
    response = send("GET", f"{base}/prod/things/7", at=later)
    assert response.status_code == 403
    expected = (
        rf"Signature not yet current: {STAMP} is still later than {STAMP} \({STAMP} \+ 15 min\.\)"
    )
    assert re.fullmatch(expected, response.json()["message"])


def test_unsigned_rest_request_is_missing_a_token(base: str) -> None:
    response = httpx.get(f"{base}/prod/things/7")
    assert (response.status_code, response.json()) == (
        403,
        {"message": "Missing Authentication Token"},
    )
    assert response.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"


def test_unsigned_http_request_is_forbidden(base: str) -> None:
    response = httpx.post(f"{base}/things", content=b"{}")
    assert (response.status_code, response.json()) == (403, {"message": "Forbidden"})


def test_a_bearer_token_is_an_incomplete_signature(base: str) -> None:
    response = httpx.get(f"{base}/prod/things/7", headers={"authorization": "Bearer abc"})
    assert response.status_code == 403
    assert response.json() == {
        "message": "Authorization header requires 'Credential' parameter. Authorization header"
        " requires 'Signature' parameter. Authorization header requires 'SignedHeaders'"
        " parameter. Authorization header requires existence of either a 'X-Amz-Date' or a"
        " 'Date' header. Authorization=Bearer abc"
    }
    assert response.headers["x-amzn-errortype"] == "IncompleteSignatureException"


def test_a_signature_for_another_service_is_refused(base: str) -> None:
    url = f"{base}/prod/things/7"
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(KEY, SECRET), "lambda", "us-east-1").add_auth(request)
    response = httpx.get(url, headers=dict(request.headers.items()))
    assert response.status_code == 403
    assert response.json()["message"].startswith("Credential should be scoped to correct service")


def test_default_credentials_are_fogbank_fogbank(root: Path) -> None:
    with (
        scratch_dir("fogbank-auth-iam-default-") as state,
        serving(root / "template.yaml", state) as served,
    ):
        url = f"{served.base}/prod/things/1"
        assert send("GET", url, key="fogbank", secret="fogbank").status_code == 200
        assert send("GET", url).status_code == 403


def test_up_refuses_a_malformed_iam_credential(root: Path) -> None:
    result = CliRunner().invoke(
        cli.app, ["up", "--template", str(root / "template.yaml"), "--iam-credentials", "nosecret"]
    )
    assert result.exit_code == 2
    assert "--iam-credentials: expected KEY=VALUE, got 'nosecret'" in result.output
