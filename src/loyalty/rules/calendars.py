"""Time zones, public holidays and custom dates, cached so evaluation stays cheap."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

# Holiday names are validated against this span of years; long enough to cover any
# campaign a programme version can plausibly schedule.
NAME_YEARS = range(2020, 2041)
_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def is_zone(name: str) -> bool:
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def supported_countries() -> dict[str, list[str]]:
    return dict(holidays.list_supported_countries())


class HolidayCalendar:
    """One country's (or subdivision's) holidays, with per-date answers memoised."""

    def __init__(self, country: str, subdiv: str | None) -> None:
        languages: Any = holidays.list_localized_countries().get(country, [])
        # English names make `name:` in the programme stable whatever the default locale.
        language = "en_US" if "en_US" in languages else None
        self._spec = (country, subdiv, language)
        self._calendar = holidays.country_holidays(country, subdiv=subdiv, language=language)
        self._by_date: dict[date, tuple[str, ...]] = {}

    def names_on(self, day: date) -> tuple[str, ...]:
        found = self._by_date.get(day)
        if found is None:
            found = tuple(self._calendar.get_list(day))
            self._by_date[day] = found
        return found

    def all_names(self) -> frozenset[str]:
        country, subdiv, language = self._spec
        span = holidays.country_holidays(
            country, subdiv=subdiv, language=language, years=NAME_YEARS
        )
        return frozenset(name for day in span for name in span.get_list(day))


@lru_cache(maxsize=64)
def holiday_calendar(country: str, subdiv: str | None) -> HolidayCalendar:
    return HolidayCalendar(country, subdiv)


@lru_cache(maxsize=64)
def holiday_names(country: str, subdiv: str | None) -> frozenset[str]:
    return holiday_calendar(country, subdiv).all_names()


@dataclass(frozen=True, slots=True)
class CustomDate:
    """A named day: recurring every year (`11-11`) and/or on exact dates."""

    month_days: frozenset[tuple[int, int]]
    dates: frozenset[date]

    def matches(self, day: date) -> bool:
        return (day.month, day.day) in self.month_days or day in self.dates


def parse_custom_date(values: list[str]) -> tuple[CustomDate, list[str]]:
    """Returns the parsed days and a message per value that is not a valid day."""
    month_days: set[tuple[int, int]] = set()
    dates: set[date] = set()
    problems: list[str] = []
    for value in values:
        found = _MONTH_DAY.match(value)
        try:
            if found:
                month, day = int(found.group(1)), int(found.group(2))
                date(2024, month, day)  # a leap year, so 02-29 is accepted
                month_days.add((month, day))
            else:
                dates.add(date.fromisoformat(value))
        except ValueError:
            problems.append(f"'{value}' is not a valid MM-DD or YYYY-MM-DD date")
    return CustomDate(frozenset(month_days), frozenset(dates)), problems
