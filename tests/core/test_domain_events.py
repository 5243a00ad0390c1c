"""Domain events are read by each consumer exactly once, in the order of their transactions, without a settle
delay: a transaction that took its id first and commits last is not skipped, two workers never hand one event to
the same consumer twice, and a crash between reading and committing repeats nothing."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from kehu.core import events
from kehu.core.events import DomainEvent, Subscription

HAPPENED = events.declare("test.happened", "something a test made happen")
HANDLED = events.declare("test.handled", "a test consumer's record of an event it was handed")


def handled_ids(database) -> list[int]:  # type: ignore[no-untyped-def]
    with database.unit_of_work() as session:
        rows = session.scalars(select(DomainEvent).where(DomainEvent.kind == HANDLED.name)
                               .order_by(DomainEvent.id)).all()
        return [row.payload["of"] for row in rows]


def recorder(session, batch) -> None:  # type: ignore[no-untyped-def]
    for event in batch:
        events.publish(session, HANDLED.name, org_id=event.org_id, of=event.id)


def happen(database, n: int = 1) -> list[int]:  # type: ignore[no-untyped-def]
    with database.unit_of_work() as session:
        made = [DomainEvent(org_id=1, kind=HAPPENED.name, payload={"n": i}) for i in range(n)]
        session.add_all(made)
        session.flush()
        return [e.id for e in made]


def consumer(name: str = "test-recorder", **kw) -> Subscription:  # type: ignore[no-untyped-def]
    return Subscription(name, frozenset({HAPPENED.name}), kw.pop("handler", recorder), from_start=True, **kw)


def test_each_committed_event_is_handed_over_once_in_order_and_a_rolled_back_one_never(clean_database):
    first = happen(clean_database, 3)
    with pytest.raises(RuntimeError), clean_database.unit_of_work() as session:
        events.publish(session, HAPPENED.name, org_id=1)
        raise RuntimeError("the change failed, and its event with it")
    second = happen(clean_database, 2)
    sub = consumer(batch=2)  # several steps: the cursor moves between them
    while events.consume(clean_database, sub):
        pass
    assert handled_ids(clean_database) == first + second
    assert events.consume(clean_database, sub) == 0
    assert handled_ids(clean_database) == first + second


def test_a_new_consumer_starts_after_what_was_published_before_it_unless_asked(clean_database):
    old = happen(clean_database, 2)
    late = Subscription("test-late", frozenset({HAPPENED.name}), recorder)
    assert events.consume(clean_database, late) == 0
    new = happen(clean_database, 1)
    events.consume(clean_database, late)
    assert handled_ids(clean_database) == new
    events.consume(clean_database, consumer("test-from-start"))
    assert handled_ids(clean_database) == new + old + new


def test_a_crash_between_reading_and_committing_repeats_nothing(clean_database):
    made = happen(clean_database, 3)
    calls = []

    def crashing(session, batch) -> None:  # type: ignore[no-untyped-def]
        recorder(session, batch)
        calls.append(len(batch))
        if len(calls) == 1:
            raise OSError("the worker died before its commit")

    sub = consumer(handler=crashing)
    with pytest.raises(OSError):
        events.consume(clean_database, sub)
    assert handled_ids(clean_database) == []  # its writes went with the crash, and the cursor did not move
    events.consume(clean_database, sub)
    assert handled_ids(clean_database) == made and calls == [3, 3]


def test_two_workers_hand_each_event_to_a_consumer_once(clean_database):
    made = happen(clean_database, 300)
    sub = consumer(batch=7)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while events.consume(clean_database, sub):
                pass
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert errors == []
    assert handled_ids(clean_database) == made


def test_a_transaction_that_commits_late_is_not_skipped(clean_database):
    if clean_database.is_sqlite:
        pytest.skip("SQLite has one writer at a time: a second transaction cannot publish while the first is open")
    sub = consumer()
    events.consume(clean_database, sub)
    slow = clean_database.sessionmaker()
    try:
        events.publish(slow, HAPPENED.name, org_id=1, who="slow")
        slow.flush()  # the slow transaction has its id and its event's id now
        quick = happen(clean_database, 1)  # a later transaction commits first
        events.consume(clean_database, sub)
        assert handled_ids(clean_database) == []  # not yet: the slow one could still commit before it
        slow.commit()
    finally:
        slow.close()
    while events.consume(clean_database, sub):
        pass
    with clean_database.unit_of_work() as session:
        slow_id = session.scalar(select(DomainEvent.id).where(DomainEvent.payload["who"].as_string() == "slow"))
    assert handled_ids(clean_database) == [slow_id, *quick]


def test_only_declared_kinds_are_published_or_subscribed_to(clean_database):
    with pytest.raises(LookupError), clean_database.unit_of_work() as session:
        events.publish(session, "test.typo", org_id=1)
    with pytest.raises(LookupError):
        events.subscribe("test-typo", ["test.typo"])
    with pytest.raises(ValueError):
        events.declare("nodomain", "a kind must name its domain")
    with clean_database.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(DomainEvent)) == 0


def test_a_long_transaction_of_another_database_holds_no_consumer_back(clean_database):
    if clean_database.is_sqlite:
        pytest.skip("one database per file on SQLite")
    import psycopg
    from sqlalchemy import make_url

    sub = consumer()
    events.consume(clean_database, sub)
    url = make_url(clean_database.url).set(drivername="postgresql", database="postgres")
    with psycopg.connect(url.render_as_string(hide_password=False)) as elsewhere:
        elsewhere.execute("SELECT pg_current_xact_id()")  # a writer's transaction id, held open over there
        made = happen(clean_database, 2)
        while events.consume(clean_database, sub):
            pass
        assert handled_ids(clean_database) == made


def test_the_horizon_is_the_oldest_running_transaction_of_the_database(clean_database):
    if clean_database.is_sqlite:
        pytest.skip("SQLite needs no horizon")
    from sqlalchemy import text

    with clean_database.unit_of_work() as session:
        idle = events._horizon(session)
        assert idle is not None and idle > 0
    older = clean_database.sessionmaker()
    try:
        held = int(older.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one())
        with clean_database.unit_of_work() as session:
            session.execute(text("SELECT pg_current_xact_id()"))  # a newer transaction than the held one
            # the held transaction holds it back (another client's, older still, may hold it further back: a
            # worker of a server another test started creates its cursors on this database now and then)
            assert events._horizon(session) <= held
    finally:
        older.rollback()
        older.close()
    import time

    deadline = time.monotonic() + 5
    while True:  # once it has ended (and whatever else was running then), the horizon passes it
        with clean_database.unit_of_work() as session:
            if events._horizon(session) > held:
                break
        assert time.monotonic() < deadline, "the horizon stayed behind a transaction that had ended"
        time.sleep(0.05)


def test_a_reaction_within_the_transaction_commits_and_rolls_back_with_the_change(clean_database):
    """A ``within`` subscriber runs as the event is published, in the publisher's transaction: a reader never sees
    the change without the reaction, and the worker's cursor loop leaves it alone."""
    seen: list[int] = []
    name = "test-within"

    @events.subscribe(name, [HAPPENED], within=True)
    def react(session, batch) -> None:  # type: ignore[no-untyped-def]
        seen.extend(event.payload["n"] for event in batch)
        recorder(session, batch)

    try:
        with pytest.raises(RuntimeError), clean_database.unit_of_work() as session:
            events.publish(session, HAPPENED, org_id=1, n=1)
            raise RuntimeError("the change failed, and the reaction with it")
        with clean_database.unit_of_work() as session:
            events.publish(session, HAPPENED, org_id=1, n=2)
        assert seen == [1, 2]  # ran at once, both times
        with clean_database.unit_of_work() as session:
            reactions = session.scalars(select(DomainEvent).where(DomainEvent.kind == HANDLED.name)).all()
            assert len(reactions) == 1  # the rolled-back change took its reaction with it
            kept = session.scalars(select(DomainEvent).where(DomainEvent.kind == HAPPENED.name)).one()
            assert reactions[0].payload["of"] == kept.id and kept.payload == {"n": 2}
        events.consume_all(clean_database)
        assert seen == [1, 2]  # not handed over a second time by the worker
    finally:
        events._SUBSCRIPTIONS.pop(name, None)
        events._WITHIN[HAPPENED.name].remove(events.Subscription(name, frozenset({HAPPENED.name}), react,
                                                                 within=True))


