from typing import Any


def main(event: dict[str, Any], context: object) -> dict[str, Any]:
    return event
