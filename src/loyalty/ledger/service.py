"""Member ledger use cases: manual adjustments, balances, history."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    CompoundSelect,
    Select,
    String,
    bindparam,
    case,
    func,
    literal_column,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from loyalty.auth.keys import Principal
from loyalty.clock import Clock
from loyalty.db.engine import Database
from loyalty.db.paging import check_limit, decode_cursor, encode_cursor
from loyalty.db.schema import (
    balances,
    ledger_entries,
    ledger_transactions,
    lots,
    members,
    redemptions,
)
from loyalty.db.types import UtcDateTime
from loyalty.errors import FieldError, InvalidInput, NotFound
from loyalty.ledger import book
from loyalty.ledger.accounts import Account
from loyalty.ledger.model import (
    AdjustmentIn,
    AdjustmentOut,
    BalanceView,
    EntryOut,
    LedgerPage,
    PendingVest,
    TierSummary,
    TransactionOut,
)
from loyalty.ledger.posting import Posting, allocate, expiry_for
from loyalty.program.service import ProgramService
from loyalty.tiers.ladder import Ladder
from loyalty.tiers.service import effective_tier

EXPIRY_HORIZONS = (30, 60, 90)


def _balance_statements() -> tuple[Select[Any], CompoundSelect[Any]]:
    """A member's balance read, built once: the head row (balances, tier, lapsed holds,
    expiry buckets) and, in the same statement, one row per pending vest date.

    Parameters: member_id, now, until_30/60/90 (now + each horizon). A statement built
    per call would have its cache key generated again on every read.
    """
    now = bindparam("now", type_=UtcDateTime())
    spendable = (
        lots.c.member_id == members.c.id,
        lots.c.status == "available",
        lots.c.remaining > 0,
        lots.c.expires_at.is_not(None),
    )
    expiring = [
        select(
            func.coalesce(
                func.sum(
                    case(
                        (
                            lots.c.expires_at < bindparam(f"until_{days}", type_=UtcDateTime()),
                            lots.c.remaining,
                        ),
                        else_=0,
                    )
                ),
                0,
            )
        )
        .where(*spendable)
        .scalar_subquery()
        .label(f"expiring_{days}")
        for days in EXPIRY_HORIZONS
    ]
    # A hold past its time counts as released, even before the sweep runs.
    lapsed = (
        select(func.coalesce(func.sum(redemptions.c.points), 0))
        .where(
            redemptions.c.member_id == members.c.id,
            redemptions.c.state == "held",
            redemptions.c.expires_at <= now,
        )
        .scalar_subquery()
        .label("lapsed")
    )
    head_columns = [
        members.c.id,
        members.c.tier,
        members.c.tier_valid_until,
        members.c.manual_tier,
        members.c.manual_tier_until,
        balances.c.available,
        balances.c.pending,
        balances.c.held,
        balances.c.lifetime_earned,
        balances.c.lifetime_redeemed,
        lapsed,
        *expiring,
    ]
    member = members.c.member_id == bindparam("member_id", type_=String())
    head = select(*head_columns).join(balances, balances.c.member_id == members.c.id).where(member)
    # Part 0 is the head row, part 1 the vest dates; NULLs stand in for the other
    # part's columns (typed in the first part, for the result processors).
    both: CompoundSelect[Any] = union_all(
        head.add_columns(
            literal_column("0").label("part"),
            type_coerce(null(), UtcDateTime()).label("vests_at"),
            type_coerce(null(), BigInteger()).label("points"),
        ),
        select(
            *(null().label(column.name) for column in head_columns),
            literal_column("1"),
            lots.c.vests_at,
            func.sum(lots.c.remaining),
        )
        .join(members, members.c.id == lots.c.member_id)
        .where(member, lots.c.status == "pending", lots.c.remaining > 0)
        .group_by(lots.c.vests_at),
    )
    return head, both.order_by(both.selected_columns.part, both.selected_columns.vests_at)


_BALANCE_HEAD, _BALANCE = _balance_statements()


class LedgerService:
    def __init__(self, db: Database, clock: Clock, programs: ProgramService) -> None:
        self._db = db
        self._clock = clock
        self._programs = programs

    async def adjust(
        self, member_id: str, adjustment: AdjustmentIn, actor: Principal
    ) -> AdjustmentOut:
        """A manual credit (a new lot under the expiry policy) or debit (soonest-expiring
        lots first; never below zero)."""
        if adjustment.points == 0:
            raise InvalidInput("validation_failed", "points must not be zero")
        now = self._clock.now()
        _, program = await self._programs.active(now)
        posting = Posting(at=now)
        new_lots: list[book.NewLot] = []
        changes = []
        async with self._db.write() as conn:
            member = await book.lock_member(conn, member_id)
            if adjustment.points > 0:
                debt = max(-member.available, 0)
                lot = book.NewLot(
                    member_id=member.id,
                    points=adjustment.points,
                    status="available",
                    rule_id=None,
                    vests_at=None,
                    expires_at=expiry_for(
                        program.spec.expiry, now, ZoneInfo(program.info.timezone)
                    ),
                    remaining=adjustment.points - min(debt, adjustment.points),
                )
                new_lots.append(lot)
                posting.move(
                    adjustment.points,
                    (Account.ADJUSTED, None),
                    (Account.AVAILABLE, member.id),
                    lot_id=lot,
                    reason=adjustment.reason,
                )
            else:
                wanted = -adjustment.points
                taken, short = allocate(await book.spendable_lots(conn, member.id), wanted)
                if short or member.available < wanted:
                    raise InvalidInput(
                        "insufficient_points",
                        f"member has {member.available} available points, cannot debit {wanted}",
                    )
                for lot_id, take in taken:
                    posting.move(
                        take,
                        (Account.AVAILABLE, member.id),
                        (Account.ADJUSTED, None),
                        lot_id=lot_id,
                        reason=adjustment.reason,
                    )
                    changes.append(
                        {
                            "lot": lot_id,
                            "remaining_delta": -take,
                            "clawed_delta": 0,
                            "new_status": "available",
                        }
                    )
            txn_id, new_balances = await book.write(
                conn,
                posting,
                kind="adjustment",
                actor=actor.label,
                reason=adjustment.reason,
                note=adjustment.note,
                member_id=member.id,
                new_lots=new_lots,
                lot_changes=changes,
            )
        return AdjustmentOut(
            transaction_id=txn_id,
            member_id=member_id,
            points=adjustment.points,
            balances=new_balances[member.id],
        )

    async def balance(self, member_id: str, as_of: datetime | None = None) -> BalanceView:
        if as_of is not None and as_of.tzinfo is None:
            raise InvalidInput.from_fields(
                [FieldError("as_of", "timezone_required", "give as_of with its UTC offset")]
            )
        now = self._clock.now()
        params = {"member_id": member_id, "now": now} | {
            f"until_{days}": now + timedelta(days=days) for days in EXPIRY_HORIZONS
        }
        async with self._db.read() as conn:
            if as_of is not None:
                head = (await conn.execute(_BALANCE_HEAD, params)).one_or_none()
                if head is None:
                    raise NotFound("member_not_found", f"no member with member_id {member_id!r}")
                return await self._balance_at(conn, head.id, member_id, as_of)
            rows = (await conn.execute(_BALANCE, params)).all()
        if not rows:
            raise NotFound("member_not_found", f"no member with member_id {member_id!r}")
        row = rows[0]
        pending = [PendingVest(r.vests_at, int(r.points)) for r in rows[1:]]
        lapsed_points = int(row.lapsed or 0)
        _, program = await self._programs.active(now)
        ladder = Ladder(tuple(program.spec.tiers))
        tier = effective_tier(row, ladder, now)
        manual = tier != (row.tier or ladder.entry)
        spec = ladder.get(tier)
        return BalanceView(
            member_id=member_id,
            tier=TierSummary(
                id=tier,
                name=spec.name if spec else None,
                valid_until=row.manual_tier_until if manual else row.tier_valid_until,
                manual=manual,
            )
            if tier
            else None,
            available=row.available + lapsed_points,
            pending=row.pending,
            held=row.held - lapsed_points,
            lifetime_earned=row.lifetime_earned,
            lifetime_redeemed=row.lifetime_redeemed,
            pending_vesting=pending,
            expiring={
                f"{days}_days": int(getattr(row, f"expiring_{days}")) for days in EXPIRY_HORIZONS
            },
        )

    async def _balance_at(
        self, conn: AsyncConnection, internal: int, member_id: str, at: datetime
    ) -> BalanceView:
        """Balances at a past moment, summed from the entries recorded by then."""
        rows = await conn.execute(
            select(ledger_entries.c.account, func.sum(ledger_entries.c.amount))
            .where(ledger_entries.c.member_id == internal, ledger_entries.c.at <= at)
            .group_by(ledger_entries.c.account)
        )
        sums: dict[str, int] = defaultdict(int, {account: int(total) for account, total in rows})
        return BalanceView(
            member_id=member_id,
            available=sums[Account.AVAILABLE],
            pending=sums[Account.PENDING],
            held=sums[Account.HELD],
            lifetime_earned=0,
            lifetime_redeemed=0,
            pending_vesting=[],
            expiring={},
            as_of=at,
        )

    async def history(
        self, member_id: str, limit: int = 50, after: str | None = None
    ) -> LedgerPage:
        """Newest first, each transaction with its entries (lots, rules, reasons)."""
        check_limit(limit)
        before = decode_cursor(after)
        async with self._db.read() as conn:
            internal = await conn.scalar(
                select(members.c.id).where(members.c.member_id == member_id)
            )
            if internal is None:
                raise NotFound("member_not_found", f"no member with member_id {member_id!r}")
            txns = ledger_transactions
            statement = (
                select(txns)
                .where(
                    txns.c.id.in_(
                        select(ledger_entries.c.txn_id).where(
                            ledger_entries.c.member_id == internal
                        )
                    )
                )
                .order_by(txns.c.id.desc())
                .limit(limit + 1)
            )
            if before:
                statement = statement.where(txns.c.id < before)
            rows = (await conn.execute(statement)).all()
            page = rows[:limit]
            entries: dict[int, list[EntryOut]] = defaultdict(list)
            if page:
                found = await conn.execute(
                    select(ledger_entries)
                    .where(
                        ledger_entries.c.txn_id.in_([row.id for row in page]),
                        ledger_entries.c.member_id == internal,
                    )
                    .order_by(ledger_entries.c.id)
                )
                for entry in found:
                    entries[entry.txn_id].append(
                        EntryOut(
                            account=entry.account,
                            amount=entry.amount,
                            lot_id=entry.lot_id,
                            rule_id=entry.rule_id,
                            reason=entry.reason,
                        )
                    )
        items = [
            TransactionOut(
                id=row.id,
                kind=row.kind,
                at=row.at,
                reason=row.reason,
                actor=row.actor,
                note=row.note,
                event_id=row.event_id,
                program_version=row.program_version,
                shortfall=row.shortfall,
                entries=entries[row.id],
            )
            for row in page
        ]
        cursor = encode_cursor(page[-1].id) if len(rows) > limit and page else None
        return LedgerPage(items, cursor)
