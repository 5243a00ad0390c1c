"""Customer 360 (DESIGN.md §6): the data of one customer's 360 page — card, identities, consent, accounts,
orders, vehicles, merges and the first page of the timeline — p99 ≤ 50 ms at 1 M profiles and 20 M events.
The baseline is the same data read with hand-written SQL (one query per part) in the same run, on the same
customers."""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import demo_data, is_sqlite, machine

TARGET_P99_MS = 50.0
SAMPLES = 400

BASELINE_SQL = [
    "SELECT * FROM profiles WHERE id = :id",
    "SELECT * FROM identities WHERE profile_id = :id",
    "SELECT DISTINCT ON (channel, purpose) * FROM consents WHERE profile_id = :id ORDER BY channel, purpose, ts DESC",
    "SELECT a.* FROM accounts a JOIN account_members m ON m.account_id = a.id WHERE m.profile_id = :id",
    "SELECT * FROM orders WHERE profile_id = :id ORDER BY ordered_at DESC",
    "SELECT l.* FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE o.profile_id = :id",
    "SELECT * FROM vehicles WHERE profile_id = :id",
    "SELECT * FROM profile_merges WHERE winner_id = :id OR loser_id = :id",
    "SELECT * FROM events WHERE org_id = :org AND profile_id = :id ORDER BY ts DESC, id DESC LIMIT 51",
    "SELECT * FROM audit_log WHERE org_id = :org AND entity = 'profiles' AND entity_id = :id "
    "ORDER BY ts DESC, id DESC LIMIT 51",
]
# SQLite has no DISTINCT ON: the latest record per channel and purpose by a window function instead.
SQLITE_CONSENTS = ("SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY channel, purpose ORDER BY ts DESC) "
                   "AS n FROM consents WHERE profile_id = :id) WHERE n = 1")


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 2),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 2)}


def run(database_url: str | None = None, size: int | None = None, reuse: bool = False) -> dict[str, Any]:
    """``reuse``: measure on the generated data a previous run (of this or another benchmark) left."""
    import kehu.models  # noqa: F401
    from kehu.cdp import service
    from kehu.core.db import Database
    from kehu.tenancy import service as tenancy_service

    url, org_id, data_size = demo_data(database_url, size, reuse=reuse, postgres=100_000, sqlite=10_000, seed=11)
    baseline_sql = [SQLITE_CONSENTS if is_sqlite(url) and "DISTINCT ON" in sql else sql for sql in BASELINE_SQL]
    database = Database(url)
    with database.unit_of_work() as session:
        admin = tenancy_service.principal_for_user(session, session.execute(text(
            "SELECT id FROM users WHERE email = 'admin@demo.kehu.dev'")).scalar_one())
        ids = [row[0] for row in session.execute(text("SELECT id FROM profiles WHERE org_id = :org"),
                                                  {"org": org_id})]
    rng = random.Random(5)
    chosen = [rng.choice(ids) for _ in range(SAMPLES)]
    include = {"identities", "merges", "consents", "accounts", "orders", "vehicles", "timeline"}

    def kehu_once(profile_id: int) -> float:
        with database.sessionmaker() as session:
            started = time.perf_counter()
            result = service.customer_360(session, admin, profile_id, include=include, limit=50)
            elapsed = time.perf_counter() - started
            assert result.profile.id == profile_id
            return elapsed * 1000

    def baseline_once(profile_id: int) -> float:
        with database.sessionmaker() as session:
            connection = session.connection()
            started = time.perf_counter()
            for sql in baseline_sql:
                connection.execute(text(sql), {"id": profile_id, "org": org_id}).all()
            return (time.perf_counter() - started) * 1000

    for profile_id in chosen[:20]:  # warm the caches and the connection pool alike for both
        kehu_once(profile_id)
        baseline_once(profile_id)
    ours = [kehu_once(p) for p in chosen]
    theirs = [baseline_once(p) for p in chosen]
    mine, base = _percentiles(ours), _percentiles(theirs)
    database.dispose()
    return {
        "target": "customer 360 data",
        "data_size": {**data_size, "samples": SAMPLES},
        "kehu": mine,
        "baseline": {"hand_written_sql": base},
        "ratio": round(mine["p99_ms"] / base["p99_ms"], 2) if base["p99_ms"] else None,
        "pass": mine["p99_ms"] <= TARGET_P99_MS,
        "criteria": f"p99 <= {TARGET_P99_MS} ms (target size: 1,000,000 profiles, 20,000,000 events)",
        "machine": machine(url),
    }


if __name__ == "__main__":
    print(json.dumps(run(*(sys.argv[1:2] or [None])), ensure_ascii=False, indent=2))
