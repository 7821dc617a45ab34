"""The async engine and the one place where SQLite and PostgreSQL differ in behaviour.

SQLite has no row locks (SQLAlchemy renders FOR UPDATE as a plain SELECT there), so
transactions that must be exclusive start with BEGIN IMMEDIATE, which takes the
database write lock up front; readers keep going under WAL. PostgreSQL gets a pooled
asyncpg engine and relies on row locks.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import ColumnElement, Table, cast, event, exists, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import ReturningInsert

SQLITE_BUSY_TIMEOUT_MS = 10_000
_BEGIN_MODE = "loyalty_sqlite_begin"


class Database:
    def __init__(self, url: URL, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.dialect = url.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = create_async_engine(url, echo=echo, hide_parameters=True)
            _make_sqlite_transactional(self.engine)
        else:
            self.engine = create_async_engine(
                url,
                echo=echo,
                # Errors would otherwise quote the statement's values (personal data)
                # into the logs.
                hide_parameters=True,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_recycle=1800,
            )
        self._writer = self.engine.execution_options(**{_BEGIN_MODE: "IMMEDIATE"})
        # PostgreSQL reads in autocommit: no BEGIN and ROLLBACK round trips around
        # them. Under READ COMMITTED each statement takes its own snapshot anyway,
        # so a read block sees nothing different. SQLite keeps its deferred
        # transaction: one consistent snapshot, and no round trips to save.
        self._reader = (
            self.engine
            if self.is_sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction: committed when the block ends, rolled back on error."""
        async with self._writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """Reads only: on PostgreSQL each statement commits on its own."""
        async with self._reader.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()


def _make_sqlite_transactional(engine: AsyncEngine) -> None:
    # The sqlite3 module's own implicit BEGIN cannot be told to be IMMEDIATE; take
    # transaction control away from it and emit BEGIN ourselves (SQLAlchemy's
    # documented recipe for SQLite transactions).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_MODE, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


# PostgreSQL's serialization failure and deadlock victim: the transaction was rolled
# back whole and may simply be run again.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})


def is_transient(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) in _TRANSIENT_SQLSTATES


def dialect_insert(db: Database, table: Table) -> PgInsert | SqliteInsert:
    """INSERT with ON CONFLICT support; both dialects spell it the same way."""
    return sqlite_insert(table) if db.is_sqlite else pg_insert(table)


def insert_ignoring(
    table: Table, conflict: list[str], *returning: ColumnElement[Any]
) -> dict[str, ReturningInsert[Any]]:
    """INSERT ... ON CONFLICT (conflict) DO NOTHING RETURNING ..., built once for each
    dialect (values are given as execution parameters); pick with `db.dialect`."""
    return {
        dialect: build(table).on_conflict_do_nothing(index_elements=conflict).returning(*returning)
        for dialect, build in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
    }


def json_array_contains(
    db: Database, column: ColumnElement[Any], value: str
) -> ColumnElement[bool]:
    """`value` is an element of the JSON array in `column`."""
    if db.is_sqlite:
        each = func.json_each(column).table_valued("value")
        return exists(select(literal(1)).select_from(each).where(each.c.value == value))
    return column.op("@>")(cast(literal(json.dumps([value])), JSONB))


def utc_month(db: Database, column: ColumnElement[Any]) -> ColumnElement[str]:
    """'YYYY-MM' of a UTC timestamp column. PostgreSQL's to_char would use the session
    time zone, so the value is converted to UTC first; SQLite stores naive UTC text."""
    if db.is_sqlite:
        return func.strftime("%Y-%m", column)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM")
