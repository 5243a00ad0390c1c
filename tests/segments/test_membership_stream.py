"""Who entered and left a segment is a stream other domains read through the one consumer mechanism
(core/events.py), as journeys will: each change once, in order, and a domain event per refresh that changed
anything, with its counts."""

from __future__ import annotations

from sqlalchemy import select

from kehu.core import events
from kehu.core.events import DomainEvent, Subscription
from kehu.segments.manifest import MEMBERS_CHANGED
from kehu.segments.models import SegmentChange
from tests.cdp.test_imports import run_jobs
from tests.factories.cdp import process
from tests.segments.test_saved_segments import SHANGHAI, create, move_to


def test_membership_changes_reach_a_consumer_once_in_order(people, client, login, session, clean_database,
                                                           settings):
    admin = login("admin@example.com")
    made = create(client, admin, name="上海客户", condition=SHANGHAI)
    handed: list[tuple[int, int, str]] = []

    def journey(_session, rows) -> None:  # type: ignore[no-untyped-def]
        handed.extend((row.refresh, row.profile_id, row.change) for row in rows)

    wanted = [SegmentChange.segment_id == made["id"]]
    reader = Subscription("test-journey", frozenset(), journey, from_start=True, stream=SegmentChange,
                          wanted=lambda _s: wanted)
    run_jobs(clean_database, settings)
    while events.consume(clean_database, reader):
        pass
    assert sorted(c for _, _, c in handed) == ["entered", "entered"]

    move_to(client, people, session, "ln", "苏州")
    process(clean_database)
    client.post(f"/api/v1/segments/{made['id']}/refresh", headers=admin)
    run_jobs(clean_database, settings)
    client.post(f"/api/v1/segments/{made['id']}/refresh", headers=admin)  # nothing changed: nothing new
    run_jobs(clean_database, settings)
    while events.consume(clean_database, reader):
        pass
    assert [(refresh, change) for refresh, _, change in handed] == [(1, "entered"), (1, "entered"), (2, "left")]

    session.expire_all()
    published = session.scalars(select(DomainEvent).where(DomainEvent.kind == MEMBERS_CHANGED.name,
                                                          DomainEvent.entity_id == made["id"])
                                .order_by(DomainEvent.id)).all()
    assert [(e.payload["refresh"], e.payload["entered"], e.payload["left"]) for e in published] == [
        (1, 2, 0), (2, 0, 1)]


def test_hand_picked_members_are_changes_too(people, client, login, session, clean_database, settings):
    admin = login("admin@example.com")
    made = create(client, admin, name="挑选", kind="static", condition=SHANGHAI)
    run_jobs(clean_database, settings)
    members = client.get(f"/api/v1/segments/{made['id']}/members", headers=admin).json()["items"]
    picked = client.post(f"/api/v1/segments/{made['id']}/members/remove", headers=admin,
                         json={"profile_ids": [members[0]["id"]]})
    assert picked.status_code == 200, picked.text
    session.expire_all()
    published = session.scalars(select(DomainEvent).where(DomainEvent.kind == MEMBERS_CHANGED.name,
                                                          DomainEvent.entity_id == made["id"])
                                .order_by(DomainEvent.id)).all()
    assert [(e.payload["entered"], e.payload["left"]) for e in published] == [(2, 0), (0, 1)]
