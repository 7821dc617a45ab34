"""Account names. Member accounts hold a member's points; house accounts are where
points come from and go to, so that every transaction sums to zero."""

from __future__ import annotations

from enum import StrEnum


class Account(StrEnum):
    AVAILABLE = "available"
    PENDING = "pending"
    HELD = "held"
    ISSUED = "issued"
    CLAWED_BACK = "clawed_back"
    EXPIRED = "expired"
    ADJUSTED = "adjusted"
    REDEEMED = "redeemed"


MEMBER_ACCOUNTS = frozenset({Account.AVAILABLE, Account.PENDING, Account.HELD})
