"""A tiny catalog service: an ASGI app (run by uvicorn on the port fogbank gives it)."""

import json
import os
from typing import Any

ITEMS = {"1": {"id": "1", "name": "Espresso cup"}, "2": {"id": "2", "name": "Milk jug"}}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"].rstrip("/") or "/"
    item = ITEMS.get(path.removeprefix("/items/"))
    body: dict[str, Any]
    if path == "/health":
        status, body = 200, {"status": "ok"}
    elif path == "/items":
        status, body = 200, {"items": list(ITEMS.values())}
    elif path.startswith("/items/") and item is not None:
        status, body = 200, item
    else:
        status, body = 404, {"message": "not found"}
    body["servedBy"] = os.environ.get("FOGBANK_INSTANCE_ID", "local")
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
