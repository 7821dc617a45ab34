"""A time without a UTC offset is refused with 422 naming the field, never a 500."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from loyalty.bootstrap import Container
from loyalty.rules import read_program_files

NAIVE = "2026-01-01T10:00:00"
EXAMPLE = Path(__file__).parents[2] / "examples" / "tea-house.yaml"


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        (
            "POST",
            "/v1/events",
            {
                "type": "purchase",
                "member_id": "M1",
                "order_id": "O1",
                "total": "1.00",
                "occurred_at": NAIVE,
            },
            "occurred_at",
        ),
        ("POST", "/v1/members", {"member_id": "M2", "joined_at": NAIVE}, "joined_at"),
        ("POST", "/v1/members/M1/tier", {"tier": "gold", "until": NAIVE}, "until"),
        (
            "POST",
            "/v1/program/simulate",
            {"backtest": {"start": NAIVE, "end": "2026-02-01T00:00:00"}},
            "backtest.start",
        ),
        ("GET", f"/v1/members/M1/balance?as_of={NAIVE}", None, "as_of"),
    ],
)
async def test_naive_times_are_422(
    container: Container,
    client: httpx.AsyncClient,
    keys: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    field: str,
) -> None:
    files, main = read_program_files(EXAMPLE)
    await container.programs.publish(files, main, actor="test")
    admin = {"Authorization": keys["admin"]}
    await client.post("/v1/members", json={"member_id": "M1"}, headers=admin)
    response = await client.request(
        method, path, json=body, headers=admin | {"Idempotency-Key": "k"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
