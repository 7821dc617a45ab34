"""Batch ledger work for the scheduler: vesting and expiry. Idempotent, set-based.

Each batch locks the members' balance rows first, in member order, then re-reads the
due lots: the same lock order as event ingestion (balance, then lots), so a job and a
till never deadlock, and a lot that an event changed meanwhile is judged afresh.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from loyalty.clock import Clock
from loyalty.db.engine import Database
from loyalty.db.schema import lots
from loyalty.ledger import book
from loyalty.ledger.accounts import Account
from loyalty.ledger.posting import Posting

BATCH = 1000


class LedgerJobs:
    def __init__(self, db: Database, clock: Clock, batch: int = BATCH) -> None:
        self._db = db
        self._clock = clock
        self._batch = batch

    async def vest_due(self, now: datetime | None = None) -> int:
        """Pending lots whose vest date has come become available. Returns points vested."""
        at = now or self._clock.now()
        due = lots.c.status == "pending", lots.c.vests_at <= at
        return await self._drain(at, select(lots.c.id).where(*due), self._vest)

    async def expire_due(self, now: datetime | None = None) -> int:
        """Available points past their lot's expiry go to `expired`. Returns points expired."""
        at = now or self._clock.now()
        due = lots.c.status == "available", lots.c.expires_at <= at
        return await self._drain(at, select(lots.c.id).where(*due), self._expire)

    async def _drain(self, at: datetime, due: Select[Any], step: Any) -> int:
        total = 0
        while True:
            async with self._db.write() as conn:
                ids = list(
                    (await conn.execute(due.order_by(lots.c.id).limit(self._batch))).scalars()
                )
                if not ids:
                    return total
                total += await step(conn, at, ids)

    async def _locked_lots(
        self, conn: AsyncConnection, ids: list[int], status: str
    ) -> tuple[list[Any], dict[int, int]]:
        """The lots, locked after their members' balance rows; and each member's
        available points."""
        available = await book.lock_balances(
            conn, select(lots.c.member_id).where(lots.c.id.in_(ids)).distinct()
        )
        rows = await conn.execute(
            select(lots.c.id, lots.c.member_id, lots.c.remaining, lots.c.rule_id)
            .where(lots.c.id.in_(ids), lots.c.status == status)
            .with_for_update()
        )
        return list(rows), available

    async def _vest(self, conn: AsyncConnection, at: datetime, ids: list[int]) -> int:
        rows, available = await self._locked_lots(conn, ids, "pending")
        debts = {member: max(-points, 0) for member, points in available.items()}
        posting, changes = Posting(at=at), []
        for lot in rows:
            posting.move(
                lot.remaining,
                (Account.PENDING, lot.member_id),
                (Account.AVAILABLE, lot.member_id),
                lot_id=lot.id,
                rule_id=lot.rule_id,
                reason="pending points vested",
            )
            # A negative balance (a refund of spent points) is repaid first.
            repay = min(debts.get(lot.member_id, 0), lot.remaining)
            debts[lot.member_id] = debts.get(lot.member_id, 0) - repay
            changes.append(
                {
                    "lot": lot.id,
                    "remaining_delta": -repay,
                    "clawed_delta": 0,
                    "new_status": "available",
                }
            )
        await self._write(conn, posting, changes, "vest", "pending points vested")
        return sum(lot.remaining for lot in rows)

    async def _expire(self, conn: AsyncConnection, at: datetime, ids: list[int]) -> int:
        rows, _ = await self._locked_lots(conn, ids, "available")
        posting, changes = Posting(at=at), []
        for lot in rows:
            posting.move(
                lot.remaining,
                (Account.AVAILABLE, lot.member_id),
                (Account.EXPIRED, None),
                lot_id=lot.id,
                rule_id=lot.rule_id,
                reason="points expired",
            )
            changes.append(
                {
                    "lot": lot.id,
                    "remaining_delta": -lot.remaining,
                    "clawed_delta": 0,
                    "new_status": "expired",
                }
            )
        await self._write(conn, posting, changes, "expire", "points expired")
        return sum(lot.remaining for lot in rows)

    @staticmethod
    async def _write(
        conn: AsyncConnection,
        posting: Posting,
        changes: list[dict[str, Any]],
        kind: str,
        reason: str,
    ) -> None:
        if changes:
            await book.write(
                conn,
                posting,
                kind=kind,
                actor=f"job:{kind}",
                reason=reason,
                member_id=None,
                lot_changes=changes,
            )
