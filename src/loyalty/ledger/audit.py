"""`loyalty ledger verify`: recompute everything the ledger stores from its entries."""

from __future__ import annotations

import msgspec
from sqlalchemy import ColumnElement, case, func, or_, select

from loyalty.db.engine import Database
from loyalty.db.schema import balances, ledger_entries, lots

from .accounts import Account


class Drift(msgspec.Struct, frozen=True):
    member: int
    what: str
    stored: int
    computed: int


class AuditReport(msgspec.Struct, frozen=True, kw_only=True):
    transactions: int
    members: int
    unbalanced_transactions: list[int]
    drift: list[Drift]

    @property
    def ok(self) -> bool:
        return not self.unbalanced_transactions and not self.drift


def _sum_for(account: Account) -> ColumnElement[int]:
    return func.coalesce(
        func.sum(
            case((ledger_entries.c.account == account.value, ledger_entries.c.amount), else_=0)
        ),
        0,
    )


async def verify(db: Database) -> AuditReport:
    """Every transaction sums to zero; every stored balance equals the sum of its
    entries; the lots left to spend add up to the balances they back, and each lot
    holds between nothing and what it was created with."""
    async with db.read() as conn:
        unbalanced = list(
            (
                await conn.execute(
                    select(ledger_entries.c.txn_id)
                    .group_by(ledger_entries.c.txn_id)
                    .having(func.sum(ledger_entries.c.amount) != 0)
                    .order_by(ledger_entries.c.txn_id)
                )
            ).scalars()
        )
        transactions = await conn.scalar(select(func.count(func.distinct(ledger_entries.c.txn_id))))
        sums = (
            select(
                ledger_entries.c.member_id.label("member_id"),
                *(
                    _sum_for(a).label(a.value)
                    for a in (Account.AVAILABLE, Account.PENDING, Account.HELD)
                ),
            )
            .where(ledger_entries.c.member_id.is_not(None))
            .group_by(ledger_entries.c.member_id)
            .subquery()
        )
        lot_sums = (
            select(
                lots.c.member_id.label("member_id"),
                func.sum(case((lots.c.status == "available", lots.c.remaining), else_=0)).label(
                    "available"
                ),
                func.sum(case((lots.c.status == "pending", lots.c.remaining), else_=0)).label(
                    "pending"
                ),
            )
            .group_by(lots.c.member_id)
            .subquery()
        )
        rows = (
            await conn.execute(
                select(
                    balances.c.member_id,
                    balances.c.available,
                    balances.c.pending,
                    balances.c.held,
                    func.coalesce(sums.c.available, 0).label("e_available"),
                    func.coalesce(sums.c.pending, 0).label("e_pending"),
                    func.coalesce(sums.c.held, 0).label("e_held"),
                    func.coalesce(lot_sums.c.available, 0).label("l_available"),
                    func.coalesce(lot_sums.c.pending, 0).label("l_pending"),
                )
                .outerjoin(sums, sums.c.member_id == balances.c.member_id)
                .outerjoin(lot_sums, lot_sums.c.member_id == balances.c.member_id)
            )
        ).all()
        # A lot never holds more than it was created with, nor less than nothing.
        misfilled = (
            await conn.execute(
                select(lots.c.member_id, lots.c.id, lots.c.remaining, lots.c.points).where(
                    or_(lots.c.remaining > lots.c.points, lots.c.remaining < 0)
                )
            )
        ).all()
    drift: list[Drift] = [
        Drift(lot.member_id, f"lot {lot.id} remaining", int(lot.remaining), int(lot.points))
        for lot in misfilled
    ]
    for row in rows:
        checks = (
            ("available", row.available, row.e_available),
            ("pending", row.pending, row.e_pending),
            ("held", row.held, row.e_held),
            # Lots back the balance; a negative balance has nothing left in its lots.
            ("available lots", max(row.available, 0), row.l_available),
            ("pending lots", row.pending, row.l_pending),
        )
        drift.extend(
            Drift(row.member_id, what, int(stored), int(computed))
            for what, stored, computed in checks
            if int(stored) != int(computed)
        )
    return AuditReport(
        transactions=int(transactions or 0),
        members=len(rows),
        unbalanced_transactions=unbalanced,
        drift=drift,
    )
