"""Event ingestion: exactly once per idempotency key, one database transaction each.

Order of work inside the transaction: claim the idempotency key first (a concurrent
duplicate waits on the unique index and then replays), lock the member's balance row,
judge the event with the programme version in force when it occurred, write the
ledger, store the response for replays.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    String,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from loyalty.auth.keys import Principal
from loyalty.clock import Clock
from loyalty.db.engine import Database, dialect_insert, insert_ignoring
from loyalty.db.schema import balances, events, lots, members, orders, rule_usage
from loyalty.db.types import UtcDateTime
from loyalty.errors import Conflict, FieldError, InvalidInput, NotFound
from loyalty.ledger import book
from loyalty.ledger import redemptions as payments
from loyalty.ledger.accounts import Account
from loyalty.ledger.model import AwardOut, EventIn, EventOutcome
from loyalty.ledger.posting import LotView, Posting, allocate, clawback_share, expiry_for
from loyalty.members.judging import member_input
from loyalty.members.validation import new_referral_code
from loyalty.program.service import ProgramService
from loyalty.referrals import service as referrals
from loyalty.rules import CounterKey, Evaluation, EventInput, LineItem, Program
from loyalty.tiers.ladder import Ladder
from loyalty.tiers.service import TierService, effective_tier

# Tills' clocks drift; an event from further in the future than this is refused.
FUTURE_SKEW = timedelta(minutes=5)
_ENCODER = msgspec.json.Encoder(order="deterministic")

# The statements of every event, built once (per dialect where ON CONFLICT is spelt
# by the dialect's own insert): a statement built per call has its cache key
# generated again on every execution. Values come as execution parameters.
_CLAIM_EVENT = insert_ignoring(events, ["source_key_id", "idempotency_key"], events.c.id)
_INSERT_ORDER = insert_ignoring(orders, ["member_id", "order_id"], orders.c.id)
_STORE_RESPONSE = (
    update(events)
    .where(events.c.id == bindparam("b_event", type_=BigInteger()))
    .values(
        member_id=bindparam("b_member", type_=BigInteger()),
        status_code=bindparam("b_status", type_=Integer()),
        response=bindparam("b_response", type_=events.c.response.type),
    )
)
_STORED = select(events.c.request_hash, events.c.status_code, events.c.response).where(
    events.c.source_key_id == bindparam("b_source", type_=BigInteger()),
    events.c.idempotency_key == bindparam("b_key", type_=String()),
)
_SET_TAGS = (
    update(members)
    .where(members.c.id == bindparam("b_member", type_=BigInteger()))
    .values(tags=bindparam("b_tags", type_=members.c.tags.type))
)
_INSERT_USAGE = insert(rule_usage)


# (sums points, member's own, has a window start, has a window end)
_CounterShape = tuple[bool, bool, bool, bool]


def _counter_shape(key: CounterKey) -> _CounterShape:
    return (
        key.unit == "points",
        key.scope == "member",
        key.window_start is not None,
        key.window_end is not None,
    )


@functools.lru_cache(maxsize=256)
def _counters_statement(shapes: tuple[_CounterShape, ...]) -> CompoundSelect[Any]:
    """One UNION ALL reading every counter of an event, built once per combination
    of counter shapes; parameters b_member and b_rule_N, b_start_N, b_end_N."""
    selects = []
    for index, (points, own, start, end) in enumerate(shapes):
        measure: ColumnElement[Any] = func.count(rule_usage.c.id)
        if points:
            measure = func.coalesce(func.sum(rule_usage.c.points), 0)
        statement: Select[Any] = select(
            literal_column(str(index)).label("i"), measure.label("v")
        ).where(rule_usage.c.rule_id == bindparam(f"b_rule_{index}", type_=String()))
        if own:
            statement = statement.where(
                rule_usage.c.member_id == bindparam("b_member", type_=BigInteger())
            )
        if start:
            statement = statement.where(
                rule_usage.c.at >= bindparam(f"b_start_{index}", type_=UtcDateTime())
            )
        if end:
            statement = statement.where(
                rule_usage.c.at < bindparam(f"b_end_{index}", type_=UtcDateTime())
            )
        selects.append(statement)
    return union_all(*selects)


@dataclass(frozen=True)
class Prepared:
    """An event checked and ready to record: its key, fingerprint and programme."""

    key: str
    event: EventIn
    request_hash: str
    version: int
    program: Program


@dataclass(frozen=True)
class Recorded:
    status: int
    body: dict[str, Any]
    replay: bool


class EventService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        programs: ProgramService,
        tiers: TierService,
        *,
        enrol_unknown: bool = False,
    ) -> None:
        self._db = db
        self._clock = clock
        self._programs = programs
        self._tiers = tiers
        self._enrol_unknown = enrol_unknown

    async def _enrol(self, conn: AsyncConnection, member_id: str, now: datetime) -> None:
        """Enrol an unknown member in the event's own transaction (a no-op if known)."""
        row = await conn.scalar(
            dialect_insert(self._db, members)
            .values(
                member_id=member_id,
                referral_code=new_referral_code(),
                status="active",
                timezone="UTC",
                marketing_consent=False,
                attributes={},
                tags=[],
                joined_at=now,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["member_id"])
            .returning(members.c.id)
        )
        if row is not None:
            await conn.execute(insert(balances).values(book.new_balance_row(row, now)))

    async def record(self, source: Principal, key: str, event: EventIn) -> Recorded:
        """Record one event in its own transaction."""
        prepared = await self.prepare(key, event)
        async with self._db.write() as conn:
            return await self.record_in(conn, source, prepared)

    async def prepare(self, key: str, event: EventIn) -> Prepared:
        """What can be checked before any database write: the key, the time, the
        amounts; the request's fingerprint and the programme in force when it occurred."""
        if not 1 <= len(key) <= 200:
            raise InvalidInput.from_fields(
                [FieldError("Idempotency-Key", "invalid", "1-200 characters required")]
            )
        if event.occurred_at > self._clock.now() + FUTURE_SKEW:
            raise InvalidInput.from_fields(
                [FieldError("occurred_at", "in_the_future", "occurred_at is in the future")]
            )
        _check_shape(event)
        _check_amounts(event)
        request_hash = hashlib.sha256(_ENCODER.encode(event)).hexdigest()
        version, program = await self._programs.active(event.occurred_at, earliest_if_before=True)
        return Prepared(key, event, request_hash, version.version, program)

    async def record_in(
        self, conn: AsyncConnection, source: Principal, prepared: Prepared
    ) -> Recorded:
        """Record a prepared event inside the caller's open write transaction."""
        event, key, request_hash = prepared.event, prepared.key, prepared.request_hash
        now = self._clock.now()
        event_id = await conn.scalar(
            _CLAIM_EVENT[self._db.dialect],
            {
                "source_key_id": source.key_id,
                "idempotency_key": key,
                "request_hash": request_hash,
                "kind": event.type,
                "order_id": event.order_id,
                "occurred_at": event.occurred_at,
                "recorded_at": now,
                "program_version": prepared.version,
                "payload": msgspec.to_builtins(event),
            },
        )
        if event_id is None:
            return await _replay(conn, source.key_id, key, request_hash)
        if self._enrol_unknown:
            await self._enrol(conn, event.member_id, now)
        member = await book.lock_member(conn, event.member_id)
        judge = _Judge(
            self._db,
            self._tiers,
            conn,
            prepared.program,
            prepared.version,
            member,
            event,
            event_id,
            now,
        )
        outcome = await (judge.refund() if event.type == "refund" else judge.earn())
        body = msgspec.to_builtins(outcome)
        await conn.execute(
            _STORE_RESPONSE,
            {"b_event": event_id, "b_member": member.id, "b_status": 201, "b_response": body},
        )
        return Recorded(201, body, replay=False)


