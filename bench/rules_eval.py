"""Micro-benchmark: per-event rule evaluation time, against a plain-Python baseline.

    .venv/bin/python bench/rules_eval.py [--events 300] [--repeats 7] [--json PATH]

Programmes: the example tea-house programme and a generated 50-rule programme.
Events: seeded random purchases with 1-8 line items over a year, members of every tier.
Each figure is the median over repeats of (total time / events), via perf_counter_ns.
The baseline is a plain function doing a comparable single pass over the event (sum
the lines, count a category, compare the tier), so the ratio is machine-independent.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from loyalty.rules import EventInput, LineItem, MemberInput, Program, compile_program
from loyalty.rules.compiler import compile_source

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "tea-house.yaml"
CATEGORIES = ("tea-leaves", "tea-drinks", "teaware", "mooncake", "snack", "gift")
TIERS = ("member", "silver", "gold", "black")
STORES = ("sh-jingan", "hz-westlake", "xj-urumqi")


def generated_programme(rule_count: int = 50) -> str:
    """A 50-rule programme mixing every kind of condition, as a marketer might grow one."""
    lines = [
        "program: generated-50",
        "currency: CNY",
        'point_value: "0.01"',
        "timezone: Asia/Shanghai",
        "stores: {sh-jingan: {timezone: Asia/Shanghai}, hz-westlake: {timezone: Asia/Shanghai},"
        " xj-urumqi: {timezone: Asia/Urumqi}}",
        'custom_dates: {singles-day: "11-11", anniversary: "05-18"}',
        "tiers: [{id: member}, {id: silver}, {id: gold}, {id: black}]",
        "rules:",
        "  - {id: base, on: purchase, priority: 100, award: {per_amount: '1.00'},"
        " pending_days: 14}",
    ]
    shapes: list[Callable[[int], str]] = [
        lambda i: (
            f"items: {{category: {CATEGORIES[i % 6]}, min_quantity: 3}}, award: {{per_item: 3}}"
        ),
        lambda i: f"when: {{tier: [{TIERS[i % 4]}]}}, multiply: 2, applies_to: [base]",
        lambda i: (
            "when: {weekdays: [sat, sun], hours: {from: '10:00', until: '14:00'}}, "
            "award: {fixed: 20}"
        ),
        lambda i: (
            f"when: {{store: {STORES[i % 3]}, channel: [store]}}, award: {{fixed: 5}}, "
            "limits: [{max_times: 1, period: day}]"
        ),
        lambda i: (
            f"when: {{amount: {{min: '{200 + i * 20}.00'}}}}, "
            "award: {percent: 2, rounding: round-half-up}"
        ),
        lambda i: "when: {custom_date: singles-day}, award: {fixed: 111}, budget: 100000",
        lambda i: (
            "when: {holiday: {country: CN, name: National Day}}, award: {fixed: 100}, "
            "limits: [{max_times: 1, period: year}]"
        ),
        lambda i: (
            "when: {birthday: month, amount: {min: '30.00'}}, award: {fixed: 50}, "
            "limits: [{max_times: 1, period: year}]"
        ),
        lambda i: (
            "when: {any: [{has_tags: vip}, {payment_method: [alipay]}], "
            "not: {channel: [web]}}, award: {fixed: 8}"
        ),
        lambda i: (
            f"items: {{brand: [brand-{i % 5}], min_amount: '60.00'}}, "
            "award: {per_amount: '2.00', rounding: ceil}, max_per_event: 200"
        ),
    ]
    for i in range(1, rule_count):
        # Like a real programme, half the rules are two-week campaigns spread over the year.
        window = ""
        if i % 2 == 0:
            begin = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=(i * 7) % 350)
            end = begin + timedelta(days=14)
            window = f"active_from: '{begin.isoformat()}', active_until: '{end.isoformat()}', "
        lines.append(
            f"  - {{id: r{i:02d}, on: purchase, priority: {i % 7}, {window}"
            f"{shapes[i % len(shapes)](i)}}}"
        )
    return "\n".join(lines) + "\n"


def purchases(count: int, seed: int = 7) -> list[tuple[EventInput, MemberInput]]:
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    cases = []
    for n in range(count):
        items = tuple(
            LineItem(
                sku=f"SKU-{rng.randrange(500)}",
                category=rng.choice(CATEGORIES),
                brand=f"brand-{rng.randrange(5)}",
                quantity=rng.randint(1, 3),
                unit_price=Decimal(rng.randrange(800, 30000)) / 100,
            )
            for _ in range(rng.randint(1, 8))
        )
        event = EventInput(
            type="purchase",
            occurred_at=start + timedelta(minutes=rng.randrange(525_600)),
            order_id=f"o-{n}",
            store_id=rng.choice(STORES),
            channel=rng.choice(("store", "app", "web")),
            currency="CNY",
            payment_method=rng.choice(("alipay", "wechat-pay", "card")),
            items=items,
        )
        member = MemberInput(
            member_id=f"m-{rng.randrange(1000)}",
            tier=rng.choice(TIERS),
            tags=frozenset({"vip"} if rng.random() < 0.1 else ()),
            joined_at=start - timedelta(days=rng.randrange(900)),
            birthday=datetime(1990, rng.randint(1, 12), 1).date(),
            timezone=rng.choice(("Asia/Shanghai", "America/Los_Angeles")),
        )
        cases.append((event, member))
    return cases


def baseline(event: EventInput, member: MemberInput) -> int:
    """A trivial hand-written pass over the same event, for scale."""
    amount = Decimal(0)
    tea = 0
    for item in event.items:
        amount += item.amount
        if item.category == "tea-leaves":
            tea += item.quantity
    points = int(amount)
    if member.tier in ("gold", "black"):
        points *= 2
    return points + tea


def reaches_cel_rule(event: EventInput, member: MemberInput) -> bool:
    """Whether the example's structured guards let the event reach its CEL expression."""
    teaware = sum((i.amount for i in event.items if i.category == "teaware"), Decimal(0))
    joined = member.joined_at
    return (
        teaware >= 500
        and member.tier in ("gold", "black")
        and joined is not None
        and (event.occurred_at - joined).days >= 365
    )


