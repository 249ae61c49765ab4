"""The environment variables Lambda sets for a function's execution environment."""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from pathlib import Path

from fogbank.functions._types import InitType
from fogbank.model import FunctionConfig, Identity

# Variables of the host worth keeping in an environment: locale and the dynamic loader.
_INHERITED = ("LANG", "LC_ALL", "TZ", "HOME", "SYSTEMROOT")


def log_group_name(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def log_stream_name(version: str, env_id: str) -> str:
    today = datetime.datetime.now(datetime.UTC).strftime("%Y/%m/%d")
    return f"{today}/[{version}]{env_id}"


def environment_for(
    config: FunctionConfig,
    *,
    identity: Identity,
    env_id: str,
    init_type: InitType,
    layer_root: Path | None,
    tmp_dir: Path,
    runtime_api: str | None = None,
    defaults: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Build the complete environment of one execution environment.

    `defaults` are the node's own variables (the Cloud Map endpoint, the zone), which the
    function's variables may override. User variables come before Lambda's reserved names, so
    that those always win, as on AWS.
    """
    env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
    if defaults:
        env.update(defaults)
    env.update(config.environment)
    path = ["/usr/local/bin", "/usr/bin", "/bin"]
    ld_path: list[str] = []
    if layer_root is not None:
        path.insert(0, str(layer_root / "bin"))
        ld_path.append(str(layer_root / "lib"))
    host_path = os.environ.get("PATH")
    if host_path:
        path.extend(p for p in host_path.split(os.pathsep) if p not in path)
    env.update(
        {
            "PATH": os.pathsep.join(path),
            "LD_LIBRARY_PATH": os.pathsep.join(ld_path),
            "TMPDIR": str(tmp_dir),
            "_HANDLER": config.handler,
            "AWS_REGION": identity.region,
            "AWS_DEFAULT_REGION": identity.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": config.version,
            "AWS_LAMBDA_INITIALIZATION_TYPE": init_type.value,
            "AWS_LAMBDA_LOG_GROUP_NAME": log_group_name(config.name),
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name(config.version, env_id),
            "LAMBDA_TASK_ROOT": str(config.code_dir),
            "LAMBDA_RUNTIME_DIR": str(Path(__file__).parent / "_fogbank_runtime"),
            # Local credentials: real clients need some, and nothing here talks to AWS.
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "fogbank"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "fogbank"),
            "AWS_SESSION_TOKEN": os.environ.get("AWS_SESSION_TOKEN", "fogbank"),
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "TZ": ":UTC",
        }
    )
    if runtime_api is not None:
        env["AWS_LAMBDA_RUNTIME_API"] = runtime_api
    if not env["LD_LIBRARY_PATH"]:
        del env["LD_LIBRARY_PATH"]
    return env
