"""points_expiring notices: one per lot, some days before the lot expires."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from loyalty.db.engine import Database, dialect_insert
from loyalty.db.schema import expiry_warnings, lots, members, notifications
from loyalty.program.service import ProgramService
from loyalty.scheduler.quiet import deliver_after

BATCH = 1000


class ExpiryNotices:
    def __init__(self, db: Database, programs: ProgramService, batch: int = BATCH) -> None:
        self._db = db
        self._programs = programs
        self._batch = batch

    async def run(self, now: datetime, *, dry_run: bool = False) -> dict[str, int]:
        _, program = await self._programs.active(now)
        days = program.spec.scheduled.expiry_notice_days
        if days is None:
            return {}
        due = (
            select(
                lots.c.id,
                lots.c.member_id,
                lots.c.remaining,
                lots.c.expires_at,
                members.c.locale,
                members.c.marketing_consent,
                members.c.timezone,
                members.c.quiet_hours,
            )
            .join(members, members.c.id == lots.c.member_id)
            .where(
                lots.c.status == "available",
                lots.c.remaining > 0,
                lots.c.expires_at > now,
                lots.c.expires_at <= now + timedelta(days=days),
                ~exists().where(expiry_warnings.c.lot_id == lots.c.id),
            )
            .order_by(lots.c.id)
        )
        if dry_run:
            async with self._db.read() as conn:
                rows = (await conn.execute(due)).all()
            return {"lots": len(rows), "points": sum(r.remaining for r in rows)}
        totals = {"lots": 0, "points": 0, "notices": 0}
        while True:
            async with self._db.write() as conn:
                rows = list((await conn.execute(due.limit(self._batch))).all())
                if not rows:
                    return totals
                new = await self._warn(conn, rows, now)
            totals["lots"] += len(new)
            totals["points"] += sum(r.remaining for r in new)
            totals["notices"] += sum(bool(r.marketing_consent) for r in new)

    async def _warn(self, conn: AsyncConnection, rows: list[Any], now: datetime) -> list[Any]:
        """Mark the lots warned (the primary key makes it once per lot, on any instance)
        and write a notice for members who accepted messages."""
        marked = await conn.execute(
            dialect_insert(self._db, expiry_warnings)
            .on_conflict_do_nothing(index_elements=["lot_id"])
            .returning(expiry_warnings.c.lot_id),
            [{"lot_id": r.id, "member_id": r.member_id, "created_at": now} for r in rows],
        )
        fresh = set(marked.scalars())
        new = [r for r in rows if r.id in fresh]
        notices = [
            {
                "member_id": r.member_id,
                "kind": "points_expiring",
                "created_at": now,
                "payload": {
                    "lot": r.id,
                    "points": r.remaining,
                    "expires_at": r.expires_at.isoformat(),
                    "locale": r.locale,
                    "template": "points_expiring",
                    "deliver_after": deliver_after(r.quiet_hours, r.timezone, now),
                },
            }
            for r in new
            if r.marketing_consent
        ]
        if notices:
            await conn.execute(insert(notifications), notices)
        return new
