"""The birthday job over many members: the scheduler's grants job, timed, run twice.

    .venv/bin/python bench/birthday.py [--members 1000000] [--date YYYY-MM-DD]
                                       [--db loyalty_bench_birthday] [--keep-db] [--json PATH]

1. A fresh PostgreSQL database: migrations, members seeded as for bench/run.py (bulk SQL,
   birthdays spread evenly over the year: about 1/365 of the members on each day) and
   the example programme, whose `scheduled.birthday` gives each tier's birthday points
   on the day.
2. `loyalty scheduler run grants --date D` (the documented command; D defaults to
   yesterday, UTC), timed from process start to exit. On a fresh database this first run
   also catches up the programme's look-back days (3), as after a first deployment or
   downtime, so it grants several days of birthdays: the heaviest run there is.
3. The same command again for the same day: it must grant nothing (exactly once).
4. The next day (D + 1): the steady state, one more day of birthdays.

A date alone means its last second, UTC; members in time zones east of UTC are already
on the next day then, so their next-day birthdays are due too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import seed  # noqa: E402
from profiling import py_spy, summarise_profile  # noqa: E402

TARGET_SECONDS = 60.0


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def run_job(db: str, day: date, profile: Path | None = None) -> dict[str, Any]:
    """`loyalty scheduler run grants --date DAY`, timed from process start to exit; the
    counts from its summary line, and the seconds PostgreSQL spent executing its
    statements. With `profile`, under py-spy (raw collapsed stacks written there)."""
    command = [seed.LOYALTY, "scheduler", "run", "grants", "--date", day.isoformat()]
    spy = py_spy() if profile is not None else None
    if profile is not None and spy is None:
        log("py-spy not installed (.venv/bin/pip install py-spy): no profile")
    if spy is not None:
        command = [spy, "record", "--rate", "100", "--format", "raw", "-o", str(profile),
                   "--", *command]  # fmt: skip
    db_before = asyncio.run(seed.database_activity(db))["active_ms"]
    began = time.perf_counter()
    done = subprocess.run(
        command, env=seed.loyalty_env(db), capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    time.sleep(1)  # the job's sessions have closed; let their statistics land
    db_seconds = (asyncio.run(seed.database_activity(db))["active_ms"] - db_before) / 1000
    summary = next(line for line in done.stdout.splitlines() if line.startswith("grants"))
    counts = dict.fromkeys(("members_read", "due", "granted", "points", "notices"), 0)
    counts |= {name: int(value) for name, value in re.findall(r"(\w+) (\d+)", summary)}
    return {
        "date": day.isoformat(),
        "seconds": round(seconds, 2),
        "db_seconds": round(db_seconds, 2),
        "summary": summary,
        **counts,
    }


async def backdate_programme(db: str, since: date) -> None:
    """Put the programme in force from `since`, as in a deployment that has been running:
    a job run as of a day uses the programme of that day, and one published now would
    find none for yesterday. (Publishing refuses a past activation, hence SQL.)"""
    at = datetime.combine(since, datetime.min.time(), UTC)
    conn = await asyncpg.connect(seed.db_url(db))
    try:
        await conn.execute("UPDATE program_versions SET activates_at = $1, published_at = $1", at)
    finally:
        await conn.close()


GRANTS_BY_CAMPAIGN = """
SELECT campaign, count(*) AS gifts, sum(points) AS points FROM grants
GROUP BY campaign ORDER BY campaign
"""

# Members whose birthday (month, day) is `day`, and how many of them hold a birthday gift.
BIRTHDAYS_ON = """
SELECT count(*) AS members, count(g.id) AS gifted, count(DISTINCT m.id) AS distinct_members
FROM members m
LEFT JOIN grants g ON g.member_id = m.id AND g.campaign = 'birthday'
WHERE extract(month FROM m.birthday) = $1 AND extract(day FROM m.birthday) = $2
"""

# Birthdays per calendar day over the year: how evenly the seed spread them.
PER_DAY = """
SELECT min(n), max(n), round(avg(n)) FROM (
    SELECT count(*) AS n FROM members WHERE birthday IS NOT NULL
    GROUP BY extract(month FROM birthday), extract(day FROM birthday)
    HAVING NOT (extract(month FROM birthday) = 2 AND extract(day FROM birthday) = 29)
) d
"""


async def facts(db: str, day: date) -> dict[str, Any]:
    conn = await asyncpg.connect(seed.db_url(db))
    try:
        lowest, highest, mean = await conn.fetchrow(PER_DAY)
        on_day = await conn.fetchrow(BIRTHDAYS_ON, day.month, day.day)
        campaigns = await conn.fetch(GRANTS_BY_CAMPAIGN)
        duplicates = await conn.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM grants GROUP BY member_id, campaign, occurrence"
            " HAVING count(*) > 1) d"
        )
    finally:
        await conn.close()
    return {
        "birthdays_per_day": {"min": lowest, "max": highest, "mean": int(mean)},
        "birthdays_on_date": on_day["members"],
        "of_them_gifted": on_day["distinct_members"] if on_day["gifted"] else 0,
        "gifts_to_them": on_day["gifted"],
        "grants_by_campaign": {
            r["campaign"]: {"gifts": r["gifts"], "points": int(r["points"])} for r in campaigns
        },
        "duplicate_grants": duplicates,
    }


def measure(
    members: int,
    db: str = "loyalty_bench_birthday",
    day: date | None = None,
    keep_db: bool = False,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Seed `members` into a fresh database `db`, time the grants job for `day` three
    times (first, again, next day); the figures as a dict. Drops `db` unless keep_db.
    With `profile`, the first run is sampled by py-spy into that file."""
    day = day or datetime.now(UTC).date() - timedelta(days=1)
    log(f"birthday job: database {db}, {members:,} members, day {day}")
    asyncio.run(seed.recreate_database(db))
    try:
        seed.migrate(db)
        seeded = asyncio.run(seed.seed_members(db, members))
        log(f"  seeded in {seeded:.1f} s; publishing {seed.EXAMPLE.name}")
        seed.publish_programme(db)
        asyncio.run(backdate_programme(db, day - timedelta(days=30)))
        runs = []
        for label, when in (("first", day), ("again", day), ("next day", day + timedelta(1))):
            row = run_job(db, when, profile if label == "first" else None)
            row["run"] = label
            runs.append(row)
            log(
                f"  grants {label} ({when}): {row['seconds']:.1f} s (database "
                f"{row['db_seconds']:.1f} s), {row['summary']}"
            )
            if label == "again":
                checked = asyncio.run(facts(db, day))  # before the next day adds more
        first, again, _ = runs
        result: dict[str, Any] = {
            "members": members,
            "date": day.isoformat(),
            "command": f"loyalty scheduler run grants --date {day.isoformat()}",
            "seeded_seconds": round(seeded, 1),
            "runs": runs,
            **checked,
            "exactly_once": again["granted"] == 0 and checked["duplicate_grants"] == 0,
            "target_seconds": TARGET_SECONDS,
            # A first run that grants nothing measured nothing.
            "profile": (
                {"raw": profile.name, **summarise_profile(profile)}
                if profile is not None and profile.exists()
                else None
            ),
            "met": first["granted"] > 0
            and first["seconds"] <= TARGET_SECONDS
            and again["granted"] == 0
            and checked["duplicate_grants"] == 0,
        }
        log(
            f"  {checked['birthdays_on_date']:,} members born on {day:%m-%d}, "
            f"{checked['of_them_gifted']:,} gifted ({checked['gifts_to_them']:,} gifts); "
            f"birthdays per day {checked['birthdays_per_day']}; by campaign "
            f"{checked['grants_by_campaign']}"
        )
        return result
    finally:
        if not keep_db:
            asyncio.run(seed.drop_database(db))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--date", type=date.fromisoformat, help="the day (default yesterday)")
    parser.add_argument("--db", default="loyalty_bench_birthday", help="recreated, then dropped")
    parser.add_argument("--keep-db", action="store_true", help="keep the database")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--profile", type=Path, help="py-spy the first run into this file")
    args = parser.parse_args(argv)
    result = measure(args.members, args.db, args.date, args.keep_db, args.profile)
    first, again, _ = result["runs"]
    print()
    print(f"birthday job over {result['members']:,} members, {result['command']}")
    for row in result["runs"]:
        print(
            f"  {row['run']:<9} {row['date']}  {row['seconds']:>6.1f} s (database "
            f"{row['db_seconds']:>5.1f} s)  members read "
            f"{row['members_read']:>9,}  due {row['due']:>6,}  granted {row['granted']:>6,}"
        )
    verdict = "met" if result["met"] else "MISSED"
    print(
        f"target: first run <= {TARGET_SECONDS:.0f} s and the second grants 0: {verdict} "
        f"({first['seconds']:.1f} s; again {again['granted']} granted)"
    )
    if result["profile"]:
        print("profile of the first run (inclusive share of samples):")
        for frame, share in result["profile"]["inclusive_top"]:
            print(f"  {share:>5.1f}%  {frame}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"results: {args.json}")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
