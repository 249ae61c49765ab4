"""Load a SAM or CloudFormation template into fogbank's app model.

The pipeline: parse (`_yaml`) -> check parameters -> inline includes and run the SAM transform
(`_sam`) -> read local OpenAPI files into API bodies (`_openapi`) -> resolve intrinsics
(`_intrinsics`) -> build `Function`s from the `AWS::Lambda::*` resources, here, then services and
Cloud Map resources (`_services`), APIs and Function URLs (`_apis`). Inline code (`InlineCode`,
`Code.ZipFile`) is written to `<template dir>/.fogbank/inline/<LogicalId>/index.py`, as
CloudFormation names it `index`, so its handler is `index.<function>`; the file is rewritten only
when its content changes, so a file watcher on the template's directory does not see a change on
every load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from fogbank._errors import TemplateError
from fogbank.model._apis import build_apis
from fogbank.model._app import App, Identity
from fogbank.model._builtin_layers import builtin_layers
from fogbank.model._function import (
    LATEST,
    MAX_LAYERS,
    MAX_MEMORY_MB,
    MAX_TIMEOUT_S,
    MIN_MEMORY_MB,
    PYTHON_RUNTIMES,
    SUPPORTED_RUNTIMES,
    Alias,
    Destination,
    EventInvokeConfig,
    Function,
    FunctionConfig,
    Layer,
    TenancyMode,
)
from fogbank.model._intrinsics import (
    Resolved,
    function_name_of,
    parameter_values,
    resolve_template,
    text,
)
from fogbank.model._openapi import inline_definitions
from fogbank.model._props import Props
from fogbank.model._sam import LOCAL_BUCKET, Expanded, expand
from fogbank.model._services import SERVICE_PREFIXES, build_services
from fogbank.model._traffic import DeploymentPreference, read_preference
from fogbank.model._usage_plans import build_usage_plans
from fogbank.model._yaml import load_document

INLINE_DIR = Path(".fogbank", "inline")
"""Where inline code is written, relative to the template's directory."""

_SERVED = frozenset(
    f"AWS::Lambda::{kind}"
    for kind in ("Function", "LayerVersion", "Version", "Alias", "EventInvokeConfig", "Url")
)
# Left to `_apis`, which serves API Gateway resources and warns about the rest; permissions only
# grant access, which fogbank does not enforce.
_QUIET_PREFIXES = (
    "AWS::ApiGateway::",
    "AWS::ApiGatewayV2::",
    "AWS::Lambda::Permission",
    "AWS::CodeDeploy::",  # read through the alias UpdatePolicy that names them (`_traffic`)
    *SERVICE_PREFIXES,  # left to `_services`, which warns about what it does not serve
)
_DESTINATION_KINDS = {"lambda": "Lambda", "sqs": "SQS", "sns": "SNS", "events": "EventBridge"}

# Lambda caps the total size of a function's environment variables at 4 KB.
MAX_ENVIRONMENT_BYTES = 4096


def load_template(
    path: Path,
    *,
    parameter_overrides: Mapping[str, str] | None = None,
    identity: Identity | None = None,
) -> App:
    """Load a SAM or CloudFormation template (YAML or JSON) into an `App`.

    Raises `TemplateError`, one line naming the file, resource and property, for anything fogbank
    cannot run; resources it accepts but does not serve are listed once each in `App.warnings`.
    """
    ident = identity or Identity()
    file = str(path)
    document = load_document(path)
    if not isinstance(document, dict):
        raise TemplateError("a template must be a mapping of sections (Resources, ...)", file=file)
    parameters, warnings = parameter_values(document, parameter_overrides or {}, file=file)
    base_dir = path.resolve().parent
    expanded = expand(document, base_dir=base_dir, parameters=parameters, identity=ident, file=file)
    definitions = inline_definitions(expanded, base_dir=base_dir, file=file)
    resolved = resolve_template(expanded.template, parameters, ident, file=file)
    builder = _Builder(file, base_dir, expanded, resolved)
    builder.layers.update(builtin_layers(ident))  # a template's own layer of the same ARN wins
    builder.warnings.extend(
        [*warnings, *expanded.warnings, *definitions.warnings, *resolved.warnings]
    )
    functions = builder.build()
    names = {draft.logical_id: name for name, draft in builder.drafts.items()}
    names.update({name: name for name in (*builder.drafts, *builder.images)})
    function_names = set(names.values())
    services = build_services(resolved, base_dir=base_dir, file=file, function_names=function_names)
    served = build_apis(
        resolved.resources,
        functions=names,
        runnable=builder.drafts.keys(),
        file=file,
        definitions=definitions,
        cloud_map=services.cloud_map_ids,
    )
    managed = build_usage_plans(resolved.resources, served.apis, file=file)
    return App.build(
        functions,
        identity=ident,
        source=path,
        warnings=dict.fromkeys(
            [*builder.warnings, *services.warnings, *served.warnings, *managed.warnings]
        ),
        apis=managed.apis,
        function_urls=served.function_urls,
        usage_plans=managed.usage_plans,
        api_keys=managed.api_keys,
        services=services.services,
        namespaces=services.namespaces,
        discovery_services=services.discovery_services,
        discovery_instances=services.discovery_instances,
    )


