"""The Litestar application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

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
from loyalty.bootstrap import Container
from loyalty.db.migrate import ensure_current
from loyalty.logging import configure_logging
from loyalty.settings import Settings

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
        # Each controller asks for a container service by name. Not "events" for the
        # event service: Litestar reports a body field named like a dependency as a
        # server error, and the batch body has an `events` field.
        dependencies={
            name: _service(attribute)
            for name, attribute in {
                "members": "members",
                "api_keys": "api_keys",
                "programs": "programs",
                "event_service": "events",
                "batches": "batches",
                "ledger": "ledger",
                "backtester": "backtester",
                "tiers": "tiers",
                "referrals": "referrals",
                "redemptions": "redemptions",
                "rewards": "rewards",
                "reports": "reports",
                "scheduler": "scheduler",
            }.items()
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


def _service(attribute: str) -> Provide:
    """A dependency that hands out one of the container's services."""

    def provide(state: State) -> Any:
        return getattr(state.container, attribute)

    return Provide(provide, sync_to_thread=False)
