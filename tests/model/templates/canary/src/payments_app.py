from typing import Any


def pay(event: dict[str, Any], context: object) -> dict[str, Any]:
    return {"paid": True}


def audit(event: dict[str, Any], context: object) -> None:
    return None
