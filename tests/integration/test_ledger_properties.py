"""A Hypothesis state machine over the ledger: random purchases, refunds, adjustments,
custom events, clock moves, vesting and expiry, on SQLite and PostgreSQL.

After every step the audit must pass (every transaction sums to zero, every stored
balance is the sum of its entries and of its lots) and the balances must match a
model kept by the test from the outcomes the service reported.

Each Hypothesis example gets a fresh database (tables emptied) and a fresh Container,
driven from its own event loop (an asyncio.Runner per example), so the test itself is
synchronous and does not touch pytest-asyncio's session loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, func, select, text
from sqlalchemy.engine import URL

from loyalty.auth.keys import Principal, Role
from loyalty.bootstrap import Container
from loyalty.clock import FixedClock
from loyalty.db.schema import balances, ledger_entries, lots, metadata, orders
from loyalty.errors import Conflict, InvalidInput, LoyaltyError
from loyalty.ledger.accounts import Account
from loyalty.ledger.audit import verify
from loyalty.ledger.model import AdjustmentIn, EventIn, ItemIn
from loyalty.members.model import NewMember
from tests.conftest import settings_for
from tests.programs import SHOP

T = TypeVar("T")
START = datetime(2026, 6, 15, 9, 30, tzinfo=UTC)
MEMBERS = ("M1", "M2")

PROGRAM = SHOP


@dataclass
class Order:
    member: str
    total: Decimal
    points: int
    units: int = 0  # units of the one line, for purchases made with items
    refunded: Decimal = Decimal(0)
    units_refunded: int = 0
    # What the refunds of this order reported: points clawed back, and shortfalls.
    clawed: int = 0
    shortfall: int = 0

    @property
    def fully_refunded(self) -> bool:
        if self.units:
            return self.units_refunded == self.units
        return self.refunded >= self.total


@dataclass
class MemberModel:
    earned: int = 0  # points earned, less points clawed back (lifetime_earned)
    adjusted: int = 0
    expired: int = 0
    orders: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.earned + self.adjusted - self.expired


async def _reset(container: Container) -> None:
    """Empty every table (the migration history stays)."""
    async with container.db.engine.begin() as conn:
        if container.db.is_sqlite:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(delete(table))
        else:
            names = ", ".join(t.name for t in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


class LedgerMachine(RuleBasedStateMachine):
    url: URL
    shortfall: str

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.clock = FixedClock(START)
        self.container = Container(settings_for(self.url, auth_cache_seconds=0), clock=self.clock)
        self.models = {member: MemberModel() for member in MEMBERS}
        self.orders: dict[str, Order] = {}
        self.serial = 0
        self.run(self._setup())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    async def _setup(self) -> None:
        await _reset(self.container)
        text_ = PROGRAM.replace("SHORTFALL", self.shortfall)
        await self.container.programs.publish({"program.yaml": text_}, "program.yaml", actor="t")
        for member in MEMBERS:
            await self.container.members.create(NewMember(member_id=member))
        key = await self.container.api_keys.create("till", "pos")
        self.principal = Principal(key.key.id, "till", Role.POS)

    def teardown(self) -> None:
        try:
            self.run(self.container.close())
        finally:
            self.runner.close()

    # -- helpers -----------------------------------------------------------------------

    def _key(self) -> str:
        self.serial += 1
        return f"k-{self.serial}"

    def _record(self, event: EventIn) -> dict[str, Any]:
        recorded = self.run(self.container.events.record(self.principal, self._key(), event))
        assert recorded.status == 201
        assert not recorded.replay
        return recorded.body

    def _balance(self, member: str) -> Any:
        return self.run(self.container.ledger.balance(member))

    def _check_outcome_balances(self, member: str, body: dict[str, Any]) -> None:
        balance = self._balance(member)
        assert body["balances"] == {
            "available": balance.available,
            "pending": balance.pending,
            "held": balance.held,
        }

    # -- rules -------------------------------------------------------------------------

    @rule(
        member=st.sampled_from(MEMBERS),
        total=st.decimals(min_value=0, max_value=600, places=2),
        tea=st.booleans(),
    )
    def purchase_by_total(self, member: str, total: Decimal, tea: bool) -> None:
        order_id = f"O-{self.serial + 1}"
        items = [ItemIn(sku="T1", category="tea", unit_price=total)] if tea else []
        body = self._record(
            EventIn(
                type="purchase",
                member_id=member,
                occurred_at=self.clock.now(),
                order_id=order_id,
                total=total,
                currency="CNY",
                items=items,
            )
        )
        expected = int(total) + (10 if tea else 0)
        assert body["points"] == expected
        assert sum(award["points"] for award in body["awards"]) == expected
        self.models[member].earned += body["points"]
        self.models[member].orders.append(order_id)
        self.orders[order_id] = Order(member, total, body["points"])
        self._check_outcome_balances(member, body)

    @rule(
        member=st.sampled_from(MEMBERS),
        units=st.integers(min_value=1, max_value=4),
        price=st.decimals(min_value="0.01", max_value=200, places=2),
        discount=st.decimals(min_value=0, max_value=5, places=2),
    )
    def purchase_by_items(self, member: str, units: int, price: Decimal, discount: Decimal) -> None:
        order_id = f"O-{self.serial + 1}"
        discount = min(discount, price * units)
        body = self._record(
            EventIn(
                type="purchase",
                member_id=member,
                occurred_at=self.clock.now(),
                order_id=order_id,
                currency="CNY",
                items=[ItemIn(sku="P1", quantity=units, unit_price=price, discount=discount)],
            )
        )
        total = price * units - discount
        assert body["points"] == int(total)
        self.models[member].earned += body["points"]
        self.orders[order_id] = Order(member, total, body["points"], units=units)
        self._check_outcome_balances(member, body)

    @rule(data=st.data(), whole=st.booleans())
    def refund(self, data: st.DataObject, whole: bool) -> None:
        if not self.orders:
            return
        order_id = data.draw(st.sampled_from(sorted(self.orders)), label="order")
        order = self.orders[order_id]
        left = order.total - order.refunded
        if order.units:
            units = order.units - order.units_refunded
            if not whole and units > 1:
                units = data.draw(st.integers(1, units), label="units")
            event = EventIn(
                type="refund",
                member_id=order.member,
                occurred_at=self.clock.now(),
                order_id=order_id,
                items=[ItemIn(sku="P1", quantity=max(units, 1))],
            )
        else:
            amount = left
            if not whole and left > Decimal("0.01"):
                cents = data.draw(st.integers(1, int(left * 100)), label="cents")
                amount = Decimal(cents) / 100
            event = EventIn(
                type="refund",
                member_id=order.member,
                occurred_at=self.clock.now(),
                order_id=order_id,
                total=amount,
            )
        if order.fully_refunded:
            with pytest.raises((Conflict, InvalidInput)) as refused:
                self._record(event)
            codes = {refused.value.code, *(error.code for error in refused.value.errors)}
            assert codes & {"order_already_refunded", "refund_exceeds_order"}, codes
            return
        if order.total == 0:
            with pytest.raises(LoyaltyError):
                self._record(event)
            return
        balance_before = self._balance(order.member)
        body = self._record(event)
        clawed, shortfall = body["clawed_back"], body["shortfall"]
        assert body["points"] == -clawed
        assert clawed >= 0
        assert shortfall >= 0
        if self.shortfall == "floor":
            assert body["balances"]["available"] >= 0
        if order.units:
            order.units_refunded += event.items[0].quantity
        else:
            assert event.total is not None
            order.refunded += event.total
        order.clawed += clawed
        order.shortfall += shortfall
        self.models[order.member].earned -= clawed
        # Never more taken back than the order earned; all of it once fully refunded.
        taken = order.clawed + (order.shortfall if self.shortfall == "floor" else 0)
        assert taken <= order.points
        if order.fully_refunded:
            assert taken == order.points, (order, body)
        after = self._balance(order.member)
        assert (after.available + after.pending) - (
            balance_before.available + balance_before.pending
        ) == -clawed

    @rule(member=st.sampled_from(MEMBERS), points=st.integers(-400, 400).filter(bool))
    def adjust(self, member: str, points: int) -> None:
        before = self._balance(member)
        adjustment = AdjustmentIn(points=points, reason="goodwill")
        if points < 0 and before.available < -points:
            with pytest.raises(InvalidInput) as refused:
                self.run(self.container.ledger.adjust(member, adjustment, self.principal))
            assert refused.value.code == "insufficient_points"
            return
        out = self.run(self.container.ledger.adjust(member, adjustment, self.principal))
        assert out.balances.available == before.available + points
        self.models[member].adjusted += points

    @rule(member=st.sampled_from(MEMBERS))
    def review(self, member: str) -> None:
        body = self._record(
            EventIn(type="custom", name="review", member_id=member, occurred_at=self.clock.now())
        )
        assert body["points"] in (0, 20)
        self.models[member].earned += body["points"]

    @rule(hours=st.integers(min_value=1, max_value=24 * 200))
    def advance_clock(self, hours: int) -> None:
        self.clock.set(self.clock.now() + timedelta(hours=hours))

    @rule()
    def vest_due(self) -> None:
        before = {m: self._balance(m) for m in MEMBERS}
        vested = self.run(self.container.ledger_jobs.vest_due(self.clock.now()))
        after = {m: self._balance(m) for m in MEMBERS}
        assert vested == sum(before[m].pending - after[m].pending for m in MEMBERS)
        for m in MEMBERS:
            moved = before[m].pending - after[m].pending
            assert moved >= 0
            assert after[m].available - before[m].available == moved
            assert all(p.vests_at > self.clock.now() for p in after[m].pending_vesting)
        assert self.run(self.container.ledger_jobs.vest_due(self.clock.now())) == 0

    @rule()
    def expire_due(self) -> None:
        before = {m: self._balance(m) for m in MEMBERS}
        expired = self.run(self.container.ledger_jobs.expire_due(self.clock.now()))
        after = {m: self._balance(m) for m in MEMBERS}
        assert expired == sum(before[m].available - after[m].available for m in MEMBERS)
        for m in MEMBERS:
            gone = before[m].available - after[m].available
            assert gone >= 0
            assert after[m].pending == before[m].pending
            self.models[m].expired += gone
        assert self.run(self.container.ledger_jobs.expire_due(self.clock.now())) == 0

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def audit_passes(self) -> None:
        report = self.run(verify(self.container.db))
        assert report.ok, report

    @invariant()
    def balances_match_the_model(self) -> None:
        for member, model in self.models.items():
            balance = self._balance(member)
            assert balance.held == 0
            assert balance.pending >= 0
            if self.shortfall == "floor":
                assert balance.available >= 0
            assert balance.lifetime_earned == model.earned
            assert balance.available + balance.pending == model.total
            assert sum(p.points for p in balance.pending_vesting) == balance.pending

    @invariant()
    def house_accounts_match(self) -> None:
        sums, lifetime, lot_state = self.run(self._house())
        issued = -sums.get(Account.ISSUED, 0)
        clawed_back = sums.get(Account.CLAWED_BACK, 0)
        assert issued - clawed_back == lifetime == sum(m.earned for m in self.models.values())
        assert -sums.get(Account.ADJUSTED, 0) == sum(m.adjusted for m in self.models.values())
        assert sums.get(Account.EXPIRED, 0) == sum(m.expired for m in self.models.values())
        assert sums.get(Account.REDEEMED, 0) == 0
        for points, remaining, clawed in lot_state:
            assert 0 <= remaining <= points
            assert clawed <= points

    @invariant()
    def entries_follow_their_lots(self) -> None:
        """Each lot's member entries agree with the lot: what is left of it under
        `floor` (nothing is ever repaid from a lot there), and the account of its
        status (a pending lot has no net available entries, and vice versa)."""
        per_lot, state = self.run(self._per_lot())
        for lot_id, (status, remaining) in state.items():
            sums = per_lot.get(lot_id, {})
            if status == "pending":
                assert sums.get(Account.AVAILABLE, 0) == 0, (lot_id, status, sums)
            else:
                assert sums.get(Account.PENDING, 0) == 0, (lot_id, status, sums)
            if self.shortfall == "floor":
                assert sum(sums.values()) == remaining, (lot_id, status, remaining, sums)

    async def _per_lot(self) -> tuple[dict[int, dict[str, int]], dict[int, tuple[str, int]]]:
        async with self.container.db.read() as conn:
            rows = await conn.execute(
                select(
                    ledger_entries.c.lot_id,
                    ledger_entries.c.account,
                    func.sum(ledger_entries.c.amount),
                )
                .where(
                    ledger_entries.c.member_id.is_not(None), ledger_entries.c.lot_id.is_not(None)
                )
                .group_by(ledger_entries.c.lot_id, ledger_entries.c.account)
            )
            per_lot: dict[int, dict[str, int]] = {}
            for lot_id, account, amount in rows:
                per_lot.setdefault(lot_id, {})[account] = int(amount)
            state = {
                row.id: (row.status, int(row.remaining))
                for row in await conn.execute(select(lots.c.id, lots.c.status, lots.c.remaining))
            }
        return per_lot, state

    async def _house(self) -> tuple[dict[str, int], int, list[Any]]:
        async with self.container.db.read() as conn:
            rows = await conn.execute(
                select(ledger_entries.c.account, func.sum(ledger_entries.c.amount))
                .where(ledger_entries.c.member_id.is_(None))
                .group_by(ledger_entries.c.account)
            )
            sums = {account: int(total) for account, total in rows}
            lifetime = int(
                await conn.scalar(select(func.coalesce(func.sum(balances.c.lifetime_earned), 0)))
                or 0
            )
            lot_state = list(
                await conn.execute(select(lots.c.points, lots.c.remaining, lots.c.clawed))
            )
            clawed_orders = await conn.execute(select(orders.c.points, orders.c.clawed))
            for points, clawed in clawed_orders:
                assert 0 <= clawed <= points
        return sums, lifetime, lot_state


@pytest.mark.parametrize("shortfall", ["floor", "negative_balance"])
def test_ledger_state_machine(db_url: URL, shortfall: str) -> None:
    machine = type(
        f"LedgerMachine_{shortfall}", (LedgerMachine,), {"url": db_url, "shortfall": shortfall}
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            # LOYALTY_LEDGER_EXAMPLES=200 for a longer hunt; 10 x 15 keeps CI fast.
            max_examples=int(os.environ.get("LOYALTY_LEDGER_EXAMPLES", "10")),
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            # No shrinking: each step is a few database round trips and shrinking a
            # long failing run takes many minutes; the failing steps are printed anyway.
            phases=[Phase.explicit, Phase.generate],
        ),
    )


@pytest.mark.parametrize("units", [3, 7])
async def test_returning_every_unit_one_by_one_refunds_the_whole_order(
    container: Container, units: int
) -> None:
    """A line whose price does not divide by its quantity (29.99 for 3): returning the
    units one at a time must refund exactly what was paid and claw back every point,
    on PostgreSQL too, where order amounts are stored with four decimals."""
    text_ = PROGRAM.replace("SHORTFALL", "floor")
    await container.programs.publish({"program.yaml": text_}, "program.yaml", actor="t")
    await container.members.create(NewMember(member_id="M1"))
    key = await container.api_keys.create("till", "pos")
    till = Principal(key.key.id, "till", Role.POS)
    now = container.clock.now()
    line = ItemIn(sku="P1", quantity=units, unit_price=Decimal("10.00"), discount=Decimal("0.01"))
    bought = await container.events.record(
        till,
        "buy",
        EventIn(type="purchase", member_id="M1", occurred_at=now, order_id="O-1", items=[line]),
    )
    points = bought.body["points"]
    assert points == int(Decimal("10.00") * units - Decimal("0.01"))
    clawed = 0
    for n in range(units):
        returned = await container.events.record(
            till,
            f"return-{n}",
            EventIn(
                type="refund",
                member_id="M1",
                occurred_at=now,
                order_id="O-1",
                items=[ItemIn(sku="P1", quantity=1)],
            ),
        )
        assert returned.status == 201
        clawed += returned.body["clawed_back"]
    assert clawed == points
    balance = await container.ledger.balance("M1")
    assert (balance.available, balance.pending, balance.lifetime_earned) == (0, 0, 0)
    with pytest.raises(Conflict) as again:
        await container.events.record(
            till,
            "return-again",
            EventIn(
                type="refund", member_id="M1", occurred_at=now, order_id="O-1", total=Decimal(1)
            ),
        )
    assert again.value.code == "order_already_refunded"
    async with container.db.read() as conn:
        row = (await conn.execute(select(orders.c.total, orders.c.refunded))).one()
    assert row.refunded == row.total
    report = await verify(container.db)
    assert report.ok, report