@dataclass
class _Draft:
    """A function being assembled from several resources (its versions, aliases, settings)."""

    latest: FunctionConfig
    logical_id: str
    reserved: int | None = None
    tenancy: TenancyMode = TenancyMode.NONE
    versions: dict[str, FunctionConfig] = field(default_factory=dict)
    aliases: dict[str, Alias] = field(default_factory=dict)
    provisioned: dict[str, int] = field(default_factory=dict)
    event_invoke: EventInvokeConfig = field(default_factory=EventInvokeConfig)
    streaming: bool = False
    deployment: DeploymentPreference | None = None

    def function(self) -> Function:
        return Function(
            latest=self.latest,
            versions=self.versions,
            aliases=self.aliases,
            logical_id=self.logical_id,
            reserved_concurrency=self.reserved,
            provisioned_concurrency=self.provisioned,
            tenancy=self.tenancy,
            event_invoke=self.event_invoke,
            streaming=self.streaming,
            deployment_preference=self.deployment,
        )


class _Builder:
    def __init__(self, file: str, base_dir: Path, expanded: Expanded, resolved: Resolved) -> None:
        self.file, self.base_dir = file, base_dir
        self.expanded, self.resolved = expanded, resolved
        self.layers: dict[str, Layer] = {}
        self.drafts: dict[str, _Draft] = {}
        self.images: set[str] = set()
        self.warnings: list[str] = []

    def build(self) -> list[Function]:
        # Dependencies first: layers before functions, functions before their versions, versions
        # before the aliases that point at them. Within a type, template order.
        steps = (
            ("AWS::Lambda::LayerVersion", self._layer),
            ("AWS::Lambda::Function", self._function),
            ("AWS::Lambda::Version", self._version),
            ("AWS::Lambda::Alias", self._alias),
            ("AWS::Lambda::EventInvokeConfig", self._event_invoke),
            ("AWS::Lambda::Url", self._url),
        )
        resources = self.resolved.resources
        for kind, step in steps:
            for logical_id, resource in resources.items():
                if resource["Type"] == kind:
                    step(logical_id, Props(self.file, logical_id, resource["Properties"]))
        for logical_id, resource in resources.items():
            self._warn_unserved(logical_id, resource["Type"])
        return [draft.function() for draft in self.drafts.values()]

    def _warn_unserved(self, logical_id: str, kind: str) -> None:
        generated = logical_id not in self.expanded.source_ids
        if kind in _SERVED or kind.startswith(_QUIET_PREFIXES):
            return
        if generated and kind.startswith("AWS::IAM::"):
            return  # roles SAM makes for functions; permissions are not enforced locally
        hint = ""
        if kind.startswith("AWS::Serverless::"):
            hint = " (the template has no Transform: AWS::Serverless-2016-10-31)"
        self.warnings.append(f"{logical_id} ({kind}) is not served by fogbank{hint}")

    def _sam_id(self, logical_id: str) -> str:
        metadata = self.resolved.resources[logical_id]["Metadata"]
        sam_id = metadata.get("SamResourceId") if isinstance(metadata, dict) else None
        return sam_id if isinstance(sam_id, str) else logical_id

    def _local_dir(self, props: Props, prop: str) -> Path:
        location = props.nested(prop)
        if isinstance(location, dict) and location.get("S3Bucket") == LOCAL_BUCKET:
            path = self.expanded.local_paths.get(str(location.get("S3Key")))
            if path is not None:
                return path
        raise props.error(prop, f"{prop} must name a local directory")

    def _layer(self, logical_id: str, props: Props) -> None:
        arn = self.resolved.physical_ids[logical_id]
        self.layers[arn] = Layer(
            name=props.text("LayerName", default=logical_id),
            content_dir=self._local_dir(props, "Content"),
            version=int(arn.rsplit(":", 1)[1]),
            arn=arn,
            logical_id=self._sam_id(logical_id),
            compatible_runtimes=props.strings("CompatibleRuntimes"),
        )

    def _function(self, logical_id: str, props: Props) -> None:
        name = self.resolved.physical_ids[logical_id]
        if props.nested("PackageType") == "Image" or props.nested("Code", "ImageUri"):
            self.images.add(name)
            self.warnings.append(
                f"{logical_id} is a container image function; fogbank cannot run it"
            )
            return
        runtime = props.text("Runtime", default="")
        if runtime not in SUPPORTED_RUNTIMES:
            supported = ", ".join(SUPPORTED_RUNTIMES)
            problem = f"runtime {runtime} is not supported" if runtime else "Runtime is required"
            raise props.error("Runtime", f"{problem} (use one of {supported})")
        handler = props.text("Handler", default="")
        if runtime in PYTHON_RUNTIMES and not handler:
            raise props.error("Handler", "Handler is required for Python runtimes")
        if name in self.drafts:
            other = self.drafts[name].logical_id
            raise props.error("FunctionName", f"function name {name} is already used by {other}")
        tenancy = props.text("TenancyConfig", "TenantIsolationMode", default="NONE")
        if tenancy not in TenancyMode.__members__:
            raise props.error("TenancyConfig.TenantIsolationMode", f"unknown mode {tenancy}")
        variables = props.nested("Environment", "Variables") or {}
        if not isinstance(variables, dict):
            raise props.error("Environment.Variables", f"expected a mapping, got {variables!r}")
        environment = {str(key): props.text("Environment", "Variables", key) for key in variables}
        size = sum(len(k.encode()) + len(v.encode()) for k, v in environment.items())
        if size > MAX_ENVIRONMENT_BYTES:
            raise props.error(
                "Environment.Variables",
                f"variables take {size} bytes; Lambda allows {MAX_ENVIRONMENT_BYTES} in all",
            )
        config = FunctionConfig(
            name=name,
            runtime=runtime,
            handler=handler,
            code_dir=self._code_dir(logical_id, props, runtime),
            layers=self._function_layers(props),
            environment=environment,
            timeout_s=props.number(
                "Timeout", default=3, low=1, high=MAX_TIMEOUT_S, unit=" seconds"
            ),
            memory_mb=props.number(
                "MemorySize", default=128, low=MIN_MEMORY_MB, high=MAX_MEMORY_MB, unit=" MB"
            ),
            ephemeral_storage_mb=props.number(
                "EphemeralStorage", "Size", default=512, low=512, high=10_240, unit=" MB"
            ),
            description=props.text("Description", default=""),
            architectures=props.strings("Architectures", default=("x86_64",)),
        )
        reserved = props.nested("ReservedConcurrentExecutions")
        self.drafts[name] = _Draft(
            latest=config,
            logical_id=logical_id,
            reserved=None
            if reserved is None
            else props.number("ReservedConcurrentExecutions", default=0, low=0, high=1_000_000),
            tenancy=TenancyMode(tenancy),
        )

    def _code_dir(self, logical_id: str, props: Props, runtime: str) -> Path:
        source = props.nested("Code", "ZipFile")
        if source is None:
            return self._local_dir(props, "Code")
        # Name the property the user wrote: SAM's `InlineCode` became `Code.ZipFile`.
        from_sam = "SamResourceId" in self.resolved.resources[logical_id]["Metadata"]
        prop = "InlineCode" if from_sam else "Code.ZipFile"
        if runtime not in PYTHON_RUNTIMES:
            raise props.error(prop, "inline code runs only on Python runtimes")
        directory = self.base_dir / INLINE_DIR / logical_id
        target, content = directory / "index.py", props.text("Code", "ZipFile")
        try:
            if not target.is_file() or target.read_text(encoding="utf-8") != content:
                directory.mkdir(parents=True, exist_ok=True)
                target.write_text(content, encoding="utf-8")
        except OSError as exc:
            raise props.error(prop, f"cannot write inline code to {target}: {exc}") from exc
        return directory

    def _function_layers(self, props: Props) -> tuple[Layer, ...]:
        arns = props.nested("Layers") or []
        if not isinstance(arns, list):
            raise props.error("Layers", "Layers must be a list of layer version ARNs")
        if len(arns) > MAX_LAYERS:
            raise props.error("Layers", f"{len(arns)} layers given; a function can use at most 5")
        layers = []
        for arn in arns:
            layer = self.layers.get(arn) if isinstance(arn, str) else None
            if layer is None:
                raise props.error("Layers", f"layer {arn} is not defined in this template")
            layers.append(layer)
        return tuple(layers)

    def _owner(self, logical_id: str, props: Props, prop: str) -> _Draft | None:
        """The template function a version, alias or setting belongs to; else warn and skip it."""
        name = function_name_of(props.text(prop))
        draft = self.drafts.get(name)
        if draft is None and name not in self.images:
            kind = self.resolved.resources[logical_id]["Type"]
            self.warnings.append(
                f"{logical_id} ({kind}) is for function {name}, which is not in this template"
            )
        return draft

    def _version(self, logical_id: str, props: Props) -> None:
        if (draft := self._owner(logical_id, props, "FunctionName")) is None:
            return
        number = self.resolved.physical_ids[logical_id].rsplit(":", 1)[1]
        config = draft.latest.published(number)
        if "Description" in props.values:
            config = replace(config, description=props.text("Description"))
        draft.versions[number] = config
        self._provisioned(draft, number, props)

    def _provisioned(self, draft: _Draft, qualifier: str, props: Props) -> None:
        key = ("ProvisionedConcurrencyConfig", "ProvisionedConcurrentExecutions")
        if props.nested(*key) is not None:
            draft.provisioned[qualifier] = props.number(*key, default=0, low=0, high=1_000_000)

    def _alias(self, logical_id: str, props: Props) -> None:
        if (draft := self._owner(logical_id, props, "FunctionName")) is None:
            return
        name, version = props.text("Name"), props.text("FunctionVersion")
        if version != LATEST and version not in draft.versions:
            raise props.error("FunctionVersion", f"version {version} is not published")
        weights: dict[str, float] = {}
        prop = "RoutingConfig.AdditionalVersionWeights"
        for entry in props.nested(*prop.split(".")) or []:
            try:
                other, weight = text(entry["FunctionVersion"]), float(text(entry["FunctionWeight"]))
            except (KeyError, TypeError, ValueError):
                raise props.error(prop, f"invalid entry {entry!r}") from None
            if not 0.0 <= weight <= 1.0:
                raise props.error(prop, f"weight {weight} of version {other} is outside 0.0-1.0")
            weights[other] = weight
        draft.aliases[name] = Alias(name, version, weights, props.text("Description", default=""))
        self._provisioned(draft, name, props)
        raw = self.expanded.template["Resources"][logical_id]
        draft.deployment = read_preference(
            logical_id,
            name,
            raw,
            self.resolved.resources,
            self.resolved.physical_ids,
            file=self.file,
        )
        if draft.deployment is None and logical_id not in self.expanded.source_ids:
            draft.deployment = DeploymentPreference(alias=name)  # AutoPublishAlias alone

    def _event_invoke(self, logical_id: str, props: Props) -> None:
        if (draft := self._owner(logical_id, props, "FunctionName")) is None:
            return
        draft.event_invoke = EventInvokeConfig(
            maximum_retry_attempts=props.number("MaximumRetryAttempts", default=2, low=0, high=2),
            maximum_event_age_s=props.number(
                "MaximumEventAgeInSeconds", default=21_600, low=60, high=21_600, unit=" seconds"
            ),
            on_success=self._destination(logical_id, props, "OnSuccess"),
            on_failure=self._destination(logical_id, props, "OnFailure"),
        )

    def _destination(self, logical_id: str, props: Props, outcome: str) -> Destination | None:
        keys = ("DestinationConfig", outcome, "Destination")
        if props.nested(*keys) is None:
            return None
        arn = props.text(*keys)
        service = arn.split(":")[2] if arn.count(":") >= 5 else ""
        kind = _DESTINATION_KINDS.get(service, service.upper() or "unknown")
        if kind != "Lambda":
            self.warnings.append(
                f"{logical_id}: the {outcome} destination {arn} ({kind}) is not delivered by fogbank"
            )
        return Destination(arn, kind)

    def _url(self, logical_id: str, props: Props) -> None:
        if (draft := self._owner(logical_id, props, "TargetFunctionArn")) is not None:
            draft.streaming = draft.streaming or props.nested("InvokeMode") == "RESPONSE_STREAM"
