"""Per-event evaluation state, computed lazily so rules only pay for what they read."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .calendars import zone
from .inputs import EventInput, MemberInput


class Clocks:
    """The time zones a programme can evaluate time conditions in."""

    __slots__ = ("program_zone", "store_zones")

    def __init__(self, program_zone: str, store_zones: Mapping[str, str]) -> None:
        self.program_zone = program_zone
        self.store_zones = dict(store_zones)

    def zone_name(self, clock: str, event: EventInput, member: MemberInput) -> str:
        if clock == "member" and member.timezone:
            return member.timezone
        if clock == "store" and event.store_id in self.store_zones:
            return self.store_zones[event.store_id]
        return self.program_zone


class EvalContext:
    __slots__ = ("_cel", "_local", "clocks", "event", "member")

    def __init__(self, event: EventInput, member: MemberInput, clocks: Clocks) -> None:
        self.event = event
        self.member = member
        self.clocks = clocks
        self._local: dict[str, datetime] = {}
        self._cel: dict[str, Any] = {}

    def local(self, clock: str) -> datetime:
        """The event instant on the wall clock a rule reads (member, store or programme)."""
        found = self._local.get(clock)
        if found is None:
            name = self.clocks.zone_name(clock, self.event, self.member)
            found = self.event.occurred_at.astimezone(zone(name))
            self._local[clock] = found
        return found

    def cel_cache(self) -> dict[str, Any]:
        return self._cel
