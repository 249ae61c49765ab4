"""Turn the `FunctionName` and `Qualifier` of a Lambda API call into the version that runs.

`FunctionName` takes every form Lambda's API model allows (`NamespacedFunctionName`): a name, a
template logical id, `name:qualifier`, a full ARN `arn:aws:lambda:region:account:function:name[:q]`
or a partial one (`account:function:name[:q]`). A qualifier in the name and one in `?Qualifier=` must
agree, as on AWS. An alias picks its version per invocation, honouring `AdditionalVersionWeights`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from fogbank.functions._types import InvalidParameterValue, InvocationError, ResourceNotFound
from fogbank.model import LATEST, Alias, App, Function, FunctionConfig, Identity

# The `NamespacedFunctionName` pattern of botocore's Lambda model, with the pieces named.
_NAME_PATTERN = (
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:)?"
    r"(?:(?P<region>(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9\-_.]+)"
    r"(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9\-_]+))?"
)
_NAME_RE = re.compile(_NAME_PATTERN)


class ValidationError(InvocationError):
    """A parameter that breaks a constraint of Lambda's API model (a pattern, an enum)."""

    status = 400
    error_type = "ValidationException"


@dataclass(frozen=True, slots=True)
class Resolved:
    """The function version one call addresses."""

    function: Function
    config: FunctionConfig
    """The configuration of the version that runs (for an alias: the version it picked)."""
    invoked_arn: str
    """The ARN the caller used, with its qualifier: what `context.invoked_function_arn` reports."""
    qualifier: str | None
    """`$LATEST`, a version number or an alias name; None when the call named no qualifier."""


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """A parsed `FunctionName`: the name and whatever the caller wrote around it."""

    name: str
    qualifier: str | None = None
    region: str | None = None
    account: str | None = None


def parse_function_name(raw: str) -> FunctionRef:
    """Split a `FunctionName` path parameter into its parts; raise on a malformed one."""
    if ":" not in raw and raw and len(raw) <= 256:
        # The common case, a bare name, skips the regular expression.
        return FunctionRef(raw)
    match = _NAME_RE.fullmatch(raw) if len(raw) <= 256 else None
    if match is None:
        raise ValidationError(
            f"1 validation error detected: Value '{raw}' at 'functionName' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {_NAME_PATTERN}"
        )
    return FunctionRef(
        name=match["name"],
        qualifier=match["qualifier"],
        region=match["region"],
        account=match["account"],
    )


def merge_qualifier(ref: FunctionRef, qualifier: str | None) -> str | None:
    """Combine the qualifier in the name with `?Qualifier=`; AWS refuses two different ones."""
    if not qualifier:
        return ref.qualifier
    if ref.qualifier and ref.qualifier != qualifier:
        raise InvalidParameterValue(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    return qualifier


def find_function(
    app: App, ref: FunctionRef, qualifier: str | None, identity: Identity
) -> Function:
    """The function a reference names, or `ResourceNotFound` naming the ARN the caller meant."""
    fn = app.find_function(ref.name)
    # An ARN of another region or account can never name a function of this node.
    foreign = (ref.region is not None and ref.region != identity.region) or (
        ref.account is not None and ref.account != identity.account_id
    )
    if fn is None or foreign:
        arn = Identity(ref.region or identity.region, ref.account or identity.account_id)
        raise ResourceNotFound(f"Function not found: {arn.function_arn(ref.name, qualifier)}")
    return fn


def resolve(
    app: App,
    function_name: str,
    qualifier: str | None = None,
    *,
    identity: Identity | None = None,
    rng: random.Random | None = None,
    weighted: bool = True,
) -> Resolved:
    """Find the function version a call runs.

    `identity` defaults to the app's; `rng` is the random source of alias weights (inject a seeded
    one in tests). With `weighted=False` an alias resolves to its primary version, as the read-only
    operations (`GetFunctionConfiguration`) report it.
    """
    ident = identity or app.identity
    ref = parse_function_name(function_name)
    qual = merge_qualifier(ref, qualifier)
    fn = find_function(app, ref, qual, ident)
    config = _config_for(fn, qual, rng, weighted)
    if config is None:
        raise ResourceNotFound(f"Function not found: {ident.function_arn(fn.name, qual)}")
    return Resolved(fn, config, ident.function_arn(fn.name, qual), qual)


def _config_for(
    fn: Function, qualifier: str | None, rng: random.Random | None, weighted: bool
) -> FunctionConfig | None:
    if qualifier is None or qualifier == LATEST:
        return fn.latest
    if qualifier.isdigit():
        return fn.versions.get(qualifier)
    alias: Alias | None = fn.aliases.get(qualifier)
    if alias is None:
        return None
    version = alias.pick_version(rng) if weighted else alias.function_version
    return fn.config(version)
