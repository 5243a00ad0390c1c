"""A journey's results: who reached its goal within its days of entering (not before, not after), overall and per
random split group, each against the control group with the interval and the test a statistician would use; the
customer's walks on their 360; and the exit criteria (reaching the goal, leaving a segment)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from kehu.cdp.models import Event, Identity, Profile
from kehu.core import events
from kehu.core.db import utcnow
from kehu.journeys import engine, results, schemas, service
from kehu.journeys.models import Enrolment
from kehu.segments import schemas as segment_schemas
from kehu.segments import service as segment_service
from tests.channels.conftest import Audience
from tests.journeys.test_engine import advance, live_journey, places

AB = {"id": "ab", "type": "random_split", "label": "首触渠道",
      "groups": [{"name": "a", "label": "短信", "percent": 50},
                 {"name": "hold", "label": "不发", "percent": 50, "control": True}]}


def _group(name: str, customers: int, converted: int, control: bool = False) -> schemas.GroupResult:
    return schemas.GroupResult(group=name, label=name, control=control, customers=customers, converted=converted,
                               rate=converted / customers)


def test_a_group_is_compared_with_the_control_group_by_interval_and_test():
    node = schemas.RandomSplitNode.model_validate(AB)
    split = results._compare_groups(node, [_group("a", 1000, 150), _group("hold", 1000, 100, control=True)])
    a = split.groups[0]
    assert a.uplift == pytest.approx(0.05)
    assert (a.uplift_low, a.uplift_high) == (pytest.approx(0.0210, abs=1e-4), pytest.approx(0.0790, abs=1e-4))
    assert a.p_value == pytest.approx(0.00072, abs=5e-5) and a.significant
    assert split.winner == "a" and split.compared_with == "hold"
    # 102 against 100 of a thousand: no winner
    close = results._compare_groups(node, [_group("a", 1000, 102), _group("hold", 1000, 100, control=True)])
    assert close.winner is None and not close.groups[0].significant and close.groups[0].p_value > 0.8


def test_a_handful_of_customers_or_many_comparisons_name_no_winner_too_soon():
    node = schemas.RandomSplitNode.model_validate(AB)
    # 3 of 3 against 0 of 3: p ≈ 0.014, but six customers decide nothing; the interval is not a point at 100 %
    tiny = results._compare_groups(node, [_group("a", 3, 3), _group("hold", 3, 0, control=True)])
    assert tiny.winner is None and tiny.groups[0].uplift_low < 0.5 and tiny.groups[0].uplift_high == 1.0
    # four groups against control, each p ≈ 0.03: one alone would pass, four together do not (Holm: 0.05 / 4)
    many = schemas.RandomSplitNode.model_validate({"id": "m", "type": "random_split", "groups": [
        *({"name": f"g{n}", "percent": 20} for n in range(4)), {"name": "c", "percent": 20, "control": True}]})
    found = results._compare_groups(many, [*(_group(f"g{n}", 1000, 130) for n in range(4)),
                                          _group("c", 1000, 100, control=True)])
    assert all(0.02 < g.p_value < 0.04 for g in found.groups[:4]) and found.winner is None
    # a group nobody reached is left out, and does not stop the best from winning
    empty = schemas.RandomSplitNode.model_validate({"id": "e", "type": "random_split", "groups": [
        {"name": "a", "percent": 50}, {"name": "b", "percent": 50}, {"name": "z", "percent": 0}]})
    best = results._compare_groups(empty, [_group("a", 2000, 300), _group("b", 2000, 200),
                                           schemas.GroupResult(group="z", label="z", control=False, customers=0,
                                                               converted=0, rate=0.0)])
    assert best.winner == "a" and best.groups[2].p_value is None


def test_without_a_control_group_the_best_must_beat_every_other():
    node = schemas.RandomSplitNode.model_validate({"id": "abc", "type": "random_split", "groups": [
        {"name": "a", "percent": 34}, {"name": "b", "percent": 33}, {"name": "c", "percent": 33}]})
    split = results._compare_groups(node, [_group("a", 2000, 300), _group("b", 2000, 200), _group("c", 2000, 210)])
    assert split.compared_with == "a" and split.winner == "a"
    assert split.groups[1].uplift == pytest.approx(-0.05)
    tight = results._compare_groups(node, [_group("a", 2000, 300), _group("b", 2000, 290), _group("c", 2000, 200)])
    assert tight.winner is None  # b is too close to call


def _event(session, profile_id: int, name: str, at) -> None:  # type: ignore[no-untyped-def]
    identity = session.scalar(select(Identity).where(Identity.profile_id == profile_id).limit(1))
    session.add(Event(org_id=identity.org_id, source_id=0, message_id=uuid.uuid4().hex, type="track", event=name,
                      ts=at, received_at=at, identity_id=identity.id, profile_id=profile_id,
                      properties={"model": "ID.4"}))


def test_conversion_counts_the_goal_within_its_days_of_entering(session, clean_database, audience: Audience):
    hq = audience.principal(session, audience.hq_marketer)
    journey = live_journey(session, hq, {
        "goal": {"event": "order_completed", "within_days": 30, "properties": {"model": "ID.4"}},
        "nodes": [{"id": "entry", "type": "entry"}, AB, {"id": "wait", "type": "wait", "days": 1},
                  {"id": "done", "type": "exit"}, {"id": "held", "type": "exit"}],
        "edges": [{"from": "entry", "to": "ab"}, {"from": "ab", "to": "wait", "branch": "a"},
                  {"from": "ab", "to": "held", "branch": "hold"}, {"from": "wait", "to": "done"}]})
    people = audience.customers
    service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(profile_ids=[p.id for p in people.values()]))
    session.commit()
    advance(clean_database, utcnow() + timedelta(seconds=1))
    entered = {e.profile_id: e.entered_at for e in session.scalars(select(Enrolment))}
    _event(session, people["zhang"].id, "order_completed", entered[people["zhang"].id] + timedelta(days=3))
    _event(session, people["li"].id, "order_completed", entered[people["li"].id] - timedelta(days=1))  # before
    _event(session, people["wang"].id, "order_completed", entered[people["wang"].id] + timedelta(days=31))  # late
    _event(session, people["liu"].id, "quote_requested", entered[people["liu"].id] + timedelta(days=1))  # not it
    session.commit()

    found = results.results(session, hq, journey.id)
    assert (found.entered, found.converted) == (5, 1) and found.rate == pytest.approx(0.2)
    [split] = found.splits
    assert split.label == "首触渠道" and split.compared_with == "hold"
    assert sum(g.customers for g in split.groups) == 5 and sum(g.converted for g in split.groups) == 1
    assert {g.group: g.label for g in split.groups} == {"a": "短信", "hold": "不发"}

    # on the customer's 360: the walk, and the steps they took
    [(walk, name, steps)] = results.customer_journeys(session, hq, people["zhang"].id)
    assert name == journey.name and walk.journey_id == journey.id
    assert [step.node for step in steps[:2]] == ["entry", "ab"]
    assert steps[1].outcome in ("branch:a", "branch:hold")
    b = audience.principal(session, audience.b_marketer)  # zhang is dealer A's: dealer B reads none of it
    assert results.customer_journeys(session, b, people["zhang"].id) == []


def test_results_are_read_through_the_api_within_scope(session, clean_database, audience: Audience, client, login):
    hq = audience.principal(session, audience.hq_marketer)
    journey = live_journey(session, hq, {
        "goal": {"event": "order_completed"}, "nodes": [{"id": "entry", "type": "entry"}, AB,
                                                         {"id": "x", "type": "exit"}, {"id": "y", "type": "exit"}],
        "edges": [{"from": "entry", "to": "ab"}, {"from": "ab", "to": "x", "branch": "a"},
                  {"from": "ab", "to": "y", "branch": "hold"}]})
    hq_login = login("hq.mkt@example.com", "correct-horse-1")
    answer = client.get(f"/api/v1/journeys/{journey.id}/results", headers=hq_login)
    assert answer.status_code == 200 and answer.json()["goal"]["within_days"] == 30
    assert [g["customers"] for g in answer.json()["splits"][0]["groups"]] == [0, 0]
    # another dealer's marketer learns nothing of HQ's journey, not even that it exists
    other = client.get(f"/api/v1/journeys/{journey.id}/results", headers=login("b.mkt@example.com", "correct-horse-1"))
    assert other.status_code == 404


def test_customers_leave_on_reaching_the_goal_or_leaving_the_exit_segment(session, clean_database,
                                                                          audience: Audience, tree):
    hq = audience.principal(session, audience.hq_marketer)
    people = audience.customers
    kept = segment_service.create_segment(session, tree.system, segment_schemas.SegmentCreate(
        name="意向客户", kind="static", profile_ids=[p.id for p in people.values()]))
    goals, exits = (events.subscriptions()[name] for name in ("journeys.goal_exits", "journeys.segment_exits"))
    journey = live_journey(session, hq, {
        "goal": {"event": "order_placed", "within_days": 30}, "exit_on_goal": True, "exit_segment_id": kept.id,
        "nodes": [{"id": "entry", "type": "entry"}, {"id": "wait", "type": "wait", "days": 3},
                  {"id": "out", "type": "exit"}],
        "edges": [{"from": "entry", "to": "wait"}, {"from": "wait", "to": "out"}]})
    for consumer in (goals, exits):
        events.consume(clean_database, consumer)  # from now on
    service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(profile_ids=[p.id for p in people.values()]))
    session.commit()
    advance(clean_database, utcnow() + timedelta(seconds=1))
    _event(session, people["zhang"].id, "order_placed", utcnow())  # bought: done
    segment_service.change_members(session, tree.system, kept.id, [people["li"].id], remove=True)  # no longer keen
    session.commit()
    for consumer in (goals, exits):
        while events.consume(clean_database, consumer):
            pass
    where = places(session, journey.id)
    assert where[people["zhang"].id] == ("wait", "completed")
    assert where[people["li"].id] == ("wait", "exited")
    assert where[people["wang"].id] == ("wait", "active")
    reasons = dict(session.execute(select(Enrolment.profile_id, Enrolment.exit_reason)
                                   .where(Enrolment.journey_id == journey.id)).all())
    assert (reasons[people["zhang"].id], reasons[people["li"].id]) == ("goal_reached", "left_segment")


def test_leaving_on_the_goal_needs_a_goal(session, clean_database, audience: Audience):
    hq = audience.principal(session, audience.hq_marketer)
    journey = service.create_journey(session, hq, schemas.JourneyCreate(name="无目标", definition=schemas.Definition
        .model_validate({"exit_on_goal": True, "nodes": [{"id": "entry", "type": "entry"},
                                                          {"id": "out", "type": "exit"}],
                         "edges": [{"from": "entry", "to": "out"}]})))
    assert [(p.field, p.code) for p in service.problems(session, hq, journey)] == [
        ("definition.exit_on_goal", "goal")]


def test_a_leaving_older_than_the_walk_does_not_end_it(session, clean_database, audience: Audience):
    """The exit segment's "left" read after the customer entered again (another consumer, another pace) ends only
    walks begun before it; a goal outside the window ends nothing."""
    hq = audience.principal(session, audience.hq_marketer)
    journey = live_journey(session, hq, {
        "nodes": [{"id": "entry", "type": "entry"}, {"id": "wait", "type": "wait", "days": 3},
                  {"id": "out", "type": "exit"}],
        "edges": [{"from": "entry", "to": "wait"}, {"from": "wait", "to": "out"}]})
    zhang = audience.customers["zhang"].id
    service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(profile_ids=[zhang]))
    session.commit()
    walk = session.scalar(select(Enrolment).where(Enrolment.profile_id == zhang))
    engine._leave(session, journey, {zhang: walk.entered_at - timedelta(minutes=1)}, "exited", "left_segment",
                  utcnow())
    engine._leave(session, journey, {zhang: walk.entered_at + timedelta(days=31)}, "completed", "goal_reached",
                  utcnow(), within=timedelta(days=30))
    session.commit()
    session.expire_all()
    assert session.get(Enrolment, walk.id).state == "active"
    engine._leave(session, journey, {zhang: walk.entered_at + timedelta(days=2)}, "completed", "goal_reached",
                  utcnow(), within=timedelta(days=30))
    session.commit()
    session.expire_all()
    assert (session.get(Enrolment, walk.id).state, session.get(Enrolment, walk.id).exit_reason) == (
        "completed", "goal_reached")


def test_conversion_is_counted_along_each_way_of_a_split(session, clean_database, audience: Audience):
    """Owners one way, the others the other: each way's customers and conversions (observed, not randomised)."""
    people = audience.customers
    for key in ("zhang", "li"):
        session.get_one(Profile, people[key].id).lifecycle_stage = "owner"
    session.commit()
    hq = audience.principal(session, audience.hq_marketer)
    journey = live_journey(session, hq, {
        "goal": {"event": "order_completed", "within_days": 30},
        "nodes": [{"id": "entry", "type": "entry"},
                  {"id": "who", "type": "split", "label": "车主？", "branches": [
                      {"name": "owners", "label": "车主", "condition": {"type": "field", "field": "lifecycle_stage",
                                                                       "op": "eq", "value": "owner"}}]},
                  {"id": "a", "type": "exit"}, {"id": "b", "type": "exit"}],
        "edges": [{"from": "entry", "to": "who"}, {"from": "who", "to": "a", "branch": "owners"},
                  {"from": "who", "to": "b", "branch": "else"}]}, name="分路径")
    service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(profile_ids=[p.id for p in people.values()]))
    session.commit()
    advance(clean_database, utcnow() + timedelta(seconds=1))
    entered = {e.profile_id: e.entered_at for e in session.scalars(select(Enrolment))}
    for key in ("zhang", "wang"):
        _event(session, people[key].id, "order_completed", entered[people[key].id] + timedelta(days=2))
    session.commit()
    [path] = results.results(session, hq, journey.id).paths
    assert (path.node, path.label, path.type) == ("who", "车主？", "split")
    assert [(w.way, w.label, w.customers, w.converted) for w in path.ways] == [
        ("owners", "车主", 2, 1), ("else", "else", 3, 1)]
    assert path.ways[0].rate == pytest.approx(0.5)
    # per dealer, for HQ: dealer A's three (zhang converted), B's wang (converted), C's liu
    units = {u.unit_id: (u.entered, u.converted) for u in results.results(session, hq, journey.id).units}
    tree = audience.tree
    assert units == {tree.dealer_a.id: (3, 1), tree.dealer_b.id: (1, 1), tree.dealer_c.id: (1, 0)}
