"""Conditions that turn with time alone ("no test drive in the last 5 days", "last order more than 3 days ago")
are asked again as time passes, for the customers near their boundaries only, without waiting for the daily
refresh — which then finds nothing to correct."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from kehu.segments import schemas, service
from kehu.segments.conditions import follows_time, time_crossings
from kehu.segments.models import Segment, SegmentChange
from tests.cdp.test_imports import run_jobs
from tests.segments.conftest import NOW
from tests.segments.test_saved_segments import SHANGHAI, create, member_names

RECENT_TEST_DRIVE = {"type": "event", "event": "test_drive_booked", "op": "did", "window": {"within_days": 5}}


def _changes(session, segment_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(SegmentChange.change).where(SegmentChange.segment_id == segment_id)
                                .order_by(SegmentChange.id)))


def test_a_customer_leaves_when_their_last_test_drive_grows_old(people, client, login, session, clean_database,
                                                                settings):
    admin = login("admin@example.com")
    made = create(client, admin, name="近5天试驾", condition=RECENT_TEST_DRIVE)
    run_jobs(clean_database, settings)
    assert member_names(client, admin, made["id"]) == ["刘洋", "张伟"]  # test drives 0.5 and 3 days ago

    # nothing is due a few seconds later: followed at the refresh
    assert service.follow_time_passing(clean_database) is False
    later = NOW + timedelta(days=2, hours=12)  # 张伟's test drive is now 5½ days old, 刘洋's 3 days
    assert service.follow_time_passing(clean_database, now=later) is True
    assert member_names(client, admin, made["id"]) == ["刘洋"]
    assert _changes(session, made["id"])[-1] == "left"  # on the stream journeys' "left the segment" reads
    assert service.follow_time_passing(clean_database, now=later) is False  # followed up to then: nothing more

    segment = session.get(Segment, made["id"])
    assert segment is not None and segment.member_count == 1
    assert service.refresh_members(session, segment, now=later) == (0, 0)  # the safety net finds nothing


def test_nobody_in_the_last_days_enters_as_time_passes(people, client, login, session, clean_database, settings):
    admin = login("admin@example.com")
    idle = {"type": "all", "conditions": [
        {"type": "orders", "measure": "last_ordered_at", "op": "more_than_days_ago", "value": 3},
        {"type": "not", "condition": RECENT_TEST_DRIVE}]}
    made = create(client, admin, name="久未下单", condition=idle)
    run_jobs(clean_database, settings)
    assert member_names(client, admin, made["id"]) == ["王芳"]  # 张伟 ordered 2 days ago and test-drove 3 days ago

    service.follow_time_passing(clean_database, now=NOW + timedelta(days=1, hours=6))
    assert member_names(client, admin, made["id"]) == ["王芳"]  # his order is old enough, his test drive is not
    service.follow_time_passing(clean_database, now=NOW + timedelta(days=2, hours=6))
    assert member_names(client, admin, made["id"]) == ["张伟", "王芳"]
    assert _changes(session, made["id"])[-1] == "entered"
    segment = session.get(Segment, made["id"])
    assert segment is not None
    assert service.refresh_members(session, segment, now=NOW + timedelta(days=2, hours=6)) == (0, 0)


def test_a_segment_that_does_not_count_days_is_not_followed(people, client, login, session, clean_database,
                                                            settings):
    admin = login("admin@example.com")
    made = create(client, admin, name="上海客户", condition=SHANGHAI)
    run_jobs(clean_database, settings)
    session.expire_all()
    segment = session.get(Segment, made["id"])
    assert segment is not None and segment.time_followed_at is None
    assert service.follow_time_passing(clean_database, now=NOW + timedelta(days=30)) is False


def test_a_day_field_turns_at_midnight_in_the_organisations_zone(people, session):
    condition = schemas.condition_adapter.validate_python(
        {"type": "field", "field": "birthday", "op": "more_than_days_ago", "value": 10})
    assert follows_time(condition.model_dump(mode="json", by_alias=True))
    shanghai = ZoneInfo("Asia/Shanghai")

    def crossing(since: datetime, now: datetime):  # type: ignore[no-untyped-def]
        return time_crossings(session, people.system.org_id, "Asia/Shanghai", condition, since=since, now=now)

    assert crossing(datetime(2026, 12, 5, 9, 0, tzinfo=shanghai), datetime(2026, 12, 5, 23, 59, tzinfo=shanghai)) \
        is None  # the same day there: nobody's answer turned
    # 23:59 → 00:01 in Shanghai (15:59 → 16:01 UTC, the same UTC day): the day turned
    assert crossing(datetime(2026, 12, 5, 23, 59, tzinfo=shanghai), datetime(2026, 12, 6, 0, 1, tzinfo=shanghai)) \
        is not None
    assert not follows_time({"type": "field", "field": "birthday", "op": "before", "value": "2000-01-01"})
    assert follows_time({"type": "any", "conditions": [SHANGHAI, {"type": "not", "condition": RECENT_TEST_DRIVE}]})
