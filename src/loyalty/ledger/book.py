"""Writing one ledger transaction inside the caller's database transaction.

The caller has locked the member's balance row first (FOR UPDATE on PostgreSQL; the
whole database with BEGIN IMMEDIATE on SQLite), so reads of lots and counters and
the writes here see no concurrent change for that member.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    DateTime,
    Integer,
    String,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from loyalty.db.schema import balances, ledger_entries, ledger_transactions, lots, members
from loyalty.db.types import UtcDateTime
from loyalty.errors import Conflict, NotFound
from loyalty.ledger.accounts import Account
from loyalty.ledger.model import Balances
from loyalty.ledger.posting import LotView, Posting


@dataclass
class NewLot:
    member_id: int
    points: int
    status: str
    rule_id: str | None
    vests_at: datetime | None
    expires_at: datetime | None
    order_ref: int | None = None
    # Less than `points` when the credit first repays a negative balance.
    remaining: int | None = None


@dataclass(frozen=True)
class LockedMember:
    id: int
    member_id: str
    status: str
    tags: list[str]
    attributes: dict[str, Any]
    joined_at: datetime
    birthday: Any
    timezone: str
    available: int
    pending: int
    held: int
    tier: str | None
    manual_tier: str | None
    manual_tier_until: datetime | None
    referred_by: int | None


_MEMBER_COLUMNS = [
    members.c.id,
    members.c.member_id,
    members.c.status,
    members.c.tags,
    members.c.attributes,
    members.c.joined_at,
    members.c.birthday,
    members.c.timezone,
    balances.c.available,
    balances.c.pending,
    balances.c.held,
    members.c.tier,
    members.c.manual_tier,
    members.c.manual_tier_until,
    members.c.referred_by,
]


# The statements every posting runs, built once: a statement built per call has its
# cache key generated again on every execution (a sizeable share of the purchase
# path's CPU). Values come as execution parameters.
_LOCK_MEMBER = (
    select(*_MEMBER_COLUMNS)
    .join(balances, balances.c.member_id == members.c.id)
    .where(members.c.member_id == bindparam("b_member_id", type_=String()))
    .with_for_update(of=balances)
)
_INSERT_TRANSACTION = insert(ledger_transactions).returning(ledger_transactions.c.id)
# RETURNING order is not guaranteed for a multi-row INSERT; SQLAlchemy's
# sort_by_parameter_order matches each id to its row (one round trip still).
_INSERT_LOTS = insert(lots).returning(lots.c.id, sort_by_parameter_order=True)
_INSERT_ENTRIES = insert(ledger_entries)
_CHANGE_LOTS = (
    update(lots)
    .where(lots.c.id == bindparam("lot"))
    .values(
        remaining=lots.c.remaining + bindparam("remaining_delta"),
        clawed=lots.c.clawed + bindparam("clawed_delta"),
        status=bindparam("new_status"),
    )
)
_APPLY_BALANCE = (
    update(balances)
    .where(balances.c.member_id == bindparam("b_member", type_=BigInteger()))
    .values(
        available=balances.c.available + bindparam("d_available", type_=BigInteger()),
        pending=balances.c.pending + bindparam("d_pending", type_=BigInteger()),
        held=balances.c.held + bindparam("d_held", type_=BigInteger()),
        lifetime_earned=balances.c.lifetime_earned + bindparam("d_earned", type_=BigInteger()),
        lifetime_redeemed=balances.c.lifetime_redeemed
        + bindparam("d_redeemed", type_=BigInteger()),
        version=balances.c.version + 1,
        updated_at=bindparam("b_at", type_=UtcDateTime()),
    )
    .returning(balances.c.available, balances.c.pending, balances.c.held)
)


async def lock_member(conn: AsyncConnection, member_id: str, *, live: bool = True) -> LockedMember:
    """Load a member with its balances and lock the balance row for this transaction."""
    row = (await conn.execute(_LOCK_MEMBER, {"b_member_id": member_id})).one_or_none()
    if row is None:
        raise NotFound("member_not_found", f"no member with member_id {member_id!r}")
    member = LockedMember(**row._asdict())
    if live:
        ensure_live(member)
    return member


def ensure_live(member: LockedMember) -> None:
    """Suspended and erased members can neither earn nor spend."""
    if member.status != "active":
        raise Conflict(
            f"member_{member.status}",
            f"member {member.member_id!r} is {member.status}: no points can be earned or spent",
        )


async def write(
    conn: AsyncConnection,
    posting: Posting,
    *,
    kind: str,
    actor: str,
    reason: str,
    member_id: int | None,
    event_id: int | None = None,
    program_version: int | None = None,
    note: str | None = None,
    shortfall: int = 0,
    new_lots: list[NewLot] | None = None,
    lot_changes: list[dict[str, Any]] | None = None,
    lifetime: dict[int, tuple[int, int]] | None = None,
) -> tuple[int, dict[int, Balances]]:
    """Insert the transaction, its new lots and entries; apply lot changes and balance
    deltas. Returns the transaction id and the new balances of each member touched."""
    transaction = {
        "kind": kind,
        "member_id": member_id,
        "event_id": event_id,
        "program_version": program_version,
        "actor": actor,
        "reason": reason[:200],
        "note": note,
        "shortfall": shortfall,
        "at": posting.at,
    }
    touched = set(posting.deltas) | set(lifetime or {})
    if (
        conn.dialect.name == "postgresql"
        and member_id is not None
        and touched == {member_id}
        and not lot_changes
    ):
        earned = (lifetime or {}).get(member_id, (0, 0))
        return await _write_one_member(
            conn, posting, member_id, new_lots or [], earned, transaction
        )
    txn_id = await conn.scalar(_INSERT_TRANSACTION, transaction)
    assert txn_id is not None
    lot_ids: dict[int, int] = {}
    if new_lots:
        rows = [
            {
                "member_id": lot.member_id,
                "txn_id": txn_id,
                "order_ref": lot.order_ref,
                "rule_id": lot.rule_id,
                "status": lot.status,
                "points": lot.points,
                "remaining": lot.points if lot.remaining is None else lot.remaining,
                "clawed": 0,
                "vests_at": lot.vests_at,
                "expires_at": lot.expires_at,
                "created_at": posting.at,
            }
            for lot in new_lots
        ]
        result = await conn.execute(_INSERT_LOTS, rows)
        lot_ids = {id(lot): lot_id for lot, lot_id in zip(new_lots, result.scalars(), strict=True)}
    if posting.entries:
        entries = [
            {**entry, "txn_id": txn_id, "lot_id": _lot_id(entry["lot_id"], lot_ids)}
            for entry in posting.entries
        ]
        await conn.execute(_INSERT_ENTRIES, entries)
    if lot_changes:
        await conn.execute(_CHANGE_LOTS, lot_changes)
    return txn_id, await _apply_balances(conn, posting, lifetime or {})


# PostgreSQL, a posting that touches one member's balance and changes no existing
# lot (an earn, a credit): the transaction, its lots, its entries and the balance
# in one statement, one round trip instead of four. Lot ids are drawn from the
# lots sequence first (a CTE referenced twice is evaluated once), so entries can
# name the lots created beside them; entries keep the posting's order.
_WRITE_ONE_MEMBER = text(
    """
