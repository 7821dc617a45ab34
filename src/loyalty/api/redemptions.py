"""/v1/redemptions: two-phase holds at the till."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from loyalty.api.ledger import REPLAY_HEADER, IdempotencyKey
from loyalty.api.params import RowId
from loyalty.api.security import allow
from loyalty.auth.keys import Principal, Role
from loyalty.ledger.redemptions import CommitIn, HoldIn, RedemptionOut, RedemptionService

TILL = allow(Role.POS, Role.APP)


class RedemptionController(Controller):
    path = "/redemptions"
    tags = ["redemptions"]

    @post(opt=TILL)
    async def reserve(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[HoldIn],
        redemptions: NamedDependency[RedemptionService],
        idempotency_key: IdempotencyKey,
    ) -> Response[RedemptionOut]:
        """Hold points (`points`, as payment) or a catalog reward (`reward_id`) until
        `hold_seconds` pass; then commit or cancel it. Idempotent like /v1/events."""
        out, created = await redemptions.reserve(request.user, idempotency_key, data)
        return Response(out, status_code=201, headers={} if created else {REPLAY_HEADER: "true"})

    @get("/{redemption_id:int}", opt=TILL)
    async def read(
        self, redemption_id: RowId, redemptions: NamedDependency[RedemptionService]
    ) -> RedemptionOut:
        return await redemptions.get(redemption_id)

    @post("/{redemption_id:int}/commit", status_code=200, opt=TILL)
    async def commit(
        self,
        redemption_id: RowId,
        data: JSONBody[CommitIn],
        redemptions: NamedDependency[RedemptionService],
    ) -> RedemptionOut:
        """Capture the hold, or `points` of it (the rest is released). Once only."""
        return await redemptions.commit(redemption_id, data.points)

    @post("/{redemption_id:int}/cancel", status_code=200, opt=TILL)
    async def cancel(
        self, redemption_id: RowId, redemptions: NamedDependency[RedemptionService]
    ) -> RedemptionOut:
        """Release the hold: the points return to the lots they came from."""
        return await redemptions.cancel(redemption_id)
