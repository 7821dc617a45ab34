"""Two-phase redemptions at the till (TigerBeetle-style holds).

Reserve: points move from available to held, taken from the soonest-expiring lots
and recorded per lot. Commit: some or all of the held points go to `redeemed`, the
rest back to the lots they came from. Cancel or time-out: all of them go back.
A hold resolves at most once, never after its time; points whose lot expired while
they were held go to `expired`, not back to the member.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from loyalty.auth.keys import Principal
from loyalty.clock import Clock
from loyalty.db.engine import Database, dialect_insert
from loyalty.db.schema import members, redemptions, reward_stock
from loyalty.errors import Conflict, FieldError, InvalidInput, NotFound
from loyalty.ledger import book
from loyalty.ledger.accounts import Account
from loyalty.ledger.model import Balances
from loyalty.ledger.posting import LotView, Posting, allocate
from loyalty.members.judging import member_input
from loyalty.members.model import MemberId
from loyalty.program.service import ProgramService
from loyalty.rules import Program
from loyalty.tiers.ladder import Ladder
from loyalty.tiers.service import effective_tier

DEFAULT_HOLD = timedelta(minutes=5)
_ENCODER = msgspec.json.Encoder(order="deterministic")


class HoldIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Reserve `points` (points as payment) or a catalog `reward_id`."""

    member_id: MemberId
    points: Annotated[int, msgspec.Meta(ge=1, le=100_000_000)] | None = None
    reward_id: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    hold_seconds: Annotated[int, msgspec.Meta(ge=10, le=86_400)] = int(DEFAULT_HOLD.total_seconds())


class CommitIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Less than the hold captures part of it; the rest is released. Capturing
    # nothing is a cancel, not a commit.
    points: Annotated[int, msgspec.Meta(ge=1)] | None = None


class RedemptionOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    member_id: str
    state: str
    points: int
    committed_points: int | None
    reward_id: str | None
    value: str | None
    currency: str
    expires_at: datetime
    created_at: datetime
    resolved_at: datetime | None
    balances: Balances | None = None


