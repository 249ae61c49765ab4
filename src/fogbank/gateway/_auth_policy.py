"""What a Lambda authorizer answers, checked the way API Gateway checks it, and the IAM policy in
it evaluated against the request's method ARN.

An answer is either an IAM policy (`{principalId, policyDocument, context, usageIdentifierKey}`,
REST and HTTP APIs) or, for HTTP APIs with `enableSimpleResponses`, `{isAuthorized, context}`.
Anything else is unusable, and the gateway answers 500. Evaluation is IAM's: a matching `Deny`
wins over any `Allow`; nothing matching is a denial too; `*` and `?` are wildcards in `Resource`
(and `Action`), a statement may be a single object or a list, values strings or lists.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from fogbank._errors import FogbankError

INVOKE_ACTION = "execute-api:Invoke"


class BadAuthorizerOutput(FogbankError):
    """The authorizer's answer cannot be used (becomes a 500)."""


class Decision(enum.Enum):
    """What a policy says about one method ARN."""

    ALLOW = "allow"
    """An `Allow` statement matches and no `Deny` does."""
    EXPLICIT_DENY = "explicit-deny"
    """A `Deny` statement matches."""
    IMPLICIT_DENY = "implicit-deny"
    """No statement matches: IAM denies by default."""


@dataclass(frozen=True, slots=True)
class Statement:
    allow: bool
    actions: tuple[str, ...]
    resources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PolicyAnswer:
    """An IAM-policy answer, checked."""

    principal_id: str
    statements: tuple[Statement, ...]
    context: dict[str, Any] = field(default_factory=dict)
    usage_identifier_key: str | None = None

    def decide(self, arn: str) -> Decision:
        allowed = False
        for statement in self.statements:
            if not any(_matches(a, INVOKE_ACTION, fold=True) for a in statement.actions):
                continue
            if not any(_matches(r, arn, fold=False) for r in statement.resources):
                continue
            if not statement.allow:
                return Decision.EXPLICIT_DENY
            allowed = True
        return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


@dataclass(frozen=True, slots=True)
class SimpleAnswer:
    """An HTTP API simple answer, checked."""

    authorized: bool
    context: dict[str, Any] = field(default_factory=dict)


def policy_answer(answer: Any, *, flatten: bool) -> PolicyAnswer:
    """Check an IAM-policy answer; `flatten` (REST) turns context values into strings."""
    if not isinstance(answer, dict):
        raise BadAuthorizerOutput(f"the answer is not a JSON object: {answer!r}"[:200])
    principal = answer.get("principalId")
    if not isinstance(principal, str | int | float) or isinstance(principal, bool):
        raise BadAuthorizerOutput("principalId is missing or not a string")
    document = answer.get("policyDocument")
    if not isinstance(document, dict):
        raise BadAuthorizerOutput("policyDocument is missing or not an object")
    raw = document.get("Statement")
    items = [raw] if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not items:
        raise BadAuthorizerOutput("policyDocument.Statement is missing or empty")
    statements = tuple(_statement(item) for item in items)
    key = answer.get("usageIdentifierKey")
    if key is not None and not isinstance(key, str):
        raise BadAuthorizerOutput("usageIdentifierKey is not a string")
    context = _context(answer.get("context"), flatten=flatten)
    return PolicyAnswer(str(principal), statements, context, key)


def simple_answer(answer: Any) -> SimpleAnswer:
    """Check an HTTP API simple answer: `isAuthorized` must be a boolean."""
    if not isinstance(answer, dict) or not isinstance(answer.get("isAuthorized"), bool):
        raise BadAuthorizerOutput("a simple answer needs a boolean isAuthorized")
    return SimpleAnswer(answer["isAuthorized"], _context(answer.get("context"), flatten=False))


def _statement(item: Any) -> Statement:
    if not isinstance(item, dict):
        raise BadAuthorizerOutput(f"a policy statement is not an object: {item!r}"[:200])
    effect = item.get("Effect")
    if not isinstance(effect, str) or effect.lower() not in ("allow", "deny"):
        raise BadAuthorizerOutput(f"a statement's Effect must be Allow or Deny, got {effect!r}")
    return Statement(
        allow=effect.lower() == "allow",
        actions=_strings(item.get("Action"), "Action"),
        resources=_strings(item.get("Resource"), "Resource"),
    )


def _strings(value: Any, name: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise BadAuthorizerOutput(f"a statement's {name} must be a string or a list of strings")
    return tuple(items)


def _context(value: Any, *, flatten: bool) -> dict[str, Any]:
    """REST passes context values on as strings; objects, arrays and nulls are refused there.

    HTTP APIs pass the context through as the function returned it.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadAuthorizerOutput("context is not an object")
    if not flatten:
        return dict(value)
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            out[str(key)] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            out[str(key)] = str(item)
        else:
            raise BadAuthorizerOutput(f"context value {key!r} must be a string, number or boolean")
    return out


def _matches(pattern: str, value: str, *, fold: bool) -> bool:
    if pattern == "*":
        return True
    return _compiled(pattern, fold).fullmatch(value) is not None


@lru_cache(maxsize=1024)
def _compiled(pattern: str, fold: bool) -> re.Pattern[str]:
    """IAM wildcards: `*` any run of characters (`/` included), `?` exactly one."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if fold else re.DOTALL)
