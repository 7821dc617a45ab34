"""The ledger under concurrent writers: idempotency races, refunds, debits and
purchases on one member at once, no deadlocks, and the append-only trigger.

Requests go through the real app (httpx over ASGI) on a container whose pool is
large enough that the requests really hold database connections at the same time.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from loyalty.bootstrap import Container
from loyalty.clock import FixedClock
from loyalty.db.schema import events, ledger_transactions, orders
from loyalty.ledger.audit import verify
from tests.conftest import settings_for
from tests.programs import purchase

POOL = 25  # up to 50 connections (pool + overflow): real concurrency, within max_connections

PROGRAM = """
program: concurrency
currency: CNY
point_value: "0.01"
timezone: Asia/Shanghai
expiry: { policy: rolling_months, months: 12 }
refunds: { shortfall: floor }
rules:
  - id: base
    on: purchase
    priority: 100
    reason: "1 point per CNY"
    award: { per_amount: "1.00", points: 1, rounding: floor }
  - id: welcome-back
    on: purchase
    priority: 90
    reason: "10 bonus points, after the return window"
    award: { fixed: 10 }
    pending_days: 14
  - id: review
    on: custom
    event: review
    reason: "Thanks for your review"
    award: { fixed: 20 }
"""


@pytest.fixture
async def container(db_url: URL, clock: FixedClock) -> AsyncIterator[Container]:
    """The shared fixture's container, with a pool big enough for the writers here."""
    container = Container(
        settings_for(db_url, auth_cache_seconds=0, db_pool_size=POOL), clock=clock
    )
    yield container
    await container.close()


@pytest.fixture
async def shop(container: Container, client: httpx.AsyncClient, keys: dict[str, str]) -> Container:
    await container.programs.publish({"program.yaml": PROGRAM}, "program.yaml", actor="test")
    for member in ("M1", "M2"):
        response = await client.post(
            "/v1/members", json={"member_id": member}, headers={"Authorization": keys["pos"]}
        )
        assert response.status_code == 201, response.text
    return container


def _refund(order: str, total: str, member: str = "M1") -> dict[str, Any]:
    return {
        "type": "refund",
        "member_id": member,
        "order_id": order,
        "total": total,
        "occurred_at": "2026-06-15T09:10:00Z",
    }


async def _event(
    client: httpx.AsyncClient, keys: dict[str, str], body: dict[str, Any], key: str
) -> httpx.Response:
    return await client.post(
        "/v1/events", json=body, headers={"Authorization": keys["pos"], "Idempotency-Key": key}
    )


async def _adjust(
    client: httpx.AsyncClient, keys: dict[str, str], points: int, member: str = "M1"
) -> httpx.Response:
    return await client.post(
        f"/v1/members/{member}/adjustments",
        json={"points": points, "reason": "goodwill"},
        headers={"Authorization": keys["marketer"]},
    )


