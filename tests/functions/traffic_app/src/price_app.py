from typing import Any

RELEASE = "old"


def handler(event: Any, context: Any) -> dict[str, str]:
    return {"release": RELEASE, "version": context.function_version}
