"""Batch ingestion: `loyalty import` of a JSON Lines file of purchases, timed.

    .venv/bin/python bench/ingest.py --db loyalty_bench --members 100000 --events 20000

The database must be prepared as bench/run.py prepares it (members B00000001...,
the example programme published). Purchases come from bench/load.py's generator
(1-8 line items, realistic prices), each with its own idempotency key. The import is
run twice: the second run (--restart) must find every event already there, and shows
what a replayed batch costs. (POST /v1/events/batch over HTTP is bench/load.py's
`batch` scenario.)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import load  # noqa: E402
import seed  # noqa: E402

_SUMMARY = re.compile(r"(\d+) recorded, (\d+) already there, (\d+) refused")


def write_events(path: Path, members: int, events: int) -> None:
    args = argparse.Namespace(members=members, seed=7, host="", port=0)
    client = load.Client(args, 0, load.Stats(), "import")
    with path.open("w") as out:
        for n in range(events):
            client.count += 1
            event = client.purchase_event(client.member()) | {"idempotency_key": f"imp-{n}"}
            out.write(json.dumps(event) + "\n")


def run_import(db: str, path: Path, *extra: str) -> dict[str, Any]:
    began = time.perf_counter()
    done = subprocess.run(
        [seed.LOYALTY, "import", str(path), "--batch-size", "1000", *extra],
        env=seed.loyalty_env(db),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - began
    found = _SUMMARY.search(done.stdout + done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"loyalty import failed ({done.returncode}):\n{done.stderr[-2000:]}")
    recorded, replayed, refused = (int(n) for n in found.groups())
    return {
        "seconds": round(seconds, 2),
        "recorded": recorded,
        "replayed": replayed,
        "refused": refused,
        "events_per_s": round((recorded + replayed) / seconds, 1),
    }


def measure(db: str, members: int, events: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "history.jsonl"
        write_events(path, members, events)
        first = run_import(db, path)
        again = run_import(db, path, "--restart")
    return {"events": events, "import": first, "import_again_all_replays": again}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="a database prepared by bench/run.py")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.db, args.members, args.events), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
