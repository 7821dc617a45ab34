"""Tier transitions over windows with a controlled clock, on both dialects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from loyalty.bootstrap import Container
from loyalty.clock import FixedClock

PROGRAM = """
program: tier-shop
currency: CNY
point_value: "0.01"
timezone: Asia/Shanghai
tiers:
  - { id: member, name: Member }
  - id: silver
    name: Silver
    qualify: { spend: "1000.00" }
    benefits: { perks: [free-tasting] }
  - id: gold
    name: Gold
    qualify: { spend: "5000.00", orders: 20 }
  - { id: black, name: Black }
tier_policy: { window: calendar_year, downgrade: DOWNGRADE, grace_days: GRACE }
rules:
  - id: base
    on: purchase
    award: { per_amount: "1.00", points: 1, rounding: floor }
  - id: gold-bonus
    on: purchase
    when: { tier: gold }
    award: { fixed: 100 }
"""
START = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)


@pytest.fixture
async def shop(
    container: Container,
    client: httpx.AsyncClient,
    keys: dict[str, str],
    clock: FixedClock,
    request: pytest.FixtureRequest,
) -> Container:
    downgrade, grace = getattr(request, "param", ("one_step", 30))
    clock.set(START)
    text = PROGRAM.replace("DOWNGRADE", downgrade).replace("GRACE", str(grace))
    await container.programs.publish({"program.yaml": text}, "program.yaml", actor="test")
    created = await client.post(
        "/v1/members", json={"member_id": "M1"}, headers={"Authorization": keys["pos"]}
    )
    assert created.status_code == 201
    return container


async def _buy(
    client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock, order: str, total: str
) -> Any:
    body = {
        "type": "purchase",
        "member_id": "M1",
        "order_id": order,
        "total": total,
        "occurred_at": clock.now().isoformat(),
    }
    response = await client.post(
        "/v1/events", json=body, headers={"Authorization": keys["pos"], "Idempotency-Key": order}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _tier(client: httpx.AsyncClient, keys: dict[str, str]) -> Any:
    response = await client.get("/v1/members/M1/tier", headers={"Authorization": keys["app"]})
    assert response.status_code == 200, response.text
    return response.json()


async def test_upgrade_on_the_qualifying_event_and_progress(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock
) -> None:
    status = await _tier(client, keys)
    assert status["tier"] == "member"
    assert status["progress"]["next_tier"] == "silver"
    assert status["progress"]["missing"][0] == {
        "metric": "spend",
        "needed": "1000.00",
        "have": "0.00",
        "still_needed": "1000.00",
    }
    first = await _buy(client, keys, clock, "O1", "600.00")
    assert first["tier_change"] is None
    second = await _buy(client, keys, clock, "O2", "500.00")
    assert second["tier_change"]["from_tier"] == "member"
    assert second["tier_change"]["to_tier"] == "silver"
    status = await _tier(client, keys)
    assert status["tier"] == "silver"
    assert status["valid_until"] == "2026-12-31T16:00:00Z"  # 1 January, Shanghai midnight
    assert status["benefits"]["perks"] == ["free-tasting"]
    assert status["figures"]["spend"] == "1100.00"
    assert status["progress"]["next_tier"] == "gold"  # black is invite-only
    assert [h["reason"] for h in status["history"]] == ["event"]
    balance = await client.get("/v1/members/M1/balance", headers={"Authorization": keys["app"]})
    assert balance.json()["tier"]["id"] == "silver"
    feed = await client.get("/v1/notifications", headers={"Authorization": keys["marketer"]})
    notice = feed.json()["items"][0]
    assert (notice["member_id"], notice["kind"]) == ("M1", "tier_changed")
    assert notice["payload"] == {"from": "member", "to": "silver", "reason": "event"}


async def test_tier_feeds_the_rules_and_refunds_do_not_downgrade(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock
) -> None:
    upgrade = await _buy(client, keys, clock, "O1", "5000.00")
    assert upgrade["tier_change"]["to_tier"] == "gold"
    assert upgrade["points"] == 5000  # judged before the upgrade
    after = await _buy(client, keys, clock, "O2", "10.00")
    assert after["points"] == 110  # gold-bonus fires now
    refund = {
        "type": "refund",
        "member_id": "M1",
        "order_id": "O1",
        "total": "5000.00",
        "occurred_at": clock.now().isoformat(),
    }
    await client.post(
        "/v1/events", json=refund, headers={"Authorization": keys["pos"], "Idempotency-Key": "r"}
    )
    status = await _tier(client, keys)
    assert status["tier"] == "gold"
    assert status["projected_tier"] == "silver"  # one step down at the next review
    assert status["keep"][0]["still_needed"] == "4990.00"


async def test_review_holds_through_grace_then_downgrades_one_step(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock
) -> None:
    await _buy(client, keys, clock, "O1", "6000.00")
    assert (await _tier(client, keys))["tier"] == "gold"
    clock.set(datetime(2027, 1, 1, 0, 0, tzinfo=UTC))
    kept = await shop.tiers.review()
    assert (kept.reviewed, kept.changed) == (1, 0)  # 2026 figures keep gold for 2027
    assert (await _tier(client, keys))["valid_until"] == "2027-12-31T16:00:00Z"
    clock.set(datetime(2028, 1, 1, 0, 0, tzinfo=UTC))
    graced = await shop.tiers.review()
    assert graced.graced == 1
    status = await _tier(client, keys)
    assert (status["tier"], status["in_grace"]) == ("gold", True)
    assert await shop.tiers.review() == graced.__class__(
        reviewed=0, changed=0, graced=0, manual_ended=0
    )
    clock.set(datetime(2028, 1, 31, 0, 0, tzinfo=UTC))
    down = await shop.tiers.review()
    assert down.changed == 1
    status = await _tier(client, keys)
    assert (status["tier"], status["in_grace"]) == ("silver", False)
    assert status["history"][0]["reason"] == "review"


@pytest.mark.parametrize("shop", [("to_qualified", 0)], indirect=True)
async def test_review_can_go_straight_to_the_tier_the_figures_support(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock
) -> None:
    await _buy(client, keys, clock, "O1", "6000.00")
    clock.set(datetime(2028, 1, 1, 0, 0, tzinfo=UTC))
    await shop.tiers.review()  # 2027 review keeps gold on 2026 figures
    await shop.tiers.review()
    clock.set(datetime(2028, 1, 2, tzinfo=UTC))
    assert (await _tier(client, keys))["tier"] == "member"


async def test_manual_tier_ends_and_falls_back_to_the_figures(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock
) -> None:
    marketer = {"Authorization": keys["marketer"]}
    until = (clock.now() + timedelta(days=30)).isoformat()
    bad = await client.post(
        "/v1/members/M1/tier", json={"tier": "platinum", "until": until}, headers=marketer
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["code"] == "unknown_tier"
    assigned = await client.post(
        "/v1/members/M1/tier",
        json={"tier": "black", "until": until, "note": "status match"},
        headers=marketer,
    )
    assert assigned.status_code == 201, assigned.text
    status = assigned.json()
    assert (status["tier"], status["manual"], status["earned_tier"]) == ("black", True, "member")
    await _buy(client, keys, clock, "O1", "1500.00")  # earns silver meanwhile
    assert (await _tier(client, keys))["tier"] == "black"
    clock.set(clock.now() + timedelta(days=31))
    summary = await shop.tiers.review()
    assert summary.manual_ended == 1
    status = await _tier(client, keys)
    assert (status["tier"], status["manual"]) == ("silver", False)
    assert status["history"][0]["reason"] == "manual_ended"
    assert (
        await client.post(
            "/v1/members/M1/tier",
            json={"tier": "gold", "until": until},
            headers={"Authorization": keys["pos"]},
        )
    ).status_code == 403


async def test_review_handles_many_members_in_one_batch_and_is_idempotent(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock
) -> None:
    for index in range(12):
        member = f"B{index}"
        await client.post(
            "/v1/members", json={"member_id": member}, headers={"Authorization": keys["pos"]}
        )
        body = {
            "type": "purchase",
            "member_id": member,
            "order_id": f"O{index}",
            "total": "6000.00" if index % 2 else "1200.00",
            "occurred_at": clock.now().isoformat(),
        }
        await client.post(
            "/v1/events",
            json=body,
            headers={"Authorization": keys["pos"], "Idempotency-Key": f"k{index}"},
        )
    clock.set(datetime(2028, 2, 15, tzinfo=UTC))
    first = await shop.tiers.review()  # 2027: kept on 2026 figures; 2028: nothing bought
    assert first.reviewed >= 12
    again = await shop.tiers.review()
    assert (again.reviewed, again.changed, again.graced) == (0, 0, 0)
    tiers = {}
    for index in range(12):
        status = await client.get(
            f"/v1/members/B{index}/tier", headers={"Authorization": keys["app"]}
        )
        tiers[index] = status.json()["tier"]
    # Caught up window by window: 2027 kept on 2026 figures; 2028 empty, grace to
    # 31 January over, so one step down.
    assert {tiers[i] for i in range(1, 12, 2)} == {"silver"}
    assert {tiers[i] for i in range(0, 12, 2)} == {"member"}
