"""JWT authorizers (HTTP APIs) and Cognito user-pool authorizers (REST), checked locally.

A token passes when, in this order: it is a well-formed JWT (`Bearer ` prefix optional) signed with
RS256/384/512 or ES256/384/512; its `iss` is the authorizer's issuer (Cognito: one of the pools');
its `kid` names a key of that issuer's JWKS and the signature verifies with it; `exp` is in the
future and `nbf` / `iat`, when present, are not; its `aud` (or, without `aud`, its `client_id`) is
one of the authorizer's audiences (JWT authorizers only: Cognito pools accept every app client).
Then the route's scopes: at least one of them must be in the token's `scope` (space-separated) or
`scp` claim, and Cognito additionally wants an ID token on a route without scopes and an access
token on a route with some, as AWS does.

Refusals: HTTP APIs answer 401 with a `www-authenticate` header that says why (AWS documents
`Bearer scope="" error="invalid_token" error_description="the token does not have a valid
audience"`; fogbank words the other reasons the same way), and 403 `Forbidden` with
`error="insufficient_scope"` for missing scopes. REST Cognito authorizers answer a bare 401.

Claims reach the integration as API Gateway passes them: every value a string, arrays written
`[a b]` (HTTP APIs); REST Cognito writes `exp` and `iat` as Java dates (`Tue Mar 05 22:02:44 UTC
2019`).
"""

from __future__ import annotations

import collections
import time
from typing import Any

import jwt
import orjson

from fogbank.gateway._auth_common import (
    Clock,
    forbidden,
    identity_values,
    unauthorized,
)
from fogbank.gateway._errors import GatewayError
from fogbank.gateway._jwks import JwksClient, KeysUnavailable, UnknownKey
from fogbank.gateway._pipeline import Exchange
from fogbank.gateway._types import RouteMatch
from fogbank.model import ApiKind, Authorizer, AuthorizerType

ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"})
_DEFAULT_SOURCES = ("$request.header.Authorization",)
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# Verified signatures are remembered this long (under the JWKS cache's lifetime) and this many.
_VERIFIED_TTL_S = 300.0
_VERIFIED_MAX = 4096


class _Refused(Exception):
    """Why a token is refused, in the words of the `www-authenticate` header."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def cognito_issuer(pool_arn: str) -> str:
    """`arn:aws:cognito-idp:REGION:ACCOUNT:userpool/POOL` -> the pool's token issuer."""
    region = pool_arn.split(":")[3] if pool_arn.count(":") >= 5 else ""
    pool = pool_arn.rpartition("/")[2]
    return f"https://cognito-idp.{region}.amazonaws.com/{pool}"


