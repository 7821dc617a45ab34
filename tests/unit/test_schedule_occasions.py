"""When scheduled gifts fall due: pure date arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from loyalty.rules.schema import BirthdaySpec
from loyalty.scheduler.occasions import (
    anniversary_occasion,
    birthday_grant_day,
    birthday_month_days,
    birthday_occasion,
    calendar_days,
    is_due,
    local_midnight,
)

LEAP = date(2000, 2, 29)


def test_leap_day_birthdays_in_common_and_leap_years() -> None:
    assert birthday_grant_day(LEAP, 2027, BirthdaySpec()) == date(2027, 2, 28)
    assert birthday_grant_day(LEAP, 2027, BirthdaySpec(leap_day="mar1")) == date(2027, 3, 1)
    assert birthday_grant_day(LEAP, 2028, BirthdaySpec()) == date(2028, 2, 29)
    assert (2, 29) in birthday_month_days(BirthdaySpec(), [date(2027, 2, 28)])


def test_month_start_and_days_before() -> None:
    birthday = date(1990, 1, 3)
    assert birthday_grant_day(birthday, 2027, BirthdaySpec(on="month_start")) == date(2027, 1, 1)
    early = BirthdaySpec(on="days_before", days_before=5)
    # Given in December, counted for the birthday's year.
    assert birthday_occasion(birthday, early, [date(2026, 12, 29)])[0].occurrence == (
        "birthday:2027"
    )
    assert (1, 3) in birthday_month_days(early, [date(2026, 12, 29)])


def test_local_midnight_and_due() -> None:
    shanghai, la = ZoneInfo("Asia/Shanghai"), ZoneInfo("America/Los_Angeles")
    day = date(2026, 6, 20)
    assert local_midnight(day, shanghai) == datetime(2026, 6, 19, 16, tzinfo=UTC)
    assert local_midnight(day, la) == datetime(2026, 6, 20, 7, tzinfo=UTC)
    now = datetime(2026, 6, 20, 6, tzinfo=UTC)
    assert is_due(day, shanghai, now, 3)
    assert not is_due(day, la, now, 3)
    assert not is_due(date(2026, 6, 10), shanghai, now, 3)  # beyond the look-back


def test_calendar_days_cover_every_time_zone() -> None:
    days = calendar_days(datetime(2026, 6, 15, 12, tzinfo=UTC), 2)
    assert days[0] == date(2026, 6, 12)
    assert days[-1] == date(2026, 6, 16)


def test_anniversaries_start_after_a_year() -> None:
    assert anniversary_occasion(date(2026, 6, 15), [date(2026, 6, 15)]) == []
    found = anniversary_occasion(LEAP, [date(2027, 2, 28)])
    assert [o.occurrence for o in found] == ["anniversary:2027"]
