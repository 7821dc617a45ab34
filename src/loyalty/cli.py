"""The `loyalty` command: serve, migrate, manage API keys and the programme."""

from __future__ import annotations

import asyncio
import getpass
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import click
import structlog

from loyalty.auth.keys import Role
from loyalty.bootstrap import Container
from loyalty.clock import Clock, FixedClock
from loyalty.db import migrate
from loyalty.errors import LoyaltyError
from loyalty.ledger import importer
from loyalty.ledger.audit import verify
from loyalty.ledger.batch import MAX_EVENTS
from loyalty.logging import configure_logging
from loyalty.program.model import ValidationReport
from loyalty.program.service import check_program
from loyalty.rules import Diagnostic, compile_program, read_program_files
from loyalty.scheduler.model import JOBS
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
    settings: Settings,
    work: Callable[[Container], Awaitable[T]],
    *,
    prepare: bool = True,
    clock: Clock | None = None,
) -> T:
    async def main() -> T:
        container = Container(settings, clock=clock)
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
@click.option(
    "--scheduler",
    "with_scheduler",
    is_flag=True,
    help="Also run the scheduler's jobs in the server (each worker; jobs are locked).",
)
def serve(host: str | None, port: int | None, workers: int | None, with_scheduler: bool) -> None:
    """Run the HTTP API server.

    A brand-new embedded SQLite database is created on first start; any other
    database must be migrated first with `loyalty db upgrade`.
    """
    import uvicorn

    settings = _settings()
    _run(settings, lambda _: asyncio.sleep(0))
    factory = "create_app_with_scheduler" if with_scheduler else "create_app"
    uvicorn.run(
        f"loyalty.api.app:{factory}",
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


@main.group()
def program() -> None:
    """The loyalty programme: check, test and publish YAML files."""


def _checked(path: str) -> ValidationReport:
    report = check_program(lambda: compile_program(path))[1]
    if report.diagnostics:
        _print_diagnostics(report.diagnostics)
        raise SystemExit(1)
    return report


def _print_diagnostics(diagnostics: list[Diagnostic]) -> None:
    for diagnostic in diagnostics:
        click.echo(str(diagnostic))
    click.echo(f"{len(diagnostics)} error(s)", err=True)


@program.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def program_check(file: str) -> None:
    """Validate FILE: every error with file, line and column. Exit 1 on any."""
    report = _checked(file)
    click.echo(
        f"ok: programme {report.program_id!r}, {report.rules} rules, {len(report.tests)} tests"
    )


@program.command("test")
@click.argument("file", type=click.Path(dir_okay=False))
def program_test(file: str) -> None:
    """Run the programme's own `tests:` cases. Exit 1 if any fails."""
    report = _checked(file)
    for test in report.tests:
        click.echo(test.report())
    failed = sum(not test.passed for test in report.tests)
    click.echo(f"programme tests: {len(report.tests) - failed} passed, {failed} failed")
    if failed:
        raise SystemExit(1)


@program.command("publish")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--activate-at", type=click.DateTime(), help="UTC time to activate (default: now).")
@click.option("--note", help="Why this version (shown in the version list).")
def program_publish(file: str, activate_at: datetime | None, note: str | None) -> None:
    """Validate, test and publish FILE as a new programme version."""
    report = _checked(file)
    failed = [test for test in report.tests if not test.passed]
    for test in failed:
        click.echo(test.report())
    if failed:
        raise click.ClickException(f"program_tests_failed: {len(failed)} test(s) failed")
    files, main_file = read_program_files(file)
    when = activate_at.replace(tzinfo=UTC) if activate_at else None
    actor = f"cli:{getpass.getuser()}"
    version, created = _run(
        _settings(),
        lambda c: c.programs.publish(files, main_file, actor=actor, activates_at=when, note=note),
    )
    state = "published" if created else "unchanged, already published"
    click.echo(
        f"version {version.version} {state}; active from {version.activates_at:%Y-%m-%d %H:%M} UTC"
    )


@program.command("versions")
def program_versions() -> None:
    """List published versions, newest first."""
    page = _run(_settings(), lambda c: c.programs.list(limit=200))
    for v in page.items:
        click.echo(
            f"{v.version}\t{v.activates_at:%Y-%m-%d %H:%M}\t{v.content_hash[:12]}\t"
            f"{v.published_by}\t{v.note or ''}"
        )


@program.command("rollback")
@click.argument("version", type=int)
def program_rollback(version: int) -> None:
    """Make VERSION active again, now (recorded as a new version)."""
    actor = f"cli:{getpass.getuser()}"
    new = _run(_settings(), lambda c: c.programs.rollback(version, actor=actor))
    click.echo(f"version {new.version} published: a copy of version {version}, active now")


@main.group()
def ledger() -> None:
    """The points ledger: audit, vesting and expiry."""


@ledger.command("verify")
def ledger_verify() -> None:
    """Recompute balances and transaction sums from the entries; exit 1 on any drift."""
    report = _run(_settings(), lambda c: verify(c.db))
    for txn in report.unbalanced_transactions:
        click.echo(f"transaction {txn}: entries do not sum to zero")
    for drift in report.drift:
        stored, computed = drift.stored, drift.computed
        click.echo(f"member {drift.member}: {drift.what} stored {stored}, entries say {computed}")
    problems = len(report.unbalanced_transactions) + len(report.drift)
    click.echo(
        f"checked {report.transactions} transactions, {report.members} members: drift {problems}"
    )
    if problems:
        raise SystemExit(1)


@ledger.command("vest")
def ledger_vest() -> None:
    """Make pending points whose vest date has passed available."""
    points = _run(_settings(), lambda c: c.ledger_jobs.vest_due())
    click.echo(f"vested {points} points")


@ledger.command("release-holds")
def ledger_release_holds() -> None:
    """Release redemption holds past their time (the scheduler will)."""
    count = _run(_settings(), lambda c: c.redemptions.release_expired())
    click.echo(f"released {count} expired holds")


@ledger.command("expire")
def ledger_expire() -> None:
    """Expire available points past their lot's expiry date."""
    points = _run(_settings(), lambda c: c.ledger_jobs.expire_due())
    click.echo(f"expired {points} points")


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--batch-size",
    default=importer.DEFAULT_BATCH,
    show_default=True,
    type=click.IntRange(1, MAX_EVENTS),
    help="Events per batch (each batch is saved as done before the next).",
)
@click.option("--restart", is_flag=True, help="Start again from the first line.")
def import_events(file: Path, batch_size: int, restart: bool) -> None:
    """Import events from FILE, one JSON event per line (history backfills).

    Resumes where an interrupted run stopped; lines already imported are never
    counted twice. Refused lines go to FILE.import-errors.jsonl.
    """
    with click.progressbar(
        length=file.stat().st_size, label=f"importing {file.name}", file=sys.stderr
    ) as bar:
        state = _run(
            _settings(),
            lambda c: importer.import_file(
                c.batches, file, batch_size=batch_size, restart=restart, progress=bar.update
            ),
        )
    click.echo(
        f"{file.name}: {state.line} lines, {state.recorded} recorded, "
        f"{state.replayed} already there, {state.failed} refused"
    )
    if state.failed:
        raise click.ClickException(
            f"{state.failed} line(s) refused: see {importer.errors_path(file).name}"
        )


