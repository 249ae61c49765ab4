"""An API's OpenAPI definition (its `Body`): routes and API Gateway's extensions.

Definitions kept in local files (SAM `DefinitionUri`, a packaged `BodyS3Location: ./openapi.yaml`)
are read by `inline_definitions` before intrinsics are resolved and become the API's `Body`, so a
file may use `AWS::Include` and intrinsic functions as a `DefinitionBody` can. AWS itself resolves
neither in an uploaded file; fogbank is lenient there, as `sam local` is.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fogbank.model._api import ANY, DEFAULT_ROUTE, ApiKind, Cors, Route
from fogbank.model._integrations import (
    OPENAPI_FIELDS,
    Where,
    path_problem,
    read_cors,
    read_integration,
)
from fogbank.model._sam import LOCAL_BUCKET, Expanded, _Preparer
from fogbank.model._yaml import load_document

REST_API = "AWS::ApiGateway::RestApi"
HTTP_API = "AWS::ApiGatewayV2::Api"

_OPERATIONS = frozenset({"get", "put", "post", "delete", "options", "head", "patch"})
_ANY_METHOD = "x-amazon-apigateway-any-method"
_INTEGRATION = "x-amazon-apigateway-integration"
_AUTHORIZER = "x-amazon-apigateway-authorizer"
# `x-amazon-apigateway-authorizer.type` -> the route's authorization type.
_AUTHORIZER_TYPES = {
    "token": "CUSTOM",
    "request": "CUSTOM",
    "cognito_user_pools": "COGNITO_USER_POOLS",
    "jwt": "JWT",
}


@dataclass(frozen=True, slots=True)
class Definition:
    """What an OpenAPI body contributes to an API."""

    routes: tuple[Route, ...] = ()
    unserved: tuple[tuple[str, str], ...] = ()
    """(route key, why fogbank does not serve it) for operations left out of `routes`."""
    binary_media_types: tuple[str, ...] = ()
    cors: Cors | None = None
    api_key_source: str | None = None
    description: str = ""
    disable_execute_api_endpoint: bool = False


@dataclass(frozen=True, slots=True)
class LocalDefinitions:
    """Which APIs took their definition from a local file, and warnings met reading them."""

    files: Mapping[str, Path] = field(default_factory=dict)
    """API logical id -> the definition file, as the user would name it (for error messages)."""
    warnings: tuple[str, ...] = ()


def inline_definitions(expanded: Expanded, *, base_dir: Path, file: str) -> LocalDefinitions:
    """Replace each API's local `BodyS3Location` with the file's content as its `Body`, in place."""
    files: dict[str, Path] = {}
    warnings: list[str] = []
    for logical_id, resource in expanded.template["Resources"].items():
        props = resource.get("Properties")
        if resource.get("Type") not in (REST_API, HTTP_API) or not isinstance(props, dict):
            continue
        if "BodyS3Location" not in props:
            continue
        prop = "DefinitionUri" if _written_in_sam(resource, logical_id) else "BodyS3Location"
        where = Where(file, logical_id, prop)
        location = props["BodyS3Location"]
        path: Path | None = None
        if isinstance(location, str) and "://" not in location:
            path = (base_dir / location).resolve()
        elif isinstance(location, dict) and location.get("Bucket") == LOCAL_BUCKET:
            path = expanded.local_paths.get(str(location.get("Key")))
        if path is None:
            raise where.error(
                f"a definition in S3 is not supported, point {where.prop} at a local file"
            )
        if not path.is_file():
            problem = "is not a file" if path.exists() else "does not exist"
            raise where.error(f"definition file {path} {problem}")
        shown = (
            Path(file).parent / path.relative_to(base_dir)
            if path.is_relative_to(base_dir)
            else path
        )
        includes = _Preparer(path.parent, str(shown))
        props["Body"] = includes.inline_includes(
            load_document(path, file=str(shown)), path.parent, (path,)
        )
        del props["BodyS3Location"]
        files[logical_id] = shown
        warnings.extend(includes.warnings)
    return LocalDefinitions(files, tuple(warnings))


def read_definition(
    body: Any,
    kind: ApiKind,
    where: Where,
    functions: Mapping[str, str],
    *,
    cloud_map: Set[str] | None = None,
) -> Definition:
    """Routes and API settings from an OpenAPI 2 or 3 body with API Gateway's extensions
    (`cloud_map` as for `read_integration`)."""
    if not isinstance(body, dict):
        raise where.error(f"an OpenAPI definition must be a mapping, got {type(body).__name__}")
    components = body.get("components")
    schemes = body.get("securityDefinitions") or (
        components.get("securitySchemes") if isinstance(components, dict) else None
    )
    schemes = schemes if isinstance(schemes, dict) else {}
    routes: list[Route] = []
    unserved: list[tuple[str, str]] = []
    for path, item in where.at("paths").mapping(body.get("paths")).items():
        path_at = where.at("paths", str(path))
        if problem := path_problem(str(path), kind):
            raise path_at.error(problem)
        for key, raw in path_at.mapping(item).items():
            method = ANY if key == _ANY_METHOD else str(key).upper()
            if key != _ANY_METHOD and key not in _OPERATIONS:
                continue  # parameters, summary, servers, other extensions
            if path == DEFAULT_ROUTE:
                method = ANY  # the $default route takes every method
            op_at = path_at.at(str(key))
            operation = op_at.mapping(raw)
            spec = operation.get(_INTEGRATION)
            if spec is None:
                unserved.append((f"{method} {path}", "no integration"))
                continue
            spec_at = op_at.at(_INTEGRATION)
            outcome = read_integration(
                spec_at.mapping(spec), OPENAPI_FIELDS, kind, spec_at, functions, cloud_map=cloud_map
            )
            if isinstance(outcome, str):
                unserved.append((f"{method} {path}", outcome))
                continue
            security = operation.get("security", body.get("security"))
            auth_type, authorizer, scopes, api_key = _authorization(security, schemes)
            operation_id = operation.get("operationId")
            routes.append(
                Route(
                    method=method,
                    path=str(path),
                    integration=outcome,
                    authorization_type=auth_type,
                    authorizer=authorizer,
                    api_key_required=api_key,
                    operation_name=str(operation_id) if operation_id is not None else None,
                    authorization_scopes=scopes,
                )
            )
    return _settings(body, kind, where, tuple(routes), tuple(unserved))


def _settings(
    body: dict[str, Any],
    kind: ApiKind,
    where: Where,
    routes: tuple[Route, ...],
    unserved: tuple[tuple[str, str], ...],
) -> Definition:
    info = body.get("info")
    description = info.get("description") if isinstance(info, dict) else None
    endpoint_key = "x-amazon-apigateway-endpoint-configuration"
    endpoint = body.get(endpoint_key)
    disable = endpoint.get("disableExecuteApiEndpoint") if isinstance(endpoint, dict) else None
    cors: Cors | None = None
    binary: tuple[str, ...] = ()
    source: str | None = None
    if kind is ApiKind.HTTP:
        if (raw := body.get("x-amazon-apigateway-cors")) is not None:
            cors = read_cors(raw, where.at("x-amazon-apigateway-cors"), capitalized=False)
    else:
        # HTTP APIs pick binary bodies by content; media types and API keys are REST settings.
        binary_key, source_key = (
            "x-amazon-apigateway-binary-media-types",
            "x-amazon-apigateway-api-key-source",
        )
        binary = where.at(binary_key).strings(body.get(binary_key))
        if (raw := body.get(source_key)) is not None:
            source = where.at(source_key).text(raw).upper()
    return Definition(
        routes=routes,
        unserved=unserved,
        binary_media_types=binary,
        cors=cors,
        api_key_source=source,
        description=where.at("info", "description").text(description, default=""),
        disable_execute_api_endpoint=where.at(endpoint_key, "disableExecuteApiEndpoint").flag(
            disable
        ),
    )


def _authorization(
    security: Any, schemes: Mapping[str, Any]
) -> tuple[str, str | None, tuple[str, ...], bool]:
    """(authorization type, authorizer, scopes, API key required) from an OpenAPI `security` list.

    API Gateway reads the requirements together rather than as OpenAPI's alternatives: an
    `x-api-key` scheme next to an authorizer means both, which is how SAM writes `Auth`.
    """
    auth_type, authorizer, api_key = "NONE", None, False
    scopes: tuple[str, ...] = ()
    for requirement in security if isinstance(security, list) else ():
        for name, wanted in requirement.items() if isinstance(requirement, dict) else ():
            scheme = schemes.get(name)
            scheme = scheme if isinstance(scheme, dict) else {}
            extension = scheme.get(_AUTHORIZER)
            if isinstance(extension, dict) and authorizer is None:
                kind = str(extension.get("type", "")).lower()
                auth_type, authorizer = _AUTHORIZER_TYPES.get(kind, "CUSTOM"), str(name)
                if isinstance(wanted, list):
                    scopes = tuple(str(scope) for scope in wanted)
            elif str(scheme.get("x-amazon-apigateway-authtype", "")).lower() == "awssigv4":
                auth_type = "AWS_IAM"
            elif scheme.get("type") == "apiKey" and str(scheme.get("name")).lower() == "x-api-key":
                api_key = True
    return auth_type, authorizer, scopes, api_key


def body_where(
    resource: Mapping[str, Any], logical_id: str, file: str, files: Mapping[str, Path]
) -> Where:
    """Where errors in an API's body point: its definition file, `DefinitionBody` or `Body`."""
    if logical_id in files:
        return Where(str(files[logical_id]))
    prop = "DefinitionBody" if _written_in_sam(resource, logical_id) else "Body"
    return Where(file, logical_id, prop)


def _written_in_sam(resource: Mapping[str, Any], logical_id: str) -> bool:
    """Whether an API is the translation of an `AWS::Serverless::*Api` the user wrote.

    Its properties then have SAM's names; SAM's implicit APIs carry no `SamResourceId`.
    """
    metadata = resource.get("Metadata")
    return isinstance(metadata, dict) and metadata.get("SamResourceId") == logical_id
