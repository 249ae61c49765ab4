"""Code reload: a change in a function's code or layer directory retires its environments.

`CodeWatcher` watches every code and layer directory of the app with `watchfiles` and tells the
invoker which functions a change made stale. The invoker keeps the books in `Generations`: an
environment started before its function's last change is never handed out again, so in-flight
invocations finish on the old code and the next invocation starts on the new code.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import logging
import os
import re
import weakref
from asyncio.subprocess import DEVNULL, PIPE
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

from watchfiles import Change, DefaultFilter, awatch

from fogbank._errors import FogbankError
from fogbank.config import NodeConfig
from fogbank.functions._layers import layer_set_key
from fogbank.functions._types import EnvState, ExecutionEnvironment
from fogbank.functions._zygote import Zygote
from fogbank.model import App, Function, FunctionConfig, Layer

log = logging.getLogger("fogbank.functions.reload")

# watchfiles yields a batch once a whole step passes without a new changed path, and at the
# latest `debounce` after the first one: an editor's save (temporary file, rename, backup) or a
# `git checkout` arrives as one batch, and one reload follows it about a step later.
_STEP_MS = 50
_DEBOUNCE_MS = 1600
# With nothing changing, the thread comes back this often: a deploy's new directories are watched.
_QUIET_MS = 1000
_IGNORED_DIRS = frozenset((*DefaultFilter.ignore_dirs, ".fogbank", ".ruff_cache"))
# watchfiles' editor and bytecode patterns, plus the file vim creates to test a directory.
_IGNORED_NAMES = re.compile("|".join((*DefaultFilter.ignore_entity_patterns, r"^4913$")))
_STOP_GRACE_S = 2.0
_READY_S = 10.0
_SYS_PATH = "import json, sys; print(json.dumps(sys.path))"


def versions(fn: Function) -> tuple[FunctionConfig, ...]:
    """`$LATEST` and every published version of a function."""
    return (fn.latest, *fn.versions.values())


def zygote_sets(configs: Iterable[FunctionConfig]) -> set[str]:
    """What replacing zygotes and layer merges is counted by: each config's layer set key, or
    "" for Python without layers (a custom runtime without layers has neither)."""
    sets = set()
    for cfg in configs:
        if cfg.layers:
            sets.add(layer_set_key(cfg.layers))
        elif cfg.is_python:
            sets.add("")
    return sets


@dataclass(frozen=True, slots=True)
class Reload:
    """One batch of file changes and the functions whose environments it retired."""

    functions: tuple[str, ...]
    """Names of the retired functions, sorted."""
    changed: tuple[Path, ...]
    """The changed files (absolute, resolved), sorted."""
    zygotes: bool = False
    """True when zygotes were replaced too: a layer or a preloaded module changed."""

    def describe(self, base: Path | None = None) -> str:
        """`reloaded: hello, OrdersFunction (src/hello/app.py changed)`, paths shown from `base`."""
        shown = [
            path.relative_to(base) if base is not None and path.is_relative_to(base) else path
            for path in self.changed
        ]
        return f"reloaded: {', '.join(self.functions)} ({_few(shown)} changed)"


def _few(items: Sequence[object]) -> str:
    """`a, b, c and 2 more`: a line stays a line however many files a checkout touched."""
    more = f" and {len(items) - 3} more" if len(items) > 3 else ""
    return ", ".join(str(item) for item in items[:3]) + more


class Invalidator(Protocol):
    """What the watcher needs from an invoker (`LocalInvoker` is one)."""

    async def invalidate(self, names: Collection[str], *, zygotes: bool = False) -> set[str]:
        """Retire the environments of these functions; return every function retired."""
        ...


class _Birth(NamedTuple):
    generation: int
    zygote: Zygote | None


class Generations:
    """How often each function's code and each layer set changed, and what every environment
    started with: the invoker's books for reloads."""

    def __init__(self) -> None:
        self._functions: dict[str, int] = {}
        self._layer_sets: dict[str, int] = {}
        """Zygote set (see `zygote_sets`) -> how often its zygotes and merge were replaced."""
        # Weak keys: an environment dropped anywhere leaves the books with it.
        self._births: weakref.WeakKeyDictionary[ExecutionEnvironment, _Birth] = (
            weakref.WeakKeyDictionary()
        )
        self._retired: list[Zygote] = []
        """Zygotes replaced by a reload, to stop once no environment forked from them lives."""

    def of(self, name: str) -> int:
        return self._functions.get(name, 0)

    def of_layers(self, zygote_set: str) -> int:
        return self._layer_sets.get(zygote_set, 0)

    def bump(self, names: Iterable[str], layer_sets: Iterable[str] = ()) -> None:
        for name in names:
            self._functions[name] = self.of(name) + 1
        for key in layer_sets:
            self._layer_sets[key] = self._layer_sets.get(key, 0) + 1

    def record(self, env: ExecutionEnvironment, generation: int, zygote: Zygote | None) -> None:
        """Note what `env` starts with; `generation` is read before anything is awaited, so a
        change that lands while the environment starts still retires it."""
        self._births[env] = _Birth(generation, zygote)

    def current(self, env: ExecutionEnvironment) -> bool:
        birth = self._births.get(env)
        return birth is None or birth.generation == self.of(env.config.name)

    def retire(self, zygote: Zygote) -> None:
        self._retired.append(zygote)

    def retired(self, *, unused_only: bool) -> list[Zygote]:
        """Take the retired zygotes, or only those no live environment was forked from (a
        zygote kills its children when stopped, and in-flight invocations must finish)."""
        if not self._retired:
            return []
        alive = {
            id(birth.zygote)
            for env, birth in list(self._births.items())
            if birth.zygote is not None and env.state is not EnvState.DEAD
        }
        taken = [z for z in self._retired if not (unused_only and id(z) in alive)]
        self._retired = [z for z in self._retired if z not in taken]
        return taken

    def run_dir(self, base: Path, layers: Sequence[Layer]) -> Path:
        """The run directory whose `layers/` holds the current merge of `layers`.

        The merge is built once per directory and only symlinks files, so it would not show
        files added to or removed from a layer. Each layer reload therefore merges into a new
        directory; environments still running keep the tree they started with.
        """
        generation = self.of_layers(layer_set_key(layers)) if layers else 0
        return base if generation == 0 else base / "reloaded" / str(generation)


