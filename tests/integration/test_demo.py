"""`loyalty demo`: seeding through the services, on both dialects."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.engine import URL, make_url

from loyalty import demo
from loyalty.bootstrap import Container
from loyalty.cli import main
from loyalty.clock import FixedClock, SystemClock
from loyalty.db.schema import balances, events, members
from loyalty.errors import NotFound
from loyalty.ledger.audit import verify
from tests.conftest import NOW, settings_for

ZONES = {locale.timezone for locale in demo.LOCALES}


async def _rows(container: Container, statement: Any) -> list[Any]:
    async with container.db.read() as conn:
        return list(await conn.execute(statement))


async def test_demo_seeds_members_events_and_balances(container: Container) -> None:
    result = await demo.run_demo(container, members_count=20, days=7, seed=3)
    assert result.published
    assert result.program_version == 1
    assert result.member_ids == [f"DEMO-{n:06d}" for n in range(1, 21)]
    assert result.end == NOW
    assert result.admin_key.startswith("lk_")
    people = await _rows(container, select(members).order_by(members.c.member_id))
    assert [row.member_id for row in people] == result.member_ids
    assert {row.timezone for row in people} <= ZONES
    assert len({row.timezone for row in people}) >= 3
    for row in people:
        if row.phone is not None:
            assert phonenumbers.is_valid_number(phonenumbers.parse(row.phone)), row.phone
            assert row.phone.startswith("+")
        if row.email is not None:
            assert row.email.split("@")[1].startswith("example.")
    assert any(row.marketing_consent for row in people)
    assert not all(row.marketing_consent for row in people)

    kinds = dict(
        await _rows(container, select(events.c.kind, func.count()).group_by(events.c.kind))
    )
    assert kinds["purchase"] > 0
    assert kinds["custom"] > 0
    assert sum(kinds.values()) == result.events
    # Every event was accepted and judged by the published programme.
    statuses = await _rows(container, select(events.c.status_code, events.c.program_version))
    assert {tuple(row) for row in statuses} == {(201, 1)}
    earned = await _rows(container, select(func.sum(balances.c.lifetime_earned)))
    assert earned[0][0] > 0
    assert result.top_members
    assert result.top_members[0][1] > 0
    report = await verify(container.db)
    assert report.ok, report
    assert report.members == 20

    # A second run keeps the programme and adds new people.
    clock = container.clock
    assert isinstance(clock, FixedClock)
    clock.set(NOW)
    again = await demo.run_demo(container, members_count=5, days=2, seed=3)
    assert not again.published
    assert again.program_version == 1
    assert again.member_ids == [f"DEMO-{n:06d}" for n in range(21, 26)]
    assert (await verify(container.db)).ok

    lines = demo.summary(again, "http://127.0.0.1:8000")
    assert f"  export LOYALTY_KEY={again.admin_key}" in lines
    assert any("/v1/reports/liability" in line for line in lines)
    assert any(f"/v1/members/{again.top_members[0][0]}/balance" in line for line in lines)


async def test_demo_is_deterministic(sqlite_template: Path, tmp_path: Path) -> None:
    seen = []
    for run in ("a", "b"):
        path = tmp_path / f"{run}.db"
        shutil.copy(sqlite_template, path)
        container = Container(
            settings_for(make_url(f"sqlite+aiosqlite:///{path}")), clock=FixedClock(NOW)
        )
        try:
            await demo.run_demo(container, members_count=8, days=3, seed=11)
            people = await _rows(
                container,
                select(
                    members.c.member_id, members.c.name, members.c.phone, members.c.birthday
                ).order_by(members.c.member_id),
            )
            history = await _rows(
                container,
                select(events.c.kind, events.c.occurred_at, events.c.payload).order_by(events.c.id),
            )
            seen.append(([tuple(row) for row in people], [tuple(row) for row in history]))
        finally:
            await container.close()
    assert seen[0] == seen[1]
    assert seen[0][1]


async def test_demo_without_the_example_programme_says_so(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "find_example_program", lambda: None)
    with pytest.raises(NotFound) as raised:
        await demo.run_demo(container, members_count=2, days=1)
    assert raised.value.code == "demo_program_not_found"
    assert "loyalty program publish" in raised.value.detail


async def test_demo_needs_a_fixed_clock(db_url: URL) -> None:
    container = Container(settings_for(db_url), clock=SystemClock())
    try:
        with pytest.raises(TypeError):
            await demo.run_demo(container, members_count=2, days=1)
    finally:
        await container.close()


def test_demo_command_creates_a_brand_new_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    result = CliRunner().invoke(
        main,
        ["demo", "--members", "6", "--days", "2", "--seed", "5"],
        env={"LOYALTY_DATABASE_URL": url},
    )
    assert result.exit_code == 0, result.output
    assert "6 members" in result.stdout
    assert "published examples/tea-house.yaml" in result.stdout
    assert "export LOYALTY_KEY=lk_" in result.stdout
    assert "curl -s" in result.stdout
    verified = CliRunner().invoke(main, ["ledger", "verify"], env={"LOYALTY_DATABASE_URL": url})
    assert verified.exit_code == 0, verified.output
    assert "drift 0" in verified.stdout
