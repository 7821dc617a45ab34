"""A lean HTTP/1.1 load generator for the loyalty API (asyncio streams + uvloop, keep-alive).

    .venv/bin/python bench/load.py --port 8800 --pos-key K --admin-key A \
        --scenario purchase --concurrency 16 --duration 10 --members 100000

Scenarios: purchase, balance, redeem (hold then commit), mixed (80% purchases, 15%
balance reads, 5% redemptions), hot (every purchase on one member), batch (POST
/v1/events/batch of --batch-size purchases; also reports events_per_s), credit (one-shot:
credit --credit-points to members 1..--redeem-pool with admin adjustments, not timed).
Each of --concurrency clients keeps one connection and sends one request at a time
(closed loop). Prints one JSON object on stdout: operations per second, latency
percentiles in ms, status counts and errors. An operation is one request, except a
redemption, which is two (hold + commit) and is timed as a whole. Errors are transport
failures, 5xx, and any 4xx not expected by the scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

CATEGORIES = ("tea-leaves", "tea-drinks", "teaware", "mooncake")
PRICES = {
    "tea-leaves": (4800, 68800),
    "tea-drinks": (1200, 3800),
    "teaware": (3900, 88000),
    "mooncake": (2800, 26800),
}
STORES = ("sh-jingan", "hz-westlake", "xj-urumqi")
PAYMENTS = ("card", "alipay", "wechat-pay", "cash")
# Expected refusals per operation: not errors, but not successes either.
EXPECTED_4XX = {"redeem": {409, 422}, "purchase": set(), "balance": set(), "batch": set()}

encode = msgspec.json.encode
decode = msgspec.json.decode


class Http:
    """One keep-alive connection; reconnects when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(
        self, method: str, path: str, key: str, body: bytes | None = None, idem: str | None = None
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Authorization: Bearer {key}",
        ]
        if idem is not None:
            head.append(f"Idempotency-Key: {idem}")
        if body is not None:
            head.append("Content-Type: application/json")
            head.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")
        assert self.reader is not None
        try:
            self.writer.write(raw)
            response = await self.reader.readuntil(b"\r\n\r\n")
        except (ConnectionError, asyncio.IncompleteReadError):
            await self.close()
            raise
        status = int(response[9:12])
        lower = response.lower()
        length = 0
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            length = int(lower[at + 17 : end])
        elif b"transfer-encoding: chunked" in lower:
            raise RuntimeError("chunked responses are not supported")
        data = await self.reader.readexactly(length) if length else b""
        if b"\r\nconnection: close" in lower:
            await self.close()
        return status, data


class Stats:
    def __init__(self) -> None:
        self.latencies: dict[str, list[int]] = {}
        self.status: Counter[str] = Counter()
        self.ok = 0
        self.expected = 0
        self.errors = 0
        self.requests = 0
        self.events = 0  # events recorded by batches
        self.samples: list[str] = []

    def record(self, op: str, ns: int, outcome: str) -> None:
        self.latencies.setdefault(op, []).append(ns)
        if outcome == "ok":
            self.ok += 1
        elif outcome == "expected":
            self.expected += 1
        else:
            self.errors += 1


def percentiles(values: list[int]) -> dict[str, float]:
    if not values:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6, 3)

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": at(1.0)}


