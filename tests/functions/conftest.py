"""Fixtures for tests that run real execution environments."""

from __future__ import annotations

import shutil
import tempfile
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from fogbank.config import FunctionsConfig, NodeConfig
from fogbank.functions._local import LocalInvoker
from fogbank.functions._types import InvokeRequest, InvokeResult
from fogbank.model import App, Function, FunctionConfig


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def code_root() -> Iterator[Path]:
    """A scratch directory outside /tmp, so environments can get a private /tmp mount."""
    root = Path(tempfile.mkdtemp(prefix="fogbank-test-", dir="/var/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def write_code(root: Path, name: str, files: dict[str, str]) -> Path:
    code = root / name
    for rel, text in files.items():
        path = code / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return code


class Harness:
    """An app that can be changed between invocations, and a local invoker serving it."""

    def __init__(self, root: Path, **functions_config: object) -> None:
        self.root = root
        self.app = App.build()
        fconfig = FunctionsConfig(**functions_config)  # type: ignore[arg-type]
        self.config = NodeConfig(state_dir=root / "state", functions=fconfig)
        self.invoker = LocalInvoker(self.config, lambda: self.app)

    def deploy(self, *functions: Function) -> None:
        by_name = dict(self.app.functions)
        by_name.update({fn.name: fn for fn in functions})
        self.app = App.build(by_name.values())

    def function(
        self, name: str, source: str, *, handler: str = "app.handler", **kwargs: object
    ) -> Function:
        extra = {k: v for k, v in kwargs.items() if k in FunctionConfig.__dataclass_fields__}
        fn_kw = {k: v for k, v in kwargs.items() if k not in extra}
        code = write_code(self.root, name, {"app.py": source})
        cfg = FunctionConfig(
            name=name,
            runtime="python3.11",
            handler=handler,
            code_dir=code,
            **extra,  # type: ignore[arg-type]
        )
        fn = Function(latest=cfg, **fn_kw)  # type: ignore[arg-type]
        self.deploy(fn)
        return self.app.functions[name]

    async def invoke(
        self,
        name: str,
        payload: bytes = b"{}",
        *,
        version: str = "$LATEST",
        tenant_id: str | None = None,
        sink: Callable[[bytes], object] | None = None,
    ) -> InvokeResult:
        fn = self.app.functions[name]
        cfg = fn.config(version)
        assert cfg is not None
        request = InvokeRequest(
            function_name=name,
            config=cfg,
            payload=payload,
            request_id=str(uuid.uuid4()),
            invoked_arn=self.app.identity.function_arn(name),
            tenant_id=tenant_id,
        )
        return await self.invoker.invoke(request, sink)  # type: ignore[arg-type]


@pytest.fixture
async def harness(code_root: Path) -> AsyncIterator[Harness]:
    h = Harness(code_root)
    await h.invoker.start()
    try:
        yield h
    finally:
        await h.invoker.stop()
