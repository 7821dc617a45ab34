"""Pure ledger arithmetic: lots, expiry dates, clawback shares and balanced postings."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from loyalty.ledger.accounts import MEMBER_ACCOUNTS, Account
from loyalty.rules.schema import ExpirySpec

# Lots that never expire are spent last; among equals the oldest lot goes first.
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class LotView:
    id: int
    remaining: int
    expires_at: datetime | None


def allocate(lots: Sequence[LotView], points: int) -> tuple[list[tuple[int, int]], int]:
    """Take `points` from `lots`, soonest-expiring first; returns (lot id, taken) pairs
    and the part that the lots could not cover."""
    taken: list[tuple[int, int]] = []
    left = points
    for lot in sorted(lots, key=lambda lot: (lot.expires_at or _NEVER, lot.id)):
        if left == 0:
            break
        take = min(lot.remaining, left)
        if take > 0:
            taken.append((lot.id, take))
            left -= take
    return taken, left


def expiry_for(policy: ExpirySpec, earned_at: datetime, zone: ZoneInfo) -> datetime | None:
    """When points earned at `earned_at` expire under `policy`, at local midnight."""
    if policy.policy == "never":
        return None
    local = earned_at.astimezone(zone).date()
    if policy.policy == "rolling_months":
        months = local.month - 1 + (policy.months or 0)
        year, month = local.year + months // 12, months % 12 + 1
        day = min(local.day, calendar.monthrange(year, month)[1])
        end = local.replace(year=year, month=month, day=day)
    elif policy.policy == "end_of_quarter":
        next_quarter = (local.month - 1) // 3 * 3 + 4
        year, month = (local.year + 1, 1) if next_quarter > 12 else (local.year, next_quarter)
        end = local.replace(year=year, month=month, day=1)
    else:
        end = local.replace(year=local.year + 1, month=1, day=1)
    return datetime.combine(end, time(0), zone).astimezone(UTC)


def clawback_share(points: int, already: int, refunded: Decimal, total: Decimal) -> int:
    """Points to claw back now from `points` earned, when the cumulative refunded amount
    is `refunded` of `total` and `already` were clawed back before. Counting from the
    cumulative target means partial refunds never drift from a whole refund."""
    if total <= 0 or refunded >= total:
        return points - already
    target = int((Decimal(points) * refunded / total).to_integral_value(ROUND_FLOOR))
    return max(target - already, 0)


@dataclass
class Posting:
    """The entries of one ledger transaction, and what they do to member balances.

    Every movement is written as a pair (from one account to another), so the
    entries of a posting always sum to zero.
    """

    at: datetime
    entries: list[dict[str, Any]] = field(default_factory=list)
    deltas: dict[int, dict[Account, int]] = field(default_factory=dict)

    def move(
        self,
        points: int,
        source: tuple[Account, int | None],
        target: tuple[Account, int | None],
        *,
        lot_id: object = None,
        rule_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Move `points` from `source` to `target`. `lot_id` is an existing lot's id,
        or a lot created in the same transaction, resolved when it is written."""
        if points == 0:
            return
        for (account, member), amount in ((source, -points), (target, points)):
            self.entries.append(
                {
                    "member_id": member if account in MEMBER_ACCOUNTS else None,
                    "account": account.value,
                    "amount": amount,
                    "lot_id": lot_id,
                    "rule_id": rule_id,
                    "reason": reason,
                    "at": self.at,
                }
            )
            if account in MEMBER_ACCOUNTS and member is not None:
                per_member = self.deltas.setdefault(member, {})
                per_member[account] = per_member.get(account, 0) + amount

    def delta(self, member: int, account: Account) -> int:
        return self.deltas.get(member, {}).get(account, 0)
