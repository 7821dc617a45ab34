"""Caps and budgets: which counters a rule reads, and how much it may still award."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal

from .calendars import zone
from .context import EvalContext
from .outputs import CounterKey, Scope, Unit

Period = Literal["day", "week", "month", "year", "lifetime"]
UTC_ZONE = zone("UTC")


@dataclass(frozen=True, slots=True)
class Limit:
    rule_id: str
    scope: Scope
    unit: Unit
    maximum: int
    period: Period | None
    rolling_days: int | None
    clock: str
    # A campaign budget without a period spans the rule's validity.
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def key(self, ctx: EvalContext) -> CounterKey:
        start, end = self.window(ctx)
        return CounterKey(
            rule_id=self.rule_id,
            scope=self.scope,
            unit=self.unit,
            member_id=ctx.member.member_id if self.scope == "member" else None,
            window_start=start,
            window_end=end,
        )

    def window(self, ctx: EvalContext) -> tuple[datetime | None, datetime | None]:
        at = ctx.event.occurred_at
        if self.rolling_days is not None:
            end = at.astimezone(UTC_ZONE)
            # Rolling windows end just after the event so the event itself is inside.
            return end - timedelta(days=self.rolling_days), end + timedelta(microseconds=1)
        if self.period is None:
            return self.valid_from, self.valid_until
        if self.period == "lifetime":
            return None, None
        cache = ctx.windows
        found = cache.get((self.period, self.clock))
        if found is None:
            start, end = _calendar_window(ctx.local(self.clock), self.period)
            found = (start.astimezone(UTC_ZONE), end.astimezone(UTC_ZONE))
            cache[(self.period, self.clock)] = found
        return found

    def describe(self) -> str:
        what = f"{self.maximum} {'points' if self.unit == 'points' else 'times'}"
        who = "per member" if self.scope == "member" else "campaign"
        if self.rolling_days is not None:
            return f"{what} {who} per rolling {self.rolling_days} days"
        if self.period is None:
            return f"{what} {who} budget"
        return f"{what} {who} per {self.period}"


def _calendar_window(local: datetime, period: Period) -> tuple[datetime, datetime]:
    day = local.date()
    if period == "day":
        first, after = day, day + timedelta(days=1)
    elif period == "week":
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    elif period == "month":
        first = day.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    else:
        first = day.replace(month=1, day=1)
        after = first.replace(year=first.year + 1)
    tz = local.tzinfo
    return datetime.combine(first, time(), tz), datetime.combine(after, time(), tz)
