"""Alembic, driven from code: upgrade, and the check that the schema is current."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.engine import URL

from loyalty.db.engine import Database
from loyalty.errors import Unavailable


def migrations_dir() -> Path:
    # A wheel carries the chain inside the package; a source checkout has it at the top.
    packaged = Path(str(resources.files("loyalty") / "migrations"))
    if (packaged / "env.py").exists():
        return packaged
    return Path(__file__).resolve().parents[3] / "migrations"


def alembic_config(url: URL) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False))
    return config


def head_revision() -> str | None:
    return ScriptDirectory(str(migrations_dir())).get_current_head()


async def upgrade(db: Database, revision: str = "head") -> None:
    def run(conn: Connection) -> None:
        config = alembic_config(db.url)
        config.attributes["connection"] = conn
        command.upgrade(config, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def is_empty(db: Database) -> bool:
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    return not names


class SchemaOutOfDate(Unavailable):
    pass


async def ensure_current(db: Database) -> None:
    """Refuse to serve on a schema the code does not expect."""
    current, head = await current_revision(db), head_revision()
    if current != head:
        raise SchemaOutOfDate(
            "schema_out_of_date",
            f"database schema is at revision {current or 'none (empty database)'}, "
            f"this version of loyalty needs {head}: run `loyalty db upgrade`",
        )
