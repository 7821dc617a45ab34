"""Two-phase redemptions at the till, on both dialects; concurrency on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from loyalty.bootstrap import Container
from loyalty.clock import FixedClock
from loyalty.ledger.audit import verify

PROGRAM = """
program: till-shop
currency: CNY
point_value: "0.01"
timezone: Asia/Shanghai
expiry: { policy: rolling_months, months: 1 }
tiers:
  - { id: member }
  - { id: gold, qualify: { spend: "100000.00" } }
rewards:
  mug: { kind: gift, cost: 100, stock: 10 }
  lounge: { kind: gift, cost: 100, tiers: [gold] }
points_payment: { points: 100, value: "1.00" }
rules:
  - id: base
    on: purchase
    award: { per_amount: "1.00", points: 1, rounding: floor }
"""


@pytest.fixture
async def till(container: Container, client: httpx.AsyncClient, keys: dict[str, str]) -> Container:
    await container.programs.publish({"program.yaml": PROGRAM}, "program.yaml", actor="test")
    await client.post(
        "/v1/members", json={"member_id": "M1"}, headers={"Authorization": keys["pos"]}
    )
    credit = await client.post(
        "/v1/members/M1/adjustments",
        json={"points": 1000, "reason": "welcome"},
        headers={"Authorization": keys["marketer"]},
    )
    assert credit.status_code == 201, credit.text
    return container


async def _hold(
    client: httpx.AsyncClient, keys: dict[str, str], key: str, **body: Any
) -> httpx.Response:
    return await client.post(
        "/v1/redemptions",
        json={"member_id": "M1"} | body,
        headers={"Authorization": keys["pos"], "Idempotency-Key": key},
    )


async def _balance(client: httpx.AsyncClient, keys: dict[str, str]) -> Any:
    return (
        await client.get("/v1/members/M1/balance", headers={"Authorization": keys["pos"]})
    ).json()


async def test_hold_commit_part_and_release_the_rest(
    till: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    held = await _hold(client, keys, "h1", points=300)
    assert held.status_code == 201, held.text
    hold = held.json()
    assert (hold["state"], hold["points"], hold["value"], hold["currency"]) == (
        "held",
        300,
        "3.00",
        "CNY",
    )
    # Capturing nothing is a cancel: a "committed" hold that spent nothing would
    # tell the till to hand the goods over.
    nothing = await client.post(
        f"/v1/redemptions/{hold['id']}/commit",
        json={"points": 0},
        headers={"Authorization": keys["pos"]},
    )
    assert nothing.status_code == 422
    balance = await _balance(client, keys)
    assert (balance["available"], balance["held"]) == (700, 300)
    replay = await _hold(client, keys, "h1", points=300)
    assert replay.headers["idempotent-replay"] == "true"
    assert replay.json()["id"] == hold["id"]
    other = await _hold(client, keys, "h1", points=200)
    assert other.status_code == 409
    committed = await client.post(
        f"/v1/redemptions/{hold['id']}/commit",
        json={"points": 120},
        headers={"Authorization": keys["pos"]},
    )
    assert committed.status_code == 200, committed.text
    assert (committed.json()["state"], committed.json()["committed_points"]) == ("committed", 120)
    balance = await _balance(client, keys)
    assert (balance["available"], balance["held"], balance["lifetime_redeemed"]) == (880, 0, 120)
    again = await client.post(
        f"/v1/redemptions/{hold['id']}/cancel", headers={"Authorization": keys["pos"]}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "redemption_resolved"
    assert (await verify(till.db)).ok


async def test_cancel_restores_the_same_lots_and_an_expired_hold_is_final(
    till: Container, client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock
) -> None:
    async with till.db.read() as conn:
        before = (await conn.exec_driver_sql("SELECT id, remaining, expires_at FROM lots")).all()
    hold = (await _hold(client, keys, "h1", points=400)).json()
    cancelled = await client.post(
        f"/v1/redemptions/{hold['id']}/cancel", headers={"Authorization": keys["pos"]}
    )
    assert cancelled.json()["state"] == "cancelled"
    async with till.db.read() as conn:
        after = (await conn.exec_driver_sql("SELECT id, remaining, expires_at FROM lots")).all()
    assert after == before
    late = (await _hold(client, keys, "h2", points=100, hold_seconds=60)).json()
    clock.set(clock.now() + timedelta(seconds=61))
    assert (await _balance(client, keys))["available"] == 1000  # released on read
    refused = await client.post(
        f"/v1/redemptions/{late['id']}/commit", json={}, headers={"Authorization": keys["pos"]}
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "hold_expired"
    assert await till.redemptions.release_expired() == 1
    assert await till.redemptions.release_expired() == 0
    assert (
        await client.get(f"/v1/redemptions/{late['id']}", headers={"Authorization": keys["pos"]})
    ).json()["state"] == "expired"
    assert (await verify(till.db)).ok


async def test_a_new_hold_can_use_the_points_of_a_lapsed_one_at_once(
    till: Container, client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock
) -> None:
    lapsed = (await _hold(client, keys, "h1", points=1000, hold_seconds=60)).json()
    clock.set(clock.now() + timedelta(seconds=61))
    # No sweep has run: the new hold releases the lapsed one in its own transaction.
    again = await _hold(client, keys, "h2", points=1000)
    assert again.status_code == 201, again.text
    state = await client.get(
        f"/v1/redemptions/{lapsed['id']}", headers={"Authorization": keys["pos"]}
    )
    assert state.json()["state"] == "expired"
    assert await till.redemptions.release_expired() == 0
    assert (await _balance(client, keys))["held"] == 1000
    assert (await verify(till.db)).ok


async def test_points_whose_lot_expired_during_the_hold_go_to_expired(
    till: Container, client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock
) -> None:
    hold = (await _hold(client, keys, "h1", points=1000, hold_seconds=86_400)).json()
    clock.set(clock.now() + timedelta(days=32, hours=1))  # the lot's month is over
    await till.ledger_jobs.expire_due()
    await till.redemptions.release_expired()
    balance = await _balance(client, keys)
    assert (balance["available"], balance["held"]) == (0, 0)
    assert (
        await client.get(f"/v1/redemptions/{hold['id']}", headers={"Authorization": keys["pos"]})
    ).json()["state"] == "expired"
    assert (await verify(till.db)).ok


async def test_rewards_check_eligibility_and_points(
    till: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    lounge = await _hold(client, keys, "r1", reward_id="lounge")
    assert lounge.status_code == 409
    assert lounge.json()["code"] == "reward_not_redeemable"
    assert "for tiers gold" in lounge.json()["detail"]
    missing = await _hold(client, keys, "r2", reward_id="nope")
    assert missing.status_code == 404
    both = await _hold(client, keys, "r3", reward_id="mug", points=5)
    assert both.status_code == 422
    too_much = await _hold(client, keys, "r4", points=5000)
    assert too_much.status_code == 422
    assert too_much.json()["code"] == "insufficient_points"
    mug = (await _hold(client, keys, "r5", reward_id="mug")).json()
    partial = await client.post(
        f"/v1/redemptions/{mug['id']}/commit",
        json={"points": 50},
        headers={"Authorization": keys["pos"]},
    )
    assert partial.status_code == 422
    whole = await client.post(
        f"/v1/redemptions/{mug['id']}/commit", json={}, headers={"Authorization": keys["pos"]}
    )
    assert whole.json()["committed_points"] == 100


@pytest.mark.postgres_only
async def test_fifty_concurrent_holds_never_overdraw(
    till: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    responses = await asyncio.gather(*(_hold(client, keys, f"c{i}", points=70) for i in range(50)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 14  # 14 x 70 = 980 of 1000 points
    assert statuses.count(422) == 36
    balance = await _balance(client, keys)
    assert (balance["available"], balance["held"]) == (20, 980)
    assert (await verify(till.db)).ok


async def test_concurrent_retries_of_one_hold_replay_it(
    till: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    responses = await asyncio.gather(*(_hold(client, keys, "same", points=100) for _ in range(5)))
    assert [r.status_code for r in responses] == [201] * 5
    assert len({r.json()["id"] for r in responses}) == 1
    assert (await _balance(client, keys))["held"] == 100


@pytest.mark.postgres_only
async def test_fifty_buyers_of_a_reward_with_stock_ten_get_exactly_ten(
    till: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    for i in range(50):
        await client.post(
            "/v1/members", json={"member_id": f"B{i}"}, headers={"Authorization": keys["pos"]}
        )
        await client.post(
            f"/v1/members/B{i}/adjustments",
            json={"points": 100, "reason": "gift"},
            headers={"Authorization": keys["marketer"]},
        )
    responses = await asyncio.gather(
        *(
            client.post(
                "/v1/redemptions",
                json={"member_id": f"B{i}", "reward_id": "mug"},
                headers={"Authorization": keys["pos"], "Idempotency-Key": f"b{i}"},
            )
            for i in range(50)
        )
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 10
    assert {r.json()["code"] for r in responses if r.status_code != 201} == {"out_of_stock"}
    assert (await verify(till.db)).ok


async def _pay_with_points(
    client: httpx.AsyncClient, keys: dict[str, str], points: int, order: str, total: str
) -> Any:
    hold = (await _hold(client, keys, f"pay-{order}", points=points)).json()
    committed = await client.post(
        f"/v1/redemptions/{hold['id']}/commit", json={}, headers={"Authorization": keys["pos"]}
    )
    assert committed.status_code == 200, committed.text
    purchase = {
        "type": "purchase",
        "member_id": "M1",
        "order_id": order,
        "total": total,
        "payment_method": "points",
        "redemption_id": hold["id"],
        "occurred_at": "2026-06-15T09:00:00Z",
    }
    posted = await client.post(
        "/v1/events",
        json=purchase,
        headers={"Authorization": keys["pos"], "Idempotency-Key": order},
    )
    assert posted.status_code == 201, posted.text
    return hold


async def _refund(
    client: httpx.AsyncClient, keys: dict[str, str], order: str, total: str, key: str
) -> Any:
    body = {
        "type": "refund",
        "member_id": "M1",
        "order_id": order,
        "total": total,
        "occurred_at": "2026-06-15T09:10:00Z",
    }
    response = await client.post(
        "/v1/events", json=body, headers={"Authorization": keys["pos"], "Idempotency-Key": key}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_refunding_a_purchase_paid_with_points_gives_them_back(
    till: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    hold = await _pay_with_points(client, keys, 400, "O1", "40.00")
    # The purchase itself earns 40 points (base rule) on top of the 600 left.
    assert (await _balance(client, keys))["available"] == 640
    half = await _refund(client, keys, "O1", "20.00", "r1")
    assert half["points_restored"] == 200
    rest = await _refund(client, keys, "O1", "20.00", "r2")
    assert rest["points_restored"] == 200
    balance = await _balance(client, keys)
    assert (balance["available"], balance["lifetime_redeemed"]) == (1000, 0)
    reuse = {
        "type": "purchase",
        "member_id": "M1",
        "order_id": "O2",
        "total": "5.00",
        "redemption_id": hold["id"],
        "occurred_at": "2026-06-15T09:00:00Z",
    }
    again = await client.post(
        "/v1/events", json=reuse, headers={"Authorization": keys["pos"], "Idempotency-Key": "o2"}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "redemption_already_used"
    assert (await verify(till.db)).ok


async def test_partial_refunds_of_a_points_payment_restore_each_lot_once(
    till: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    second = await client.post(
        "/v1/members/M1/adjustments",
        json={"points": 100, "reason": "second-lot"},
        headers={"Authorization": keys["marketer"]},
    )
    assert second.status_code == 201, second.text
    await _pay_with_points(client, keys, 1100, "O1", "20.00")  # both lots, whole
    await _refund(client, keys, "O1", "10.00", "r1")
    await _refund(client, keys, "O1", "10.00", "r2")
    async with till.db.read() as conn:
        lots = (
            await conn.exec_driver_sql(
                "SELECT points, remaining FROM lots WHERE rule_id IS NULL ORDER BY id"
            )
        ).all()
    # Each lot gets back exactly what it paid: the second refund continues where the
    # first stopped instead of crediting the first lot again.
    assert [tuple(lot) for lot in lots] == [(1000, 1000), (100, 100)]
    assert (await verify(till.db)).ok


async def test_points_restored_after_their_lot_expired_go_to_expired(
    till: Container, client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock
) -> None:
    await _pay_with_points(client, keys, 1000, "O1", "10.00")
    clock.set(clock.now() + timedelta(days=40))  # the welcome lot expired meanwhile
    refund = await _refund(client, keys, "O1", "10.00", "r1")
    assert refund["points_restored"] == 1000
    # Nothing comes back to spend: the order's own 10 points are clawed back, and the
    # 1000 that paid for it went to expired with their lot.
    assert (await _balance(client, keys))["available"] == 0
    async with till.db.read() as conn:
        expired = await conn.scalar(
            text("SELECT sum(amount) FROM ledger_entries WHERE account = 'expired'")
        )
    assert expired == 1000
    assert (await verify(till.db)).ok