WITH txn AS (
    INSERT INTO ledger_transactions
        (kind, member_id, event_id, program_version, actor, reason, note, shortfall, at)
    VALUES (:kind, :member_id, :event_id, :program_version, :actor, :reason, :note,
            :shortfall, :at)
    RETURNING id
), new_ids AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('lots', 'id')) AS id, n
    FROM generate_series(1, :lot_count) AS n
), new_lots AS (
    INSERT INTO lots (id, member_id, txn_id, order_ref, rule_id, status, points, remaining,
                      clawed, vests_at, expires_at, created_at)
    SELECT i.id, l.member_id, txn.id, l.order_ref, l.rule_id, l.status, l.points,
           l.remaining, 0, l.vests_at, l.expires_at, :at
    FROM txn,
         unnest(:l_member, :l_order_ref, :l_rule, :l_status, :l_points, :l_remaining,
                :l_vests, :l_expires)
             WITH ORDINALITY AS l(member_id, order_ref, rule_id, status, points, remaining,
                                  vests_at, expires_at, n)
         JOIN new_ids AS i ON i.n = l.n
    ORDER BY l.n
), new_entries AS (
    INSERT INTO ledger_entries (txn_id, member_id, account, amount, lot_id, rule_id, reason, at)
    SELECT txn.id, e.member_id, e.account, e.amount, coalesce(e.lot_id, i.id), e.rule_id,
           e.reason, e.at
    FROM txn,
         unnest(:e_member, :e_account, :e_amount, :e_lot, :e_new_lot, :e_rule, :e_reason,
                :e_at)
             WITH ORDINALITY AS e(member_id, account, amount, lot_id, new_lot, rule_id, reason,
                                  at, n)
         LEFT JOIN new_ids AS i ON i.n = e.new_lot
    ORDER BY e.n
)
UPDATE balances
SET available = available + :d_available,
    pending = pending + :d_pending,
    held = held + :d_held,
    lifetime_earned = lifetime_earned + :d_earned,
    lifetime_redeemed = lifetime_redeemed + :d_redeemed,
    version = version + 1,
    updated_at = :at
