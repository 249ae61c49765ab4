"""Gradual deployments of Lambda aliases: SAM's `AutoPublishAlias` with `DeploymentPreference`.

SAM turns `DeploymentPreference` into CodeDeploy resources: an `AWS::CodeDeploy::DeploymentGroup`
whose `DeploymentConfigName` is `CodeDeployDefault.Lambda<Type>` (or a custom
`AWS::CodeDeploy::DeploymentConfig`), referenced from the alias's
`UpdatePolicy.CodeDeployLambdaAliasUpdate` together with the pre- and post-traffic hooks. This
module reads that back into a `DeploymentPreference`: which alias moves, and how its traffic
shifts from the old version to the new one over time.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fogbank._errors import TemplateError

_PREFIX = "CodeDeployDefault.Lambda"


class ShiftKind(enum.Enum):
    """How traffic moves to a newly published version."""

    ALL_AT_ONCE = "AllAtOnce"
    """Every request goes to the new version at once."""
    CANARY = "Canary"
    """`percentage` goes to the new version for `interval_s`, then all of it."""
    LINEAR = "Linear"
    """Another `percentage` every `interval_s` until all of it."""


@dataclass(frozen=True, slots=True)
class DeploymentPreference:
    """How an alias moves to each newly published version of its function."""

    alias: str
    """The alias `AutoPublishAlias` names."""
    config_name: str = "AllAtOnce"
    """`AllAtOnce`, `Canary10Percent5Minutes`, ... or a custom deployment config's name."""
    kind: ShiftKind = ShiftKind.ALL_AT_ONCE
    percentage: float = 100.0
    interval_s: float = 0.0
    pre_traffic_hook: str | None = None
    """Function invoked before any traffic shifts; a function error stops the deployment."""
    post_traffic_hook: str | None = None
    """Function invoked after all traffic shifted; a function error rolls the alias back."""

    def steps(self) -> tuple[tuple[float, float], ...]:
        """(seconds after the start, weight of the new version) for every shift, the last one
        at weight 1.0 (the alias then points at the new version)."""
        if self.kind is ShiftKind.ALL_AT_ONCE or self.percentage >= 100.0:
            return ((0.0, 1.0),)
        share = self.percentage / 100.0
        if self.kind is ShiftKind.CANARY:
            return ((0.0, share), (self.interval_s, 1.0))
        out: list[tuple[float, float]] = []
        step = 0
        while share * (step + 1) < 1.0 - 1e-9:
            out.append((self.interval_s * step, round(share * (step + 1), 6)))
            step += 1
        out.append((self.interval_s * step, 1.0))
        return tuple(out)


def _predefined() -> dict[str, tuple[ShiftKind, float, float]]:
    table: dict[str, tuple[ShiftKind, float, float]] = {
        "AllAtOnce": (ShiftKind.ALL_AT_ONCE, 100, 0)
    }
    for minutes in (5, 10, 15, 30):
        table[f"Canary10Percent{minutes}Minutes"] = (ShiftKind.CANARY, 10.0, minutes * 60.0)
    for minutes in (1, 2, 3, 10):
        unit = "Minute" if minutes == 1 else "Minutes"
        table[f"Linear10PercentEvery{minutes}{unit}"] = (ShiftKind.LINEAR, 10.0, minutes * 60.0)
    return table


PREDEFINED = _predefined()
"""CodeDeploy's predefined Lambda deployment configurations, by SAM's `Type` name."""


def read_preference(
    alias_id: str,
    alias_name: str,
    raw: Mapping[str, Any],
    resolved: Mapping[str, Mapping[str, Any]],
    physical_ids: Mapping[str, str],
    *,
    file: str,
) -> DeploymentPreference | None:
    """The preference of one alias from its unresolved resource `raw` (which keeps the
    `UpdatePolicy` CloudFormation resolves no intrinsics in) and the resolved resources."""
    policy = raw.get("UpdatePolicy")
    update = policy.get("CodeDeployLambdaAliasUpdate") if isinstance(policy, dict) else None
    if not isinstance(update, dict):
        return None
    group = resolved.get(_ref(update.get("DeploymentGroupName")) or "")
    props = group.get("Properties") if group is not None else None
    name = props.get("DeploymentConfigName") if isinstance(props, dict) else None
    if not isinstance(name, str):
        raise TemplateError(
            "the alias's CodeDeployLambdaAliasUpdate names no deployment group with a"
            " DeploymentConfigName",
            file=file,
            resource=alias_id,
            prop="UpdatePolicy",
        )
    kind, percentage, interval = _config(name, resolved, file=file, alias_id=alias_id)
    hooks = [
        physical_ids.get(ref, ref) if (ref := _ref(update.get(key))) else None
        for key in ("BeforeAllowTrafficHook", "AfterAllowTrafficHook")
    ]
    return DeploymentPreference(
        alias=alias_name,
        config_name=name.removeprefix(_PREFIX),
        kind=kind,
        percentage=percentage,
        interval_s=interval,
        pre_traffic_hook=hooks[0],
        post_traffic_hook=hooks[1],
    )


def _config(
    name: str, resolved: Mapping[str, Mapping[str, Any]], *, file: str, alias_id: str
) -> tuple[ShiftKind, float, float]:
    if name.startswith(_PREFIX) and name.removeprefix(_PREFIX) in PREDEFINED:
        return PREDEFINED[name.removeprefix(_PREFIX)]
    for logical_id, resource in resolved.items():
        props = resource.get("Properties") or {}
        if resource.get("Type") != "AWS::CodeDeploy::DeploymentConfig":
            continue
        if props.get("DeploymentConfigName", logical_id) not in (name, logical_id):
            continue
        routing = props.get("TrafficRoutingConfig") or {}
        for key, kind, fields in (
            ("TimeBasedCanary", ShiftKind.CANARY, ("CanaryPercentage", "CanaryInterval")),
            ("TimeBasedLinear", ShiftKind.LINEAR, ("LinearPercentage", "LinearInterval")),
        ):
            if isinstance(spec := routing.get(key), dict):
                return kind, float(spec[fields[0]]), float(spec[fields[1]]) * 60.0
        return ShiftKind.ALL_AT_ONCE, 100.0, 0.0
    known = ", ".join(PREDEFINED)
    raise TemplateError(
        f"unknown deployment configuration {name} (use one of {known} or define an"
        " AWS::CodeDeploy::DeploymentConfig)",
        file=file,
        resource=alias_id,
        prop="UpdatePolicy",
    )


def _ref(node: Any) -> str | None:
    if isinstance(node, dict) and isinstance(node.get("Ref"), str):
        return str(node["Ref"])
    return node if isinstance(node, str) else None
