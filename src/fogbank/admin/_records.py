"""What the admin API remembers, one immutable record per thing it created or changed.

Template APIs, keys and plans come from the template at every start; the records are laid over
them. A template stage gets a record the first time the admin API changes it; a template API gets
a deployment record (and a mark naming it) each time its routes differ from every deployment
before, as a `sam deploy` of a changed API would create one.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from fogbank.admin._codec import decode, encode
from fogbank.model import ApiKey, ApiKind, Deployment, Route, StageSettings, UsagePlan

API, DEPLOYMENT, STAGE, KEY, PLAN, MARK = "api", "deployment", "stage", "key", "plan", "mark"
"""Record kinds in the store."""

_ID_CHARS = string.ascii_lowercase + string.digits


def new_id(length: int) -> str:
    """A random id of API Gateway's alphabet (lower-case letters and digits)."""
    return "".join(secrets.choice(_ID_CHARS) for _ in range(length))


def content_id(api_id: str, routes: tuple[Route, ...]) -> str:
    """A deployment id derived from the routes: the same template API loads as the same id."""
    digest = hashlib.sha256(api_id.encode() + orjson.dumps(encode(routes))).digest()
    return "".join(_ID_CHARS[byte % len(_ID_CHARS)] for byte in digest[:6])


@dataclass(frozen=True, slots=True)
class ApiRecord:
    """An API created by an import; its routes are rebuilt from `body` at every start."""

    api_id: str
    kind: ApiKind
    name: str
    body: Mapping[str, Any]
    """The OpenAPI document as imported (parsed JSON or YAML)."""
    created_s: float
    description: str = ""
    version: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    """A deployment of an API, its route snapshot included."""

    api_id: str
    deployment: Deployment
    auto_deployed: bool = False
    """HTTP APIs: made by a stage's auto-deploy rather than by `CreateDeployment`."""


@dataclass(frozen=True, slots=True)
class StageRecord:
    """A stage as the admin API created or last changed it."""

    api_id: str
    name: str
    settings: StageSettings
    variables: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    auto_deploy: bool = False
    """HTTP APIs: every change of the API deploys to this stage."""
    tracing: bool = False
    cache_cluster_size: str = "0.5"
    created_s: float = 0.0
    updated_s: float = 0.0


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """An API key with the dates and customer id `GetApiKeys` reports."""

    key: ApiKey
    created_s: float
    updated_s: float
    customer_id: str = ""


@dataclass(frozen=True, slots=True)
class PlanRecord:
    plan: UsagePlan
    created_s: float


Change = tuple[str, str, Any]


def stage_key(api_id: str, name: str) -> str:
    return f"{api_id}/{name}"


def put(kind: str, key: str, record: object) -> Change:
    return kind, key, encode(record)


def drop(kind: str, key: str) -> Change:
    return kind, key, None


_TYPES: dict[str, type] = {
    API: ApiRecord,
    DEPLOYMENT: DeploymentRecord,
    STAGE: StageRecord,
    KEY: KeyRecord,
    PLAN: PlanRecord,
}


def decode_records(raw: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The store's JSON back into records (marks stay plain deployment ids)."""
    out: dict[str, dict[str, Any]] = {kind: {} for kind in (*_TYPES, MARK)}
    for kind, records in raw.items():
        cls = _TYPES.get(kind)
        for key, body in records.items():
            out.setdefault(kind, {})[key] = body if cls is None else decode(cls, body)
    return out
