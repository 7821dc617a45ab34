"""Every /v1 route needs a key, and the right role."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler

from loyalty.api.app import create_app
from loyalty.bootstrap import Container
from loyalty.clock import FixedClock
from loyalty.settings import Settings

PUBLIC = {"/health/live", "/health/ready"}


def _v1_routes(app: Litestar) -> list[tuple[str, str, HTTPRouteHandler]]:
    routes = []
    for route in app.routes:
        if not route.path.startswith("/v1"):
            continue
        for handler in getattr(route, "route_handlers", []):
            for method in sorted(handler.http_methods):
                path = re.sub(r"\{(\w+):int\}", "1", route.path)
                path = re.sub(r"\{(\w+):str\}", "X", path)
                routes.append((method, path, handler))
    return routes


def test_every_route_is_v1_public_health_or_schema() -> None:
    app = create_app(Container(Settings()))
    for route in app.routes:
        assert route.path.startswith(("/v1/", "/schema")) or route.path in PUBLIC, (
            f"{route.path} is outside /v1 and not a declared public route"
        )


async def test_no_v1_route_answers_without_a_valid_key(
    client: httpx.AsyncClient, app: Litestar
) -> None:
    routes = _v1_routes(app)
    assert len(routes) >= 9
    for method, path, _ in routes:
        for headers in ({}, {"Authorization": "Bearer lk_not-a-key"}, {"Authorization": "Basic x"}):
            response = await client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["code"] in {"missing_api_key", "invalid_api_key"}


async def test_roles_are_declared_on_every_route_and_enforced(
    client: httpx.AsyncClient, app: Litestar, keys: dict[str, str]
) -> None:
    checked = 0
    for method, path, handler in _v1_routes(app):
        if method == "OPTIONS":
            continue  # Litestar's automatic OPTIONS: no roles, so admin only.
        allowed = handler.opt.get("roles")
        assert allowed is not None, f"{method} {path} declares no roles"
        for role in ("pos", "app", "marketer"):
            if role in allowed:
                continue
            response = await client.request(
                method, path, headers={"Authorization": keys[role]}, json={}
            )
            assert response.status_code == 403, (method, path, role)
            assert response.json()["code"] == "role_forbidden"
            checked += 1
    assert checked >= 10


async def test_a_route_without_declared_roles_is_admin_only(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    # Key management declares allow() with no roles: only admin gets through.
    assert (
        await client.get("/v1/api-keys", headers={"Authorization": keys["marketer"]})
    ).status_code == 403
    assert (
        await client.get("/v1/api-keys", headers={"Authorization": keys["admin"]})
    ).status_code == 200


async def test_revoked_key_is_refused_and_secrets_are_never_listed(
    client: httpx.AsyncClient, keys: dict[str, str], clock: FixedClock
) -> None:
    admin = {"Authorization": keys["admin"]}
    created = await client.post(
        "/v1/api-keys", json={"name": "till 7", "role": "pos"}, headers=admin
    )
    assert created.status_code == 201
    body = created.json()
    secret, key_id = body["secret"], body["key"]["id"]
    till = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/v1/members", headers=till)).status_code == 200
    listed = await client.get("/v1/api-keys", headers=admin)
    assert secret not in listed.text
    assert body["key"]["prefix"] == secret[:10]
    revoked = await client.post(f"/v1/api-keys/{key_id}/revoke", headers=admin)
    assert revoked.json()["revoked_at"] is not None
    clock.set(clock.now() + timedelta(hours=1))
    again = await client.post(f"/v1/api-keys/{key_id}/revoke", headers=admin)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]  # the first time stays
    refused = await client.get("/v1/members", headers=till)
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_api_key"


async def test_keys_are_stored_only_as_hashes(container: Container) -> None:
    issued = await container.api_keys.create("hash check", "app")
    async with container.db.read() as conn:
        rows = (await conn.exec_driver_sql("SELECT * FROM api_keys")).all()
    assert rows
    assert all(issued.secret not in repr(tuple(row)) for row in rows)


@pytest.mark.parametrize("role", ["", "superuser"])
async def test_unknown_role_is_rejected(
    client: httpx.AsyncClient, keys: dict[str, str], role: str
) -> None:
    response = await client.post(
        "/v1/api-keys", json={"name": "x", "role": role}, headers={"Authorization": keys["admin"]}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "role"


@pytest.mark.parametrize("bad", ["99999999999999999999", "0", "-1"])
async def test_ids_outside_a_bigint_are_422_on_every_id_route(
    client: httpx.AsyncClient, keys: dict[str, str], bad: str
) -> None:
    admin = {"Authorization": keys["admin"]}
    for method, path in (
        ("GET", f"/v1/program/versions/{bad}"),
        ("GET", f"/v1/redemptions/{bad}"),
        ("POST", f"/v1/api-keys/{bad}/revoke"),
    ):
        response = await client.request(method, path, headers=admin)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["code"] == "validation_failed"
