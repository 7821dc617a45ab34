"""Database set-up for the benchmark: fresh database, migrations, members, programme, keys.

Members are seeded with one bulk ``INSERT ... SELECT generate_series`` (100k in a couple
of seconds); Faker provides a sample of realistic names, e-mail local parts, birthdays,
locales and time zones that the rows cycle through. Each pass over the sample moves the
birthdays on by one day, so that birthdays cover the whole year evenly (about 1/365 of
the members on each day, for the birthday job) rather than the sample's 2,000 dates.
Member ids are ``B00000001``... so the load generator can pick a random member without
asking the database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import asyncpg
from faker import Faker

ROOT = Path(__file__).resolve().parent.parent
LOYALTY = str(Path(sys.executable).parent / "loyalty")
EXAMPLE = ROOT / "examples" / "tea-house.yaml"
PG = "postgresql://postgres@127.0.0.1:5432"
SAMPLE = 2000
TIMEZONES = ("Asia/Shanghai", "Asia/Urumqi", "Asia/Hong_Kong", "Europe/London", "UTC")


def member_id(n: int) -> str:
    return f"B{n:08d}"


def db_url(name: str) -> str:
    return f"{PG}/{name}"


def loyalty_env(name: str) -> dict[str, str]:
    env = dict(os.environ)
    env["LOYALTY_DATABASE_URL"] = db_url(name)
    env.setdefault("LOYALTY_LOG_LEVEL", "warning")
    env.setdefault("LOYALTY_LOG_FORMAT", "json")
    return env


def loyalty(name: str, *args: str) -> str:
    done = subprocess.run(
        [LOYALTY, *args], env=loyalty_env(name), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"loyalty {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


async def recreate_database(name: str) -> None:
    conn = await asyncpg.connect(db_url("postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(db_url("postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def faker_sample(count: int = SAMPLE, seed: int = 8) -> tuple[list[str], ...]:
    fake = Faker(["zh_CN", "en_US"])
    Faker.seed(seed)
    names, emails, birthdays, locales, zones = [], [], [], [], []
    for i in range(count):
        names.append(fake.name())
        emails.append(fake.user_name()[:40])
        born: date = fake.date_of_birth(minimum_age=16, maximum_age=80)
        birthdays.append(born.isoformat())
        locales.append("zh-CN" if i % 3 else "en-US")
        zones.append(TIMEZONES[i % len(TIMEZONES)])
    return names, emails, birthdays, locales, zones


SEED_MEMBERS = """
WITH f AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::date[], $5::text[], $6::text[])
        WITH ORDINALITY AS t(name, email, birthday, locale, tz, i)
)
INSERT INTO members (member_id, referral_code, status, name, email, phone, birthday,
                     timezone, locale, marketing_consent, attributes, tags,
                     joined_at, created_at, updated_at)
SELECT 'B' || lpad(g::text, 8, '0'),
       'R' || lpad(upper(to_hex(g)), 10, '0'),
       'active', f.name, f.email || '.' || g || '@example.com',
       '+86139' || lpad(g::text, 8, '0'), f.birthday + ((g / $7) % 365)::int, f.tz,
       f.locale, g % 2 = 0,
       '{}'::jsonb, '[]'::jsonb,
       now() - (g % 900) * interval '1 day' - interval '40 days', now(), now()
FROM generate_series(1, $1::int) g
JOIN f ON f.i = (g % $7) + 1
"""

SEED_BALANCES = """
INSERT INTO balances (member_id, available, pending, held, lifetime_earned,
                      lifetime_redeemed, version, updated_at)
SELECT id, 0, 0, 0, 0, 0, 0, now() FROM members
"""


async def seed_members(name: str, count: int) -> float:
    began = time.perf_counter()
    sample = faker_sample()
    conn = await asyncpg.connect(db_url(name))
    try:
        birthdays = [date.fromisoformat(b) for b in sample[2]]
        await conn.execute(
            SEED_MEMBERS, count, sample[0], sample[1], birthdays, sample[3], sample[4], SAMPLE
        )
        await conn.execute(SEED_BALANCES)
        await conn.execute("VACUUM ANALYZE members")
        await conn.execute("VACUUM ANALYZE balances")
    finally:
        await conn.close()
    return time.perf_counter() - began


# Synthetic history to grow the ledger: each transaction is an adjustment of +10 points
# with its two entries (member available, house adjusted), spread over all members.
GROW_LEDGER = """
WITH t AS (
    INSERT INTO ledger_transactions (kind, member_id, actor, reason, shortfall, at)
    SELECT 'adjustment', 1 + (g::bigint * 7919) % $2, 'bench', 'bench history', 0,
           now() - (g % 700) * interval '1 hour'
    FROM generate_series(1, $1::int) g
    RETURNING id, member_id, at
)
INSERT INTO ledger_entries (txn_id, member_id, account, amount, reason, at)
SELECT t.id, CASE WHEN s = 0 THEN t.member_id END,
       CASE WHEN s = 0 THEN 'available' ELSE 'adjusted' END,
       CASE WHEN s = 0 THEN 10 ELSE -10 END, 'bench history', t.at