async def _balance(client: httpx.AsyncClient, keys: dict[str, str], member: str = "M1") -> Any:
    response = await client.get(
        f"/v1/members/{member}/balance", headers={"Authorization": keys["app"]}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _audit(container: Container) -> None:
    report = await verify(container.db)
    assert report.ok, report


async def test_one_idempotency_key_posted_100_times_at_once_is_recorded_once(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    body = purchase("O-race")
    responses = await asyncio.gather(*(_event(client, keys, body, "race-1") for _ in range(100)))
    assert [r.status_code for r in responses] == [201] * 100, [r.text for r in responses]
    first = [r for r in responses if "idempotent-replay" not in r.headers]
    replays = [r for r in responses if r.headers.get("idempotent-replay") == "true"]
    assert len(first) == 1
    assert len(replays) == 99
    outcome = first[0].json()
    assert outcome["points"] == 110
    assert all(r.json() == outcome for r in replays)
    async with shop.db.read() as conn:
        recorded = await conn.scalar(
            select(func.count()).select_from(events).where(events.c.idempotency_key == "race-1")
        )
        transactions = await conn.scalar(
            select(func.count())
            .select_from(ledger_transactions)
            .where(ledger_transactions.c.event_id == outcome["event_id"])
        )
        all_transactions = await conn.scalar(select(func.count()).select_from(ledger_transactions))
    assert (recorded, transactions, all_transactions) == (1, 1, 1)
    balance = await _balance(client, keys)
    assert (balance["available"], balance["pending"], balance["lifetime_earned"]) == (100, 10, 110)
    # The same key with another body is refused, and nothing more is written.
    reused = await _event(client, keys, purchase("O-race", total="99.00"), "race-1")
    assert reused.status_code == 409
    assert reused.json()["code"] == "idempotency_key_reused"
    assert (await _balance(client, keys))["available"] == 100
    await _audit(shop)


async def test_one_key_two_bodies_at_once_one_wins_the_other_is_refused(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    bodies = [purchase("O-a", "10.00"), purchase("O-b", "20.00")] * 25
    random.Random(7).shuffle(bodies)
    responses = await asyncio.gather(*(_event(client, keys, b, "race-2") for b in bodies))
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, [r.text for r in responses]
    winners = [(b, r) for b, r in zip(bodies, responses, strict=True) if r.status_code == 201]
    fresh = [r for _, r in winners if "idempotent-replay" not in r.headers]
    assert len(fresh) == 1
    won = next(b for b, r in winners if r is fresh[0])
    # Every 201 is the winner's body and outcome; every loser got the reuse conflict.
    assert all(b == won for b, _ in winners)
    assert all(r.json() == fresh[0].json() for _, r in winners)
    assert statuses[201] == 25
    assert statuses[409] == 25
    assert all(
        r.json()["code"] == "idempotency_key_reused" for r in responses if r.status_code == 409
    )
    balance = await _balance(client, keys)
    assert balance["available"] == int(Decimal(won["total"]))
    assert balance["pending"] == 10
    await _audit(shop)


async def test_one_order_posted_under_many_keys_at_once_earns_once(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    body = purchase("O-twice", "50.00")
    responses = await asyncio.gather(*(_event(client, keys, body, f"k-{n}") for n in range(20)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == Counter({201: 1, 409: 19}), [r.text for r in responses]
    assert all(r.json()["code"] == "order_exists" for r in responses if r.status_code == 409)
    async with shop.db.read() as conn:
        count = await conn.scalar(select(func.count()).select_from(orders))
        recorded = await conn.scalar(select(func.count()).select_from(events))
    assert count == 1
    assert recorded == 1  # the refused events left nothing behind
    balance = await _balance(client, keys)
    assert (balance["available"], balance["pending"]) == (50, 10)
    await _audit(shop)


@pytest.mark.postgres_only
async def test_concurrent_refunds_debits_and_purchases_on_one_member(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    # Ten orders of 100 available and 10 pending points each.
    expected = 0
    for n in range(10):
        bought = await _event(client, keys, purchase(f"O-{n}"), f"buy-{n}")
        assert bought.status_code == 201
        expected += bought.json()["points"]
    assert expected == 1100
    rng = random.Random(2026)
    calls: list[tuple[str, Any]] = []
    for n in range(10):
        # Each order refunded in three pieces that add up to more than its total: one
        # piece (at most) must be refused.
        calls += [("refund", (f"O-{n}", piece)) for piece in ("30.00", "50.00", "40.00")]
    calls += [("debit", rng.randint(10, 150)) for _ in range(20)]
    calls += [("credit", rng.randint(1, 50)) for _ in range(5)]
    calls += [("buy", f"N-{n}") for n in range(10)]
    calls += [("review", n) for n in range(5)]
    rng.shuffle(calls)

    async def call(index: int, kind: str, arg: Any) -> tuple[str, Any, httpx.Response]:
        if kind == "refund":
            order, piece = arg
            return kind, arg, await _event(client, keys, _refund(order, piece), f"r-{index}")
        if kind == "debit":
            return kind, arg, await _adjust(client, keys, -arg)
        if kind == "credit":
            return kind, arg, await _adjust(client, keys, arg)
        if kind == "buy":
            return kind, arg, await _event(client, keys, purchase(arg, "10.00"), f"b-{index}")
        body = {
            "type": "custom",
            "name": "review",
            "member_id": "M1",
            "occurred_at": "2026-06-15T09:20:00Z",
        }
        return kind, arg, await _event(client, keys, body, f"c-{index}")

    results = await asyncio.gather(*(call(i, kind, arg) for i, (kind, arg) in enumerate(calls)))

    refunded: Counter[str] = Counter()
    for kind, arg, response in results:
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            code = response.json()["code"]
            fields = {e.get("code") for e in response.json().get("errors", [])}
            if kind == "debit":
                assert (response.status_code, code) == (422, "insufficient_points"), response.text
            elif kind == "refund":
                assert "refund_exceeds_order" in fields or code == "order_already_refunded"
            else:
                raise AssertionError(f"{kind} {arg} failed: {response.text}")
            continue
        out = response.json()
        assert out["balances"]["available"] >= 0
        if kind == "refund":
            refunded[arg[0]] += int(Decimal(arg[1]))
            expected += out["points"]
            assert out["points"] == -(out["clawed_back"])
        elif kind in ("debit", "credit"):
            expected += out["points"]
            assert out["points"] == (-arg if kind == "debit" else arg)
        else:
            expected += out["points"]
    # Each order: the accepted pieces never exceed it; a refused piece could not fit.
    for n in range(10):
        assert refunded[f"O-{n}"] <= 100
        assert refunded[f"O-{n}"] in (70, 80, 90)  # any two pieces fit, never three
    async with shop.db.read() as conn:
        stored = {
            row.order_id: row
            for row in await conn.execute(select(orders).where(orders.c.order_id.like("O-%")))
        }
    for order_id, row in stored.items():
        assert row.refunded == refunded[order_id]
        assert 0 <= row.clawed <= row.points
    balance = await _balance(client, keys)
    assert balance["available"] >= 0
    assert balance["available"] + balance["pending"] == expected
    await _audit(shop)


@pytest.mark.postgres_only
async def test_sixteen_concurrent_writers_on_one_member_never_deadlock(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock
) -> None:
    """Sixteen writers, each a stream of purchases, partial refunds, credits and debits
    on M1 (and sometimes M2), with the vesting and expiry jobs running among them."""
    for n in range(4):
        for member in ("M1", "M2"):
            response = await _event(
                client, keys, purchase(f"S-{member}-{n}", member=member), f"s-{member}-{n}"
            )
            assert response.status_code == 201

    failures: list[str] = []

    async def writer(w: int) -> None:
        rng = random.Random(w)
        for step in range(8):
            kind = rng.choice(["buy", "refund", "credit", "debit", "debit", "jobs"])
            member = "M2" if rng.random() < 0.2 else "M1"
            if kind == "buy":
                response = await _event(
                    client, keys, purchase(f"W-{w}-{step}", "25.00", member), f"w-{w}-{step}"
                )
            elif kind == "refund":
                order = f"S-{member}-{rng.randrange(4)}"
                response = await _event(
                    client, keys, _refund(order, "5.00", member), f"wr-{w}-{step}"
                )
            elif kind == "jobs":
                # Run the jobs as of later dates, so that they find work: vest the
                # pending bonuses, and sometimes expire everything.
                later = clock.now() + timedelta(days=rng.choice([15, 15, 400]))
                await shop.ledger_jobs.vest_due(later)
                await shop.ledger_jobs.expire_due(later)
                continue
            else:
                points = rng.randint(1, 60)
                response = await _adjust(
                    client, keys, points if kind == "credit" else -points, member
                )
            if response.status_code >= 500 or (
                response.status_code >= 400
                and response.json()["code"] not in ("insufficient_points", "validation_failed")
            ):
                failures.append(f"{kind}: {response.status_code} {response.text}")

    # A deadlock would hang (or be broken by PostgreSQL into a 500): bound the wait.
    await asyncio.wait_for(asyncio.gather(*(writer(w) for w in range(16))), timeout=60)
    assert failures == []
    async with shop.db.read() as conn:
        rows = await conn.execute(
            select(ledger_transactions.c.kind, func.count()).group_by(ledger_transactions.c.kind)
        )
        kinds: Counter[str] = Counter({kind: int(count) for kind, count in rows})
    # The jobs did find work among the writers (the seeds are fixed).
    assert kinds["vest"] > 0
    assert kinds["expire"] > 0
    assert kinds["refund"] > 0
    for member in ("M1", "M2"):
        balance = await _balance(client, keys, member)
        assert balance["available"] >= 0
        assert balance["pending"] >= 0
    await _audit(shop)


@pytest.mark.postgres_only
@pytest.mark.parametrize("table", ["ledger_entries", "ledger_transactions"])
@pytest.mark.parametrize("statement", ["UPDATE {table} SET at = at", "DELETE FROM {table}"])
async def test_postgres_refuses_to_change_the_ledger(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str], table: str, statement: str
) -> None:
    assert (await _event(client, keys, purchase("O-1"), "k-1")).status_code == 201
    with pytest.raises(DBAPIError, match="append-only"):
        async with shop.db.engine.begin() as conn:
            await conn.execute(text(statement.format(table=table)))
    async with shop.db.read() as conn:
        count = await conn.scalar(text(f"SELECT count(*) FROM {table}"))
    assert count is not None
    assert count > 0
    await _audit(shop)
