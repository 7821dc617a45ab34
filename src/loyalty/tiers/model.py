"""Tier values at the service boundary."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from loyalty.rules.inputs import AwareDatetime
from loyalty.tiers.ladder import Figures, Missing


class TierChange(msgspec.Struct, frozen=True, kw_only=True):
    from_tier: str | None
    to_tier: str | None
    reason: str
    at: datetime
    note: str | None = None


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    next_tier: str
    by: datetime
    missing: list[Missing]


class TierStatus(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    tier: str | None
    name: str | None
    since: datetime | None
    valid_until: datetime | None
    in_grace: bool
    manual: bool
    earned_tier: str | None
    window_start: datetime
    window_end: datetime
    figures: Figures
    progress: Progress | None
    projected_tier: str | None
    keep: list[Missing]
    benefits: dict[str, Any]
    history: list[TierChange]


class TierAssignment(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tier: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    until: AwareDatetime
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    member_id: str
    kind: str
    payload: dict[str, Any]
    created_at: datetime


class NotificationPage(msgspec.Struct, frozen=True):
    items: list[Notification]
    next_cursor: str | None


class ReviewSummary(msgspec.Struct, frozen=True, kw_only=True):
    reviewed: int
    changed: int
    graced: int
    manual_ended: int
