"""Stage variables in integration targets: `${stageVariables.name}`."""

from __future__ import annotations

import re
from collections.abc import Mapping

_STAGE_VAR = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}")


def substitute_stage_variables(text: str, variables: Mapping[str, str]) -> str:
    """Replace each reference with its value in the stage (empty when undefined, as AWS does)."""
    if "${" not in text:
        return text
    return _STAGE_VAR.sub(lambda m: variables.get(m.group(1), ""), text)
