"""Referrals: pending at enrolment -> rewarded on the referee's qualifying purchase,
or rejected with a reason (self-referral, a first purchase that does not qualify,
the referrer's limit, the qualifying purchase refunded before its points vested).

The hooks run inside the enrolment's or the event's own database transaction and
add to that event's ledger posting, so a referral reward is never half-written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from loyalty.db.engine import Database
from loyalty.db.schema import coupons, ledger_transactions, lots, members, orders, referrals
from loyalty.errors import FieldError, InvalidInput, NotFound
from loyalty.ledger import book
from loyalty.ledger.accounts import Account
from loyalty.ledger.posting import Posting
from loyalty.members.judging import member_input
from loyalty.referrals.model import ReferralOut, ReferralsView
from loyalty.rewards.coupons import issue_coupon
from loyalty.rules import EventInput, Program
from loyalty.tiers.ladder import Ladder
from loyalty.tiers.service import effective_tier

REFEREE_RULE = "referral:referee"
REFERRER_RULE = "referral:referrer"


@dataclass
class Credits:
    """What a referral adds to the event's posting."""

    lots: list[book.NewLot]
    lifetime: dict[int, int]


async def referrer_for(conn: AsyncConnection, code: str) -> Any:
    row = (
        await conn.execute(
            select(members.c.id, members.c.email, members.c.phone, members.c.status).where(
                members.c.referral_code == code.strip().upper()
            )
        )
    ).one_or_none()
    if row is None:
        raise InvalidInput.from_fields(
            [
                FieldError(
                    "referred_by", "unknown_referral_code", f"no member has referral code {code!r}"
                )
            ]
        )
    return row


async def record_referral(
    conn: AsyncConnection,
    referrer: Any,
    referee: int,
    email: str | None,
    phone: str | None,
    at: datetime,
) -> None:
    """A new member joined with a code: a pending referral, or a rejected one."""
    reason = None
    if (email and email == referrer.email) or (phone and phone == referrer.phone):
        reason = "self-referral: same email or phone as the referrer"
    elif referrer.status != "active":
        reason = f"referrer is {referrer.status}"
    await conn.execute(
        insert(referrals).values(
            referrer_id=referrer.id,
            referee_id=referee,
            state="rejected" if reason else "pending",
            reason=reason,
            created_at=at,
        )
    )


async def on_purchase(
    conn: AsyncConnection,
    program: Program,
    member: book.LockedMember,
    order_ref: int,
    amount: Decimal,
    at: datetime,
    posting: Posting,
    vests_at: datetime | None,
) -> Credits | None:
    """Judge the referee's first purchase; reward both sides if it qualifies. The
    rewards vest with the purchase (`vests_at`): a refund before then takes them back."""
    policy = program.spec.referrals
    if policy is None:
        return None
    referral = (
        await conn.execute(
            select(referrals.c.id, referrals.c.referrer_id).where(
                referrals.c.referee_id == member.id, referrals.c.state == "pending"
            )
        )
    ).one_or_none()
    if referral is None:
        return None
    earlier = await conn.scalar(
        select(func.count())
        .select_from(orders)
        .where(orders.c.member_id == member.id, orders.c.id != order_ref)
    )
    if earlier:
        return await _reject(
            conn, referral.id, "the first purchase came before the programme's referral rules"
        )
    if amount < policy.qualify.min_spend:
        return await _reject(
            conn, referral.id, f"first purchase {amount} is below {policy.qualify.min_spend}"
        )
    if at - member.joined_at > timedelta(days=policy.qualify.within_days):
        return await _reject(
            conn,
            referral.id,
            f"first purchase more than {policy.qualify.within_days} days after joining",
        )
    if policy.limit is not None:
        # The referrer's row first (this transaction credits it anyway): two of their
        # referees buying at once would otherwise both count below the limit.
        await book.lock_member_by_id(conn, referral.referrer_id)
        since = _period_start(policy.limit.period, at, ZoneInfo(program.info.timezone))
        rewarded = await conn.scalar(
            select(func.count())
            .select_from(referrals)
            .where(
                referrals.c.referrer_id == referral.referrer_id,
                referrals.c.state == "rewarded",
                *([referrals.c.rewarded_at >= since] if since else []),
            )
        )
        if (rewarded or 0) >= policy.limit.max:
            return await _reject(
                conn,
                referral.id,
                f"referrer reached {policy.limit.max} rewarded referrals per {policy.limit.period}",
            )
    credits = Credits(lots=[], lifetime={})
    _credit(
        credits,
        posting,
        member.id,
        policy.rewards.referee,
        REFEREE_RULE,
        "Welcome: referred by a member",
        vests_at,
    )
    _credit(
        credits,
        posting,
        referral.referrer_id,
        policy.rewards.referrer,
        REFERRER_RULE,
        "You referred a new member",
        vests_at,
    )
    referrer = (
        await conn.execute(select(members).where(members.c.id == referral.referrer_id))
    ).one()
    event = EventInput(type="referral", occurred_at=at, attributes={"referee": member.member_id})
    who = member_input(referrer, effective_tier(referrer, Ladder(tuple(program.spec.tiers)), at))
    for award in program.evaluate(event, who).awards:
        _credit(credits, posting, referrer.id, award.points, award.rule_id, award.reason, vests_at)
    rewards = policy.rewards
    for side, reward_id in (
        (member.id, rewards.referee_reward),
        (referral.referrer_id, rewards.referrer_reward),
    ):
        if reward_id is not None:
            await issue_coupon(
                conn,
                member=side,
                reward_id=reward_id,
                reward=program.spec.rewards[reward_id],
                at=at,
                referral_id=referral.id,
            )
    await conn.execute(
        update(referrals)
        .where(referrals.c.id == referral.id)
        .values(state="rewarded", order_ref=order_ref, qualified_at=at, rewarded_at=at)
    )
    return credits


