"""Batch ingestion (POST /v1/events/batch) and history imports (`loyalty import`)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import URL
from structlog.testing import capture_logs

from loyalty.bootstrap import Container
from loyalty.ledger import importer
from loyalty.ledger.audit import verify
from loyalty.ledger.batch import BatchService
from tests.programs import SHOP, purchase

LOYALTY = str(Path(sys.executable).with_name("loyalty"))


@pytest.fixture
async def shop(container: Container, client: httpx.AsyncClient, keys: dict[str, str]) -> Any:
    text = SHOP.replace("SHORTFALL", "floor")
    await container.programs.publish({"program.yaml": text}, "program.yaml", actor="test")
    for member in ("M1", "M2", "M3"):
        response = await client.post(
            "/v1/members", json={"member_id": member}, headers={"Authorization": keys["pos"]}
        )
        assert response.status_code == 201
    return container


async def _batch(client: httpx.AsyncClient, keys: dict[str, str], events: list[Any]) -> Any:
    response = await client.post(
        "/v1/events/batch", json={"events": events}, headers={"Authorization": keys["pos"]}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _pending(client: httpx.AsyncClient, keys: dict[str, str], member: str) -> int:
    response = await client.get(
        f"/v1/members/{member}/balance", headers={"Authorization": keys["app"]}
    )
    assert response.status_code == 200, response.text
    pending: int = response.json()["pending"]
    return pending


async def test_each_event_of_a_batch_succeeds_or_fails_on_its_own(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    events = [
        purchase("O-1", idempotency_key="k1"),
        purchase("O-2", member="M2", idempotency_key="k2", total="50.00"),
        {"type": "purchase", "member_id": "M1", "idempotency_key": "k3"},  # no occurred_at
        purchase("O-4", member="NOBODY", idempotency_key="k4"),
        purchase("O-5"),  # no key
        purchase("O-1", idempotency_key="k1"),  # the same request again: a replay
        purchase("O-9", idempotency_key="k1"),  # the same key, another body
        purchase("O-1", idempotency_key="k8"),  # the same order under another key
        purchase("O-9", total="-1", idempotency_key="k9"),
        purchase("O-10", member="M3", idempotency_key="k10", quantity=1),  # unknown field
    ]
    body = await _batch(client, keys, events)
    statuses = [(r["index"], r["idempotency_key"], r["status"]) for r in body["results"]]
    assert statuses == [
        (0, "k1", 201),
        (1, "k2", 201),
        (2, "k3", 422),
        (3, "k4", 404),
        (4, None, 422),
        (5, "k1", 201),
        (6, "k1", 409),
        (7, "k8", 409),
        (8, "k9", 422),
        (9, "k10", 422),
    ]
    results = body["results"]
    assert (body["recorded"], body["replayed"], body["failed"]) == (2, 1, 7)
    assert results[0]["outcome"]["points"] == 100
    assert results[5]["replay"] is True
    assert results[5]["outcome"] == results[0]["outcome"]
    assert results[2]["problem"]["errors"][0]["field"] == "occurred_at"
    assert results[3]["problem"]["code"] == "member_not_found"
    assert results[4]["problem"]["errors"][0]["field"] == "idempotency_key"
    assert results[6]["problem"]["code"] == "idempotency_key_reused"
    assert results[7]["problem"]["code"] == "order_exists"
    assert results[8]["problem"]["errors"][0]["field"] == "total"
    assert results[9]["problem"]["errors"][0]["code"] == "unknown_field"
    assert await _pending(client, keys, "M1") == 100
    assert await _pending(client, keys, "M2") == 50
    assert (await verify(shop.db)).ok


@pytest.mark.usefixtures("fresh_request_logger")
async def test_a_batch_sent_again_is_all_replays_and_matches_single_posts(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    events = [purchase(f"O-{n}", idempotency_key=f"k{n}", total="10.00") for n in range(5)]
    with capture_logs() as logs:
        first = await _batch(client, keys, events)
        again = await _batch(client, keys, events)
    assert (first["recorded"], again["replayed"]) == (5, 5)
    lines = [line for line in logs if line["event"] == "request"]
    assert [(line["recorded"], line["replayed"], line["failed"]) for line in lines] == [
        (5, 0, 0),
        (0, 5, 0),
    ]
    assert [r["outcome"] for r in again["results"]] == [r["outcome"] for r in first["results"]]
    # A batch item and a single post with the same key are the same request.
    single = dict(events[0])
    key = single.pop("idempotency_key")
    response = await client.post(
        "/v1/events", json=single, headers={"Authorization": keys["pos"], "Idempotency-Key": key}
    )
    assert response.status_code == 201
    assert response.headers["Idempotent-Replay"] == "true"
    assert await _pending(client, keys, "M1") == 50


async def test_malformed_batches_are_refused_whole(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    too_many = [purchase(f"O-{n}", idempotency_key=f"k{n}") for n in range(1001)]
    for body in ({"events": []}, {"events": too_many}, {"event": []}, [1, 2]):
        response = await client.post(
            "/v1/events/batch", json=body, headers={"Authorization": keys["pos"]}
        )
        assert response.status_code in (400, 422), response.text
        assert response.json()["code"] in ("validation_failed", "malformed_request")
    marketer = await client.post(
        "/v1/events/batch", json={"events": [{}]}, headers={"Authorization": keys["marketer"]}
    )
    assert marketer.status_code == 403
    assert await _pending(client, keys, "M1") == 0


async def test_chunks_commit_separately_and_refusals_roll_back_alone(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    service = BatchService(shop.db, shop.events, chunk=2)
    raws = [
        json.dumps(purchase(f"O-{n}", member=f"M{n % 3 + 1}", total=str(10 + n))).encode()
        for n in range(7)
    ]
    raws[3] = json.dumps(purchase("O-3", member="M9")).encode()
    results = await service.record_many(importer.IMPORT_SOURCE, raws, derive_keys=True)
    assert [r.error.code if r.error else r.recorded.status for r in results] == [
        201,
        201,
        201,
        "member_not_found",
        201,
        201,
        201,
    ]
    assert [await _pending(client, keys, m) for m in ("M1", "M2", "M3")] == [
        10 + 16,
        11 + 14,
        12 + 15,
    ]
    again = await service.record_many(importer.IMPORT_SOURCE, raws, derive_keys=True)
    assert sum(bool(r.recorded and r.recorded.replay) for r in again) == 6
    assert (await verify(shop.db)).ok


def _write_lines(path: Path, lines: list[Any]) -> None:
    with path.open("a") as out:
        for line in lines:
            out.write((line if isinstance(line, str) else json.dumps(line)) + "\n")


async def _import(db_url: URL, path: Path, *args: str) -> tuple[int, str]:
    """Run `loyalty import` as users run it: its own process (and logging set-up)."""
    env = dict(os.environ, LOYALTY_DATABASE_URL=db_url.render_as_string(hide_password=False))
    process = await asyncio.create_subprocess_exec(
        LOYALTY,
        "import",
        str(path),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_import_resumes_and_never_counts_twice(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str], db_url: URL, tmp_path: Path
) -> None:
    history = tmp_path / "history.jsonl"
    _write_lines(history, [purchase(f"H-{n}", total="10.00") for n in range(9)])
    _write_lines(history, ["", "{not json", purchase("H-X", member="M2", idempotency_key="x")])
    code, output = await _import(db_url, history, "--batch-size", "4")
    assert code == 1
    assert "12 lines, 10 recorded, 0 already there, 1 refused" in output
    assert "history.jsonl.import-errors.jsonl" in output
    assert '"event":"import"' in output  # the run's one log line (JSON off a terminal)
    refusals = importer.errors_path(history).read_text().splitlines()
    assert [json.loads(r)["line"] for r in refusals] == [11]
    assert await _pending(client, keys, "M1") == 90
    # Interrupted before its last save: the run resumes from the saved offset and the
    # re-sent lines replay.
    state = importer.state_path(history)
    state.write_text(json.dumps({"offset": 0, "line": 0}))
    _, output = await _import(db_url, history, "--batch-size", "4")
    assert "12 lines, 0 recorded, 10 already there, 1 refused" in output
    # Lines appended later are picked up from where the last run ended.
    _write_lines(history, [purchase("H-NEW", total="5.00")])
    _, output = await _import(db_url, history)
    assert "13 lines, 1 recorded, 10 already there, 1 refused" in output
    assert await _pending(client, keys, "M1") == 95
    assert await _pending(client, keys, "M2") == 100
    _, output = await _import(db_url, history, "--restart")
    assert "13 lines, 0 recorded, 11 already there, 1 refused" in output
    assert await _pending(client, keys, "M1") == 95
    state.write_text("not a state")
    code, output = await _import(db_url, history)
    assert code == 1
    assert "import_state_unreadable" in output
    assert (await verify(shop.db)).ok


@pytest.mark.postgres_only
async def test_concurrent_batches_and_single_posts_on_shared_members(
    shop: Container, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    async def batch(n: int) -> Any:
        return await _batch(
            client,
            keys,
            [
                purchase(f"B{n}-{i}", member=f"M{(n + i) % 3 + 1}", idempotency_key=f"b{n}-{i}")
                for i in range(30)
            ],
        )

    async def single(n: int) -> int:
        response = await client.post(
            "/v1/events",
            json=purchase(f"S-{n}", member=f"M{n % 3 + 1}"),
            headers={"Authorization": keys["pos"], "Idempotency-Key": f"s{n}"},
        )
        return response.status_code

    outcomes = await asyncio.gather(*(batch(n) for n in range(6)), *(single(n) for n in range(30)))
    assert all(o["recorded"] == 30 for o in outcomes[:6])
    assert outcomes[6:] == [201] * 30
    total = sum([await _pending(client, keys, m) for m in ("M1", "M2", "M3")])
    assert total == (6 * 30 + 30) * 100
    assert (await verify(shop.db)).ok
