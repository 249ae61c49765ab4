"""The catalog service: a long-running ASGI app (run by uvicorn), one instance per port.

Every answer names the instance that served it, so you can watch the gateway and the discovery
client spread requests over instances, and watch a killed instance being replaced.
"""

import json
import os

INSTANCE = os.environ.get("FOGBANK_INSTANCE_ID", "local")
ZONE = os.environ.get("AVAILABILITY_ZONE", "")
ITEMS = {
    "1": {"id": "1", "name": "Espresso cup", "price": 9.5},
    "2": {"id": "2", "name": "Milk jug", "price": 14.0},
    "3": {"id": "3", "name": "Tamper", "price": 21.0},
}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"].rstrip("/") or "/"
    if path == "/health":
        status, body = 200, {"status": "ok"}
    elif path == "/items":
        status, body = 200, {"items": list(ITEMS.values())}
    elif path.startswith("/items/") and path[len("/items/") :] in ITEMS:
        status, body = 200, ITEMS[path[len("/items/") :]]
    else:
        status, body = 404, {"message": f"no such item: {path}"}
    payload = json.dumps({**body, "servedBy": INSTANCE, "zone": ZONE}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"x-instance", INSTANCE.encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})
