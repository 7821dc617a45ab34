"""Base award arithmetic: points from an event's qualifying amount or quantity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from .inputs import EventInput, LineItem
from .schema import AwardSpec

ROUNDING = {"floor": ROUND_FLOOR, "round-half-up": ROUND_HALF_UP, "ceil": ROUND_CEILING}
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Qualifying:
    """The part of an event a rule counts: all of it, or only its matching lines."""

    amount: Decimal
    quantity: int


def qualifying(event: EventInput, matches: Callable[[LineItem], bool] | None) -> Qualifying:
    if matches is None:
        return Qualifying(event.amount, sum(item.quantity for item in event.items))
    amount, quantity = Decimal(0), 0
    for item in event.items:
        if matches(item):
            amount += item.amount
            quantity += item.quantity
    return Qualifying(amount, quantity)


def _rounded(value: Decimal, rounding: str) -> int:
    return max(0, int(value.to_integral_value(rounding=ROUNDING[rounding])))


def award_function(spec: AwardSpec, point_value: Decimal) -> Callable[[Qualifying], int]:
    """The caller has checked that exactly one form is set."""
    if spec.fixed is not None:
        fixed = spec.fixed
        return lambda q: fixed
    if spec.per_item is not None:
        per_item = spec.per_item
        return lambda q: max(0, q.quantity * per_item)
    mode, points = spec.rounding, spec.points
    if spec.per_amount is not None:
        step = spec.per_amount
        return lambda q: _rounded(q.amount / step * points, mode)
    share = (spec.percent or Decimal(0)) / HUNDRED / point_value
    return lambda q: _rounded(q.amount * share, mode)


def describe_award(spec: AwardSpec, currency: str) -> str:
    if spec.fixed is not None:
        return f"{spec.fixed} points"
    if spec.per_item is not None:
        return f"{spec.per_item} points per item"
    if spec.per_amount is not None:
        unit = "point" if spec.points == 1 else "points"
        return f"{spec.points} {unit} per {spec.per_amount} {currency}"
    return f"{spec.percent}% back in points"


def multiplier_extra(base: int, factor: Decimal) -> int:
    """Extra points a multiplier adds on top of `base` (rounded down, never negative)."""
    return max(0, int((base * (factor - 1)).to_integral_value(rounding=ROUND_FLOOR)))
