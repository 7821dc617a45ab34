"""Reward stock under concurrency: does a stocked reward serialise its buyers?

    .venv/bin/python bench/stock_contention.py [--buyers 400] [--clients 16]

Holds (two-phase redemptions) of a catalog reward by distinct members, run
concurrently through the services on a fresh PostgreSQL database, in three cases:
an unstocked reward (the baseline: no stock row at all), one stocked reward shared
by every buyer (its one stock row is the only shared row), and a stocked reward per
buyer (stock rows that never contend). Reported as holds per second and as ratios
to the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import asyncpg

from loyalty.auth.keys import Principal, Role
from loyalty.bootstrap import Container
from loyalty.db import migrate
from loyalty.ledger.model import AdjustmentIn
from loyalty.ledger.redemptions import HoldIn
from loyalty.members.model import NewMember
from loyalty.settings import Settings

SERVER = "postgresql://postgres@127.0.0.1/postgres"


def programme(buyers: int) -> str:
    per_buyer = "\n".join(f"  own-{i}: {{ kind: gift, cost: 10, stock: 5 }}" for i in range(buyers))
    return f"""
program: stock-bench
currency: CNY
point_value: "0.01"
timezone: UTC
rewards:
  free: {{ kind: gift, cost: 10 }}
  shared: {{ kind: gift, cost: 10, stock: 1000000 }}
{per_buyer}
rules: []
"""


async def run(buyers: int, clients: int) -> None:
    name = f"stock_bench_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(SERVER)
    await admin.execute(f'CREATE DATABASE "{name}"')
    container = Container(
        Settings.from_mapping(
            {"database_url": f"postgresql://postgres@127.0.0.1/{name}", "db_pool_size": clients}
        )
    )
    try:
        await migrate.upgrade(container.db)
        await container.programs.publish({"p.yaml": programme(buyers)}, "p.yaml", actor="bench")
        key = await container.api_keys.create("bench", "admin")
        who = Principal(key.key.id, "bench", Role.ADMIN)
        for i in range(buyers):
            await container.members.create(NewMember(member_id=f"B{i}"))
            await container.ledger.adjust(f"B{i}", AdjustmentIn(points=1000, reason="bench"), who)
        results = {}
        for case in ("free", "shared", "own"):
            gate = asyncio.Semaphore(clients)

            async def hold(i: int, case: str = case, gate: asyncio.Semaphore = gate) -> None:
                reward = f"own-{i}" if case == "own" else case
                async with gate:
                    await container.redemptions.reserve(
                        who, uuid.uuid4().hex, HoldIn(member_id=f"B{i}", reward_id=reward)
                    )

            started = time.perf_counter()
            await asyncio.gather(*(hold(i) for i in range(buyers)))
            results[case] = buyers / (time.perf_counter() - started)
        base = results["free"]
        print(f"{buyers} buyers, {clients} concurrent clients, one process, PostgreSQL")
        print(f"{'case':<40}{'holds/s':>10}{'x baseline':>12}")
        labels = {
            "free": "unstocked reward (baseline)",
            "shared": "one stocked reward, shared",
            "own": "a stocked reward per buyer",
        }
        for case, rate in results.items():
            print(f"{labels[case]:<40}{rate:>10.0f}{rate / base:>12.2f}")
    finally:
        await container.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=400)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(run(args.buyers, args.clients))


if __name__ == "__main__":
    main()
