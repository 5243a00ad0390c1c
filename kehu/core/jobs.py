"""Background jobs: a table, a claim that never double-runs, retries with backoff, leases, resumable work.

A job is claimed by setting ``status='running'`` with a lease (``locked_until``) that a heartbeat extends.
A worker that dies stops extending it; once the lease runs out another worker claims the job again and
the handler resumes from the last ``checkpoint`` it committed together with its own work.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from prometheus_client import Counter
from sqlalchemy import ForeignKey, Index, Select, String, Text, func, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from kehu.core.db import Base, BigId, Database, IdMixin, JsonDoc, TimestampMixin, utcnow
from kehu.core.errors import Conflict

log = structlog.get_logger("kehu.jobs")

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)

JOBS_FINISHED = Counter("kehu_jobs_finished_total", "Jobs finished", ["kind", "status"])


class Job(IdMixin, TimestampMixin, Base):
    __tablename__ = "jobs"
    __entity__ = "jobs"
    __scope_unit__ = "unit_id"
    __scope_owner__ = "created_by_id"
    __table_args__ = (
        Index("ix_jobs_claim", "status", "run_at"),
        Index("ix_jobs_org_created", "org_id", "created_at"),
        Index("ix_jobs_parent", "parent_id", "status"),
    )

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    unit_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    # An API key that asked for the job: the job runs with the key's rights, never wider.
    created_by_api_key_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    kind: Mapped[str] = mapped_column(String(80))
    # A part of a bigger job (one chunk of an import): any worker may take it, the parent waits for all.
    parent_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=QUEUED)
    progress: Mapped[int] = mapped_column(default=0)
    message: Mapped[str] = mapped_column(String(500), default="")
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class JobInterrupted(Exception):
    """Raised by a handler that stopped at a checkpoint because the worker is shutting down."""


@dataclass
class JobContext:
    """What a handler gets: the job, a session for its work, and ways to report progress and resume."""

    job: Job
    session: Session
    worker: Worker
    checkpoint: dict[str, Any] = field(default_factory=dict)
    principal: Any = None  # who asked for the job, rebuilt by the worker so the same access rules apply

    def save(self, *, progress: int | None = None, message: str | None = None,
             checkpoint: dict[str, Any] | None = None) -> None:
        """Commit the handler's work so far together with where it got to (atomic: resume, not repeat)."""
        values: dict[str, Any] = {"locked_until": utcnow() + timedelta(seconds=self.worker.lease_seconds)}
        if progress is not None:
            values["progress"] = max(0, min(100, int(progress)))
        if message is not None:
            values["message"] = message[:500]
        if checkpoint is not None:
            self.checkpoint = checkpoint
            values["checkpoint"] = checkpoint
        result = self.session.execute(
            update(Job).where(Job.id == self.job.id, Job.locked_by == self.worker.name).values(**values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            self.session.rollback()
            raise LeaseLost(f"job {self.job.id} is no longer ours")
        self.session.commit()

    def should_stop(self) -> bool:
        return self.worker.stopping.is_set()

    def run_parts(self, *, between: Callable[[], None] | None = None, poll_seconds: float = 0.2) -> list[Job]:
        """Work through this job's parts (jobs enqueued with ``parent_id`` = this job, and committed): take
        them one after another while other workers take others, then wait for theirs to end. ``between``
        runs after each part and while waiting (to report progress). Parts that failed for good before this
        attempt get another round; returns those that failed in it."""
        worker = self.worker
        with worker.database.unit_of_work() as session:
            for earlier in session.scalars(select(Job).where(Job.parent_id == self.job.id, Job.status == FAILED)):
                retry(session, earlier)
        while True:
            if self.should_stop():
                raise JobInterrupted()
            part = worker.claim(parent_id=self.job.id)
            if part is not None:
                worker.run(part)
            else:
                with worker.database.sessionmaker() as session:
                    unfinished = session.scalar(select(func.count()).select_from(Job).where(
                        Job.parent_id == self.job.id, Job.status.in_((QUEUED, RUNNING))))
                if not unfinished:
                    break
                worker.stopping.wait(poll_seconds)
            if between is not None:
                between()
        with worker.database.sessionmaker() as session:
            failed = list(session.scalars(select(Job).where(Job.parent_id == self.job.id, Job.status == FAILED)
                                          .order_by(Job.id)))
            session.expunge_all()
        return failed


class LeaseLost(Exception):
    pass


_collector = {"pauses": 0, "was_enabled": True}
_collector_lock = threading.Lock()


@contextlib.contextmanager
def cyclic_collector_paused() -> Iterator[None]:
    """Bulk work that makes millions of small objects (a part of an import): Python's cycle collector would
    scan them again and again as they pile up (~10 % of the time); reference counting frees them anyway, and
    the few cycles wait for the collector until the last such block (of any thread) ends."""
    with _collector_lock:
        if _collector["pauses"] == 0:
            _collector["was_enabled"] = gc.isenabled()
        _collector["pauses"] += 1
        gc.disable()
    try:
        yield
    finally:
        with _collector_lock:
            _collector["pauses"] -= 1
            if _collector["pauses"] == 0 and _collector["was_enabled"]:
                gc.enable()


Handler = Callable[[JobContext], dict[str, Any] | None]
_HANDLERS: dict[str, Handler] = {}


def job_handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the handler of a job kind. Handlers must be idempotent and resumable via the checkpoint."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[kind] = fn
        return fn

    return register


def handler_for(kind: str) -> Handler | None:
    return _HANDLERS.get(kind)


Poller = Callable[[Database], bool]
_POLLERS: list[Poller] = []


def poller(fn: Poller) -> Poller:
    """Register continuous work the worker does when no job is due (e.g. draining the ingestion inbox).
    A poller does one bounded step in its own transaction and says whether it found anything to do."""
    if fn not in _POLLERS:
        _POLLERS.append(fn)
    return fn


def enqueue(
    session: Session,
    *,
    kind: str,
    org_id: int,
    payload: dict[str, Any] | None = None,
    unit_id: int | None = None,
    created_by_id: int | None = None,
    created_by_api_key_id: int | None = None,
    run_at: datetime | None = None,
    max_attempts: int = 5,
    parent_id: int | None = None,
) -> Job:
    """Add a job in the caller's transaction: it exists only if the change that asked for it commits."""
    job = Job(
        org_id=org_id, unit_id=unit_id, created_by_id=created_by_id, created_by_api_key_id=created_by_api_key_id,
        kind=kind, payload=payload or {}, parent_id=parent_id,
        status=QUEUED, run_at=run_at or utcnow(), max_attempts=max_attempts,
    )
    session.add(job)
    session.flush()
    return job


def retry(session: Session, job: Job) -> Job:
    if job.status not in (FAILED, CANCELLED):
        raise Conflict(f"Only failed or cancelled jobs can be retried; this one is {job.status}.")
    job.status, job.run_at, job.attempts, job.error = QUEUED, utcnow(), 0, None
    job.finished_at = None
    session.flush()
    return job


def cancel(session: Session, job: Job) -> Job:
    if job.status != QUEUED:
        raise Conflict(f"Only queued jobs can be cancelled; this one is {job.status}.")
    job.status, job.finished_at = CANCELLED, utcnow()
    session.flush()
    return job


# -- what every queue of kehu shares (jobs, the ingestion inbox) ------------------------------------------------
MAX_ATTEMPTS = 5  # tries before a job, or an inbox batch, is set aside as failed for a person to look at


def unclaimed(stmt: Select[Any], session: Session) -> Select[Any]:
    """The rows of a queue that no other worker holds right now: on PostgreSQL, rows locked by another worker's
    claim are skipped (that worker's row lock is its claim until its transaction ends: a worker that dies lets
    go of it); SQLite has one writer, so nobody else holds any."""
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=True)
    return stmt


def gives_up(attempts: int, max_attempts: int = MAX_ATTEMPTS, *, retryable: bool = True) -> bool:
    """Whether a queue stops retrying an item after ``attempts`` tries (at once for a fault retrying cannot fix)."""
    return not retryable or attempts >= max_attempts


def backoff_seconds(base: float, attempts: int) -> float:
    return min(base * (2.0 ** max(attempts - 1, 0)), 3600.0)


class Worker:
    """Claims and runs jobs. Any number may run against PostgreSQL; SQLite gets one in the server process."""

    def __init__(self, database: Database, *, name: str | None = None, lease_seconds: int = 60,
                 poll_seconds: float = 1.0, backoff_base: float = 5.0,
                 principal_loader: Callable[[Session, Job], Any] | None = None) -> None:
        self.database = database
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.backoff_base = backoff_base
        self.stopping = threading.Event()
        self.principal_loader = principal_loader

    # -- claiming -------------------------------------------------------------------------------
    def claim(self, *, parent_id: int | None = None) -> Job | None:
        """The next due job (of ``parent_id``'s parts only, if given), now ours."""
        now = utcnow()
        claimable = or_(
            (Job.status == QUEUED) & (Job.run_at <= now),
            (Job.status == RUNNING) & (Job.locked_until < now),  # its worker died: resume it
        )
        if parent_id is not None:
            claimable = claimable & (Job.parent_id == parent_id)
        with self.database.unit_of_work() as session:
            job = session.scalar(unclaimed(select(Job).where(claimable).order_by(Job.run_at, Job.id).limit(1), session))
            if job is None:
                return None
            if job.status == RUNNING and gives_up(job.attempts, job.max_attempts):
                job.status, job.finished_at, job.locked_by = FAILED, now, None
                job.error = (job.error or "") + "\nThe worker running this job stopped and no attempts are left."
                JOBS_FINISHED.labels(job.kind, FAILED).inc()
                return None
            # The WHERE repeats the claim condition, so on SQLite (no row locks) a lost race changes nothing.
            result = session.execute(
                update(Job)
                .where(Job.id == job.id, claimable)
                .values(status=RUNNING, locked_by=self.name, attempts=Job.attempts + 1,
                        locked_until=now + timedelta(seconds=self.lease_seconds),
                        started_at=job.started_at or now, error=job.error)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            session.expunge(job)
        return self._reload(job.id)

    def _reload(self, job_id: int) -> Job:
        with self.database.sessionmaker() as session:
            job = session.get(Job, job_id)
            assert job is not None
            session.expunge(job)
            return job

    # -- running ----------------------------------------------------------------------------------
    def run_once(self) -> bool:
        job = self.claim()
        if job is not None:
            self.run(job)
            return True
        return self.poll()

    def poll(self) -> bool:
        busy = False
        for fn in list(_POLLERS):
            try:
                busy = fn(self.database) or busy
            except Exception:
                log.exception("poller failed", poller=getattr(fn, "__name__", str(fn)))
        return busy

    def run(self, job: Job) -> None:
        handler = handler_for(job.kind)
        heartbeat_stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job.id, heartbeat_stop), daemon=True)
        beat.start()
        session = self.database.sessionmaker()
        try:
            if handler is None:
                raise LookupError(f"no handler registered for job kind {job.kind!r}")
            principal = self.principal_loader(session, job) if self.principal_loader else None
            ctx = JobContext(job=job, session=session, worker=self, checkpoint=dict(job.checkpoint or {}),
                             principal=principal)
            result = handler(ctx)
            self._finish(session, job, result)
        except JobInterrupted:
            session.rollback()
            self._release(job)
        except LeaseLost:
            session.rollback()
            log.warning("job lease lost", job_id=job.id)
        except Exception as exc:
            session.rollback()
            self._fail(job, exc)
        finally:
            heartbeat_stop.set()
            beat.join(timeout=5)
            session.close()

    def _finish(self, session: Session, job: Job, result: dict[str, Any] | None) -> None:
        done = session.execute(
            update(Job).where(Job.id == job.id, Job.locked_by == self.name).values(
                status=SUCCEEDED, progress=100, result=result or {}, finished_at=utcnow(),
                locked_by=None, locked_until=None, error=None,
            )
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            log.warning("job finished after its lease was lost; work rolled back", job_id=job.id)
            return
        session.commit()
        JOBS_FINISHED.labels(job.kind, SUCCEEDED).inc()
        log.info("job succeeded", job_id=job.id, kind=job.kind)

    def _fail(self, job: Job, exc: Exception) -> None:
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        with self.database.unit_of_work() as session:
            row = session.get(Job, job.id)
            if row is None or row.locked_by != self.name:
                return
            row.error = error[:4000]
            row.locked_by, row.locked_until = None, None
            if row.attempts >= row.max_attempts:
                row.status, row.finished_at = FAILED, utcnow()
                JOBS_FINISHED.labels(job.kind, FAILED).inc()
            else:
                row.status = QUEUED
                row.run_at = utcnow() + timedelta(seconds=backoff_seconds(self.backoff_base, row.attempts))
        log.warning("job failed", job_id=job.id, kind=job.kind, error=error, attempts=job.attempts)

    def _release(self, job: Job) -> None:
        """Hand an interrupted job back to the queue without charging it an attempt."""
        with self.database.unit_of_work() as session:
            session.execute(
                update(Job).where(Job.id == job.id, Job.locked_by == self.name).values(
                    status=QUEUED, locked_by=None, locked_until=None, attempts=Job.attempts - 1, run_at=utcnow(),
                )
            )

    def _heartbeat(self, job_id: int, stop: threading.Event) -> None:
        interval = max(self.lease_seconds / 3, 0.5)
        while not stop.wait(interval):
            try:
                with self.database.unit_of_work() as session:
                    session.execute(
                        update(Job).where(Job.id == job_id, Job.locked_by == self.name)
                        .values(locked_until=utcnow() + timedelta(seconds=self.lease_seconds))
                    )
            except Exception:
                log.warning("job heartbeat failed", job_id=job_id)

    # -- the loop ---------------------------------------------------------------------------------
    def run_forever(self) -> None:
        log.info("worker started", worker=self.name)
        while not self.stopping.is_set():
            try:
                did_work = self.run_once()
            except Exception:
                log.exception("worker loop error")
                did_work = False
            if not did_work:
                self.stopping.wait(self.poll_seconds)
        log.info("worker stopped", worker=self.name)

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: finish (or checkpoint) the current job, then exit."""

        def stop(signum: int, _frame: Any) -> None:
            log.info("worker stopping", signal=signum)
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
