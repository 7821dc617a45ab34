"""What an evaluation returns: awards for the ledger, counters to record, explanations."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

Scope = Literal["member", "campaign"]
Unit = Literal["points", "times"]


class CounterKey(msgspec.Struct, frozen=True, kw_only=True):
    """One running total a cap reads: the ledger sums its history over this window.

    Windows are half-open [window_start, window_end) in UTC, computed from the calendar
    period in the rule's time zone; None means unbounded (lifetime, or a campaign budget
    with no end date).
    """

    rule_id: str
    scope: Scope
    unit: Unit
    member_id: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None


class CounterIncrement(msgspec.Struct, frozen=True, kw_only=True):
    key: CounterKey
    amount: int


class Award(msgspec.Struct, frozen=True, kw_only=True):
    """Points one rule grants; each becomes one ledger entry (with the programme version)."""

    rule_id: str
    reason: str
    points: int
    kind: Literal["base", "multiplier"] = "base"
    multiplier_of: str | None = None
    pending: bool = False
    vests_at: datetime | None = None
    expires_at: datetime | None = None
    capped: bool = False
    cap_note: str | None = None


class RuleTrace(msgspec.Struct, frozen=True, kw_only=True):
    rule_id: str
    reason: str


class Evaluation(msgspec.Struct, frozen=True, kw_only=True):
    program_id: str
    program_version: str
    awards: tuple[Award, ...]
    total_points: int
    pending_points: int
    fired: tuple[str, ...]
    tags: tuple[str, ...] = ()
    counter_increments: tuple[CounterIncrement, ...] = ()
    not_fired: tuple[RuleTrace, ...] = ()

    @property
    def available_points(self) -> int:
        return self.total_points - self.pending_points

    def points_by_rule(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for award in self.awards:
            totals[award.rule_id] = totals.get(award.rule_id, 0) + award.points
        return totals
