"""Several scheduler instances against one PostgreSQL database never give twice."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import URL

from loyalty.bootstrap import Container
from loyalty.clock import FixedClock
from loyalty.db.engine import Database
from loyalty.db.schema import balances, grants, members
from loyalty.ledger import book
from loyalty.ledger.audit import verify
from loyalty.program.service import ProgramService
from loyalty.scheduler.grants import GrantJob

PROGRAM = """
program: gifts
currency: CNY
point_value: "0.01"
timezone: UTC
tiers: [{ id: member, benefits: { birthday_points: 100 } }]
scheduled: { birthday: { on: day } }
rules: [{ id: base, on: purchase, award: { per_amount: "1.00" } }]
"""
MEMBERS = 600
DAY = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.postgres_only


async def _seed(container: Container, clock: FixedClock) -> None:
    """Members born today, inserted in bulk (the service enrols one at a time)."""
    clock.set(datetime(2019, 1, 1, tzinfo=UTC))
    await container.programs.publish({"p.yaml": PROGRAM}, "p.yaml", actor="test")
    clock.set(DAY)
    joined = datetime(2020, 1, 1, tzinfo=UTC)
    rows = [
        {
            "member_id": f"C{n:05d}",
            "referral_code": f"R{n:07d}",
            "status": "active",
            "birthday": date(1990, 6, 15),
            "timezone": "UTC",
            "marketing_consent": n % 2 == 0,
            "attributes": {},
            "tags": [],
            "joined_at": joined,
            "created_at": joined,
            "updated_at": joined,
        }
        for n in range(MEMBERS)
    ]
    async with container.db.write() as conn:
        ids = (await conn.execute(insert(members).returning(members.c.id), rows)).scalars()
        await conn.execute(insert(balances), [book.new_balance_row(i, joined) for i in ids])


async def _check_once(container: Container) -> None:
    async with container.db.read() as conn:
        count = await conn.scalar(select(func.count()).select_from(grants))
        total = await conn.scalar(select(func.sum(balances.c.available)))
    assert count == MEMBERS
    assert total == MEMBERS * 100
    assert (await verify(container.db)).ok


async def test_two_scheduler_processes_give_each_gift_once(
    container: Container, clock: FixedClock, db_url: URL
) -> None:
    await _seed(container, clock)
    env = os.environ | {
        "LOYALTY_DATABASE_URL": db_url.render_as_string(hide_password=False),
        "LOYALTY_LOG_FORMAT": "json",
    }
    command = [str(Path(sys.executable).parent / "loyalty"), "scheduler", "run", "grants"]
    command += ["--date", "2026-06-15"]
    processes = [
        await asyncio.create_subprocess_exec(
            *command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [await process.communicate() for process in processes]
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()[-2000:]
    printed = sorted(out.decode() for out, _ in outputs)
    # Either one ran and the other found the lock taken, or they ran one after the other.
    assert any("granted 600" in line for line in printed), printed
    await _check_once(container)


async def test_two_instances_without_the_lock_still_give_once(
    container: Container, clock: FixedClock, db_url: URL
) -> None:
    """The unique key alone holds: two engines race the same batches."""
    await _seed(container, clock)
    engines = [Database(db_url) for _ in range(2)]
    try:
        jobs = [GrantJob(db, ProgramService(db, clock, 0), batch=50).run(DAY) for db in engines]
        results = await asyncio.gather(*jobs)
    finally:
        for db in engines:
            await db.dispose()
    assert sum(result.get("granted", 0) for result in results) == MEMBERS
    await _check_once(container)
