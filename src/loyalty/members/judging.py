"""A member as the rules engine sees them."""

from __future__ import annotations

from typing import Any

from loyalty.rules import MemberInput


def member_input(row: Any, tier: str | None) -> MemberInput:
    """From any row with the members table's columns (and the tier that applies)."""
    return MemberInput(
        member_id=row.member_id,
        tier=tier,
        tags=frozenset(row.tags),
        attributes=row.attributes,
        joined_at=row.joined_at,
        birthday=row.birthday,
        timezone=row.timezone,
    )
