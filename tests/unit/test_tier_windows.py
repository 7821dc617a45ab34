"""Tier windows: where a moment falls, in the programme's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from loyalty.rules.schema import TierPolicySpec
from loyalty.tiers.ladder import window

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Joined at 15:30 local time on 10 March 2024.
JOINED = datetime(2024, 3, 10, 15, 30, tzinfo=SHANGHAI).astimezone(UTC)
MEMBERSHIP = TierPolicySpec(window="membership_year")


def _local_midnight(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=SHANGHAI).astimezone(UTC)


def test_a_membership_year_starts_at_midnight_of_the_anniversary() -> None:
    # Earlier in the day than the member joined, on the anniversary: already the new year.
    morning = datetime(2025, 3, 10, 9, 0, tzinfo=SHANGHAI).astimezone(UTC)
    assert window(MEMBERSHIP, morning, SHANGHAI, JOINED) == (
        _local_midnight(2025, 3, 10),
        _local_midnight(2026, 3, 10),
    )
    # The day before still belongs to the first year.
    eve = datetime(2025, 3, 9, 23, 0, tzinfo=SHANGHAI).astimezone(UTC)
    assert window(MEMBERSHIP, eve, SHANGHAI, JOINED)[1] == _local_midnight(2025, 3, 10)


def test_the_window_after_a_reviewed_end_moves_forward() -> None:
    # Reviews ask for the window that starts where the last one ended; returning the
    # same end made the review job select the member again for ever.
    ended = _local_midnight(2025, 3, 10)
    assert window(MEMBERSHIP, ended, SHANGHAI, JOINED)[1] == _local_midnight(2026, 3, 10)
