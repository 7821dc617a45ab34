"""/v1/rewards (the catalog), app redemptions into coupons, and coupon use at the till."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from loyalty.api.ledger import IdempotencyKey
from loyalty.api.security import allow
from loyalty.auth.keys import Principal, Role
from loyalty.rewards.service import (
    CouponOut,
    FulfilIn,
    RedeemIn,
    RewardService,
    RewardView,
    UseIn,
)


class RewardController(Controller):
    path = "/rewards"
    tags = ["rewards"]

    @get(opt=allow(Role.POS, Role.APP, Role.MARKETER))
    async def catalog(
        self, rewards: NamedDependency[RewardService], member_id: FromQuery[str | None] = None
    ) -> list[RewardView]:
        """The catalog; with `member_id`, whether that member can redeem each reward
        now and, if not, why (points, tier, limit, stock, dates)."""
        return await rewards.catalog(member_id)


class CouponController(Controller):
    tags = ["rewards"]

    @post("/members/{member_id:str}/redemptions", opt=allow(Role.APP))
    async def redeem(
        self,
        request: Request[Principal, Any, Any],
        member_id: FromPath[str],
        data: JSONBody[RedeemIn],
        rewards: NamedDependency[RewardService],
        idempotency_key: IdempotencyKey,
    ) -> CouponOut:
        """Redeem a reward in one step: points are spent and a coupon is issued."""
        return await rewards.redeem(request.user, idempotency_key, member_id, data)

    @get("/members/{member_id:str}/coupons", opt=allow(Role.APP, Role.MARKETER))
    async def coupons(
        self, member_id: FromPath[str], rewards: NamedDependency[RewardService]
    ) -> list[CouponOut]:
        """The member's coupons, newest first: issued, used, expired or cancelled."""
        return await rewards.coupons_of(member_id)

    @post("/coupons/{code:str}/use", status_code=200, opt=allow(Role.POS))
    async def use(
        self, code: FromPath[str], data: JSONBody[UseIn], rewards: NamedDependency[RewardService]
    ) -> CouponOut:
        """Use a coupon, exactly once; a second use is 409 naming when and where."""
        return await rewards.use(code, data)

    @put("/coupons/{code:str}/fulfilment", opt=allow(Role.MARKETER))
    async def fulfil(
        self, code: FromPath[str], data: JSONBody[FulfilIn], rewards: NamedDependency[RewardService]
    ) -> CouponOut:
        """A physical gift's fulfilment: ordered, shipped, delivered, cancelled."""
        return await rewards.fulfil(code, data)
