"""Gradual deployments of Lambda aliases: what CodeDeploy does for SAM's `DeploymentPreference`.

On AWS, `sam deploy` of a function with `AutoPublishAlias` publishes a new version when the code
changed, and CodeDeploy moves the alias from the old version to the new one as the preference
says (`Canary10Percent5Minutes`: 10 % of invocations for five minutes, then all of them). Locally
the deploy is a code change that the reload watcher sees, so `AliasShifter.code_changed` does the
rest: it publishes version N+1 and moves the alias through the preference's steps, each step a new
app snapshot with the alias's `additional_weights` set, deployed on the node.

Published versions are immutable as on AWS: a function with a gradual preference gets a copy of
its code directory for each published version (in `<state-dir>/versions/`, made at start for the
version the alias points at and at each publish), so that version N keeps running the old code
while N+1 runs the new. Versions published this way last until the node stops; the template's
versions come back at the next start.

Hooks: the `PreTraffic` function is invoked before any traffic moves and the `PostTraffic`
function after all of it did, each with `{"DeploymentId", "LifecycleEventHookExecutionId"}`. There
is no CodeDeploy to report to locally, so a hook's verdict is its invocation: a function error
stops the deployment (pre) or rolls the alias back to the old version (post). CloudWatch alarms
are not evaluated.

The timer is injectable: tests move time by hand and never sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import orjson

from fogbank.functions._types import Invoker, InvokeRequest
from fogbank.model import Alias, App, DeploymentPreference, Function, FunctionConfig, ShiftKind

log = logging.getLogger("fogbank.functions.traffic")

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".fogbank")


class Timer(Protocol):
    """Time for the shifter: the real one sleeps, a test's moves when told."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RealTimer:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class Shift:
    """One step of a deployment, reported to `on_shift` (the CLI prints them)."""

    function: str
    alias: str
    old_version: str
    new_version: str
    weight: float
    """Share of invocations the new version gets from now on (1.0: the alias points at it)."""
    outcome: str = "shifted"
    """`shifted`, `completed`, `stopped` (pre-traffic hook failed) or `rolled back`."""