class _Watching(asyncio.Event):
    """The stop event watchfiles polls every step from its thread; the first poll shows that
    the directories are watched (watchfiles sets up the watches before it starts polling)."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._polled = False

    def is_set(self) -> bool:
        if not self._polled:
            self._polled = True
            self._loop.call_soon_threadsafe(self.ready.set)
        return super().is_set()

    @property
    def stopped(self) -> bool:
        """`is_set` for our own use (a call to `is_set` would count as watchfiles' poll)."""
        return super().is_set()


class CodeWatcher:
    """Watches the app's code and layer directories and retires what a change makes stale.

    Changes under `__pycache__`, to bytecode and editor swap or backup files, and anything in
    the node's state directory are ignored. A change to a layer, or to a module preloaded in the
    zygotes (`--preload`) that lives in a watched directory, also replaces the zygotes.
    """

    def __init__(
        self,
        invoker: Invalidator,
        app_provider: Callable[[], App],
        config: NodeConfig,
        *,
        on_reload: Callable[[Reload], None] | None = None,
        on_services: Callable[[set[str]], Awaitable[None]] | None = None,
    ) -> None:
        """`on_services` is told which services' working directories changed (the node rolls
        them over to a new deployment); without it service directories are not watched."""
        self._invoker = invoker
        self._on_services = on_services
        self._app_provider = app_provider
        self._config = config
        self._on_reload = on_reload
        self._state_dir = config.state_dir.resolve()
        self._preloaded = {name.partition(".")[0] for name in config.functions.preload}
        self._import_roots: list[Path] = []
        self._roots: list[Path] = []
        self._stopping: _Watching | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start watching; returns once the directories are watched, so no later edit is missed."""
        if self._preloaded:
            interpreters = {
                self._config.functions.interpreter_for(cfg.runtime)
                for fn in self._app_provider().functions.values()
                for cfg in versions(fn)
                if cfg.is_python
            }
            self._import_roots = await _import_roots(interpreters)
        self._stopping = stopping = _Watching()
        self._task = task = asyncio.create_task(self._run(stopping), name="fogbank-code-reload")
        ready = asyncio.create_task(stopping.ready.wait())
        await asyncio.wait({ready, task}, timeout=_READY_S, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if task.done():
            task.result()
        elif not stopping.ready.is_set():
            log.warning("code reload: the watch is not confirmed yet; early edits may be missed")

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._task is not None:
            # The thread sees the stop event within a step; a reload still running is cancelled.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._task, _STOP_GRACE_S)
            self._task = None

    async def _run(self, stopping: _Watching) -> None:
        try:
            await self._watch(stopping)
        except OSError as exc:
            # Typically the inotify limits (fs.inotify.max_user_watches); serving goes on.
            log.warning("code reload is off: cannot watch %s: %s", _few(self._roots), exc)
            stopping.ready.set()

    async def _watch(self, stopping: _Watching) -> None:
        while not stopping.stopped:
            self._roots = _outermost(self._directories())
            if not self._roots:
                # Nothing to watch until a deploy brings code.
                stopping.ready.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), _QUIET_MS / 1000)
                continue
            batches = awatch(
                *self._roots,
                watch_filter=self._relevant,
                debounce=_DEBOUNCE_MS,
                step=_STEP_MS,
                stop_event=stopping,
                rust_timeout=_QUIET_MS,
                yield_on_timeout=True,
            )
            async with contextlib.aclosing(batches):
                async for changes in batches:
                    if changes:
                        await self._apply(self._app_provider(), _lasting(changes))
                    if _outermost(self._directories()) != self._roots:
                        break  # a deploy, or a directory deleted or created: watch anew

    def _relevant(self, change: Change, path: str) -> bool:
        changed = Path(path)
        if changed.is_relative_to(self._state_dir):
            return False
        # Only the part below the watched directory counts: the project itself may well live
        # under a directory named like one we ignore.
        root = next((r for r in self._roots if changed.is_relative_to(r)), None)
        parts = changed.relative_to(root).parts if root is not None else changed.parts
        if any(part in _IGNORED_DIRS for part in parts):
            return False
        return not _IGNORED_NAMES.search(changed.name)

    def _directories(self) -> set[Path]:
        app = self._app_provider()
        dirs = _directories(app)
        if self._on_services is not None:
            dirs |= {s.working_dir.resolve() for s in app.services.values()}
        return {d for d in dirs if d.is_dir()}

    async def _apply(self, app: App, paths: set[Path]) -> None:
        services = {s.name for s in app.services.values() if _touched(paths, s.working_dir)}
        if services and self._on_services is not None:
            log.info("code change in service(s) %s: new deployment", ", ".join(sorted(services)))
            await self._on_services(services)
        names, zygotes = self._affected(app, paths)
        if not names:
            return
        await asyncio.to_thread(_drop_bytecode, paths)
        try:
            retired = await self._invoker.invalidate(names, zygotes=zygotes)
        except (FogbankError, OSError) as exc:
            # Environments are retired by then; the next invocation reports what is broken.
            log.warning("reload of %s: %s", ", ".join(sorted(names)), exc)
            return
        reload = Reload(
            functions=tuple(sorted(retired, key=str.lower)),
            changed=tuple(sorted(paths)),
            zygotes=zygotes,
        )
        log.info("%s", reload.describe())
        if self._on_reload is not None:
            self._on_reload(reload)

    def _affected(self, app: App, paths: set[Path]) -> tuple[set[str], bool]:
        """The functions whose code or layers hold a changed path; True if zygotes are stale."""
        names: set[str] = set()
        zygotes = False
        for fn in app.functions.values():
            for cfg in versions(fn):
                if _touched(paths, cfg.code_dir):
                    names.add(fn.name)
                if any(_touched(paths, layer.content_dir) for layer in cfg.layers):
                    names.add(fn.name)
                    zygotes = True
        if names and not zygotes and self._touches_preload(paths):
            # Every environment was forked with the old module in memory.
            names |= {fn.name for fn in app.functions.values() if fn.latest.is_python}
            zygotes = True
        return names, zygotes

    def _touches_preload(self, paths: set[Path]) -> bool:
        for path in paths:
            for root in self._import_roots:
                if path != root and path.is_relative_to(root):
                    top = path.relative_to(root).parts[0].partition(".")[0]
                    if top in self._preloaded:
                        return True
        return False


def _lasting(changes: set[tuple[Change, str]]) -> set[Path]:
    """The changed paths, less files that came and went within the batch (the temporary file
    of an editor or of `sed -i`): those changed nothing."""
    added = {path for change, path in changes if change is Change.added}
    deleted = {path for change, path in changes if change is Change.deleted}
    transient = {path for path in added & deleted if not os.path.lexists(path)}
    return {Path(path) for _, path in changes if path not in transient}


def _directories(app: App) -> set[Path]:
    dirs = set()
    for fn in app.functions.values():
        for cfg in versions(fn):
            dirs.add(cfg.code_dir.resolve())
            dirs.update(layer.content_dir.resolve() for layer in cfg.layers)
    return {d for d in dirs if d.is_dir()}


def _outermost(dirs: set[Path]) -> list[Path]:
    """The directories not inside another one (a recursive watch of those covers all)."""
    kept: list[Path] = []
    for candidate in sorted(dirs, key=lambda d: len(d.parts)):
        if not any(candidate.is_relative_to(outer) for outer in kept):
            kept.append(candidate)
    return sorted(kept)


def _touched(paths: set[Path], directory: Path) -> bool:
    resolved = directory.resolve()
    return any(path.is_relative_to(resolved) for path in paths)


def _drop_bytecode(paths: Iterable[Path]) -> None:
    """Delete the cached bytecode of changed sources: Python trusts a `.pyc` whose recorded
    source mtime (whole seconds) and size match, so a quick same-size edit would run old code."""
    for path in paths:
        if path.suffix == ".py":
            pattern = str(path.parent / "__pycache__" / f"{glob.escape(path.stem)}.*.pyc")
            for cached in glob.glob(pattern):
                with contextlib.suppress(OSError):
                    Path(cached).unlink()


async def _import_roots(interpreters: Iterable[str]) -> list[Path]:
    """Where zygotes import preloaded modules from besides layers: each interpreter's own
    `sys.path` (its site-packages, `.pth` entries such as editable installs, `PYTHONPATH`)."""
    entries: list[str] = []
    for interpreter in sorted(interpreters):
        try:
            proc = await asyncio.create_subprocess_exec(
                interpreter, "-c", _SYS_PATH, stdin=DEVNULL, stdout=PIPE, stderr=DEVNULL
            )
            out, _ = await proc.communicate()
        except OSError:
            continue  # the zygote reports a missing interpreter in its own words
        if proc.returncode == 0:
            entries += [entry for entry in json.loads(out) if entry]
    return await asyncio.to_thread(lambda: [Path(entry).resolve() for entry in entries])
