"""Saved segments: members computed by a job, a dynamic refresh records who entered and who left, a static
one keeps its snapshot; scope decides what a segment covers and what a reader sees."""

from __future__ import annotations

from sqlalchemy import select

from kehu.segments.models import SegmentChange, SegmentMember
from tests.cdp.test_imports import run_jobs
from tests.factories.cdp import basic, call, make_source, process
from tests.factories.tenancy import make_user

SHANGHAI = {"type": "field", "field": "city", "op": "eq", "value": "上海"}


def create(client, headers, **body):  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/segments", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def member_names(client, headers, segment_id) -> list[str]:  # type: ignore[no-untyped-def]
    response = client.get(f"/api/v1/segments/{segment_id}/members", headers=headers)
    assert response.status_code == 200, response.text
    return sorted(p["name"] for p in response.json()["items"])


def move_to(client, people, session, who: str, city: str) -> None:  # type: ignore[no-untyped-def]
    """The customer tells dealer A's showroom of a new city (through /v1, as any source would)."""
    _, key = make_source(session, people.system, f"迁移 {who} {city}", people.dealer_a.id)
    session.commit()
    response = client.post("/v1/batch", headers=basic(key), json={"batch": [
        call("identify", userId=who, traits={"city": city})]})
    assert response.status_code == 200