async def _replay(conn: AsyncConnection, source: int, key: str, request_hash: str) -> Recorded:
    row = (await conn.execute(_STORED, {"b_source": source, "b_key": key})).one()
    if row.request_hash != request_hash:
        raise Conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was already used with a different request body",
        )
    return Recorded(row.status_code, row.response, replay=True)


class _Judge:
    """One event's work inside the open transaction."""

    def __init__(
        self,
        db: Database,
        tiers: TierService,
        conn: AsyncConnection,
        program: Program,
        version: int,
        member: book.LockedMember,
        event: EventIn,
        event_id: int,
        now: Any,
    ) -> None:
        self.tiers = tiers
        self.db = db
        self.conn = conn
        self.program = program
        self.version = version
        self.member = member
        self.event = event
        self.event_id = event_id
        self.posting = Posting(at=now)

    async def earn(self) -> EventOutcome:
        event, member = self.event, self.member
        judged = engine_event(event)
        ladder = Ladder(tuple(self.program.spec.tiers))
        who = member_input(member, effective_tier(member, ladder, self.posting.at))
        counters = await self._counters(self.program.counter_keys(judged, who))
        evaluation = self.program.evaluate(judged, who, counters)
        order_ref = (
            await self._order(evaluation, judged.amount) if event.type == "purchase" else None
        )
        award_lots = self._credit(evaluation, order_ref)
        new_lots = list(award_lots)
        lifetime = {member.id: evaluation.total_points}
        if order_ref is not None and member.referred_by is not None:
            credits = await referrals.on_purchase(
                self.conn,
                self.program,
                member,
                order_ref,
                judged.amount,
                event.occurred_at,
                self.posting,
                max((lot.vests_at for lot in award_lots if lot.vests_at), default=None),
            )
            if credits is not None:
                new_lots += credits.lots
                for referred, points in credits.lifetime.items():
                    lifetime[referred] = lifetime.get(referred, 0) + points
        await self._usage(evaluation)
        tags = list(dict.fromkeys([*member.tags, *evaluation.tags]))
        # A member who already carries every tag the rules give needs no write.
        if tags != member.tags:
            await self.conn.execute(_SET_TAGS, {"b_member": member.id, "b_tags": tags})
        _, balances = await book.write(
            self.conn,
            self.posting,
            kind="earn",
            actor=f"event:{event.type}",
            reason=f"{event.type} {event.order_id or event.name or ''}".strip(),
            member_id=member.id,
            event_id=self.event_id,
            program_version=self.version,
            new_lots=new_lots,
            lifetime=_lifetime(lifetime),
        )
        change = None
        # Only an order or points earned can move the member's tier figures.
        if order_ref is not None or evaluation.total_points:
            change = await self.tiers.after_earn(
                self.conn, self.program, member, self.event_id, event.occurred_at
            )
        return EventOutcome(
            event_id=self.event_id,
            type=event.type,
            member_id=member.member_id,
            program_version=self.version,
            awards=[
                AwardOut(
                    rule_id=a.rule_id,
                    reason=a.reason,
                    points=a.points,
                    status="pending" if a.pending else "available",
                    vests_at=a.vests_at,
                    expires_at=lot.expires_at,
                    capped=a.capped,
                )
                for a, lot in zip(
                    (a for a in evaluation.awards if a.points > 0), award_lots, strict=True
                )
            ],
            points=evaluation.total_points,
            balances=balances[member.id],
            tier_change=change,
        )

    def _credit(self, evaluation: Evaluation, order_ref: int | None) -> list[book.NewLot]:
        """One lot per award; available credits first repay a negative balance."""
        zone = ZoneInfo(self.program.info.timezone)
        debt = max(-self.member.available, 0)
        new_lots: list[book.NewLot] = []
        for award in evaluation.awards:
            if award.points <= 0:
                continue
            expires = award.expires_at or expiry_for(
                self.program.spec.expiry, self.event.occurred_at, zone
            )
            repay = 0 if award.pending else min(debt, award.points)
            debt -= repay
            lot = book.NewLot(
                member_id=self.member.id,
                points=award.points,
                status="pending" if award.pending else "available",
                rule_id=award.rule_id,
                vests_at=award.vests_at if award.pending else None,
                expires_at=expires,
                order_ref=order_ref,
                remaining=award.points - repay,
            )
            new_lots.append(lot)
            account = Account.PENDING if award.pending else Account.AVAILABLE
            self.posting.move(
                award.points,
                (Account.ISSUED, None),
                (account, self.member.id),
                lot_id=lot,
                rule_id=award.rule_id,
                reason=award.reason,
            )
        return new_lots

    async def _order(self, evaluation: Evaluation, total: Decimal) -> int:
        """Record the purchase for later refunds; an order id posted twice is refused
        (under another idempotency key it would otherwise earn twice)."""
        event = self.event
        if event.redemption_id is not None:
            await payments.check_payment(self.conn, self.member.id, event.redemption_id)
            used = await self.conn.scalar(
                select(orders.c.order_id).where(orders.c.redemption_id == event.redemption_id)
            )
            if used is not None:
                raise Conflict(
                    "redemption_already_used",
                    f"redemption {event.redemption_id} already paid for order {used!r}",
                )
        order_ref = await self.conn.scalar(
            _INSERT_ORDER[self.db.dialect],
            {
                "member_id": self.member.id,
                "order_id": event.order_id,
                "event_id": self.event_id,
                "currency": event.currency,
                "total": total,
                "refunded": Decimal(0),
                "items": [msgspec.to_builtins(item) for item in event.items],
                "refunded_items": {},
                "points": evaluation.total_points,
                "clawed": 0,
                "created_at": self.posting.at,
                "occurred_at": event.occurred_at,
                "redemption_id": event.redemption_id,
            },
        )
        if order_ref is None:
            raise Conflict(
                "order_exists", f"order {event.order_id!r} was already posted for this member"
            )
        return int(order_ref)

    async def _usage(self, evaluation: Evaluation) -> None:
        per_rule: dict[str, int] = {}
        for increment in evaluation.counter_increments:
            points = increment.amount if increment.key.unit == "points" else 0
            per_rule[increment.key.rule_id] = per_rule.get(increment.key.rule_id, 0) + points
        if per_rule:
            await self.conn.execute(
                _INSERT_USAGE,
                [
                    {
                        "member_id": self.member.id,
                        "rule_id": rule,
                        "points": points,
                        "at": self.event.occurred_at,
                    }
                    for rule, points in per_rule.items()
                ],
            )

    async def _counters(self, keys: tuple[CounterKey, ...]) -> dict[CounterKey, int]:
        """Every counter a cap needs, in one round trip."""
        if not keys:
            return {}
        params: dict[str, Any] = {"b_member": self.member.id}
        for index, key in enumerate(keys):
            params[f"b_rule_{index}"] = key.rule_id
            params[f"b_start_{index}"] = key.window_start
            params[f"b_end_{index}"] = key.window_end
        statement = _counters_statement(tuple(map(_counter_shape, keys)))
        rows = await self.conn.execute(statement, params)
        return {keys[row.i]: int(row.v) for row in rows}

    async def refund(self) -> EventOutcome:
        event, member = self.event, self.member
        order = (
            await self.conn.execute(
                select(orders).where(
                    orders.c.member_id == member.id, orders.c.order_id == event.order_id
                )
            )
        ).one_or_none()
        if order is None:
            raise NotFound("order_not_found", f"no order {event.order_id!r} for this member")
        amount, refunded_items = _refund_amount(event, order._mapping)
        remaining = order.total - order.refunded
        if remaining <= 0:
            raise Conflict("order_already_refunded", f"order {event.order_id!r} is fully refunded")
        if amount <= 0 or amount > remaining:
            raise InvalidInput.from_fields(
                [
                    FieldError(
                        "total",
                        "refund_exceeds_order",
                        f"refund of {amount} exceeds what is left of the order ({remaining})",
                    )
                ]
            )
        refunded = order.refunded + amount
        claw = clawback_share(order.points, order.clawed, refunded, order.total)
        policy = self.program.spec.refunds.shortfall
        clawed, shortfall, changes = await self._claw(order.id, claw, policy)
        referral_changes, referral_lifetime = await referrals.on_refund(
            self.conn, order.id, order.event_id, self.posting
        )
        restored, payment_changes = 0, list[dict[str, Any]]()
        if order.redemption_id is not None:
            restored, payment_changes = await payments.restore_payment(
                self.conn,
                order.redemption_id,
                member.id,
                lambda paid, already: clawback_share(paid, already, refunded, order.total),
                self.posting,
                self.posting.at,
            )
        await self.conn.execute(
            update(orders)
            .where(orders.c.id == order.id)
            .values(refunded=refunded, refunded_items=refunded_items, clawed=order.clawed + claw)
        )
        _, balances = await book.write(
            self.conn,
            self.posting,
            kind="refund",
            actor="event:refund",
            reason=f"refund of order {event.order_id}",
            member_id=member.id,
            event_id=self.event_id,
            program_version=self.version,
            shortfall=shortfall,
            lot_changes=changes + referral_changes + payment_changes,
            lifetime=_lifetime(
                {member.id: -(claw - shortfall) if policy == "floor" else -claw},
                referral_lifetime,
                redeemed={member.id: -restored},
            ),
        )
        return EventOutcome(
            event_id=self.event_id,
            type=event.type,
            member_id=member.member_id,
            program_version=self.version,
            awards=[],
            points=-clawed,
            clawed_back=clawed,
            shortfall=shortfall,
            points_restored=restored,
            balances=balances[member.id],
        )

    async def _claw(
        self, order_ref: int, points: int, policy: str
    ) -> tuple[int, int, list[dict[str, Any]]]:
        """Take `points` back: from the order's own lots (pending before available),
        then, for what the member already spent, from their other available points,
        soonest-expiring first. Only what is still missing is a shortfall: debited
        anyway under the negative-balance policy, recorded and forgiven under `floor`.
        (Taking from other points closes the buy, spend, refund and keep hole.)"""
        own = (
            await self.conn.execute(
                select(lots.c.id, lots.c.status, lots.c.remaining, lots.c.expires_at).where(
                    lots.c.order_ref == order_ref, lots.c.status != "expired"
                )
            )
        ).all()
        changes: list[dict[str, Any]] = []
        left = self._take(own, "pending", points, changes, clawed=True)
        left = self._take(own, "available", left, changes, clawed=True)
        if left:
            others = [
                _Lot(lot.id, "available", lot.remaining, lot.expires_at)
                for lot in await book.spendable_lots(
                    self.conn, self.member.id, except_order=order_ref
                )
            ]
            left = self._take(others, "available", left, changes, clawed=False)
        shortfall = left
        if shortfall and policy == "negative_balance":
            self.posting.move(
                shortfall,
                (Account.AVAILABLE, self.member.id),
                (Account.CLAWED_BACK, None),
                reason="refund clawback of points already spent",
            )
            return points, shortfall, changes
        return points - shortfall, shortfall, changes

    def _take(
        self,
        rows: Sequence[Any],
        status: str,
        points: int,
        changes: list[dict[str, Any]],
        *,
        clawed: bool,
    ) -> int:
        """Claw up to `points` from the `status` lots among `rows`; returns what is left."""
        account = Account.PENDING if status == "pending" else Account.AVAILABLE
        group = [LotView(r.id, r.remaining, r.expires_at) for r in rows if r.status == status]
        taken, left = allocate(group, points)
        for lot_id, take in taken:
            self.posting.move(
                take,
                (account, self.member.id),
                (Account.CLAWED_BACK, None),
                lot_id=lot_id,
                reason="refund clawback",
            )
            changes.append(
                {
                    "lot": lot_id,
                    "remaining_delta": -take,
                    "clawed_delta": take if clawed else 0,
                    "new_status": status,
                }
            )
        return left


