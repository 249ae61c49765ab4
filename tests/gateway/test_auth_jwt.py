"""JWT authorizers (HTTP API) and Cognito user-pool authorizers (REST) over real HTTP.

A real local OpenID provider runs in a thread: a discovery document and a JWKS of keys generated
here with `cryptography`, which can rotate, break, or answer slowly. Tokens are minted with PyJWT.
The node's JWKS client gets a clock the tests move, so the refetch floor is tested without
sleeping.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from fogbank.config import NodeConfig
from fogbank.gateway._jwks import JwksClient, KeysUnavailable, UnknownKey
from fogbank.model import App, AuthorizerType, load_template

from ..conftest import NodeThread
from .auth_apps import write_app
from .conftest import EventLog, scratch_dir

AUDIENCE = "fogbank-tests"
POOL_ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_fogbank"

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Local
        Authorizers:
          Local:
            IdentitySource: $request.header.Authorization
            JwtConfiguration: {issuer: "ISSUER", audience: [fogbank-tests]}
          Down:
            IdentitySource: $request.header.Authorization
            JwtConfiguration: {issuer: "DOWN", audience: [fogbank-tests]}
          Slow:
            IdentitySource: $request.header.Authorization
            JwtConfiguration: {issuer: "ISSUER/slow", audience: [fogbank-tests]}
  Rest:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Auth:
        DefaultAuthorizer: Pool
        Authorizers:
          Pool:
            UserPoolArn: arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_fogbank
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: echo.handler
      CodeUri: echo/
      Events:
        Me: {Type: HttpApi, Properties: {ApiId: !Ref Http, Path: /me, Method: get}}
        Admin:
          Type: HttpApi
          Properties: {ApiId: !Ref Http, Path: /admin, Method: get, Auth: {AuthorizationScopes: [admin]}}
        V1:
          Type: HttpApi
          Properties: {ApiId: !Ref Http, Path: /v1, Method: get, PayloadFormatVersion: "1.0"}
        Open:
          Type: HttpApi
          Properties: {ApiId: !Ref Http, Path: /open, Method: get, Auth: {Authorizer: NONE}}
        DownRoute:
          Type: HttpApi
          Properties: {ApiId: !Ref Http, Path: /down, Method: get, Auth: {Authorizer: Down}}
        SlowRoute:
          Type: HttpApi
          Properties: {ApiId: !Ref Http, Path: /slow, Method: get, Auth: {Authorizer: Slow}}
        Profile: {Type: Api, Properties: {RestApiId: !Ref Rest, Path: /profile, Method: get}}
        Orders:
          Type: Api
          Properties:
            RestApiId: !Ref Rest
            Path: /orders
            Method: get
            Auth: {Authorizer: Pool, AuthorizationScopes: [orders/read]}
"""


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: Any

    @classmethod
    def rsa(cls, kid: str) -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        codec = RSAAlgorithm if self.algorithm.startswith("RS") else ECAlgorithm
        jwk: dict[str, Any] = codec.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def token(self, claims: dict[str, Any], kid: str | None = None) -> str:
        return jwt.encode(claims, self.private, self.algorithm, headers={"kid": kid or self.kid})


