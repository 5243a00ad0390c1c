"""Domain events: what happened in one domain that others may react to, written in the transaction that made it
happen (an outbox), and read by consumers that each keep their own cursor.

A domain declares its kinds of event once (``declare``), publishes them with the change that caused them
(``publish``: rolled back with it, never seen without it), and another domain subscribes (``subscribe``) with a
handler that runs in the consumer's transaction. ``consume`` moves a consumer's cursor and runs its handler in one
transaction, so a crash between reading and committing repeats nothing and loses nothing: what the handler wrote
and the cursor's move commit together or not at all. Two workers never hand the same event to one consumer: the
cursor's row is locked while a step runs.

A reaction that is part of the change itself (two open leads of one person become one when their records merge)
subscribes ``within``: its handler runs in the publishing transaction, as the event is published, so the change and
the reaction commit together and a reader never sees one without the other. Other domains read the same event
later through a cursor; the publisher does not know who reacts, either way.

Reading "what is new" by id alone skips a transaction that took its id first and committed last: a reader that
saw id 11 moves past it, and id 10 appears afterwards. Events are therefore read in the order of their
transactions' ids (PostgreSQL's ``pg_current_xact_id()``, stored with each event), and only those of
transactions older than every transaction of this database still running (``_horizon``): no transaction that can
still commit can put an event behind the cursor. A long writing transaction holds the consumers back until it
ends (correct, and the price of never skipping). No settle delay is needed. SQLite has one writer at a time, so its ids
are handed out in commit order already and the transaction id is 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    FetchedValue,
    Index,
    String,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from kehu.core.db import Base, BigId, Database, JsonDoc, UTCDateTime, utcnow
from kehu.core.jobs import poller


@dataclass(frozen=True)
class EventKind:
    """A kind of domain event: ``<domain>.<what happened>`` (``sales.lead_status_changed``), and what it means.
    ``customer_event``: the name under which it also joins the customer's own events (what segments ask about,
    ``lead_status_changed``), for a happening the customer took part in; None for one that is the system's."""

    name: str
    description: str
    customer_event: str | None = None


_KINDS: dict[str, EventKind] = {}


def declare(name: str, description: str, *, customer_event: str | None = None) -> EventKind:
    """Declare a kind of event (once, where its domain declares the rest of what it is). Publishing or subscribing
    to a kind nobody declared is refused: a typo must not become a silent second stream."""
    domain, _, what = name.partition(".")
    if not domain or not what:
        raise ValueError(f"an event kind is <domain>.<what happened>, not {name!r}")
    kind = EventKind(name, description, customer_event)
    known = _KINDS.get(name)
    if known is not None and known != kind:
        raise ValueError(f"event kind {name!r} is declared twice, differently")
    _KINDS[name] = kind
    return kind


def declared() -> dict[str, EventKind]:
    return dict(_KINDS)


def customer_events() -> set[str]:
    """The names under which declared kinds join the customer's own events (``customer_event``)."""
    return {kind.customer_event for kind in _KINDS.values() if kind.customer_event}


class DomainEvent(Base):
    """One thing that happened, as its domain published it."""

    __tablename__ = "domain_events"
    __table_args__ = (Index("ix_domain_events_txid_id", "txid", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # the publishing transaction's id: filled by the database (the migration's column default), never by us
    txid: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())
    org_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(80))
    entity: Mapped[str | None] = mapped_column(String(40), nullable=True)
    entity_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    profile_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EventCursor(Base):
    """How far one consumer has read: the (transaction id, event id) of the last event it was handed."""

    __tablename__ = "event_cursors"

    consumer: Mapped[str] = mapped_column(String(80), primary_key=True)
    txid: Mapped[int] = mapped_column(BigInteger, default=0)
    event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


def publish(session: Session, kind: EventKind | str, *, org_id: int, entity: str | None = None,
            entity_id: int | None = None, profile_id: int | None = None, **payload: Any) -> None:
    """Record that ``kind`` happened, in the caller's transaction: consumers see it once that commits (and those
    subscribed ``within`` it react now)."""
    kind = kind.name if isinstance(kind, EventKind) else kind
    if kind not in _KINDS:
        raise LookupError(f"event kind {kind!r} is not declared (events.declare)")
    event = DomainEvent(org_id=org_id, kind=kind, entity=entity, entity_id=entity_id, profile_id=profile_id,
                        payload=payload)
    session.add(event)
    reactions = _WITHIN.get(kind, ())
    if reactions:
        session.flush()  # the reactions see the event with its id
    for subscription in reactions:
        subscription.handler(session, [event])


