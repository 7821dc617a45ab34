"""Shared fixtures: every integration test runs on SQLite and on PostgreSQL.

PostgreSQL comes from LOYALTY_TEST_DATABASE_URL (default: the local server). The
suite creates its own throw-away database there, migrates it once and truncates
between tests. If PostgreSQL cannot be reached the run fails: it never quietly
tests SQLite alone.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
import structlog
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from loyalty.api import request_log
from loyalty.api.app import create_app
from loyalty.bootstrap import Container
from loyalty.clock import FixedClock
from loyalty.db import migrate
from loyalty.db.engine import Database
from loyalty.db.schema import metadata
from loyalty.settings import Settings

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DIALECTS = ["sqlite", "postgresql"]
NOW = datetime(2026, 6, 15, 9, 30, tzinfo=UTC)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Row-lock and concurrency tests mean nothing on SQLite: deselect, don't skip.
    keep, drop = [], []
    for item in items:
        pg_only = item.get_closest_marker("postgres_only") is not None
        (drop if pg_only and "[sqlite" in item.nodeid else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    passed = terminalreporter.stats.get("passed", [])
    failed = terminalreporter.stats.get("failed", [])
    pg_passed = sum("postgresql" in report.nodeid for report in passed)
    pg_failed = sum("postgresql" in report.nodeid for report in failed)
    terminalreporter.write_line(f"PostgreSQL tests: {pg_passed} passed, {pg_failed} failed")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # The CI script sets this: a run that executed no PostgreSQL test is a failure.
    if os.environ.get("LOYALTY_REQUIRE_POSTGRES") != "1" or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    passed = reporter.stats.get("passed", []) if reporter else []
    if not any("postgresql" in report.nodeid for report in passed):
        session.exitstatus = 1


def _pg_server_url() -> URL:
    url = make_url(os.environ.get("LOYALTY_TEST_DATABASE_URL", DEFAULT_PG))
    return url.set(drivername="postgresql+asyncpg")


async def _pg_admin(url: URL) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            database=url.database,
            timeout=10,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.exit(
            f"PostgreSQL is not reachable at {url.render_as_string()}: {exc}. "
            "Start it or set LOYALTY_TEST_DATABASE_URL.",
            returncode=3,
        )


async def _migrate(url: URL) -> None:
    db = Database(url)
    await migrate.upgrade(db)
    await db.dispose()


async def _admin_execute(sql: str) -> None:
    admin = await _pg_admin(_pg_server_url())
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


# Session fixtures are synchronous (each runs its own short event loop) so that the
# per-test fixture below can pick one by dialect with getfixturevalue.
@pytest.fixture(scope="session")
def pg_template_url() -> Iterator[URL]:
    name = f"loyalty_test_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    url = _pg_server_url().set(database=name)
    asyncio.run(_migrate(url))
    yield url
    asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(_migrate(make_url(f"sqlite+aiosqlite:///{path}")))
    return path


_TRUNCATE = text(
    "TRUNCATE " + ", ".join(t.name for t in metadata.sorted_tables) + " RESTART IDENTITY CASCADE"
)


async def _truncate(url: URL) -> None:
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.execute(_TRUNCATE)
    await db.dispose()


@pytest.fixture(params=DIALECTS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[URL]:
    """A migrated, empty database of each dialect, private to the test."""
    if request.param == "sqlite":
        path = tmp_path / "loyalty.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield make_url(f"sqlite+aiosqlite:///{path}")
        return
    url: URL = request.getfixturevalue("pg_template_url")
    yield url
    asyncio.run(_truncate(url))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


def settings_for(url: URL, **overrides: object) -> Settings:
    values: dict[str, object] = {"database_url": url.render_as_string(hide_password=False)}
    return Settings.from_mapping(values | overrides)


@pytest.fixture
async def container(db_url: URL, clock: FixedClock) -> AsyncIterator[Container]:
    container = Container(settings_for(db_url, auth_cache_seconds=0), clock=clock)
    yield container
    await container.close()


@pytest.fixture
def app(container: Container) -> Litestar:
    return create_app(container)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """Real HTTP through the ASGI app, in the test's own event loop.

    Litestar's AsyncTestClient runs the app in a portal thread with another event
    loop, where pooled asyncpg connections made by fixtures cannot be used. The
    lifespan (schema check, then closing the container) is left out: the container
    fixture closes it, and test_health checks the lifespan itself.
    """
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://loyalty.test"
    ) as client:
        yield client


@pytest.fixture
async def keys(container: Container) -> dict[str, str]:
    """One key per role, as `Authorization` header values."""
    out = {}
    for role in ("pos", "app", "marketer", "admin"):
        issued = await container.api_keys.create(f"test {role}", role)
        out[role] = f"Bearer {issued.secret}"
    return out


def auth(keys: dict[str, str], role: str = "admin") -> dict[str, str]:
    return {"Authorization": keys[role]}


@pytest.fixture
def fresh_request_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request logger that capture_logs can see. A CLI command run in-process
    configures production logging, whose cache_logger_on_first_use freezes the
    module's logger on its next use; capture_logs would then see nothing, depending
    on test order."""
    monkeypatch.setattr(request_log, "log", structlog.get_logger("loyalty.request"))
