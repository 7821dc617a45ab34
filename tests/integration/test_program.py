"""Programme versions over HTTP and the CLI, on both dialects."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from loyalty.bootstrap import Container
from loyalty.cli import main
from loyalty.clock import FixedClock

EXAMPLE = Path(__file__).parents[2] / "examples" / "tea-house.yaml"
SOURCE = EXAMPLE.read_text()
FAILING_TEST = SOURCE.replace("expect: { points: 176,", "expect: { points: 999,")
BROKEN = SOURCE.replace(
    "rounding: floor }\n    pending_days: 14           #",
    "rounding: flor }\n    pending_days: 14           #",
)


@pytest.fixture
def marketer(keys: dict[str, str]) -> dict[str, str]:
    return {"Authorization": keys["marketer"]}


async def _publish(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> Any:
    return await client.post(
        "/v1/program/versions", json={"source": SOURCE} | body, headers=headers
    )


async def test_validate_reports_errors_with_positions(
    client: httpx.AsyncClient, marketer: dict[str, str]
) -> None:
    assert FAILING_TEST != SOURCE
    assert BROKEN != SOURCE
    good = (
        await client.post("/v1/program/validate", json={"source": SOURCE}, headers=marketer)
    ).json()
    assert good["valid"] is True
    assert good["program_id"] == "tea-house-rewards"
    assert good["rules"] >= 15
    assert all(test["passed"] for test in good["tests"])
    bad = (
        await client.post("/v1/program/validate", json={"source": BROKEN}, headers=marketer)
    ).json()
    assert bad["valid"] is False
    first = bad["diagnostics"][0]
    assert first["file"] == "program.yaml"
    assert (
        first["line"]
        == SOURCE[: SOURCE.index("rounding: floor }\n    pending_days: 14")].count("\n") + 1
    )
    assert first["rule_id"] == "base-earn"
    assert "flor" in first["message"]


async def test_publish_activate_and_republish(
    client: httpx.AsyncClient, marketer: dict[str, str]
) -> None:
    none_yet = await client.get("/v1/program", headers=marketer)
    assert none_yet.status_code == 404
    assert none_yet.json()["code"] == "no_active_program"
    first = await _publish(client, marketer, note="launch")
    assert first.status_code == 201, first.text
    version = first.json()
    assert version["version"] == 1
    assert version["published_by"].startswith("api-key:")
    again = await _publish(client, marketer)
    assert again.status_code == 200
    assert again.json()["version"] == 1
    active = (await client.get("/v1/program", headers=marketer)).json()
    assert active["version"] == 1
    assert active["sources"]["program.yaml"] == SOURCE


@pytest.mark.parametrize(
    ("source", "code"), [(BROKEN, "program_invalid"), (FAILING_TEST, "program_tests_failed")]
)
async def test_invalid_or_failing_programme_is_never_published(
    client: httpx.AsyncClient, marketer: dict[str, str], source: str, code: str
) -> None:
    response = await _publish(client, marketer, source=source)
    assert response.status_code == 422
    assert response.json()["code"] == code
    versions = (await client.get("/v1/program/versions", headers=marketer)).json()
    assert versions["items"] == []


async def test_scheduled_version_takes_over_at_its_time_and_rollback(
    client: httpx.AsyncClient, marketer: dict[str, str], clock: FixedClock
) -> None:
    await _publish(client, marketer)
    later = clock.now() + timedelta(days=1)
    changed = SOURCE.replace("name: Tea House Rewards", "name: Tea House Rewards 2")
    scheduled = await _publish(client, marketer, source=changed, activates_at=later.isoformat())
    assert scheduled.status_code == 201
    assert (await client.get("/v1/program", headers=marketer)).json()["version"] == 1
    clock.set(later)
    assert (await client.get("/v1/program", headers=marketer)).json()["version"] == 2
    rolled = await client.post("/v1/program/versions/1/rollback", headers=marketer)
    assert rolled.status_code == 201
    assert rolled.json()["rollback_of"] == 1
    active = (await client.get("/v1/program", headers=marketer)).json()
    assert active["version"] == 3
    assert active["sources"]["program.yaml"] == SOURCE
    listed = (
        await client.get("/v1/program/versions", params={"limit": 2}, headers=marketer)
    ).json()
    assert [v["version"] for v in listed["items"]] == [3, 2]
    rest = await client.get(
        "/v1/program/versions",
        params={"limit": 2, "after": listed["next_cursor"]},
        headers=marketer,
    )
    assert [v["version"] for v in rest.json()["items"]] == [1]
    past = await _publish(client, marketer, source=changed, activates_at="2020-01-01T00:00:00Z")
    assert past.status_code == 422
    assert past.json()["errors"][0]["field"] == "activates_at"
    missing = await client.post("/v1/program/versions/99/rollback", headers=marketer)
    assert missing.status_code == 404


async def test_simulate_a_draft_against_the_active_version(
    client: httpx.AsyncClient, marketer: dict[str, str]
) -> None:
    await _publish(client, marketer)
    draft = SOURCE.replace(
        'award: { per_amount: "1.00", points: 1, rounding: floor }',
        'award: { per_amount: "1.00", points: 2, rounding: floor }',
        1,
    )
    draft = draft.replace(
        "expect: { points: 88, pending_points: 88,", "expect: { points: 177, pending_points: 177,"
    )
    assert draft != SOURCE
    cases = [
        {
            "event": {
                "type": "purchase",
                "total": "50.00",
                "occurred_at": "2026-06-16T10:00:00+08:00",
            },
            "member": {"member_id": "M1", "tier": "member"},
        }
    ]
    response = await client.post(
        "/v1/program/simulate",
        json={"draft": {"source": draft}, "cases": cases, "compare": True, "explain": True},
        headers=marketer,
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["baseline_total_points"] == 50
    assert result["total_points"] == 100
    assert result["points_delta"] == 50
    assert result["rule_deltas"]["base-earn"] == 50
    assert result["cases"][0]["evaluation"]["not_fired"]


async def test_programme_routes_are_for_marketers(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/program/validate", json={"source": SOURCE}, headers={"Authorization": keys["pos"]}
    )
    assert response.status_code == 403


def test_cli_check_test_publish(db_url: URL, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"LOYALTY_DATABASE_URL": db_url.render_as_string(hide_password=False)}
    checked = runner.invoke(main, ["program", "check", str(EXAMPLE)])
    assert checked.exit_code == 0, checked.output
    assert "ok: programme 'tea-house-rewards'" in checked.stdout
    tested = runner.invoke(main, ["program", "test", str(EXAMPLE)])
    assert tested.exit_code == 0
    assert "PASS gold member doubles base points" in tested.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN)
    refused = runner.invoke(main, ["program", "check", str(broken)])
    assert refused.exit_code == 1
    assert f"{broken}:" in refused.stdout
    assert "rule 'base-earn'" in refused.stdout
    failing = tmp_path / "failing.yaml"
    failing.write_text(FAILING_TEST)
    failed = runner.invoke(main, ["program", "test", str(failing)])
    assert failed.exit_code == 1
    assert "FAIL gold member doubles base points" in failed.stdout
    not_published = runner.invoke(main, ["program", "publish", str(failing)], env=env)
    assert not_published.exit_code == 1
    assert "program_tests_failed" in not_published.output
    published = runner.invoke(
        main, ["program", "publish", str(EXAMPLE), "--note", "launch"], env=env
    )
    assert published.exit_code == 0, published.output
    assert "version 1 published" in published.stdout
    listed = runner.invoke(main, ["program", "versions"], env=env)
    assert listed.stdout.startswith("1\t")
    assert "launch" in listed.stdout


async def test_versions_compile_from_storage_in_a_fresh_process(
    client: httpx.AsyncClient,
    marketer: dict[str, str],
    container: Container,
    db_url: URL,
    clock: FixedClock,
) -> None:
    await _publish(client, marketer)
    from tests.conftest import settings_for

    other = Container(settings_for(db_url), clock=clock)
    try:
        version, program = await other.programs.active()
    finally:
        await other.close()
    assert version.version == 1
    assert program.id == "tea-house-rewards"


async def test_activation_time_written_in_the_file_schedules_the_version(
    client: httpx.AsyncClient, marketer: dict[str, str], clock: FixedClock
) -> None:
    await _publish(client, marketer)
    later = clock.now() + timedelta(hours=6)
    scheduled_source = SOURCE.replace(
        "timezone: Asia/Shanghai\n",
        f"timezone: Asia/Shanghai\nactivates_at: {later.isoformat()}\n",
        1,
    )
    published = await _publish(client, marketer, source=scheduled_source)
    assert published.status_code == 201, published.text
    assert published.json()["activates_at"] == later.isoformat().replace("+00:00", "Z")
    assert (await client.get("/v1/program", headers=marketer)).json()["version"] == 1
    clock.set(later)
    assert (await client.get("/v1/program", headers=marketer)).json()["version"] == 2