class AliasShifter:
    """Publishes versions and moves aliases for functions with a `DeploymentPreference`.

    `current` returns the deployed app and `deploy` swaps a new one in (the node's);
    `invoker` runs hooks; `versions_dir` holds the code of published versions.
    """

    def __init__(
        self,
        current: Callable[[], App],
        deploy: Callable[[App], Awaitable[None]],
        invoker: Invoker,
        versions_dir: Path,
        *,
        timer: Timer | None = None,
        on_shift: Callable[[Shift], None] | None = None,
    ) -> None:
        self._current = current
        self._deploy = deploy
        self._invoker = invoker
        self.versions_dir = versions_dir.resolve()
        """Absolute: environments start in their code directory, whatever the node's cwd."""
        self.timer: Timer = timer or RealTimer()
        self._on_shift = on_shift
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def prepare(self, app: App) -> App:
        """Freeze the code of every version an alias with a gradual preference points at."""
        await asyncio.to_thread(shutil.rmtree, self.versions_dir, True)
        functions = dict(app.functions)
        for name, fn in app.functions.items():
            pref = fn.deployment_preference
            if pref is None or pref.kind is ShiftKind.ALL_AT_ONCE or pref.alias not in fn.aliases:
                continue
            version = fn.aliases[pref.alias].function_version
            if version not in fn.versions:
                continue  # an alias on $LATEST follows the code, as on AWS
            frozen = await self._freeze(fn, version)
            functions[name] = replace(fn, versions={**fn.versions, version: frozen})
        return replace(app, functions=functions)

    async def _freeze(self, fn: Function, version: str) -> FunctionConfig:
        """`version`'s configuration with a copy of the function's code as it is now."""
        config = fn.config(version) or fn.latest.published(version)
        target = self.versions_dir / fn.name / version
        source = fn.latest.code_dir
        await asyncio.to_thread(
            shutil.copytree, source, target, symlinks=True, ignore=_IGNORED, dirs_exist_ok=True
        )
        return replace(config, code_dir=target)

    async def code_changed(self, names: Iterable[str]) -> list[str]:
        """Publish and start shifting for each named function with a preference; the names of
        those that got a new version."""
        started = []
        for name in sorted(set(names)):
            fn = self._current().functions.get(name)
            if fn is None or fn.deployment_preference is None:
                continue
            pref = fn.deployment_preference
            if pref.alias not in fn.aliases:
                continue
            running = self._tasks.pop(name, None)
            if running is not None:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
            old, new = await self._publish(name, pref)
            task = asyncio.create_task(self._shift(name, pref, old, new), name=f"shift-{name}")
            self._tasks[name] = task
            started.append(name)
        return started

    async def wait(self, name: str) -> None:
        """Until the deployment of `name` (if any) ends."""
        task = self._tasks.get(name)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _publish(self, name: str, pref: DeploymentPreference) -> tuple[str, str]:
        """Version N+1 of the function's current code; the alias back on its primary version."""
        fn = self._current().functions[name]
        old = fn.aliases[pref.alias].function_version
        new = str(max((int(v) for v in fn.versions if v.isdigit()), default=0) + 1)
        config = fn.latest.published(new)
        if pref.kind is not ShiftKind.ALL_AT_ONCE:
            config = await self._freeze(fn, new)
        alias = Alias(pref.alias, old, {}, fn.aliases[pref.alias].description)
        fn = self._current().functions[name]  # the copy took a while: start from the latest
        updated = replace(
            fn, versions={**fn.versions, new: config}, aliases={**fn.aliases, pref.alias: alias}
        )
        await self._apply(updated)
        return old, new

    async def _shift(self, name: str, pref: DeploymentPreference, old: str, new: str) -> None:
        deployment_id = f"d-{uuid.uuid4().hex[:9].upper()}"
        if pref.pre_traffic_hook and not await self._hook(pref.pre_traffic_hook, deployment_id):
            self._report(Shift(name, pref.alias, old, new, 0.0, "stopped"))
            return
        start = self.timer.now()
        for offset, weight in pref.steps():
            delay = start + offset - self.timer.now()
            if delay > 0:
                await self.timer.sleep(delay)
            await self._point(name, pref.alias, old, new, weight)
            if weight < 1.0 or pref.post_traffic_hook is None:
                outcome = "shifted" if weight < 1.0 else "completed"
                self._report(Shift(name, pref.alias, old, new, weight, outcome))
        if pref.post_traffic_hook:
            if await self._hook(pref.post_traffic_hook, deployment_id):
                self._report(Shift(name, pref.alias, old, new, 1.0, "completed"))
            else:
                await self._point(name, pref.alias, old, new, 0.0)
                self._report(Shift(name, pref.alias, old, new, 0.0, "rolled back"))
        self._tasks.pop(name, None)

    async def _point(self, name: str, alias_name: str, old: str, new: str, weight: float) -> None:
        fn = self._current().functions.get(name)
        if fn is None:
            return
        description = fn.aliases[alias_name].description if alias_name in fn.aliases else ""
        if weight >= 1.0:
            alias = Alias(alias_name, new, {}, description)
        else:
            alias = Alias(alias_name, old, {new: weight} if weight > 0 else {}, description)
        await self._apply(replace(fn, aliases={**fn.aliases, alias_name: alias}))

    async def _apply(self, fn: Function) -> None:
        app = self._current()
        await self._deploy(replace(app, functions={**app.functions, fn.name: fn}))

    async def _hook(self, hook: str, deployment_id: str) -> bool:
        """Run a lifecycle hook; True when it succeeded."""
        fn = self._current().find_function(hook)
        if fn is None:
            log.warning("deployment hook %s is not a function of this app", hook)
            return False
        payload = {
            "DeploymentId": deployment_id,
            "LifecycleEventHookExecutionId": str(uuid.uuid4()),
        }
        request = InvokeRequest(
            function_name=fn.name,
            config=fn.latest,
            payload=orjson.dumps(payload),
            request_id=str(uuid.uuid4()),
            invoked_arn=self._current().identity.function_arn(fn.name),
        )
        result = await self._invoker.invoke(request)
        if result.function_error:
            log.warning("deployment hook %s failed: %s", hook, result.payload[:200].decode())
        return result.function_error is None

    def _report(self, shift: Shift) -> None:
        log.info(
            "%s:%s %s -> %s: %s (%.0f%%)",
            shift.function,
            shift.alias,
            shift.old_version,
            shift.new_version,
            shift.outcome,
            shift.weight * 100,
        )
        if self._on_shift is not None:
            self._on_shift(shift)
