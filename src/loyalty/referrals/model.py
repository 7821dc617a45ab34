"""Referral values at the service boundary."""

from __future__ import annotations

from datetime import datetime

import msgspec


class ReferralOut(msgspec.Struct, frozen=True, kw_only=True):
    referee: str
    state: str
    reason: str | None
    created_at: datetime
    qualified_at: datetime | None
    rewarded_at: datetime | None


class ReferralsView(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    referral_code: str
    referred_by: str | None
    referrals: list[ReferralOut]
