"""OpenAPI imports: a document in, an `Api` out, by the same reader templates use.

`ImportRestApi` / `PutRestApi` (REST) and `ImportApi` / `ReimportApi` (HTTP APIs) send an OpenAPI
2 or 3 document, JSON or YAML, with API Gateway's extensions. It is checked completely before
anything is recorded: a document that is not OpenAPI, a path API Gateway would refuse or an
integration naming a function the node does not run is a 400 `BadRequestException`, and what is
deployed stays as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import yaml

from fogbank._errors import TemplateError
from fogbank.admin._errors import BadRequest
from fogbank.admin._records import ApiRecord, new_id
from fogbank.model import Api, ApiKind, ApiManagement, App
from fogbank.model._authorizers import with_authorizers
from fogbank.model._gateway_responses import read_gateway_responses
from fogbank.model._integrations import Where
from fogbank.model._openapi import (
    HTTP_API,
    REST_API,
    Definition,
    LocalDefinitions,
    read_definition,
)
from fogbank.model._validation import read_method_requests

if TYPE_CHECKING:
    from fogbank.admin._control import AdminControl

_WHERE = "OpenAPI body"


def parse_document(body: bytes | str) -> dict[str, Any]:
    """The document as a mapping, or 400 naming what is wrong with it."""
    try:
        document = yaml.safe_load(body)
    except yaml.YAMLError as exc:
        raise BadRequest(
            f"Invalid OpenAPI input: the body is neither JSON nor YAML ({exc})"
        ) from None
    if not isinstance(document, dict):
        raise BadRequest("Invalid OpenAPI input: the body must be an OpenAPI document (a mapping)")
    version = document.get("openapi", document.get("swagger"))
    if not isinstance(version, str | float) or not str(version).startswith(("2", "3")):
        raise BadRequest(
            "Invalid OpenAPI input: the document names no OpenAPI version"
            " (`openapi: 3.0.1` or `swagger: '2.0'`)"
        )
    info = document.get("info")
    if not isinstance(info, dict) or not isinstance(info.get("title"), str) or not info["title"]:
        raise BadRequest("Invalid OpenAPI input: info.title (the API's name) is required")
    if not isinstance(document.get("paths", {}), dict):
        raise BadRequest("Invalid OpenAPI input: paths must be a mapping")
    return document


def _functions(app: App) -> dict[str, str]:
    """Every name an integration or authorizer may give a function of the app -> its name."""
    functions: dict[str, str] = {}
    for fn in app.functions.values():
        functions[fn.name] = fn.name
        if fn.logical_id:
            functions.setdefault(fn.logical_id, fn.name)
    return functions


def read(document: Mapping[str, Any], kind: ApiKind, app: App) -> Definition:
    """Routes and settings of a document, against the functions the node runs; the whole
    document is checked (authorizers, validators, gateway responses too)."""
    try:
        definition = read_definition(dict(document), kind, Where(_WHERE), _functions(app))
    except TemplateError as exc:
        raise BadRequest(f"Invalid OpenAPI input: {exc}") from None
    probe = Api("", "", kind, definition.routes, {})
    _with_authorizers(probe, document, app)
    management_of(document, kind)
    return definition


def _with_authorizers(api: Api, document: Mapping[str, Any], app: App) -> Api:
    """`api` with the authorizers its document declares, by the template loader's reader."""
    kind = REST_API if api.kind is ApiKind.REST else HTTP_API
    resources = {"": {"Type": kind, "Properties": {"Body": dict(document)}}}
    try:
        return with_authorizers(
            replace(api, logical_id=None),
            resources,
            file=_WHERE,
            functions=_functions(app),
            definitions=LocalDefinitions(),
        )
    except TemplateError as exc:
        raise BadRequest(f"Invalid OpenAPI input: {exc}") from None


def imported(
    document: dict[str, Any], kind: ApiKind, control: AdminControl, *, fail_on_warnings: bool
) -> ApiRecord:
    """The record of a new API imported from `document` (checked against the node's app)."""
    definition = read(document, kind, control.current())
    warnings = warnings_of(definition)
    if warnings and fail_on_warnings:
        raise BadRequest("Warnings found during import: " + "; ".join(warnings))
    info = document["info"]
    return ApiRecord(
        api_id=new_id(10),
        kind=kind,
        name=str(info["title"]),
        body=document,
        created_s=control.clock(),
        description=str(info.get("description") or ""),
        version=str(info.get("version") or ""),
        warnings=warnings,
    )


def warnings_of(definition: Definition) -> tuple[str, ...]:
    """What the import accepted but fogbank does not serve, as `warnings` in the answer."""
    return tuple(f"{key}: not served ({reason})" for key, reason in definition.unserved)


def management_of(document: Mapping[str, Any], kind: ApiKind) -> ApiManagement:
    """Validators, models, cache keys and gateway responses a REST document declares, read by
    the template loader's own readers."""
    if kind is not ApiKind.REST:
        return ApiManagement()
    where = Where(_WHERE)
    try:
        found = read_method_requests(dict(document), where)
        responses = read_gateway_responses(dict(document), where)
    except TemplateError as exc:
        raise BadRequest(f"Invalid OpenAPI input: {exc}") from None
    return replace(found, gateway_responses=responses)


def api_from_record(rec: ApiRecord, app: App) -> Api:
    """The API an imported record describes (routes rebuilt from its document)."""
    definition = read(rec.body, rec.kind, app)
    api = Api(
        api_id=rec.api_id,
        name=rec.name,
        kind=rec.kind,
        routes=definition.routes,
        stages={},
        binary_media_types=definition.binary_media_types,
        cors=definition.cors,
        description=rec.description or definition.description,
        disable_execute_api_endpoint=definition.disable_execute_api_endpoint,
        api_key_source=definition.api_key_source or "HEADER",
        management=management_of(rec.body, rec.kind),
    )
    return _with_authorizers(api, rec.body, app)


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """`PutRestApi` with `mode=merge`: the update's paths and operations added to the base's."""
    merged = dict(base)
    for key, value in update.items():
        if key == "paths" and isinstance(value, dict):
            paths = dict(merged.get("paths") or {})
            for path, item in value.items():
                current = paths.get(path)
                both = isinstance(current, dict) and isinstance(item, dict)
                paths[path] = {**current, **item} if both else item  # type: ignore[dict-item]
            merged["paths"] = paths
        elif key != "info":
            merged[key] = value
    return merged
