"""ServiceControl: the admin API's desired counts over the deployed specs, kept across restarts
in the state directory, and given up when the template's own count changes (as a CloudFormation
update of `DesiredCount` would). A real supervisor runs the test app."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from fogbank.services import ServiceControl

from .conftest import Harness

pytestmark = pytest.mark.anyio


def desired(h: Harness) -> int:
    found = h.supervisor.service_status("web")
    assert found is not None
    return found.desired


async def test_an_admin_count_outlives_a_restart(harness: Harness, tmp_path: Path) -> None:
    counts = tmp_path / "state" / "service-counts.json"
    first = ServiceControl(harness.supervisor, counts)
    await first.deploy({"web": harness.spec(desired_count=1)})
    assert not counts.exists()  # nothing changed yet: nothing kept
    status = await first.update_service("web", desired_count=2, force_new_deployment=False)
    assert status is not None
    assert status.desired == 2
    assert json.loads(counts.read_text()) == {"web": {"desiredCount": 2, "templateDesiredCount": 1}}
    # The node restarts: a new control over the same state directory, the same template.
    again = ServiceControl(harness.supervisor, counts)
    await again.deploy({"web": harness.spec(desired_count=1)})
    assert again.specs()["web"].desired_count == 2
    assert desired(harness) == 2


async def test_a_changed_template_count_wins(harness: Harness, tmp_path: Path) -> None:
    counts = tmp_path / "service-counts.json"
    counts.write_text(json.dumps({"web": {"desiredCount": 3, "templateDesiredCount": 1}}))
    control = ServiceControl(harness.supervisor, counts)
    await control.deploy({"web": harness.spec(desired_count=2)})
    assert control.specs()["web"].desired_count == 2
    assert desired(harness) == 2
    assert json.loads(counts.read_text()) == {}


async def test_a_redeploy_keeps_the_count_while_the_template_does(
    harness: Harness, tmp_path: Path
) -> None:
    control = ServiceControl(harness.supervisor, tmp_path / "service-counts.json")
    await control.deploy({"web": harness.spec(desired_count=1)})
    await control.update_service("web", desired_count=2, force_new_deployment=False)
    await control.deploy({"web": harness.spec(desired_count=1, environment={"V": "2"})})
    assert control.specs()["web"].desired_count == 2
    await control.deploy({"web": harness.spec(desired_count=1), "api": harness.spec("api")})
    assert control.specs()["web"].desired_count == 2
    await control.deploy({"api": harness.spec("api")})  # web is gone, and its count with it
    await control.deploy({"web": harness.spec(desired_count=1), "api": harness.spec("api")})
    assert control.specs()["web"].desired_count == 1


async def test_without_a_file_counts_last_until_restart(harness: Harness) -> None:
    control = ServiceControl(harness.supervisor)
    await control.deploy({"web": harness.spec(desired_count=1)})
    await control.update_service("web", desired_count=2, force_new_deployment=False)
    assert control.specs()["web"].desired_count == 2
    again = ServiceControl(harness.supervisor)
    await again.deploy({"web": harness.spec(desired_count=1)})
    assert again.specs()["web"].desired_count == 1


async def test_an_unknown_service_is_not_updated(harness: Harness, tmp_path: Path) -> None:
    counts = tmp_path / "service-counts.json"
    control = ServiceControl(harness.supervisor, counts)
    await control.deploy({"web": harness.spec()})
    assert await control.update_service("nope", desired_count=2, force_new_deployment=False) is None
    assert not counts.exists()


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        '{"web": {"desiredCount": "many"}}',
        '{"web": 3}',
        '{"web": {"desiredCount": -1, "templateDesiredCount": 1}}',
    ],
)
async def test_an_unreadable_file_is_kept_aside(
    harness: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    counts = tmp_path / "service-counts.json"
    counts.write_text(text)
    with caplog.at_level(logging.WARNING, logger="fogbank.services"):
        control = ServiceControl(harness.supervisor, counts)
    assert f"{counts}: unreadable" in caplog.text
    assert (tmp_path / "service-counts.json.unreadable").read_text() == text
    await control.deploy({"web": harness.spec(desired_count=1)})
    assert control.specs()["web"].desired_count == 1
