"""The read-only Lambda operations: what boto3's `list_functions`, `get_function` and friends see.

Documents follow the output shapes of botocore's Lambda model (`FunctionConfiguration`,
`AliasConfiguration`, ...). Values the app model does not hold are reported as AWS reports a
freshly deployed zip function: `State: Active`, `PackageType: Zip`, `CodeSize: 0`. `LastModified` is
the moment this node first served the current app snapshot, i.e. the (re)deployment time.
Pagination markers are the key of the first item of the next page, so they survive a redeploy that
does not remove that item.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping
from typing import Any

from fogbank.functions._envvars import log_group_name
from fogbank.functions._resolve import find_function, parse_function_name, resolve
from fogbank.functions._types import InvalidParameterValue, ResourceNotFound
from fogbank.model import LATEST, Alias, App, Function, FunctionConfig, Identity, TenancyMode

Doc = dict[str, Any]

_DEFAULT_PAGE = 50
_MAX_PAGE = 10_000
# Namespace of the deterministic RevisionIds: the same content always gets the same id.
_REVISION_NS = uuid.UUID("5b0c43de-2a36-4c4e-9a9b-6f6f67626e6b")


def _revision(*parts: object) -> str:
    return str(uuid.uuid5(_REVISION_NS, repr(parts)))


def _max_items(query: Mapping[str, str]) -> int:
    raw = query.get("MaxItems")
    if raw is None:
        return _DEFAULT_PAGE
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= _MAX_PAGE:
        raise InvalidParameterValue(f"MaxItems must be between 1 and {_MAX_PAGE}, got {raw!r}")
    return value


def _page(items: list[tuple[str, Doc]], query: Mapping[str, str], key: str) -> Doc:
    """One page of `items` (key, document) as `{key: [...], "NextMarker": ...}`."""
    size = _max_items(query)
    start = 0
    marker = query.get("Marker")
    if marker:
        keys = [k for k, _ in items]
        if marker not in keys:
            raise InvalidParameterValue(f"Invalid marker: {marker}")
        start = keys.index(marker)
    chosen = items[start : start + size]
    doc: Doc = {key: [d for _, d in chosen]}
    if start + size < len(items):
        doc["NextMarker"] = items[start + size][0]
    return doc


def _version_order(version: str) -> tuple[int, int]:
    # `$LATEST` first, then published versions by number.
    return (0, 0) if version == LATEST else (1, int(version))


class Catalog:
    """Renders the app model as the Lambda API's read-only operations answer."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self._app: App | None = None
        self._stamp = ""

    def last_modified(self, app: App) -> str:
        """The time this node first saw `app` (a new snapshot means a redeploy)."""
        if app is not self._app:
            now = datetime.datetime.now(datetime.UTC)
            self._stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"
            self._app = app
        return self._stamp

    def configuration(self, app: App, fn: Function, cfg: FunctionConfig, arn: str) -> Doc:
        """A `FunctionConfiguration` document for one version of `fn`, reported under `arn`."""
        doc: Doc = {
            "FunctionName": cfg.name,
            "FunctionArn": arn,
            "Runtime": cfg.runtime,
            "Handler": cfg.handler,
            "CodeSize": 0,
            "Description": cfg.description,
            "Timeout": cfg.timeout_s,
            "MemorySize": cfg.memory_mb,
            "LastModified": self.last_modified(app),
            "Version": cfg.version,
            "TracingConfig": {"Mode": "PassThrough"},
            "RevisionId": _revision(cfg),
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": list(cfg.architectures),
            "EphemeralStorage": {"Size": cfg.ephemeral_storage_mb},
            "LoggingConfig": {"LogFormat": "Text", "LogGroup": log_group_name(cfg.name)},
        }
        if cfg.environment:
            doc["Environment"] = {"Variables": dict(cfg.environment)}
        if cfg.layers:
            doc["Layers"] = [{"Arn": layer.arn, "CodeSize": 0} for layer in cfg.layers]
        if fn.tenancy is TenancyMode.PER_TENANT:
            doc["TenancyConfig"] = {"TenantIsolationMode": TenancyMode.PER_TENANT.value}
        return doc

    def alias(self, fn: Function, alias: Alias) -> Doc:
        doc: Doc = {
            "AliasArn": self.identity.function_arn(fn.name, alias.name),
            "Name": alias.name,
            "FunctionVersion": alias.function_version,
            "Description": alias.description,
            "RevisionId": _revision(fn.name, alias),
        }
        if alias.additional_weights:
            doc["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.additional_weights)}
        return doc

    # -- operations ------------------------------------------------------------------------------

    def list_functions(self, app: App, query: Mapping[str, str]) -> Doc:
        """`ListFunctions`: `$LATEST` of every function; with `FunctionVersion=ALL` every version."""
        every_version = query.get("FunctionVersion") == "ALL"
        items: list[tuple[str, Doc]] = []
        for name in sorted(app.functions):
            fn = app.functions[name]
            arn = self.identity.function_arn(name)
            items.append((name, self.configuration(app, fn, fn.latest, arn)))
            if every_version:
                for version in sorted(fn.versions, key=int):
                    qualified = self.identity.function_arn(name, version)
                    cfg = fn.versions[version]
                    items.append((f"{name}:{version}", self.configuration(app, fn, cfg, qualified)))
        return _page(items, query, "Functions")

    def get_function_configuration(self, app: App, name: str, qualifier: str | None) -> Doc:
        found = resolve(app, name, qualifier, identity=self.identity, weighted=False)
        return self.configuration(app, found.function, found.config, found.invoked_arn)

    def get_function(self, app: App, name: str, qualifier: str | None) -> Doc:
        found = resolve(app, name, qualifier, identity=self.identity, weighted=False)
        doc: Doc = {
            "Configuration": self.configuration(
                app, found.function, found.config, found.invoked_arn
            ),
            # No S3 here: the code is a directory on this machine, given as a file URL.
            "Code": {
                "RepositoryType": "Local",
                "Location": found.config.code_dir.absolute().as_uri(),
            },
        }
        if found.function.reserved_concurrency is not None:
            doc["Concurrency"] = {
                "ReservedConcurrentExecutions": found.function.reserved_concurrency
            }
        return doc

    def list_versions(self, app: App, name: str, query: Mapping[str, str]) -> Doc:
        """`ListVersionsByFunction`: `$LATEST` first, then published versions by number."""
        fn = self._function(app, name)
        configs = [fn.latest, *fn.versions.values()]
        configs.sort(key=lambda c: _version_order(c.version))
        items = [
            (
                cfg.version,
                self.configuration(app, fn, cfg, self.identity.function_arn(fn.name, cfg.version)),
            )
            for cfg in configs
        ]
        return _page(items, query, "Versions")

    def list_aliases(self, app: App, name: str, query: Mapping[str, str]) -> Doc:
        fn = self._function(app, name)
        version = query.get("FunctionVersion")
        items = [
            (alias.name, self.alias(fn, alias))
            for alias in sorted(fn.aliases.values(), key=lambda a: a.name)
            if version is None or alias.function_version == version
        ]
        return _page(items, query, "Aliases")

    def get_alias(self, app: App, name: str, alias_name: str) -> Doc:
        fn = self._function(app, name)
        alias = fn.aliases.get(alias_name)
        if alias is None:
            arn = self.identity.function_arn(fn.name, alias_name)
            raise ResourceNotFound(f"Cannot find alias arn: {arn}")
        return self.alias(fn, alias)

    def _function(self, app: App, name: str) -> Function:
        # These operations address the function itself; a qualifier in the name has no meaning.
        return find_function(app, parse_function_name(name), None, self.identity)
