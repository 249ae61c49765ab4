"""A real node serving a template the test writes, and how often its function really ran."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fogbank._node import Node
from fogbank.config import NodeConfig
from fogbank.model import load_template

from ..conftest import NodeThread


class ServedApp:
    """`template` (with `handler` as `src/app.py`) served on free ports until `stop()`.

    `config` adds `NodeConfig` fields; `clock` goes to the node (caches and limits read it).
    """

    def __init__(
        self,
        root: Path,
        template: str,
        *,
        handler: str,
        function: str,
        clock: Any = None,
        **config: Any,
    ) -> None:
        (root / "src").mkdir(parents=True, exist_ok=True)
        (root / "src" / "app.py").write_text(handler, encoding="utf-8")
        (root / "template.yaml").write_text(template, encoding="utf-8")
        self.app = load_template(root / "template.yaml")
        self.function = function
        self.config = NodeConfig(
            port=0, control_port=0, state_dir=root / f"state-{uuid.uuid4().hex[:8]}", **config
        )
        options = {} if clock is None else {"clock": clock}
        self.thread = NodeThread(self.config, self.app, **options).start()
        self.api_id = next(iter(self.app.apis))

    @property
    def node(self) -> Node:
        assert self.thread.node is not None
        return self.thread.node

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`, the node's own host."""
        return self.node.url

    @property
    def base(self) -> str:
        """The `prod` stage's URL on the node's host."""
        return self.url + "/prod"

    @property
    def api_host(self) -> str:
        return f"{self.api_id}.execute-api.localhost"

    def invocations(self) -> int:
        """`START` lines in the function's log: how many times it really ran."""
        node = self.node

        async def flush() -> None:
            node.logs.flush()

        self.thread.call(flush)
        log = node.logs.path(self.function)
        return log.read_text().count("START RequestId:") if log.exists() else 0

    def stop(self) -> None:
        self.thread.stop()


def lambda_uri(function: str) -> dict[str, str]:
    """The integration URI of a template function, as SAM writes it."""
    return {
        "Fn::Sub": "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
        f"${{{function}.Arn}}/invocations"
    }


def sam_template(api: dict[str, Any], function: str) -> str:
    """A SAM template (as JSON) of one REST API `Api` with these properties, and `function`
    running `src/app.handler`."""
    return json.dumps(
        {
            "Transform": "AWS::Serverless-2016-10-31",
            "Resources": {
                "Api": {"Type": "AWS::Serverless::Api", "Properties": api},
                function: {
                    "Type": "AWS::Serverless::Function",
                    "Properties": {
                        "CodeUri": "src",
                        "Handler": "app.handler",
                        "Runtime": "python3.12",
                    },
                },
            },
        }
    )


@contextlib.contextmanager
def serving(template: str, *, handler: str, function: str) -> Iterator[ServedApp]:
    """`ServedApp` in a scratch directory (outside /tmp), removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="fogbank-served-", dir="/var/tmp"))
    served = ServedApp(root, template, handler=handler, function=function)
    try:
        yield served
    finally:
        served.stop()
        shutil.rmtree(root, ignore_errors=True)
