"""Tier use cases: figures, upgrades on events, manual tiers, reviews, status.

Upgrades happen inside the event's own transaction (the member's balance row is
already locked), as soon as the figures reach a higher tier. Downgrades happen only
at review, when a tier's validity ends: never because of a refund.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import (
    BigInteger,
    BindParameter,
    CompoundSelect,
    Numeric,
    Select,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from loyalty.clock import Clock
from loyalty.db.engine import Database
from loyalty.db.paging import check_limit, decode_cursor, encode_cursor
from loyalty.db.schema import lots, members, notifications, orders, tier_changes
from loyalty.db.types import UtcDateTime
from loyalty.errors import FieldError, InvalidInput, NotFound
from loyalty.program.service import ProgramService
from loyalty.rules import Program
from loyalty.tiers.ladder import Figures, Ladder, window
from loyalty.tiers.model import (
    Notification,
    NotificationPage,
    Progress,
    ReviewSummary,
    TierAssignment,
    TierChange,
    TierStatus,
)

BATCH = 1000
_TIER_COLUMNS = [
    members.c.id,
    members.c.member_id,
    members.c.joined_at,
    members.c.tier,
    members.c.tier_since,
    members.c.tier_valid_until,
    members.c.tier_grace,
    members.c.manual_tier,
    members.c.manual_tier_until,
]


def effective_tier(row: Any, ladder: Ladder, now: datetime) -> str | None:
    """The tier that applies now: a manual one while it lasts, else the earned one."""
    if (
        row.manual_tier is not None
        and row.manual_tier_until is not None
        and row.manual_tier_until > now
    ):
        return str(row.manual_tier)
    return row.tier if row.tier is not None else ladder.entry


def _figures_statement(sqlite: bool) -> CompoundSelect[Any]:
    """Qualifying figures of members over one window, in one statement built once:
    part 0, spend net of refunds and orders (from orders); part 1, points earned by
    rules (from lots). Parameters: ids (expanding), start, end.

    SQLite has no exact decimal sum (it would add floats): there part 0 is the
    window's orders, one row each (total, refunded), added up in Python."""
    ids: BindParameter[Any] = bindparam("ids", expanding=True)
    start, end = bindparam("start", type_=UtcDateTime()), bindparam("end", type_=UtcDateTime())
    in_window = (
        orders.c.member_id.in_(ids),
        orders.c.occurred_at >= start,
        orders.c.occurred_at < end,
    )
    spend: Select[Any]
    if sqlite:
        spend = select(
            literal_column("0").label("part"),
            orders.c.member_id,
            orders.c.total.label("a"),
            orders.c.refunded.label("b"),
            type_coerce(null(), BigInteger()).label("points"),
        ).where(*in_window)
    else:
        spend = (
            select(
                literal_column("0").label("part"),
                orders.c.member_id,
                func.sum(cast(orders.c.total, Numeric) - cast(orders.c.refunded, Numeric)).label(
                    "a"
                ),
                func.count().filter(orders.c.total > orders.c.refunded).label("b"),
                type_coerce(null(), BigInteger()).label("points"),
            )
            .where(*in_window)
            .group_by(orders.c.member_id)
        )
    earned = (
        select(
            literal_column("1"),
            lots.c.member_id,
            null(),
            null(),
            func.sum(lots.c.points - lots.c.clawed),
        )
        .where(
            lots.c.member_id.in_(ids),
            lots.c.rule_id.is_not(None),
            lots.c.created_at >= start,
            lots.c.created_at < end,
        )
        .group_by(lots.c.member_id)
    )
    return union_all(spend, earned)


_FIGURES = {"sqlite": _figures_statement(True), "postgresql": _figures_statement(False)}


