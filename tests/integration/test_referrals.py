"""Referrals over HTTP on both dialects: qualification, rewards, fraud controls."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from loyalty.bootstrap import Container
from loyalty.clock import FixedClock
from loyalty.ledger.audit import verify

PROGRAM = """
program: referral-shop
currency: CNY
point_value: "0.01"
timezone: Asia/Shanghai
referrals:
  qualify: { min_spend: "100.00", within_days: 30 }
  rewards: { referrer: 500, referee: 200, referee_reward: welcome-tea }
  limit: { max: 2, period: year }
rewards:
  welcome-tea: { kind: free_product, sku: TEA-1, cost: 0, coupon_days: 30 }
rules:
  - id: base
    on: purchase
    award: { per_amount: "1.00", points: 1, rounding: floor }
    pending_days: 14
  - id: referral-bonus
    on: referral
    reason: "Referral thank-you"
    award: { fixed: 50 }
"""


@pytest.fixture
async def shop(container: Container, client: httpx.AsyncClient, keys: dict[str, str]) -> Any:
    await container.programs.publish({"program.yaml": PROGRAM}, "program.yaml", actor="test")
    response = await client.post(
        "/v1/members",
        json={"member_id": "REF", "email": "ref@example.com", "phone": "+8613800138000"},
        headers={"Authorization": keys["pos"]},
    )
    assert response.status_code == 201
    return response.json()["referral_code"]


async def _join(
    client: httpx.AsyncClient, keys: dict[str, str], member: str, code: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        "/v1/members",
        json={"member_id": member, "referred_by": code} | extra,
        headers={"Authorization": keys["pos"]},
    )


async def _buy(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    clock: FixedClock,
    member: str,
    order: str,
    total: str,
) -> Any:
    body = {
        "type": "purchase",
        "member_id": member,
        "order_id": order,
        "total": total,
        "occurred_at": clock.now().isoformat(),
    }
    response = await client.post(
        "/v1/events", json=body, headers={"Authorization": keys["pos"], "Idempotency-Key": order}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _balance(client: httpx.AsyncClient, keys: dict[str, str], member: str) -> Any:
    return (
        await client.get(f"/v1/members/{member}/balance", headers={"Authorization": keys["app"]})
    ).json()


async def _referrals(client: httpx.AsyncClient, keys: dict[str, str], member: str = "REF") -> Any:
    response = await client.get(
        f"/v1/members/{member}/referrals", headers={"Authorization": keys["marketer"]}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_qualifying_first_purchase_rewards_both_sides_pending_until_it_vests(
    shop: str,
    container: Container,
    client: httpx.AsyncClient,
    keys: dict[str, str],
    clock: FixedClock,
) -> None:
    joined = await _join(client, keys, "NEW", shop.lower())
    assert joined.status_code == 201, joined.text
    view = await _referrals(client, keys)
    assert view["referral_code"] == shop
    assert [(r["referee"], r["state"]) for r in view["referrals"]] == [("NEW", "pending")]
    assert (await _referrals(client, keys, "NEW"))["referred_by"] == shop
    await _buy(client, keys, clock, "NEW", "O1", "120.00")
    assert (await _balance(client, keys, "NEW"))["pending"] == 120 + 200
    assert (await _balance(client, keys, "REF"))["pending"] == 500 + 50
    assert (await _referrals(client, keys))["referrals"][0]["state"] == "rewarded"
    coupons = (
        await client.get("/v1/members/NEW/coupons", headers={"Authorization": keys["app"]})
    ).json()
    assert [(c["reward_id"], c["status"]) for c in coupons] == [("welcome-tea", "issued")]
    clock.set(clock.now() + timedelta(days=15))
    await container.ledger_jobs.vest_due()
    assert (await _balance(client, keys, "REF"))["available"] == 550
    assert (await verify(container.db)).ok


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"email": "REF@example.com"}, "self-referral"),
        ({"phone": "+86 138 0013 8000"}, "self-referral"),
    ],
)
async def test_self_referral_is_rejected_with_its_reason(
    shop: str,
    client: httpx.AsyncClient,
    keys: dict[str, str],
    clock: FixedClock,
    extra: dict[str, str],
    reason: str,
) -> None:
    assert (await _join(client, keys, "ME2", shop, **extra)).status_code == 201
    await _buy(client, keys, clock, "ME2", "O1", "500.00")
    referral = (await _referrals(client, keys))["referrals"][0]
    assert referral["state"] == "rejected"
    assert referral["reason"].startswith(reason)
    assert (await _balance(client, keys, "REF"))["pending"] == 0


async def test_unknown_code_is_refused_and_nothing_is_written(
    shop: str, container: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    response = await _join(client, keys, "X1", "NOSUCHCODE")
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "referred_by",
        "code": "unknown_referral_code",
        "message": "no member has referral code 'NOSUCHCODE'",
    }
    assert (
        await client.get("/v1/members/X1", headers={"Authorization": keys["pos"]})
    ).status_code == 404


async def test_first_purchase_that_does_not_qualify_and_the_yearly_limit(
    shop: str, client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock
) -> None:
    for member in ("A", "B", "C", "D"):
        await _join(client, keys, member, shop)
    await _buy(client, keys, clock, "A", "O-A", "50.00")  # below the minimum
    await _buy(client, keys, clock, "A", "O-A2", "500.00")  # not the first purchase any more
    await _buy(client, keys, clock, "B", "O-B", "100.00")
    await _buy(client, keys, clock, "C", "O-C", "100.00")
    clock.set(clock.now() + timedelta(days=31))
    await _buy(client, keys, clock, "D", "O-D", "300.00")  # too late anyway
    states = {
        r["referee"]: (r["state"], r["reason"])
        for r in (await _referrals(client, keys))["referrals"]
    }
    assert states["A"] == ("rejected", "first purchase 50.00 is below 100.00")
    assert states["B"] == ("rewarded", None)
    assert states["C"] == ("rewarded", None)
    assert states["D"][0] == "rejected"
    assert "30 days" in states["D"][1]
    await _join(client, keys, "E", shop)
    await _buy(client, keys, clock, "E", "O-E", "300.00")
    states = {
        r["referee"]: (r["state"], r["reason"])
        for r in (await _referrals(client, keys))["referrals"]
    }
    assert states["E"] == ("rejected", "referrer reached 2 rewarded referrals per year")


async def test_refund_before_vesting_claws_back_both_sides(
    shop: str,
    container: Container,
    client: httpx.AsyncClient,
    keys: dict[str, str],
    clock: FixedClock,
) -> None:
    await _join(client, keys, "NEW", shop)
    await _buy(client, keys, clock, "NEW", "O1", "120.00")
    refund = {
        "type": "refund",
        "member_id": "NEW",
        "order_id": "O1",
        "total": "20.00",
        "occurred_at": clock.now().isoformat(),
    }
    response = await client.post(
        "/v1/events", json=refund, headers={"Authorization": keys["pos"], "Idempotency-Key": "r1"}
    )
    assert response.status_code == 201, response.text
    assert (await _balance(client, keys, "REF"))["pending"] == 0
    assert (await _balance(client, keys, "NEW"))["pending"] == 100  # 120 - 20 earned; referral gone
    referral = (await _referrals(client, keys))["referrals"][0]
    assert referral["state"] == "rejected"
    assert "refunded" in referral["reason"]
    coupons = (
        await client.get("/v1/members/NEW/coupons", headers={"Authorization": keys["app"]})
    ).json()
    assert [c["status"] for c in coupons] == ["cancelled"]
    assert (await verify(container.db)).ok


@pytest.mark.postgres_only
async def test_referees_buying_at_once_never_exceed_the_referrers_limit(
    shop: str, client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock
) -> None:
    friends = [f"F{n}" for n in range(6)]
    for friend in friends:
        assert (await _join(client, keys, friend, shop)).status_code == 201
    await asyncio.gather(
        *(_buy(client, keys, clock, friend, f"O-{friend}", "150.00") for friend in friends)
    )
    states = [r["state"] for r in (await _referrals(client, keys))["referrals"]]
    assert states.count("rewarded") == 2  # limit: { max: 2, period: year }
    assert states.count("rejected") == 4
