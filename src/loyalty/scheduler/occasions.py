"""When a scheduled gift falls due: pure date arithmetic, no database.

Every occasion is a local calendar day; it falls due at 00:00 of that day in the
member's time zone. A job run at `now` looks at the few calendar days around today
(time zones span from UTC-12 to UTC+14) and back over the look-back period.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from loyalty.rules.calendars import CustomDate, holiday_calendar
from loyalty.rules.schema import BirthdaySpec, CampaignSpec, as_list


@dataclass(frozen=True, slots=True)
class Occasion:
    """One gift to one member: the day it falls on, and its key in the grants table."""

    campaign: str
    occurrence: str
    day: date


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """00:00 on `day` in `zone`, in UTC. zoneinfo resolves a midnight skipped by a
    daylight-saving change to the first moment that exists."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def calendar_days(now: datetime, look_back_days: int) -> list[date]:
    """Every calendar day that is 'today or in the look-back' somewhere on Earth."""
    first = (now - timedelta(days=look_back_days)).date() - timedelta(days=1)
    last = now.date() + timedelta(days=1)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def is_due(day: date, zone: ZoneInfo, now: datetime, look_back_days: int) -> bool:
    """Its local midnight has come, and it is no more than `look_back_days` local days
    ago: after downtime the recent ones are caught up, older ones are let go."""
    today = now.astimezone(zone).date()
    return local_midnight(day, zone) <= now and day >= today - timedelta(days=look_back_days)


def on_day(month: int, day: int, year: int, leap_day: str = "feb28") -> date:
    """A yearly day in `year`; 29 February falls on 28 February (or 1 March) in
    common years."""
    try:
        return date(year, month, day)
    except ValueError:
        return date(year, 2, 28) if leap_day == "feb28" else date(year, 3, 1)


def birthday_grant_day(birthday: date, year: int, spec: BirthdaySpec) -> date:
    """The day a member's birthday gift of `year` is given."""
    day = on_day(birthday.month, birthday.day, year, spec.leap_day)
    if spec.on == "month_start":
        return day.replace(day=1)
    if spec.on == "days_before":
        return day - timedelta(days=spec.days_before or 0)
    return day


def birthday_occasion(birthday: date, spec: BirthdaySpec, days: Iterable[date]) -> list[Occasion]:
    """The birthday gifts that fall on any of `days` (keyed by the birthday's year, so a
    gift given days before a 1 January birthday still counts for the new year)."""
    wanted = set(days)
    years = {day.year for day in wanted} | {day.year + 1 for day in wanted}
    return [
        Occasion("birthday", f"birthday:{year}", grant)
        for year in sorted(years)
        if (grant := birthday_grant_day(birthday, year, spec)) in wanted
    ]


def birthday_month_days(spec: BirthdaySpec, days: Iterable[date]) -> set[tuple[int, int]]:
    """(month, day) of the birthdays whose gift can fall on `days`: the narrow filter a
    job puts in SQL so that it reads only the members concerned."""
    out: set[tuple[int, int]] = set()
    for grant in days:
        if spec.on == "month_start":
            if grant.day == 1:
                out |= {(grant.month, d) for d in range(1, 32)}
            continue
        birthday = grant + timedelta(days=spec.days_before or 0)
        out.add((birthday.month, birthday.day))
        leap_stand_in = (2, 28) if spec.leap_day == "feb28" else (3, 1)
        if (birthday.month, birthday.day) == leap_stand_in:
            out.add((2, 29))
    return out


def anniversary_occasion(joined: date, days: Iterable[date]) -> list[Occasion]:
    """Anniversaries of joining (the local day), one year on and every year after."""
    out = []
    for day in sorted(set(days)):
        years = day.year - joined.year
        if years >= 1 and on_day(joined.month, joined.day, day.year) == day:
            out.append(Occasion("anniversary", f"anniversary:{day.year}", day))
    return out


def campaign_days(
    spec: CampaignSpec, custom_dates: dict[str, CustomDate], days: Iterable[date]
) -> list[date]:
    """Which of `days` the campaign falls on."""
    if spec.custom_date is not None:
        custom = custom_dates.get(spec.custom_date)
        return [day for day in days if custom is not None and custom.matches(day)]
    assert spec.holiday is not None
    calendar = holiday_calendar(spec.holiday.country, spec.holiday.subdiv)
    names = set(as_list(spec.holiday.name))
    return [
        day
        for day in days
        if (found := calendar.names_on(day)) and (not names or names & set(found))
    ]
