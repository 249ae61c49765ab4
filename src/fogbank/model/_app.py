"""The app model: an immutable snapshot of everything deployed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from fogbank._errors import FogbankError
from fogbank.model._api import Api, FunctionUrl
from fogbank.model._function import Function, Layer
from fogbank.model._management import ApiKey, UsagePlan
from fogbank.model._service import (
    DiscoveryInstanceSpec,
    DiscoveryServiceSpec,
    NamespaceSpec,
    ServiceSpec,
)

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"


@dataclass(frozen=True, slots=True)
class Identity:
    """The region and account fogbank pretends to be, used in ARNs and pseudo parameters."""

    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT

    def function_arn(self, name: str, qualifier: str | None = None) -> str:
        arn = f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"
        return f"{arn}:{qualifier}" if qualifier else arn

    def layer_arn(self, name: str, version: int) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:layer:{name}:{version}"


@dataclass(frozen=True, slots=True)
class App:
    """Everything deployed on a node. Build a new `App` to change anything; never mutate one."""

    functions: Mapping[str, Function] = field(default_factory=dict)
    """Functions by function name."""
    layers: Mapping[str, Layer] = field(default_factory=dict)
    """Layer versions by ARN."""
    identity: Identity = field(default_factory=Identity)
    source: Path | None = None
    """The template this app was loaded from, if any."""
    warnings: tuple[str, ...] = ()
    """Things in the source that fogbank accepted but does not serve (one line each)."""
    apis: Mapping[str, Api] = field(default_factory=dict)
    """REST and HTTP APIs by API id."""
    function_urls: Mapping[str, FunctionUrl] = field(default_factory=dict)
    """Function URLs by function name."""
    usage_plans: Mapping[str, UsagePlan] = field(default_factory=dict)
    """Usage plans by plan id."""
    api_keys: Mapping[str, ApiKey] = field(default_factory=dict)
    """API keys by key id."""
    services: Mapping[str, ServiceSpec] = field(default_factory=dict)
    """Long-running services by service name."""
    namespaces: Mapping[str, NamespaceSpec] = field(default_factory=dict)
    """Cloud Map namespaces the template declares, by logical id."""
    discovery_services: Mapping[str, DiscoveryServiceSpec] = field(default_factory=dict)
    """Cloud Map services the template declares, by logical id."""
    discovery_instances: Mapping[str, DiscoveryInstanceSpec] = field(default_factory=dict)
    """Cloud Map instances the template declares (endpoints fogbank does not run), by logical
    id."""

    @classmethod
    def build(
        cls,
        functions: Iterable[Function] = (),
        *,
        identity: Identity | None = None,
        source: Path | None = None,
        warnings: Iterable[str] = (),
        apis: Iterable[Api] = (),
        function_urls: Iterable[FunctionUrl] = (),
        usage_plans: Iterable[UsagePlan] = (),
        api_keys: Iterable[ApiKey] = (),
        services: Iterable[ServiceSpec] = (),
        namespaces: Iterable[NamespaceSpec] = (),
        discovery_services: Iterable[DiscoveryServiceSpec] = (),
        discovery_instances: Iterable[DiscoveryInstanceSpec] = (),
    ) -> App:
        """Assemble an app from functions, filling in layer ARNs; the programmatic entry point."""
        ident = identity or Identity()
        by_name: dict[str, Function] = {}
        layers: dict[str, Layer] = {}

        def with_arn(layer: Layer) -> Layer:
            if not layer.arn:
                layer = replace(layer, arn=ident.layer_arn(layer.name, layer.version))
            layers[layer.arn] = layer
            return layer

        for fn in functions:
            if fn.name in by_name:
                raise FogbankError(f"two functions are named {fn.name!r}")
            latest = replace(fn.latest, layers=tuple(with_arn(ly) for ly in fn.latest.layers))
            versions = {
                v: replace(cfg, layers=tuple(with_arn(ly) for ly in cfg.layers))
                for v, cfg in fn.versions.items()
            }
            by_name[fn.name] = replace(fn, latest=latest, versions=versions)
        api_map: dict[str, Api] = {}
        for api in apis:
            if api.api_id in api_map:
                raise FogbankError(f"two APIs have the id {api.api_id!r}")
            api_map[api.api_id] = api
        return cls(
            functions=by_name,
            layers=layers,
            identity=ident,
            source=source,
            warnings=tuple(warnings),
            apis=api_map,
            function_urls={url.function_name: url for url in function_urls},
            usage_plans={plan.plan_id: plan for plan in usage_plans},
            api_keys={key.key_id: key for key in api_keys},
            services=_unique((s.name, s) for s in services),
            namespaces={ns.logical_id: ns for ns in namespaces},
            discovery_services={svc.logical_id: svc for svc in discovery_services},
            discovery_instances={i.logical_id: i for i in discovery_instances},
        )

    def find_function(self, name: str) -> Function | None:
        """Look a function up by name or by the template's logical id."""
        fn = self.functions.get(name)
        if fn is not None:
            return fn
        for candidate in self.functions.values():
            if candidate.logical_id == name:
                return candidate
        return None


def _unique(pairs: Iterable[tuple[str, ServiceSpec]]) -> dict[str, ServiceSpec]:
    out: dict[str, ServiceSpec] = {}
    for name, spec in pairs:
        if name in out:
            raise FogbankError(f"two services are named {name!r}")
        out[name] = spec
    return out