def _refund_amount(event: EventIn, order: Any) -> tuple[Decimal, dict[str, int]]:
    """The money being returned: the lines named (at what was paid for them) or a total."""
    already: dict[str, int] = dict(order["refunded_items"])
    if not event.items:
        assert event.total is not None, "checked by _check_shape"
        return event.total, already
    bought = {item["sku"]: item for item in order["items"]}
    amount = Decimal(0)
    for item in event.items:
        line = bought.get(item.sku)
        if line is None:
            raise InvalidInput.from_fields(
                [FieldError("items", "not_in_order", f"sku {item.sku!r} is not in the order")]
            )
        quantity = int(line["quantity"])
        if already.get(item.sku, 0) + item.quantity > quantity:
            raise InvalidInput.from_fields(
                [
                    FieldError(
                        "items",
                        "refund_exceeds_order",
                        f"more of {item.sku!r} returned than bought ({quantity})",
                    )
                ]
            )
        paid = Decimal(str(line["unit_price"])) * quantity - Decimal(str(line["discount"]))
        before = already.get(item.sku, 0)
        after = before + item.quantity
        # Counted from the cumulative share of the line, at the precision orders are
        # stored with: returning every unit, in any number of refunds, refunds exactly
        # what was paid (a per-refund `paid * n / quantity` does not add back up).
        amount += _line_share(paid, after, quantity) - _line_share(paid, before, quantity)
        already[item.sku] = after
    return amount, already


