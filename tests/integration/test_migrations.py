"""One migration chain, both dialects: it builds the schema the code describes."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL

from loyalty.db import migrate
from loyalty.db.engine import Database
from loyalty.db.schema import metadata


async def _empty_database(db_url: URL, tmp_path: Path) -> Database:
    if db_url.get_backend_name() == "sqlite":
        return Database(db_url.set(database=str(tmp_path / "empty.db")))
    # The session's PostgreSQL database: emptied here, migrated again afterwards.
    db = Database(db_url)
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        await conn.exec_driver_sql("CREATE SCHEMA public")
    return db


async def test_upgrade_from_empty_matches_the_models(db_url: URL, tmp_path: Path) -> None:
    db = await _empty_database(db_url, tmp_path)
    try:
        assert await migrate.is_empty(db)
        assert await migrate.current_revision(db) is None
        await migrate.upgrade(db)
        assert await migrate.current_revision(db) == migrate.head_revision()
        await migrate.ensure_current(db)
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                )
            )
        assert diff == []
        await migrate.upgrade(db)  # a second upgrade is a no-op
        assert await migrate.current_revision(db) == migrate.head_revision()
    finally:
        if db.dialect == "postgresql":
            await migrate.upgrade(db)
        await db.dispose()


def test_the_chain_is_linear() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(migrate.migrations_dir()))
    assert len(script.get_heads()) == 1
    assert script.get_bases() == ["0001"]
    assert script.get_current_head() == migrate.head_revision()
