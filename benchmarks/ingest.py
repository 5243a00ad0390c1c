"""Event ingestion via /v1/batch (DESIGN.md §6): ≥ 20,000 events/s on PostgreSQL, none lost, measured
against a raw multi-row INSERT of the same rows in the same run (ratio ≥ 0.5). Also reports the
end-to-end rate (accepted → resolved onto profiles by `kehu worker` processes), the lag from accepted to
resolved while calls keep arriving at 80 % of that rate, and checks every event arrived exactly once."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import default_size, free_port, fresh_database, is_sqlite, kehu_process, machine

TARGET_EVENTS_PER_S = 20_000
TARGET_RATIO = 0.5
EVENT_NAMES = ["page_view", "model_viewed", "configurator_step", "test_drive_booked", "brochure_downloaded"]


LIVE_SHARE, LIVE_PACE = 0.2, 0.8  # the live phase: a fifth more events, offered at 80 % of the drain rate


def make_batches(total: int, batch_size: int, people: int, prefix: str = "bench") -> list[list[dict[str, Any]]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    calls = []
    for n in range(total):
        person = n % people
        calls.append({
            "type": "track", "messageId": f"{prefix}-{n}", "userId": f"user-{person}",
            "anonymousId": f"anon-{person}", "event": EVENT_NAMES[n % len(EVENT_NAMES)],
            "timestamp": (start + timedelta(seconds=n)).isoformat(),
            "properties": {"model": ["ID.4", "ID.6", "Tiguan L"][n % 3], "page": f"/models/{n % 50}",
                           "value": n % 1000},
            "context": {"ip": "10.0.0.1", "library": {"name": "analytics-python", "version": "2.3.0"}},
        })
    return [calls[i:i + batch_size] for i in range(0, total, batch_size)]


async def send_all(base: str, write_key: str, batches: list[list[dict[str, Any]]], concurrency: int,
                   events_per_s: float | None = None) -> int:
    """Post every batch over ``concurrency`` connections: as fast as they go, or batch i due at
    i × batch size / ``events_per_s`` seconds after the start (a steady offered load)."""
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    bodies = [json.dumps({"batch": b}).encode() for b in batches]
    interval = len(batches[0]) / events_per_s if events_per_s else 0.0
    accepted = 0
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for numbered in enumerate(bodies):
        queue.put_nowait(numbered)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    loop = asyncio.get_running_loop()
    started = loop.time()

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        async def worker() -> None:
            nonlocal accepted
            while not queue.empty():
                number, body = queue.get_nowait()
                if interval:
                    await asyncio.sleep(started + number * interval - loop.time())  # negative: at once
                response = await client.post("/v1/batch", content=body, headers={
                    "Authorization": auth, "Content-Type": "application/json"})
                response.raise_for_status()
                accepted += response.json()["accepted"]

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return accepted


def wait_until_drained(database: Any, deadline_seconds: float = 3600) -> None:
    from kehu.cdp.models import IngestBatch

    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        with database.sessionmaker() as session:
            if not session.scalar(select(func.count()).select_from(IngestBatch).where(
                    IngestBatch.status == "pending")):
                return
        time.sleep(0.2)


def lag_seconds(database: Any, after_batch_id: int) -> dict[str, float]:
    """Accepted → resolved onto profiles (an inbox row's processed_at − received_at) for the batches after
    ``after_batch_id``: p50, p95, p99 and the worst, in seconds."""
    from kehu.cdp.models import IngestBatch

    with database.sessionmaker() as session:
        lags = sorted((processed - received).total_seconds() for received, processed in session.execute(
            select(IngestBatch.received_at, IngestBatch.processed_at).where(
                IngestBatch.id > after_batch_id, IngestBatch.processed_at.is_not(None))))
    if not lags:
        return {}

    def at(share: float) -> float:
        return lags[min(len(lags) - 1, int(share * len(lags)))]

    return {"p50": round(at(0.5), 2), "p95": round(at(0.95), 2), "p99": round(at(0.99), 2),
            "max": round(lags[-1], 2), "batches": len(lags)}


def raw_insert_rate(url: str, batches: list[list[dict[str, Any]]]) -> float:
    """The baseline: the same rows written as multi-row INSERTs straight into an events-shaped table."""
    engine = create_engine(url)
    json_type = "JSONB" if engine.dialect.name == "postgresql" else "JSON"
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS bench_raw_events"))
        connection.execute(text(
            f"CREATE TABLE bench_raw_events (id BIGSERIAL PRIMARY KEY, source_id BIGINT, message_id TEXT, "
            f"event TEXT, user_id TEXT, ts TIMESTAMPTZ, properties {json_type}, context {json_type}, "
            "UNIQUE (source_id, message_id))" if engine.dialect.name == "postgresql" else
            "CREATE TABLE bench_raw_events (id INTEGER PRIMARY KEY, source_id INTEGER, message_id TEXT, "
            "event TEXT, user_id TEXT, ts TEXT, properties JSON, context JSON, UNIQUE (source_id, message_id))"))
    started = time.perf_counter()
    with engine.begin() as connection:
        for batch in batches:
            values = ", ".join(f"(1, :m{i}, :e{i}, :u{i}, :t{i}, :p{i}, :c{i})" for i in range(len(batch)))
            params: dict[str, Any] = {}
            for i, call in enumerate(batch):
                params.update({f"m{i}": call["messageId"], f"e{i}": call["event"], f"u{i}": call["userId"],
                               f"t{i}": call["timestamp"], f"p{i}": json.dumps(call["properties"]),
                               f"c{i}": json.dumps(call["context"])})
            connection.execute(text("INSERT INTO bench_raw_events (source_id, message_id, event, user_id, ts, "
                                    f"properties, context) VALUES {values}"), params)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return sum(len(b) for b in batches) / elapsed


def run(database_url: str | None = None, size: int | None = None, batch_size: int = 250, concurrency: int = 8,
        server_processes: int = 2, worker_processes: int = 2) -> dict[str, Any]:
    import kehu.models  # noqa: F401
    from kehu.cdp import schemas, service
    from kehu.cdp.models import Event, IngestBatch
    from kehu.core.db import Database, migrate
    from kehu.tenancy import service as tenancy_service

    url = fresh_database(database_url, scratch="ingest")
    size = size or default_size(url, postgres=200_000, sqlite=20_000)
    if is_sqlite(url):  # one writer: one server process and one worker
        server_processes = worker_processes = 1
    database = Database(url)
    migrate(database)
    with database.unit_of_work() as session:
        org = tenancy_service.create_organization(session, name="Bench", slug="bench")
        system = tenancy_service.system_principal(session, org.id)
        _source, write_key = service.create_source(session, system, data=schemas.SourceCreate(name="bench"))
    people = max(size // 20, 1)
    batches = make_batches(size, batch_size, people=people)
    workdir = Path(tempfile.mkdtemp(prefix="kehu-bench-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with kehu_process(url, "serve", "--port", str(port), "--skip-migrate", "--workers", str(server_processes),
                      workdir=workdir, env={"KEHU_EMBEDDED_WORKER": "false"}, wait_for=f"{base}/healthz"):
        asyncio.run(send_all(base, write_key, batches[:4], concurrency))  # warm up connections and caches
        warm = sum(len(b) for b in batches[:4])
        started = time.perf_counter()
        accepted = asyncio.run(send_all(base, write_key, batches[4:], concurrency)) + warm
        api_seconds = time.perf_counter() - started
        api_rate = (size - warm) / api_seconds
        raw_rate = raw_insert_rate(url, batches)

        workers = [kehu_process(url, "worker", workdir=workdir, env={"KEHU_JOB_POLL_SECONDS": "0.05"})
                   for _ in range(worker_processes)]
        started = time.perf_counter()
        for w in workers:
            w.__enter__()
        try:
            wait_until_drained(database)  # the backlog of everything accepted above
            e2e_seconds = time.perf_counter() - started
            e2e_rate = size / e2e_seconds
            # live: calls keep arriving, below what the workers can resolve, as on a normal day
            live_batches = make_batches(max(int(size * LIVE_SHARE), batch_size), batch_size, people=people,
                                        prefix="live")
            live_size = sum(len(b) for b in live_batches)
            with database.sessionmaker() as session:
                before = session.scalar(select(func.max(IngestBatch.id))) or 0
            accepted += asyncio.run(send_all(base, write_key, live_batches, concurrency,
                                             events_per_s=LIVE_PACE * e2e_rate))
            wait_until_drained(database)
            lag = lag_seconds(database, before)
        finally:
            for w in workers:
                w.__exit__(None, None, None)
    with database.sessionmaker() as session:
        stored = session.scalar(select(func.count()).select_from(Event))
        failed = session.scalar(select(func.count()).select_from(IngestBatch).where(IngestBatch.status == "failed"))
        retried = session.scalar(select(func.count()).select_from(IngestBatch).where(IngestBatch.attempts > 0))
    database.dispose()
    ratio = api_rate / raw_rate
    return {
        "target": "event ingestion via /v1/batch",
        "data_size": {"events": size, "batch_size": batch_size, "people": people,
                      "client_concurrency": concurrency, "server_processes": server_processes,
                      "worker_processes": worker_processes},
        "kehu": {"accepted_events_per_s": round(api_rate), "accepted": accepted,
                 "end_to_end_events_per_s": round(e2e_rate), "drain_seconds": round(e2e_seconds, 1),
                 "live": {"events": live_size, "offered_events_per_s": round(LIVE_PACE * e2e_rate),
                          "lag_seconds": lag},
                 "events_stored": stored, "failed_batches": failed, "batches_retried": retried},
        "baseline": {"raw_multirow_insert_events_per_s": round(raw_rate)},
        "ratio": round(ratio, 3),
        "pass": bool(api_rate >= TARGET_EVENTS_PER_S and ratio >= TARGET_RATIO
                     and stored == size + live_size == accepted),
        "criteria": f">= {TARGET_EVENTS_PER_S} events/s, ratio >= {TARGET_RATIO}, every event stored once",
        "machine": machine(url),
    }


if __name__ == "__main__":
    print(json.dumps(run(*(sys.argv[1:2] or [None])), ensure_ascii=False, indent=2))
