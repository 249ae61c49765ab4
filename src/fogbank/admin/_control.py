"""The admin API's state and how it becomes the app the node serves.

`AdminControl` holds the records (`_records`), replays them over the template's app at start, and
runs every change the same way: under one lock, build the records the change makes, build the
new `App` from them (so an invalid change fails before anything is written), write the records
in one transaction, then swap the app in with `node.deploy`. A change that raises leaves both the
store and the deployed app as they were.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from fogbank.admin._errors import BadRequest, NotFound
from fogbank.admin._imports import api_from_record
from fogbank.admin._records import (
    API,
    DEPLOYMENT,
    KEY,
    MARK,
    PLAN,
    STAGE,
    ApiRecord,
    Change,
    DeploymentRecord,
    KeyRecord,
    PlanRecord,
    StageRecord,
    content_id,
    decode_records,
    put,
    stage_key,
)
from fogbank.admin._state import AdminStore
from fogbank.model import Api, App, Deployment, Stage, StageSettings

Clock = Callable[[], float]


@dataclass(slots=True)
class Records:
    """Everything the admin API created or changed, by kind and key (see `_records`)."""

    apis: dict[str, ApiRecord]
    deployments: dict[str, DeploymentRecord]
    """`{api_id}/{deployment_id}` -> record."""
    stages: dict[str, StageRecord]
    """`{api_id}/{stage}` -> record."""
    keys: dict[str, KeyRecord]
    plans: dict[str, PlanRecord]
    marks: dict[str, str]
    """Template API id -> the deployment its template routes were last loaded as."""

    def apply(self, changes: Iterable[Change], decoded: Mapping[str, Mapping[str, Any]]) -> None:
        table: dict[str, dict[str, Any]] = {
            API: self.apis,
            DEPLOYMENT: self.deployments,
            STAGE: self.stages,
            KEY: self.keys,
            PLAN: self.plans,
            MARK: self.marks,
        }
        for kind, key, body in changes:
            if body is None:
                table[kind].pop(key, None)
            else:
                table[kind][key] = decoded[kind][key]


class AdminControl:
    """The admin API's model of the node: records in, apps out.

    `template` is the app loaded from the template, `current` returns the app deployed now (its
    functions may have moved on: aliases shift during gradual deployments), `deploy` swaps in a
    new one. `clock` dates records (epoch seconds).
    """

    def __init__(
        self,
        store: AdminStore,
        template: App,
        current: Callable[[], App],
        deploy: Callable[[App], Awaitable[None]],
        *,
        clock: Clock = time.time,
    ) -> None:
        self.store = store
        self.template = template
        self.current = current
        self._deploy = deploy
        self.clock = clock
        self.started_s = clock()
        """When the node started: the creation date reported for template APIs, keys, plans."""
        self.lock = asyncio.Lock()
        self.records = Records({}, {}, {}, {}, {}, {})
        self._imported: dict[str, tuple[ApiRecord, Api]] = {}

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> App:
        """Load the records, adopt the template's APIs as deployments; the app to serve."""
        raw = await asyncio.to_thread(self.store.load)
        decoded = decode_records(raw)
        self.records = Records(
            apis=decoded[API],
            deployments=decoded[DEPLOYMENT],
            stages=decoded[STAGE],
            keys=decoded[KEY],
            plans=decoded[PLAN],
            marks=decoded[MARK],
        )
        changes = self._adopt_template()
        app = self.build(self.current(), changes)
        await self.store.write(changes)
        self.records.apply(changes, _decoded(changes))
        return app

    def close(self) -> None:
        self.store.close()

    def _adopt_template(self) -> list[Change]:
        """A deployment for each template API whose routes changed since the last start, and
        its stages moved to it (as CloudFormation moves a stage to a new deployment)."""
        changes: list[Change] = []
        now = self.clock()
        for api in self.template.apis.values():
            dep_id = content_id(api.api_id, api.routes)
            key = f"{api.api_id}/{dep_id}"
            if key not in self.records.deployments:
                deployment = Deployment(dep_id, api.routes, "loaded from the template", now)
                changes.append(put(DEPLOYMENT, key, DeploymentRecord(api.api_id, deployment)))
            old = self.records.marks.get(api.api_id)
            if old == dep_id:
                continue
            changes.append((MARK, api.api_id, dep_id))
            for skey, stage in self.records.stages.items():
                if stage.api_id == api.api_id and stage.settings.deployment_id == old:
                    moved = replace(stage.settings, deployment_id=dep_id)
                    changes.append(put(STAGE, skey, replace(stage, settings=moved)))
        return changes

    # -- changes ------------------------------------------------------------------------------

    async def commit(self, changes: list[Change]) -> App:
        """Check, persist and deploy one change (call with `lock` held)."""
        self.build(self.current(), changes)  # raises before anything is written
        await self.store.write(changes)
        self.records.apply(changes, _decoded(changes))
        # Built again from the app of this moment: an alias may have shifted during the write.
        app = self.build(self.current())
        await self._deploy(app)
        return app

    def build(self, current: App, changes: Iterable[Change] = ()) -> App:
        """The app the records (with `changes` applied) make of `current`."""
        records = self.records
        pending = list(changes)
        if pending:
            records = Records(
                dict(records.apis),
                dict(records.deployments),
                dict(records.stages),
                dict(records.keys),
                dict(records.plans),
                dict(records.marks),
            )
            records.apply(pending, _decoded(pending))
        apis: dict[str, Api] = {}
        for api in self.template.apis.values():
            apis[api.api_id] = _assemble(api, records)
        for rec in records.apis.values():
            apis[rec.api_id] = _assemble(self._imported_api(rec, current), records)
        keys = {**self.template.api_keys, **{k: r.key for k, r in records.keys.items()}}
        plans = {**self.template.usage_plans, **{k: r.plan for k, r in records.plans.items()}}
        return replace(current, apis=apis, api_keys=keys, usage_plans=plans)

    def _imported_api(self, rec: ApiRecord, current: App) -> Api:
        cached = self._imported.get(rec.api_id)
        if cached is not None and cached[0] is rec:
            return cached[1]
        api = api_from_record(rec, current)
        self._imported[rec.api_id] = (rec, api)
        return api

    # -- reading ------------------------------------------------------------------------------

    def api(self, api_id: str, kind: str | None = None) -> Api:
        """An API of the app deployed now, or 404 in API Gateway's words."""
        api = self.current().apis.get(api_id)
        if api is None or (kind is not None and api.kind.value != kind):
            raise NotFound("Invalid API identifier specified")
        return api

    def stage(self, api: Api, name: str) -> StageRecord:
        """A stage's record; a template stage the admin API never changed gets one made up."""
        found = self.records.stages.get(stage_key(api.api_id, name))
        if found is not None:
            return found
        stage = api.stages.get(name)
        if stage is None:
            raise NotFound("Invalid stage identifier specified")
        settings = api.management.stage_settings.get(name, StageSettings())
        return StageRecord(
            api.api_id,
            name,
            settings,
            variables=dict(stage.variables),
            auto_deploy=api.kind.value == "HTTP",
            created_s=self.started_s,
        )

    def deployment(self, api: Api, deployment_id: str) -> DeploymentRecord:
        found = self.records.deployments.get(f"{api.api_id}/{deployment_id}")
        if found is None:
            raise NotFound("Invalid Deployment identifier specified")
        return found

    def deployments(self, api_id: str) -> list[DeploymentRecord]:
        return [d for d in self.records.deployments.values() if d.api_id == api_id]

    def check_deployment(self, api: Api, deployment_id: str) -> None:
        if f"{api.api_id}/{deployment_id}" not in self.records.deployments:
            raise BadRequest(f"Invalid deployment identifier specified: {deployment_id}")


def _decoded(changes: Iterable[Change]) -> dict[str, dict[str, Any]]:
    raw: dict[str, dict[str, Any]] = {}
    for kind, key, body in changes:
        if body is not None:
            raw.setdefault(kind, {})[key] = body
    return decode_records(raw)


def _assemble(base: Api, records: Records) -> Api:
    """An API with its deployments and with its stages pointing where the records say."""
    api_id = base.api_id
    deployments = {
        rec.deployment.deployment_id: rec.deployment
        for rec in records.deployments.values()
        if rec.api_id == api_id
    }
    stages = dict(base.stages)
    settings = dict(base.management.stage_settings)
    mark = records.marks.get(api_id)
    if mark is not None:
        for name in stages:
            settings[name] = replace(settings.get(name, StageSettings()), deployment_id=mark)
    for rec in records.stages.values():
        if rec.api_id == api_id:
            stages[rec.name] = Stage(rec.name, dict(rec.variables))
            settings[rec.name] = rec.settings
    management = replace(base.management, stage_settings=settings)
    return replace(base, deployments=deployments, stages=stages, management=management)
