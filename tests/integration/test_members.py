"""Members over HTTP on both dialects: enrol, read, change, list, look up, erase."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from loyalty.bootstrap import Container
from loyalty.members.validation import REFERRAL_ALPHABET, REFERRAL_CODE_LENGTH

MEI = {
    "member_id": "CARD-0001",
    "name": "Li Mei",
    "email": "Li.Mei@Example.COM",
    "phone": "+86 138 0013 8000",
    "birthday": "1990-02-28",
    "timezone": "Asia/Shanghai",
    "locale": "zh-CN",
    "marketing_consent": True,
    "attributes": {"favourite_store": "S-01"},
    "tags": ["vip", "tea", "vip"],
}


@pytest.fixture
def admin(keys: dict[str, str]) -> dict[str, str]:
    return {"Authorization": keys["admin"]}


async def _count(container: Container) -> int:
    async with container.db.read() as conn:
        return int((await conn.exec_driver_sql("SELECT count(*) FROM members")).scalar_one())


async def _enrol(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> Any:
    response = await client.post("/v1/members", json=MEI | fields, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_enrol_normalises_and_reads_back(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    created = await _enrol(client, {"Authorization": keys["pos"]})
    assert created["email"] == "li.mei@example.com"
    assert created["phone"] == "+8613800138000"
    assert created["tags"] == ["vip", "tea"]
    assert created["status"] == "active"
    assert created["joined_at"] == "2026-06-15T09:30:00Z"
    code = created["referral_code"]
    assert len(code) == REFERRAL_CODE_LENGTH
    assert set(code) <= set(REFERRAL_ALPHABET)
    read = await client.get("/v1/members/CARD-0001", headers={"Authorization": keys["app"]})
    assert read.json() == created


async def test_referral_codes_differ(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    codes = {
        (await _enrol(client, admin, member_id=f"C{i}", email=None, phone=None))["referral_code"]
        for i in range(20)
    }
    assert len(codes) == 20


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"email": "not-an-email"}, "email", "invalid_email"),
        ({"phone": "12"}, "phone", "invalid_phone"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "unknown_timezone"),
        ({"birthday": "2031-01-01"}, "birthday", "impossible_birthday"),
        ({"birthday": "1850-01-01"}, "birthday", "impossible_birthday"),
        ({"birthday": "1990-02-30"}, "birthday", "invalid"),
        ({"member_id": "has spaces"}, "member_id", "invalid"),
        ({"member_id": ""}, "member_id", "invalid"),
        ({"locale": "not a locale"}, "locale", "invalid"),
        ({"tags": [""]}, "tags[0]", "invalid"),
        ({"name": "   "}, "name", "blank"),
        ({"marketing_consent": "yes"}, "marketing_consent", "invalid"),
        ({"favourite_colour": "red"}, "favourite_colour", "unknown_field"),
    ],
)
async def test_bad_fields_are_named_and_nothing_is_written(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    container: Container,
    fields: dict[str, Any],
    field: str,
    code: str,
) -> None:
    response = await client.post("/v1/members", json=MEI | fields, headers=admin)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (problem["errors"][0]["field"], problem["errors"][0]["code"]) == (field, code)
    assert problem["errors"][0]["message"]
    assert await _count(container) == 0


async def test_several_bad_fields_are_all_reported(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/members",
        json=MEI | {"email": "x@", "timezone": "Nowhere", "birthday": "2099-01-01"},
        headers=admin,
    )
    assert {e["field"] for e in response.json()["errors"]} == {"email", "timezone", "birthday"}


async def test_duplicate_member_id_is_409_and_keeps_the_first(
    client: httpx.AsyncClient, admin: dict[str, str], container: Container
) -> None:
    first = await _enrol(client, admin)
    again = await client.post("/v1/members", json=MEI | {"name": "Impostor"}, headers=admin)
    assert again.status_code == 409
    assert again.json()["code"] == "member_exists"
    assert again.json()["errors"][0]["field"] == "member_id"
    assert await _count(container) == 1
    read = await client.get("/v1/members/CARD-0001", headers=admin)
    assert read.json()["name"] == first["name"]


async def test_malformed_json_is_400(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.post(
        "/v1/members",
        content=b'{"member_id": ',
        headers=admin | {"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


async def test_patch_changes_only_given_fields_and_null_clears(
    client: httpx.AsyncClient, keys: dict[str, str], clock: Any
) -> None:
    created = await _enrol(client, {"Authorization": keys["app"]})
    from datetime import timedelta

    clock.set(clock.now() + timedelta(hours=1))
    response = await client.patch(
        "/v1/members/CARD-0001",
        json={"phone": None, "tags": ["gold"], "timezone": "Europe/London"},
        headers={"Authorization": keys["app"]},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["phone"] is None
    assert updated["tags"] == ["gold"]
    assert updated["timezone"] == "Europe/London"
    assert updated["email"] == created["email"]
    assert updated["referral_code"] == created["referral_code"]
    assert updated["updated_at"] > created["updated_at"]


async def test_patch_validates_and_unknown_member_is_404(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await _enrol(client, admin)
    bad = await client.patch("/v1/members/CARD-0001", json={"email": "nope"}, headers=admin)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "email"
    unchanged = await client.get("/v1/members/CARD-0001", headers=admin)
    assert unchanged.json()["email"] == "li.mei@example.com"
    missing = await client.patch("/v1/members/NOPE", json={"name": "x"}, headers=admin)
    assert missing.status_code == 404
    assert missing.json()["code"] == "member_not_found"
    assert (await client.get("/v1/members/NOPE", headers=admin)).status_code == 404


async def test_list_pages_with_a_cursor_and_looks_up(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    admin = {"Authorization": keys["admin"]}
    for i in range(5):
        await _enrol(
            client,
            admin,
            member_id=f"M{i}",
            email=f"m{i}@example.com",
            phone=f"+4479460000{i:02d}",
            tags=["even"] if i % 2 == 0 else [],
        )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"after": cursor} if cursor else {})
        page = (await client.get("/v1/members", params=params, headers=admin)).json()
        seen += [m["member_id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"M{i}" for i in range(5)]
    pos = {"Authorization": keys["pos"]}
    by_email = await client.get("/v1/members", params={"email": "M3@EXAMPLE.com"}, headers=pos)
    assert [m["member_id"] for m in by_email.json()["items"]] == ["M3"]
    by_phone = await client.get("/v1/members", params={"phone": "+44 7946 000002"}, headers=pos)
    assert [m["member_id"] for m in by_phone.json()["items"]] == ["M2"]
    by_tag = await client.get("/v1/members", params={"tag": "even"}, headers=pos)
    assert [m["member_id"] for m in by_tag.json()["items"]] == ["M0", "M2", "M4"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1000}, "limit"),
        ({"after": "%%%"}, "after"),
        # Cursors that decode to "id:²" and to an id beyond a bigint.
        ({"after": base64.urlsafe_b64encode("id:²".encode()).decode()}, "after"),
        ({"after": base64.urlsafe_b64encode(f"id:{2**63}".encode()).decode()}, "after"),
        ({"email": "bad"}, "email"),
    ],
)
async def test_list_rejects_bad_parameters(
    client: httpx.AsyncClient, admin: dict[str, str], params: dict[str, Any], field: str
) -> None:
    response = await client.get("/v1/members", params=params, headers=admin)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_suspend_and_reactivate(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    await _enrol(client, {"Authorization": keys["admin"]})
    marketer = {"Authorization": keys["marketer"]}
    suspended = await client.put(
        "/v1/members/CARD-0001/status",
        json={"status": "suspended", "reason": "fraud check"},
        headers=marketer,
    )
    assert suspended.json()["status"] == "suspended"
    back = await client.put(
        "/v1/members/CARD-0001/status", json={"status": "active"}, headers=marketer
    )
    assert back.json()["status"] == "active"
    # Erasure is admin-only and has its own route: not a status a marketer may set.
    erase = await client.put(
        "/v1/members/CARD-0001/status", json={"status": "erased"}, headers=marketer
    )
    assert erase.status_code == 422
    kept = await client.get("/v1/members/CARD-0001", headers=marketer)
    assert kept.json()["status"] == "active"
    assert kept.json()["email"] is not None


async def test_erase_forgets_the_person_but_keeps_the_member(
    client: httpx.AsyncClient, keys: dict[str, str], container: Container
) -> None:
    admin = {"Authorization": keys["admin"]}
    created = await _enrol(client, admin)
    refused = await client.post(
        "/v1/members/CARD-0001/erase", headers={"Authorization": keys["marketer"]}
    )
    assert refused.status_code == 403
    erased = (await client.post("/v1/members/CARD-0001/erase", headers=admin)).json()
    assert erased["status"] == "erased"
    for field in ("name", "email", "phone", "birthday", "locale"):
        assert erased[field] is None
    assert erased["attributes"] == {}
    assert erased["tags"] == []
    assert erased["referral_code"] == created["referral_code"]
    async with container.db.read() as conn:
        row = (await conn.exec_driver_sql("SELECT * FROM members")).one()
    assert "Li Mei" not in repr(tuple(row))
    assert "8613800138000" not in repr(tuple(row))
    by_email = await client.get("/v1/members", params={"email": MEI["email"]}, headers=admin)
    assert by_email.json()["items"] == []
    patch = await client.patch("/v1/members/CARD-0001", json={"name": "Back"}, headers=admin)
    assert patch.status_code == 409
    assert patch.json()["code"] == "member_erased"


async def test_concurrent_enrolments_of_one_member_id_create_exactly_one(
    client: httpx.AsyncClient, admin: dict[str, str], container: Container
) -> None:
    import asyncio

    responses = await asyncio.gather(
        *(
            client.post("/v1/members", json=MEI | {"name": f"Try {i}"}, headers=admin)
            for i in range(20)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 19
    assert await _count(container) == 1
