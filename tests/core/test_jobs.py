"""The job queue: runs, retries with backoff, survives a dead worker by resuming, never double-runs."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from sqlalchemy import select

from kehu.core import audit, jobs
from kehu.core.audit import AuditRecord
from kehu.core.jobs import Job, Worker, job_handler


class WorkerDied(BaseException):
    """Escapes the worker like a kill -9 would: no status update, the lease is left to run out."""


STEPS = 5
crash_after: dict[str, int | None] = {"step": None}


@job_handler("test.steps")
def _steps(ctx: jobs.JobContext) -> dict[str, int]:
    start = ctx.checkpoint.get("next", 0)
    for step in range(start, STEPS):
        audit.record(ctx.session, None, org_id=ctx.job.org_id, action="step", entity="test", entity_id=step)
        ctx.save(progress=100 * (step + 1) // STEPS, message=f"step {step}", checkpoint={"next": step + 1})
        if crash_after["step"] == step:
            crash_after["step"] = None
            raise WorkerDied
    return {"steps": STEPS}


@job_handler("test.flaky")
def _flaky(ctx: jobs.JobContext) -> None:
    raise RuntimeError("gateway timed out")


@job_handler("test.count")
def _count(ctx: jobs.JobContext) -> None:
    audit.record(ctx.session, None, org_id=ctx.job.org_id, action="ran", entity="test", entity_id=ctx.job.id)
    ctx.session.flush()
    time.sleep(0.01)


def worker(database, **kw) -> Worker:  # type: ignore[no-untyped-def]
    return Worker(database, lease_seconds=kw.pop("lease_seconds", 30), poll_seconds=0.05, backoff_base=0.0, **kw)


def steps_done(session) -> list[int]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return sorted(session.scalars(select(AuditRecord.entity_id).where(AuditRecord.action == "step")))


def test_a_job_runs_to_completion_with_progress_and_result(session, tree, clean_database):
    job = jobs.enqueue(session, kind="test.steps", org_id=tree.org.id)
    session.commit()
    assert worker(clean_database).run_once()
    session.refresh(job)
    assert (job.status, job.progress, job.result, job.attempts) == ("succeeded", 100, {"steps": STEPS}, 1)
    assert steps_done(session) == list(range(STEPS))


def test_a_failing_job_is_retried_then_marked_failed_with_its_error(session, tree, clean_database):
    job = jobs.enqueue(session, kind="test.flaky", org_id=tree.org.id, max_attempts=3)
    session.commit()
    w = worker(clean_database)
    for _ in range(3):
        assert w.run_once()
    assert not w.run_once()
    session.refresh(job)
    assert job.status == "failed" and job.attempts == 3
    assert "gateway timed out" in job.error


def test_backoff_delays_the_next_attempt(session, tree, clean_database):
    job = jobs.enqueue(session, kind="test.flaky", org_id=tree.org.id)
    session.commit()
    w = Worker(clean_database, backoff_base=60)
    assert w.run_once()
    session.refresh(job)
    assert job.status == "queued" and job.attempts == 1
    assert not w.run_once()  # not due for a minute
    assert jobs.backoff_seconds(60, 3) == 240


def test_a_job_whose_worker_died_resumes_from_its_checkpoint_and_repeats_nothing(session, tree, clean_database):
    job = jobs.enqueue(session, kind="test.steps", org_id=tree.org.id)
    session.commit()
    crash_after["step"] = 1
    dying = worker(clean_database, lease_seconds=1, name="dying")
    with pytest.raises(WorkerDied):
        dying.run_once()
    session.refresh(job)
    assert job.status == "running" and job.checkpoint == {"next": 2}
    assert not worker(clean_database, name="early").run_once()  # the lease still holds
    time.sleep(1.2)
    assert worker(clean_database, name="rescuer").run_once()
    session.refresh(job)
    assert job.status == "succeeded" and job.attempts == 2
    assert steps_done(session) == list(range(STEPS))  # each step exactly once


def test_many_workers_run_each_job_exactly_once(session, tree, clean_database):
    for _ in range(30):
        jobs.enqueue(session, kind="test.count", org_id=tree.org.id)
    session.commit()
    workers = [worker(clean_database, name=f"w{i}") for i in range(4)]

    def drain(w: Worker) -> None:
        while w.run_once():
            pass

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    session.expire_all()
    runs = Counter(session.scalars(select(AuditRecord.entity_id).where(AuditRecord.action == "ran")))
    assert len(runs) == 30 and set(runs.values()) == {1}
    assert set(session.scalars(select(Job.status))) == {"succeeded"}


def test_interrupted_job_goes_back_to_the_queue_without_losing_an_attempt(session, tree, clean_database):
    @job_handler("test.polite")
    def _polite(ctx: jobs.JobContext) -> None:
        ctx.save(checkpoint={"half": True})
        if ctx.should_stop():
            raise jobs.JobInterrupted

    job = jobs.enqueue(session, kind="test.polite", org_id=tree.org.id)
    session.commit()
    w = worker(clean_database)
    w.stopping.set()
    assert w.run_once()
    session.refresh(job)
    assert job.status == "queued" and job.attempts == 0 and job.checkpoint == {"half": True}


def test_unknown_job_kind_fails_clearly(session, tree, clean_database):
    job = jobs.enqueue(session, kind="nobody.handles.this", org_id=tree.org.id, max_attempts=1)
    session.commit()
    worker(clean_database).run_once()
    session.refresh(job)
    assert job.status == "failed" and "no handler registered" in job.error


def test_the_cycle_collector_pauses_for_bulk_work_and_comes_back_as_it_was() -> None:
    import gc

    from kehu.core.jobs import cyclic_collector_paused

    assert gc.isenabled()
    with cyclic_collector_paused():
        assert not gc.isenabled()
        with cyclic_collector_paused():  # nested (or another thread's part): still paused at the inner end
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), cyclic_collector_paused():
        raise RuntimeError("a part that fails")
    assert gc.isenabled()  # back on after a failure too
    gc.disable()  # someone who keeps it off on purpose: a pause leaves it off
    try:
        with cyclic_collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