async def figures_for(
    db: Database, conn: AsyncConnection, ids: list[int], start: datetime, end: datetime
) -> dict[int, Figures]:
    """Qualifying figures of many members over one window, in one query: spend net of
    refunds and orders (from orders), points earned by rules (from lots)."""
    spend: dict[int, Decimal] = defaultdict(Decimal)
    count: dict[int, int] = defaultdict(int)
    points: dict[int, int] = {}
    rows = await conn.execute(_FIGURES[db.dialect], {"ids": ids, "start": start, "end": end})
    for part, member, a, b, earned in rows:
        if part == 1:
            points[member] = int(earned or 0)
        elif db.is_sqlite:
            spend[member] += a - b
            count[member] += int(a > b)
        else:
            spend[member], count[member] = Decimal(a), int(b)
    return {m: Figures(_plain(spend[m]), points.get(m, 0), count[m]) for m in ids}


def _plain(amount: Decimal) -> Decimal:
    """Drop the zeros PostgreSQL's NUMERIC(18, 4) adds beyond cents."""
    cents = amount.quantize(Decimal("0.01"))
    return cents if cents == amount else amount


class TierService:
    def __init__(self, db: Database, clock: Clock, programs: ProgramService) -> None:
        self._db = db
        self._clock = clock
        self._programs = programs

    async def after_earn(
        self, conn: AsyncConnection, program: Program, member: Any, event_id: int, at: datetime
    ) -> TierChange | None:
        """Upgrade `member` (the row the event locked: id, tier, joined_at) if the
        event's figures reach a higher tier."""
        ladder = Ladder(tuple(program.spec.tiers))
        current = member.tier if member.tier is not None else ladder.entry
        # Nothing to reach above the current tier: no figures to read on this event.
        if ladder.next_above(current) is None:
            return None
        policy, zone = program.spec.tier_policy, ZoneInfo(program.info.timezone)
        start, end = window(policy, at, zone, member.joined_at)
        figures = (await figures_for(self._db, conn, [member.id], start, end))[member.id]
        reached = ladder.reached(figures)
        if ladder.rank(reached) <= ladder.rank(current):
            return None
        change = TierChange(from_tier=current, to_tier=reached, reason="event", at=at)
        await _record(
            conn,
            member,
            change,
            {"tier": reached, "tier_since": at, "tier_valid_until": end, "tier_grace": False},
            event_id,
        )
        return change

    async def assign(self, member_id: str, assignment: TierAssignment, actor: str) -> TierStatus:
        """A marketer's tier (status match, service recovery) until a date; when it
        ends the member falls back to what their figures support."""
        now = self._clock.now()
        _, program = await self._programs.active(now)
        ladder = Ladder(tuple(program.spec.tiers))
        if ladder.get(assignment.tier) is None:
            tiers = ", ".join(t.id for t in ladder.tiers)
            raise InvalidInput.from_fields(
                [
                    FieldError(
                        "tier", "unknown_tier", f"unknown tier {assignment.tier!r} (tiers: {tiers})"
                    )
                ]
            )
        if assignment.until <= now:
            raise InvalidInput.from_fields(
                [FieldError("until", "in_the_past", "until must be in the future")]
            )
        async with self._db.write() as conn:
            row = await _member_row(conn, member_id, lock=True)
            change = TierChange(
                from_tier=effective_tier(row, ladder, now),
                to_tier=assignment.tier,
                reason="manual",
                at=now,
                note=f"{actor}: {assignment.note or 'manual tier'}",
            )
            await _record(
                conn,
                row,
                change,
                {"manual_tier": assignment.tier, "manual_tier_until": assignment.until},
                None,
            )
        return await self.status(member_id)

    async def review(self, now: datetime | None = None) -> ReviewSummary:
        """Review every member whose tier validity or manual tier has ended. Batched,
        idempotent: a reviewed member is not due again until its new date."""
        at = now or self._clock.now()
        _, program = await self._programs.active(at)
        ladder = Ladder(tuple(program.spec.tiers))
        policy, zone = program.spec.tier_policy, ZoneInfo(program.info.timezone)
        totals: dict[str, int] = dict.fromkeys(ReviewSummary.__struct_fields__, 0)
        while True:
            async with self._db.write() as conn:
                due = (
                    await conn.execute(
                        select(*_TIER_COLUMNS)
                        .where(
                            or_(members.c.tier_valid_until <= at, members.c.manual_tier_until <= at)
                        )
                        .order_by(members.c.id)
                        .limit(BATCH)
                        .with_for_update()
                    )
                ).all()
                if not due:
                    return ReviewSummary(**totals)
                # Members due together mostly share their window (the same year, the
                # same review day): one figures query per distinct window, not per member.
                windows = {row.id: _review_window(row, policy, zone, at) for row in due}
                by_window: dict[tuple[datetime, datetime], list[int]] = defaultdict(list)
                for member, span in windows.items():
                    by_window[span].append(member)
                figures: dict[int, Figures] = {}
                for (start, end), ids in by_window.items():
                    figures |= await figures_for(self._db, conn, ids, start, end)
                for row in due:
                    outcome = await self._review_one(
                        conn, row, figures[row.id], ladder, policy, zone, at
                    )
                    totals["reviewed"] += 1
                    if outcome != "reviewed":
                        totals[outcome] += 1

    async def _review_one(
        self,
        conn: AsyncConnection,
        row: Any,
        figures: Figures,
        ladder: Ladder,
        policy: Any,
        zone: ZoneInfo,
        at: datetime,
    ) -> str:
        if _manual_ended(row, at):
            end = window(policy, at, zone, row.joined_at)[1]
            earned_valid = row.tier_valid_until is not None and row.tier_valid_until > at
            supported = max(
                (
                    t
                    for t in (ladder.reached(figures), row.tier if earned_valid else None)
                    if t is not None
                ),
                key=ladder.rank,
                default=ladder.entry,
            )
            change = TierChange(
                from_tier=row.manual_tier, to_tier=supported, reason="manual_ended", at=at
            )
            values = {"manual_tier": None, "manual_tier_until": None, "tier": supported}
            if not earned_valid:
                values |= {"tier_since": at, "tier_valid_until": end}
            await _record(conn, row, change, values, None)
            return "manual_ended"
        ended = _reviewed_end(row, policy)
        current = row.tier if row.tier is not None else ladder.entry
        new = ladder.after_review(current, figures, policy)
        # Counted from the reviewed window, not from now: after downtime, missed
        # reviews are caught up one window at a time.
        next_end = window(policy, ended, zone, row.joined_at)[1]
        # The review loop selects members whose window has ended: a next window that
        # ended no later would select this member again, for ever.
        assert next_end > ended, f"tier window did not advance past {ended}"
        if ladder.rank(new) < ladder.rank(current) and policy.grace_days and not row.tier_grace:
            await conn.execute(
                update(members)
                .where(members.c.id == row.id)
                .values(
                    tier_grace=True,
                    tier_valid_until=row.tier_valid_until + timedelta(days=policy.grace_days),
                )
            )
            return "graced"
        values = {"tier": new, "tier_valid_until": next_end, "tier_grace": False}
        if new == current:
            await conn.execute(update(members).where(members.c.id == row.id).values(values))
            return "reviewed"
        change = TierChange(from_tier=current, to_tier=new, reason="review", at=at)
        await _record(conn, row, change, values | {"tier_since": at}, None)
        return "changed"

    async def status(self, member_id: str) -> TierStatus:
        now = self._clock.now()
        _, program = await self._programs.active(now)
        ladder = Ladder(tuple(program.spec.tiers))
        policy, zone = program.spec.tier_policy, ZoneInfo(program.info.timezone)
        async with self._db.read() as conn:
            row = await _member_row(conn, member_id, lock=False)
            start, end = window(policy, now, zone, row.joined_at)
            figures = (await figures_for(self._db, conn, [row.id], start, end))[row.id]
            history = [
                TierChange(
                    from_tier=h.from_tier, to_tier=h.to_tier, reason=h.reason, at=h.at, note=h.note
                )
                for h in await conn.execute(
                    select(tier_changes)
                    .where(tier_changes.c.member_id == row.id)
                    .order_by(tier_changes.c.id.desc())
                    .limit(50)
                )
            ]
        tier = effective_tier(row, ladder, now)
        spec = ladder.get(tier)
        target = ladder.next_above(tier)
        earned = row.tier if row.tier is not None else ladder.entry
        earned_spec = ladder.get(earned)
        return TierStatus(
            member_id=member_id,
            tier=tier,
            name=spec.name if spec else None,
            since=row.tier_since,
            valid_until=row.manual_tier_until if tier != earned else row.tier_valid_until,
            in_grace=bool(row.tier_grace),
            manual=tier != earned,
            earned_tier=earned,
            window_start=start,
            window_end=end,
            figures=figures,
            progress=Progress(next_tier=target.id, by=end, missing=ladder.missing(target, figures))
            if target
            else None,
            projected_tier=ladder.after_review(earned, figures, policy),
            keep=ladder.missing(earned_spec, figures) if earned_spec else [],
            benefits=msgspec.to_builtins(spec.benefits) if spec else {},
            history=history,
        )

    async def notifications(self, limit: int = 50, after: str | None = None) -> NotificationPage:
        check_limit(limit)
        since = decode_cursor(after)
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(notifications, members.c.member_id.label("member"))
                    .join(members, members.c.id == notifications.c.member_id)
                    .where(notifications.c.id > since)
                    .order_by(notifications.c.id)
                    .limit(limit + 1)
                )
            ).all()
        page = rows[:limit]
        items = [
            Notification(
                id=r.id, member_id=r.member, kind=r.kind, payload=r.payload, created_at=r.created_at
            )
            for r in page
        ]
        return NotificationPage(
            items, encode_cursor(page[-1].id) if len(rows) > limit and page else None
        )


