"""ECS's replacement rules, the deployment state machine and the restart backoff (no processes)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fogbank.model import DeploymentConfig, ServiceSpec
from fogbank.services._rollout import (
    Backoff,
    Member,
    Plan,
    RestartPolicy,
    Rollout,
    RolloutState,
    breaker_threshold,
    limits,
    plan,
    steady,
)

ECS_DEFAULT = {"maximum_percent": 200, "minimum_healthy_percent": 100}


def members(revision: str, count: int, *, healthy: bool = True, first: int = 0) -> list[Member]:
    return [
        Member(id=f"{revision}-{first + n}", revision=revision, started=first + n, healthy=healthy)
        for n in range(count)
    ]


def test_limits_round_as_ecs_does() -> None:
    assert limits(3, 200, 100) == (6, 3)
    assert limits(3, 150, 50) == (4, 2)  # 4.5 down, 1.5 up
    assert limits(0, 200, 100) == (0, 0)
    # No room above the desired count: one at a time may be replaced.
    assert limits(2, 100, 100) == (2, 1)
    assert limits(2, 50, 0) == (2, 0)


def test_a_new_service_starts_its_desired_count() -> None:
    assert plan([], desired=3, target="a", **ECS_DEFAULT, can_start=True) == _plan(3)
    # Backoff: nothing starts.
    assert plan([], desired=3, target="a", **ECS_DEFAULT, can_start=False) == _plan(0)


def _plan(start: int, *stop: str) -> Plan:
    return Plan(start=start, stop=tuple(stop))


def simulate(
    running: list[Member], *, desired: int, maximum: int, minimum: int, steps: int = 20
) -> list[Member]:
    """Apply `plan` until nothing changes; started instances turn healthy one step later.
    Checks ECS's two bounds at every step."""
    most, fewest = limits(desired, maximum, minimum)
    clock = 100
    for _ in range(steps):
        decided = plan(
            running,
            desired=desired,
            target="new",
            maximum_percent=maximum,
            minimum_healthy_percent=minimum,
            can_start=True,
        )
        running = [m for m in running if m.id not in decided.stop]
        assert sum(m.healthy for m in running) >= fewest
        if decided.start == 0 and not decided.stop and all(m.healthy for m in running):
            return running
        running = [dataclasses.replace(m, healthy=True) for m in running]
        running += members("new", decided.start, healthy=False, first=clock)
        clock += decided.start
        assert len(running) <= most
    raise AssertionError("no steady state")


@pytest.mark.parametrize(
    ("desired", "maximum", "minimum"),
    [(2, 200, 100), (3, 150, 50), (4, 100, 50), (2, 100, 100), (3, 200, 0), (1, 200, 100)],
)
def test_a_rolling_deployment_stays_within_the_bounds_and_ends_on_the_new_revision(
    desired: int, maximum: int, minimum: int
) -> None:
    final = simulate(members("old", desired), desired=desired, maximum=maximum, minimum=minimum)
    assert [m.revision for m in final] == ["new"] * desired
    assert steady(final, desired=desired, target="new")


def test_new_instances_start_before_old_ones_stop() -> None:
    old = members("old", 2)
    assert plan(old, desired=2, target="new", **ECS_DEFAULT, can_start=True) == _plan(2)
    # One new instance healthy: one old one may go (healthy stays 3 - 1 >= 2).
    new = [*members("new", 1, first=10), *members("new", 1, healthy=False, first=11)]
    assert plan(old + new, desired=2, target="new", **ECS_DEFAULT, can_start=True) == _plan(
        0, "old-0"
    )


def test_an_instance_to_replace_stays_until_its_replacement_is_healthy() -> None:
    sick = Member(id="a", revision="r", started=0, healthy=False, replace=True)
    assert plan([sick], desired=1, target="r", **ECS_DEFAULT, can_start=True) == _plan(1)
    starting = Member(id="b", revision="r", started=1, healthy=False)
    assert plan([sick, starting], desired=1, target="r", **ECS_DEFAULT, can_start=True) == _plan(0)
    ready = dataclasses.replace(starting, healthy=True)
    assert plan([sick, ready], desired=1, target="r", **ECS_DEFAULT, can_start=True) == _plan(
        0, "a"
    )


def test_without_room_an_unhealthy_instance_is_stopped_first() -> None:
    sick = Member(id="a", revision="r", started=0, healthy=False, replace=True)
    decided = plan(
        [sick],
        desired=1,
        target="r",
        maximum_percent=100,
        minimum_healthy_percent=100,
        can_start=True,
    )
    assert decided == _plan(0, "a")