def _credit(
    credits: Credits,
    posting: Posting,
    member: int,
    points: int,
    rule: str,
    reason: str,
    vests_at: datetime | None,
) -> None:
    if points <= 0:
        return
    lot = book.NewLot(
        member_id=member,
        points=points,
        status="pending" if vests_at else "available",
        rule_id=rule,
        vests_at=vests_at,
        expires_at=None,
    )
    credits.lots.append(lot)
    credits.lifetime[member] = credits.lifetime.get(member, 0) + points
    account = Account.PENDING if vests_at else Account.AVAILABLE
    posting.move(
        points, (Account.ISSUED, None), (account, member), lot_id=lot, rule_id=rule, reason=reason
    )


async def on_refund(
    conn: AsyncConnection, order_ref: int, event_id: int, posting: Posting
) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """A refund of a qualifying purchase before its points vested takes back both
    sides' referral points (still pending) and rejects the referral."""
    referral = await conn.scalar(
        select(referrals.c.id).where(
            referrals.c.order_ref == order_ref, referrals.c.state == "rewarded"
        )
    )
    if referral is None:
        return [], {}
    earn_txn = select(ledger_transactions.c.id).where(ledger_transactions.c.event_id == event_id)
    pending = (
        await conn.execute(
            select(lots.c.id, lots.c.member_id, lots.c.remaining).where(
                lots.c.txn_id.in_(earn_txn),
                lots.c.order_ref.is_(None),
                lots.c.status == "pending",
                lots.c.remaining > 0,
            )
        )
    ).all()
    # Before vesting: the referral's own points are still pending or, for a reward
    # given only as a coupon, the qualifying purchase's points are.
    purchase_pending = await conn.scalar(
        select(func.count())
        .select_from(lots)
        .where(lots.c.order_ref == order_ref, lots.c.status == "pending")
    )
    if not pending and not purchase_pending:
        return [], {}
    changes: list[dict[str, Any]] = []
    lifetime: dict[int, int] = {}
    for lot in pending:
        posting.move(
            lot.remaining,
            (Account.PENDING, lot.member_id),
            (Account.CLAWED_BACK, None),
            lot_id=lot.id,
            reason="referral: qualifying purchase refunded",
        )
        changes.append(
            {
                "lot": lot.id,
                "remaining_delta": -lot.remaining,
                "clawed_delta": lot.remaining,
                "new_status": "pending",
            }
        )
        lifetime[lot.member_id] = lifetime.get(lot.member_id, 0) - lot.remaining
    await conn.execute(
        update(referrals)
        .where(referrals.c.id == referral)
        .values(state="rejected", reason="qualifying purchase refunded before its points vested")
    )
    # Coupons given for the referral go too, unless already used.
    await conn.execute(
        update(coupons)
        .where(coupons.c.referral_id == referral, coupons.c.status == "issued")
        .values(status="cancelled")
    )
    return changes, lifetime


async def _reject(conn: AsyncConnection, referral: int, reason: str) -> Credits | None:
    """Reject a referral, keeping why; there is nothing to credit."""
    await conn.execute(
        update(referrals).where(referrals.c.id == referral).values(state="rejected", reason=reason)
    )
    return None


def _period_start(period: str, at: datetime, zone: ZoneInfo) -> datetime | None:
    local = at.astimezone(zone)
    if period == "lifetime":
        return None
    first = local.replace(day=1) if period == "month" else local.replace(month=1, day=1)
    return datetime.combine(first.date(), time(0), zone)


class ReferralService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def view(self, member_id: str) -> ReferralsView:
        referee = aliased(members)
        referrer = aliased(members)
        async with self._db.read() as conn:
            me = (
                await conn.execute(
                    select(
                        members.c.id, members.c.referral_code, referrer.c.referral_code.label("by")
                    )
                    .outerjoin(referrer, referrer.c.id == members.c.referred_by)
                    .where(members.c.member_id == member_id)
                )
            ).one_or_none()
            if me is None:
                raise NotFound("member_not_found", f"no member with member_id {member_id!r}")
            rows = await conn.execute(
                select(referrals, referee.c.member_id.label("referee"))
                .join(referee, referee.c.id == referrals.c.referee_id)
                .where(referrals.c.referrer_id == me.id)
                .order_by(referrals.c.id)
            )
            items = [
                ReferralOut(
                    referee=r.referee,
                    state=r.state,
                    reason=r.reason,
                    created_at=r.created_at,
                    qualified_at=r.qualified_at,
                    rewarded_at=r.rewarded_at,
                )
                for r in rows
            ]
        return ReferralsView(
            member_id=member_id, referral_code=me.referral_code, referred_by=me.by, referrals=items
        )