class RedemptionService:
    def __init__(self, db: Database, clock: Clock, programs: ProgramService) -> None:
        self._db = db
        self._clock = clock
        self._programs = programs

    async def reserve(
        self, source: Principal, key: str, hold: HoldIn
    ) -> tuple[RedemptionOut, bool]:
        """Place a hold; returns it and whether this call created it (False: a replay)."""
        if (hold.points is None) == (hold.reward_id is None):
            raise InvalidInput.from_fields(
                [FieldError("points", "one_of", "give either points or reward_id")]
            )
        now = self._clock.now()
        _, program = await self._programs.active(now)
        request_hash = hashlib.sha256(_ENCODER.encode(hold)).hexdigest()
        async with self._db.write() as conn:
            # The member first: a concurrent retry with this key waits on the lock and
            # then replays, instead of colliding on the key's unique index.
            member = await book.lock_member(conn, hold.member_id, live=False)
            existing = (
                await conn.execute(
                    select(redemptions.c.id, redemptions.c.request_hash).where(
                        redemptions.c.source_key_id == source.key_id,
                        redemptions.c.idempotency_key == key,
                    )
                )
            ).one_or_none()
            if existing is not None:
                if existing.request_hash != request_hash:
                    raise Conflict(
                        "idempotency_key_reused",
                        "this Idempotency-Key was already used with a different request body",
                    )
                return await self._out(conn, program, existing.id), False
            book.ensure_live(member)
            if await self._expire_lapsed(conn, member.id, now):
                # Those points are back (or expired): read the balances again.
                member = await book.lock_member(conn, hold.member_id)
            points = hold.points or await self._reward_cost(
                conn, program, member, hold.reward_id, now
            )
            if member.available < points:
                raise InvalidInput(
                    "insufficient_points",
                    f"member has {member.available} available points, the hold needs {points}",
                )
            taken, short = allocate(await book.spendable_lots(conn, member.id), points)
            if short:
                raise InvalidInput(
                    "insufficient_points", f"only {points - short} points can be held"
                )
            posting = Posting(at=now)
            for lot_id, take in taken:
                posting.move(
                    take,
                    (Account.AVAILABLE, member.id),
                    (Account.HELD, member.id),
                    lot_id=lot_id,
                    reason="held for redemption",
                )
            txn_id, _ = await book.write(
                conn,
                posting,
                kind="hold",
                actor=source.label,
                reason=f"hold: {hold.reward_id or 'points as payment'}",
                member_id=member.id,
                lot_changes=[
                    {
                        "lot": lot_id,
                        "remaining_delta": -take,
                        "clawed_delta": 0,
                        "new_status": "available",
                    }
                    for lot_id, take in taken
                ],
            )
            redemption_id = await conn.scalar(
                dialect_insert(self._db, redemptions)
                .values(
                    member_id=member.id,
                    source_key_id=source.key_id,
                    idempotency_key=key,
                    request_hash=request_hash,
                    reward_id=hold.reward_id,
                    points=points,
                    state="held",
                    hold_txn_id=txn_id,
                    expires_at=now + timedelta(seconds=hold.hold_seconds),
                    created_at=now,
                )
                .returning(redemptions.c.id)
            )
            assert redemption_id is not None
            return await self._out(conn, program, redemption_id), True

    async def _reward_cost(
        self,
        conn: AsyncConnection,
        program: Program,
        member: book.LockedMember,
        reward_id: str | None,
        now: datetime,
    ) -> int:
        """Check a member may redeem the reward now, take a unit of stock, give its cost."""
        reward = program.spec.rewards.get(reward_id or "")
        if reward is None:
            raise NotFound("reward_not_found", f"no reward {reward_id!r} in the catalog")
        tier = effective_tier(member, Ladder(tuple(program.spec.tiers)), now)
        reasons = not_eligible(reward, tier, set(member.tags), now)
        refusal = program.reward_refusal(reward_id or "", member_input(member, tier), now)
        if refusal:
            reasons.append(refusal)
        if reward.limit is not None:
            times = await conn.execute(
                select(redemptions.c.created_at).where(
                    redemptions.c.member_id == member.id,
                    redemptions.c.reward_id == reward_id,
                    redemptions.c.state.in_(("held", "committed")),
                )
            )
            reason = limit_reason(reward, list(times.scalars()), now)
            if reason:
                reasons.append(reason)
        if reasons:
            raise Conflict("reward_not_redeemable", f"reward {reward_id!r}: " + "; ".join(reasons))
        if reward.stock is not None:
            await conn.execute(
                dialect_insert(self._db, reward_stock)
                .values(reward_id=reward_id, used=0)
                .on_conflict_do_nothing(index_elements=["reward_id"])
            )
            took = await conn.scalar(
                update(reward_stock)
                .where(reward_stock.c.reward_id == reward_id, reward_stock.c.used < reward.stock)
                .values(used=reward_stock.c.used + 1)
                .returning(reward_stock.c.used)
            )
            if took is None:
                raise Conflict("out_of_stock", f"reward {reward_id!r} is out of stock")
        return reward.cost_by_tier.get(tier or "", reward.cost)

    async def commit(
        self,
        redemption_id: int,
        points: int | None,
        *,
        then: Callable[[AsyncConnection, Any], Awaitable[None]] | None = None,
    ) -> RedemptionOut:
        """Capture the hold; `then` runs in the same transaction (e.g. to issue the
        coupon that the points paid for)."""
        return await self._resolve(redemption_id, "committed", points, then=then)

    async def cancel(self, redemption_id: int) -> RedemptionOut:
        return await self._resolve(redemption_id, "cancelled", 0)

    async def release_expired(self, now: datetime | None = None) -> int:
        """Release holds past their time (the scheduler's sweep). Returns how many."""
        at = now or self._clock.now()
        async with self._db.read() as conn:
            due = list(
                (
                    await conn.execute(
                        select(redemptions.c.id).where(
                            redemptions.c.state == "held", redemptions.c.expires_at <= at
                        )
                    )
                ).scalars()
            )
        released = 0
        for redemption_id in due:
            try:
                await self._resolve(redemption_id, "expired", 0, at=at)
                released += 1
            except Conflict as refusal:
                # Resolved meanwhile (a till's commit, or the member's next hold
                # releasing it): nothing left to do for this one.
                if refusal.code != "redemption_resolved":
                    raise
        return released

    async def get(self, redemption_id: int) -> RedemptionOut:
        _, program = await self._programs.active(self._clock.now())
        async with self._db.read() as conn:
            return await self._out(conn, program, redemption_id)

    async def _resolve(
        self,
        redemption_id: int,
        state: str,
        points: int | None,
        at: datetime | None = None,
        then: Callable[[AsyncConnection, Any], Awaitable[None]] | None = None,
    ) -> RedemptionOut:
        now = at or self._clock.now()
        _, program = await self._programs.active(now)
        async with self._db.write() as conn:
            row = (
                await conn.execute(select(redemptions).where(redemptions.c.id == redemption_id))
            ).one_or_none()
            if row is None:
                raise NotFound("redemption_not_found", f"no redemption {redemption_id}")
            member = await book.lock_member_by_id(conn, row.member_id)
            row = (
                await conn.execute(select(redemptions).where(redemptions.c.id == redemption_id))
            ).one()
            if row.state != "held":
                raise Conflict(
                    "redemption_resolved", f"redemption {redemption_id} is already {row.state}"
                )
            if state != "expired" and now >= row.expires_at:
                raise Conflict(
                    "hold_expired",
                    f"the hold expired at {row.expires_at.isoformat()}; it was released",
                )
            captured = row.points if points is None else points
            if captured > row.points:
                raise InvalidInput.from_fields(
                    [FieldError("points", "exceeds_hold", f"the hold is for {row.points} points")]
                )
            if row.reward_id is not None and captured not in (0, row.points):
                raise InvalidInput.from_fields(
                    [
                        FieldError(
                            "points", "whole_reward", "a reward is committed whole or cancelled"
                        )
                    ]
                )
            await self._settle(conn, row, member, captured, state, now)
            if then is not None:
                await then(conn, row)
            return await self._out(conn, program, redemption_id)

    async def _expire_lapsed(self, conn: AsyncConnection, member: int, now: datetime) -> int:
        """Release the locked member's holds that are past their time, in the caller's
        transaction, so that a new hold can use their points at once (the hold
        timeouts job would release them only on its next run)."""
        lapsed = (
            await conn.execute(
                select(redemptions).where(
                    redemptions.c.member_id == member,
                    redemptions.c.state == "held",
                    redemptions.c.expires_at <= now,
                )
            )
        ).all()
        for row in lapsed:
            await self._settle(conn, row, member, 0, "expired", now)
        return len(lapsed)

    async def _settle(
        self, conn: AsyncConnection, row: Any, member: int, captured: int, state: str, now: datetime
    ) -> None:
        """Resolve a locked, still-held hold: `captured` points redeemed, the rest
        released (to `expired` where their lot has lapsed)."""
        redemption_id = row.id
        posting, changes = await self._release(conn, row.hold_txn_id, member, captured, now)
        txn_id, _ = await book.write(
            conn,
            posting,
            kind="redeem" if captured else "release",
            actor=f"redemption:{redemption_id}",
            reason=f"{state} redemption {redemption_id}",
            member_id=member,
            lot_changes=changes,
            lifetime={member: (0, captured)},
        )
        if captured == 0 and row.reward_id is not None:
            await conn.execute(
                update(reward_stock)
                .where(reward_stock.c.reward_id == row.reward_id)
                .values(used=reward_stock.c.used - 1)
            )
        await conn.execute(
            update(redemptions)
            .where(redemptions.c.id == redemption_id)
            .values(
                state="committed" if captured else state,
                committed_points=captured if captured else None,
                commit_txn_id=txn_id if captured else None,
                resolved_at=now,
            )
        )

    async def _release(
        self, conn: AsyncConnection, hold_txn: int, member: int, captured: int, now: datetime
    ) -> tuple[Posting, list[dict[str, Any]]]:
        """Capture `captured` points from the held lots, soonest-expiring first; give
        the rest back to the lots they came from (or to expired, if their time passed)."""
        held = await book.lots_moved(conn, hold_txn, Account.HELD)
        taken = dict(
            allocate([LotView(r.lot_id, r.amount, r.expires_at) for r in held], captured)[0]
        )
        posting, changes = Posting(at=now), []
        for lot in held:
            spent = taken.get(lot.lot_id, 0)
            posting.move(
                spent,
                (Account.HELD, member),
                (Account.REDEEMED, None),
                lot_id=lot.lot_id,
                reason="redeemed",
            )
            back = lot.amount - spent
            if not back:
                continue
            if _lapsed(lot.status, lot.expires_at, now):
                posting.move(
                    back,
                    (Account.HELD, member),
                    (Account.EXPIRED, None),
                    lot_id=lot.lot_id,
                    reason="released after its lot expired",
                )
            else:
                posting.move(
                    back,
                    (Account.HELD, member),
                    (Account.AVAILABLE, member),
                    lot_id=lot.lot_id,
                    reason="released from hold",
                )
                changes.append(
                    {
                        "lot": lot.lot_id,
                        "remaining_delta": back,
                        "clawed_delta": 0,
                        "new_status": "available",
                    }
                )
        return posting, changes

    async def _out(
        self, conn: AsyncConnection, program: Program, redemption_id: int
    ) -> RedemptionOut:
        row = (
            await conn.execute(
                select(redemptions, members.c.member_id.label("member"))
                .join(members, members.c.id == redemptions.c.member_id)
                .where(redemptions.c.id == redemption_id)
            )
        ).one()
        rate = program.spec.points_payment
        value = (
            str(rate.value * (row.committed_points or row.points) / rate.points)
            if rate is not None and row.reward_id is None
            else None
        )
        return RedemptionOut(
            id=row.id,
            member_id=row.member,
            state=row.state,
            points=row.points,
            committed_points=row.committed_points,
            reward_id=row.reward_id,
            value=value,
            currency=program.info.currency,
            expires_at=row.expires_at,
            created_at=row.created_at,
            resolved_at=row.resolved_at,
        )


