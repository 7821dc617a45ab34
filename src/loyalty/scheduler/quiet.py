"""Do-not-contact hours: when a notice may be delivered to a member."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def deliver_after(quiet_hours: str | None, timezone: str, now: datetime) -> str | None:
    """The moment (ISO, UTC offset) the quiet hours `HH:MM-HH:MM` (member's local time)
    end, if `now` falls inside them; None when the notice may go at once. The engine
    sends nothing itself: the brand's messaging system holds the notice until then."""
    if not quiet_hours:
        return None
    start_text, end_text = quiet_hours.split("-")
    start, end = time.fromisoformat(start_text), time.fromisoformat(end_text)
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    local = now.astimezone(zone)
    clock = local.time()
    overnight = start > end
    inside = (start <= clock or clock < end) if overnight else (start <= clock < end)
    if not inside:
        return None
    day = local.date() + timedelta(days=1) if overnight and clock >= start else local.date()
    return datetime.combine(day, end, zone).isoformat()
