from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loyalty.scheduler.quiet import deliver_after


@pytest.mark.parametrize(
    ("quiet", "now", "expected"),
    [
        (None, datetime(2026, 3, 1, 15, tzinfo=UTC), None),
        # 23:00 in Shanghai, inside 22:00-08:00: held until 08:00 the next morning.
        ("22:00-08:00", datetime(2026, 3, 1, 15, tzinfo=UTC), "2026-03-02T08:00:00+08:00"),
        # 02:00 in Shanghai, after midnight: until 08:00 the same day.
        ("22:00-08:00", datetime(2026, 3, 1, 18, tzinfo=UTC), "2026-03-02T08:00:00+08:00"),
        # 12:00 in Shanghai: outside, deliver now.
        ("22:00-08:00", datetime(2026, 3, 1, 4, tzinfo=UTC), None),
        # A daytime window: 12:00-14:00, at 13:00 Shanghai.
        ("12:00-14:00", datetime(2026, 3, 1, 5, tzinfo=UTC), "2026-03-01T14:00:00+08:00"),
    ],
)
def test_notices_inside_quiet_hours_wait_for_their_end(
    quiet: str | None, now: datetime, expected: str | None
) -> None:
    assert deliver_after(quiet, "Asia/Shanghai", now) == expected