FROM t, generate_series(0, 1) s
"""


async def ledger_entry_count(name: str) -> int:
    conn = await asyncpg.connect(db_url(name))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM ledger_entries"))
    finally:
        await conn.close()


async def grow_ledger(name: str, entries: int, members: int, chunk: int = 500_000) -> float:
    """Append ``entries`` ledger entries (half as many transactions) with plain SQL, in
    statements of ``chunk`` transactions, then VACUUM ANALYZE (as autovacuum would
    leave a settled table). The rows reference existing members and transactions by
    construction, so the per-row foreign-key checks are skipped for the load (replica
    role, the usual bulk-load setting)."""
    began = time.perf_counter()
    conn = await asyncpg.connect(db_url(name))
    try:
        await conn.execute("SET session_replication_role = replica")
        left = entries // 2
        while left > 0:
            step = min(chunk, left)
            await conn.execute(GROW_LEDGER, step, members)
            left -= step
        await conn.execute("RESET session_replication_role")
        await conn.execute("VACUUM ANALYZE ledger_transactions")
        await conn.execute("VACUUM ANALYZE ledger_entries")
        # Flush now: a checkpoint writing gigabytes during the measurement stalls commits.
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return time.perf_counter() - began


async def clone_database(source: str, name: str) -> float:
    """A copy of ``source`` (which nobody may be connected to) as ``name``, recreated.
    FILE_COPY copies the files instead of writing every page to the WAL (PostgreSQL 15+)."""
    began = time.perf_counter()
    conn = await asyncpg.connect(db_url("postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        create = f'CREATE DATABASE "{name}" TEMPLATE "{source}"'
        try:
            await conn.execute(create + " STRATEGY = FILE_COPY")
        except asyncpg.PostgresSyntaxError:  # before PostgreSQL 15
            await conn.execute(create)
    finally:
        await conn.close()
    return time.perf_counter() - began


async def database_activity(name: str) -> dict[str, float]:
    """Counters of PostgreSQL's work in the database, all sessions, flushed by each
    backend within a second of going idle (pg_stat_database): milliseconds spent
    executing statements (active_time, PostgreSQL 14+), buffers hit and read, rows
    returned and fetched; the CPU seconds of the backends connected to it now (read
    from /proc, so only for a local server; 0 otherwise); orders inserted (a counter
    too: counting the rows would add a scan to the figures) and its size."""
    conn = await asyncpg.connect(db_url(name))
    try:
        row = await conn.fetchrow(
            "SELECT active_time AS active_ms, blks_hit + blks_read AS blocks,"
            " blks_read AS reads, tup_returned + tup_fetched AS rows,"
            " (SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'orders') AS orders,"
            " pg_database_size(current_database()) AS bytes"
            " FROM pg_stat_database WHERE datname = current_database()"
        )
        backends = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    out = {key: float(value or 0) for key, value in row.items()}
    cpu = {pid: cpu_seconds(pid) for pid in (r["pid"] for r in backends)}
    return out | {f"cpu:{pid}": seconds for pid, seconds in cpu.items() if seconds is not None}


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:  # gone, or not on Linux
        return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process (None if it is gone)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else None


def group_cpu_seconds(group: int) -> float:
    """CPU seconds of every live process in a process group (a server and its workers)."""
    pids = [e.name for e in Path("/proc").iterdir() if e.name.isdigit()]
    return sum(
        cpu_seconds(int(pid)) or 0.0
        for pid in pids
        if (fields := _stat(pid)) and int(fields[2]) == group
    )


def publish_programme(name: str) -> None:
    loyalty(name, "program", "publish", str(EXAMPLE), "--note", "benchmark")


def create_key(name: str, role: str) -> str:
    return loyalty(name, "apikey", "create", "--name", f"bench-{role}", "--role", role).strip()


def migrate(name: str) -> None:
    loyalty(name, "db", "upgrade")
