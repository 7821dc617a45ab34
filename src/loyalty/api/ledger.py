"""/v1/events (ingestion) and a member's points: adjustments, balance, history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody

from loyalty.api.security import allow
from loyalty.auth.keys import Principal, Role
from loyalty.ledger.events import EventService
from loyalty.ledger.model import (
    AdjustmentIn,
    AdjustmentOut,
    BalanceView,
    EventIn,
    EventOutcome,
    LedgerPage,
)
from loyalty.ledger.service import LedgerService

REPLAY_HEADER = "Idempotent-Replay"
IdempotencyKey = Annotated[
    str,
    HeaderParameter(
        name="Idempotency-Key",
        description="Required: one key per business event (retries reuse it).",
        min_length=1,
        max_length=200,
    ),
]


class EventController(Controller):
    path = "/events"
    tags = ["events"]

    @post(opt=allow(Role.POS, Role.APP))
    async def record(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[EventIn],
        event_service: NamedDependency[EventService],
        idempotency_key: IdempotencyKey,
    ) -> Response[Any]:
        """Post a purchase, refund, signup, referral or custom event.

        Retrying with the same Idempotency-Key and body returns the stored outcome
        (header Idempotent-Replay: true); the same key with another body is a 409.
        """
        recorded = await event_service.record(request.user, idempotency_key, data)
        headers = {REPLAY_HEADER: "true"} if recorded.replay else {}
        return Response(recorded.body, status_code=recorded.status, headers=headers)


class PointsController(Controller):
    path = "/members/{member_id:str}"
    tags = ["points"]

    @post("/adjustments", opt=allow(Role.MARKETER))
    async def adjust(
        self,
        request: Request[Principal, Any, Any],
        member_id: FromPath[str],
        data: JSONBody[AdjustmentIn],
        ledger: NamedDependency[LedgerService],
    ) -> AdjustmentOut:
        """Manual credit (points > 0) or debit (points < 0), recorded with who did it."""
        return await ledger.adjust(member_id, data, request.user)

    @get("/balance", opt=allow(Role.POS, Role.APP, Role.MARKETER))
    async def balance(
        self,
        member_id: FromPath[str],
        ledger: NamedDependency[LedgerService],
        as_of: FromQuery[datetime | None] = None,
    ) -> BalanceView:
        """Available, pending (with vest dates), held, lifetime figures and points
        expiring within 30/60/90 days; `as_of` gives the balances at a past moment."""
        return await ledger.balance(member_id, as_of)

    @get("/ledger", opt=allow(Role.APP, Role.MARKETER))
    async def history(
        self,
        member_id: FromPath[str],
        ledger: NamedDependency[LedgerService],
        limit: FromQuery[int] = 50,
        after: FromQuery[str | None] = None,
    ) -> LedgerPage:
        """Points history, newest first: each transaction with its entries."""
        return await ledger.history(member_id, limit, after)


__all__ = ["EventController", "EventOutcome", "PointsController"]
