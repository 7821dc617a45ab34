"""One instance at a time per job.

On PostgreSQL a session advisory lock, tried without waiting: an instance that finds
the job running elsewhere skips this turn (the other does the work, and the grants'
unique key would stop a duplicate anyway). The lock goes with the session, so a
crashed instance frees it. On SQLite every batch already starts with BEGIN
IMMEDIATE, which serialises writers; no lock is needed.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text

from loyalty.db.engine import Database


def lock_key(job: str) -> int:
    return zlib.crc32(f"loyalty.scheduler.{job}".encode())


@asynccontextmanager
async def job_lock(db: Database, job: str) -> AsyncIterator[bool]:
    """Yields whether this instance holds the job's lock."""
    if db.is_sqlite:
        yield True
        return
    key = lock_key(job)
    async with db.engine.connect() as conn:
        held = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))
        await conn.commit()
        try:
            yield held
        finally:
            if held:
                try:
                    await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    await conn.commit()
                except BaseException:
                    # Never hand a session that may still hold the lock back to the pool.
                    await conn.invalidate()
                    raise