WHERE member_id = :member_id
RETURNING available, pending, held, (SELECT id FROM txn) AS txn_id
"""
).bindparams(
    bindparam("kind", type_=String()),
    bindparam("member_id", type_=BigInteger()),
    bindparam("event_id", type_=BigInteger()),
    bindparam("program_version", type_=BigInteger()),
    bindparam("actor", type_=String()),
    bindparam("reason", type_=String()),
    bindparam("note", type_=String()),
    bindparam("shortfall", type_=Integer()),
    bindparam("at", type_=UtcDateTime()),
    bindparam("lot_count", type_=Integer()),
    bindparam("l_member", type_=ARRAY(BigInteger())),
    bindparam("l_order_ref", type_=ARRAY(BigInteger())),
    bindparam("l_rule", type_=ARRAY(String())),
    bindparam("l_status", type_=ARRAY(String())),
    bindparam("l_points", type_=ARRAY(BigInteger())),
    bindparam("l_remaining", type_=ARRAY(BigInteger())),
    bindparam("l_vests", type_=ARRAY(DateTime(timezone=True))),
    bindparam("l_expires", type_=ARRAY(DateTime(timezone=True))),
    bindparam("e_member", type_=ARRAY(BigInteger())),
    bindparam("e_account", type_=ARRAY(String())),
    bindparam("e_amount", type_=ARRAY(BigInteger())),
    bindparam("e_lot", type_=ARRAY(BigInteger())),
    bindparam("e_new_lot", type_=ARRAY(Integer())),
    bindparam("e_rule", type_=ARRAY(String())),
    bindparam("e_reason", type_=ARRAY(String())),
    bindparam("e_at", type_=ARRAY(DateTime(timezone=True))),
    bindparam("d_available", type_=BigInteger()),
    bindparam("d_pending", type_=BigInteger()),
    bindparam("d_held", type_=BigInteger()),
    bindparam("d_earned", type_=BigInteger()),
    bindparam("d_redeemed", type_=BigInteger()),
)


async def _write_one_member(
    conn: AsyncConnection,
    posting: Posting,
    member: int,
    new_lots: list[NewLot],
    lifetime: tuple[int, int],
    transaction: dict[str, Any],
) -> tuple[int, dict[int, Balances]]:
    number = {id(lot): n for n, lot in enumerate(new_lots, start=1)}
    entries = posting.entries
    row = (
        await conn.execute(
            _WRITE_ONE_MEMBER,
            transaction
            | {
                "lot_count": len(new_lots),
                "l_member": [lot.member_id for lot in new_lots],
                "l_order_ref": [lot.order_ref for lot in new_lots],
                "l_rule": [lot.rule_id for lot in new_lots],
                "l_status": [lot.status for lot in new_lots],
                "l_points": [lot.points for lot in new_lots],
                "l_remaining": [
                    lot.points if lot.remaining is None else lot.remaining for lot in new_lots
                ],
                "l_vests": [lot.vests_at for lot in new_lots],
                "l_expires": [lot.expires_at for lot in new_lots],
                "e_member": [e["member_id"] for e in entries],
                "e_account": [e["account"] for e in entries],
                "e_amount": [e["amount"] for e in entries],
                "e_lot": [
                    None if isinstance(e["lot_id"], NewLot) else _lot_id(e["lot_id"], {})
                    for e in entries
                ],
                "e_new_lot": [
                    number[id(e["lot_id"])] if isinstance(e["lot_id"], NewLot) else None
                    for e in entries
                ],
                "e_rule": [e["rule_id"] for e in entries],
                "e_reason": [e["reason"] for e in entries],
                "e_at": [e["at"] for e in entries],
                "d_available": posting.delta(member, Account.AVAILABLE),
                "d_pending": posting.delta(member, Account.PENDING),
                "d_held": posting.delta(member, Account.HELD),
                "d_earned": lifetime[0],
                "d_redeemed": lifetime[1],
            },
        )
    ).one()
    return int(row.txn_id), {
        member: Balances(available=row.available, pending=row.pending, held=row.held)
    }


def _lot_id(ref: Any, created: dict[int, int]) -> int | None:
    if isinstance(ref, NewLot):
        return created[id(ref)]
    return ref if ref is None else int(ref)


async def _apply_balances(
    conn: AsyncConnection, posting: Posting, lifetime: dict[int, tuple[int, int]]
) -> dict[int, Balances]:
    out: dict[int, Balances] = {}
    for member in sorted(set(posting.deltas) | set(lifetime)):
        earned, redeemed = lifetime.get(member, (0, 0))
        row = (
            await conn.execute(
                _APPLY_BALANCE,
                {
                    "b_member": member,
                    "d_available": posting.delta(member, Account.AVAILABLE),
                    "d_pending": posting.delta(member, Account.PENDING),
                    "d_held": posting.delta(member, Account.HELD),
                    "d_earned": earned,
                    "d_redeemed": redeemed,
                    "b_at": posting.at,
                },
            )
        ).one()
        out[member] = Balances(available=row.available, pending=row.pending, held=row.held)
    return out


def new_balance_row(member_id: int, at: datetime) -> dict[str, Any]:
    return {
        "member_id": member_id,
        "available": 0,
        "pending": 0,
        "held": 0,
        "lifetime_earned": 0,
        "lifetime_redeemed": 0,
        "version": 0,
        "updated_at": at,
    }


async def lock_balances(conn: AsyncConnection, owners: Any) -> dict[int, int]:
    """Lock several members' balance rows, in member order: the one order every writer
    that locks more than one member follows, so that two of them never deadlock.
    `owners` is a list of internal member ids or a subquery of them; returns each
    member's available points."""
    rows = await conn.execute(
        select(balances.c.member_id, balances.c.available)
        .where(balances.c.member_id.in_(owners))
        .order_by(balances.c.member_id)
        .with_for_update()
    )
    return {int(member): int(available) for member, available in rows}