LIMIT_PERIODS = {
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=30),
    "year": timedelta(days=365),
}


def _lapsed(status: str, expires_at: datetime | None, now: datetime) -> bool:
    """A lot whose time has passed, swept by the expiry job yet or not: points going
    back to it go to `expired` instead."""
    return status == "expired" or (expires_at is not None and expires_at <= now)


def limit_reason(reward: Any, redeemed_at: list[datetime], now: datetime) -> str | None:
    """Why the member's earlier redemptions of `reward` stop another one, if they do."""
    limit = reward.limit
    if limit is None:
        return None
    since = None if limit.period == "lifetime" else now - LIMIT_PERIODS[limit.period]
    count = sum(1 for at in redeemed_at if since is None or at >= since)
    return f"limit of {limit.max} per {limit.period} reached" if count >= limit.max else None


def not_eligible(reward: Any, tier: str | None, tags: set[str], now: datetime) -> list[str]:
    reasons = []
    if reward.valid_from is not None and now < reward.valid_from:
        reasons.append(f"not available before {reward.valid_from.isoformat()}")
    if reward.valid_until is not None and now >= reward.valid_until:
        reasons.append(f"no longer available since {reward.valid_until.isoformat()}")
    if reward.tiers and tier not in reward.tiers:
        reasons.append(f"for tiers {', '.join(reward.tiers)} (member is {tier})")
    if reward.tags and not tags & set(reward.tags):
        reasons.append(f"for members tagged {', '.join(reward.tags)}")
    return reasons