def per_event_ns(
    work: Callable[[EventInput, MemberInput], object],
    cases: Sequence[tuple[EventInput, MemberInput]],
    repeats: int,
) -> float:
    for event, member in cases[:50]:  # warm caches (time zones, holiday years)
        work(event, member)
    samples = []
    for _ in range(repeats):
        began = time.perf_counter_ns()
        for event, member in cases:
            work(event, member)
        samples.append((time.perf_counter_ns() - began) / len(cases))
    return statistics.median(samples)


def full_path(program: Program) -> Callable[[EventInput, MemberInput], object]:
    """What the ledger will do per event: ask for counter keys, then evaluate with them."""

    def run(event: EventInput, member: MemberInput) -> object:
        keys = program.counter_keys(event, member)
        return program.evaluate(event, member, dict.fromkeys(keys, 0))

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)

    cases = purchases(args.events)
    programmes = {
        "tea-house (example)": compile_program(EXAMPLE),
        "generated 50 rules": compile_source(generated_programme(), "generated-50.yaml"),
    }
    base_ns = per_event_ns(baseline, cases, args.repeats)
    rows = [("baseline (plain Python pass)", 0, base_ns)]
    tea = programmes["tea-house (example)"]
    with_cel = [case for case in cases if reaches_cel_rule(*case)]
    without_cel = [case for case in cases if not reaches_cel_rule(*case)]
    rows.append(
        (
            f"tea-house: {len(without_cel)} events not reaching CEL",
            len(tea.rules),
            per_event_ns(tea.evaluate, without_cel, args.repeats),
        )
    )
    rows.append(
        (
            f"tea-house: {len(with_cel)} events reaching CEL",
            len(tea.rules),
            per_event_ns(tea.evaluate, with_cel, args.repeats),
        )
    )
    for label, program in programmes.items():
        count = len(program.rules)
        rows.append(
            (f"{label}: evaluate", count, per_event_ns(program.evaluate, cases, args.repeats))
        )
        rows.append(
            (
                f"{label}: counter_keys + evaluate",
                count,
                per_event_ns(full_path(program), cases, args.repeats),
            )
        )
        rows.append(
            (
                f"{label}: evaluate explain=True",
                count,
                per_event_ns(
                    lambda e, m, p=program: p.evaluate(e, m, explain=True), cases, args.repeats
                ),
            )
        )

    print(
        f"{args.events} purchases (1-8 items), median of {args.repeats} repeats, "
        f"Python {sys.version.split()[0]}"
    )
    print(f"{'case':<48} {'rules':>5} {'us/event':>9} {'x baseline':>10}")
    results = []
    for label, count, ns in rows:
        print(f"{label:<48} {count or '':>5} {ns / 1000:>9.2f} {ns / base_ns:>10.1f}")
        results.append(
            {
                "case": label,
                "rules": count,
                "us_per_event": round(ns / 1000, 3),
                "ratio_to_baseline": round(ns / base_ns, 2),
            }
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"events": args.events, "repeats": args.repeats, "results": results}, indent=2
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
