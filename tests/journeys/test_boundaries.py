"""Where a journey stops: another dealer's managers, happenings at another dealer, customers who moved away or
were merged, a stop racing an enrolment, one busy journey beside the others."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from kehu.cdp import schemas as cdp_schemas
from kehu.cdp import service as cdp_service
from kehu.cdp.models import HAPPENING, Event, Identity
from kehu.core import events
from kehu.core.db import utcnow
from kehu.journeys import engine, schemas, service
from kehu.journeys.models import Enrolment
from tests.channels.conftest import Audience
from tests.factories.tenancy import make_user
from tests.journeys.test_engine import advance, live_journey, places

QUICK = {"nodes": [{"id": "entry", "type": "entry"}, {"id": "wait", "type": "wait", "days": 1},
                   {"id": "out", "type": "exit"}],
         "edges": [{"from": "entry", "to": "wait"}, {"from": "wait", "to": "out"}]}


def test_another_dealers_manager_reads_nothing_of_a_dealers_journey(client, login, session, audience: Audience):
    make_user(session, audience.tree.system, audience.tree.dealer_b, "dealer_manager", email="b.manager@example.com",
              name="B店长")
    session.commit()
    a = login("a.mkt@example.com", "correct-horse-1")
    made = client.post("/api/v1/journeys", headers=a, json={"name": "A店秘密活动"}).json()
    b_manager = login("b.manager@example.com")
    for path in ("", "/report", "/enrolments", "/problems"):
        assert client.get(f"/api/v1/journeys/{made['id']}{path}", headers=b_manager).status_code == 404
    assert client.get("/api/v1/journeys", headers=b_manager).json()["items"] == []
    assert client.get(f"/api/v1/journeys/{made['id']}", headers=login("a.manager@example.com")).status_code == 200
    # the same name in another unit is no clash, so it tells nothing
    b = login("b.mkt@example.com", "correct-horse-1")
    assert client.post("/api/v1/journeys", headers=b, json={"name": "A店秘密活动"}).status_code == 201


def _happening(session, profile_id: int, unit_id: int, event: str = "opportunity_won") -> None:  # type: ignore[no-untyped-def]
    identity = session.scalar(select(Identity.id).where(Identity.profile_id == profile_id).limit(1))
    session.add(Event(org_id=session.scalar(select(Identity.org_id).where(Identity.id == identity)), source_id=0,
                      message_id=uuid.uuid4().hex, type=HAPPENING, event=event, ts=utcnow(), received_at=utcnow(),
                      identity_id=identity, profile_id=profile_id, properties={"unit_id": unit_id, "amount": 300000}))


def test_a_dealers_event_trigger_hears_only_what_happened_at_that_dealer(session, clean_database, audience):
    a = audience.principal(session, audience.a_marketer)
    journey = live_journey(session, a, {**QUICK, "trigger": {"type": "event", "event": "opportunity_won"}})
    subscription = events.subscriptions()["journeys.event_entries"]
    events.consume(clean_database, subscription)  # reads from now on
    zhang, li = audience.customers["zhang"].id, audience.customers["li"].id
    _happening(session, zhang, audience.tree.dealer_b.id)  # A's customer, a deal won at dealer B
    _happening(session, li, audience.tree.dealer_a.id)  # at A itself
    session.commit()
    while events.consume(clean_database, subscription):
        pass
    assert list(places(session, journey.id)) == [li]


def test_customers_who_moved_to_another_dealer_or_were_merged_leave(session, clean_database, audience: Audience):
    a = audience.principal(session, audience.a_marketer)
    journey = live_journey(session, a, QUICK)
    zhang, li, zhao = (audience.customers[k].id for k in ("zhang", "li", "zhao"))
    assert service.enrol(session, journey, [zhang, li, zhao]) == 3
    session.commit()
    start = utcnow()
    advance(clean_database, start)
    system = audience.tree.system
    cdp_service.assign_profiles(session, system, profile_ids=[zhang], owner_id=audience.tree.b_sales.id)
    cdp_service.merge_by_hand(session, system, data=cdp_schemas.MergeRequest(winner_id=zhao, loser_id=li))
    session.commit()
    advance(clean_database, start + timedelta(days=2))
    session.expire_all()
    left = dict(session.execute(select(Enrolment.profile_id, Enrolment.exit_reason)
                                .where(Enrolment.journey_id == journey.id)).all())
    assert left == {zhang: "left_scope", li: "merged", zhao: None}
    assert places(session, journey.id)[zhao] == ("out", "completed")


def test_a_stop_waits_for_an_enrolment_under_way_and_takes_them_out_too(session, clean_database, audience):
    if clean_database.is_sqlite:
        pytest.skip("SQLite has one writer: an enrolment and a stop never overlap")
    hq = audience.principal(session, audience.hq_marketer)
    journey = live_journey(session, hq, QUICK)
    stopped = threading.Event()

    def stop() -> None:
        with clean_database.unit_of_work() as other:
            service.stop(other, audience.principal(other, audience.hq_marketer), journey.id)
        stopped.set()

    with clean_database.unit_of_work() as enrolling:
        assert service.enrol(enrolling, enrolling.get(type(journey), journey.id),
                             [audience.customers["zhang"].id]) == 1
        thread = threading.Thread(target=stop)
        thread.start()
        time.sleep(0.5)
        assert not stopped.is_set()  # the stop waits for the enrolment to commit …
    thread.join(timeout=10)
    assert stopped.is_set()
    assert {state for _, state in places(session, journey.id).values()} == {"exited"}  # … and then takes them out


def test_a_busy_journey_leaves_room_for_the_others(session, clean_database, audience, monkeypatch):
    hq = audience.principal(session, audience.hq_marketer)
    big = live_journey(session, hq, QUICK, name="大")
    small = live_journey(session, hq, QUICK, name="小")
    service.enrol(session, big, [p.id for p in audience.customers.values()])
    service.enrol(session, small, [audience.customers["zhang"].id])
    session.commit()
    monkeypatch.setattr(engine, "STEP_BATCH", 2)
    monkeypatch.setattr(engine, "ROUND_SECONDS", 0.0)  # one step per node, then the round ends
    engine.advance_journeys(clean_database)
    assert places(session, small.id)[audience.customers["zhang"].id] == ("wait", "active")
    assert sum(node == "wait" for node, _ in places(session, big.id).values()) == 2


def test_a_trigger_names_only_what_its_kind_uses():
    with pytest.raises(ValueError):
        schemas.Trigger(type="event", event="test_drive_booked", segment_id=1)
    with pytest.raises(ValueError):
        schemas.Trigger(type="manual", event="test_drive_booked")