class Client:
    def __init__(self, args: argparse.Namespace, number: int, stats: Stats, run: str) -> None:
        self.args = args
        self.http = Http(args.host, args.port)
        self.rng = random.Random(args.seed * 1000 + number)
        self.stats = stats
        self.prefix = f"{run}-{number}"
        self.count = 0

    def member(self) -> str:
        return f"B{self.rng.randint(1, self.args.members):08d}"

    def purchase_event(self, member: str) -> dict[str, Any]:
        rng = self.rng
        items = []
        for line in range(rng.randint(1, 8)):
            category = rng.choice(CATEGORIES)
            low, high = PRICES[category]
            items.append(
                {
                    "sku": f"{category[:3].upper()}-{rng.randrange(200):03d}",
                    "category": category,
                    "quantity": rng.choice((1, 1, 1, 2, 3)),
                    "unit_price": f"{rng.randrange(low, high) / 100:.2f}",
                    **({"discount": "5.00"} if line == 0 and rng.random() < 0.2 else {}),
                }
            )
        return {
            "type": "purchase",
            "member_id": member,
            "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "order_id": f"{self.prefix}-{self.count}",
            "store_id": rng.choice(STORES),
            "channel": rng.choice(("store", "store", "store", "app")),
            "currency": "CNY",
            "payment_method": rng.choice(PAYMENTS),
            "items": items,
        }

    def outcome(self, op: str, status: int, body: bytes) -> str:
        self.stats.status[f"{op} {status}"] += 1
        if 200 <= status < 300:
            return "ok"
        if status in EXPECTED_4XX[op]:
            return "expected"
        if len(self.stats.samples) < 5:
            self.stats.samples.append(f"{op} {status}: {body[:300].decode(errors='replace')}")
        return "error"

    async def purchase(self, member: str | None = None) -> tuple[str, str]:
        self.count += 1
        body = encode(self.purchase_event(member or self.member()))
        status, data = await self.http.request(
            "POST", "/v1/events", self.args.pos_key, body, f"{self.prefix}-{self.count}"
        )
        self.stats.requests += 1
        return "purchase", self.outcome("purchase", status, data)

    async def batch(self) -> tuple[str, str]:
        """One POST /v1/events/batch of --batch-size purchases; counts recorded events."""
        events = []
        for _ in range(self.args.batch_size):
            self.count += 1
            key = {"idempotency_key": f"{self.prefix}-{self.count}"}
            events.append(self.purchase_event(self.member()) | key)
        status, data = await self.http.request(
            "POST", "/v1/events/batch", self.args.pos_key, encode({"events": events})
        )
        self.stats.requests += 1
        if status == 200:
            answer = decode(data)
            self.stats.events += answer["recorded"]
            if answer["failed"]:
                status = 422  # the batch was read but some events were refused: an error
        return "batch", self.outcome("batch", status, data)

    async def balance(self) -> tuple[str, str]:
        status, data = await self.http.request(
            "GET", f"/v1/members/{self.member()}/balance", self.args.pos_key
        )
        self.stats.requests += 1
        return "balance", self.outcome("balance", status, data)

    async def redeem(self) -> tuple[str, str]:
        self.count += 1
        member = f"B{self.rng.randint(1, self.args.redeem_pool):08d}"
        body = encode({"member_id": member, "points": self.rng.choice((100, 200, 500))})
        status, data = await self.http.request(
            "POST", "/v1/redemptions", self.args.pos_key, body, f"{self.prefix}-r{self.count}"
        )
        self.stats.requests += 1
        if status != 201:
            return "redeem", self.outcome("redeem", status, data)
        hold = decode(data)
        status, data = await self.http.request(
            "POST", f"/v1/redemptions/{hold['id']}/commit", self.args.pos_key, b"{}"
        )
        self.stats.requests += 1
        return "redeem", self.outcome("redeem", status, data)

    async def one(self) -> tuple[str, str]:
        scenario = self.args.scenario
        if scenario == "purchase":
            return await self.purchase()
        if scenario == "balance":
            return await self.balance()
        if scenario == "redeem":
            return await self.redeem()
        if scenario == "hot":
            return await self.purchase(self.args.hot_member)
        if scenario == "batch":
            return await self.batch()
        draw = self.rng.random()
        if draw < 0.80:
            return await self.purchase()
        if draw < 0.95:
            return await self.balance()
        return await self.redeem()

    async def loop(self, measure_from: float, stop_at: float) -> None:
        perf = time.perf_counter_ns
        measure_ns = int(measure_from * 1e9)
        stop_ns = int(stop_at * 1e9)
        try:
            while True:
                began = perf()
                if began >= stop_ns:
                    return
                try:
                    op, outcome = await self.one()
                except (OSError, asyncio.IncompleteReadError) as exc:
                    op, outcome = "transport", "error"
                    self.stats.status[f"transport {type(exc).__name__}"] += 1
                    await asyncio.sleep(0.01)
                ended = perf()
                if began >= measure_ns and ended <= stop_ns:
                    self.stats.record(op, ended - began, outcome)
        finally:
            await self.http.close()


async def credit(args: argparse.Namespace) -> dict[str, Any]:
    """Give members 1..redeem_pool spendable points (admin adjustments, untimed)."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(1, args.redeem_pool + 1):
        queue.put_nowait(n)
    failures: list[str] = []

    async def worker() -> None:
        http = Http(args.host, args.port)
        try:
            while not queue.empty():
                n = queue.get_nowait()
                body = encode({"points": args.credit_points, "reason": "bench-float"})
                status, data = await http.request(
                    "POST", f"/v1/members/B{n:08d}/adjustments", args.admin_key, body
                )
                if status >= 300:
                    failures.append(f"{status} {data[:200]!r}")
        finally:
            await http.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(8)))
    return {
        "scenario": "credit",
        "members": args.redeem_pool,
        "seconds": round(time.perf_counter() - began, 2),
        "failures": len(failures),
        "error_samples": failures[:3],
    }


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    if args.scenario == "credit":
        return await credit(args)
    stats = Stats()
    run = uuid.uuid4().hex[:10]
    clients = [Client(args, n, stats, run) for n in range(args.concurrency)]
    began = time.perf_counter()
    measure_from = began + args.warmup
    stop_at = measure_from + args.duration
    await asyncio.gather(*(c.loop(measure_from, stop_at) for c in clients))
    everything = [ns for values in stats.latencies.values() for ns in values]
    done = stats.ok + stats.expected
    return {
        "scenario": args.scenario,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "ops": done,
        "ops_per_s": round(done / args.duration, 1),
        **({"events_per_s": round(stats.events / args.duration, 1)} if stats.events else {}),
        "ok": stats.ok,
        "expected_4xx": stats.expected,
        "errors": stats.errors,
        "requests": stats.requests,
        **percentiles(everything),
        "by_op": {
            op: {"count": len(values), **percentiles(values)}
            for op, values in stats.latencies.items()
        },
        "status": dict(stats.status),
        "error_samples": stats.samples,
    }


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="loyalty HTTP load generator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pos-key", required=True)
    parser.add_argument("--admin-key", default="")
    parser.add_argument(
        "--scenario",
        choices=("purchase", "balance", "redeem", "mixed", "hot", "credit", "batch"),
        required=True,
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--redeem-pool", type=int, default=1000)
    parser.add_argument("--credit-points", type=int, default=1_000_000)
    parser.add_argument("--hot-member", default="B00000001")
    parser.add_argument("--batch-size", type=int, default=1000, help="events per batch request")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    try:
        import uvloop

        result = uvloop.run(drive(args))
    except ImportError:
        result = asyncio.run(drive(args))
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
