"""A journey step for a million customers (issue 23): every enrolled customer's wait has ended, and the engine moves
them all on — wait → an SMS with communication control (consent, suppressions, caps, one per address) → exit — in
≤ 60 s on these two cores, with ``workers`` processes running the engine side by side (SKIP LOCKED shares the
work). The baseline, in the same run: one set-based UPDATE of the same enrolments (what moving them costs with no
node applied and no step recorded).

Also reported, not targeted: enrolling everyone (one INSERT … SELECT) and their first step (entry → wait).
``reuse=True`` measures on the customers an earlier run generated."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_seconds, demo_data, machine
from messages import _setup

TARGET_S = 60.0  # one step for a million customers
ENGINE = textwrap.dedent("""
    import sys
    import kehu.models
    from kehu.app import load_services
    from kehu.core.db import Database
    from kehu.journeys import engine
    load_services()
    engine.STEP_BATCH = int(sys.argv[2])
    database = Database(sys.argv[1])
    idle = 0
    while idle < 3:  # a round that moved nobody, three times: the others have the rest in hand or it is done
        idle = 0 if engine.advance_journeys(database) else idle + 1
""")


def _engine(url: str, workers: int, batch: int) -> tuple[float, float]:
    """Run ``workers`` engine processes until nobody is due; (wall seconds, their CPU seconds)."""
    started = time.perf_counter()
    processes = [subprocess.Popen([sys.executable, "-c", ENGINE, url, str(batch)], env=os.environ.copy())
                 for _ in range(workers)]
    cpu = 0.0
    for process in processes:
        pid = process.pid
        used = 0.0
        while process.poll() is None:
            used = cpu_seconds([pid]) or used
            time.sleep(0.2)
        cpu += used
        if process.returncode:
            raise RuntimeError(f"an engine process failed ({process.returncode})")
    return time.perf_counter() - started, cpu


def run(database_url: str | None = None, size: int | None = None, reuse: bool = False, workers: int = 2,
        batch: int = 5_000) -> dict[str, Any]:
    """``workers``: engine processes; ``batch``: customers one step moves at a node (engine.STEP_BATCH)."""
    import kehu.models  # noqa: F401 - every table registered
    from kehu.app import load_services
    from kehu.channels.models import Message
    from kehu.core.db import Database, utcnow
    from kehu.journeys import schemas, service
    from kehu.journeys.models import Enrolment
    from kehu.segments.models import SegmentMember

    load_services()
    url, org_id, data_size = demo_data(database_url, size, reuse=reuse, postgres=1_000_000, sqlite=20_000, seed=17)
    database = Database(url)
    load = os.getloadavg()
    with database.sessionmaker() as session:
        setup = _setup(session, org_id)
        journey = service.create_journey(session, setup["system"], schemas.JourneyCreate(
            name=f"bench-journey-{time.time_ns()}", definition=schemas.Definition.model_validate({
                "nodes": [{"id": "entry", "type": "entry"}, {"id": "wait", "type": "wait", "days": 1},
                          {"id": "sms", "type": "send", "template_id": setup["sms"]}, {"id": "done", "type": "exit"}],
                "edges": [{"from": "entry", "to": "wait"}, {"from": "wait", "to": "sms"},
                          {"from": "sms", "to": "done"}]})))
        service.publish_version(session, setup["system"], journey.id, schemas.Publish())
        session.commit()
        journey_id = journey.id
    with database.unit_of_work() as session:
        began = time.perf_counter()
        enrolled = service.enrol(session, session.get(type(journey), journey_id), select(SegmentMember.profile_id)
                                 .where(SegmentMember.segment_id == setup["segment"]))
    enrol_s = time.perf_counter() - began
    entry_s, entry_cpu = _engine(url, workers, batch)  # entry → wait, everyone
    with database.unit_of_work() as session:  # the wait ends for everyone at once
        session.execute(update(Enrolment).where(Enrolment.journey_id == journey_id, Enrolment.node == "wait")
                        .values(due_at=utcnow()).execution_options(synchronize_session=False))
    step_s, step_cpu = _engine(url, workers, batch)  # wait → SMS → exit → completed
    with database.unit_of_work() as session:
        states = dict(session.execute(select(Enrolment.state, func.count()).where(Enrolment.journey_id == journey_id)
                                      .group_by(Enrolment.state)).all())
        messages = dict(session.execute(select(func.coalesce(Message.skip_reason, "to_send"), func.count())
                                        .where(Message.journey_id == journey_id)
                                        .group_by(Message.skip_reason)).all())
    with database.unit_of_work() as session:  # the baseline: the same rows moved by one statement
        began = time.perf_counter()
        session.execute(update(Enrolment).where(Enrolment.journey_id == journey_id)
                        .values(node="sms", due_at=utcnow()).execution_options(synchronize_session=False))
        baseline_s = time.perf_counter() - began
    database.dispose()
    return {"benchmark": "journeys", "machine": {**machine(url), "load_before": [round(x, 2) for x in load],
                                                 "load_after": [round(x, 2) for x in os.getloadavg()]},
            "data": {**data_size, "enrolled": enrolled},
            "enrol_s": round(enrol_s, 2),
            "entry_step": {"seconds": round(entry_s, 2), "engine_cpu_s": round(entry_cpu, 1)},
            "step": {"seconds": round(step_s, 2), "engine_cpu_s": round(step_cpu, 1),
                     "target_s": TARGET_S, "workers": workers,
                     "batch": batch, "states": states, "messages": messages},
            "baseline_update_s": round(baseline_s, 2), "ratio": round(step_s / baseline_s, 2) if baseline_s else None,
            "pass": step_s <= TARGET_S and states.get("completed", 0) == enrolled}