def publish_many(session: Session, kind: EventKind | str, happened: list[dict[str, Any]]) -> None:
    """Record many events of one kind in one statement (a dispatcher's batch of messages sent): each item has
    ``org_id`` and may have ``entity``, ``entity_id``, ``profile_id``, ``at`` and ``payload``. Kinds with
    reactions ``within`` the transaction are published one by one (their reactions need the rows)."""
    kind = kind.name if isinstance(kind, EventKind) else kind
    if kind not in _KINDS:
        raise LookupError(f"event kind {kind!r} is not declared (events.declare)")
    if not happened:
        return
    if _WITHIN.get(kind):
        for item in happened:
            publish(session, kind, org_id=item["org_id"], entity=item.get("entity"), entity_id=item.get("entity_id"),
                    profile_id=item.get("profile_id"), **(item.get("payload") or {}))
        return
    now = utcnow()
    session.execute(insert(DomainEvent), [
        {"org_id": item["org_id"], "kind": kind, "entity": item.get("entity"), "entity_id": item.get("entity_id"),
         "profile_id": item.get("profile_id"), "payload": item.get("payload") or {}, "at": item.get("at") or now}
        for item in happened])


Handler = Callable[[Session, list[Any]], None]
# What a consumer of another stream wants of it (SQL conditions on its rows), read at each step; None: nothing
# now (its cursor then jumps to the end without reading a row).
Wanted = Callable[[Session], list[Any] | None]


@dataclass(frozen=True)
class Subscription:
    """A consumer: its name (its cursor's), what it reads and its handler. ``stream`` is ``DomainEvent`` or another
    append-only table with ``id`` and ``txid`` columns (the customers' ``events``), filtered by ``kinds`` (domain
    events) or ``wanted`` (another stream)."""

    consumer: str
    kinds: frozenset[str]
    handler: Handler
    batch: int = 500
    from_start: bool = False  # a new consumer reads every event kept; otherwise only those after it first ran
    stream: Any = None  # None: DomainEvent
    wanted: Wanted | None = None
    within: bool = False  # run in the publishing transaction, at publish (no cursor)
    # domain events of every declared kind this says yes to (read at each step: kinds declared by domains above
    # the subscriber, which it cannot import), besides ``kinds``
    selects: Callable[[EventKind], bool] | None = None

    def reads(self, kind: str) -> bool:
        if kind in self.kinds:
            return True
        declared_kind = _KINDS.get(kind)
        return self.selects is not None and declared_kind is not None and self.selects(declared_kind)

    @property
    def table(self) -> Any:
        return self.stream if self.stream is not None else DomainEvent


_SUBSCRIPTIONS: dict[str, Subscription] = {}
_WITHIN: dict[str, list[Subscription]] = {}  # kind → the reactions that run as it is published


def subscribe(consumer: str, kinds: Iterable[EventKind | str] = (), *, batch: int = 500, from_start: bool = False,
              stream: Any = None, wanted: Wanted | None = None, within: bool = False,
              selects: Callable[[EventKind], bool] | None = None) -> Callable[[Handler], Handler]:
    """Register ``handler(session, rows)`` as the consumer ``consumer`` of the domain events of ``kinds`` (or of
    the rows of ``stream`` that ``wanted`` names, or the domain events of the kinds ``selects`` says yes to). The
    worker runs it (``consume_all``); it must only write through the session it is given. ``within``: the handler
    runs in the publisher's transaction instead, once per event as it is published (only for domain events)."""
    chosen = frozenset(kind.name if isinstance(kind, EventKind) else kind for kind in kinds)
    unknown = sorted(chosen - _KINDS.keys())
    if unknown:
        raise LookupError(f"{consumer} subscribes to undeclared event kinds: {', '.join(unknown)}")
    if within and (stream is not None or not chosen or selects is not None):
        raise ValueError(f"{consumer}: only domain events of named kinds can be handled within their transaction")

    def register(handler: Handler) -> Handler:
        known = _SUBSCRIPTIONS.get(consumer)
        if known is not None and known.handler is not handler:
            raise ValueError(f"consumer {consumer!r} is registered twice")
        subscription = Subscription(consumer, chosen, handler, batch, from_start, stream, wanted, within, selects)
        _SUBSCRIPTIONS[consumer] = subscription
        if within and known is None:
            for kind in chosen:
                _WITHIN.setdefault(kind, []).append(subscription)
        return handler

    return register


def subscriptions() -> dict[str, Subscription]:
    return dict(_SUBSCRIPTIONS)