# The scale of the orders' money columns (NUMERIC(18, 4) on PostgreSQL).
_MONEY_QUANTUM = Decimal("0.0001")


def _line_share(paid: Decimal, units: int, quantity: int) -> Decimal:
    """What `units` of a line of `quantity` units cost, of `paid` for the whole line."""
    if units >= quantity:
        return paid
    return (paid * units / quantity).quantize(_MONEY_QUANTUM, ROUND_HALF_EVEN)


@dataclass(frozen=True)
class _Lot:
    """A lot as the clawback sees it."""

    id: int
    status: str
    remaining: int
    expires_at: datetime | None


def _lifetime(
    *earned: dict[int, int], redeemed: dict[int, int] | None = None
) -> dict[int, tuple[int, int]]:
    """Lifetime earned and redeemed changes per member, added up across the parts of
    one posting."""
    total: dict[int, tuple[int, int]] = {}
    for part, slot in [*((part, 0) for part in earned), (redeemed or {}, 1)]:
        for who, points in part.items():
            sums = list(total.get(who, (0, 0)))
            sums[slot] += points
            total[who] = (sums[0], sums[1])
    return total


def _check_shape(event: EventIn) -> None:
    """What each type of event must name, checked before anything is written (a
    refusal inside a batch's transaction costs the chunk a rerun)."""
    missing = None
    if event.type in ("purchase", "refund") and not event.order_id:
        missing = ("order_id", f"a {event.type} needs an order_id")
    elif event.type == "custom" and not event.name:
        missing = ("name", "a custom event needs a name")
    elif event.type == "refund" and not event.items and event.total is None:
        missing = ("total", "a refund gives returned items or a total")
    if missing is not None:
        raise InvalidInput.from_fields([FieldError(missing[0], "required", missing[1])])


