"""fogbank's rows of `bench/gateway.py`: one `fogbank up` serving one generated SAM template.

Every route answers with the same hello-world handler (`_peers.LAMBDA_HANDLER`). The plain rows
are the baselines; each API-management row adds one feature, on an API of its own:

- fogbank-http, fogbank-rest: `GET /hello` on SAM's implicit HTTP API (payload 2.0) and REST API
  (payload 1.0, stage Prod): the plain routes;
- fogbank-key: a REST API whose methods require an API key (`x-api-key`), in a usage plan with a
  throttle and a daily quota, and a stage method throttle, all far above what a run can reach;
- fogbank-cache: a REST stage with its cache on, `GET /hello` cached for 300 s; the probe fills
  the entry, so every measured request is a hit (its own function, which must run once);
- fogbank-jwt: an HTTP API JWT authorizer (stage `jwt`) whose issuer is a local HTTP server this
  module runs in the bench's own process (pinned with it to wrk's core); an RS256 token valid for
  a day, minted here with PyJWT;
- fogbank-authorizer: a REST Lambda TOKEN authorizer with a 300 s result cache; its function must
  run once in the whole run.

A REST Cognito authorizer would compare with the REST plain route, but its issuer is
`cognito-idp.{region}.amazonaws.com` and a template cannot point it at a local JWKS; the JWT row
uses an HTTP API and is compared with the plain HTTP route.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from _peers import HOST, LAMBDA_HANDLER, Context, PeerError, Server, Target, free_port, request
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ROWS = (
    "fogbank-http",
    "fogbank-rest",
    "fogbank-key",
    "fogbank-cache",
    "fogbank-jwt",
    "fogbank-authorizer",
)

OVERHEAD: tuple[tuple[str, str, float], ...] = (
    ("fogbank-key", "fogbank-rest", 0.85),
    ("fogbank-cache", "fogbank-rest", 0.85),
    ("fogbank-cache", "fogbank-rest", 1.0),
    ("fogbank-jwt", "fogbank-http", 0.85),
    ("fogbank-authorizer", "fogbank-rest", 0.85),
)
"""(row, its plain route, goal for row rps ÷ plain rps): within 15%, and a cache hit at least as
fast as the plain route."""

API_KEY = "bench-api-key-0123456789abcdef"
AUTHORIZER_TOKEN = "allow-bench"
AUDIENCE = "fogbank-bench"
KEY_ID = "bench-rsa-1"
# Far above what one core serves, so that they never answer 429 during a run (the account's
# limit is raised to the same with `--account-throttle`).
HIGH_RATE, HIGH_BURST, HIGH_QUOTA = 1_000_000, 1_000_000, 1_000_000_000

AUTHORIZER_HANDLER = """\
def handler(event, context):
    if event["authorizationToken"] != "allow-bench":
        raise Exception("Unauthorized")
    api, stage = event["methodArn"].split("/")[:2]
    statement = {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": api + "/" + stage + "/GET/*"}
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    return {"principalId": "bench", "policyDocument": policy}
"""

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: Gateway benchmark - one hello world behind plain routes and API management
Resources:
  HelloFunction:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.11
      Handler: app.handler
      CodeUri: src
      Events:
        HttpHello:
          Type: HttpApi
          Properties:
            Path: /hello
            Method: GET
            PayloadFormatVersion: "2.0"
        RestHello:
          Type: Api
          Properties:
            Path: /hello
            Method: GET
        KeyHello:
          Type: Api
          Properties: {RestApiId: !Ref Keyed, Path: /hello, Method: GET}
        JwtHello:
          Type: HttpApi
          Properties: {ApiId: !Ref Jwt, Path: /hello, Method: GET, PayloadFormatVersion: "2.0"}
        AuthorizerHello:
          Type: Api
          Properties: {RestApiId: !Ref Guarded, Path: /hello, Method: GET}
  CachedHello:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.11
      Handler: app.handler
      CodeUri: src
      Events:
        CacheHello:
          Type: Api
          Properties: {RestApiId: !Ref Cached, Path: /hello, Method: GET}
  TokenAuthorizer:
    Type: AWS::Serverless::Function
    Properties: {Runtime: python3.11, Handler: authorizer.handler, CodeUri: src}
  Keyed:
    Type: AWS::Serverless::Api
    Properties:
      StageName: key
      Auth: {ApiKeyRequired: true}
      MethodSettings:
        - {ResourcePath: /~1hello, HttpMethod: GET, ThrottlingRateLimit: <RATE>, ThrottlingBurstLimit: <BURST>}
  Plan:
    Type: AWS::ApiGateway::UsagePlan
    Properties:
      ApiStages: [{ApiId: !Ref Keyed, Stage: key}]
      Throttle: {RateLimit: <RATE>, BurstLimit: <BURST>}
      Quota: {Limit: <QUOTA>, Period: DAY}
  BenchKey:
    Type: AWS::ApiGateway::ApiKey
    Properties: {Value: <API_KEY>, Enabled: true}
  BenchKeyInPlan:
    Type: AWS::ApiGateway::UsagePlanKey
    Properties: {KeyId: !Ref BenchKey, KeyType: API_KEY, UsagePlanId: !Ref Plan}
  Cached:
    Type: AWS::Serverless::Api
    Properties:
      StageName: cache
      CacheClusterEnabled: true
      CacheClusterSize: "0.5"
      MethodSettings:
        - {ResourcePath: /~1hello, HttpMethod: GET, CachingEnabled: true, CacheTtlInSeconds: 300}
  Guarded:
    Type: AWS::Serverless::Api
    Properties:
      StageName: authorizer
      Auth:
        DefaultAuthorizer: Token
        Authorizers:
          Token:
            FunctionArn: !GetAtt TokenAuthorizer.Arn
            Identity: {Header: Authorization, ReauthorizeEvery: 300}
  Jwt:
    Type: AWS::Serverless::HttpApi
    Properties:
      StageName: jwt
      Auth:
        DefaultAuthorizer: Local
        Authorizers:
          Local:
            IdentitySource: $request.header.Authorization
            JwtConfiguration: {issuer: "<ISSUER>", audience: [<AUDIENCE>]}
"""


def template(issuer: str) -> str:
    values = {
        "RATE": str(HIGH_RATE),
        "BURST": str(HIGH_BURST),
        "QUOTA": str(HIGH_QUOTA),
        "API_KEY": API_KEY,
        "ISSUER": issuer,
        "AUDIENCE": AUDIENCE,
    }
    return re.sub(r"<([A-Z_]+)>", lambda found: values[found[1]], TEMPLATE)


class Issuer(ThreadingHTTPServer):
    """A local OpenID issuer: discovery and a JWKS of one RSA key, served from a thread.

    The gateway fetches the keys once (it keeps them an hour), so the thread is idle while wrk
    runs; it runs in the bench's process, on wrk's core.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((HOST, 0), _IssuerHandler)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = json.dumps({"keys": [{**jwk, "kid": KEY_ID, "alg": "RS256", "use": "sig"}]})
        self.fetches = 0
        self._thread = threading.Thread(target=self.serve_forever, name="issuer", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}"

    def token(self, key: rsa.RSAPrivateKey | None = None) -> str:
        """An RS256 token for the bench's audience, valid for a day (signed by `key` if given)."""
        now = int(time.time())
        claims = {"iss": self.url, "aud": AUDIENCE, "sub": "bench", "iat": now, "exp": now + 86400}
        return jwt.encode(claims, key or self.key, "RS256", headers={"kid": KEY_ID})

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _IssuerHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, Issuer)
        if self.path == "/.well-known/openid-configuration":
            status = 200
            body = json.dumps({"issuer": server.url, "jwks_uri": f"{server.url}/jwks.json"})
        elif self.path == "/jwks.json":
            status, body = 200, server.jwks
            server.fetches += 1
        else:
            status, body = 404, '{"message": "no such document"}'
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


Headers = tuple[tuple[str, str], ...]
Check = Callable[[], str]


def _answers(url: str, headers: Headers, status: int, what: str) -> str:
    """`what: status` if GET `url` with `headers` answers `status`, else `PeerError`."""
    try:
        got, body = request(url, headers)
    except OSError as exc:
        raise PeerError(f"check '{what}': {exc!r}") from exc
    if got != status:
        raise PeerError(f"check '{what}': expected {status}, got {got} {body[:100]!r}")
    return f"{what}: {status}"


def _refuses(url: str, allowed: tuple[Headers, str], *refused: tuple[Headers, int, str]) -> Check:
    """A check that `url` answers each refused request's status, and 200 to the allowed one."""

    def check() -> str:
        notes = [_answers(url, headers, status, what) for headers, status, what in refused]
        return ", ".join([*notes, _answers(url, allowed[0], 200, allowed[1])])

    return check


def _invocations(log: Path) -> int:
    """How many times a function ran: the START lines of its log."""
    try:
        return log.read_text(errors="replace").count("START RequestId:")
    except FileNotFoundError:
        return 0


def _ran_once(log: Path, function: str) -> str:
    time.sleep(0.3)  # the node flushes function logs every 50 ms
    runs = _invocations(log)
    if runs != 1:
        raise PeerError(f"{function} ran {runs} times, not once (START lines in {log.name})")
    return f"{function} ran once in the whole run (1 START line in its log)"


def fogbank(ctx: Context) -> Server:
    issuer = Issuer()
    ctx.helpers.callback(issuer.close)
    root, argv = _project(ctx, "fogbank", issuer.url)
    state = root / "state"
    port, control = free_port(), free_port()
    argv += ["--port", str(port), "--control-port", str(control), "--state-dir", str(state)]
    # The account quota (10,000 rps on AWS) would cap cache hits below their own speed: raise it,
    # so every row measures the gateway's work and not that quota.
    argv += ["--account-throttle", f"{HIGH_RATE}:{HIGH_BURST}", "--no-reload"]
    base = f"http://{HOST}:{port}"
    logs = state / "logs"
    key = (("x-api-key", API_KEY),)
    bearer = (("authorization", f"Bearer {issuer.token()}"),)
    forged = (("authorization", f"Bearer {issuer.token(rsa.generate_private_key(65537, 2048))}"),)
    token = (("authorization", AUTHORIZER_TOKEN),)
    key_url, jwt_url = f"{base}/key/hello", f"{base}/jwt/hello"
    authorizer_url = f"{base}/authorizer/hello"
    targets = (
        Target("fogbank-http", f"{base}/hello"),
        # SAM's implicit REST API is deployed to a stage named Prod.
        Target("fogbank-rest", f"{base}/Prod/hello"),
        Target(
            "fogbank-key",
            key_url,
            headers=key,
            before=_refuses(key_url, (key, "with it"), ((), 403, "without the API key")),
        ),
        Target(
            "fogbank-cache",
            f"{base}/cache/hello",
            after=lambda: _ran_once(logs / "CachedHello.log", "CachedHello"),
        ),
        Target(
            "fogbank-jwt",
            jwt_url,
            headers=bearer,
            before=_refuses(
                jwt_url,
                (bearer, "the bench's RS256 token"),
                ((), 401, "without a token"),
                (forged, 401, "a token signed by another key"),
            ),
            after=lambda: f"the issuer's keys were fetched {issuer.fetches} time(s)",
        ),
        Target(
            "fogbank-authorizer",
            authorizer_url,
            headers=token,
            before=_refuses(authorizer_url, (token, "with one"), ((), 401, "without a token")),
            after=lambda: _ran_once(logs / "TokenAuthorizer.log", "TokenAuthorizer"),
        ),
    )
    return Server("fogbank", argv, root, targets, control, start_timeout=60.0)


WARM_ROWS = ("fogbank-warm",)


def _project(ctx: Context, name: str, issuer: str) -> tuple[Path, list[str]]:
    """The bench's template and handlers in a folder of their own, and `fogbank up` for them."""
    exe = Path(sys.executable).with_name("fogbank")
    if not exe.exists():
        raise PeerError(f"{exe.name} is not installed next to {Path(sys.executable).name}")
    root = ctx.work / name
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "app.py").write_text(LAMBDA_HANDLER)
    (root / "src" / "authorizer.py").write_text(AUTHORIZER_HANDLER)
    (root / "template.yaml").write_text(template(issuer))
    return root, [*ctx.on_cores(0), str(exe), "up", "-t", str(root / "template.yaml")]


def fogbank_warm(ctx: Context) -> Server:
    """The plain HTTP API route again, from a `fogbank up --warm-first` of its own (its JWT
    route, never requested, names an issuer that is not there)."""
    root, argv = _project(ctx, "fogbank-warm", f"http://{HOST}:9")
    port, control = free_port(), free_port()
    argv += ["--warm-first", "--port", str(port), "--control-port", str(control)]
    argv += ["--state-dir", str(root / "state"), "--no-reload"]
    argv += ["--account-throttle", f"{HIGH_RATE}:{HIGH_BURST}"]
    target = Target("fogbank-warm", f"http://{HOST}:{port}/hello")
    return Server("fogbank-warm", argv, root, (target,), control, start_timeout=60.0)
