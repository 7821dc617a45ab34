"""A request id on every response and one structured log line per request.

The line carries method, route path, status, duration and the calling key, never
the query string or body: lookups by email or phone would put personal data there.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, cast

import structlog
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

log = structlog.get_logger("loyalty.request")
# Where a handler leaves extra outcome fields for the request's log line.
_EXTRA = "loyalty.log_fields"


def add_log_fields(scope: Scope, **fields: int | str) -> None:
    """Add outcome fields (counts, never personal data) to this request's log line."""
    _extra(scope).update(fields)


def _extra(scope: Scope) -> dict[str, int | str]:
    fields: dict[str, int | str] = cast(dict[str, Any], scope).setdefault(_EXTRA, {})
    return fields


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            user = scope.get("user")
            log.info(
                "request",
                request_id=request_id,
                method=scope.get("method"),
                # The route's template, not the path: paths carry member ids and
                # coupon codes.
                path=scope.get("path_template", scope["path"]),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                api_key_id=getattr(user, "key_id", None),
                role=getattr(user, "role", None),
                **_extra(scope),
            )
            structlog.contextvars.unbind_contextvars("request_id")


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SAFE_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex
