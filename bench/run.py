"""The loyalty benchmark: the engine over HTTP against PostgreSQL's own ceiling, same run.

    .venv/bin/python bench/run.py [--members 100000] [--duration 20] [--concurrency 1,16,64]
                                  [--workers 2] [--ledger-sizes 1000000,10000000]
                                  [--birthday-members 1000000] [--profile] [--quick]

1. Ceilings: pgbench on ../shared/bench-ceiling/ (P purchase.sql, P1 purchase_1rt.sql,
   R read.sql) in a throw-away database, -n -M prepared -c 16 -j 2 -T <duration>.
2. A fresh database: migrations, members (bulk SQL + a Faker sample), the example
   programme, an admin and a pos key.
3. `loyalty serve --workers N` in a subprocess (uvloop), waits for /health/ready.
4. Load from a separate process (bench/load.py): purchases, balance reads, two-phase
   redemptions, the 80/15/5 mix at each concurrency level, and 16 writers on one member.
5. Cost per purchase as the ledger grows: copies of the database grown to each size with
   SQL, purchases in short rounds alternating between them (median and spread).
6. Rules evaluation per event (bench/rules_eval.py).
7. The birthday (grants) job over 1M members in a database of its own (bench/birthday.py).
8. JSON + PNG under bench/results/, and a short table with each target.

Engine figures are quoted as ratios to P (writes) or R (reads) measured in the same run,
because the machine is shared and absolute figures drift.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import birthday  # noqa: E402
import ingest  # noqa: E402
import rules_eval  # noqa: E402
import seed  # noqa: E402
from profiling import py_spy, summarise_profile  # noqa: E402

ROOT = HERE.parent
CEILING_DIR = Path(
    os.environ.get("LOYALTY_BENCH_CEILING", ROOT.parent / "shared" / "bench-ceiling")
)
RESULTS = HERE / "results"
PY = sys.executable
BIRTHDAY = "birthday job over 1M members"
BATCH_SIZE = 200  # events per POST /v1/events/batch in the load test


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


# --------------------------------------------------------------------------- ceilings


def pgbench(db: str, script: Path, clients: int, seconds: float) -> dict[str, Any]:
    """Run one pgbench script; tps from its summary, percentiles from its transaction log."""
    with tempfile.TemporaryDirectory(prefix="pgbench-") as tmp:
        prefix = str(Path(tmp) / "tx")
        done = subprocess.run(
            [
                "pgbench", "-h", "127.0.0.1", "-U", "postgres", "-n", "-M", "prepared",
                "-c", str(clients), "-j", "2", "-T", str(int(seconds)),
                "-l", "--log-prefix", prefix, "-f", str(script), db,
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"pgbench {script.name} failed:\n{done.stderr}")
        match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
        failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
        latencies: list[int] = []
        for path in Path(tmp).glob("tx*"):
            with path.open() as handle:
                for line in handle:
                    latencies.append(int(line.split(" ", 3)[2]) * 1000)  # us -> ns
    tps = float(match.group(1)) if match else 0.0
    from load import percentiles

    return {
        "script": script.name,
        "clients": clients,
        "tps": round(tps, 1),
        "failed": int(failed.group(1)) if failed else 0,
        **percentiles(latencies),
    }


def ceiling_db(name: str) -> None:
    asyncio.run(seed.recreate_database(name))
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", name, "-q", "-v", "ON_ERROR_STOP=1",
         "-f", str(CEILING_DIR / "schema.sql")],
        check=True, capture_output=True,
    )  # fmt: skip


def measure_ceilings(name: str, seconds: float) -> dict[str, Any]:
    ceiling_db(name)
    out = {}
    for label, script in (("P", "purchase.sql"), ("P1", "purchase_1rt.sql"), ("R", "read.sql")):
        log(f"ceiling {label}: pgbench {script}, 16 clients, {seconds:.0f} s")
        out[label] = pgbench(name, CEILING_DIR / script, 16, seconds)
        log(f"  {out[label]['tps']:,.0f} tps, p99 {out[label]['p99_ms']} ms")
    asyncio.run(seed.drop_database(name))
    return out


# --------------------------------------------------------------------------- server


class Server:
    def __init__(self, db: str, port: int, workers: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self.handle = log_path.open("w")
        self.proc = subprocess.Popen(
            [seed.LOYALTY, "serve", "--port", str(port), "--workers", str(workers)],
            env=seed.loyalty_env(db), stdout=self.handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}/health/ready"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout} s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.handle.close()

    def status_of(self, method: str, path: str, key: str) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", method=method,
            data=b"{}" if method == "POST" else None,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                     "Idempotency-Key": "bench-probe"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)


def load(
    port: int, keys: dict[str, str], scenario: str, concurrency: int, duration: float,
    members: int, pool: int, warmup: float, *extra: str,
) -> dict[str, Any]:  # fmt: skip
    command = [
        PY, str(HERE / "load.py"), "--port", str(port), "--pos-key", keys["pos"],
        "--admin-key", keys["admin"], "--scenario", scenario, "--concurrency", str(concurrency),
        "--duration", str(duration), "--warmup", str(warmup), "--members", str(members),
        "--redeem-pool", str(pool), "--hot-member", seed.member_id(members), *extra,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"load.py {scenario} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# --------------------------------------------------------------------------- ledger growth


def measure_ledger_growth(
    args: argparse.Namespace, keys: dict[str, str], stamp: str, warmup: float, pool: int
) -> dict[str, Any]:
    """Cost per purchase against ledgers of each of --ledger-sizes entries.

    A copy of the engine database (its server stopped) is grown to each size with SQL
    (each copy starts from the previous one), and each copy gets a server of its own,
    warmed by one untimed round. Purchases at c=16 then run in short rounds that
    alternate between the sizes in ABBA order (A B, B A, A B...), so that a change in
    the shared machine's load falls on every size alike; per size the median round is
    kept, and the spread between its rounds says how large a difference the comparison
    can see. What a purchase costs is measured per round too (purchase_round).
    """
    step = max(3.0, args.duration / 2)
    sizes = sorted(set(args.sizes))
    names = [f"{args.db}_ledger_{size}" for size in sizes]
    built: list[dict[str, Any]] = []
    servers: list[Server] = []
    rounds: list[dict[str, Any]] = []
    try:
        source = args.db
        for name, size in zip(names, sizes, strict=True):
            took = asyncio.run(seed.clone_database(source, name))
            entries = asyncio.run(seed.ledger_entry_count(name))
            log(f"{name}: copy of {source} ({entries:,} entries) in {took:.1f} s")
            grown = 0.0
            if size > entries:
                log(f"  growing its ledger {entries:,} -> {size:,} entries")
                grown = asyncio.run(seed.grow_ledger(name, size - entries, args.members))
                entries = asyncio.run(seed.ledger_entry_count(name))
                log(f"  {grown:.0f} s")
            built.append({"db": name, "entries": entries, "grow_seconds": round(grown, 1)})
            source = name
        for i, name in enumerate(names):
            log_path = RESULTS / f"server-{stamp}-ledger-{sizes[i]}.log"
            servers.append(Server(name, args.port + 1 + i, args.workers, log_path))
            # A fresh server's first requests are slow (connections, statement caches,
            # the programme): one untimed round each before the measured ones.
            load(servers[i].port, keys, "purchase", 16, max(step, 10), args.members, pool,
                 warmup)  # fmt: skip
        for number in range(args.ledger_rounds):
            order = list(range(len(names)))
            for i in order if number % 2 == 0 else order[::-1]:
                row = purchase_round(args, keys, servers[i], names[i], step, warmup, pool)
                row |= {"entries": built[i]["entries"], "round": number + 1}
                rounds.append(row)
                log(f"ledger {row['entries']:,} entries, round {number + 1}: "
                    f"{row['ops_per_s']:,.0f}/s p50 {row['p50_ms']} ms; per purchase: CPU "
                    f"{row['cpu_ms']} ms (server {row['server_cpu_ms']}, PostgreSQL "
                    f"{row['pg_cpu_ms']}), {row['blocks']} buffers")  # fmt: skip
    finally:
        for server in servers:
            server.stop()
        if not args.keep_db:
            for name in names:
                asyncio.run(seed.drop_database(name))
    per_size = [size_summary(b, [r for r in rounds if r["entries"] == b["entries"]])
                for b in built]  # fmt: skip
    return {
        "step_seconds": step,
        "rounds": rounds,
        "sizes": per_size,
        "change": compare_sizes(per_size[0], per_size[-1]) if len(per_size) >= 2 else None,
    }


def purchase_round(
    args: argparse.Namespace, keys: dict[str, str], server: Server, db: str, step: float,
    warmup: float, pool: int,
) -> dict[str, Any]:  # fmt: skip
    """One round of purchases at c=16, with what each purchase cost: CPU time of the
    server's processes and of PostgreSQL's backends for the database, PostgreSQL's
    statement time, buffers and rows, each over the orders written (warm-up included).
    CPU time per purchase moves far less than throughput when other work shares the
    cores; buffers and rows do not move with the machine's load at all."""
    before = asyncio.run(seed.database_activity(db))
    server_before = seed.group_cpu_seconds(server.proc.pid)
    row = load(server.port, keys, "purchase", 16, step, args.members, pool, warmup)
    server_cpu = seed.group_cpu_seconds(server.proc.pid) - server_before
    time.sleep(1.5)  # the backends flush their statistics within a second of going idle
    after = asyncio.run(seed.database_activity(db))
    orders = max(after["orders"] - before["orders"], 1)
    pg_cpu = sum(v - before.get(k, 0.0) for k, v in after.items() if k.startswith("cpu:"))

    def per(value: float, scale: float = 1.0, digits: int = 2) -> float:
        return round(value * scale / orders, digits)

    return row | {
        "orders": int(orders),
        "cpu_ms": per(server_cpu + pg_cpu, 1000),
        "server_cpu_ms": per(server_cpu, 1000),
        "pg_cpu_ms": per(pg_cpu, 1000),
        "db_ms": per(after["active_ms"] - before["active_ms"]),
        "blocks": per(after["blocks"] - before["blocks"], digits=1),
        "reads": per(after["reads"] - before["reads"], digits=2),
        "rows": per(after["rows"] - before["rows"], digits=1),
        "db_bytes": int(after["bytes"]),
    }


