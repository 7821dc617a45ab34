"""Base award arithmetic: points from an event's qualifying amount or quantity."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from .context import EvalContext
from .items import ItemSelector
from .schema import AwardSpec

ROUNDING = {"floor": ROUND_FLOOR, "round-half-up": ROUND_HALF_UP, "ceil": ROUND_CEILING}
HUNDRED = Decimal(100)


def qualifying(ctx: EvalContext, selector: ItemSelector | None) -> tuple[int, Decimal]:
    """The quantity and amount a rule counts: the whole event, or only its selected lines."""
    if selector is None:
        return ctx.quantity, ctx.amount
    return selector.totals(ctx)


AwardFunction = Callable[[int, Decimal], int]


def award_function(spec: AwardSpec, point_value: Decimal) -> AwardFunction:
    """Points from (qualifying quantity, qualifying amount); exactly one form is set."""
    if spec.fixed is not None:
        fixed = spec.fixed
        return lambda quantity, amount: fixed
    if spec.per_item is not None:
        per_item = spec.per_item
        return lambda quantity, amount: max(0, quantity * per_item)
    mode = ROUNDING[spec.rounding]
    # Multiply first, divide once: 300 CNY at 1 point per 3 CNY must be exactly 100.
    if spec.per_amount is not None:
        factor, divisor = Decimal(spec.points), spec.per_amount
    else:
        factor, divisor = spec.percent or Decimal(0), HUNDRED * point_value

    def points(quantity: int, amount: Decimal) -> int:
        return max(0, int((amount * factor / divisor).to_integral_value(mode)))

    return points


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
