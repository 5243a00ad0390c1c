"""Dynamic segments follow their customers within seconds: each batch of customers' events re-decides the
segments of the customers it touched (set-based, through the one consumer mechanism), and the daily refresh
then finds nothing to correct."""

from __future__ import annotations

from sqlalchemy import select

from kehu.core import events
from kehu.segments import service
from kehu.segments.models import Segment, SegmentChange
from tests.cdp.test_imports import run_jobs
from tests.factories.cdp import basic, call, make_source, process
from tests.segments.test_saved_segments import SHANGHAI, create, member_names, move_to


def follow(database) -> None:  # type: ignore[no-untyped-def]
    """What the worker's consumers do, once through everything waiting."""
    while events.consume(database, events.subscriptions()[service.LIVE_MEMBERS]):
        pass


def test_a_customer_enters_and_leaves_as_their_events_arrive(people, client, login, session, clean_database,
                                                             settings):
    admin = login("admin@example.com")
    made = create(client, admin, name="上海客户", condition=SHANGHAI)
    run_jobs(clean_database, settings)  # the first fill
    before = member_names(client, admin, made["id"])
    follow(clean_database)

    move_to(client, people, session, "ln", "苏州")  # one of them moves away …
    process(clean_database)
    follow(clean_database)  # … and leaves at once, no refresh asked for
    after = member_names(client, admin, made["id"])
    assert len(after) == len(before) - 1
    move_to(client, people, session, "ln", "上海")  # and comes back
    process(clean_database)
    follow(clean_database)
    assert member_names(client, admin, made["id"]) == before

    session.expire_all()
    changes = session.scalars(select(SegmentChange.change).where(SegmentChange.segment_id == made["id"])
                              .order_by(SegmentChange.id)).all()
    assert changes[-2:] == ["left", "entered"]
    segment = session.get(Segment, made["id"])
    assert segment is not None and segment.member_count == len(before)
    assert service.refresh_members(session, segment) == (0, 0)  # the full refresh finds nothing to correct


def test_an_event_the_condition_asks_about_enrols_at_once(people, tree, client, login, session, clean_database,
                                                          settings):
    admin = login("admin@example.com")
    booked = {"type": "event", "event": "brochure_downloaded", "op": "did"}
    made = create(client, admin, name="下载了手册", condition=booked)
    run_jobs(clean_database, settings)
    assert member_names(client, admin, made["id"]) == []
    follow(clean_database)
    _, key = make_source(session, tree.system, "官网", tree.dealer_b.id)
    session.commit()
    assert client.post("/v1/batch", headers=basic(key), json={"batch": [
        call("identify", userId="new-1", traits={"name": "许诺", "phone": "13900007777"}),
        call("track", userId="new-1", event="brochure_downloaded")]}).status_code == 200
    process(clean_database)
    follow(clean_database)
    assert member_names(client, admin, made["id"]) == ["许诺"]


def test_a_change_arriving_during_a_full_refresh_waits_for_it_and_is_not_lost(people, client, login, session,
                                                                              clean_database, settings):
    import threading

    import pytest

    if clean_database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: a refresh and the consumer never overlap there")
    admin = login("admin@example.com")
    made = create(client, admin, name="上海客户", condition=SHANGHAI)
    run_jobs(clean_database, settings)
    follow(clean_database)
    before = member_names(client, admin, made["id"])
    move_to(client, people, session, "ln", "苏州")
    process(clean_database)
    with clean_database.sessionmaker() as refreshing:  # a refresh holds its segment's row from its start
        refreshing.get(Segment, made["id"], with_for_update=True)
        waiting = threading.Thread(target=follow, args=(clean_database,))
        waiting.start()
        waiting.join(1.0)
        assert waiting.is_alive()  # it waits rather than skipping the segment (which would lose the change)
        refreshing.rollback()
    waiting.join(10)
    assert not waiting.is_alive()
    assert len(member_names(client, admin, made["id"])) == len(before) - 1


def test_a_record_changed_by_hand_moves_at_once_too(people, client, login, session, clean_database, settings):
    admin = login("admin@example.com")
    made = create(client, admin, name="上海客户", condition=SHANGHAI)
    run_jobs(clean_database, settings)
    before = member_names(client, admin, made["id"])
    someone = client.get(f"/api/v1/segments/{made['id']}/members", headers=admin).json()["items"][0]
    corrected = client.patch(f"/api/v1/customers/{someone['id']}", headers=admin, json={"city": "杭州"})
    assert corrected.status_code == 200, corrected.text
    while events.consume(clean_database, events.subscriptions()[service.LIVE_EDITS]):
        pass
    assert member_names(client, admin, made["id"]) == sorted(set(before) - {someone["name"]})
