"""An ordinary FastAPI app behind Mangum, exactly as users deploy one to Lambda."""

from __future__ import annotations

from typing import Annotated

from fastapi import Cookie, FastAPI, Header, Query, Response
from mangum import Mangum
from pydantic import BaseModel

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\x00binary"

app = FastAPI()


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.get("/items/{item_id}")
def read_item(
    item_id: int,
    tag: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI copies defaults)
    q: str | None = None,
    x_token: Annotated[str | None, Header()] = None,
    session: Annotated[str | None, Cookie()] = None,
) -> dict[str, object]:
    return {"item_id": item_id, "tag": tag, "q": q, "x_token": x_token, "session": session}


@app.post("/items", status_code=201)
def create_item(item: Item, response: Response) -> dict[str, object]:
    response.set_cookie("last_item", item.name, httponly=True)
    response.set_cookie("visits", "1", path="/items")
    response.headers["x-item-count"] = str(len(item.tags))
    return {"created": item.model_dump()}


@app.get("/greet/{name}")
def greet(name: str) -> dict[str, str]:
    return {"hello": name}


@app.get("/logo.png")
def logo() -> Response:
    return Response(content=PNG, media_type="image/png")


handler = Mangum(app, lifespan="off")
