"""The `loyalty` command: serve, migrate, manage API keys."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
import structlog

from loyalty.auth.keys import Role
from loyalty.bootstrap import Container
from loyalty.db import migrate
from loyalty.errors import LoyaltyError
from loyalty.logging import configure_logging
from loyalty.settings import Settings, SettingsError

T = TypeVar("T")
log = structlog.get_logger("loyalty.cli")


def _settings() -> Settings:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.UsageError(f"bad configuration: {exc}") from exc
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _run(
    settings: Settings, work: Callable[[Container], Awaitable[T]], *, prepare: bool = True
) -> T:
    async def main() -> T:
        container = Container(settings)
        try:
            if prepare:
                await _prepare_database(container)
            return await work(container)
        finally:
            await container.close()

    try:
        return asyncio.run(main())
    except LoyaltyError as exc:
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc


@click.group()
@click.version_option(package_name="loyalty")
def main() -> None:
    """Loyalty points and rewards engine."""


@main.command()
@click.option("--host", help="Listen address (default: LOYALTY_HOST or 127.0.0.1).")
@click.option("--port", type=int, help="Listen port (default: LOYALTY_PORT or 8000).")
@click.option("--workers", type=int, help="Worker processes (default: LOYALTY_WORKERS or 1).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the HTTP API server.

    A brand-new embedded SQLite database is created on first start; any other
    database must be migrated first with `loyalty db upgrade`.
    """
    import uvicorn

    settings = _settings()
    _run(settings, lambda _: asyncio.sleep(0))
    uvicorn.run(
        "loyalty.api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        access_log=False,
        log_config=None,
        log_level=settings.log_level,
        server_header=False,
    )


async def _prepare_database(container: Container) -> None:
    """Create a brand-new embedded database; refuse any other out-of-date schema."""
    if container.db.is_sqlite and await migrate.is_empty(container.db):
        await migrate.upgrade(container.db)
        log.info("embedded_database_created", url=container.db.url.render_as_string())
        return
    try:
        await migrate.ensure_current(container.db)
    except migrate.SchemaOutOfDate as exc:
        click.echo(f"error: {exc.detail}", err=True)
        raise SystemExit(1) from exc


@main.group()
def db() -> None:
    """Database schema."""


@db.command()
def upgrade() -> None:
    """Apply all pending migrations."""
    settings = _settings()
    revision = _run(settings, _upgrade, prepare=False)
    click.echo(f"database at revision {revision}")


async def _upgrade(container: Container) -> str | None:
    await migrate.upgrade(container.db)
    return await migrate.current_revision(container.db)


@db.command()
def current() -> None:
    """Show the database's schema revision and the one this version needs."""
    revision = _run(_settings(), lambda c: migrate.current_revision(c.db), prepare=False)
    click.echo(f"database: {revision or 'empty'}; needed: {migrate.head_revision()}")


@main.group()
def apikey() -> None:
    """API keys for point-of-sale systems, the member app, marketers and admins."""


@apikey.command("create")
@click.option("--name", required=True, help="Who or what uses the key, e.g. 'store-042 till'.")
@click.option("--role", required=True, type=click.Choice([role.value for role in Role]))
def apikey_create(name: str, role: str) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    issued = _run(_settings(), lambda c: c.api_keys.create(name, role))
    click.echo(f"id:   {issued.key.id}", err=True)
    click.echo(f"role: {issued.key.role.value}", err=True)
    click.echo("key (shown once, store it now):", err=True)
    click.echo(issued.secret)


@apikey.command("list")
def apikey_list() -> None:
    """List keys (never their secrets)."""
    for key in _run(_settings(), lambda c: c.api_keys.list()):
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        click.echo(f"{key.id}\t{key.prefix}…\t{key.role.value}\t{state}\t{key.name}")


@apikey.command("revoke")
@click.argument("key_id", type=int)
def apikey_revoke(key_id: int) -> None:
    """Revoke a key by id (see `loyalty apikey list`)."""
    key = _run(_settings(), lambda c: c.api_keys.revoke(key_id))
    click.echo(f"revoked key {key.id} ({key.name})")
