"""Catalog listing with eligibility, one-step redemptions into coupons, coupon use."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from loyalty.auth.keys import Principal
from loyalty.clock import Clock
from loyalty.db.engine import Database
from loyalty.db.schema import balances, coupons, members, redemptions, reward_stock
from loyalty.errors import Conflict, NotFound
from loyalty.ledger.redemptions import HoldIn, RedemptionService, limit_reason, not_eligible
from loyalty.members.judging import member_input
from loyalty.program.service import ProgramService
from loyalty.rewards.coupons import issue_coupon
from loyalty.tiers.ladder import Ladder
from loyalty.tiers.service import effective_tier

_HOLD_FOR_ONE_STEP = 60


class RewardView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str | None
    kind: str
    cost: int
    value: str | None
    percent: str | None
    sku: str | None
    stock_left: int | None
    valid_until: datetime | None
    redeemable: bool | None = None
    reasons: list[str] = msgspec.field(default_factory=list)


class RedeemIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reward_id: Annotated[str, msgspec.Meta(max_length=100)]


class CouponOut(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    member_id: str
    reward_id: str
    status: str
    fulfilment: str | None
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_store: str | None
    used_order: str | None


class UseIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    store_id: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    order_id: Annotated[str, msgspec.Meta(max_length=100)] | None = None


class FulfilIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    fulfilment: Literal["ordered", "shipped", "delivered", "cancelled"]


class RewardService:
    def __init__(
        self, db: Database, clock: Clock, programs: ProgramService, holds: RedemptionService
    ) -> None:
        self._db = db
        self._clock = clock
        self._programs = programs
        self._holds = holds

    async def catalog(self, member_id: str | None = None) -> list[RewardView]:
        """The catalog; for a member, what they can redeem now and why not otherwise."""
        now = self._clock.now()
        _, program = await self._programs.active(now)
        ladder = Ladder(tuple(program.spec.tiers))
        async with self._db.read() as conn:
            used = dict(
                (await conn.execute(select(reward_stock.c.reward_id, reward_stock.c.used))).all()
            )
            member = None
            history: dict[str, list[datetime]] = defaultdict(list)
            if member_id is not None:
                member = (
                    await conn.execute(
                        select(members, balances.c.available)
                        .join(balances, balances.c.member_id == members.c.id)
                        .where(members.c.member_id == member_id)
                    )
                ).one_or_none()
                if member is None:
                    raise NotFound("member_not_found", f"no member with member_id {member_id!r}")
                for reward_id, at in await conn.execute(
                    select(redemptions.c.reward_id, redemptions.c.created_at).where(
                        redemptions.c.member_id == member.id,
                        redemptions.c.state.in_(("held", "committed")),
                        redemptions.c.reward_id.is_not(None),
                    )
                ):
                    history[reward_id].append(at)
        views = []
        tier = effective_tier(member, ladder, now) if member is not None else None
        for reward_id, reward in sorted(program.spec.rewards.items()):
            left = (
                None if reward.stock is None else max(reward.stock - int(used.get(reward_id, 0)), 0)
            )
            cost = reward.cost_by_tier.get(tier or "", reward.cost)
            reasons: list[str] = []
            if member is not None:
                reasons = not_eligible(reward, tier, set(member.tags), now)
                refusal = program.reward_refusal(reward_id, member_input(member, tier), now)
                if refusal:
                    reasons.append(refusal)
                if left == 0:
                    reasons.append("out of stock")
                limited = limit_reason(reward, history[reward_id], now)
                if limited:
                    reasons.append(limited)
                if member.available < cost:
                    reasons.append(f"needs {cost} points, member has {member.available}")
            views.append(
                RewardView(
                    id=reward_id,
                    name=reward.name,
                    kind=reward.kind,
                    cost=cost,
                    value=None if reward.value is None else str(reward.value),
                    percent=None if reward.percent is None else str(reward.percent),
                    sku=reward.sku,
                    stock_left=left,
                    valid_until=reward.valid_until,
                    redeemable=None if member is None else not reasons,
                    reasons=reasons,
                )
            )
        return views

    async def redeem(
        self, source: Principal, key: str, member_id: str, request: RedeemIn
    ) -> CouponOut:
        """One step in the app: hold the reward's points, commit, issue a coupon, with
        the commit and the coupon in one transaction. Retries with the key are safe."""
        hold, _ = await self._holds.reserve(
            source,
            key,
            HoldIn(
                member_id=member_id, reward_id=request.reward_id, hold_seconds=_HOLD_FOR_ONE_STEP
            ),
        )
        if hold.state == "held":
            _, program = await self._programs.active(self._clock.now())
            reward = program.spec.rewards[request.reward_id]

            async def issue(conn: AsyncConnection, row: Any) -> None:
                await issue_coupon(
                    conn,
                    member=row.member_id,
                    reward_id=row.reward_id,
                    reward=reward,
                    at=self._clock.now(),
                    redemption_id=row.id,
                )

            await self._holds.commit(hold.id, None, then=issue)
        async with self._db.read() as conn:
            row = (
                await conn.execute(_coupon_query().where(coupons.c.redemption_id == hold.id))
            ).one_or_none()
        if row is None:
            raise Conflict(
                "redemption_resolved", f"redemption {hold.id} was {hold.state}; no coupon"
            )
        return _coupon(row, self._clock.now())

    async def coupons_of(self, member_id: str) -> list[CouponOut]:
        now = self._clock.now()
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    _coupon_query()
                    .where(members.c.member_id == member_id)
                    .order_by(coupons.c.id.desc())
                )
            ).all()
        return [_coupon(row, now) for row in rows]

    async def use(self, code: str, use: UseIn) -> CouponOut:
        """Mark a coupon used, exactly once; a second use names when and where."""
        now = self._clock.now()
        async with self._db.write() as conn:
            used = await conn.scalar(
                update(coupons)
                .where(
                    coupons.c.code == code, coupons.c.status == "issued", coupons.c.expires_at > now
                )
                .values(
                    status="used", used_at=now, used_store=use.store_id, used_order=use.order_id
                )
                .returning(coupons.c.id)
            )
            row = (await conn.execute(_coupon_query().where(coupons.c.code == code))).one_or_none()
        if row is None:
            raise NotFound("coupon_not_found", "no coupon with that code")
        coupon = _coupon(row, now)
        if used is None:
            if coupon.status == "used":
                where = f" in store {coupon.used_store}" if coupon.used_store else ""
                when = coupon.used_at.isoformat() if coupon.used_at else "an unknown time"
                raise Conflict(
                    "coupon_used",
                    f"coupon already used at {when}{where}",
                    extra={
                        "used_at": coupon.used_at.isoformat() if coupon.used_at else None,
                        "used_store": coupon.used_store,
                    },
                )
            raise Conflict(f"coupon_{coupon.status}", f"coupon is {coupon.status}")
        return coupon

    async def fulfil(self, code: str, change: FulfilIn) -> CouponOut:
        """Track a physical gift: ordered, shipped, delivered or cancelled."""
        async with self._db.write() as conn:
            done = await conn.scalar(
                update(coupons)
                .where(coupons.c.code == code, coupons.c.fulfilment.is_not(None))
                .values(fulfilment=change.fulfilment)
                .returning(coupons.c.id)
            )
            row = (await conn.execute(_coupon_query().where(coupons.c.code == code))).one_or_none()
        if row is None:
            raise NotFound("coupon_not_found", "no coupon with that code")
        if done is None:
            raise Conflict("not_a_gift", "only coupons for physical gifts have a fulfilment status")
        return _coupon(row, self._clock.now())


def _coupon_query() -> Any:
    return select(coupons, members.c.member_id.label("member")).join(
        members, members.c.id == coupons.c.member_id
    )


def _coupon(row: Any, now: datetime) -> CouponOut:
    status = "expired" if row.status == "issued" and row.expires_at <= now else row.status
    return CouponOut(
        code=row.code,
        member_id=row.member,
        reward_id=row.reward_id,
        status=status,
        fulfilment=row.fulfilment,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
        used_store=row.used_store,
        used_order=row.used_order,
    )
