"""The app model for functions: immutable descriptions of functions, versions, aliases and layers."""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from fogbank.model._traffic import DeploymentPreference

LATEST = "$LATEST"

PYTHON_RUNTIMES = tuple(f"python3.{minor}" for minor in range(9, 15))
CUSTOM_RUNTIMES = ("provided", "provided.al2", "provided.al2023")
SUPPORTED_RUNTIMES = PYTHON_RUNTIMES + CUSTOM_RUNTIMES

MAX_LAYERS = 5
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10_240
MAX_TIMEOUT_S = 900


class TenancyMode(enum.Enum):
    """How execution environments are shared between tenants."""

    NONE = "NONE"
    """Environments are shared by every invocation of the function version (the default)."""
    PER_TENANT = "PER_TENANT"
    """Every invocation carries a tenant id; an environment only ever serves one tenant."""


@dataclass(frozen=True, slots=True)
class Layer:
    """One published version of a layer: a directory whose content is merged into `/opt`."""

    name: str
    """The layer name (`LayerName`, or the template's logical id)."""
    content_dir: Path
    """Directory holding `python/`, `bin/`, `lib/` ... as the layer's zip would."""
    version: int = 1
    arn: str = ""
    """The layer version ARN; filled in by `App` when empty."""
    logical_id: str | None = None
    compatible_runtimes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Destination:
    """Where an async invocation's outcome record goes (only Lambda destinations run locally)."""

    arn: str
    kind: str = "Lambda"
    """`Lambda`, `SQS`, `SNS` or `EventBridge`; fogbank delivers to `Lambda` and warns for the rest."""


@dataclass(frozen=True, slots=True)
class EventInvokeConfig:
    """Async invocation settings (`AWS::Lambda::EventInvokeConfig`, SAM `EventInvokeConfig`)."""

    maximum_retry_attempts: int = 2
    """0-2 retries after a function error."""
    maximum_event_age_s: int = 21_600
    """60-21,600 seconds; an older event is dropped (and sent to the on-failure destination)."""
    on_success: Destination | None = None
    on_failure: Destination | None = None


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """The configuration of one function version; `$LATEST` and every published version has one."""

    name: str
    """The function name as Lambda knows it (`FunctionName`, else the template's logical id)."""
    runtime: str
    """`python3.9` ... `python3.14`, `provided.al2` or `provided.al2023`."""
    handler: str
    """`module.function` for Python; free text passed as `_HANDLER` for custom runtimes."""
    code_dir: Path
    layers: tuple[Layer, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout_s: int = 3
    memory_mb: int = 128
    ephemeral_storage_mb: int = 512
    description: str = ""
    architectures: tuple[str, ...] = ("x86_64",)
    version: str = LATEST
    """`$LATEST` or the published version number as a string."""

    @property
    def is_python(self) -> bool:
        return self.runtime.startswith("python")

    def published(self, version: str) -> FunctionConfig:
        return replace(self, version=version)


@dataclass(frozen=True, slots=True)
class Alias:
    """A named pointer at a version, with optional weighted routing to one other version."""

    name: str
    function_version: str
    additional_weights: Mapping[str, float] = field(default_factory=dict)
    """`RoutingConfig.AdditionalVersionWeights`: version -> fraction 0.0-1.0."""
    description: str = ""

    def pick_version(self, rng: random.Random | None = None) -> str:
        """Choose the version for one invocation, honouring the additional weights."""
        if not self.additional_weights:
            return self.function_version
        draw = (rng or random).random()
        for version, weight in self.additional_weights.items():
            if draw < weight:
                return version
            draw -= weight
        return self.function_version


@dataclass(frozen=True, slots=True)
class Function:
    """A function: its `$LATEST` configuration, published versions, aliases and function-wide settings."""

    latest: FunctionConfig
    versions: Mapping[str, FunctionConfig] = field(default_factory=dict)
    """Published versions by number ("1", "2", ...)."""
    aliases: Mapping[str, Alias] = field(default_factory=dict)
    logical_id: str | None = None
    """The template's logical id, which also names the function (as `sam local` allows)."""
    reserved_concurrency: int | None = None
    provisioned_concurrency: Mapping[str, int] = field(default_factory=dict)
    """Qualifier (version or alias) -> environments kept initialised."""
    tenancy: TenancyMode = TenancyMode.NONE
    event_invoke: EventInvokeConfig = field(default_factory=EventInvokeConfig)
    streaming: bool = False
    """True when the function's URL uses `InvokeMode: RESPONSE_STREAM`."""
    deployment_preference: DeploymentPreference | None = None
    """`AutoPublishAlias` (+ `DeploymentPreference`): a code change publishes a version and moves
    the alias to it, gradually when the preference says so."""

    @property
    def name(self) -> str:
        return self.latest.name

    def config(self, version: str) -> FunctionConfig | None:
        if version == LATEST:
            return self.latest
        return self.versions.get(version)