def test_a_dynamic_segment_follows_its_condition(people, client, login, session, clean_database, settings):
    admin = login("admin@example.com")
    made = create(client, admin, name="上海客户", condition=SHANGHAI)
    assert made["status"] == "queued" and made["kind"] == "dynamic"
    run_jobs(clean_database, settings)
    segment = client.get(f"/api/v1/segments/{made['id']}", headers=admin).json()
    assert (segment["status"], segment["member_count"], segment["refreshes"]) == ("ready", 2, 1)
    assert member_names(client, admin, made["id"]) == ["张伟", "李娜"]

    move_to(client, people, session, "ln", "苏州")  # 李娜 moves away, 刘洋 (Beijing) moves to Shanghai
    move_to(client, people, session, "ly", "上海")
    process(clean_database)
    assert client.post(f"/api/v1/segments/{made['id']}/refresh", headers=admin).status_code == 202
    assert client.post(f"/api/v1/segments/{made['id']}/refresh", headers=admin).status_code == 409  # queued
    run_jobs(clean_database, settings)
    assert member_names(client, admin, made["id"]) == ["刘洋", "张伟"]
    changes = client.get(f"/api/v1/segments/{made['id']}/changes", headers=admin).json()["items"]
    by_refresh = sorted((c["refresh"], c["change"]) for c in changes)
    assert by_refresh == [(1, "entered"), (1, "entered"), (2, "entered"), (2, "left")]
    # refreshing with nothing changed adds no change records
    client.post(f"/api/v1/segments/{made['id']}/refresh", headers=admin)
    run_jobs(clean_database, settings)
    session.expire_all()
    assert len(session.scalars(select(SegmentChange).where(SegmentChange.segment_id == made["id"])).all()) == 4

    # 李娜's timeline shows her entering and leaving, among her events and changes, page by page
    li_na = next(c["profile_id"] for c in changes if c["change"] == "left")
    seen, cursor = [], None
    while True:
        page = client.get(f"/api/v1/customers/{li_na}/timeline", headers=admin,
                          params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    memberships = [(i["action"], i["summary"], i["entity_id"]) for i in seen if i["kind"] == "segment"]
    assert memberships == [("left", "上海客户", made["id"]), ("entered", "上海客户", made["id"])]
    assert len({(i["kind"], i["id"]) for i in seen}) == len(seen)  # no item twice across pages
    assert [i["ts"] for i in seen] == sorted((i["ts"] for i in seen), reverse=True)
    everything = client.get(f"/api/v1/customers/{li_na}/timeline", headers=admin, params={"limit": 100}).json()
    assert [(i["kind"], i["id"]) for i in everything["items"]] == [(i["kind"], i["id"]) for i in seen]
    # a call-centre agent (no access to segments) sees the customer's timeline without them
    make_user(session, people.system, people.hq, "call_centre_agent", email="agent@example.com")
    session.commit()
    agent = client.get(f"/api/v1/customers/{li_na}/timeline", headers=login("agent@example.com")).json()
    assert agent["items"] and not [i for i in agent["items"] if i["kind"] == "segment"]


def test_a_static_segment_keeps_its_snapshot_and_hand_picked_members(people, client, login, session,
                                                                    clean_database, settings):
    admin = login("admin@example.com")
    everyone = client.post("/api/v1/segments/preview", headers=admin, json={
        "condition": {"type": "field", "field": "mobile", "op": "is_set"}}).json()["sample"]
    picked = [p["id"] for p in everyone if p["name"] in ("王芳", "陈静")]
    made = create(client, admin, name="展会名单", kind="static", condition=SHANGHAI, profile_ids=picked)
    run_jobs(clean_database, settings)
    assert member_names(client, admin, made["id"]) == ["张伟", "李娜", "王芳", "陈静"]
    move_to(client, people, session, "ln", "苏州")
    process(clean_database)
    assert client.post(f"/api/v1/segments/{made['id']}/refresh", headers=admin).status_code == 409
    assert member_names(client, admin, made["id"]) == ["张伟", "李娜", "王芳", "陈静"]
    only_picked = create(client, admin, name="手选", kind="static", profile_ids=picked)
    assert only_picked["status"] == "ready" and only_picked["member_count"] == 2
    # more picked later, some taken out (recorded as having left); a dynamic segment takes no picks
    zhang = next(p["id"] for p in everyone if p["name"] == "张伟")
    added = client.post(f"/api/v1/segments/{only_picked['id']}/members", headers=admin,
                        json={"profile_ids": [zhang, *picked]})
    assert added.status_code == 200 and added.json() == {"added": 1}
    removed = client.post(f"/api/v1/segments/{only_picked['id']}/members/remove", headers=admin,
                          json={"profile_ids": picked[:1]})
    assert removed.json() == {"removed": 1}
    assert len(member_names(client, admin, only_picked["id"])) == 2
    assert client.get(f"/api/v1/segments/{only_picked['id']}", headers=admin).json()["member_count"] == 2
    changes = client.get(f"/api/v1/segments/{only_picked['id']}/changes", headers=admin).json()["items"]
    assert sorted(c["change"] for c in changes) == ["entered"] * 3 + ["left"]
    assert client.post(f"/api/v1/segments/{only_picked['id']}/members", headers=admin,
                       json={"profile_ids": [987654]}).status_code == 422
    assert client.post(f"/api/v1/segments/{only_picked['id']}/members", headers=login("a.manager@example.com"),
                       json={"profile_ids": [zhang]}).status_code == 403


def test_scope_decides_coverage_and_visibility(people, client, login, session, clean_database, settings):
    admin, dealer = login("admin@example.com"), login("a.manager@example.com")
    everyone = {"type": "field", "field": "mobile", "op": "is_set"}
    group = create(client, admin, name="全部客户", condition=everyone)
    # a dealer manager may read segments but not make them (marketing is HQ's)
    assert client.post("/api/v1/segments", headers=dealer, json={"name": "x", "condition": everyone}
                       ).status_code == 403
    run_jobs(clean_database, settings)
    assert client.get(f"/api/v1/segments/{group['id']}", headers=admin).json()["member_count"] == 5
    # the dealer sees the group-wide segment's members at its own dealer only
    assert member_names(client, dealer, group["id"]) == ["张伟", "李娜"]
    assert client.get("/api/v1/segments/{}/members".format(group["id"]),
                      headers=login("boss@other.example.com")).status_code == 404
    # HQ marketing can make one; a segment made at a dealer unit covers that dealer's customers only
    marketer = client.post("/api/v1/users", headers=admin, json={
        "email": "mkt@example.com", "name": "市场部", "password": "correct-horse-1",
        "unit_id": people.dealer_c.id, "roles": ["hq_marketing"]})
    assert marketer.status_code == 201, marketer.text
    local = create(client, login("mkt@example.com"), name="北京店全部", condition=everyone)
    run_jobs(clean_database, settings)
    assert member_names(client, admin, local["id"]) == ["刘洋", "陈静"]
    rows = session.scalars(select(SegmentMember).where(SegmentMember.segment_id == local["id"])).all()
    assert len(rows) == 2


def test_bad_segments_are_refused_with_reasons(people, client, login):  # type: ignore[no-untyped-def]
    admin = login("admin@example.com")
    create(client, admin, name="上海客户", condition=SHANGHAI)
    duplicate = client.post("/api/v1/segments", headers=admin, json={"name": "上海客户", "condition": SHANGHAI})
    assert duplicate.status_code == 409
    wrong = client.post("/api/v1/segments", headers=admin, json={
        "name": "坏的", "condition": {"type": "field", "field": "colour", "op": "eq", "value": "red"}})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "condition.field"
    empty = client.post("/api/v1/segments", headers=admin, json={"name": "空的"})
    assert empty.status_code == 422
    stranger = client.post("/api/v1/segments", headers=admin, json={
        "name": "别家的", "kind": "static", "profile_ids": [999999]})
    assert stranger.status_code == 422 and stranger.json()["errors"][0]["field"] == "profile_ids"
    listed = client.get("/api/v1/segments", headers=admin).json()["items"]
    assert [s["name"] for s in listed] == ["上海客户"]
    assert client.delete(f"/api/v1/segments/{listed[0]['id']}", headers=admin).status_code == 204
    assert client.get("/api/v1/segments", headers=admin).json()["items"] == []


def test_segments_build_on_segments_and_show_on_the_customer(people, client, login, clean_database, settings):
    admin = login("admin@example.com")
    shanghai = create(client, admin, name="上海客户", condition=SHANGHAI)
    run_jobs(clean_database, settings)
    outside = {"type": "all", "conditions": [{"type": "field", "field": "mobile", "op": "is_set"},
                                             {"type": "segment", "segment_id": shanghai["id"], "op": "not_in"}]}
    others = create(client, admin, name="上海以外", condition=outside)
    run_jobs(clean_database, settings)
    assert member_names(client, admin, others["id"]) == ["刘洋", "王芳", "陈静"]
    inside = client.post("/api/v1/segments/preview", headers=admin, json={
        "condition": {"type": "segment", "segment_id": shanghai["id"]}}).json()
    assert sorted(p["name"] for p in inside["sample"]) == ["张伟", "李娜"]
    unknown = client.post("/api/v1/segments/preview", headers=admin, json={
        "condition": {"type": "segment", "segment_id": 999999}})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["code"] == "unknown_segment"
    # the customer's segments, as the Customer 360 shows them
    zhang = next(p["id"] for p in inside["sample"] if p["name"] == "张伟")
    assert [s["name"] for s in client.get(f"/api/v1/customers/{zhang}/segments", headers=admin).json()] == ["上海客户"]
    assert client.get(f"/api/v1/customers/{zhang}/segments", headers=login("c.sales@example.com")).status_code == 404


def test_a_segment_cannot_be_defined_by_itself(people, client, login, session):  # type: ignore[no-untyped-def]
    import pytest

    from kehu.core.errors import ValidationFailed
    from kehu.segments import schemas
    from kehu.segments.conditions import compile_condition

    made = create(client, login("admin@example.com"), name="上海客户", condition=SHANGHAI)
    itself = schemas.condition_adapter.validate_python({"type": "any", "conditions": [
        SHANGHAI, {"type": "segment", "segment_id": made["id"]}]})
    with pytest.raises(ValidationFailed) as refused:
        compile_condition(session, people.org.id, "Asia/Shanghai", itself, reader=None, segment_id=made["id"])
    assert [(e.field, e.code) for e in refused.value.errors] == [("condition.conditions.1.segment_id", "cycle")]


def test_a_segment_is_edited_and_its_members_follow(people, client, login, clean_database, settings):
    admin = login("admin@example.com")
    shanghai = create(client, admin, name="上海客户", condition=SHANGHAI)
    run_jobs(clean_database, settings)
    beijing = {"type": "field", "field": "city", "op": "eq", "value": "北京"}
    edited = client.patch(f"/api/v1/segments/{shanghai['id']}", headers=admin,
                          json={"name": "北京客户", "description": "改为北京", "condition": beijing})
    assert edited.status_code == 200, edited.text
    assert edited.json()["status"] == "queued" and edited.json()["name"] == "北京客户"
    run_jobs(clean_database, settings)
    assert member_names(client, admin, shanghai["id"]) == ["刘洋", "陈静"]
    changes = client.get(f"/api/v1/segments/{shanghai['id']}/changes", headers=admin).json()["items"]
    assert sorted((c["change"], c["refresh"]) for c in changes) == [("entered", 1)] * 2 + [("entered", 2)] * 2 + \
        [("left", 2)] * 2
    # a rename alone starts no refresh
    renamed = client.patch(f"/api/v1/segments/{shanghai['id']}", headers=admin, json={"name": "京城客户"})
    assert renamed.json()["status"] == "ready" and renamed.json()["refreshes"] == 2

    # A refers to B; B may not be redefined to refer to A (nor, through A, to itself)
    other = create(client, admin, name="非京城", condition={"type": "segment", "segment_id": shanghai["id"],
                                                            "op": "not_in"})
    cycle = client.patch(f"/api/v1/segments/{shanghai['id']}", headers=admin, json={"condition": {
        "type": "all", "conditions": [beijing, {"type": "segment", "segment_id": other["id"], "op": "not_in"}]}})
    assert cycle.status_code == 422, cycle.text
    assert [(e["field"], e["code"]) for e in cycle.json()["errors"]] == [("condition.conditions.1.segment_id",
                                                                          "cycle")]
    in_use = client.delete(f"/api/v1/segments/{shanghai['id']}", headers=admin)
    assert in_use.status_code == 409 and "非京城" in in_use.json()["detail"]
    taken = client.patch(f"/api/v1/segments/{shanghai['id']}", headers=admin, json={"name": "非京城"})
    assert taken.status_code == 409
    bad = client.patch(f"/api/v1/segments/{shanghai['id']}", headers=admin, json={"condition": {
        "type": "field", "field": "nope", "op": "eq", "value": 1}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "condition.field"
    # a dealer manager reads segments but does not change them; another organisation does not see them
    assert client.patch(f"/api/v1/segments/{shanghai['id']}", headers=login("a.manager@example.com"),
                        json={"name": "x"}).status_code == 403
    assert client.patch(f"/api/v1/segments/{shanghai['id']}", headers=login("boss@other.example.com"),
                        json={"name": "x"}).status_code == 404
    # a static segment keeps its condition
    picked = create(client, admin, name="挑选", kind="static", condition=SHANGHAI)
    frozen = client.patch(f"/api/v1/segments/{picked['id']}", headers=admin, json={"condition": beijing})
    assert frozen.status_code == 409


def test_a_segment_exports_its_members_within_the_exporters_scope(people, client, login, clean_database,
                                                                  settings):
    import csv
    import io

    admin = login("admin@example.com")
    everyone = create(client, admin, name="全部客户", condition={"type": "field", "field": "mobile", "op": "is_set"})
    run_jobs(clean_database, settings)

    def exported(headers) -> list[str]:  # type: ignore[no-untyped-def]
        started = client.post(f"/api/v1/segments/{everyone['id']}/exports", headers=headers, json={"format": "csv"})
        assert started.status_code == 202, started.text
        assert started.json()["filters"] == {"segment_id": everyone["id"]}
        run_jobs(clean_database, settings)
        file = client.get(f"/api/v1/exports/{started.json()['id']}/download", headers=headers)
        assert file.status_code == 200, file.text
        rows = list(csv.reader(io.StringIO(file.content.decode("utf-8-sig"))))
        return sorted(row[1] for row in rows[1:])

    assert exported(admin) == ["刘洋", "张伟", "李娜", "王芳", "陈静"]
    assert exported(login("a.manager@example.com")) == ["张伟", "李娜"]  # a dealer exports its own customers
    # a segment of another organisation is nobody's to export
    assert client.post(f"/api/v1/segments/{everyone['id']}/exports", headers=login("boss@other.example.com"),
                       json={"format": "csv"}).status_code == 404
    # the customers' export refuses filters nobody provides
    assert client.post("/api/v1/customers/exports", headers=admin, json={"format": "csv", "colour": "red"}
                       ).status_code == 422


def test_dynamic_segments_are_recomputed_on_schedule(people, client, login, session, clean_database, settings):
    from datetime import timedelta

    from kehu.core.db import utcnow
    from kehu.segments.models import Segment

    admin = login("admin@example.com")
    made = create(client, admin, name="上海客户", condition=SHANGHAI)
    static = create(client, admin, name="上海快照", kind="static", condition=SHANGHAI)
    run_jobs(clean_database, settings)
    run_jobs(clean_database, settings)  # nothing is due yet: nothing runs again
    session.expire_all()
    assert session.get(Segment, made["id"]).refreshes == 1
    move_to(client, people, session, "ly", "上海")
    process(clean_database)
    for segment_id in (made["id"], static["id"]):  # a day and a half later
        session.get(Segment, segment_id).refreshed_at = utcnow() - timedelta(hours=36)
    session.commit()
    run_jobs(clean_database, settings)
    session.expire_all()
    assert session.get(Segment, made["id"]).refreshes == 2
    assert session.get(Segment, static["id"]).refreshes == 1  # a snapshot stays as it was taken
    assert member_names(client, admin, made["id"]) == ["刘洋", "张伟", "李娜"]
    assert member_names(client, admin, static["id"]) == ["张伟", "李娜"]


def test_a_refresh_that_failed_for_good_does_not_block_the_next(people, client, login, session, clean_database,
                                                                 settings):
    from kehu.core.jobs import Job
    from kehu.segments.models import Segment

    admin = login("admin@example.com")
    made = create(client, admin, name="上海客户", condition=SHANGHAI)
    assert client.post(f"/api/v1/segments/{made['id']}/refresh", headers=admin).status_code == 409  # queued
    segment = session.get(Segment, made["id"])
    job = session.get(Job, segment.job_id)
    job.status, job.error = "failed", "worker lost the database"  # as a job that used up its attempts
    segment.status = "refreshing"
    session.commit()
    assert client.post(f"/api/v1/segments/{made['id']}/refresh", headers=admin).status_code == 202
    run_jobs(clean_database, settings)
    assert client.get(f"/api/v1/segments/{made['id']}", headers=admin).json()["status"] == "ready"

    # left waiting on a dead job, the schedule picks it up without anyone asking (once, however many look)
    from kehu.segments.service import enqueue_due_refreshes

    session.expire_all()
    segment = session.get(Segment, made["id"])
    session.get(Job, segment.job_id).status = "failed"
    segment.status = "queued"
    session.commit()
    assert enqueue_due_refreshes(clean_database) is True
    assert enqueue_due_refreshes(clean_database) is False
    run_jobs(clean_database, settings)
    after = client.get(f"/api/v1/segments/{made['id']}", headers=admin).json()
    assert (after["status"], after["refreshes"]) == ("ready", 2)
