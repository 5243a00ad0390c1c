"""Triggers the clock sets off: a schedule enrols a segment's members at a time of day (once, or on weekdays), a
date trigger the customers whose profile date it is (a birthday each year, days before or after); runs missed
while the workers were down are made up once. And a sales happening (a lead's status) as an event trigger."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from kehu.cdp.happenings import HAPPENINGS_CONSUMER
from kehu.cdp.models import Profile
from kehu.core import events
from kehu.journeys import engine, schemas, service
from kehu.journeys.models import Enrolment, Journey
from kehu.journeys.timing import dates_due, next_entry
from kehu.sales import schemas as sales_schemas
from kehu.sales import service as sales_service
from tests.channels.conftest import Audience
from tests.journeys.test_engine import live_journey

SHANGHAI = "Asia/Shanghai"
WALK = {"nodes": [{"id": "entry", "type": "entry"}, {"id": "wait", "type": "wait", "days": 30},
                  {"id": "out", "type": "exit"}],
        "edges": [{"from": "entry", "to": "wait"}, {"from": "wait", "to": "out"}]}


def trigger(**values: object) -> schemas.Trigger:
    return schemas.Trigger.model_validate(values)


def test_a_schedule_runs_at_its_time_in_the_organisations_zone_on_its_days():
    daily = trigger(type="schedule", segment_id=1, time="10:00")
    nine_local = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)  # Saturday 09:00 in Shanghai
    assert next_entry(daily, nine_local, SHANGHAI) == datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    assert next_entry(daily, datetime(2026, 12, 5, 2, 0, tzinfo=UTC), SHANGHAI) == \
        datetime(2026, 12, 6, 2, 0, tzinfo=UTC)  # strictly after the run it just made
    mondays = trigger(type="schedule", segment_id=1, time="10:00", weekdays=[1])
    assert next_entry(mondays, nine_local, SHANGHAI) == datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    once = trigger(type="schedule", segment_id=1, time="10:00", date="2026-12-05")
    assert next_entry(once, nine_local, SHANGHAI) == datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    assert next_entry(once, datetime(2026, 12, 5, 2, 0, tzinfo=UTC), SHANGHAI) is None  # it ran
    assert next_entry(trigger(type="date", field="birthday", time="08:30"), nine_local, SHANGHAI) == \
        datetime(2026, 12, 6, 0, 30, tzinfo=UTC)  # every day
    assert next_entry(trigger(type="manual"), nine_local, SHANGHAI) is None


@pytest.mark.parametrize(("values", "says"), [
    ({"type": "schedule"}, "segment_id"),
    ({"type": "schedule", "segment_id": 1, "date": "2026-12-24", "weekdays": [1]}, "not both"),
    ({"type": "date"}, "date field"),
    ({"type": "date", "field": "birthday", "weekdays": [1]}, "every day"),
    ({"type": "event", "event": "x", "time": "10:00"}, "no time"),
    ({"type": "manual", "field": "birthday"}, "no profile date"),
    ({"type": "schedule", "segment_id": 1, "time": "25:00"}, "pattern"),
])
def test_a_timed_trigger_says_what_it_lacks_or_has_too_much_of(values, says):
    with pytest.raises(ValidationError, match=says):
        schemas.Trigger.model_validate(values)


def test_other_triggers_are_stored_as_they_were():
    assert trigger(type="event", event="test_drive_booked").model_dump(mode="json", exclude_none=True) == {
        "type": "event", "event": "test_drive_booked", "properties": {}}


def _enrolled(session, journey_id: int) -> set[int]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return set(session.scalars(select(Enrolment.profile_id).where(Enrolment.journey_id == journey_id)))


def test_a_schedule_enrols_the_segments_members_at_its_time_and_then_waits_for_the_next(  # type: ignore[no-untyped-def]
        session, clean_database, audience: Audience):
    hq = audience.principal(session, audience.hq_marketer)
    journey = live_journey(session, hq, {**WALK, "trigger": {"type": "schedule", "segment_id": audience.segment_id,
                                                             "time": "10:00"}}, name="每日名单")
    first = session.get_one(Journey, journey.id).next_entry_at
    assert first is not None and first > datetime.now(UTC)
    assert not engine.timed_entries(clean_database, now=first - timedelta(seconds=1))  # not yet
    assert _enrolled(session, journey.id) == set()
    assert engine.timed_entries(clean_database, now=first)
    assert _enrolled(session, journey.id) == {c.id for c in audience.customers.values()}
    session.expire_all()
    assert session.get_one(Journey, journey.id).next_entry_at == first + timedelta(days=1)
    assert not engine.timed_entries(clean_database, now=first + timedelta(hours=1))  # nothing more today
    # the next day: everyone is still inside (once at a time), so nobody enters twice
    assert engine.timed_entries(clean_database, now=first + timedelta(days=1))
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Enrolment).where(Enrolment.journey_id == journey.id)) \
        == len(audience.customers)


def test_a_schedule_on_a_day_gone_by_cannot_go_live(session, clean_database, audience: Audience):  # type: ignore[no-untyped-def]
    hq = audience.principal(session, audience.hq_marketer)
    draft = service.create_journey(session, hq, schemas.JourneyCreate(name="过期", definition=schemas.Definition
        .model_validate({**WALK, "trigger": {"type": "schedule", "segment_id": audience.segment_id,
                                             "date": "2020-01-01"}})))
    assert [(p.field, p.code) for p in service.problems(session, hq, draft)] == [("definition.trigger.date", "past")]


def test_a_birthday_trigger_enrols_those_whose_birthday_is_tomorrow_and_makes_up_missed_days(  # type: ignore[no-untyped-def]
        session, clean_database, audience: Audience, tree):
    """Each day at 09:00 Shanghai, customers whose birthday is the next day (offset -1). 29 February is the 28th's
    in years without one; the days the workers were down are made up when they come back."""
    birthdays = {"zhang": date(1990, 3, 1), "li": date(1988, 2, 29), "zhao": date(1975, 3, 2),
                 "wang": date(1990, 3, 1), "liu": None}
    for key, day in birthdays.items():
        session.get_one(Profile, audience.customers[key].id).birthday = day
    session.commit()
    marketer = audience.principal(session, audience.a_marketer)  # dealer A's: 王芳 at dealer B never enters
    journey = live_journey(session, marketer, {**WALK, "trigger": {"type": "date", "field": "birthday",
                                                                   "offset_days": -1, "time": "09:00"}}, name="生日前")
    customers = audience.customers
    # 2027-02-27 09:00 Shanghai (no 29 February in 2027): tomorrow is the 28th, the day li's birthday falls on
    stored = session.get_one(Journey, journey.id)
    stored.next_entry_at = datetime(2027, 2, 27, 1, 0, tzinfo=UTC)
    session.commit()
    assert engine.timed_entries(clean_database, now=datetime(2027, 2, 27, 1, 0, tzinfo=UTC))
    assert _enrolled(session, journey.id) == {customers["li"].id}
    # the workers were down on 28 February: on 1 March they make up that day (zhang's 1 March) and today (zhao's)
    assert engine.timed_entries(clean_database, now=datetime(2027, 3, 1, 1, 5, tzinfo=UTC))
    assert _enrolled(session, journey.id) == {customers[key].id for key in ("li", "zhang", "zhao")}
    session.expire_all()
    assert session.get_one(Journey, journey.id).next_entry_at == datetime(2027, 3, 2, 1, 0, tzinfo=UTC)


def test_a_date_trigger_needs_a_date_field(session, clean_database, audience: Audience):  # type: ignore[no-untyped-def]
    hq = audience.principal(session, audience.hq_marketer)
    draft = service.create_journey(session, hq, schemas.JourneyCreate(name="城市", definition=schemas.Definition
        .model_validate({**WALK, "trigger": {"type": "date", "field": "city"}})))
    assert [(p.field, p.code) for p in service.problems(session, hq, draft)] == [
        ("definition.trigger.field", "date_field")]


def test_a_leads_status_change_enrols_through_an_event_trigger(session, clean_database, audience: Audience, tree):  # type: ignore[no-untyped-def]
    """A lead qualified as sales-ready is the customer's event ``lead_status_changed`` (to_status sql): an event
    trigger with that property value enrols them, and a change to another status does not."""
    manager = tree.principal(session, tree.a_manager)
    zhang, li = audience.customers["zhang"], audience.customers["li"]
    leads = {c.id: sales_service.create_lead(session, manager, sales_schemas.LeadCreate(profile_id=c.id))[0]
             for c in (zhang, li)}
    session.commit()
    hq = audience.principal(session, audience.hq_marketer)
    journey = live_journey(session, hq, {**WALK, "trigger": {"type": "event", "event": "lead_status_changed",
                                                             "properties": {"to_status": "sql"}}}, name="商机跟进")
    entries = events.subscriptions()["journeys.event_entries"]
    events.consume(clean_database, entries)  # reads from now on
    sales_service.change_status(session, manager, leads[zhang.id].id, sales_schemas.StatusChange(status="sql"))
    sales_service.change_status(session, manager, leads[li.id].id, sales_schemas.StatusChange(status="mql"))
    session.commit()
    while events.consume(clean_database, events.subscriptions()[HAPPENINGS_CONSUMER]):
        pass
    while events.consume(clean_database, entries):
        pass
    assert _enrolled(session, journey.id) == {zhang.id}


def test_a_late_date_run_covers_the_days_whose_time_has_come_not_today_before_its_time():
    """Workers back at 09:00 for a 10:00 trigger whose run of yesterday was missed: yesterday's customers now,
    today's at 10:00 (once, not twice)."""
    birthday = trigger(type="date", field="birthday", time="10:00")
    yesterday_run = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
    assert dates_due(birthday, yesterday_run, datetime(2026, 12, 5, 1, 0, tzinfo=UTC), SHANGHAI) == (
        date(2026, 12, 4), date(2026, 12, 4))
    assert dates_due(birthday, yesterday_run, datetime(2026, 12, 5, 2, 0, tzinfo=UTC), SHANGHAI) == (
        date(2026, 12, 4), date(2026, 12, 5))
    assert next_entry(birthday, datetime(2026, 12, 5, 1, 0, tzinfo=UTC), SHANGHAI) == \
        datetime(2026, 12, 5, 2, 0, tzinfo=UTC)  # today's run, at its time


def test_publishing_the_same_trigger_again_keeps_a_run_that_is_due(session, clean_database, audience: Audience):  # type: ignore[no-untyped-def]
    hq = audience.principal(session, audience.hq_marketer)
    journey = live_journey(session, hq, {**WALK, "trigger": {"type": "schedule", "segment_id": audience.segment_id,
                                                             "time": "10:00"}}, name="重新发布")
    due = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)  # due long ago, not made yet (the workers were down)
    session.get_one(Journey, journey.id).next_entry_at = due
    session.commit()
    service.publish_version(session, hq, journey.id, schemas.Publish())
    session.commit()
    assert session.get_one(Journey, journey.id).next_entry_at == due
