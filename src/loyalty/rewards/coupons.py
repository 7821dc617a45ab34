"""Issuing a coupon: for a redemption (points spent) or as a reward (a referral)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from loyalty.db.schema import coupons
from loyalty.members.validation import REFERRAL_ALPHABET
from loyalty.rules.schema import RewardSpec

COUPON_CODE_LENGTH = 16  # ~78 bits from a look-alike-free alphabet: not guessable


async def issue_coupon(
    conn: AsyncConnection,
    *,
    member: int,
    reward_id: str,
    reward: RewardSpec,
    at: datetime,
    redemption_id: int | None = None,
    referral_id: int | None = None,
) -> None:
    await conn.execute(
        insert(coupons).values(
            code="".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(COUPON_CODE_LENGTH)),
            member_id=member,
            reward_id=reward_id,
            redemption_id=redemption_id,
            referral_id=referral_id,
            status="issued",
            # A physical gift is to be sent out: its fulfilment starts as ordered.
            fulfilment="ordered" if reward.kind == "gift" else None,
            issued_at=at,
            expires_at=at + timedelta(days=reward.coupon_days),
        )
    )