# The oldest transaction of this database that is still running (and so may still commit events), as a 64-bit id;
# no such transaction: the next id to be handed out. Only sessions of clients can write our tables: transactions
# of other databases on the same server, and autovacuum's (an ANALYZE takes an id to write its statistics), are
# left out, so they hold no consumer back. pg_locks shows every session's transaction (pg_stat_activity hides other
# roles' ids); its 32-bit ids are placed in the current epoch, and one handed out after the snapshot was taken
# (pg_locks is read after it) counts as the snapshot's next id, not as an id of the epoch before.
HORIZON_SQL = text("""
SELECT least(s.next_id, min(CASE WHEN (l.transactionid::text::bigint - s.next_id % 4294967296 + 4294967296)
                                       % 4294967296 < 2147483648
                                 THEN s.next_id  -- handed out after the snapshot: newer than anything it shows
                                 ELSE s.next_id - 4294967296
                                      + (l.transactionid::text::bigint - s.next_id % 4294967296 + 4294967296)
                                        % 4294967296
                            END))
  FROM (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next_id) s
  LEFT JOIN (pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid AND a.backend_type = 'client backend'
                                               AND a.datid = (SELECT oid FROM pg_database
                                                               WHERE datname = current_database()))
         ON l.locktype = 'transactionid' AND l.granted
 GROUP BY s.next_id""")


def _horizon(session: Session) -> int | None:
    """Below which transaction id every row is final: its transaction has ended, and any transaction that can
    still commit has a higher id (None on SQLite, where a reader sees committed rows in id order already).

    Read in a statement of its own, before the rows: a transaction counted here as running is left out of that
    read, and one that ended before this statement is visible to the read, which takes a later snapshot. The
    activity is read afresh (PostgreSQL keeps one copy per transaction otherwise)."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    session.execute(text("SELECT pg_stat_clear_snapshot()"))
    return int(session.scalar(HORIZON_SQL))


def _final(table: Any, horizon: int | None) -> Any:
    return literal(True) if horizon is None else table.txid < horizon


def _last_final(session: Session, table: Any, horizon: int | None, *after: Any) -> tuple[int, int] | None:
    row = session.execute(select(table.txid, table.id).where(_final(table, horizon), *after)
                          .order_by(table.txid.desc(), table.id.desc()).limit(1)).first()
    return (row[0], row[1]) if row is not None else None


def _cursor(session: Session, subscription: Subscription, horizon: int | None) -> EventCursor:
    """The consumer's cursor, locked for this step (made on first use, at the current end unless from_start)."""
    locked = select(EventCursor).where(EventCursor.consumer == subscription.consumer).with_for_update()
    cursor = session.scalars(locked).one_or_none()
    if cursor is not None:
        return cursor
    start = (0, 0) if subscription.from_start else (_last_final(session, subscription.table, horizon) or (0, 0))
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(EventCursor).values(consumer=subscription.consumer, txid=start[0], event_id=start[1],
                                               updated_at=utcnow()).on_conflict_do_nothing())
    return session.scalars(locked).one()


def _move(session: Session, subscription: Subscription, to: tuple[int, int]) -> None:
    session.execute(update(EventCursor).where(EventCursor.consumer == subscription.consumer)
                    .values(txid=to[0], event_id=to[1], updated_at=utcnow()))


def _anything_new(database: Database, subscription: Subscription) -> bool:
    """A look without locks (no write transaction, on SQLite none of its one writer's lock): is there a final row
    past the consumer's cursor? An idle worker asks this every tick. A consumer without a cursor yet says yes."""
    table = subscription.table
    with database.unit_of_work(reader=True) as session:
        cursor = session.get(EventCursor, subscription.consumer)
        if cursor is None:
            return True
        horizon = _horizon(session)
        after = tuple_(table.txid, table.id) > tuple_(cursor.txid, cursor.event_id)
        return session.execute(select(table.id).where(after, _final(table, horizon)).limit(1)).first() is not None


UNKNOWN_KIND_GRACE = timedelta(minutes=10)


def _until_unknown(subscription: Subscription, rows: list[DomainEvent]) -> list[DomainEvent]:
    """The rows before the first recent one of a kind this process does not know, for a consumer that picks kinds
    by what they are (``selects``): during a rolling deploy a newer process publishes kinds an older worker has
    not heard of, and moving past them would lose them for good; the newer workers read them instead. A kind
    still unknown after ``UNKNOWN_KIND_GRACE`` is taken for one no longer in the code and passed over."""
    if subscription.selects is None:
        return rows
    recent = utcnow() - UNKNOWN_KIND_GRACE
    for index, row in enumerate(rows):
        if row.kind not in _KINDS and row.at > recent:
            return rows[:index]
    return rows


