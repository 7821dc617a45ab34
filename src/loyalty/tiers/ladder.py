"""Pure tier logic: windows, which tier figures reach, what is missing, review outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgspec

from loyalty.rules.schema import TierPolicySpec, TierSpec


class Figures(msgspec.Struct, frozen=True):
    """What counts towards a tier within a window."""

    spend: Decimal
    points: int
    orders: int


class Missing(msgspec.Struct, frozen=True, kw_only=True):
    metric: str
    needed: str
    have: str
    still_needed: str


def _midnight(day: datetime, zone: ZoneInfo) -> datetime:
    return datetime.combine(day.date(), time(0), zone).astimezone(UTC)


def window(
    policy: TierPolicySpec, at: datetime, zone: ZoneInfo, joined_at: datetime
) -> tuple[datetime, datetime]:
    """The window `at` falls in: [start, end). `end` is when it is next reviewed."""
    if policy.window == "rolling_days":
        days = timedelta(days=policy.days or 0)
        return at - days, at + days
    local = at.astimezone(zone)
    if policy.window == "calendar_year":
        start = local.replace(month=1, day=1)
        end = start.replace(year=start.year + 1)
    else:  # membership year: from the last anniversary of joining
        joined = joined_at.astimezone(zone)
        start = _anniversary(joined, local.year)
        # Whole days: the year starts at midnight of the anniversary, whatever the
        # time of day the member joined.
        if start.date() > local.date():
            start = _anniversary(joined, local.year - 1)
        end = _anniversary(joined, start.year + 1)
    return _midnight(start, zone), _midnight(end, zone)


def _anniversary(joined: datetime, year: int) -> datetime:
    # 29 February joiners have their anniversary on 28 February in other years.
    day = 28 if (joined.month, joined.day) == (2, 29) and not _leap(year) else joined.day
    return joined.replace(year=year, day=day)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


@dataclass(frozen=True)
class Ladder:
    tiers: tuple[TierSpec, ...]

    @property
    def entry(self) -> str | None:
        return self.tiers[0].id if self.tiers else None

    def rank(self, tier: str | None) -> int:
        ids = [t.id for t in self.tiers]
        return ids.index(tier) if tier in ids else -1

    def get(self, tier: str | None) -> TierSpec | None:
        return next((t for t in self.tiers if t.id == tier), None)

    def reached(self, figures: Figures) -> str | None:
        """The highest tier the figures reach (invite-only tiers are never reached)."""
        best = self.entry
        for tier in self.tiers[1:]:
            q = tier.qualify
            if q is None:
                continue
            if (
                (q.spend is not None and figures.spend >= q.spend)
                or (q.points is not None and figures.points >= q.points)
                or (q.orders is not None and figures.orders >= q.orders)
            ):
                best = tier.id
        return best

    def next_above(self, tier: str | None) -> TierSpec | None:
        for candidate in self.tiers[self.rank(tier) + 1 :]:
            if candidate.qualify is not None:
                return candidate
        return None

    def missing(self, tier: TierSpec, figures: Figures) -> list[Missing]:
        """What each metric still needs to reach `tier` (any one suffices)."""
        q = tier.qualify
        if q is None:
            return []
        out = []
        if q.spend is not None:
            out.append(_gap("spend", q.spend, figures.spend))
        if q.points is not None:
            out.append(_gap("points", Decimal(q.points), Decimal(figures.points)))
        if q.orders is not None:
            out.append(_gap("orders", Decimal(q.orders), Decimal(figures.orders)))
        return out

    def after_review(
        self, current: str | None, figures: Figures, policy: TierPolicySpec
    ) -> str | None:
        """The tier a review leaves: what the figures reach if that is not lower;
        otherwise one step down or straight to it, as the policy says."""
        reached = self.reached(figures)
        if self.rank(reached) >= self.rank(current):
            return reached
        if policy.downgrade == "to_qualified":
            return reached
        return self.tiers[max(self.rank(current) - 1, 0)].id


def _gap(metric: str, needed: Decimal, have: Decimal) -> Missing:
    return Missing(
        metric=metric,
        needed=str(needed),
        have=str(have),
        still_needed=str(max(needed - have, Decimal(0))),
    )