@main.command()
@click.option("--members", default=200, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--days", default=28, show_default=True, type=click.IntRange(1, 366))
@click.option("--seed", default=7, show_default=True, help="Same seed, same data.")
def demo(members: int, days: int, seed: int) -> None:
    """Seed the database with fake members and DAYS of Tea House activity up to now.

    Publishes examples/tea-house.yaml if no programme is active. Run it again to
    add more members.
    """
    # Faker is slow to import; only this command needs it.
    from loyalty.demo import run_demo, summary

    settings = _settings()
    result = _run(
        settings,
        lambda c: run_demo(c, members_count=members, days=days, seed=seed),
        clock=FixedClock(datetime.now(UTC)),
    )
    for line in summary(result, f"http://{settings.host}:{settings.port}"):
        click.echo(line)


@main.group()
def tiers() -> None:
    """Membership tiers."""


@tiers.command("review")
def tiers_review() -> None:
    """Review members whose tier or manual tier has ended (the scheduler will)."""
    summary = _run(_settings(), lambda c: c.tiers.review())
    click.echo(
        f"reviewed {summary.reviewed}: {summary.changed} changed, {summary.graced} in grace, "
        f"{summary.manual_ended} manual tiers ended"
    )


@main.group(invoke_without_command=True)
@click.pass_context
def scheduler(ctx: click.Context) -> None:
    """Run the scheduled jobs on their cron timings until SIGTERM or Ctrl-C.

    Timings come from the active programme's `scheduled.jobs`; several instances may
    run against one PostgreSQL database (each job runs on one at a time).
    """
    if ctx.invoked_subcommand is None:
        _run(_settings(), _scheduler_loop)


async def _scheduler_loop(container: Container) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    await container.scheduler.loop(stop)


def _progress_line(job: str) -> Callable[[int], None]:
    """A progress line on a terminal: members read so far, rewritten in place."""
    seen = 0

    def advance(members: int) -> None:
        nonlocal seen
        seen += members
        click.echo(f"\r{job}: {seen} members read", nl=False, err=True)

    return advance


@scheduler.command("run")
@click.argument("job", type=click.Choice(JOBS))
@click.option(
    "--date",
    "day",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    help="Run as of this UTC time (a date alone: its last second). Default: now.",
)
@click.option("--dry-run", is_flag=True, help="Show what the job would do; write nothing.")
def scheduler_run(job: str, day: datetime | None, dry_run: bool) -> None:
    """Run JOB once now and print what it did (or would do)."""
    at = None
    if day is not None:
        at = day.replace(tzinfo=UTC)
        if day.hour == day.minute == day.second == 0 and day.microsecond == 0:
            at += timedelta(days=1, seconds=-1)
        if at > datetime.now(UTC) + timedelta(days=1):
            raise click.UsageError("--date cannot be in the future")
    progress = _progress_line(job) if sys.stderr.isatty() else None
    result = _run(
        _settings(), lambda c: c.scheduler.run(job, at, dry_run=dry_run, progress=progress)
    )
    if progress is not None:
        click.echo(err=True)
    if not result.ran:
        click.echo(f"{job}: skipped, running on another instance")
        return
    done = ", ".join(f"{name} {value}" for name, value in sorted(result.counts.items()))
    verb = "would do" if dry_run else "did"
    click.echo(f"{job} {verb}: {done or 'nothing'}")
    if result.error:
        raise click.ClickException(f"{job} failed: {result.error}")
