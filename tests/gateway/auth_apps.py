"""What the authorizer tests share: the integration behind every protected route, and a writer
for a test template with its code directories."""

from __future__ import annotations

from pathlib import Path

from .conftest import write_code

ECHO = """
def handler(event, context):
    return {"statusCode": 200, "body": '{"ok": true}'}
"""
"""The integration: answers 200 `{"ok": true}`; tests read its event from the proxy event log."""


def write_app(root: Path, template: str, **handlers: str) -> Path:
    """`template` as `root/template.yaml`, with `echo/echo.py` and `<name>/<name>.py` per handler."""
    write_code(root, "echo", {"echo.py": ECHO})
    for name, source in handlers.items():
        write_code(root, name, {f"{name}.py": source})
    path = root / "template.yaml"
    path.write_text(template, encoding="utf-8")
    return path
