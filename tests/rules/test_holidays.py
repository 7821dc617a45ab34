from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loyalty.rules import ProgramInvalid

from .helpers import member, programme, purchase

MID_AUTUMN = datetime(2025, 10, 6, 4, tzinfo=UTC)
SPRING_FESTIVAL = datetime(2025, 1, 29, 4, tzinfo=UTC)


def holiday_rule(spec: str) -> str:
    return f"- {{id: h, on: purchase, when: {{holiday: {spec}}}, award: {{fixed: 5}}}}"


def test_named_chinese_holidays() -> None:
    mid_autumn = programme(holiday_rule("{country: CN, name: Mid-Autumn Festival}"))
    assert mid_autumn.evaluate(purchase(at=MID_AUTUMN), member()).total_points == 5
    assert mid_autumn.evaluate(purchase(at=SPRING_FESTIVAL), member()).total_points == 0
    spring = programme(holiday_rule('{country: CN, name: "Chinese New Year (Spring Festival)"}'))
    assert spring.evaluate(purchase(at=SPRING_FESTIVAL), member()).total_points == 5


def test_any_public_holiday_when_no_name_is_given() -> None:
    p = programme(holiday_rule("{country: CN}"))
    assert p.evaluate(purchase(at=datetime(2025, 10, 2, 4, tzinfo=UTC)), member()).total_points == 5
    assert p.evaluate(purchase(), member()).total_points == 0


def test_holiday_is_judged_on_the_local_date() -> None:
    # 2025-10-05 17:00 UTC is already 6 October (Mid-Autumn) in Shanghai, not in Los Angeles.
    p = programme(holiday_rule("{country: CN, name: Mid-Autumn Festival}"))
    at = datetime(2025, 10, 5, 17, tzinfo=UTC)
    assert p.evaluate(purchase(at=at), member(timezone="Asia/Shanghai")).total_points == 5
    assert p.evaluate(purchase(at=at), member(timezone="America/Los_Angeles")).total_points == 0


def test_subdivision_holidays() -> None:
    p = programme(holiday_rule("{country: US, subdiv: CA, name: Cesar Chavez Day}"))
    at = datetime(2025, 3, 31, 20, tzinfo=UTC)
    assert p.evaluate(purchase(at=at), member(timezone="America/Los_Angeles")).total_points == 5


def test_unknown_holiday_name_is_reported_with_a_suggestion() -> None:
    with pytest.raises(ProgramInvalid) as caught:
        programme(holiday_rule("{country: CN, name: Mid Autumn Festival}"))
    assert "did you mean 'Mid-Autumn Festival'?" in str(caught.value)
