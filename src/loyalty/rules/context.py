"""Per-event evaluation state, computed lazily so rules only pay for what they read."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .calendars import zone
from .inputs import EventInput, LineItem, MemberInput


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
    __slots__ = (
        "_amount",
        "_cel",
        "_dates",
        "_index",
        "_lines",
        "_local",
        "_quantity",
        "clocks",
        "event",
        "member",
        "windows",
    )

    def __init__(self, event: EventInput, member: MemberInput, clocks: Clocks) -> None:
        self.event = event
        self.member = member
        self.clocks = clocks
        self._local: dict[str, datetime] = {}
        self._dates: dict[str, date] = {}
        # Calendar cap windows per (period, clock), shared by every limit of the event.
        self.windows: dict[tuple[str, str], tuple[datetime, datetime]] = {}
        self._index: dict[str, dict[Any, tuple[int, Decimal]]] = {}
        self._cel: dict[str, Any] = {}
        self._lines: tuple[tuple[LineItem, Decimal], ...] | None = None
        self._amount: Decimal | None = None
        self._quantity = -1

    @property
    def lines(self) -> tuple[tuple[LineItem, Decimal], ...]:
        """Each line with its net amount, computed once per event for every rule."""
        lines = self._lines
        if lines is None:
            lines = self._summarise()
        return lines

    @property
    def amount(self) -> Decimal:
        """The event's spend: its declared total, else the sum of its lines."""
        amount = self._amount
        if amount is None:
            self._summarise()
            amount = self._amount
        return amount  # type: ignore[return-value]

    @property
    def quantity(self) -> int:
        if self._quantity < 0:
            self._summarise()
        return self._quantity

    def _summarise(self) -> tuple[tuple[LineItem, Decimal], ...]:
        lines = []
        amount, quantity = Decimal(0), 0
        for item in self.event.items:
            line_amount = item.unit_price * item.quantity - item.discount
            lines.append((item, line_amount))
            amount += line_amount
            quantity += item.quantity
        total = self.event.total
        self._amount = total if total is not None else amount
        self._quantity = quantity
        self._lines = result = tuple(lines)
        return result

    def local(self, clock: str) -> datetime:
        """The event instant on the wall clock a rule reads (member, store or programme)."""
        found = self._local.get(clock)
        if found is None:
            name = self.clocks.zone_name(clock, self.event, self.member)
            found = self.event.occurred_at.astimezone(zone(name))
            self._local[clock] = found
        return found

    def item_index(self, field: str) -> dict[Any, tuple[int, Decimal]]:
        """Quantity and amount per value of one line field (e.g. per category)."""
        index = self._index.get(field)
        if index is None:
            index = {}
            for item, line_amount in self.lines:
                key = getattr(item, field)
                found = index.get(key)
                if found is None:
                    index[key] = (item.quantity, line_amount)
                else:
                    index[key] = (found[0] + item.quantity, found[1] + line_amount)
            self._index[field] = index
        return index

    def local_date(self, clock: str) -> date:
        found = self._dates.get(clock)
        if found is None:
            found = self._dates[clock] = self.local(clock).date()
        return found

    def cel_cache(self) -> dict[str, Any]:
        return self._cel