async def lock_member_by_id(conn: AsyncConnection, member: int) -> int:
    """Lock a member's balance row by internal id, for work that starts from a record
    (a hold) rather than from the brand's member id."""
    await conn.execute(
        select(balances.c.member_id).where(balances.c.member_id == member).with_for_update()
    )
    return member


async def spendable_lots(
    conn: AsyncConnection, member: int, *, except_order: int | None = None
) -> list[LotView]:
    """The member's lots with points left to spend (optionally not those of an order)."""
    statement = select(lots.c.id, lots.c.remaining, lots.c.expires_at).where(
        lots.c.member_id == member, lots.c.status == "available", lots.c.remaining > 0
    )
    if except_order is not None:
        statement = statement.where(lots.c.order_ref.is_distinct_from(except_order))
    return [LotView(*row) for row in await conn.execute(statement)]


async def lots_moved(conn: AsyncConnection, txn_id: int | None, account: Account) -> list[Any]:
    """What a transaction moved into `account`, lot by lot, with each lot's state:
    rows of (lot_id, amount, expires_at, status)."""
    return list(
        await conn.execute(
            select(
                ledger_entries.c.lot_id, ledger_entries.c.amount, lots.c.expires_at, lots.c.status
            )
            .join(lots, lots.c.id == ledger_entries.c.lot_id)
            .where(ledger_entries.c.txn_id == txn_id, ledger_entries.c.account == account.value)
        )
    )