def test_only_named_domain_events_can_be_handled_within_their_transaction():
    with pytest.raises(ValueError, match="within"):
        events.subscribe("test-within-everything", [], within=True)


def test_old_events_every_consumer_has_read_are_pruned_and_nothing_else(clean_database):
    """The outbox keeps what a consumer has yet to read, and recent history; the rest goes, a batch at a time."""
    from datetime import timedelta

    from sqlalchemy import update

    from kehu.core.db import utcnow

    old = happen(clean_database, 5)
    with clean_database.unit_of_work() as session:
        session.execute(update(DomainEvent).where(DomainEvent.id.in_(old)).values(at=utcnow() - timedelta(days=40)))
    recent = happen(clean_database, 2)
    while events.consume_all(clean_database):  # the domains' own consumers (if loaded) have read them all
        pass
    name = "test-pruning-reader"
    registered = events.subscribe(name, [HAPPENED], batch=3, from_start=True)(recorder)
    try:
        assert events.prune(clean_database, older_than=timedelta(days=30)) == 0  # it has not read anything yet
        events.consume(clean_database, events.subscriptions()[name])  # reads 3 of the 5 old ones
        assert events.prune(clean_database, older_than=timedelta(days=30), batch=2) == 2
        assert events.prune(clean_database, older_than=timedelta(days=30)) == 1  # the third; two it has not read
        while events.consume(clean_database, events.subscriptions()[name]):
            pass
        assert events.prune(clean_database, older_than=timedelta(days=30)) == 2
        with clean_database.unit_of_work() as session:
            left = set(session.scalars(select(DomainEvent.id).where(DomainEvent.kind == HAPPENED.name)))
        assert left == set(recent)  # recent history stays, read or not
        assert handled_ids(clean_database) == old + recent  # and every event was handed over before it went
    finally:
        assert events._SUBSCRIPTIONS.pop(name).handler is registered


