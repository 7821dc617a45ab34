"""The Litestar application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from loyalty import __version__
from loyalty.api.api_keys import ApiKeyController
from loyalty.api.batch import EventBatchController
from loyalty.api.health import live, ready
from loyalty.api.jobs import JobController
from loyalty.api.ledger import EventController, PointsController
from loyalty.api.members import MemberController
from loyalty.api.problems import EXCEPTION_HANDLERS
from loyalty.api.program import ProgramController
from loyalty.api.redemptions import RedemptionController
from loyalty.api.reports import ReportController
from loyalty.api.request_log import RequestLogMiddleware
from loyalty.api.rewards import CouponController, RewardController
from loyalty.api.security import ApiKeyAuthentication, require_role
from loyalty.api.tiers import NotificationController, ReferralController, TierController
from loyalty.auth.service import ApiKeyService
from loyalty.bootstrap import Container
from loyalty.db.migrate import ensure_current
from loyalty.ledger.backtest import Backtester
from loyalty.ledger.batch import BatchService
from loyalty.ledger.events import EventService
from loyalty.ledger.redemptions import RedemptionService
from loyalty.ledger.reports import ReportService
from loyalty.ledger.service import LedgerService
from loyalty.logging import configure_logging
from loyalty.members.service import MemberService
from loyalty.program.service import ProgramService
from loyalty.referrals.service import ReferralService
from loyalty.rewards.service import RewardService
from loyalty.scheduler.service import Scheduler
from loyalty.settings import Settings
from loyalty.tiers.service import TierService

log = structlog.get_logger("loyalty.app")


def create_app_with_scheduler() -> Litestar:
    """`loyalty serve --scheduler`: the app, with the scheduler's loop in the background."""
    return create_app(with_scheduler=True)


def create_app(container: Container | None = None, *, with_scheduler: bool = False) -> Litestar:
    """Build the app; with no container, settings come from the environment."""
    if container is None:
        settings = Settings.from_env()
        configure_logging(settings.log_level, settings.log_format)
        container = Container(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            await ensure_current(container.db)
        except Exception as exc:
            log.error("startup_refused", reason=str(exc))
            raise
        log.info("started", database=container.db.dialect, version=__version__)
        # One loop per worker: the jobs' locks keep the workers from doubling up.
        stop = asyncio.Event()
        loop = asyncio.create_task(container.scheduler.loop(stop)) if with_scheduler else None
        try:
            yield
        finally:
            if loop is not None:
                stop.set()
                await loop
            await container.close()

    v1 = Router(
        path="/v1",
        route_handlers=[
            MemberController,
            ApiKeyController,
            ProgramController,
            EventController,
            EventBatchController,
            PointsController,
            TierController,
            ReferralController,
            NotificationController,
            ReportController,
            RedemptionController,
            RewardController,
            CouponController,
            JobController,
        ],
        # OPTIONS too: this is a server-to-server API with no browser preflight to serve.
        middleware=[DefineMiddleware(ApiKeyAuthentication, exclude_http_methods=[])],
        guards=[require_role],
    )
    app = Litestar(
        route_handlers=[live, ready, v1],
        state=State({"container": container}),
        dependencies={
            "members": Provide(_members, sync_to_thread=False),
            "api_keys": Provide(_api_keys, sync_to_thread=False),
            "programs": Provide(_programs, sync_to_thread=False),
            # Not "events": Litestar reports a body field named like a dependency as a
            # server error, and the batch body has an `events` field.
            "event_service": Provide(_events, sync_to_thread=False),
            "batches": Provide(_batches, sync_to_thread=False),
            "ledger": Provide(_ledger, sync_to_thread=False),
            "backtester": Provide(_backtester, sync_to_thread=False),
            "tiers": Provide(_tiers, sync_to_thread=False),
            "referrals": Provide(_referrals, sync_to_thread=False),
            "redemptions": Provide(_redemptions, sync_to_thread=False),
            "rewards": Provide(_rewards, sync_to_thread=False),
            "reports": Provide(_reports, sync_to_thread=False),
            "scheduler": Provide(_scheduler, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="Loyalty engine",
            version=__version__,
            path="/schema",
            components=Components(
                security_schemes={"ApiKey": SecurityScheme(type="http", scheme="bearer")}
            ),
            security=[{"ApiKey": []}],
        ),
        logging_config=None,
    )
    # Outside Litestar's exception handling, so that error responses and unmatched
    # routes also get a request id and their log line (app middleware sees neither).
    app.asgi_handler = RequestLogMiddleware(app.asgi_handler)
    return app


def _members(state: State) -> MemberService:
    container: Container = state.container
    return container.members


def _api_keys(state: State) -> ApiKeyService:
    container: Container = state.container
    return container.api_keys


def _programs(state: State) -> ProgramService:
    container: Container = state.container
    return container.programs


def _events(state: State) -> EventService:
    container: Container = state.container
    return container.events


def _batches(state: State) -> BatchService:
    container: Container = state.container
    return container.batches


def _ledger(state: State) -> LedgerService:
    container: Container = state.container
    return container.ledger


def _reports(state: State) -> ReportService:
    container: Container = state.container
    return container.reports


def _backtester(state: State) -> Backtester:
    container: Container = state.container
    return container.backtester


def _tiers(state: State) -> TierService:
    container: Container = state.container
    return container.tiers


def _referrals(state: State) -> ReferralService:
    container: Container = state.container
    return container.referrals


def _redemptions(state: State) -> RedemptionService:
    container: Container = state.container
    return container.redemptions


def _rewards(state: State) -> RewardService:
    container: Container = state.container
    return container.rewards


def _scheduler(state: State) -> Scheduler:
    container: Container = state.container
    return container.scheduler