def consume(database: Database, subscription: Subscription) -> int:
    """One step of one consumer, in one transaction: lock its cursor, read the final rows after it (up to
    ``batch``), hand those it wants to its handler, move the cursor past every row read, commit. Returns how many
    rows the step moved past (0: nothing new)."""
    table = subscription.table
    if not _anything_new(database, subscription):
        return 0
    with database.unit_of_work(writer=True) as session:
        cursor = _cursor(session, subscription, _horizon(session))
        horizon = _horizon(session)  # after the cursor's lock: a step that waited for it reads what is final now
        after = tuple_(table.txid, table.id) > tuple_(cursor.txid, cursor.event_id)
        if table is DomainEvent:
            rows = list(session.scalars(select(DomainEvent).where(after, _final(table, horizon))
                                        .order_by(DomainEvent.txid, DomainEvent.id).limit(subscription.batch)))
            rows = _until_unknown(subscription, rows)
            if not rows:
                return 0
            chosen = [row for row in rows if subscription.reads(row.kind)]
            if chosen:
                subscription.handler(session, chosen)
            _move(session, subscription, (rows[-1].txid, rows[-1].id))
            return len(rows)
        # another stream: find where this step's window ends, then read only the rows wanted in it
        conditions = subscription.wanted(session) if subscription.wanted else []
        if conditions is None:  # nothing wanted now: past everything there is
            end = _last_final(session, table, horizon, after)
            if end is not None:
                _move(session, subscription, end)
            return 0
        window = (select(table.txid, table.id).where(after, _final(table, horizon))
                  .order_by(table.txid, table.id).limit(subscription.batch).subquery())
        bounds = session.execute(select(func.count(), func.max(window.c.txid))).one()
        if not bounds[0]:
            return 0
        last_txid = bounds[1]
        end_id = session.scalar(select(func.max(window.c.id)).where(window.c.txid == last_txid))
        end = (last_txid, end_id)
        rows = list(session.scalars(select(table).where(after, tuple_(table.txid, table.id) <= tuple_(*end),
                                                        *conditions).order_by(table.txid, table.id)))
        if rows:
            subscription.handler(session, rows)
        _move(session, subscription, end)
        return int(bounds[0])


def start(session: Session, consumer: str) -> None:
    """Make a registered consumer's cursor now, if it has none, at the current end (or the start): what was
    published before this transaction is then behind it, what follows is not (a lead rule saved)."""
    _cursor(session, _SUBSCRIPTIONS[consumer], _horizon(session))


def skip_to_end(session: Session, consumer: str) -> None:
    """Move a consumer's cursor past every row its stream holds now (after a bulk load whose effects were written
    with it: ``kehu generate`` writes the leads its events would make)."""
    subscription = _SUBSCRIPTIONS[consumer]
    horizon = _horizon(session)
    cursor = _cursor(session, subscription, horizon)
    table = subscription.table
    end = _last_final(session, table, horizon, tuple_(table.txid, table.id) > tuple_(cursor.txid, cursor.event_id))
    if end is not None:
        _move(session, subscription, end)


PRUNE_BATCH = 10_000
_pruned_at = 0.0  # when this process last found nothing more to prune (it looks again an hour later)


def prune(database: Database, *, older_than: timedelta, batch: int = PRUNE_BATCH) -> int:
    """Delete up to ``batch`` domain events older than ``older_than`` that every consumer of domain events has
    read (none while a consumer registered here has no cursor yet: one reading from the start would miss them).
    Returns how many went."""
    readers = [s.consumer for s in _SUBSCRIPTIONS.values() if not s.within and s.stream is None]
    with database.unit_of_work(writer=True) as session:
        cursors = session.execute(select(EventCursor.txid, EventCursor.event_id)
                                  .where(EventCursor.consumer.in_(readers))).all() if readers else []
        if len(cursors) < len(readers):
            return 0
        cutoff = utcnow() - older_than
        behind_every_reader = [tuple_(DomainEvent.txid, DomainEvent.id) <= tuple_(*min(cursors))] if cursors else []
        doomed = select(DomainEvent.id).where(DomainEvent.at < cutoff, *behind_every_reader).limit(batch)
        result: Any = session.execute(delete(DomainEvent).where(DomainEvent.id.in_(doomed))
                                      .execution_options(synchronize_session=False))
        return int(result.rowcount or 0)


@poller
def prune_read_events(database: Database) -> bool:
    """The worker's step of ``prune``: at most once an hour once there is nothing left, a batch at a time."""
    global _pruned_at
    if time.monotonic() - _pruned_at < 3600:
        return False
    from kehu.core.settings import get_settings

    gone = prune(database, older_than=timedelta(days=get_settings().domain_event_days))
    if gone < PRUNE_BATCH:
        _pruned_at = time.monotonic()
    return gone > 0


@poller
def consume_all(database: Database) -> bool:
    """The worker's step for every consumer: a batch each. True when any of them found events."""
    busy = False
    for subscription in list(_SUBSCRIPTIONS.values()):
        if subscription.within:
            continue
        busy = consume(database, subscription) > 0 or busy
    return busy