# Money columns are NUMERIC(18, 4): 14 digits before the point, 4 after.
_MAX_AMOUNT = Decimal(10) ** 14
_MONEY_EXPONENT = -4


def _check_amounts(event: EventIn) -> None:
    amounts = [
        (f"items[{index}].{name}", getattr(item, name))
        for index, item in enumerate(event.items)
        for name in ("unit_price", "discount")
    ]
    if event.total is not None:
        amounts.append(("total", event.total))
    errors = [error for field, value in amounts if (error := _amount_error(field, value))]
    if not errors and sum(i.unit_price * i.quantity for i in event.items) >= _MAX_AMOUNT:
        errors.append(FieldError("items", "out_of_range", "the order's lines add up too high"))
    if errors:
        raise InvalidInput.from_fields(errors)


def _amount_error(field: str, value: Decimal) -> FieldError | None:
    name = field.rsplit(".", 1)[-1]
    if not value.is_finite():
        return FieldError(field, "invalid", f"{name} must be a finite number")
    if value < 0:
        return FieldError(field, "negative", f"{name} must not be negative")
    exponent = value.normalize().as_tuple().exponent
    if value >= _MAX_AMOUNT or (isinstance(exponent, int) and exponent < _MONEY_EXPONENT):
        return FieldError(
            field, "out_of_range", f"{name} must be below 10^14 with at most 4 decimals"
        )
    return None


def engine_event(event: EventIn) -> EventInput:
    return EventInput(
        type=event.type,
        occurred_at=event.occurred_at,
        name=event.name,
        order_id=event.order_id,
        store_id=event.store_id,
        channel=event.channel,
        currency=event.currency,
        total=event.total,
        payment_method=event.payment_method,
        items=tuple(
            LineItem(
                sku=i.sku,
                quantity=i.quantity,
                unit_price=i.unit_price,
                discount=i.discount,
                category=i.category,
                brand=i.brand,
            )
            for i in event.items
        ),
        attributes=event.attributes,
    )