class JwtAuthorizers:
    """Verifies bearer tokens against their issuers' keys; the clock decides expiry."""

    def __init__(self, jwks: JwksClient, clock: Clock = time.time) -> None:
        self.jwks = jwks
        self.clock = clock
        self._verified: collections.OrderedDict[str, tuple[float, dict[str, Any]]] = (
            collections.OrderedDict()
        )
        """Token -> (when, claims) for signatures already checked: clients resend one token for
        its whole life, and parsing and verifying it is most of an authorizer's cost. Times,
        issuer and audience are still checked on every request."""

    async def authorize(
        self, exchange: Exchange, match: RouteMatch, authorizer: Authorizer
    ) -> dict[str, Any]:
        cognito = authorizer.type is AuthorizerType.COGNITO_USER_POOLS
        required = match.route.authorization_scopes
        sources = authorizer.identity_sources or _DEFAULT_SOURCES
        values = identity_values(sources, exchange.request, match)
        if values is None:
            raise unauthorized()
        token = values[0]
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        try:
            claims = await self._verify(token, authorizer, cognito)
        except _Refused as refused:
            raise _refusal(cognito, required, refused.description) from None
        scopes = _scopes(claims)
        if cognito:
            wanted_use = "access" if required else "id"
            if claims.get("token_use", wanted_use) != wanted_use:
                raise unauthorized()
            if required and not set(required) & set(scopes or ()):
                raise unauthorized()
            return {"claims": _rest_claims(claims)}
        if required and not set(required) & set(scopes or ()):
            raise forbidden(
                _challenge(
                    required, "insufficient_scope", "the token does not have the required scopes"
                )
            )
        text = {str(k): _text(v) for k, v in claims.items()}
        if (
            match.route.integration.payload_format_version == "1.0"
            or match.api.kind is ApiKind.REST
        ):
            return {"claims": text, "scopes": scopes}
        return {"jwt": {"claims": text, "scopes": scopes}}

    async def _verify(self, token: str, authorizer: Authorizer, cognito: bool) -> dict[str, Any]:
        issuers = (
            [cognito_issuer(arn) for arn in authorizer.provider_arns]
            if cognito
            else [authorizer.issuer or ""]
        )
        seen = self._verified.get(token)
        if seen is not None and self.clock() - seen[0] < _VERIFIED_TTL_S:
            claims = seen[1]
            if claims.get("iss") not in issuers:
                raise _Refused("the token does not have a valid issuer")
            self._check_claims(claims, authorizer, cognito)
            return claims
        claims = await self._verify_signature(token, authorizer, issuers)
        self._verified[token] = (self.clock(), claims)
        if len(self._verified) > _VERIFIED_MAX:
            self._verified.popitem(last=False)
        self._check_claims(claims, authorizer, cognito)
        return claims

    def _check_claims(self, claims: dict[str, Any], authorizer: Authorizer, cognito: bool) -> None:
        self._check_times(claims)
        if not cognito and not _audience_ok(claims, authorizer.audience):
            raise _Refused("the token does not have a valid audience")

    async def _verify_signature(
        self, token: str, authorizer: Authorizer, issuers: list[str]
    ) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _Refused("the token is malformed") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALGORITHMS:
            raise _Refused(f"signing method {algorithm} is invalid")
        if not isinstance(kid, str) or not kid:
            raise _Refused("the token has no key id (kid)")
        issuer = unverified.get("iss")
        if issuer not in issuers:
            raise _Refused("the token does not have a valid issuer")
        try:
            key = await self.jwks.key(str(issuer), authorizer.jwks_uri, kid)
        except KeysUnavailable:
            raise _Refused("the signing keys of the issuer could not be fetched") from None
        except UnknownKey:
            raise _Refused(f"the signing key {kid} is unknown to the issuer") from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                # Times, issuer and audience are checked below, in AWS's order and words.
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise _Refused("the token signature is invalid") from None
        except jwt.PyJWTError:
            raise _Refused("the token is malformed") from None
        return claims

    def _check_times(self, claims: dict[str, Any]) -> None:
        # Checked here rather than by PyJWT so that the injected clock decides.
        now = self.clock()
        expires = claims.get("exp")
        if not isinstance(expires, int | float) or isinstance(expires, bool):
            raise _Refused("the token has no valid expiry (exp)")
        if now >= expires:
            raise _Refused("the token has expired")
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is not None and (not _number(value) or value > now):
                raise _Refused("the token is not valid yet")


def _refusal(cognito: bool, required: tuple[str, ...], description: str) -> GatewayError:
    if cognito:
        return unauthorized()
    return unauthorized(_challenge(required, "invalid_token", description))


def _challenge(scopes: tuple[str, ...], error: str, description: str) -> str:
    return f'Bearer scope="{" ".join(scopes)}" error="{error}" error_description="{description}"'


def _audience_ok(claims: dict[str, Any], audience: tuple[str, ...]) -> bool:
    # AWS reads `client_id` only when the token has no `aud` at all.
    value = claims["aud"] if "aud" in claims else claims.get("client_id")
    given = value if isinstance(value, list) else [value]
    return any(isinstance(item, str) and item in audience for item in given)


def _scopes(claims: dict[str, Any]) -> list[str] | None:
    value = claims.get("scope", claims.get("scp"))
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [str(item) for item in value]
    return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: Any) -> str:
    """A claim as HTTP APIs pass it: text, with arrays as `[a b]`."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + " ".join(_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def _rest_claims(claims: dict[str, Any]) -> dict[str, str]:
    out = {str(k): _text(v) for k, v in claims.items()}
    for name in ("exp", "iat"):
        if _number(claims.get(name)):
            out[name] = _java_date(float(claims[name]))
    return out


def _java_date(epoch: float) -> str:
    t = time.gmtime(epoch)
    return (
        f"{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} UTC {t.tm_year}"
    )
