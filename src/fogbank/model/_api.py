"""The app model for the front door: REST and HTTP APIs, their routes, stages and Function URLs."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from fogbank.model._management import ApiManagement

REST_TIMEOUT_MS = 29_000
HTTP_TIMEOUT_MS = 30_000
ANY = "ANY"
DEFAULT_ROUTE = "$default"
DEFAULT_STAGE = "$default"


def api_id_for(logical_id: str, salt: str = "") -> str:
    """A stable 10-character id, like API Gateway's, derived from the template's logical id."""
    digest = hashlib.sha256(f"{salt}{logical_id}".encode()).hexdigest()
    # API Gateway ids are lower-case letters and digits; start with a letter to look the part.
    return "abcdefghij"[int(digest[0], 16) % 10] + digest[1:10]


class ApiKind(enum.Enum):
    """Which API Gateway product an API is."""

    REST = "REST"
    """API Gateway REST API (v1): payload 1.0, stage as first path segment, 403 for no route."""
    HTTP = "HTTP"
    """API Gateway HTTP API (v2): payload 2.0 by default, `$default` stage at the root, 404."""


class IntegrationType(enum.Enum):
    """How a route reaches its backend."""

    AWS_PROXY = "AWS_PROXY"
    """Lambda proxy: the whole request becomes the event, the result becomes the response."""
    HTTP_PROXY = "HTTP_PROXY"
    """The request is forwarded to an HTTP endpoint and its response returned as is."""
    MOCK = "MOCK"
    """API Gateway answers itself from the integration responses (REST only)."""


@dataclass(frozen=True, slots=True)
class IntegrationResponse:
    """A REST integration response: which status and body a (MOCK) integration answers with."""

    status_code: str = "200"
    selection_pattern: str = ""
    """Regex over the integration's status/error; "" is the default response."""
    response_parameters: Mapping[str, str] = field(default_factory=dict)
    """`method.response.header.X` -> `'literal'` or `integration.response.header.Y`."""
    response_templates: Mapping[str, str] = field(default_factory=dict)
    """Content type -> body template (returned literally; VTL is not evaluated)."""


@dataclass(frozen=True, slots=True)
class Integration:
    """The backend of a route."""

    type: IntegrationType
    function_name: str | None = None
    """AWS_PROXY: the target function's name. When the ARN uses stage variables, everything after
    `function:` as written (`${stageVariables.fn}`, `orders:${stageVariables.alias}`), qualifier
    included: substitute the variables, then resolve it as a Lambda `FunctionName`."""
    qualifier: str | None = None
    """AWS_PROXY: a version or alias named in the integration ARN, if any (never a stage variable)."""
    uri: str | None = None
    """HTTP_PROXY: the endpoint URL; may hold `${stageVariables.x}` and `{param}` path parts."""
    http_method: str = ANY
    """HTTP_PROXY: the method used towards the endpoint (ANY = the client's)."""
    payload_format_version: str = "1.0"
    timeout_ms: int = REST_TIMEOUT_MS
    request_parameters: Mapping[str, str] = field(default_factory=dict)
    """`integration.request.header.X` -> `method.request.header.Y` (or `'literal'`)."""
    request_templates: Mapping[str, str] = field(default_factory=dict)
    responses: tuple[IntegrationResponse, ...] = ()
    response_transfer_mode: str = "BUFFERED"
    """`STREAM` sends each chunk of a streaming handler to the client as it comes."""
    cloud_map_service: str | None = None
    """HTTP_PROXY private integration (`ConnectionType: VPC_LINK`, `IntegrationUri` a Cloud Map
    service ARN): the Cloud Map service id (`srv-…`) whose healthy instances receive the request,
    the client's path and query forwarded as is. A plain HTTP_PROXY `uri` whose host names a
    discovered `service.namespace` is balanced the same way, without this field."""


@dataclass(frozen=True, slots=True)
class Route:
    """One method on one path of an API (a REST method on a resource, or an HTTP API route)."""

    method: str
    """`GET`, `POST`, ... or `ANY`; `$default` routes use ANY."""
    path: str
    """`/items/{id}`, `/{proxy+}`, or `$default` (HTTP APIs)."""
    integration: Integration
    authorization_type: str = "NONE"
    authorizer: str | None = None
    api_key_required: bool = False
    operation_name: str | None = None
    authorization_scopes: tuple[str, ...] = ()
    """JWT / Cognito scopes the route requires (`AuthorizationScopes`, OpenAPI security scopes)."""

    @property
    def route_key(self) -> str:
        """`GET /items/{id}` or `$default`, as HTTP API events carry it."""
        return DEFAULT_ROUTE if self.path == DEFAULT_ROUTE else f"{self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class Cors:
    """CORS settings (SAM `Cors` / HTTP API `CorsConfiguration`)."""

    allow_origins: tuple[str, ...] = ("*",)
    allow_methods: tuple[str, ...] = ("*",)
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False


@dataclass(frozen=True, slots=True)
class Stage:
    """A named stage of an API with its variables."""

    name: str
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Deployment:
    """An immutable snapshot of an API's routes: what a stage serves (`StageSettings.deployment_id`)."""

    deployment_id: str
    routes: tuple[Route, ...]
    description: str = ""
    created_s: float = 0.0
    """Epoch seconds."""


@dataclass(frozen=True, slots=True)
class Api:
    """A REST or HTTP API with its routes and stages."""

    api_id: str
    name: str
    kind: ApiKind
    routes: tuple[Route, ...]
    stages: Mapping[str, Stage]
    logical_id: str | None = None
    binary_media_types: tuple[str, ...] = ()
    cors: Cors | None = None
    description: str = ""
    disable_execute_api_endpoint: bool = False
    api_key_source: str = "HEADER"
    """REST: where API keys come from, `HEADER` (`x-api-key`) or `AUTHORIZER` (usageIdentifierKey)."""
    management: ApiManagement = field(default_factory=ApiManagement)
    """Authorizers, validation, gateway responses and per-stage settings."""
    deployments: Mapping[str, Deployment] = field(default_factory=dict)
    """Deployment id -> snapshot. `routes` is the API as last imported or loaded; a stage serves
    the deployment its settings name, and `routes` only when it names none."""

    @property
    def default_timeout_ms(self) -> int:
        return REST_TIMEOUT_MS if self.kind is ApiKind.REST else HTTP_TIMEOUT_MS

    def deployment_of(self, stage: str) -> Deployment | None:
        """The deployment a stage serves, or None when it serves `routes` as they are."""
        settings = self.management.stage_settings.get(stage)
        return self.deployments.get(settings.deployment_id) if settings is not None else None


@dataclass(frozen=True, slots=True)
class FunctionUrl:
    """A function's URL (`FunctionUrlConfig` / `AWS::Lambda::Url`)."""

    function_name: str
    url_id: str
    """The host label: `<url_id>.lambda-url.<region>.localhost`."""
    qualifier: str | None = None
    auth_type: str = "NONE"
    invoke_mode: str = "BUFFERED"
    """`BUFFERED` or `RESPONSE_STREAM`."""
    cors: Cors | None = None
