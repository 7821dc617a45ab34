"""Event ingestion, refunds, adjustments and reads over HTTP, on both dialects."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from loyalty.bootstrap import Container
from loyalty.clock import FixedClock
from loyalty.ledger.audit import verify
from tests.programs import SHOP

PROGRAM = SHOP
# 100 CNY: 100 base points (pending) and the tea bonus of 10 (available).
TEA_AND_CUP = [
    {"sku": "TEA", "category": "tea", "quantity": 2, "unit_price": "30.00"},
    {"sku": "CUP", "category": "ware", "quantity": 1, "unit_price": "40.00"},
]


async def _setup(container: Container, shortfall: str = "floor") -> None:
    text = PROGRAM.replace("SHORTFALL", shortfall)
    await container.programs.publish({"program.yaml": text}, "program.yaml", actor="test")


@pytest.fixture
async def shop(container: Container, client: httpx.AsyncClient, keys: dict[str, str]) -> Any:
    await _setup(container)
    response = await client.post(
        "/v1/members", json={"member_id": "M1"}, headers={"Authorization": keys["pos"]}
    )
    assert response.status_code == 201
    return container


def _purchase(order: str = "O-1", total: str = "120.00", **extra: Any) -> dict[str, Any]:
    return {
        "type": "purchase",
        "member_id": "M1",
        "order_id": order,
        "total": total,
        "currency": "CNY",
        "occurred_at": "2026-06-15T09:00:00Z",
    } | extra


async def _post(
    client: httpx.AsyncClient, keys: dict[str, str], body: dict[str, Any], key: str
) -> httpx.Response:
    return await client.post(
        "/v1/events", json=body, headers={"Authorization": keys["pos"], "Idempotency-Key": key}
    )


async def _balance(client: httpx.AsyncClient, keys: dict[str, str], **params: Any) -> Any:
    response = await client.get(
        "/v1/members/M1/balance", params=params, headers={"Authorization": keys["app"]}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _ok(container: Container) -> None:
    report = await verify(container.db)
    assert report.ok, report


async def test_purchase_earns_pending_points_and_replays(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    first = await _post(client, keys, _purchase(), "k1")
    assert first.status_code == 201, first.text
    outcome = first.json()
    assert outcome["points"] == 120
    assert outcome["program_version"] == 1
    award = outcome["awards"][0]
    assert (award["rule_id"], award["points"], award["status"]) == ("base", 120, "pending")
    assert award["vests_at"] == "2026-06-29T09:00:00Z"
    assert award["expires_at"] == "2027-06-14T16:00:00Z"  # local midnight, Asia/Shanghai
    assert outcome["balances"] == {"available": 0, "pending": 120, "held": 0}
    assert "idempotent-replay" not in first.headers
    again = await _post(client, keys, _purchase(), "k1")
    assert again.status_code == 201
    assert again.headers["idempotent-replay"] == "true"
    assert again.json() == outcome
    changed = await _post(client, keys, _purchase(total="99.00"), "k1")
    assert changed.status_code == 409
    assert changed.json()["code"] == "idempotency_key_reused"
    twice = await _post(client, keys, _purchase(), "k2")
    assert twice.status_code == 409
    assert twice.json()["code"] == "order_exists"
    balance = await _balance(client, keys)
    assert balance["pending"] == 120
    assert balance["lifetime_earned"] == 120
    assert balance["pending_vesting"] == [{"vests_at": "2026-06-29T09:00:00Z", "points": 120}]
    await _ok(shop)


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (_purchase(), {}, 422, "validation_failed"),
        (_purchase(member_id="NOPE"), {"Idempotency-Key": "x"}, 404, "member_not_found"),
        (_purchase(order_id=None), {"Idempotency-Key": "x"}, 422, "validation_failed"),
        (_purchase(total="-5"), {"Idempotency-Key": "x"}, 422, "validation_failed"),
        (
            _purchase(occurred_at="2027-01-01T00:00:00Z"),
            {"Idempotency-Key": "x"},
            422,
            "validation_failed",
        ),
        (
            {"type": "custom", "member_id": "M1", "occurred_at": "2026-06-15T09:00:00Z"},
            {"Idempotency-Key": "x"},
            422,
            "validation_failed",
        ),
        (_purchase(type="teleport"), {"Idempotency-Key": "x"}, 422, "validation_failed"),
        *(
            (_purchase(total=total), {"Idempotency-Key": "x"}, 422, "validation_failed")
            for total in ("NaN", "Infinity", "1e400", "100000000000000", "1.00001")
        ),
        (
            _purchase(items=[{"sku": "A", "unit_price": "99999999999999", "quantity": 2}]),
            {"Idempotency-Key": "x"},
            422,
            "validation_failed",
        ),
        (_purchase(redemption_id=2**63), {"Idempotency-Key": "x"}, 422, "validation_failed"),
    ],
)
async def test_bad_events_are_refused_and_write_nothing(
    shop: Container,
    client: httpx.AsyncClient,
    keys: dict[str, str],
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = await client.post(
        "/v1/events", json=body, headers={"Authorization": keys["pos"]} | headers
    )
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    async with shop.db.read() as conn:
        for table in ("events", "ledger_entries", "lots", "orders"):
            count = (await conn.exec_driver_sql(f"SELECT count(*) FROM {table}")).scalar_one()
            assert count == 0, table


async def test_suspended_member_cannot_earn(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    await client.put(
        "/v1/members/M1/status",
        json={"status": "suspended"},
        headers={"Authorization": keys["marketer"]},
    )
    response = await _post(client, keys, _purchase(), "k1")
    assert response.status_code == 409
    assert response.json()["code"] == "member_suspended"


async def test_refund_by_items_claws_back_pending_points_proportionally(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    items = TEA_AND_CUP
    bought = await _post(client, keys, _purchase(total=None, items=items), "p")
    assert bought.json()["points"] == 110  # 100 base (pending) + 10 tea bonus (available)
    refund = {
        "type": "refund",
        "member_id": "M1",
        "order_id": "O-1",
        "occurred_at": "2026-06-15T09:20:00Z",
        "items": [{"sku": "CUP", "quantity": 1}],
    }
    first = await _post(client, keys, refund, "r1")
    assert first.status_code == 201, first.text
    # 40 of 100 CNY returned: floor(110 x 0.4) = 44 points back, pending first.
    assert first.json()["clawed_back"] == 44
    assert first.json()["balances"] == {"available": 10, "pending": 56, "held": 0}
    again = await _post(client, keys, refund, "r2")
    assert again.status_code == 422
    assert again.json()["errors"][0]["code"] == "refund_exceeds_order"
    rest = refund | {"items": [{"sku": "TEA", "quantity": 2}]}
    last = await _post(client, keys, rest, "r3")
    assert last.json()["clawed_back"] == 66
    assert last.json()["balances"] == {"available": 0, "pending": 0, "held": 0}
    done = await _post(client, keys, refund | {"items": [], "total": "1.00"}, "r4")
    assert done.status_code == 409
    assert done.json()["code"] == "order_already_refunded"
    await _ok(shop)


@pytest.mark.parametrize(
    ("policy", "available", "shortfall"), [("floor", 0, 30), ("negative_balance", -30, 30)]
)
async def test_refund_of_spent_points_follows_the_shortfall_policy(
    container: Container,
    client: httpx.AsyncClient,
    keys: dict[str, str],
    clock: FixedClock,
    policy: str,
    available: int,
    shortfall: int,
) -> None:
    await _setup(container, policy)
    await client.post(
        "/v1/members", json={"member_id": "M1"}, headers={"Authorization": keys["pos"]}
    )
    await _post(client, keys, _purchase(total="100.00"), "p")
    clock.set(clock.now() + timedelta(days=15))
    assert await container.ledger_jobs.vest_due() == 100
    spent = await client.post(
        "/v1/members/M1/adjustments",
        json={"points": -100, "reason": "spent"},
        headers={"Authorization": keys["marketer"]},
    )
    assert spent.status_code == 201, spent.text
    await client.post(  # 70 points earned on another order first
        "/v1/members/M1/adjustments",
        json={"points": 70, "reason": "goodwill"},
        headers={"Authorization": keys["marketer"]},
    )
    refund = {
        "type": "refund",
        "member_id": "M1",
        "order_id": "O-1",
        "occurred_at": clock.now().isoformat(),
        "total": "100.00",
    }
    response = await _post(client, keys, refund, "r")
    body = response.json()
    assert body["shortfall"] == shortfall
    assert body["balances"]["available"] == available
    await _ok(container)
    if policy == "negative_balance":
        # Later earnings repay the debt before they can be spent.
        await client.post(
            "/v1/members/M1/adjustments",
            json={"points": 50, "reason": "goodwill"},
            headers={"Authorization": keys["marketer"]},
        )
        assert (await _balance(client, keys))["available"] == 20
        await _ok(container)


async def test_custom_event_cap_and_adjustments(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    review = {
        "type": "custom",
        "name": "review",
        "member_id": "M1",
        "occurred_at": "2026-06-15T09:00:00Z",
    }
    first = await _post(client, keys, review, "c1")
    assert first.json()["points"] == 20
    second = await _post(client, keys, review | {"occurred_at": "2026-06-15T09:20:00Z"}, "c2")
    assert second.json()["points"] == 0  # once a day
    marketer = {"Authorization": keys["marketer"]}
    too_much = await client.post(
        "/v1/members/M1/adjustments", json={"points": -21, "reason": "correction"}, headers=marketer
    )
    assert too_much.status_code == 422
    assert too_much.json()["code"] == "insufficient_points"
    debit = await client.post(
        "/v1/members/M1/adjustments",
        json={"points": -5, "reason": "correction", "note": "typo"},
        headers=marketer,
    )
    assert debit.json()["balances"]["available"] == 15
    pos = await client.post(
        "/v1/members/M1/adjustments",
        json={"points": 5, "reason": "x"},
        headers={"Authorization": keys["pos"]},
    )
    assert pos.status_code == 403
    first_page = await client.get("/v1/members/M1/ledger", params={"limit": 1}, headers=marketer)
    history = first_page.json()
    assert [t["kind"] for t in history["items"]] == ["adjustment"]
    assert history["items"][0]["note"] == "typo"
    assert history["items"][0]["actor"].startswith("api-key:")
    assert history["items"][0]["entries"][0]["amount"] == -5
    older = await client.get(
        "/v1/members/M1/ledger",
        params={"limit": 1, "after": history["next_cursor"]},
        headers=marketer,
    )
    page = older.json()
    assert [t["kind"] for t in page["items"]] == ["earn"]
    assert page["items"][0]["entries"][0]["rule_id"] == "review"
    assert page["next_cursor"] is None
    await _ok(shop)


async def test_vesting_expiry_and_balance_as_of(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock
) -> None:
    start = clock.now()
    await _post(client, keys, _purchase(total="80.00"), "p")
    clock.set(start + timedelta(days=14, hours=1))
    assert await shop.ledger_jobs.vest_due() == 80
    assert await shop.ledger_jobs.vest_due() == 0  # idempotent
    balance = await _balance(client, keys)
    assert (balance["available"], balance["pending"]) == (80, 0)
    clock.set(start + timedelta(days=340))
    assert (await _balance(client, keys))["expiring"] == {
        "30_days": 80,
        "60_days": 80,
        "90_days": 80,
    }
    clock.set(start + timedelta(days=366))
    assert await shop.ledger_jobs.expire_due() == 80
    assert await shop.ledger_jobs.expire_due() == 0
    assert (await _balance(client, keys))["available"] == 0
    past = await _balance(client, keys, as_of=(start + timedelta(days=20)).isoformat())
    assert (past["available"], past["pending"]) == (80, 0)
    before = await _balance(client, keys, as_of=(start + timedelta(days=1)).isoformat())
    assert (before["available"], before["pending"]) == (0, 80)
    await _ok(shop)


async def test_backtest_replays_stored_events_through_a_draft(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    await _post(client, keys, _purchase("O-1", "100.00"), "p1")
    tea = [{"sku": "TEA", "category": "tea", "quantity": 1, "unit_price": "50.00"}]
    await _post(client, keys, _purchase("O-2", None, items=tea), "p2")
    refund = {
        "type": "refund",
        "member_id": "M1",
        "order_id": "O-1",
        "occurred_at": "2026-06-15T09:10:00Z",
        "total": "100.00",
    }
    await _post(client, keys, refund, "r1")
    draft = PROGRAM.replace("SHORTFALL", "floor").replace(
        "points: 1, rounding", "points: 2, rounding"
    )
    marketer = {"Authorization": keys["marketer"]}
    before = await client.get("/v1/members/M1/balance", headers=marketer)
    response = await client.post(
        "/v1/program/simulate",
        json={
            "draft": {"source": draft},
            "backtest": {"start": "2026-06-15T00:00:00Z", "end": "2026-06-16T00:00:00Z"},
        },
        headers=marketer,
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["events"] == 2  # refunds are not replayed
    assert result["truncated"] is False
    assert result["recorded_points"] == 160
    assert result["draft_points"] == 310
    by_rule = {rule["rule_id"]: rule for rule in result["rules"]}
    assert (by_rule["base"]["recorded"], by_rule["base"]["draft"]) == (150, 300)
    assert by_rule["tea-bonus"]["delta"] == 0
    after = await client.get("/v1/members/M1/balance", headers=marketer)
    assert after.json() == before.json()
    empty = await client.post("/v1/program/simulate", json={}, headers=marketer)
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "cases"


async def test_unknown_members_can_be_enrolled_by_their_first_event(
    db_url: Any, clock: FixedClock, keys: dict[str, str], container: Container
) -> None:
    from loyalty.api.app import create_app
    from tests.conftest import settings_for

    await _setup(container)
    enrolling = Container(
        settings_for(db_url, unknown_member="enrol", auth_cache_seconds=0), clock=clock
    )
    try:
        app = create_app(enrolling)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://loyalty.test"
        ) as client:
            first = await _post(client, keys, _purchase(member_id="WALK-IN"), "w1")
            assert first.status_code == 201, first.text
            assert first.json()["points"] == 120
            member = await client.get("/v1/members/WALK-IN", headers={"Authorization": keys["pos"]})
            assert member.json()["status"] == "active"
    finally:
        await enrolling.close()


async def test_tag_rules_tag_a_member_once_and_keep_other_tags(
    container: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    example = Path(__file__).parents[2] / "examples" / "tea-house.yaml"
    await container.programs.publish(
        {"tea-house.yaml": example.read_text()}, "tea-house.yaml", actor="test"
    )
    created = await client.post(
        "/v1/members",
        json={"member_id": "M1", "tags": ["tea"]},
        headers={"Authorization": keys["pos"]},
    )
    assert created.status_code == 201, created.text
    # big-spender tags a purchase of 2000 CNY or more; the second one has nothing to add.
    for n, total in enumerate(("2500.00", "100.00", "3000.00")):
        posted = await _post(client, keys, _purchase(f"O-{n}", total), f"k{n}")
        assert posted.status_code == 201, posted.text
        read = await client.get("/v1/members/M1", headers={"Authorization": keys["app"]})
        assert read.json()["tags"] == ["tea", "big-spender"]
    await _ok(container)


async def test_an_earn_posting_names_its_new_lots_in_posting_order(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    # On PostgreSQL the transaction, lots, entries and balance go in one statement
    # (lot ids drawn from the sequence first): the ledger must read as on SQLite.
    items = TEA_AND_CUP
    for n in range(2):
        bought = await _post(client, keys, _purchase(f"O-{n}", total=None, items=items), f"p{n}")
        assert bought.status_code == 201, bought.text
        assert bought.json()["balances"] == {
            "available": 10 * (n + 1),
            "pending": 100 * (n + 1),
            "held": 0,
        }
    history = await client.get("/v1/members/M1/ledger", headers={"Authorization": keys["marketer"]})
    earns = history.json()["items"]
    assert [t["kind"] for t in earns] == ["earn", "earn"]
    lots_seen: list[int] = []
    for txn in earns:
        entries = txn["entries"]
        assert [(e["account"], e["amount"], e["rule_id"]) for e in entries] == [
            ("pending", 100, "base"),
            ("available", 10, "tea-bonus"),
        ]
        assert all(e["lot_id"] is not None for e in entries)
        lots_seen += [e["lot_id"] for e in entries]
    assert len(set(lots_seen)) == 4
    await _ok(shop)
