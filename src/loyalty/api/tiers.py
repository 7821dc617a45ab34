"""A member's tier and referrals, manual tier assignment, and the notifications feed."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from loyalty.api.security import allow
from loyalty.auth.keys import Principal, Role
from loyalty.referrals.model import ReferralsView
from loyalty.referrals.service import ReferralService
from loyalty.tiers.model import NotificationPage, TierAssignment, TierStatus
from loyalty.tiers.service import TierService


class TierController(Controller):
    path = "/members/{member_id:str}/tier"
    tags = ["tiers"]

    @get(opt=allow(Role.POS, Role.APP, Role.MARKETER))
    async def status(
        self, member_id: FromPath[str], tiers: NamedDependency[TierService]
    ) -> TierStatus:
        """Current tier, since and until when, figures in the window, what the next
        tier still needs (by when), the projected tier at review, and history."""
        return await tiers.status(member_id)

    @post(opt=allow(Role.MARKETER))
    async def assign(
        self,
        request: Request[Principal, Any, Any],
        member_id: FromPath[str],
        data: JSONBody[TierAssignment],
        tiers: NamedDependency[TierService],
    ) -> TierStatus:
        """Give a member a tier until a date (status match, service recovery); then
        they fall back to what their figures support."""
        return await tiers.assign(member_id, data, request.user.label)


class NotificationController(Controller):
    path = "/notifications"
    tags = ["notifications"]

    @get(opt=allow(Role.MARKETER))
    async def feed(
        self,
        tiers: NamedDependency[TierService],
        limit: FromQuery[int] = 50,
        after: FromQuery[str | None] = None,
    ) -> NotificationPage:
        """Notices for the brand's messaging system (tier_changed, ...), oldest
        first; keep the last `next_cursor` and poll with `after`."""
        return await tiers.notifications(limit, after)


class ReferralController(Controller):
    path = "/members/{member_id:str}/referrals"
    tags = ["referrals"]

    @get(opt=allow(Role.APP, Role.MARKETER))
    async def view(
        self, member_id: FromPath[str], referrals: NamedDependency[ReferralService]
    ) -> ReferralsView:
        """The member's referral code, who referred them, and each referral's state."""
        return await referrals.view(member_id)
