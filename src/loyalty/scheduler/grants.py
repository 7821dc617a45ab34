"""The grants job: birthday, anniversary and holiday gifts, exactly once, in batches.

Per batch of members (keyset over member id, filtered in SQL to those an occasion
can concern): work out the due gifts in Python over that narrow batch, insert them
into `grants` with ON CONFLICT DO NOTHING RETURNING (the unique key decides which are
new, whichever instance got there first), then credit the new ones in one ledger
transaction and write their notices: one database transaction per batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from loyalty.db.engine import Database, dialect_insert
from loyalty.db.schema import balances, grants, members, notifications
from loyalty.ledger import book
from loyalty.ledger.accounts import Account
from loyalty.ledger.posting import Posting, expiry_for
from loyalty.program.service import ProgramService
from loyalty.rewards.coupons import issue_coupon
from loyalty.rules import Program
from loyalty.rules.calendars import zone
from loyalty.scheduler.occasions import Occasion, calendar_days, is_due, local_midnight
from loyalty.scheduler.quiet import deliver_after
from loyalty.scheduler.sweeps import Sweep, member_zone, sweeps
from loyalty.tiers.ladder import Ladder
from loyalty.tiers.service import effective_tier

log = structlog.get_logger("loyalty.scheduler")
BATCH = 1000
Progress = Callable[[int], None]

_COLUMNS = [
    members.c.id,
    members.c.timezone,
    members.c.locale,
    members.c.birthday,
    members.c.joined_at,
    members.c.marketing_consent,
    members.c.quiet_hours,
    members.c.tier,
    members.c.manual_tier,
    members.c.manual_tier_until,
]


@dataclass(frozen=True)
class Gift:
    member: Any  # the member row
    occasion: Occasion
    points: int
    due_at: datetime


class GrantJob:
    def __init__(self, db: Database, programs: ProgramService, batch: int = BATCH) -> None:
        self._db = db
        self._programs = programs
        self._batch = batch

    async def run(
        self, now: datetime, *, dry_run: bool = False, progress: Progress | None = None
    ) -> dict[str, int]:
        _, program = await self._programs.active(now)
        look_back = program.spec.scheduled.look_back_days
        totals: Counter[str] = Counter()
        for sweep in sweeps(self._db, program, calendar_days(now, look_back)):
            after = 0
            while True:
                opener = self._db.read if dry_run else self._db.write
                async with opener() as conn:
                    rows = await self._members(conn, sweep, after)
                    if not rows:
                        break
                    after = rows[-1].id
                    gifts = _due(rows, sweep, program, now, look_back)
                    if dry_run:
                        new = await _not_yet_given(conn, gifts)
                    else:
                        new = await self._give(conn, sweep, program, gifts, now)
                totals["members_read"] += len(rows)
                totals["due"] += len(gifts)
                totals["granted"] += len(new)
                totals["points"] += sum(gift.points for gift in new)
                totals["notices"] += sum(bool(g.member.marketing_consent) for g in new)
                log.info(
                    "grants_batch", campaign=sweep.campaign, members=len(rows), granted=len(new)
                )
                if progress is not None:
                    progress(len(rows))
        return dict(totals)

    async def _members(self, conn: AsyncConnection, sweep: Sweep, after: int) -> list[Any]:
        statement = (
            select(*_COLUMNS)
            .where(members.c.status == "active", members.c.id > after, *sweep.where)
            .order_by(members.c.id)
            .limit(self._batch)
        )
        return list((await conn.execute(statement)).all())

    async def _give(
        self,
        conn: AsyncConnection,
        sweep: Sweep,
        program: Program,
        gifts: list[Gift],
        now: datetime,
    ) -> list[Gift]:
        if not gifts:
            return []
        by_key = {(g.member.id, g.occasion.occurrence): g for g in gifts}
        inserted = await conn.execute(
            dialect_insert(self._db, grants)
            .on_conflict_do_nothing(index_elements=["member_id", "campaign", "occurrence"])
            .returning(grants.c.id, grants.c.member_id, grants.c.occurrence),
            [
                {
                    "member_id": g.member.id,
                    "campaign": sweep.campaign,
                    "occurrence": g.occasion.occurrence,
                    "points": g.points,
                    "due_at": g.due_at,
                    "created_at": now,
                }
                for g in gifts
            ],
        )
        new = {row.id: by_key[(row.member_id, row.occurrence)] for row in inserted}
        if not new:
            return []
        with_points = [g for g in new.values() if g.points > 0]
        if with_points:
            txn_id = await _credit(conn, sweep, program, with_points, now)
            await conn.execute(update(grants).where(grants.c.id.in_(new)).values(txn_id=txn_id))
        if sweep.reward is not None:
            reward = program.spec.rewards[sweep.reward]
            for gift in new.values():
                await issue_coupon(
                    conn, member=gift.member.id, reward_id=sweep.reward, reward=reward, at=now
                )
        notices = [
            {
                "member_id": g.member.id,
                "kind": sweep.kind,
                "created_at": now,
                "payload": {
                    "campaign": sweep.campaign,
                    "occurrence": g.occasion.occurrence,
                    "points": g.points,
                    "reward": sweep.reward,
                    "locale": g.member.locale,
                    "template": sweep.template,
                    "deliver_after": deliver_after(g.member.quiet_hours, g.member.timezone, now),
                },
            }
            for g in new.values()
            # The points are given either way; only the greeting needs consent.
            if g.member.marketing_consent
        ]
        if notices:
            await conn.execute(insert(notifications), notices)
        return list(new.values())


def _due(
    rows: list[Any], sweep: Sweep, program: Program, now: datetime, look_back: int
) -> list[Gift]:
    ladder = Ladder(tuple(program.spec.tiers))
    gifts = []
    for row in rows:
        tier = effective_tier(row, ladder, now)
        if sweep.tiers and tier not in sweep.tiers:
            continue
        points = sweep.points_for(tier)
        if points <= 0 and sweep.reward is None:
            continue
        for occasion in sweep.occasions_of(row):
            tz = member_zone(row)
            due_at = local_midnight(occasion.day, tz)
            # The stated rule for late joiners: an occasion that fell before the member
            # joined is not theirs (next year's is).
            if is_due(occasion.day, tz, now, look_back) and row.joined_at <= due_at:
                gifts.append(Gift(row, occasion, points, due_at))
    return gifts


async def _not_yet_given(conn: AsyncConnection, gifts: list[Gift]) -> list[Gift]:
    if not gifts:
        return []
    keys = [(g.member.id, g.occasion.campaign, g.occasion.occurrence) for g in gifts]
    given = set(
        (
            await conn.execute(
                select(grants.c.member_id, grants.c.campaign, grants.c.occurrence).where(
                    tuple_(grants.c.member_id, grants.c.campaign, grants.c.occurrence).in_(keys)
                )
            )
        ).all()
    )
    return [g for g, key in zip(gifts, keys, strict=True) if key not in given]


async def _credit(
    conn: AsyncConnection, sweep: Sweep, program: Program, gifts: list[Gift], now: datetime
) -> int:
    """One ledger transaction for the batch: `issued` to each member's `available`,
    one lot per gift, expiring by the campaign's days or the programme's policy."""
    owners = sorted({g.member.id for g in gifts})
    # The same lock order as event ingestion (balance rows, in member order).
    locked = await conn.execute(
        select(balances.c.member_id, balances.c.available)
        .where(balances.c.member_id.in_(owners))
        .order_by(balances.c.member_id)
        .with_for_update()
    )
    debts = {member: max(-available, 0) for member, available in locked}
    posting, new_lots = Posting(at=now), []
    lifetime: dict[int, tuple[int, int]] = {}
    program_zone = zone(program.info.timezone)
    for gift in gifts:
        member = gift.member.id
        expires = (
            gift.due_at + timedelta(days=sweep.expires_after_days)
            if sweep.expires_after_days is not None
            else expiry_for(program.spec.expiry, now, program_zone)
        )
        # A negative balance (a refund of spent points) is repaid first.
        repay = min(debts.get(member, 0), gift.points)
        debts[member] = debts.get(member, 0) - repay
        lot = book.NewLot(
            member_id=member,
            points=gift.points,
            status="available",
            rule_id=None,  # gifts are not earned by rules: they do not count for tiers
            vests_at=None,
            expires_at=expires,
            remaining=gift.points - repay,
        )
        new_lots.append(lot)
        posting.move(
            gift.points,
            (Account.ISSUED, None),
            (Account.AVAILABLE, member),
            lot_id=lot,
            reason=f"gift {gift.occasion.occurrence}",
        )
        earned, _ = lifetime.get(member, (0, 0))
        lifetime[member] = (earned + gift.points, 0)
    txn_id, _ = await book.write(
        conn,
        posting,
        kind="grant",
        actor="job:grants",
        reason=f"scheduled gifts: {sweep.campaign}",
        member_id=None,
        new_lots=new_lots,
        lifetime=lifetime,
    )
    return txn_id
