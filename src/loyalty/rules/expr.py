"""The CEL escape hatch for conditions the structured vocabulary cannot express.

Building a CEL context costs tens of microseconds (see DESIGN.md), so it is built only
when a rule with `expr` is actually reached, once per event and clock, then reused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import cel

from .checks import Check
from .conditions import WEEKDAYS, Scope
from .context import EvalContext

VARIABLES = frozenset({"event", "member", "local"})
_LOCATION = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*)")
# CEL reports macro loop variables (the `i` of `items.exists(i, ...)`) as variables too.
_BINDER = re.compile(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,")


def compile_expr(source: str, scope: Scope) -> Check | None:
    try:
        program = cel.compile(source)
    except (ValueError, RuntimeError) as exc:
        scope.error(f"bad expression: {_first_problem(str(exc))}", "expr")
        return None
    bound = set(_BINDER.findall(source))
    unknown = sorted(set(program.variables()) - VARIABLES - bound)
    if unknown:
        scope.error(
            f"bad expression: unknown variable {', '.join(unknown)} "
            f"(available: {', '.join(sorted(VARIABLES))})",
            "expr",
        )
        return None
    clock = scope.clock
    used = tuple(sorted(VARIABLES & set(program.variables())))

    def run(ctx: EvalContext) -> Any:
        return program.execute(_context(ctx, clock, used))

    def test(ctx: EvalContext) -> bool:
        try:
            return run(ctx) is True
        except Exception:  # the binding raises assorted errors; a failing expression is false
            return False

    def explain(ctx: EvalContext) -> str:
        try:
            result = run(ctx)
        except Exception as exc:
            return f"expression failed: {exc}"
        return f"expression {source!r} is {result!r}"

    return Check(test, explain)


def _first_problem(text: str) -> str:
    found = _LOCATION.search(text)
    if found:
        return f"{found.group(3)} (at column {found.group(2)} of the expression)"
    return text.splitlines()[0] if text else "cannot be compiled"


def _context(ctx: EvalContext, clock: str, used: tuple[str, ...]) -> Any:
    """One CEL context per event and clock, holding only the variables expressions read."""
    cache = ctx.cel_cache()
    entry = cache.get(clock)
    if entry is None:
        added: set[str] = set()
        entry = (cel.Context(), added)
        cache[clock] = entry
    built, added = entry
    for name in used:
        if name not in added:
            # Money goes in as Decimal; the binding compares it as a CEL double, and only a
            # boolean ever comes back, so no float reaches the points arithmetic.
            built.add_variable(name, _BUILDERS[name](ctx, clock))
            added.add(name)
    return built


def _event(ctx: EvalContext, clock: str) -> dict[str, Any]:
    event = ctx.event
    return {
        "type": event.type,
        "name": event.name,
        "order_id": event.order_id,
        "store_id": event.store_id,
        "channel": event.channel,
        "currency": event.currency,
        "total": event.amount,
        "payment_method": event.payment_method,
        "attributes": dict(event.attributes),
        "items": [
            {
                "sku": item.sku,
                "category": item.category,
                "brand": item.brand,
                "quantity": item.quantity,
                "unit_price": item.unit_price,
                "discount": item.discount,
                "amount": item.amount,
            }
            for item in event.items
        ],
    }


def _member(ctx: EvalContext, clock: str) -> dict[str, Any]:
    member = ctx.member
    joined = member.joined_at
    return {
        "id": member.member_id,
        "tier": member.tier,
        "tags": sorted(member.tags),
        "attributes": dict(member.attributes),
        "days_since_joined": (ctx.event.occurred_at - joined).days if joined else None,
        "birthday": member.birthday.isoformat() if member.birthday else None,
    }


def _local(ctx: EvalContext, clock: str) -> dict[str, Any]:
    now = ctx.local(clock)
    return {
        "date": now.date().isoformat(),
        "year": now.year,
        "month": now.month,
        "day": now.day,
        "weekday": WEEKDAYS[now.weekday()],
        "hour": now.hour,
        "minute": now.minute,
    }


_BUILDERS: dict[str, Callable[[EvalContext, str], dict[str, Any]]] = {
    "event": _event,
    "member": _member,
    "local": _local,
}
