"""/v1/events/batch: up to 1,000 events in one request, each with its own result."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from loyalty.api.problems import error_body
from loyalty.api.request_log import add_log_fields
from loyalty.api.security import allow
from loyalty.auth.keys import Principal, Role
from loyalty.ledger.batch import MAX_EVENTS, BatchService, ItemResult


class BatchIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`events`: each one an event as posted to /v1/events plus its `idempotency_key`."""

    # Read one by one by the service, so that a malformed event fails alone.
    events: Annotated[list[Any], msgspec.Meta(min_length=1, max_length=MAX_EVENTS)]


class BatchItemOut(msgspec.Struct, frozen=True, omit_defaults=True):
    index: int
    idempotency_key: str | None
    status: int
    replay: bool = False
    outcome: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None


class BatchOut(msgspec.Struct, frozen=True):
    recorded: int
    replayed: int
    failed: int
    results: list[BatchItemOut]


class EventBatchController(Controller):
    path = "/events/batch"
    tags = ["events"]

    @post(opt=allow(Role.POS, Role.APP), status_code=200)
    async def record_batch(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[BatchIn],
        batches: NamedDependency[BatchService],
    ) -> BatchOut:
        """Post up to 1,000 events, each with its own `idempotency_key`.

        Every event succeeds or fails on its own, with the status and body it would
        get from POST /v1/events (a replay is marked `replay: true`); the response is
        200 whenever the batch itself was readable.
        """
        results = await batches.record_many(request.user, data.events)
        items = [_item(result) for result in results]
        replayed = sum(item.replay for item in items)
        failed = sum(item.problem is not None for item in items)
        recorded = len(items) - replayed - failed
        add_log_fields(request.scope, recorded=recorded, replayed=replayed, failed=failed)
        return BatchOut(recorded, replayed, failed, items)


def _item(result: ItemResult) -> BatchItemOut:
    if result.recorded is not None:
        return BatchItemOut(
            result.index,
            result.key,
            result.recorded.status,
            replay=result.recorded.replay,
            outcome=result.recorded.body,
        )
    assert result.error is not None
    problem = error_body(result.error)
    return BatchItemOut(result.index, result.key, problem["status"], problem=problem)
