"""A journey's event trigger under load (issue 23): events arrive through /v1/batch at 5,000 a second for a while;
a live journey enrols whoever does ``test_drive_booked``. Measured for each customer enrolled: from the moment
their first such event was accepted (its batch's ``received_at``) to their enrolment (``entered_at``) — target
p99 ≤ 5 s — and that nobody is enrolled twice or left out (each customer with the event is enrolled once).

The baseline, in the same run: what the pipeline costs before any journey hears of it — accepted → resolved onto
profiles, for the same batches (the ingestion's own lag). One ``kehu serve`` process (it accepts 20,000 events a
second and more; 5,000 leave it idle most of the time) and two ``kehu worker``
processes (resolving, the consumers, the engine) share the machine with the client; its load is reported."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import free_port, fresh_database, is_sqlite, kehu_process, machine, percentiles
from ingest import lag_seconds, make_batches, send_all, wait_until_drained

TARGET_P99_S = 5.0
RATE = 5_000  # events offered per second
RETURNING = 50_000
TRIGGER = "test_drive_booked"  # one event in five of the generated calls: one of each person's five


def _wait_for_enrolments(database: Any, journey_id: int, quiet_seconds: float = 5.0,
                         deadline_seconds: float = 600) -> None:
    """Until the count of enrolments has not moved for ``quiet_seconds`` (the consumers caught up)."""
    from kehu.journeys.models import Enrolment

    last, still_since = -1, time.monotonic()
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        with database.sessionmaker() as session:
            count = session.scalar(select(func.count()).select_from(Enrolment)
                                   .where(Enrolment.journey_id == journey_id))
        if count != last:
            last, still_since = count, time.monotonic()
        elif time.monotonic() - still_since >= quiet_seconds:
            return
        time.sleep(0.5)


def _arrivals(size: int, batch_size: int, events_per_person: int) -> list[list[dict[str, Any]]]:
    """The generated calls, each person's ``events_per_person`` in a row (one of them the trigger): new people keep
    arriving through the whole run, so a late enrolment is measured as an early one is."""
    if events_per_person <= 0:  # returning visitors instead: 50,000 people, each event a known one's in turn
        return make_batches(size, batch_size, people=RETURNING, prefix="trigger")
    batches = make_batches(size, batch_size, people=max(size // events_per_person, 1), prefix="trigger")
    n = 0
    for batch in batches:
        for call in batch:
            person = n // events_per_person
            call["userId"], call["anonymousId"] = f"user-{person}", f"anon-{person}"
            n += 1
    return batches


def run(database_url: str | None = None, size: int | None = None, rate: int = RATE, batch_size: int = 100,
        concurrency: int = 8, events_per_person: int = 5, server_processes: int = 1,
        worker_processes: int = 2, journey_live: int = 1) -> dict[str, Any]:
    import kehu.models  # noqa: F401
    from kehu.cdp import schemas as cdp_schemas
    from kehu.cdp import service as cdp_service
    from kehu.cdp.models import Event, IngestBatch
    from kehu.core.db import Database, migrate
    from kehu.journeys import schemas, service
    from kehu.journeys.models import Enrolment
    from kehu.tenancy import service as tenancy_service

    url = fresh_database(database_url, scratch="journey_triggers")
    if is_sqlite(url):  # one writer: one server process and one worker
        server_processes = worker_processes = 1
    size = size or rate * 60  # a minute of events at the offered rate
    database = Database(url)
    migrate(database)
    with database.unit_of_work() as session:
        org = tenancy_service.create_organization(session, name="Bench", slug="bench")
        system = tenancy_service.system_principal(session, org.id)
        _source, write_key = cdp_service.create_source(session, system, data=cdp_schemas.SourceCreate(name="bench"))
        journey = service.create_journey(session, system, schemas.JourneyCreate(
            name="试驾后关怀", definition=schemas.Definition.model_validate({
                "trigger": {"type": "event", "event": TRIGGER},
                "nodes": [{"id": "entry", "type": "entry"}, {"id": "wait", "type": "wait", "days": 30},
                          {"id": "done", "type": "exit"}],
                "edges": [{"from": "entry", "to": "wait"}, {"from": "wait", "to": "done"}]})))
        if journey_live:  # without: the pipeline as it is with no journey listening (to see what one adds)
            service.publish_version(session, system, journey.id, schemas.Publish())
        journey_id = journey.id
    batches = _arrivals(size, batch_size, events_per_person)
    workdir = Path(tempfile.mkdtemp(prefix="kehu-bench-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    load_before = os.getloadavg()
    with kehu_process(url, "serve", "--port", str(port), "--skip-migrate", "--workers", str(server_processes),
                      workdir=workdir, env={"KEHU_EMBEDDED_WORKER": "false"}, wait_for=f"{base}/healthz"):
        workers = [kehu_process(url, "worker", workdir=workdir, env={"KEHU_JOB_POLL_SECONDS": "0.05"})
                   for _ in range(worker_processes)]
        for w in workers:
            w.__enter__()
        try:
            time.sleep(2)  # the workers up and polling
            started = time.perf_counter()
            accepted = asyncio.run(send_all(base, write_key, batches, concurrency, events_per_s=rate))
            offered_seconds = time.perf_counter() - started
            load_during = os.getloadavg()
            wait_until_drained(database)
            _wait_for_enrolments(database, journey_id)
            resolved = lag_seconds(database, 0)
        finally:
            for w in workers:
                w.__exit__(None, None, None)
    with database.sessionmaker() as session:
        first = (select(Event.profile_id, func.min(Event.received_at).label("accepted"))
                 .where(Event.event == TRIGGER).group_by(Event.profile_id).subquery())
        latencies = [(entered - accepted_at).total_seconds() for entered, accepted_at in session.execute(
            select(Enrolment.entered_at, first.c.accepted).join(first, first.c.profile_id == Enrolment.profile_id)
            .where(Enrolment.journey_id == journey_id))]
        enrolments = session.scalar(select(func.count()).select_from(Enrolment)
                                    .where(Enrolment.journey_id == journey_id))
        with_event = session.scalar(select(func.count(func.distinct(Event.profile_id))).where(Event.event == TRIGGER))
        stored = session.scalar(select(func.count()).select_from(Event))
        failed = session.scalar(select(func.count()).select_from(IngestBatch).where(IngestBatch.status == "failed"))
    database.dispose()
    enrolled = percentiles(latencies, "customers")
    ratio = enrolled["p99"] / resolved["p99"] if enrolled and resolved.get("p99") else None
    return {
        "target": "journey event trigger: accepted → enrolled",
        "data_size": {"events": size, "offered_events_per_s": rate, "batch_size": batch_size,
                      "people": -(-size // events_per_person) if events_per_person > 0 else RETURNING,
                      "client_concurrency": concurrency, "server_processes": server_processes,
                      "worker_processes": worker_processes},
        "kehu": {"enrolled_latency_seconds": enrolled, "enrolments": enrolments,
                 "customers_with_the_event": with_event, "accepted": accepted, "events_stored": stored,
                 "failed_batches": failed, "achieved_events_per_s": round(accepted / offered_seconds)},
        "baseline": {"accepted_to_resolved_seconds": resolved},
        "ratio": round(ratio, 2) if ratio else None,
        "pass": bool(journey_live and enrolled and enrolled["p99"] <= TARGET_P99_S and enrolments == with_event
                     and stored == accepted == size and not failed),
        "criteria": f"p99 accepted → enrolled <= {TARGET_P99_S} s at {rate} events/s offered; each customer with "
                    "the event enrolled once; every event stored",
        "machine": {**machine(url), "load_before": [round(x, 2) for x in load_before],
                    "load_during": [round(x, 2) for x in load_during]},
    }


if __name__ == "__main__":
    print(json.dumps(run(*(sys.argv[1:2] or [None])), ensure_ascii=False, indent=2))