def test_scaling_down_stops_the_unhealthy_then_the_newest() -> None:
    running = [*members("r", 3), Member(id="sick", revision="r", started=9, healthy=False)]
    decided = plan(running, desired=2, target="r", **ECS_DEFAULT, can_start=True)
    assert decided == _plan(0, "sick", "r-2")
    for nothing in (0, -1):
        assert plan(running, desired=nothing, target="r", **ECS_DEFAULT, can_start=True) == _plan(
            0, "sick", "r-0", "r-1", "r-2"
        )


def test_stopping_instances_count_against_the_maximum() -> None:
    going = [dataclasses.replace(m, stopping=True) for m in members("old", 2)]
    decided = plan(
        going,
        desired=2,
        target="new",
        maximum_percent=100,
        minimum_healthy_percent=0,
        can_start=True,
    )
    assert decided == _plan(0)


def state(rollout: Rollout) -> RolloutState:
    return rollout.state  # read through a call: each assert sees the state anew


def spec(name: str = "svc", **changes: object) -> ServiceSpec:
    base = ServiceSpec(name=name, command=("run",), working_dir=Path("."), desired_count=2)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_the_breaker_threshold_is_half_the_desired_count_within_3_and_200() -> None:
    assert [breaker_threshold(n) for n in (0, 1, 6, 7, 10, 1000)] == [3, 3, 3, 4, 5, 200]


def test_a_deployment_completes_and_the_same_revision_again_only_rescales() -> None:
    rollout = Rollout(spec())
    assert state(rollout) is RolloutState.IN_PROGRESS
    assert rollout.reached_steady()
    assert state(rollout) is RolloutState.COMPLETED
    assert not rollout.reached_steady()
    assert not rollout.apply(spec(desired_count=5))
    assert rollout.target.desired_count == 5
    assert state(rollout) is RolloutState.COMPLETED
    assert rollout.apply(spec(environment={"V": "2"}))
    assert state(rollout) is RolloutState.IN_PROGRESS


def test_the_breaker_rolls_back_to_the_last_steady_revision() -> None:
    rollout = Rollout(spec())
    rollout.reached_steady()
    good = rollout.target.revision
    bad = spec(environment={"V": "bad"}, desired_count=4)
    rollout.apply(bad)
    assert not rollout.failed(good, "an old instance failing does not count")
    assert [rollout.failed(bad.revision, "exit status 1") for _ in range(3)] == [False, False, True]
    assert state(rollout) is RolloutState.ROLLBACK_IN_PROGRESS
    assert rollout.target.revision == good
    assert rollout.target.desired_count == 4
    assert "3 instances of revision" in rollout.reason
    assert "exit status 1" in rollout.reason
    # Asking for the bad revision again (any redeploy) does not restart it.
    assert not rollout.apply(bad)
    assert rollout.target.revision == good
    assert rollout.reached_steady()
    assert state(rollout) is RolloutState.ROLLED_BACK


@pytest.mark.parametrize("case", ["first deployment", "rollback off", "rollback fails too"])
def test_the_breaker_fails_a_deployment_it_cannot_roll_back(case: str) -> None:
    rollout = Rollout(spec())
    if case != "first deployment":
        rollout.reached_steady()
        rollout.apply(
            spec(
                environment={"V": "bad"},
                deployment=DeploymentConfig(rollback=case != "rollback off"),
            )
        )
    if case == "rollback fails too":
        for _ in range(3):
            rollout.failed(rollout.target.revision, "exit status 1")
        assert state(rollout) is RolloutState.ROLLBACK_IN_PROGRESS
    for _ in range(3):
        rollout.failed(rollout.target.revision, "exit status 1")
    assert state(rollout) is RolloutState.FAILED
    assert rollout.reason.startswith("circuit breaker: 3 instances")
    # Failures after that change nothing; a steady state later (a fixed file) ends it.
    assert not rollout.failed(rollout.target.revision, "again")
    assert rollout.reached_steady()
    assert state(rollout) is RolloutState.COMPLETED


def test_without_the_breaker_failures_only_count() -> None:
    rollout = Rollout(spec(deployment=DeploymentConfig(circuit_breaker=False)))
    for _ in range(10):
        assert not rollout.failed(rollout.target.revision, "exit status 1")
    assert state(rollout) is RolloutState.IN_PROGRESS
    assert rollout.failures == 10


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    backoff = Backoff(RestartPolicy(initial_s=0.5, max_s=3.0))
    assert backoff.ready(0.0)
    assert [backoff.failed(10.0) for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert not backoff.ready(12.9)
    assert backoff.ready(13.0)
    backoff.reset()
    assert backoff.failed(20.0) == 0.5
    backoff.clear()
    assert backoff.ready(20.0)
