"""Finance reports: the points liability, from the stored balances and lots.

Set-based: a handful of aggregate queries whatever the number of members, read in one
connection so that the figures come from the same moment on PostgreSQL's snapshot.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec
from sqlalchemy import case, func, select

from loyalty.clock import Clock
from loyalty.db.engine import Database, utc_month
from loyalty.db.schema import balances, lots
from loyalty.errors import NotFound
from loyalty.program.service import ProgramService

NEVER = "never"


class PointsValue(msgspec.Struct, frozen=True, kw_only=True):
    """Points and what they are worth; `value` is a decimal string (exact, no float),
    null when no programme is active to give a point its value."""

    points: int
    value: str | None


class ExpiryBucket(msgspec.Struct, frozen=True, kw_only=True):
    """Available points that expire in a calendar month (UTC, 'YYYY-MM') or never."""

    month: str
    points: int
    value: str | None


class LiabilityReport(msgspec.Struct, frozen=True, kw_only=True):
    as_of: datetime
    program_version: int | None
    currency: str | None
    point_value: str | None
    # The sum of positive available balances: what members could spend now.
    available: PointsValue
    # Owed by members whose balance went below zero (negative-balance refunds). Kept
    # apart so that it does not hide part of the liability by netting.
    debt: PointsValue
    pending: PointsValue
    held: PointsValue
    # available + pending + held: everything the programme may still have to honour.
    total: PointsValue
    members_with_balance: int
    expiry_profile: list[ExpiryBucket]


class ReportService:
    def __init__(self, db: Database, clock: Clock, programs: ProgramService) -> None:
        self._db = db
        self._clock = clock
        self._programs = programs

    async def liability(self) -> LiabilityReport:
        now = self._clock.now()
        version: int | None
        try:
            active, program = await self._programs.active(now)
            version, currency = active.version, program.info.currency
            point_value: Decimal | None = program.info.point_value
        except NotFound:
            # Points can exist with no programme in force (adjustments made before a
            # launch): still report them, without a money value.
            version, currency, point_value = None, None, None

        def valued(points: int) -> PointsValue:
            return PointsValue(points=points, value=_money(points, point_value))

        totals = select(
            func.coalesce(
                func.sum(case((balances.c.available > 0, balances.c.available), else_=0)), 0
            ).label("available"),
            func.coalesce(
                func.sum(case((balances.c.available < 0, -balances.c.available), else_=0)), 0
            ).label("debt"),
            func.coalesce(func.sum(balances.c.pending), 0).label("pending"),
            func.coalesce(func.sum(balances.c.held), 0).label("held"),
            func.count()
            .filter(
                (balances.c.available != 0) | (balances.c.pending != 0) | (balances.c.held != 0)
            )
            .label("members"),
        )
        # Grouped over a subquery: PostgreSQL would not match the month expression in
        # GROUP BY to the one in SELECT, their bound parameters being separate.
        due = (
            select(
                utc_month(self._db, lots.c.expires_at).label("month"),
                lots.c.remaining.label("points"),
            )
            .where(lots.c.status == "available", lots.c.remaining > 0)
            .subquery()
        )
        profile = select(due.c.month, func.sum(due.c.points)).group_by(due.c.month)
        async with self._db.read() as conn:
            # Both queries in one transaction, so that they describe the same moment:
            # a snapshot for the whole transaction on PostgreSQL (REPEATABLE READ); on
            # SQLite, a read transaction under WAL already sees one snapshot.
            if not self._db.is_sqlite:
                await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                row = (await conn.execute(totals)).one()
                buckets = (await conn.execute(profile)).all()
        available, debt = int(row.available), int(row.debt)
        pending, held = int(row.pending), int(row.held)
        # Months in order, then the lots with no expiry date.
        expiry = [
            ExpiryBucket(month=m or NEVER, points=int(p), value=_money(int(p), point_value))
            for m, p in sorted(buckets, key=lambda bucket: (bucket[0] is None, bucket[0] or ""))
        ]
        return LiabilityReport(
            as_of=now,
            program_version=version,
            currency=currency,
            point_value=None if point_value is None else format(point_value, "f"),
            available=valued(available),
            debt=valued(debt),
            pending=valued(pending),
            held=valued(held),
            total=valued(available + pending + held),
            members_with_balance=int(row.members),
            expiry_profile=expiry,
        )


def _money(points: int, point_value: Decimal | None) -> str | None:
    # Exact: an int times a Decimal is a Decimal; 'f' keeps it out of exponent form.
    return None if point_value is None else format(Decimal(points) * point_value, "f")
