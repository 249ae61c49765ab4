"""Powertools' REST and HTTP API resolvers, written the way Powertools documents them."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    CORSConfig,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.shared.cookies import Cookie
from aws_lambda_powertools.utilities.typing import LambdaContext

TODOS = {"1": "buy milk", "2": "write tests"}

cors = CORSConfig(
    allow_origin="https://todo.example",
    expose_headers=["x-todo-count"],
    max_age=300,
    allow_credentials=True,
)
router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated


@router.get("/todos/<todo_id>")
def get_todo(todo_id: str) -> dict[str, Any]:
    if todo_id not in TODOS:
        raise NotFoundError(f"no todo {todo_id}")
    event = router.current_event
    return {
        "id": todo_id,
        "title": TODOS[todo_id],
        "query": event.query_string_parameters,
        "agent": event.headers.get("x-agent"),
    }


@router.post("/todos")
def create_todo() -> Response[str]:
    payload = router.current_event.json_body
    return Response(
        status_code=201,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"created": payload["title"], "done": payload.get("done", False)}),
        headers={"x-todo-count": str(len(TODOS) + 1)},
        cookies=[Cookie(name="last_todo", value=payload["title"], path="/")],
    )


rest_app = APIGatewayRestResolver(cors=cors)
rest_app.include_router(router)
http_app = APIGatewayHttpResolver(cors=cors)
http_app.include_router(router)


def rest_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return rest_app.resolve(event, context)


def http_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return http_app.resolve(event, context)
