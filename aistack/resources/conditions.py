"""Condition bookkeeping shared by every status writer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aistack.resources.base import Condition, ConditionStatus


def set_condition(
    conditions: Sequence[Condition] | None,
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None = None,
) -> list[Condition]:
    """Replace the condition of `type_`, keeping lastTransitionTime when its status did not change.

    `status` None means Unknown. Other conditions are kept in their order; a new type is appended.
    """
    value = ConditionStatus.UNKNOWN if status is None else ConditionStatus.TRUE if status else ConditionStatus.FALSE
    previous = next((c for c in conditions or () if c.type == type_), None)
    changed_at = previous.last_transition_time if previous and previous.status is value else now
    updated = Condition(type=type_, status=value, reason=reason, message=message, last_transition_time=changed_at, observed_generation=generation)
    result = [updated if c.type == type_ else c for c in conditions or ()]
    return result if previous else [*result, updated]
