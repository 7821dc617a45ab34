"""Line-item filters (sku, category, brand) and the quantity and amount they select."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from operator import attrgetter

from .context import EvalContext
from .inputs import LineItem
from .schema import ItemFilter, as_list

ZERO = Decimal(0)
FIELDS = ("sku", "category", "brand")


class ItemSelector:
    """Selects an event's lines. A filter on one field (the usual `category: tea`) reads a
    per-event index shared by every rule, instead of walking the lines once per rule."""

    __slots__ = ("allowed", "field", "label", "matches")

    def __init__(self, spec: ItemFilter) -> None:
        chosen = [(name, frozenset(as_list(getattr(spec, name)))) for name in FIELDS]
        chosen = [(name, values) for name, values in chosen if values]
        self.label = " and ".join(f"{name} {', '.join(sorted(v))}" for name, v in chosen)
        self.label = self.label or "any item"
        self.field: str | None = chosen[0][0] if len(chosen) == 1 else None
        self.allowed: frozenset[str] = chosen[0][1] if len(chosen) == 1 else frozenset()
        self.matches: Callable[[LineItem], bool] = _matcher(chosen)

    def totals(self, ctx: EvalContext) -> tuple[int, Decimal]:
        """Quantity and net amount of the selected lines."""
        quantity, amount = 0, ZERO
        if self.field is not None:
            index = ctx.item_index(self.field)
            for value in self.allowed:
                found = index.get(value)
                if found is not None:
                    quantity += found[0]
                    amount += found[1]
            return quantity, amount
        matches = self.matches
        for item, line_amount in ctx.lines:
            if matches(item):
                quantity += item.quantity
                amount += line_amount
        return quantity, amount


def _matcher(chosen: list[tuple[str, frozenset[str]]]) -> Callable[[LineItem], bool]:
    tests = [(attrgetter(name), values) for name, values in chosen]

    def matches(item: LineItem) -> bool:
        for get, allowed in tests:  # noqa: SIM110 - hot path, see checks.all_of
            if get(item) not in allowed:
                return False
        return True

    return matches