def test_a_consumer_by_selection_waits_for_a_kind_it_does_not_know_yet_then_passes_an_old_one(clean_database):
    """In a rolling deploy a newer worker publishes a kind an older one has not heard of: the older one must not
    move past it (the newer ones will read it), but a kind unknown for long is one that left the code."""
    from datetime import timedelta

    from sqlalchemy import update

    from kehu.core.db import utcnow

    before = happen(clean_database, 1)
    with clean_database.unit_of_work() as session:
        stranger = DomainEvent(org_id=1, kind="future.domain_happened", payload={})
        session.add(stranger)
        session.flush()
        stranger_id = stranger.id
    after = happen(clean_database, 1)
    seen: list[int] = []
    picky = Subscription("test-picky", frozenset(), lambda _s, rows: seen.extend(r.id for r in rows),
                         from_start=True, selects=lambda kind: kind.name == HAPPENED.name)
    while events.consume(clean_database, picky):
        pass
    assert seen == before  # stopped before the kind it does not know
    with clean_database.unit_of_work() as session:
        session.execute(update(DomainEvent).where(DomainEvent.id == stranger_id)
                        .values(at=utcnow() - timedelta(hours=1)))
    while events.consume(clean_database, picky):
        pass
    assert seen == before + after  # an hour on, it is taken for a kind the code no longer has
