from __future__ import annotations

import httpx
import pytest
from structlog.testing import capture_logs

from loyalty.api.app import create_app
from loyalty.bootstrap import Container
from loyalty.db import migrate

pytestmark = pytest.mark.usefixtures("fresh_request_logger")


async def test_live_and_ready_answer_without_a_key(
    client: httpx.AsyncClient, container: Container
) -> None:
    live = await client.get("/health/live")
    ready = await client.get("/health/ready")
    assert live.status_code == 200
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": container.db.dialect}


async def test_every_response_carries_a_request_id_and_logs_one_line(
    client: httpx.AsyncClient,
) -> None:
    with capture_logs() as logs:
        ok = await client.get("/health/live", headers={"X-Request-ID": "till-42.req-7"})
        missing = await client.get("/no/such/route")
        unauthenticated = await client.get("/v1/members")
        await client.get("/v1/members/CARD-SECRET/balance")
    assert ok.headers["x-request-id"] == "till-42.req-7"
    assert len(missing.headers["x-request-id"]) == 32
    assert unauthenticated.headers["x-request-id"] != missing.headers["x-request-id"]
    lines = [entry for entry in logs if entry["event"] == "request"]
    assert [(line["path"], line["status"]) for line in lines] == [
        ("/health/live", 200),
        ("/no/such/route", 404),
        ("/v1/members", 401),
        ("/v1/members/{member_id}/balance", 401),  # the route, not the member id
    ]
    assert lines[0]["request_id"] == "till-42.req-7"


async def test_request_log_has_no_query_string(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    with capture_logs() as logs:
        await client.get(
            "/v1/members",
            params={"email": "mei@example.com"},
            headers={"Authorization": keys["app"]},
        )
    line = next(entry for entry in logs if entry["event"] == "request")
    assert "mei@example.com" not in repr(line)
    assert line["status"] == 200
    assert line["api_key_id"] is not None
    assert line["role"] == "app"


async def test_unmigrated_schema_refuses_start_and_is_not_ready(container: Container) -> None:
    async with container.db.write() as conn:
        await conn.exec_driver_sql("DELETE FROM alembic_version")
    try:
        await _refused_and_not_ready(container)
    finally:
        # The PostgreSQL test database is shared by the session: put the revision back.
        async with container.db.write() as conn:
            await conn.exec_driver_sql(
                f"INSERT INTO alembic_version VALUES ('{migrate.head_revision()}')"
            )


async def _refused_and_not_ready(container: Container) -> None:
    app = create_app(container)
    # The lifespan runs in a task group, which wraps what it raises.
    with pytest.RaisesGroup(
        pytest.RaisesExc(migrate.SchemaOutOfDate, match=r"run `loyalty db upgrade`")
    ):
        async with app.lifespan():
            pass
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://loyalty.test"
    ) as client:
        ready = await client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["code"] == "schema_out_of_date"


async def test_openapi_document_renders_every_route(client: httpx.AsyncClient) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/v1/members", "/v1/events", "/v1/program/versions"} <= set(paths)
