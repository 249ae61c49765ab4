"""ECS's rules for replacing instances, as pure functions and small state machines.

`plan` decides which instances to start and stop, within `maximumPercent` and
`minimumHealthyPercent`; `Rollout` follows a deployment to COMPLETED or through the circuit
breaker to FAILED and back to the last revision that ran healthy; `Backoff` spaces restarts.
Nothing here does I/O or reads a clock: the scheduler passes the time in.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

from fogbank.model import ServiceSpec

# ECS's deployment circuit breaker trips after 0.5 x the desired count of failed tasks, at least
# 3 and at most 200 (ServiceDeploymentCircuitBreaker.threshold in the ECS API reference:
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeploymentCircuitBreaker.html).
_BREAKER_SHARE = 0.5
_BREAKER_MIN = 3
_BREAKER_MAX = 200


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How restarts of failed instances are spaced (per service)."""

    initial_s: float = 0.5
    """The wait before the replacement of the first failed instance."""
    max_s: float = 30.0
    """The wait doubles after each failure up to this cap."""
    reset_after_s: float = 10.0
    """An instance that stays healthy this long sets the wait back to `initial_s`."""


class Backoff:
    """Exponential spacing of the starts that replace failed instances."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self.delay = policy.initial_s
        self.not_before = 0.0

    def failed(self, now: float) -> float:
        """Record a failure; returns how long the next start waits."""
        wait = self.delay
        self.not_before = max(self.not_before, now + wait)
        self.delay = min(self.delay * 2, self.policy.max_s)
        return wait

    def ready(self, now: float) -> bool:
        return now >= self.not_before

    def reset(self) -> None:
        self.delay = self.policy.initial_s

    def clear(self) -> None:
        """Forget past failures altogether (a new deployment starts at once)."""
        self.reset()
        self.not_before = 0.0


@dataclass(frozen=True, slots=True)
class Member:
    """What `plan` needs to know of one instance."""

    id: str
    revision: str
    started: float
    healthy: bool
    replace: bool = False
    """Failed its health checks `retries` times: to be replaced."""
    stopping: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    start: int
    stop: tuple[str, ...]


def limits(desired: int, maximum_percent: int, minimum_healthy_percent: int) -> tuple[int, int]:
    """(most instances running, fewest healthy) for a desired count, rounded as ECS rounds:
    the maximum down, the minimum up.

    The maximum is never below the desired count. When it leaves no room above it, the minimum is
    lowered to desired - 1 so that instances can be replaced one at a time (ECS would stall).
    """
    most = max(desired, desired * maximum_percent // 100)
    fewest = min(desired, math.ceil(desired * minimum_healthy_percent / 100))
    if most == desired and desired > 0:
        fewest = min(fewest, desired - 1)
    return most, fewest


def plan(
    members: Sequence[Member],
    *,
    desired: int,
    target: str,
    maximum_percent: int,
    minimum_healthy_percent: int,
    can_start: bool,
) -> Plan:
    """The starts and stops that move the instances towards `desired` healthy instances of the
    `target` revision, starting replacements before stopping what they replace.

    An instance to be drained (another revision, marked for replacement, or beyond the desired
    count) is stopped when that leaves at least the minimum healthy; one that is not healthy is
    kept while its replacement can still start, until enough others are healthy.
    """
    desired = max(0, desired)
    most, fewest = limits(desired, maximum_percent, minimum_healthy_percent)
    active = [m for m in members if not m.stopping]
    current = [m for m in active if m.revision == target and not m.replace]
    # The best `desired` of the current revision stay: healthy first, then the oldest.
    current.sort(key=lambda m: (not m.healthy, m.started))
    keep, surplus = current[:desired], current[desired:]
    drain = [m for m in active if m.revision != target or m.replace] + surplus

    start = 0
    if can_start:
        start = max(0, min(desired - len(keep), most - len(members)))
    # Replacements are still wanted but the maximum leaves no room for them.
    blocked = len(keep) + start < desired and len(members) + start >= most

    healthy = sum(m.healthy for m in active)
    stops: list[str] = []
    # Not-healthy ones first (stopping them costs no health), then the oldest healthy ones.
    for m in sorted(drain, key=lambda m: (m.healthy, m.started)):
        if m.healthy:
            if healthy - 1 < fewest:
                continue
            healthy -= 1
        elif not blocked and healthy < fewest:
            continue
        stops.append(m.id)
    return Plan(start=start, stop=tuple(stops))


def steady(members: Sequence[Member], *, desired: int, target: str) -> bool:
    """Exactly the desired count runs, all of the target revision and healthy."""
    return len(members) == desired and all(
        m.revision == target and m.healthy and not m.replace and not m.stopping for m in members
    )


class RolloutState(enum.Enum):
    """A deployment's state: ECS's `rolloutState` names, and its service deployment's rollback
    states."""

    IN_PROGRESS = "IN_PROGRESS"
    """Instances of the revision are being started, and older ones drained."""
    COMPLETED = "COMPLETED"
    """The desired count runs the revision, healthy."""
    FAILED = "FAILED"
    """The circuit breaker tripped and there was nothing to roll back to (or rollback is off)."""
    ROLLBACK_IN_PROGRESS = "ROLLBACK_IN_PROGRESS"
    """The circuit breaker tripped; the last revision that ran healthy is being restored."""
    ROLLED_BACK = "ROLLED_BACK"
    """The rollback reached a steady state."""


def breaker_threshold(desired: int) -> int:
    return min(_BREAKER_MAX, max(_BREAKER_MIN, math.ceil(_BREAKER_SHARE * desired)))


class Rollout:
    """The deployment a service is in: what it deploys, how far it is, what to fall back to."""

    def __init__(self, spec: ServiceSpec) -> None:
        self.target = spec
        """The spec new instances are started from."""
        self.requested = spec.revision
        """The revision last asked for (a rollback leaves it, so asking again changes nothing)."""
        self.stable: ServiceSpec | None = None
        """The last spec that reached a steady state."""
        self.state = RolloutState.IN_PROGRESS
        self.reason = f"deploying revision {spec.revision}"
        self.failures = 0

    @property
    def threshold(self) -> int:
        return breaker_threshold(self.target.desired_count)

    @property
    def in_progress(self) -> bool:
        return self.state in (RolloutState.IN_PROGRESS, RolloutState.ROLLBACK_IN_PROGRESS)

    def apply(self, spec: ServiceSpec) -> bool:
        """Take a spec from a (re)deploy; True when it starts a new deployment."""
        if spec.revision == self.requested:
            # Same instances, maybe another count or deployment configuration.
            self.target = dataclasses.replace(
                self.target,
                desired_count=spec.desired_count,
                deployment=spec.deployment,
                stop_timeout_s=spec.stop_timeout_s,
            )
            return False
        self.requested = spec.revision
        self.target = spec
        self.state = RolloutState.IN_PROGRESS
        self.reason = f"deploying revision {spec.revision}"
        self.failures = 0
        return True

    def failed(self, revision: str, why: str) -> bool:
        """Count an instance of `revision` that failed; True when this trips the breaker (the
        state, reason and target then say what happens next)."""
        if revision != self.target.revision or not self.in_progress:
            return False
        self.failures += 1
        if not self.target.deployment.circuit_breaker or self.failures < self.threshold:
            return False
        failed = self.target.revision
        summary = f"{self.failures} instances of revision {failed} failed (last: {why})"
        stable = self.stable
        if (
            self.state is RolloutState.IN_PROGRESS
            and self.target.deployment.rollback
            and stable is not None
            and stable.revision != failed
        ):
            self.target = dataclasses.replace(
                stable,
                desired_count=self.target.desired_count,
                deployment=self.target.deployment,
                stop_timeout_s=self.target.stop_timeout_s,
            )
            self.state = RolloutState.ROLLBACK_IN_PROGRESS
            self.reason = f"circuit breaker: {summary}; rolling back to revision {stable.revision}"
            self.failures = 0
        else:
            self.state = RolloutState.FAILED
            self.reason = f"circuit breaker: {summary}"
        return True

    def reached_steady(self) -> bool:
        """Record a steady state; True when this ends a deployment (or a rollback)."""
        self.stable = self.target
        if self.state is RolloutState.COMPLETED or self.state is RolloutState.ROLLED_BACK:
            return False
        if self.state is RolloutState.ROLLBACK_IN_PROGRESS:
            self.state = RolloutState.ROLLED_BACK
            self.reason = f"rolled back to revision {self.target.revision}"
        else:
            # FAILED too: the instances keep being restarted, and once something outside the
            # revision is fixed (a database up, a file edited in place) the deployment is over.
            self.state = RolloutState.COMPLETED
            self.reason = f"revision {self.target.revision} is running"
        return True