class Issuer(ThreadingHTTPServer):
    """A local identity provider: discovery and keys; `/slow/...` answers only when released."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _IssuerHandler)
        self.keys: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.release = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def key_fetches(self) -> int:
        return sum(path.endswith(("/keys", "/jwks.json")) for path in self.paths)


class _IssuerHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, Issuer)
        server.paths.append(self.path)
        status: int = 404
        body: dict[str, Any] = {"message": "no such document"}
        if self.path.startswith("/slow/"):
            server.release.wait(10)  # bounded: the test releases it at the end anyway
        if self.path.startswith("/broken/"):
            status, body = 500, {"message": "broken"}
        elif self.path.endswith("/.well-known/openid-configuration") and "/plain" not in self.path:
            prefix = self.path.removesuffix("/.well-known/openid-configuration")
            status, body = 200, {"issuer": server.url, "jwks_uri": f"{server.url}{prefix}/keys"}
        elif self.path.endswith(("/keys", "/.well-known/jwks.json")):
            status, body = 200, {"keys": server.keys}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    issuer: Issuer
    base: str
    rsa: SigningKey
    ec: SigningKey
    clock: FakeClock
    node: NodeThread
    down: str


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    issuer = Issuer()
    issuer.thread.start()
    keys = SigningKey.rsa("rsa-1"), SigningKey.ec("ec-1")
    issuer.keys = [key.jwk() for key in keys]
    down = f"http://127.0.0.1:{_closed_port()}"
    with scratch_dir("fogbank-auth-jwt-") as root:
        text = TEMPLATE.replace("ISSUER", issuer.url).replace("DOWN", down)
        app = _pool_keys(load_template(write_app(root, text)), f"{issuer.url}/keys")
        node = NodeThread(NodeConfig(port=0, control_port=0, state_dir=root / "state"), app)
        node.start()
        assert node.node is not None
        clock = FakeClock(1000.0)
        jwks = node.node.gateway.authenticate.jwks
        jwks.clock = clock
        jwks.timeout_s = 0.5  # keeps the slow-issuer test short; the default is 5 s
        try:
            yield World(issuer, node.node.url, keys[0], keys[1], clock, node, down)
        finally:
            issuer.release.set()
            node.stop()
            issuer.shutdown()
            issuer.server_close()


def _pool_keys(app: App, jwks_uri: str) -> App:
    """Point the Cognito authorizer at the local keys (the real pool is not reachable here)."""
    apis = {}
    for api_id, api in app.apis.items():
        authorizers = {
            name: replace(a, jwks_uri=jwks_uri)
            if a.type is AuthorizerType.COGNITO_USER_POOLS
            else a
            for name, a in api.management.authorizers.items()
        }
        apis[api_id] = replace(api, management=replace(api.management, authorizers=authorizers))
    return replace(app, apis=apis)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def claims(world: World, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": world.issuer.url, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 600}
    return {**base, **extra}


def get(world: World, path: str, token: str | None = None) -> httpx.Response:
    headers = {"authorization": token} if token is not None else {}
    return httpx.get(world.base + path, headers=headers, timeout=30)


def challenge(description: str, scope: str = "") -> str:
    return f'Bearer scope="{scope}" error="invalid_token" error_description="{description}"'


# HTTP API JWT authorizer


def test_valid_rs256_token_passes_its_claims(world: World, proxy_events: EventLog) -> None:
    token = world.rsa.token(claims(world, scope="read write", groups=["a", "b"], n=7))
    response = get(world, "/me", f"Bearer {token}")
    assert (response.status_code, response.json()) == (200, {"ok": True})
    found = proxy_events.last("http_event")["requestContext"]["authorizer"]["jwt"]
    assert found["scopes"] == ["read", "write"]
    assert found["claims"]["groups"] == "[a b]"
    assert (found["claims"]["n"], found["claims"]["sub"]) == ("7", "user-1")
    assert found["claims"]["exp"].isdigit()


def test_valid_es256_token_without_bearer_prefix(world: World) -> None:
    assert get(world, "/me", world.ec.token(claims(world))).status_code == 200


def test_payload_1_integration_gets_claims_at_the_top(world: World, proxy_events: EventLog) -> None:
    assert get(world, "/v1", world.rsa.token(claims(world))).status_code == 200
    authorizer = proxy_events.last("http_event_v1")["requestContext"]["authorizer"]
    assert authorizer["claims"]["aud"] == AUDIENCE
    assert authorizer["scopes"] is None


@pytest.mark.parametrize(
    ("change", "description"),
    [
        ({"exp": int(time.time()) - 60}, "the token has expired"),
        ({"nbf": int(time.time()) + 600}, "the token is not valid yet"),
        ({"iss": "https://someone-else.example"}, "the token does not have a valid issuer"),
        ({"aud": "another-app"}, "the token does not have a valid audience"),
        ({"aud": "another-app", "client_id": AUDIENCE}, "the token does not have a valid audience"),
    ],
    ids=["expired", "not-yet-valid", "wrong-issuer", "wrong-audience", "aud-wins-over-client-id"],
)
def test_refused_token_says_why(world: World, change: dict[str, Any], description: str) -> None:
    response = get(world, "/me", world.rsa.token(claims(world, **change)))
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert response.headers["www-authenticate"] == challenge(description)
    assert response.headers["apigw-requestid"]


def test_client_id_stands_in_for_a_missing_aud(world: World) -> None:
    payload = claims(world, client_id=AUDIENCE)
    del payload["aud"]
    assert get(world, "/me", world.rsa.token(payload)).status_code == 200


def test_bad_signature(world: World) -> None:
    impostor = SigningKey.rsa("rsa-1")  # same kid, other key
    response = get(world, "/me", impostor.token(claims(world)))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge("the token signature is invalid")


@pytest.mark.parametrize(
    ("token", "description"),
    [
        ("not.a.jwt", "the token is malformed"),
        ("garbage", "the token is malformed"),
        (
            jwt.encode({"sub": "x"}, "a-shared-secret-of-32-bytes-len!", "HS256", {"kid": "k"}),
            "signing method HS256 is invalid",
        ),
    ],
    ids=["not-base64", "one-segment", "hs256"],
)
def test_malformed_tokens(world: World, token: str, description: str) -> None:
    response = get(world, "/me", token)
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert response.headers["www-authenticate"] == challenge(description)


def test_missing_token_is_401_without_challenge(world: World) -> None:
    response = get(world, "/me")
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert "www-authenticate" not in response.headers


def test_route_scopes(world: World) -> None:
    reader = get(world, "/admin", world.rsa.token(claims(world, scope="read")))
    admin = get(world, "/admin", world.rsa.token(claims(world, scope="read admin")))
    scp = get(world, "/admin", world.rsa.token(claims(world, scp=["admin"])))
    assert (reader.status_code, reader.json()) == (403, {"message": "Forbidden"})
    assert reader.headers["www-authenticate"] == (
        'Bearer scope="admin" error="insufficient_scope"'
        ' error_description="the token does not have the required scopes"'
    )
    assert (admin.status_code, scp.status_code) == (200, 200)


def test_unknown_kid_refetches_keys_no_more_than_the_floor_allows(world: World) -> None:
    assert get(world, "/me", world.rsa.token(claims(world))).status_code == 200
    rotated = SigningKey.rsa("rsa-2")
    token = rotated.token(claims(world))
    world.clock.now += 31  # past the refetch floor: the unknown kid makes it look again
    fetches = world.issuer.key_fetches()
    refused = get(world, "/me", token)
    assert refused.headers["www-authenticate"] == challenge(
        "the signing key rsa-2 is unknown to the issuer"
    )
    assert world.issuer.key_fetches() == fetches + 1
    world.issuer.keys = [*world.issuer.keys, rotated.jwk()]
    # Within the floor a forged or new kid costs the issuer nothing.
    assert get(world, "/me", token).status_code == 401
    assert world.issuer.key_fetches() == fetches + 1
    world.clock.now += 31
    assert get(world, "/me", token).status_code == 200
    assert world.issuer.key_fetches() == fetches + 2
    # Keys fetched earlier still verify.
    assert get(world, "/me", world.ec.token(claims(world))).status_code == 200


def test_issuer_down_is_401_and_the_node_keeps_serving(world: World) -> None:
    token = world.rsa.token(claims(world, iss=world.down))
    response = get(world, "/down", token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge(
        "the signing keys of the issuer could not be fetched"
    )
    assert get(world, "/open").status_code == 200


def test_slow_issuer_is_401_and_other_requests_are_served_meanwhile(world: World) -> None:
    token = world.rsa.token(claims(world, iss=f"{world.issuer.url}/slow"))
    slow: list[httpx.Response] = []
    waiting = threading.Thread(target=lambda: slow.append(get(world, "/slow", token)))
    waiting.start()
    try:
        while not any(path.startswith("/slow/") for path in world.issuer.paths):
            time.sleep(0.01)
        assert get(world, "/open").status_code == 200  # while the JWKS fetch hangs
        waiting.join(30)
    finally:
        world.issuer.release.set()
    assert slow[0].status_code == 401
    assert slow[0].headers["www-authenticate"] == challenge(
        "the signing keys of the issuer could not be fetched"
    )


# REST Cognito user-pool authorizer


def pool_claims(world: World, use: str, **extra: Any) -> dict[str, Any]:
    now = 1_700_000_000
    expires = int(time.time()) + 600
    base = {"iss": POOL_ISSUER, "sub": "u-1", "token_use": use, "iat": now, "exp": expires}
    return {**base, **extra}


def test_cognito_id_token(world: World, proxy_events: EventLog) -> None:
    token = world.rsa.token(pool_claims(world, "id", aud="app-client", email_verified=True))
    response = httpx.get(f"{world.base}/prod/profile", headers={"authorization": token})
    assert response.status_code == 200
    found = proxy_events.last("rest_event")["requestContext"]["authorizer"]["claims"]
    assert (found["sub"], found["email_verified"], found["aud"]) == ("u-1", "true", "app-client")
    # REST writes `iat` and `exp` as Java dates.
    assert found["iat"] == "Tue Nov 14 22:13:20 UTC 2023"


def test_cognito_route_without_scopes_wants_an_id_token(world: World) -> None:
    token = world.rsa.token(pool_claims(world, "access", scope="orders/read"))
    response = httpx.get(f"{world.base}/prod/profile", headers={"authorization": token})
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert "www-authenticate" not in response.headers


def test_cognito_scopes_need_an_access_token_with_one_of_them(world: World) -> None:
    url = f"{world.base}/prod/orders"
    good = world.rsa.token(pool_claims(world, "access", scope="orders/read openid"))
    other = world.rsa.token(pool_claims(world, "access", scope="openid"))
    id_token = world.rsa.token(pool_claims(world, "id", aud="app-client"))
    assert httpx.get(url, headers={"authorization": f"Bearer {good}"}).status_code == 200
    for token in (other, id_token):
        response = httpx.get(url, headers={"authorization": token})
        assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})


def test_cognito_expired_token(world: World) -> None:
    token = world.rsa.token(pool_claims(world, "id", exp=int(time.time()) - 5))
    response = httpx.get(f"{world.base}/prod/profile", headers={"authorization": token})
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})


# The JWKS client on its own


def test_jwks_falls_back_to_well_known_jwks_json(world: World) -> None:
    async def fetch() -> str:
        client = JwksClient(clock=FakeClock(0.0))
        try:
            key = await client.key(f"{world.issuer.url}/plain", None, "ec-1")
        finally:
            await client.close()
        return str(key.key_id)

    assert asyncio.run(fetch()) == "ec-1"
    assert "/plain/.well-known/jwks.json" in world.issuer.paths


def test_jwks_failures_back_off_and_unknown_kids_are_reported(world: World) -> None:
    clock = FakeClock(0.0)

    async def attempts() -> list[str]:
        client = JwksClient(clock=clock)
        outcomes = []
        try:
            for advance in (0.0, 1.0, 5.0):
                clock.now += advance
                try:
                    await client.key(f"{world.issuer.url}/broken", None, "rsa-1")
                except KeysUnavailable:
                    outcomes.append(f"unavailable, {len(_broken(world))} requests")
            try:
                await client.key(world.issuer.url, None, "nobody")
            except UnknownKey:
                outcomes.append("unknown")
        finally:
            await client.close()
        return outcomes

    assert asyncio.run(attempts()) == [
        "unavailable, 2 requests",  # discovery fails, the jwks.json fallback fails
        "unavailable, 2 requests",  # within the back-off: nobody is asked
        "unavailable, 4 requests",
        "unknown",
    ]


def _broken(world: World) -> list[str]:
    return [path for path in world.issuer.paths if path.startswith("/broken/")]
