"""The `loyalty` command, run as users run it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from loyalty.cli import main

LOYALTY = str(Path(sys.executable).with_name("loyalty"))


def _env(url: URL) -> dict[str, str]:
    return {"LOYALTY_DATABASE_URL": url.render_as_string(hide_password=False)}


def test_apikey_create_list_revoke(db_url: URL) -> None:
    runner = CliRunner()
    created = runner.invoke(
        main, ["apikey", "create", "--name", "till 1", "--role", "pos"], env=_env(db_url)
    )
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("lk_")
    assert len(secret) > 40
    listed = runner.invoke(main, ["apikey", "list"], env=_env(db_url))
    assert "till 1" in listed.stdout
    assert "active" in listed.stdout
    assert secret not in listed.stdout
    key_id = listed.stdout.split("\t")[0]
    revoked = runner.invoke(main, ["apikey", "revoke", key_id], env=_env(db_url))
    assert revoked.exit_code == 0
    assert "revoked" in runner.invoke(main, ["apikey", "list"], env=_env(db_url)).stdout
    missing = runner.invoke(main, ["apikey", "revoke", "999"], env=_env(db_url))
    assert missing.exit_code == 1
    assert "api_key_not_found" in missing.output


def test_bad_role_and_bad_configuration_are_usage_errors(db_url: URL) -> None:
    runner = CliRunner()
    bad_role = runner.invoke(
        main, ["apikey", "create", "--name", "x", "--role", "root"], env=_env(db_url)
    )
    assert bad_role.exit_code == 2
    bad_port = runner.invoke(main, ["apikey", "list"], env=_env(db_url) | {"LOYALTY_PORT": "x"})
    assert bad_port.exit_code == 2
    assert "LOYALTY_PORT" in bad_port.output


def test_out_of_date_schema_is_refused_with_the_command_to_run(db_url: URL) -> None:
    runner = CliRunner()
    runner.invoke(main, ["apikey", "list"], env=_env(db_url))
    import asyncio

    from loyalty.db import migrate
    from loyalty.db.engine import Database

    async def set_revision(revision: str | None) -> None:
        db = Database(db_url)
        async with db.write() as conn:
            await conn.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{revision}'")
        await db.dispose()

    asyncio.run(set_revision("0000"))
    try:
        refused = runner.invoke(main, ["serve"], env=_env(db_url))
        assert refused.exit_code == 1
        assert "run `loyalty db upgrade`" in refused.output
        current = runner.invoke(main, ["db", "current"], env=_env(db_url))
        assert "database: 0000" in current.stdout
    finally:
        # The PostgreSQL test database is shared by the session.
        asyncio.run(set_revision(migrate.head_revision()))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fresh_url(db_url: URL, tmp_path: Path) -> URL:
    # On SQLite, a database file that does not exist yet: the zero-config first run.
    if db_url.get_backend_name() == "sqlite":
        return db_url.set(database=str(tmp_path / "fresh" / "loyalty.db"))
    return db_url


@pytest.fixture
def server(fresh_url: URL) -> Iterator[str]:
    if fresh_url.get_backend_name() == "sqlite":
        Path(fresh_url.database or "").parent.mkdir()
    port = _free_port()
    env = os.environ | _env(fresh_url) | {"LOYALTY_LOG_FORMAT": "json"}
    process = subprocess.Popen(
        [LOYALTY, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{base}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            process.kill()
            raise AssertionError(process.communicate()[0].decode())
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_then_a_new_admin_key_creates_and_reads_a_member(server: str, fresh_url: URL) -> None:
    created = subprocess.run(
        [LOYALTY, "apikey", "create", "--name", "ops", "--role", "admin"],
        env=os.environ | _env(fresh_url),
        capture_output=True,
        text=True,
        check=True,
    )
    headers = {"Authorization": f"Bearer {created.stdout.strip()}"}
    member = {"member_id": "E2E-1", "email": "e2e@example.com", "timezone": "Europe/Paris"}
    posted = httpx.post(f"{server}/v1/members", json=member, headers=headers)
    assert posted.status_code == 201, posted.text
    read = httpx.get(f"{server}/v1/members/E2E-1", headers=headers)
    assert read.json()["email"] == "e2e@example.com"
    assert httpx.get(f"{server}/v1/members/E2E-1").status_code == 401
    schema = httpx.get(f"{server}/schema/openapi.json")
    assert schema.status_code == 200
    assert "/v1/members" in schema.json()["paths"]
