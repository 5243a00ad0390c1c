"""Journeys walk their customers in sets: entry rules, waits on a frozen clock, sends under communication control,
splits that send everyone exactly one way, pause / stop, versions, dealer isolation and the triggers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from kehu.cdp import schemas as cdp_schemas
from kehu.cdp import service as cdp_service
from kehu.cdp.models import Profile
from kehu.channels import control
from kehu.channels import schemas as channel_schemas
from kehu.channels.models import Message
from kehu.core import events
from kehu.core.db import utcnow
from kehu.core.errors import Conflict, NotFound, ValidationFailed
from kehu.journeys import engine, results, schemas, service
from kehu.journeys.models import Enrolment, JourneyStep
from kehu.segments import schemas as segment_schemas
from kehu.segments import service as segment_service
from tests.channels.conftest import Audience, email_template, run_due, send_now, statuses
from tests.factories.cdp import basic, call, make_source, process

OWNER = {"type": "field", "field": "lifecycle_stage", "op": "eq", "value": "owner"}


def walk(template_id: int, **rules: Any) -> dict[str, Any]:
    """entry → wait 1 day → e-mail → split (owners | else) → two exits."""
    return {"trigger": rules.pop("trigger", {"type": "manual"}), **rules,
            "nodes": [{"id": "entry", "type": "entry"}, {"id": "wait", "type": "wait", "days": 1},
                      {"id": "mail", "type": "send", "template_id": template_id},
                      {"id": "split", "type": "split", "branches": [{"name": "owners", "condition": OWNER}]},
                      {"id": "done_owner", "type": "exit"}, {"id": "done_other", "type": "exit"}],
            "edges": [{"from": "entry", "to": "wait"}, {"from": "wait", "to": "mail"},
                      {"from": "mail", "to": "split"},
                      {"from": "split", "to": "done_owner", "branch": "owners"},
                      {"from": "split", "to": "done_other", "branch": "else"}]}


def live_journey(session, principal, definition: dict[str, Any], name: str = "试驾跟进"):  # type: ignore[no-untyped-def]
    journey = service.create_journey(session, principal, schemas.JourneyCreate(
        name=name, definition=schemas.Definition.model_validate(definition)))
    service.publish_version(session, principal, journey.id, schemas.Publish())
    session.commit()
    return journey


def advance(database, now) -> int:  # type: ignore[no-untyped-def]
    """Run the engine until nobody is due at ``now``; how many rounds moved someone."""
    rounds = 0
    while engine.advance_journeys(database, now=now):
        rounds += 1
        assert rounds < 50
    return rounds


def places(session, journey_id: int) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    session.expire_all()
    rows = session.execute(select(Enrolment.profile_id, Enrolment.node, Enrolment.state)
                           .where(Enrolment.journey_id == journey_id)).all()
    return {profile_id: (node, state) for profile_id, node, state in rows}


def test_customers_wait_receive_their_message_and_each_take_one_branch(session, clean_database, audience: Audience):
    hq = audience.principal(session, audience.hq_marketer)
    template = email_template(session, hq)
    people = audience.customers
    cdp_service.update_profile(session, audience.tree.system, people["wang"].id,
                               data=cdp_schemas.ProfileUpdate(lifecycle_stage="owner"))
    journey = live_journey(session, hq, walk(template.id))
    chosen = [people["zhang"].id, people["li"].id, people["wang"].id]
    assert service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(profile_ids=chosen)) == 3
    session.commit()
    start = utcnow()
    advance(clean_database, start)
    assert {node for node, _ in places(session, journey.id).values()} == {"wait"}
    advance(clean_database, start + timedelta(hours=23))  # the day is not over: nobody moves, nothing is sent
    assert {node for node, _ in places(session, journey.id).values()} == {"wait"}
    assert session.scalar(select(func.count()).select_from(Message).where(Message.journey_id == journey.id)) == 0

    advance(clean_database, start + timedelta(days=1, minutes=1))
    where = places(session, journey.id)
    assert where[people["wang"].id] == ("done_owner", "completed")
    assert where[people["zhang"].id] == where[people["li"].id] == ("done_other", "completed")
    messages = dict(session.execute(select(Message.profile_id, Message.skip_reason)
                                    .where(Message.journey_id == journey.id)).all())
    assert messages == {people["zhang"].id: None, people["wang"].id: None, people["li"].id: "no_consent"}

    report = results.report(session, hq, journey.id)
    assert (report.entered, report.active, report.completed) == (3, 0, 3)
    counts = {node.node: node for node in report.nodes}
    assert counts["wait"].passed == 3 and counts["split"].branches == {"owners": 1, "else": 2}
    assert advance(clean_database, start + timedelta(days=30)) == 0  # nothing left to do, nothing sent twice
    assert session.scalar(select(func.count()).select_from(Message).where(Message.journey_id == journey.id)) == 3


def test_a_step_done_again_after_a_crash_sends_nothing_twice(session, clean_database, audience: Audience):
    """The send's messages are keyed by enrolment and node: a step repeated whole (its worker died after the
    messages were made but before the enrolments moved) finds them made."""
    hq = audience.principal(session, audience.hq_marketer)
    template = email_template(session, hq)
    journey = live_journey(session, hq, walk(template.id))
    service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(profile_ids=[audience.customers["zhang"].id]))
    session.commit()
    start = utcnow()
    advance(clean_database, start)
    later = start + timedelta(days=1, minutes=1)
    enrolment = session.scalar(select(Enrolment).where(Enrolment.journey_id == journey.id))
    assert enrolment is not None and enrolment.node == "wait"
    with clean_database.unit_of_work() as other:
        engine._send(other, other.get(type(journey), journey.id), service.graph_of(  # the crashed attempt's messages
            other, journey.id, 1).nodes["mail"], [enrolment.id], later)
    advance(clean_database, later)  # wait → mail → split → exit, in one step
    assert session.scalar(select(func.count()).select_from(Message).where(Message.journey_id == journey.id)) == 1
    assert places(session, journey.id)[audience.customers["zhang"].id] == ("done_other", "completed")


def test_a_journeys_send_stops_at_the_frequency_cap_what_a_broadcast_sent_today(session, clean_database,
                                                                                 audience: Audience):
    """A step names its customers (a few thousand ids), and communication control reads each one's messages of the
    day and week by index: the cap counts a broadcast's message as it counts the journey's own, per customer."""
    hq = audience.principal(session, audience.hq_marketer)
    control.set_policy(session, audience.tree.system, audience.tree.hq.id, channel_schemas.PolicyIn(
        per_day=channel_schemas.Caps(email=1), quiet_start="00:00", quiet_end="00:00"))
    session.commit()
    people = audience.customers
    already = send_now(session, hq, email_template(session, hq, name="早上的").id, audience.segment_id, "早上")
    run_due(clean_database)
    assert statuses(session, already.id)[people["zhang"].id] == ("queued", None)
    journey = live_journey(session, hq, walk(email_template(session, hq).id))
    service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(
        profile_ids=[people["zhang"].id, people["wang"].id]))
    session.commit()
    start = utcnow()
    advance(clean_database, start)
    session.execute(update(Enrolment).where(Enrolment.journey_id == journey.id).values(due_at=start))
    session.execute(delete(Message).where(Message.broadcast_id == already.id, Message.profile_id == people["wang"].id))
    session.commit()
    advance(clean_database, start + timedelta(minutes=1))
    messages = dict(session.execute(select(Message.profile_id, Message.skip_reason)
                                    .where(Message.journey_id == journey.id)).all())
    assert messages == {people["zhang"].id: "frequency_cap", people["wang"].id: None}


def test_a_step_plans_for_the_rows_there_are_now_not_for_what_autovacuum_last_saw(session, clean_database,
                                                                                   audience: Audience):
    """Consents granted in bulk and a million enrolled a moment ago are an empty table to the planner until
    autovacuum comes round (never, where it is off): a send step's caps and consent joins planned for a handful read
    every row made so far (23 minutes for a million customers instead of one). The engine takes statistics of the
    tables its steps read once they outgrew what the planner knows."""
    if session.get_bind().dialect.name != "postgresql":
        return
    hq = audience.principal(session, audience.hq_marketer)
    journey = live_journey(session, hq, walk(email_template(session, hq).id))
    service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(profile_ids=list(
        p.id for p in audience.customers.values())))
    session.commit()
    tables = ("consents", "journey_enrolments")
    connection = session.connection()
    for table in tables:
        connection.exec_driver_sql(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    # the consents as a bulk grant leaves them: written after the planner saw the table empty
    connection.exec_driver_sql("CREATE TABLE granted_before AS SELECT * FROM consents")
    connection.exec_driver_sql("TRUNCATE consents")
    session.commit()
    try:
        session.connection().exec_driver_sql("ANALYZE consents")
        session.connection().exec_driver_sql("ANALYZE journey_enrolments")  # (analysed before anyone entered)
        session.connection().exec_driver_sql("INSERT INTO consents SELECT * FROM granted_before")
        session.commit()

        def planned(table: str) -> float:
            return session.connection().exec_driver_sql(
                f"SELECT reltuples FROM pg_class WHERE relname = '{table}'").scalar()

        assert planned("consents") == 0
        start = utcnow()
        advance(clean_database, start)
        advance(clean_database, start + timedelta(days=1, minutes=1))  # the e-mail step reads the consents
        for table in tables:
            assert planned(table) == session.connection().exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
        assert session.scalar(select(func.count()).select_from(Message).where(
            Message.journey_id == journey.id, Message.skip_reason.is_(None))) >= 1  # and the consents were read
    finally:
        session.rollback()
        session.connection().exec_driver_sql("DROP TABLE granted_before")
        for table in tables:
            session.connection().exec_driver_sql(f"ALTER TABLE {table} RESET (autovacuum_enabled)")
        session.commit()


def test_a_customer_is_inside_once_at_a_time_and_reenters_as_the_rules_say(session, clean_database, audience):
    hq = audience.principal(session, audience.hq_marketer)
    zhang = audience.customers["zhang"].id
    quick = {"nodes": [{"id": "entry", "type": "entry"}, {"id": "out", "type": "exit"}],
             "edges": [{"from": "entry", "to": "out"}]}
    once = live_journey(session, hq, quick, name="一次")
    again = live_journey(session, hq, {**quick, "re_entry": "after_exit", "reentry_days": 7}, name="七天后再来")
    for journey in (once, again):
        first = service.enrol(session, journey, [zhang])
        assert (first, service.enrol(session, journey, [zhang])) == (1, 0)  # inside already
    session.commit()
    now = utcnow()
    advance(clean_database, now)
    for journey in (once, again):
        assert service.enrol(session, journey, [zhang], now=now + timedelta(days=3)) == 0
    assert service.enrol(session, once, [zhang], now=now + timedelta(days=8)) == 0  # never again
    assert service.enrol(session, again, [zhang], now=now + timedelta(days=8)) == 1


def test_a_dealers_journey_reaches_only_its_customers_and_other_dealers_see_nothing(session, clean_database,
                                                                                     audience: Audience):
    a = audience.principal(session, audience.a_marketer)
    b = audience.principal(session, audience.b_marketer)
    quick = {"nodes": [{"id": "entry", "type": "entry"}, {"id": "out", "type": "exit"}],
             "edges": [{"from": "entry", "to": "out"}]}
    journey = live_journey(session, a, quick, name="A店回访")
    assert journey.unit_id == audience.tree.dealer_a.id
    entered = service.enrol(session, journey, [p.id for p in audience.customers.values()])
    assert entered == 3  # 张伟, 李娜, 赵强 of dealer A; not B's 王芳 nor C's 刘洋
    with pytest.raises(NotFound):
        service.get_journey(session, b, journey.id)
    with pytest.raises(NotFound):
        service.enrol_by_hand(session, b, journey.id,
                              schemas.EnrolRequest(profile_ids=[audience.customers["wang"].id]))
    with pytest.raises(ValidationFailed):  # a customer of another dealer named in the body
        service.enrol_by_hand(session, a, journey.id,
                              schemas.EnrolRequest(profile_ids=[audience.customers["wang"].id]))
    assert [j.id for j in service.list_journeys(session, b).items] == []


def test_publishing_refuses_an_unfinished_drawing_and_names_every_problem(session, clean_database, audience):
    hq = audience.principal(session, audience.hq_marketer)
    with pytest.raises(ValidationFailed) as refused:  # a draft may be unfinished, never name what is not ours
        service.create_journey(session, hq, schemas.JourneyCreate(name="别人的模板", definition=schemas.Definition(
            nodes=[{"id": "mail", "type": "send", "template_id": 987654}])))
    assert [e.field for e in refused.value.errors] == ["definition.nodes[0].template_id"]
    template = email_template(session, hq)
    journey = service.create_journey(session, hq, schemas.JourneyCreate(name="半成品", definition=schemas.Definition(
        nodes=[{"id": "entry", "type": "entry"}, {"id": "mail", "type": "send", "template_id": template.id},
               {"id": "wait", "type": "wait", "hours": 2}, {"id": "lost", "type": "exit"},
               {"id": "split", "type": "split", "branches": [{"name": "owners", "condition": OWNER}]}],
        edges=[{"from": "entry", "to": "mail"}, {"from": "mail", "to": "wait"}, {"from": "wait", "to": "mail"},
               {"from": "split", "to": "lost", "branch": "owners"}])))
    found = {(p.field, p.code) for p in service.problems(session, hq, journey)}
    assert ("definition.nodes[4]", "unconnected") in found  # the split's else leads nowhere
    assert ("definition.nodes[3]", "unreachable") in found
    assert ("definition.edges", "cycle") in found
    with pytest.raises(ValidationFailed):
        service.publish_version(session, hq, journey.id, schemas.Publish())
    assert journey.status == "draft" and journey.version == 0


def test_pause_holds_everyone_and_stop_takes_them_out(session, clean_database, audience: Audience):
    hq = audience.principal(session, audience.hq_marketer)
    template = email_template(session, hq)
    journey = live_journey(session, hq, walk(template.id))
    service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(segment_id=audience.segment_id))
    session.commit()
    start = utcnow()
    advance(clean_database, start)
    service.pause(session, hq, journey.id)
    session.commit()
    assert advance(clean_database, start + timedelta(days=2)) == 0
    assert session.scalar(select(func.count()).select_from(Message).where(Message.journey_id == journey.id)) == 0
    with pytest.raises(Conflict):
        service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(segment_id=audience.segment_id))
    service.resume(session, hq, journey.id)
    service.stop(session, hq, journey.id)
    session.commit()
    assert {state for _, state in places(session, journey.id).values()} == {"exited"}
    assert advance(clean_database, start + timedelta(days=3)) == 0
    assert service.enrol(session, journey, [audience.customers["zhang"].id]) == 0


def test_a_new_version_moves_people_to_the_same_node_when_asked(session, clean_database, audience: Audience):
    hq = audience.principal(session, audience.hq_marketer)
    template = email_template(session, hq)
    journey = live_journey(session, hq, walk(template.id))
    service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(
        profile_ids=[audience.customers["zhang"].id]))
    session.commit()
    advance(clean_database, utcnow())
    shorter = walk(template.id)
    shorter["nodes"][1] = {"id": "wait", "type": "wait", "hours": 1}
    service.update_journey(session, hq, journey.id, schemas.JourneyUpdate(
        definition=schemas.Definition.model_validate(shorter)))
    service.publish_version(session, hq, journey.id, schemas.Publish(move_people=True))
    session.commit()
    enrolment = session.scalar(select(Enrolment).where(Enrolment.journey_id == journey.id))
    assert enrolment is not None and (enrolment.version, enrolment.node) == (2, "wait")
    assert enrolment.due_at < utcnow() + timedelta(hours=2)  # the wait is the new one's hour, not the old day


def test_segment_and_event_triggers_enrol_as_it_happens(session, clean_database, audience: Audience, client,
                                                        tree):
    hq = audience.principal(session, audience.hq_marketer)
    quick = {"nodes": [{"id": "entry", "type": "entry"}, {"id": "wait", "type": "wait", "days": 3},
                       {"id": "out", "type": "exit"}],
             "edges": [{"from": "entry", "to": "wait"}, {"from": "wait", "to": "out"}]}
    picked = segment_service.create_segment(session, tree.system, segment_schemas.SegmentCreate(
        name="展厅名单", kind="static", profile_ids=[]))
    by_segment = live_journey(session, hq, {**quick, "trigger": {"type": "segment_entered",
                                                                  "segment_id": picked.id}}, name="入群")
    by_event = live_journey(session, hq, {**quick, "trigger": {"type": "event", "event": "test_drive_booked",
                                                                "properties": {"model": "ID.4"}}}, name="试驾")
    for consumer in ("journeys.segment_entries", "journeys.event_entries"):
        events.consume(clean_database, events.subscriptions()[consumer])  # each starts reading from now

    segment_service.change_members(session, tree.system, picked.id, [audience.customers["li"].id])
    _, key = make_source(session, tree.system, "官网", tree.dealer_b.id)
    session.commit()
    assert client.post("/v1/batch", headers=basic(key), json={"batch": [
        call("identify", userId="new-1", traits={"name": "许诺", "phone": "13900007777"}),
        call("track", userId="new-1", event="test_drive_booked", properties={"model": "ID.4"}),
        call("identify", userId="new-2", traits={"name": "钱多", "phone": "13900008888"}),
        call("track", userId="new-2", event="test_drive_booked", properties={"model": "Tiguan L"})]}).status_code == 200
    process(clean_database)
    for consumer in ("journeys.segment_entries", "journeys.event_entries"):
        while events.consume(clean_database, events.subscriptions()[consumer]):
            pass
    session.expire_all()
    assert list(places(session, by_segment.id)) == [audience.customers["li"].id]
    entered = session.scalars(select(Enrolment.profile_id).where(Enrolment.journey_id == by_event.id)).all()
    names = [cdp_service.get_profile(session, tree.system, pid).name for pid in entered]
    assert names == ["许诺"]  # not 钱多, whose test drive was for another model
    assert session.scalar(select(func.count()).select_from(JourneyStep)) == 0  # nobody has passed a node yet


def test_a_wait_for_an_event_goes_on_when_it_arrives_or_when_the_time_is_up(session, clean_database,
                                                                           audience: Audience, client, tree):
    """entry → wait up to 7 days for a showroom visit → visited (exit) | timed out → e-mail → exit. A visit counts
    only once the customer is at the wait (not one received before), and a visit after the time-out changes
    nothing."""
    hq = audience.principal(session, audience.hq_marketer)
    template = email_template(session, hq)
    journey = live_journey(session, hq, {
        "nodes": [{"id": "entry", "type": "entry"},
                  {"id": "visit", "type": "wait_for_event", "event": "showroom_visit", "days": 7,
                   "properties": {"purpose": "test_drive"}},
                  {"id": "visited", "type": "exit"}, {"id": "offer", "type": "send", "template_id": template.id},
                  {"id": "mailed", "type": "exit"}],
        "edges": [{"from": "entry", "to": "visit"}, {"from": "visit", "to": "visited", "branch": "happened"},
                  {"from": "visit", "to": "offer", "branch": "timed_out"}, {"from": "offer", "to": "mailed"}]})
    waits = events.subscriptions()["journeys.event_waits"]
    events.consume(clean_database, waits)  # reads from now on
    _, key = make_source(session, tree.system, "官网", tree.dealer_b.id)
    session.commit()

    def send(*calls: dict[str, Any]) -> None:
        assert client.post("/v1/batch", headers=basic(key), json={"batch": list(calls)}).status_code == 200
        process(clean_database)
        while events.consume(clean_database, waits):
            pass

    send(*(call("identify", userId=f"w-{n}", traits={"name": name, "phone": f"1390000{n}000"})
           for n, name in ((1, "赵一"), (2, "钱二"), (3, "孙三"))),
         # 孙三 visited before the journey reached him: that visit is not the one the wait waits for
         call("track", userId="w-3", event="showroom_visit", properties={"purpose": "test_drive"}))
    people = {n: session.scalar(select(Profile.id).where(Profile.name == name))
              for n, name in ((1, "赵一"), (2, "钱二"), (3, "孙三"))}
    service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(profile_ids=list(people.values())))
    session.commit()
    advance(clean_database, utcnow())
    assert {p: where for p, where in places(session, journey.id).items()} == {
        people[n]: ("visit", "active") for n in (1, 2, 3)}

    send(call("track", userId="w-1", event="showroom_visit", properties={"purpose": "test_drive"}),
         call("track", userId="w-2", event="showroom_visit", properties={"purpose": "service"}),  # not this one
         call("track", userId="w-2", event="test_drive_booked", properties={"purpose": "test_drive"}))
    advance(clean_database, utcnow())
    now = places(session, journey.id)
    assert now[people[1]] == ("visited", "completed")
    assert now[people[2]] == now[people[3]] == ("visit", "active")

    advance(clean_database, utcnow() + timedelta(days=7, minutes=1))
    now = places(session, journey.id)
    assert now[people[2]] == now[people[3]] == ("mailed", "completed")
    send(call("track", userId="w-2", event="showroom_visit", properties={"purpose": "test_drive"}))  # too late
    assert places(session, journey.id)[people[2]] == ("mailed", "completed")
    outcomes = dict(session.execute(select(JourneyStep.profile_id, JourneyStep.outcome)
                                    .where(JourneyStep.journey_id == journey.id, JourneyStep.node == "visit")).all())
    assert outcomes == {people[1]: "branch:happened", people[2]: "branch:timed_out", people[3]: "branch:timed_out"}
    assert session.scalar(select(func.count()).select_from(Message).where(Message.journey_id == journey.id)) == 2
    report = results.report(session, hq, journey.id)
    visit = next(node for node in report.nodes if node.node == "visit")
    assert visit.branches == {"happened": 1, "timed_out": 2} and visit.waiting == 0


def test_a_wait_for_an_event_needs_both_ways_connected(session, clean_database, audience: Audience):
    hq = audience.principal(session, audience.hq_marketer)
    journey = service.create_journey(session, hq, schemas.JourneyCreate(name="半截", definition=schemas.Definition
        .model_validate({"nodes": [{"id": "entry", "type": "entry"},
                                   {"id": "visit", "type": "wait_for_event", "event": "showroom_visit", "hours": 5},
                                   {"id": "out", "type": "exit"}],
                         "edges": [{"from": "entry", "to": "visit"},
                                   {"from": "visit", "to": "out", "branch": "happened"},
                                   {"from": "visit", "to": "out", "branch": "later"}]})))
    found = {(p.field, p.code) for p in service.problems(session, hq, journey)}
    assert found == {("definition.nodes[1]", "unconnected"), ("definition.edges[2].branch", "branch")}
    with pytest.raises(ValueError, match="duration"):
        schemas.WaitForEventNode.model_validate({"id": "w", "type": "wait_for_event", "event": "x"})
