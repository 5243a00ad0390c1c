"""The journey nodes that decide when and which way: a wait until a time of day in the organisation's time zone
(across midnight, on weekdays, on a date, over clock changes) and a random split (A/B/n with a hold-out group) whose
groups are a partition in their proportions, the same however often a step is done."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from kehu.core.errors import ValidationFailed
from kehu.journeys import engine, results, schemas, service, timing
from kehu.journeys.models import Enrolment, JourneyStep
from kehu.segments import schemas as segment_schemas
from kehu.segments import tags
from kehu.segments.models import ProfileTag
from kehu.tenancy.models import Organization
from tests.channels.conftest import Audience
from tests.journeys.test_engine import advance, live_journey, places


def until(time: str, now: datetime, timezone: str = "Asia/Shanghai", on: date | None = None,  # type: ignore[no-untyped-def]
          **rules) -> datetime:
    node = schemas.WaitUntilNode.model_validate({"id": "w", "type": "wait_until", "time": time, **rules})
    return timing.wait_until(node, now, timezone, on)


def test_a_wait_until_ten_oclock_is_read_in_the_organisations_time_zone():
    # 23:00 in Shanghai (15:00 UTC): the next 10:00 is tomorrow's, 02:00 UTC
    assert until("10:00", datetime(2026, 12, 4, 15, 0, tzinfo=UTC)) == datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    # 09:00 there: today's, an hour on; at 10:00 exactly: now
    assert until("10:00", datetime(2026, 12, 4, 1, 0, tzinfo=UTC)) == datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
    assert until("10:00", datetime(2026, 12, 4, 2, 0, tzinfo=UTC)) == datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
    # Friday 4 December, weekdays Monday and Wednesday: Monday the 7th
    assert until("10:00", datetime(2026, 12, 4, 1, 0, tzinfo=UTC), weekdays=[1, 3]) == \
        datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    # on a date: that date's 10:00; once it has passed, at once
    now = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
    assert until("10:00", now, date="2026-12-24") == datetime(2026, 12, 24, 2, 0, tzinfo=UTC)
    assert until("10:00", now, date="2026-12-01") == now
    # the same rule in New York: 10:00 there is 15:00 UTC in winter
    assert until("10:00", datetime(2026, 12, 4, 12, 0, tzinfo=UTC), "America/New_York") == \
        datetime(2026, 12, 4, 15, 0, tzinfo=UTC)


def test_a_wait_until_holds_across_the_clock_changes():
    berlin = "Europe/Berlin"
    # 29 March 2026: 02:00 → 03:00. 02:30 does not exist: the moment after the change (01:30 UTC = 03:30 CEST)
    assert until("02:30", datetime(2026, 3, 28, 23, 0, tzinfo=UTC), berlin) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    # 10:00 after the change is 08:00 UTC, the day before it was 09:00 UTC
    assert until("10:00", datetime(2026, 3, 28, 10, 0, tzinfo=UTC), berlin) == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
    # 25 October 2026: 03:00 → 02:00. 02:30 happens twice: the first time (00:30 UTC)
    assert until("02:30", datetime(2026, 10, 24, 23, 0, tzinfo=UTC), berlin) == \
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_a_wait_until_rule_names_weekdays_or_a_date_not_both():
    with pytest.raises(ValueError, match="weekdays"):
        schemas.WaitUntilNode.model_validate({"id": "w", "type": "wait_until", "date": "2026-12-24", "weekdays": [1]})
    with pytest.raises(ValueError):
        schemas.WaitUntilNode.model_validate({"id": "w", "type": "wait_until", "time": "24:00"})


def test_customers_wait_until_the_time_and_go_on_then(session, clean_database, audience: Audience):
    hq = audience.principal(session, audience.hq_marketer)
    session.get(Organization, audience.tree.org.id).timezone = "Europe/Berlin"
    journey = live_journey(session, hq, {
        "nodes": [{"id": "entry", "type": "entry"}, {"id": "morning", "type": "wait_until", "time": "10:00"},
                  {"id": "out", "type": "exit"}],
        "edges": [{"from": "entry", "to": "morning"}, {"from": "morning", "to": "out"}]})
    person = audience.customers["zhang"].id
    service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(profile_ids=[person]))
    session.commit()
    late_evening = datetime(2026, 12, 4, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    enrolled = session.scalar(select(Enrolment).where(Enrolment.journey_id == journey.id))
    enrolled.due_at = late_evening
    session.commit()
    advance(clean_database, late_evening)
    session.expire_all()
    waiting = session.scalar(select(Enrolment).where(Enrolment.journey_id == journey.id))
    assert (waiting.node, waiting.due_at) == ("morning", datetime(2026, 12, 5, 9, 0, tzinfo=UTC))
    advance(clean_database, datetime(2026, 12, 5, 8, 59, tzinfo=UTC))
    assert places(session, journey.id)[person] == ("morning", "active")
    advance(clean_database, datetime(2026, 12, 5, 9, 0, tzinfo=UTC))
    assert places(session, journey.id)[person] == ("out", "completed")


@settings(max_examples=30, deadline=None)
@given(shares=st.lists(st.integers(min_value=0, max_value=100), min_size=2, max_size=6),
       ids=st.lists(st.integers(min_value=1, max_value=10**12), unique=True, max_size=300))
def test_a_random_split_is_a_partition_and_the_same_when_done_again(shares, ids):
    node = schemas.RandomSplitNode.model_validate({"id": "ab", "type": "random_split", "groups": [
        {"name": f"g{n}", "percent": share} for n, share in enumerate(shares)]})
    walks = [(i, i * 3 + 1) for i in ids]
    shared = engine.share_out(7, node, walks)
    taken = [i for group in shared.values() for i in group]
    assert sorted(taken) == sorted(ids)  # everyone exactly once
    assert engine.share_out(7, node, walks) == shared
    if sum(shares):
        assert all(not shared[f"g{n}"] for n, share in enumerate(shares) if share == 0)


def test_a_random_split_keeps_its_proportions_and_its_hold_out_group():
    node = schemas.RandomSplitNode.model_validate({"id": "ab", "type": "random_split", "groups": [
        {"name": "a", "percent": 45}, {"name": "b", "percent": 45}, {"name": "hold", "percent": 10, "control": True}]})
    walks = [(i, 500_000 + i) for i in range(1, 20_001)]
    shared = engine.share_out(42, node, walks)
    shares = {name: len(group) / 20_000 for name, group in shared.items()}
    assert abs(shares["a"] - 0.45) < 0.015 and abs(shares["b"] - 0.45) < 0.015 and abs(shares["hold"] - 0.10) < 0.01
    other = engine.share_out(42, node.model_copy(update={"id": "ab2"}), walks)
    assert other["a"] != shared["a"]  # another split draws afresh
    # the same customers entering again (new enrolments): each in the group they were in
    again = engine.share_out(42, node, [(i + 100_000, profile) for i, profile in walks])
    assert {name: [i - 100_000 for i in group] for name, group in again.items()} == shared


def test_a_random_split_sends_each_customer_one_way_and_counts_each_way(session, clean_database, audience: Audience):
    hq = audience.principal(session, audience.hq_marketer)
    journey = live_journey(session, hq, {
        "nodes": [{"id": "entry", "type": "entry"},
                  {"id": "ab", "type": "random_split", "groups": [{"name": "a", "percent": 50},
                                                                  {"name": "hold", "percent": 50, "control": True}]},
                  {"id": "wait", "type": "wait", "days": 1}, {"id": "out", "type": "exit"},
                  {"id": "held", "type": "exit"}],
        "edges": [{"from": "entry", "to": "ab"}, {"from": "ab", "to": "wait", "branch": "a"},
                  {"from": "ab", "to": "held", "branch": "hold"}, {"from": "wait", "to": "out"}]})
    people = [c.id for c in audience.customers.values()]
    service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(profile_ids=people))
    session.commit()
    advance(clean_database, datetime.now(UTC) + timedelta(seconds=1))
    where = places(session, journey.id)
    assert set(where) == set(people)
    assert {spot for spot in where.values()} <= {("wait", "active"), ("held", "completed")}
    outcomes = session.scalars(select(JourneyStep.outcome).where(JourneyStep.journey_id == journey.id,
                                                                 JourneyStep.node == "ab")).all()
    assert len(outcomes) == len(people) and set(outcomes) <= {"branch:a", "branch:hold"}
    report = results.report(session, hq, journey.id)
    ab = next(node for node in report.nodes if node.node == "ab")
    assert sum(ab.branches.values()) == len(people)


def test_shares_that_do_not_add_up_keep_a_draft_from_going_live(session, clean_database, audience: Audience):
    hq = audience.principal(session, audience.hq_marketer)
    journey = service.create_journey(session, hq, schemas.JourneyCreate(name="AB", definition=schemas.Definition
        .model_validate({"nodes": [{"id": "entry", "type": "entry"},
                                   {"id": "ab", "type": "random_split", "groups": [{"name": "a", "percent": 50},
                                                                                  {"name": "b", "percent": 40}]},
                                   {"id": "out", "type": "exit"}],
                         "edges": [{"from": "entry", "to": "ab"}, {"from": "ab", "to": "out", "branch": "a"},
                                   {"from": "ab", "to": "out", "branch": "b"}]})))
    assert [(p.field, p.code) for p in service.problems(session, hq, journey)] == [
        ("definition.nodes[1].groups", "shares")]


def test_a_new_time_out_keeps_those_whose_event_came_and_a_new_event_starts_over(session, clean_database,
                                                                                 audience: Audience):
    hq = audience.principal(session, audience.hq_marketer)
    waiting = {"id": "visit", "type": "wait_for_event", "event": "showroom_visit", "days": 7}
    drawn = {"nodes": [{"id": "entry", "type": "entry"}, waiting, {"id": "yes", "type": "exit"},
                       {"id": "no", "type": "exit"}],
             "edges": [{"from": "entry", "to": "visit"}, {"from": "visit", "to": "yes", "branch": "happened"},
                       {"from": "visit", "to": "no", "branch": "timed_out"}]}
    journey = live_journey(session, hq, drawn)
    zhang, li = audience.customers["zhang"].id, audience.customers["li"].id
    service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(profile_ids=[zhang, li]))
    session.commit()
    advance(clean_database, datetime.now(UTC) + timedelta(seconds=1))
    came = session.scalar(select(Enrolment).where(Enrolment.profile_id == zhang))
    came.signal, came.due_at = schemas.HAPPENED, datetime.now(UTC)  # as the consumer marks an arrived event
    session.commit()

    def publish(**node) -> dict[int, Enrolment]:  # type: ignore[no-untyped-def]
        service.update_journey(session, hq, journey.id, schemas.JourneyUpdate(definition=schemas.Definition
                               .model_validate({**drawn, "nodes": [drawn["nodes"][0], {**waiting, **node},
                                                                   *drawn["nodes"][2:]]})))
        service.publish_version(session, hq, journey.id, schemas.Publish(move_people=True))
        session.commit()
        session.expire_all()
        return {e.profile_id: e for e in session.scalars(select(Enrolment))}

    now = publish(days=10)  # a longer time-out: 张 still goes on, 李's time-out starts over
    assert now[zhang].signal == schemas.HAPPENED and now[zhang].due_at <= datetime.now(UTC)
    assert now[li].signal is None and now[li].due_at > datetime.now(UTC) + timedelta(days=9)
    now = publish(days=10, event="test_drive_booked")  # another event: the visit no longer counts
    assert now[zhang].signal is None and now[zhang].due_at > datetime.now(UTC) + timedelta(days=9)


def test_a_wait_until_a_profile_date_reads_each_customers_date():
    now = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    rule = {"field": "birthday", "yearly": True}
    # three days before the birthday, this year's still to come: 7 December 10:00 (02:00 UTC)
    assert until("10:00", now, on=date(1990, 12, 10), offset_days=-3, **rule) == datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    # this year's has passed: next year's
    assert until("10:00", now, on=date(1990, 12, 1), **rule) == datetime(2027, 12, 1, 2, 0, tzinfo=UTC)
    # today at 10:00, an hour from now
    assert until("10:00", now, on=date(1985, 12, 4), **rule) == datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
    # 29 February in a year without one: the 28th
    assert until("10:00", now, on=date(1992, 2, 29), **rule) == datetime(2027, 2, 28, 2, 0, tzinfo=UTC)
    # once: a service due on 20 December, a week before; one already past, or none at all: at once
    once = {"field": "attributes.service_due"}
    assert until("10:00", now, on=date(2026, 12, 20), offset_days=-7, **once) == \
        datetime(2026, 12, 13, 2, 0, tzinfo=UTC)
    assert until("10:00", now, on=date(2026, 11, 20), **once) == now
    assert until("10:00", now, on=None, **once) == now
    with pytest.raises(ValueError, match="profile"):
        schemas.WaitUntilNode.model_validate({"id": "w", "type": "wait_until", "field": "birthday",
                                              "weekdays": [1]})


def test_customers_wait_for_their_own_birthday_and_a_masked_reader_is_not_told_it(session, clean_database,
                                                                                   audience: Audience, client, login):
    hq = audience.principal(session, audience.hq_marketer)  # sees personal data masked
    zhang, li = audience.customers["zhang"], audience.customers["li"]
    zhang.birthday = date(1990, 3, 15)
    session.commit()
    journey = live_journey(session, hq, {
        "nodes": [{"id": "entry", "type": "entry"},
                  {"id": "birthday", "type": "wait_until", "field": "birthday", "yearly": True, "time": "09:00",
                   "offset_days": -1},
                  {"id": "out", "type": "exit"}],
        "edges": [{"from": "entry", "to": "birthday"}, {"from": "birthday", "to": "out"}]})
    service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(profile_ids=[zhang.id, li.id]))
    session.commit()
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    session.execute(update(Enrolment).values(due_at=now))
    session.commit()
    advance(clean_database, now)
    session.expire_all()
    walks = {e.profile_id: e for e in session.scalars(select(Enrolment).where(Enrolment.journey_id == journey.id))}
    assert (walks[zhang.id].node, walks[zhang.id].state) == ("birthday", "active")
    assert walks[zhang.id].due_at == datetime(2027, 3, 14, 1, 0, tzinfo=UTC)  # 14 March 09:00 in Shanghai
    assert walks[li.id].state == "completed"  # no birthday on record: on at once
    listed = client.get(f"/api/v1/journeys/{journey.id}/enrolments",
                        headers=login("hq.mkt@example.com", "correct-horse-1")).json()["items"]
    assert [e["due_at"] for e in listed if e["profile_id"] == zhang.id] == [None]


def test_a_wait_until_a_profile_date_needs_a_date_field(session, clean_database, audience: Audience):
    hq = audience.principal(session, audience.hq_marketer)
    journey = service.create_journey(session, hq, schemas.JourneyCreate(name="城市", definition=schemas.Definition
        .model_validate({"nodes": [{"id": "entry", "type": "entry"},
                                   {"id": "w", "type": "wait_until", "field": "city"}, {"id": "out", "type": "exit"}],
                         "edges": [{"from": "entry", "to": "w"}, {"from": "w", "to": "out"}]})))
    assert [(p.field, p.code) for p in service.problems(session, hq, journey)] == [
        ("definition.nodes[1].field", "date_field")]


def test_a_tag_node_puts_its_tag_on_and_takes_it_off_and_a_rule_tag_is_refused(session, clean_database,
                                                                             audience: Audience, tree):
    hq = audience.principal(session, audience.hq_marketer)
    keen = tags.create_tag(session, tree.system, segment_schemas.TagCreate(name="高意向"))
    ruled = tags.create_tag(session, tree.system, segment_schemas.TagCreate(name="名单成员",
                                                                            segment_id=audience.segment_id))
    session.commit()
    people = [audience.customers["zhang"].id, audience.customers["li"].id]
    journey = live_journey(session, hq, {
        "nodes": [{"id": "entry", "type": "entry"}, {"id": "on", "type": "tag", "tag_id": keen.id},
                  {"id": "wait", "type": "wait", "days": 1},
                  {"id": "off", "type": "tag", "tag_id": keen.id, "remove": True}, {"id": "out", "type": "exit"}],
        "edges": [{"from": "entry", "to": "on"}, {"from": "on", "to": "wait"}, {"from": "wait", "to": "off"},
                  {"from": "off", "to": "out"}]})
    service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(profile_ids=people))
    session.commit()

    def tagged() -> dict[int, str]:
        session.expire_all()
        return dict(session.execute(select(ProfileTag.profile_id, ProfileTag.origin)
                                    .where(ProfileTag.tag_id == keen.id)).all())

    advance(clean_database, datetime.now(UTC) + timedelta(seconds=1))
    assert tagged() == {people[0]: "journey", people[1]: "journey"}
    advance(clean_database, datetime.now(UTC) + timedelta(days=1, minutes=1))
    assert tagged() == {}
    assert places(session, journey.id)[people[0]] == ("out", "completed")

    def draft(tag: dict[str, Any]) -> Any:
        return service.create_journey(session, hq, schemas.JourneyCreate(name=f"标签 {len(tag)}", definition=schemas
            .Definition.model_validate({"nodes": [{"id": "entry", "type": "entry"}, {"id": "t", "type": "tag", **tag},
                                                  {"id": "out", "type": "exit"}],
                                        "edges": [{"from": "entry", "to": "t"}, {"from": "t", "to": "out"}]})))

    with pytest.raises(ValidationFailed) as refused:  # a rule's tag is the rule's: refused when saved, named
        draft({"tag_id": ruled.id})
    assert [e.field for e in refused.value.errors] == ["definition.nodes[1].tag_id"]
    assert [(p.field, p.code) for p in service.problems(session, hq, draft({}))] == [
        ("definition.nodes[1].tag_id", "tag")]
