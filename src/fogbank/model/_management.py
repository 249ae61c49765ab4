"""The app model for API management: authorizers, usage plans and keys, stage settings, caching,
canaries, request validation and custom gateway responses."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CACHE_TTL_S = 300
DEFAULT_AUTHORIZER_TTL_S = 300
ACCOUNT_RATE_LIMIT = 10_000.0
ACCOUNT_BURST_LIMIT = 5_000


class AuthorizerType(enum.Enum):
    """The kinds of authorizer an API can attach to a route."""

    TOKEN = "TOKEN"
    """REST Lambda authorizer fed one header (`identitySource`), optionally regex-checked."""
    REQUEST = "REQUEST"
    """Lambda authorizer fed headers, query, stage variables and context (REST and HTTP APIs)."""
    JWT = "JWT"
    """HTTP API JWT authorizer: issuer, audience, signature from the issuer's JWKS."""
    COGNITO_USER_POOLS = "COGNITO_USER_POOLS"
    """REST Cognito authorizer: a JWT check against the user pool's JWKS."""


@dataclass(frozen=True, slots=True)
class Authorizer:
    """One authorizer of an API, by name (routes name it in `Route.authorizer`)."""

    name: str
    type: AuthorizerType
    function_name: str | None = None
    """Lambda authorizers: the function (name, logical id or ARN; may carry a qualifier)."""
    identity_sources: tuple[str, ...] = ()
    """`method.request.header.Authorization` (REST) or `$request.header.Authorization` (HTTP)."""
    validation_expression: str | None = None
    """TOKEN: a regex the token must match, else 401 without calling the function."""
    ttl_s: int = DEFAULT_AUTHORIZER_TTL_S
    """Result cache TTL per identity source value (0 disables caching; max 3600)."""
    payload_format_version: str = "1.0"
    """HTTP API Lambda authorizers: `1.0` or `2.0`."""
    simple_responses: bool = False
    """HTTP API Lambda authorizers (2.0): `{isAuthorized, context}` instead of an IAM policy."""
    issuer: str | None = None
    """JWT: the `iss` to expect; its JWKS comes from `<issuer>/.well-known/jwks.json` (or
    the OpenID configuration's `jwks_uri`)."""
    audience: tuple[str, ...] = ()
    """JWT: accepted `aud` (or `client_id`) values."""
    provider_arns: tuple[str, ...] = ()
    """Cognito: user pool ARNs (the issuer is derived from each)."""
    jwks_uri: str | None = None
    """Override of where keys are fetched (tests and non-standard issuers)."""


@dataclass(frozen=True, slots=True)
class Throttle:
    """A token bucket: `rate_limit` tokens a second, up to `burst_limit` at once."""

    rate_limit: float
    burst_limit: int


class QuotaPeriod(enum.Enum):
    """The window a usage plan quota counts over (UTC)."""

    DAY = "DAY"
    WEEK = "WEEK"
    """Weeks start on Monday (as AWS counts them), shifted by `offset` days."""
    MONTH = "MONTH"
    """Months start on the 1st, shifted by `offset` days."""


@dataclass(frozen=True, slots=True)
class Quota:
    """How many requests a key may make per period."""

    limit: int
    period: QuotaPeriod
    offset: int = 0


@dataclass(frozen=True, slots=True)
class UsagePlanStage:
    """An API stage a usage plan covers, with optional per-method throttles (`/path/GET`)."""

    api_id: str
    stage: str
    method_throttle: Mapping[str, Throttle] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UsagePlan:
    """Throttling and quota applied to the API keys attached to it."""

    plan_id: str
    name: str
    stages: tuple[UsagePlanStage, ...] = ()
    throttle: Throttle | None = None
    quota: Quota | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key (20-128 characters), attached to usage plans."""

    key_id: str
    name: str
    value: str
    enabled: bool = True
    plan_ids: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class MethodSettings:
    """Stage settings for one method (`/path/GET`, or `*/*` for all), as `methodSettings` has them."""

    throttle: Throttle | None = None
    caching_enabled: bool | None = None
    cache_ttl_s: int | None = None
    require_authorization_for_cache_control: bool = True
    unauthorized_cache_control_header_strategy: str = "SUCCEED_WITH_RESPONSE_HEADER"
    """`FAIL_WITH_403`, `SUCCEED_WITH_RESPONSE_HEADER` or `SUCCEED_WITHOUT_RESPONSE_HEADER`."""


@dataclass(frozen=True, slots=True)
class Canary:
    """A REST stage's canary: part of the traffic goes to another deployment."""

    deployment_id: str
    percent_traffic: float = 0.0
    stage_variable_overrides: Mapping[str, str] = field(default_factory=dict)
    use_stage_cache: bool = False


@dataclass(frozen=True, slots=True)
class StageSettings:
    """Everything a stage configures beyond its variables."""

    deployment_id: str = ""
    """The deployment (immutable snapshot of routes) the stage serves; "" = the current routes."""
    throttle: Throttle | None = None
    """HTTP APIs: the stage's default route throttle; REST: `*/*` method settings."""
    route_throttle: Mapping[str, Throttle] = field(default_factory=dict)
    """HTTP APIs: per route key (`GET /items`)."""
    method_settings: Mapping[str, MethodSettings] = field(default_factory=dict)
    """REST: per `/path/METHOD` (`~1` escapes `/` in the path, as AWS writes them) or `*/*`."""
    cache_cluster_enabled: bool = False
    canary: Canary | None = None


@dataclass(frozen=True, slots=True)
class RequestValidator:
    """What a REST validator checks."""

    name: str
    validate_body: bool = False
    validate_parameters: bool = False


@dataclass(frozen=True, slots=True)
class RouteValidation:
    """A REST method's validation: its validator, body models and required parameters."""

    validator: str | None = None
    request_models: Mapping[str, str] = field(default_factory=dict)
    """Content type -> model name."""
    required_parameters: tuple[str, ...] = ()
    """`method.request.header.x`, `method.request.querystring.y`, `method.request.path.z`."""


@dataclass(frozen=True, slots=True)
class GatewayResponse:
    """A custom gateway response for one response type (`UNAUTHORIZED`, `DEFAULT_4XX`, ...)."""

    response_type: str
    status_code: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    """Header -> value (`'literal'` quoting removed by the loader)."""
    templates: Mapping[str, str] = field(default_factory=dict)
    """Content type -> body template; `$context.error.message` and similar are substituted."""


@dataclass(frozen=True, slots=True)
class ApiManagement:
    """An API's management configuration, kept beside its routes and stages."""

    authorizers: Mapping[str, Authorizer] = field(default_factory=dict)
    validators: Mapping[str, RequestValidator] = field(default_factory=dict)
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Model name -> JSON Schema (draft 4)."""
    route_validation: Mapping[str, RouteValidation] = field(default_factory=dict)
    """Route key (`GET /items/{id}`) -> validation."""
    default_validator: str | None = None
    """OpenAPI `x-amazon-apigateway-request-validator` at the top level."""
    gateway_responses: Mapping[str, GatewayResponse] = field(default_factory=dict)
    stage_settings: Mapping[str, StageSettings] = field(default_factory=dict)
    """Stage name -> settings."""
    cache_key_parameters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Route key -> `method.request.querystring.x` / `method.request.header.y` / path params."""