def _manual_ended(row: Any, at: datetime) -> bool:
    return row.manual_tier_until is not None and row.manual_tier_until <= at


def _reviewed_end(row: Any, policy: Any) -> datetime:
    """The window under review is the one that ended at the validity date (before any
    grace period was added)."""
    end: datetime = row.tier_valid_until - timedelta(
        days=policy.grace_days if row.tier_grace else 0
    )
    return end


def _review_window(
    row: Any, policy: Any, zone: ZoneInfo, at: datetime
) -> tuple[datetime, datetime]:
    """The figures a review of `row` judges: the current window when a manual tier
    ends (what the member's figures support now), else the window that ended."""
    if _manual_ended(row, at):
        return window(policy, at, zone, row.joined_at)
    ended = _reviewed_end(row, policy)
    return window(policy, ended - timedelta(microseconds=1), zone, row.joined_at)[0], ended


async def _member_row(conn: AsyncConnection, member_id: str, *, lock: bool) -> Any:
    statement = select(*_TIER_COLUMNS).where(members.c.member_id == member_id)
    row = (await conn.execute(statement.with_for_update() if lock else statement)).one_or_none()
    if row is None:
        raise NotFound("member_not_found", f"no member with member_id {member_id!r}")
    return row


async def _record(
    conn: AsyncConnection,
    row: Any,
    change: TierChange,
    values: dict[str, Any],
    event_id: int | None,
) -> None:
    """Apply a tier change, keep its history and announce it, in one transaction."""
    await conn.execute(update(members).where(members.c.id == row.id).values(values))
    await conn.execute(
        insert(tier_changes).values(
            member_id=row.id,
            from_tier=change.from_tier,
            to_tier=change.to_tier,
            reason=change.reason,
            event_id=event_id,
            note=change.note,
            at=change.at,
        )
    )
    await conn.execute(
        insert(notifications).values(
            member_id=row.id,
            kind="tier_changed",
            created_at=change.at,
            payload={"from": change.from_tier, "to": change.to_tier, "reason": change.reason},
        )
    )
