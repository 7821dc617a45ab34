"""Backtest: replay stored events through a draft programme; write nothing.

Each event of the window is judged again by the draft, with the member as they are
today, and compared rule by rule with the points the ledger actually recorded for
it. Caps are judged against the draft's own replay of the window (its counters
start at zero), so the comparison shows what the draft would have given.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import msgspec
from sqlalchemy import func, select

from loyalty.db.engine import Database
from loyalty.db.schema import events, ledger_entries, ledger_transactions, members
from loyalty.errors import FieldError, InvalidInput
from loyalty.ledger.accounts import Account
from loyalty.ledger.events import engine_event
from loyalty.ledger.model import EventIn
from loyalty.members.judging import member_input
from loyalty.program.model import BacktestWindow, SimulateRequest
from loyalty.program.service import ProgramService
from loyalty.rules import CounterKey, Program
from loyalty.tiers.ladder import Ladder
from loyalty.tiers.service import effective_tier


class RuleDelta(msgspec.Struct, frozen=True, kw_only=True):
    rule_id: str
    recorded: int
    draft: int
    delta: int


class BacktestResult(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime
    end: datetime
    events: int
    truncated: bool
    recorded_points: int
    draft_points: int
    points_delta: int
    rules: list[RuleDelta]


class Backtester:
    def __init__(self, db: Database, programs: ProgramService) -> None:
        self._db = db
        self._programs = programs

    async def run(self, request: SimulateRequest) -> BacktestResult:
        assert request.backtest is not None
        draft = await self._programs.draft_or_active(request)
        return await backtest(self._db, draft, request.backtest)


async def backtest(db: Database, draft: Program, window: BacktestWindow) -> BacktestResult:
    if window.end <= window.start:
        raise InvalidInput.from_fields(
            [FieldError("backtest.end", "invalid_range", "end must be after start")]
        )
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(events.c.id, events.c.payload, members)
                .join(members, members.c.id == events.c.member_id)
                .where(
                    events.c.kind != "refund",
                    events.c.occurred_at >= window.start,
                    events.c.occurred_at < window.end,
                )
                .order_by(events.c.occurred_at, events.c.id)
                .limit(window.limit + 1)
            )
        ).all()
        ids = [row.id for row in rows[: window.limit]]
        recorded: dict[str, int] = defaultdict(int)
        if ids:
            credited = await conn.execute(
                select(ledger_entries.c.rule_id, func.sum(ledger_entries.c.amount))
                .join(ledger_transactions, ledger_transactions.c.id == ledger_entries.c.txn_id)
                .where(
                    ledger_transactions.c.event_id.in_(ids),
                    ledger_transactions.c.kind == "earn",
                    ledger_entries.c.account.in_([Account.AVAILABLE, Account.PENDING]),
                )
                .group_by(ledger_entries.c.rule_id)
            )
            recorded.update({rule: int(points) for rule, points in credited if rule})
    ladder = Ladder(tuple(draft.spec.tiers))
    drafted: dict[str, int] = defaultdict(int)
    counters: dict[CounterKey, int] = defaultdict(int)
    for row in rows[: window.limit]:
        event = engine_event(msgspec.convert(row.payload, EventIn))
        member = member_input(row, effective_tier(row, ladder, window.end))
        result = draft.evaluate(event, member, counters)
        for increment in result.counter_increments:
            counters[increment.key] += increment.amount
        for award in result.awards:
            drafted[award.rule_id] += award.points
    rules = [
        RuleDelta(
            rule_id=rule,
            recorded=recorded[rule],
            draft=drafted[rule],
            delta=drafted[rule] - recorded[rule],
        )
        for rule in sorted(set(recorded) | set(drafted))
    ]
    total_recorded, total_draft = sum(recorded.values()), sum(drafted.values())
    return BacktestResult(
        start=window.start,
        end=window.end,
        events=len(ids),
        truncated=len(rows) > window.limit,
        recorded_points=total_recorded,
        draft_points=total_draft,
        points_delta=total_draft - total_recorded,
        rules=rules,
    )
