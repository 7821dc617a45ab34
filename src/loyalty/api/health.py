"""Liveness and readiness probes: public, cheap, no personal data."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.datastructures import State
from sqlalchemy.exc import SQLAlchemyError

from loyalty.api.problems import problem
from loyalty.bootstrap import Container
from loyalty.db.migrate import SchemaOutOfDate, ensure_current


@get("/health/live", include_in_schema=True, tags=["health"])
async def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/health/ready", tags=["health"])
async def ready(state: State) -> Response[dict[str, Any]]:
    container: Container = state.container
    try:
        await ensure_current(container.db)
    except SchemaOutOfDate as exc:
        return problem(503, exc.code, exc.detail)
    except (SQLAlchemyError, OSError) as exc:
        return problem(503, "database_unreachable", f"database not reachable: {type(exc).__name__}")
    return Response({"status": "ok", "database": container.db.dialect})