async def check_payment(conn: AsyncConnection, member: int, redemption_id: int) -> None:
    """A purchase may name the committed points-as-payment redemption that paid for it,
    once, so that refunding the purchase gives those points back."""
    paid = (
        await conn.execute(
            select(redemptions.c.state, redemptions.c.reward_id, redemptions.c.member_id).where(
                redemptions.c.id == redemption_id
            )
        )
    ).one_or_none()
    if paid is None or paid.member_id != member or paid.state != "committed" or paid.reward_id:
        raise InvalidInput.from_fields(
            [
                FieldError(
                    "redemption_id",
                    "invalid_redemption",
                    "not a committed points payment of this member",
                )
            ]
        )


async def restore_payment(
    conn: AsyncConnection,
    redemption_id: int,
    member: int,
    share: Callable[[int, int], int],
    posting: Posting,
    now: datetime,
) -> tuple[int, list[dict[str, Any]]]:
    """Give back the points that paid for a refunded purchase: `share(paid, already)`
    says how many, now. They return to the lots they came from, or to `expired` where
    a lot's time has passed. Returns the points and the lot changes."""
    row = (
        await conn.execute(
            select(
                redemptions.c.committed_points,
                redemptions.c.restored_points,
                redemptions.c.commit_txn_id,
            ).where(redemptions.c.id == redemption_id)
        )
    ).one()
    points = share(row.committed_points or 0, row.restored_points)
    if points <= 0:
        return 0, []
    spent = await book.lots_moved(conn, row.commit_txn_id, Account.REDEEMED)
    views = [LotView(r.lot_id, r.amount, r.expires_at) for r in spent]
    # Cumulative, like the clawback: what all refunds so far give back, less what the
    # earlier ones gave, so that each refund continues where the last one stopped.
    before = dict(allocate(views, row.restored_points)[0])
    after = allocate(views, row.restored_points + points)[0]
    back = [(lot, amount - before.get(lot, 0)) for lot, amount in after]
    back = [(lot, amount) for lot, amount in back if amount > 0]
    status = {r.lot_id: (r.status, r.expires_at) for r in spent}
    changes: list[dict[str, Any]] = []
    for lot_id, amount in back:
        lot_status, expires_at = status[lot_id]
        if _lapsed(lot_status, expires_at, now):
            posting.move(
                amount,
                (Account.REDEEMED, None),
                (Account.EXPIRED, None),
                lot_id=lot_id,
                reason="points payment refunded after its lot expired",
            )
            continue
        posting.move(
            amount,
            (Account.REDEEMED, None),
            (Account.AVAILABLE, member),
            lot_id=lot_id,
            reason="points payment refunded",
        )
        changes.append(
            {"lot": lot_id, "remaining_delta": amount, "clawed_delta": 0, "new_status": lot_status}
        )
    await conn.execute(
        update(redemptions)
        .where(redemptions.c.id == redemption_id)
        .values(restored_points=redemptions.c.restored_points + points)
    )
    return points, changes
