"""Journeys on the campaign calendar: those running over the range, the days they start and stop, the runs their
timed triggers will make, a draft's planned run; a dealer sees its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kehu.core.db import utcnow
from kehu.journeys import schemas, service
from kehu.journeys.calendar import calendar
from tests.channels.conftest import Audience
from tests.journeys.test_engine import live_journey
from tests.journeys.test_timed_triggers import WALK


def test_the_calendar_shows_running_journeys_their_runs_and_a_drafts_planned_day(session, clean_database,  # type: ignore[no-untyped-def]
                                                                                 audience: Audience, client, login):
    a_marketer = audience.principal(session, audience.a_marketer)
    daily = live_journey(session, a_marketer, WALK, name="手动旅程")
    hq = audience.principal(session, audience.hq_marketer)
    scheduled = live_journey(session, hq, {**WALK, "trigger": {"type": "schedule", "segment_id": audience.segment_id,
                                                               "time": "10:00", "weekdays": [1, 3]}}, name="每周两次")
    in_a_week = (utcnow() + timedelta(days=7)).date()
    service.create_journey(session, hq, schemas.JourneyCreate(name="圣诞名单", definition=schemas.Definition
        .model_validate({**WALK, "trigger": {"type": "schedule", "segment_id": audience.segment_id,
                                             "time": "09:30", "date": in_a_week.isoformat()}})))
    stopped = live_journey(session, hq, WALK, name="已停")
    service.stop(session, hq, stopped.id)
    session.commit()
    start = utcnow() - timedelta(days=1)
    end = start + timedelta(days=15)
    items = calendar(session, hq, start=start, end=end)
    kinds = {(i.name, i.kind) for i in items}
    assert {("手动旅程", "running"), ("手动旅程", "started"), ("每周两次", "running"), ("已停", "stopped"),
            ("圣诞名单", "planned")} <= kinds
    runs = [i.at for i in items if i.journey_id == scheduled.id and i.kind == "run"]
    assert 4 <= len(runs) <= 5 and all(at.astimezone(UTC).hour == 2 for at in runs)  # 10:00 in Shanghai
    assert all(start <= at < end for at in runs)
    planned = next(i.at for i in items if i.kind == "planned")
    assert planned == datetime(in_a_week.year, in_a_week.month, in_a_week.day, 1, 30, tzinfo=UTC)
    # dealer B's marketer sees neither dealer A's journey nor HQ's
    b_marketer = audience.principal(session, audience.b_marketer)
    assert calendar(session, b_marketer, start=start, end=end) == []
    # the API: the range is checked
    headers = login("a.mkt@example.com")
    answer = client.get("/api/v1/journeys/calendar", headers=headers,
                        params={"start": start.isoformat(), "end": end.isoformat()})
    assert answer.status_code == 200 and {i["name"] for i in answer.json()} == {"手动旅程"}
    assert daily.id == answer.json()[0]["journey_id"]
    too_long = client.get("/api/v1/journeys/calendar", headers=headers,
                          params={"start": start.isoformat(), "end": (start + timedelta(days=120)).isoformat()})
    assert too_long.status_code == 422
