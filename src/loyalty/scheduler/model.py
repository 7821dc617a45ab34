"""What the scheduler reports: job runs."""

from __future__ import annotations

from datetime import datetime

import msgspec

JOBS = ("grants", "expiry", "expiry_notices", "vesting", "tier_review", "hold_timeouts")


class JobRun(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    job: str
    instance: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, int]
    error: str | None


class JobRunPage(msgspec.Struct, frozen=True):
    items: list[JobRun]
    next_cursor: str | None


class JobResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one run did (or, dry, would do). `ran` is False when another instance
    held the job's lock."""

    job: str
    ran: bool
    dry_run: bool
    counts: dict[str, int]
    error: str | None = None