COSTS = ("ops_per_s", "p50_ms", "p99_ms", "cpu_ms", "server_cpu_ms", "pg_cpu_ms", "db_ms",
         "blocks", "reads", "rows")  # fmt: skip


def spread(values: list[float]) -> float:
    """(max - min) / median: how far apart the rounds at one size were."""
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle if middle else 0.0


def size_summary(built: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per figure the median of the rounds, the rounds themselves and their spread."""
    out = {**built, "rounds": len(rows), "errors": sum(r["errors"] for r in rows)}
    for name in COSTS:
        values = [r[name] for r in rows]
        out[name] = round(statistics.median(values), 2)
        out[f"{name}_rounds"] = values
        out[f"{name}_spread"] = round(spread(values), 3)
    out["db_megabytes"] = round(max(r["db_bytes"] for r in rows) / 2**20)
    return out


def compare_sizes(small: dict[str, Any], large: dict[str, Any]) -> dict[str, Any]:
    """From the smallest ledger to the largest: the change of each figure's median,
    against the larger spread between rounds at one size (the noise band).

    The cost of a purchase is its CPU time (server + PostgreSQL). Flat within 10% is
    met when that changes by at most 10% and its rounds are steady enough (spread <=
    10%) to see 10%; missed when it grows by more than 10% and more than its spread;
    otherwise inconclusive. Throughput is reported with its own band: on a shared
    machine it moves with the other work on the cores far more than CPU time does."""
    change = {name: large[name] / small[name] - 1 if small[name] else 0.0 for name in COSTS}
    noise = {name: max(small[f"{name}_spread"], large[f"{name}_spread"]) for name in COSTS}

    def said(name: str, label: str) -> str:
        within = "within noise" if abs(change[name]) <= noise[name] else "beyond noise"
        return f"{label} {change[name]:+.1%} ({within}, spread {noise[name]:.0%})"

    cost, band = change["cpu_ms"], noise["cpu_ms"]
    met: bool | None = None
    if abs(cost) <= 0.10 and band <= 0.10:
        met = True
    elif cost > 0.10 and cost > band:
        met = False
    return {
        "from": small["entries"],
        "to": large["entries"],
        "change": {name: round(value, 3) for name, value in change.items()},
        "noise": {name: round(value, 3) for name, value in noise.items()},
        "verdict": f"{said('cpu_ms', 'CPU/purchase')}; {said('ops_per_s', 'throughput')}; "
        f"buffers/purchase {change['blocks']:+.1%}",
        "met": met,
    }


# --------------------------------------------------------------------------- profile


def profile_server(server: Server, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    spy = py_spy()
    if spy is None:
        log("py-spy not installed (.venv/bin/pip install py-spy): no profile")
        return None
    return subprocess.Popen(
        [spy, "record", "--pid", str(server.proc.pid), "--subprocesses", "--duration",
         str(int(seconds)), "--rate", "200", "--format", "raw", "-o", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


# --------------------------------------------------------------------------- chart


def chart(result: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing (pip install -e '.[bench]'): no chart")
        return False
    runs = result["engine"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    for scenario in ("purchase", "balance", "redeem", "mixed"):
        rows = [r for r in runs if r["scenario"] == scenario]
        if not rows:
            continue
        xs = [r["concurrency"] for r in rows]
        (line,) = left.plot(xs, [r["ops_per_s"] for r in rows], marker="o", label=scenario)
        for q, style in (("p50_ms", "-"), ("p95_ms", "--"), ("p99_ms", ":")):
            right.plot(xs, [r[q] for r in rows], style, marker=".", color=line.get_color(),
                       label=f"{scenario} {q[:3]}")  # fmt: skip
    ceilings = result.get("ceilings") or {}
    for label, style in (("P", "k--"), ("R", "k:")):
        if label in ceilings:
            left.axhline(ceilings[label]["tps"], color="grey", linestyle=style[1:], linewidth=1)
            left.text(1, ceilings[label]["tps"], f" pgbench {label}", va="bottom", fontsize=8)
    left.set(xscale="log", yscale="log", xlabel="concurrent clients", ylabel="operations/s",
             title="Throughput vs concurrency")  # fmt: skip
    right.set(xscale="log", yscale="log", xlabel="concurrent clients", ylabel="latency (ms)",
              title="Latency percentiles vs concurrency")  # fmt: skip
    left.legend(fontsize=8)
    right.legend(fontsize=7, ncol=2)
    for axis in (left, right):
        axis.grid(True, which="both", alpha=0.3)
    machine = result["machine"]
    fig.suptitle(
        f"loyalty {result['git_commit'][:8]} - {machine['nproc']} cores, PostgreSQL "
        f"{machine['postgresql']}, {result['settings']['workers']} workers",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------- report


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    runs = result["engine"]
    ceil = result.get("ceilings") or {}
    rows: list[dict[str, Any]] = []

    def best(scenario: str) -> dict[str, Any] | None:
        found = [r for r in runs if r["scenario"] == scenario]
        return max(found, key=lambda r: r["ops_per_s"]) if found else None

    def add(name: str, measured: Any, goal: str, met: bool | None) -> None:
        rows.append({"target": name, "measured": measured, "goal": goal, "met": met})

    purchase, balance = best("purchase"), best("balance")
    if purchase and "P" in ceil:
        ratio = purchase["ops_per_s"] / ceil["P"]["tps"]
        add("purchase over HTTP / P", f"{ratio:.3f} ({purchase['ops_per_s']:,.0f}/s at "
            f"c={purchase['concurrency']})", ">= 0.40", ratio >= 0.40)  # fmt: skip
    if balance and "R" in ceil:
        ratio = balance["ops_per_s"] / ceil["R"]["tps"]
        add("balance read / R", f"{ratio:.3f} ({balance['ops_per_s']:,.0f}/s at "
            f"c={balance['concurrency']})", ">= 0.08", ratio >= 0.08)  # fmt: skip
    single = next((r for r in runs if r["scenario"] == "purchase" and r["concurrency"] == 1), None)
    if single:
        add("one client purchase p50", f"{single['p50_ms']} ms", "<= 1 ms", single["p50_ms"] <= 1)
        add("one client purchase p99", f"{single['p99_ms']} ms", "<= 2.5 ms",
            single["p99_ms"] <= 2.5)  # fmt: skip
    hot = result.get("hot_member")
    if hot:
        add("16 writers on one member", f"{hot['errors']} errors, {hot['ops_per_s']:,.0f}/s, "
            f"p99 {hot['p99_ms']} ms", "0 errors", hot["errors"] == 0)  # fmt: skip
    rules = result.get("rules") or {}
    fifty = next((r for r in rules.get("results", []) if r["case"].startswith(
        "generated 50 rules: counter_keys")), None)  # fmt: skip
    if fifty:
        us = fifty["us_per_event"]
        add("rules, 50-rule programme", f"{us} us/event", "<= 50 us", us <= 50)
    change = (result.get("ledger_growth") or {}).get("change")
    if change:
        add(f"purchase cost, ledger {change['from']:,} -> {change['to']:,} entries",
            change["verdict"], "flat within 10%", change["met"])  # fmt: skip
    http, imported = result.get("batch_http"), result.get("batch_import")
    if http or imported:
        rates = {
            "HTTP batches": (http or {}).get("events_per_s"),
            "loyalty import": ((imported or {}).get("import") or {}).get("events_per_s"),
        }
        shown = ", ".join(f"{name} {rate:,.0f} events/s" for name, rate in rates.items() if rate)
        add("batch ingestion", shown, ">= 20,000 events/s",
            max((r for r in rates.values() if r), default=0) >= 20_000)  # fmt: skip
    else:
        add("batch ingestion", "skipped (--batch-events 0)", ">= 20,000 events/s", None)
    gifts = result.get("birthday")
    if gifts:
        first, again, _ = gifts["runs"]
        # Fewer members than the target's million measure the job, not the target.
        add(f"birthday job over {gifts['members']:,} members",
            f"{first['seconds']:.1f} s ({first['granted']:,} gifts, {first['members_read']:,} "
            f"members read); again {again['seconds']:.1f} s, {again['granted']} granted",
            "<= 60 s, then 0", gifts["met"] if gifts["members"] >= 1_000_000 else None)  # fmt: skip
    else:
        add(BIRTHDAY, result["not_measured"].get(BIRTHDAY, "?"), "<= 60 s", None)
    return rows


def print_table(result: dict[str, Any]) -> None:
    ceil = result.get("ceilings") or {}
    print()
    print(f"{'work':<34} {'c':>3} {'ops/s':>9} {'vs P/R':>7} {'p50':>7} {'p95':>7} "
          f"{'p99':>7} {'err':>5}")  # fmt: skip
    for label, row in ceil.items():
        print(f"{'pgbench ' + label + ' (' + row['script'] + ')':<34} {16:>3} {row['tps']:>9,.0f} "
              f"{'':>7} {row['p50_ms']:>7} {row['p95_ms']:>7} {row['p99_ms']:>7} "
              f"{row['failed']:>5}")  # fmt: skip
    runs = [*result["engine"], *([result["hot_member"]] if result.get("hot_member") else [])]
    for row in runs:
        base = ceil.get("R" if row["scenario"] == "balance" else "P", {}).get("tps")
        ratio = f"{row['ops_per_s'] / base:.3f}" if base else "-"
        print(f"{'engine ' + row['scenario']:<34} {row['concurrency']:>3} "
              f"{row['ops_per_s']:>9,.0f} {ratio:>7} {row['p50_ms']:>7} {row['p95_ms']:>7} "
              f"{row['p99_ms']:>7} {row['errors']:>5}")  # fmt: skip
    for row in (result.get("ledger_growth") or {}).get("sizes", []):
        name = f"purchase, ledger {row['entries'] / 1e6:g}M, median"
        print(f"{name:<34} {16:>3} {row['ops_per_s']:>9,.0f} {'':>7} {row['p50_ms']:>7} "
              f"{'':>7} {row['p99_ms']:>7} {row['errors']:>5}  rounds {row['ops_per_s_rounds']}; "
              f"CPU ms/purchase {row['cpu_ms']} (rounds {row['cpu_ms_rounds']}: server "
              f"{row['server_cpu_ms']}, PostgreSQL {row['pg_cpu_ms']}); buffers "
              f"{row['blocks']}, rows {row['rows']}")  # fmt: skip
    print()
    for row in result["targets"]:
        mark = {True: "met", False: "MISSED", None: "-"}[row["met"]]
        print(f"{row['target']:<52} {row['measured']!s:<44} {row['goal']:<20} {mark}")


# --------------------------------------------------------------------------- main


def machine_facts(db: str) -> dict[str, Any]:
    async def version() -> str:
        conn = await asyncpg.connect(seed.db_url(db))
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "postgresql": asyncio.run(version()),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def git_commit() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    return done.stdout.strip() or "unknown"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=20, help="seconds per load step")
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated levels")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8870)
    parser.add_argument("--db", default="loyalty_bench", help="engine database (recreated)")
    parser.add_argument("--ceiling-db", default="loyalty_bench_ceiling")
    parser.add_argument(
        "--ledger-sizes", default="1000000,10000000",
        help="ledger sizes (total entries, comma-separated): a copy of the engine database "
        "is grown to each, and purchases are measured on each in turn; '' to skip",
    )  # fmt: skip
    parser.add_argument(
        "--ledger-rounds", type=int, default=4,
        help="purchase rounds per ledger size, alternating between the sizes in ABBA order "
        "(an even number balances a steady drift in the machine's load)",
    )  # fmt: skip
    parser.add_argument(
        "--batch-events",
        type=int,
        default=20_000,
        help="purchases for the timed `loyalty import` (HTTP batches run as long as a step); "
        "0 skips batch ingestion",
    )
    parser.add_argument(
        "--birthday-members", type=int, default=1_000_000,
        help="members for the birthday (grants) job, in a database of its own; 0 to skip",
    )  # fmt: skip
    parser.add_argument(
        "--birthday-date", type=date.fromisoformat, default=None,
        help="the day to run the grants job for (default yesterday, UTC)",
    )  # fmt: skip
    parser.add_argument("--rules-events", type=int, default=300)
    parser.add_argument("--scenarios", default="purchase,balance,redeem,mixed")
    parser.add_argument("--skip-ceiling", action="store_true")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the server during purchases at the highest concurrency",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the engine database")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 10k members, 5 s steps, concurrency 1,16, ledger 100k and 1M "
        "entries in 2 rounds, birthday job over 20k members, import of 2k events",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.members = min(args.members, 10_000)
        args.batch_events = min(args.batch_events, 2_000)
        args.duration = min(args.duration, 5)
        args.concurrency = "1,16"
        if args.ledger_sizes == "1000000,10000000":
            args.ledger_sizes = "100000,1000000"
        args.ledger_rounds = min(args.ledger_rounds, 2)
        args.birthday_members = min(args.birthday_members, 20_000)
        args.rules_events = 100
    args.levels = [int(c) for c in args.concurrency.split(",") if c]
    args.sizes = [int(s) for s in args.ledger_sizes.split(",") if s]
    return args


def save_partial(result: dict[str, Any], stamp: str) -> None:
    partial = RESULTS / f"bench-{stamp}-partial.json"
    partial.write_text(json.dumps(result, indent=2, default=str) + "\n")
    log(f"failed; what was measured so far is in {partial}")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    warmup = min(2.0, max(0.5, args.duration * 0.1))
    pool = min(1000, args.members - 1)
    result: dict[str, Any] = {
        "started_at": stamp,
        "git_commit": git_commit(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("levels", "sizes")},
        "machine": machine_facts("postgres"),
        "engine": [],
        "not_measured": {},
    }
    log(f"machine: {result['machine']}")

    if not args.skip_ceiling:
        result["ceilings"] = measure_ceilings(args.ceiling_db, args.duration)

    log(f"database {args.db}: create, migrate, seed {args.members:,} members")
    asyncio.run(seed.recreate_database(args.db))
    seed.migrate(args.db)
    seconds = asyncio.run(seed.seed_members(args.db, args.members))
    log(f"  seeded in {seconds:.1f} s; publishing {seed.EXAMPLE.name}, creating keys")
    seed.publish_programme(args.db)
    keys = {role: seed.create_key(args.db, role) for role in ("admin", "pos")}

    server = Server(args.db, args.port, args.workers, RESULTS / f"server-{stamp}.log")
    spy: subprocess.Popen[bytes] | None = None
    try:
        log(f"server up on :{args.port} with {args.workers} workers")
        credit = load(args.port, keys, "credit", 8, 0, args.members, pool, 0)
        log(f"credited {pool} members for redemptions in {credit['seconds']} s "
            f"({credit['failures']} failures)")  # fmt: skip
        scenarios = [name for name in args.scenarios.split(",") if name]
        for scenario in scenarios:
            for level in args.levels:
                if args.profile and scenario == "purchase" and level == max(args.levels):
                    spy = profile_server(server, args.duration, RESULTS / f"profile-{stamp}.txt")
                row = load(args.port, keys, scenario, level, args.duration, args.members, pool,
                           warmup)  # fmt: skip
                result["engine"].append(row)
                log(f"{scenario:>8} c={level:<3} {row['ops_per_s']:>8,.0f}/s  p50 "
                    f"{row['p50_ms']} p99 {row['p99_ms']} ms  errors {row['errors']}")  # fmt: skip
                if row["error_samples"]:
                    log(f"  e.g. {row['error_samples'][0][:200]}")
        if spy is not None:
            spy.wait(60)
            raw = RESULTS / f"profile-{stamp}.txt"
            if raw.exists():
                result["profile"] = {"raw": raw.name, **summarise_profile(raw)}
                log(f"profile: {raw}")

        if scenarios:  # --scenarios '' runs only the ledger and birthday measurements
            hot = load(args.port, keys, "hot", 16, args.duration, args.members, pool, warmup)
            result["hot_member"] = hot
            log(f"16 writers on one member: {hot['ops_per_s']:,.0f}/s, errors {hot['errors']}, "
                f"statuses {hot['status']}")  # fmt: skip

        if args.batch_events > 0:
            row = load(args.port, keys, "batch", 2, max(args.duration, 20), args.members, pool,
                       warmup, "--batch-size", str(BATCH_SIZE))  # fmt: skip
            result["batch_http"] = row
            log(f"   batch c=2  {row.get('events_per_s', 0):>8,.0f} events/s (batches of "
                f"{BATCH_SIZE}), p50 {row['p50_ms']} ms/batch, errors {row['errors']}")  # fmt: skip
    except BaseException:
        save_partial(result, stamp)
        raise
    finally:
        server.stop()
        if spy is not None and spy.poll() is None:
            spy.terminate()

    try:
        if args.sizes:
            result["ledger_growth"] = measure_ledger_growth(args, keys, stamp, warmup, pool)

        if args.batch_events > 0:
            log(f"loyalty import of {args.batch_events:,} purchases (bench/ingest.py)")
            result["batch_import"] = ingest.measure(args.db, args.members, args.batch_events)
            log(f"  {result['batch_import']['import']}")

        log("rules evaluation (bench/rules_eval.py)")
        rules_json = RESULTS / f"rules-{stamp}.json"
        rules_eval.main(["--events", str(args.rules_events), "--json", str(rules_json)])
        result["rules"] = json.loads(rules_json.read_text())

        if args.birthday_members > 0:
            profile = RESULTS / f"profile-birthday-{stamp}.txt" if args.profile else None
            result["birthday"] = birthday.measure(
                args.birthday_members, f"{args.db}_birthday", args.birthday_date,
                args.keep_db, profile,
            )  # fmt: skip
        else:
            result["not_measured"][BIRTHDAY] = "skipped (--birthday-members 0)"
    except BaseException:
        save_partial(result, stamp)
        raise

    if not args.keep_db:
        asyncio.run(seed.drop_database(args.db))
    result["targets"] = targets(result)
    out = RESULTS / f"bench-{stamp}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    png = RESULTS / f"bench-{stamp}.png"
    drawn = chart(result, png) if result["engine"] else False  # --scenarios '': no chart
    print_table(result)
    print(f"\nresults: {out}" + (f"\nchart:   {png}" if drawn else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
