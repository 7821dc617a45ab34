"""The catalog with eligibility, one-step redemptions into coupons, coupon use."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from loyalty.bootstrap import Container
from loyalty.clock import FixedClock
from loyalty.ledger.audit import verify

PROGRAM = """
program: coupon-shop
currency: CNY
point_value: "0.01"
timezone: Asia/Shanghai
tiers:
  - { id: member }
  - { id: gold, qualify: { spend: "100000.00" } }
rewards:
  ten-off:
    { kind: discount, value: "10.00", cost: 300, coupon_days: 7, limit: { max: 1, period: week } }
  vase: { kind: gift, cost: 200, stock: 1 }
  lounge: { kind: percent_off, percent: "20", cost: 50, tiers: [gold] }
  regulars: { kind: gift, cost: 10, when: { has_tags: regular } }
rules: []
"""


@pytest.fixture
async def shop(container: Container, client: httpx.AsyncClient, keys: dict[str, str]) -> Container:
    await container.programs.publish({"program.yaml": PROGRAM}, "program.yaml", actor="test")
    await client.post(
        "/v1/members", json={"member_id": "M1"}, headers={"Authorization": keys["pos"]}
    )
    await client.post(
        "/v1/members/M1/adjustments",
        json={"points": 600, "reason": "welcome"},
        headers={"Authorization": keys["marketer"]},
    )
    return container


async def _redeem(
    client: httpx.AsyncClient, keys: dict[str, str], reward: str, key: str
) -> httpx.Response:
    return await client.post(
        "/v1/members/M1/redemptions",
        json={"reward_id": reward},
        headers={"Authorization": keys["app"], "Idempotency-Key": key},
    )


async def test_catalog_says_what_a_member_can_redeem_and_why_not(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    plain = (await client.get("/v1/rewards", headers={"Authorization": keys["pos"]})).json()
    assert [r["id"] for r in plain] == ["lounge", "regulars", "ten-off", "vase"]
    assert plain[0]["redeemable"] is None
    mine = {
        r["id"]: r
        for r in (
            await client.get(
                "/v1/rewards", params={"member_id": "M1"}, headers={"Authorization": keys["app"]}
            )
        ).json()
    }
    assert mine["ten-off"]["redeemable"] is True
    assert mine["lounge"]["reasons"] == ["for tiers gold (member is member)"]
    assert mine["regulars"]["redeemable"] is False
    assert "regular" in mine["regulars"]["reasons"][0]
    refused = await _redeem(client, keys, "regulars", "g1")
    assert refused.status_code == 409
    assert refused.json()["code"] == "reward_not_redeemable"
    await client.patch(
        "/v1/members/M1", json={"tags": ["regular"]}, headers={"Authorization": keys["app"]}
    )
    assert (await _redeem(client, keys, "regulars", "g2")).status_code == 201
    await _redeem(client, keys, "vase", "v1")
    after = {
        r["id"]: r
        for r in (
            await client.get(
                "/v1/rewards", params={"member_id": "M1"}, headers={"Authorization": keys["app"]}
            )
        ).json()
    }
    assert after["vase"]["stock_left"] == 0
    assert "out of stock" in after["vase"]["reasons"]
    await _redeem(client, keys, "ten-off", "t1")
    again = {
        r["id"]: r
        for r in (
            await client.get(
                "/v1/rewards", params={"member_id": "M1"}, headers={"Authorization": keys["app"]}
            )
        ).json()
    }
    assert "limit of 1 per week reached" in again["ten-off"]["reasons"]
    assert "needs 300 points, member has 90" in again["ten-off"]["reasons"]


async def test_one_step_redemption_issues_a_coupon_used_exactly_once(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock
) -> None:
    first = await _redeem(client, keys, "ten-off", "k1")
    assert first.status_code == 201, first.text
    coupon = first.json()
    assert coupon["status"] == "issued"
    assert len(coupon["code"]) == 16
    retry = await _redeem(client, keys, "ten-off", "k1")
    assert retry.json()["code"] == coupon["code"]
    balance = (
        await client.get("/v1/members/M1/balance", headers={"Authorization": keys["app"]})
    ).json()
    assert (balance["available"], balance["lifetime_redeemed"]) == (300, 300)
    till = {"Authorization": keys["pos"]}
    used = await client.post(
        f"/v1/coupons/{coupon['code']}/use",
        json={"store_id": "S-9", "order_id": "O-1"},
        headers=till,
    )
    assert used.status_code == 200, used.text
    assert used.json()["status"] == "used"
    twice = await client.post(
        f"/v1/coupons/{coupon['code']}/use", json={"store_id": "S-2"}, headers=till
    )
    assert twice.status_code == 409
    assert twice.json()["code"] == "coupon_used"
    assert "in store S-9" in twice.json()["detail"]
    assert twice.json()["used_store"] == "S-9"
    unknown = await client.post("/v1/coupons/NOPE/use", json={}, headers=till)
    assert unknown.status_code == 404
    assert (await verify(shop.db)).ok


async def test_coupons_expire_and_gifts_track_fulfilment(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock
) -> None:
    discount = (await _redeem(client, keys, "ten-off", "k1")).json()
    gift = (await _redeem(client, keys, "vase", "k2")).json()
    assert gift["fulfilment"] == "ordered"
    marketer = {"Authorization": keys["marketer"]}
    shipped = await client.put(
        f"/v1/coupons/{gift['code']}/fulfilment", json={"fulfilment": "shipped"}, headers=marketer
    )
    assert shipped.json()["fulfilment"] == "shipped"
    not_gift = await client.put(
        f"/v1/coupons/{discount['code']}/fulfilment",
        json={"fulfilment": "shipped"},
        headers=marketer,
    )
    assert not_gift.status_code == 409
    clock.set(clock.now() + timedelta(days=8))
    listed = (
        await client.get("/v1/members/M1/coupons", headers={"Authorization": keys["app"]})
    ).json()
    assert {c["code"]: c["status"] for c in listed}[discount["code"]] == "expired"
    late = await client.post(
        f"/v1/coupons/{discount['code']}/use", json={}, headers={"Authorization": keys["pos"]}
    )
    assert late.status_code == 409
    assert late.json()["code"] == "coupon_expired"
    poor = await _redeem(client, keys, "ten-off", "k3")  # 100 points left
    assert poor.status_code == 422
    assert poor.json()["code"] == "insufficient_points"
