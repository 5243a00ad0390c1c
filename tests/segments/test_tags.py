"""Tags: by hand on customers one may update, by rule from a segment (kept in step at every refresh), in
conditions, and on the customer."""

from __future__ import annotations

from tests.cdp.test_imports import run_jobs
from tests.factories.cdp import process
from tests.segments.test_saved_segments import SHANGHAI, create, move_to


def ids_by_name(client, headers) -> dict[str, int]:  # type: ignore[no-untyped-def]
    body = client.post("/api/v1/segments/preview", headers=headers, json={
        "condition": {"type": "field", "field": "mobile", "op": "is_set"}}).json()
    return {p["name"]: p["id"] for p in body["sample"]}


def tagged(client, headers, tag_id) -> list[str]:  # type: ignore[no-untyped-def]
    body = client.post("/api/v1/segments/preview", headers=headers, json={
        "condition": {"type": "tag", "tag_id": tag_id}}).json()
    return sorted(p["name"] for p in body["sample"])


def test_tags_by_hand_follow_the_taggers_rights(people, client, login):  # type: ignore[no-untyped-def]
    admin, dealer = login("admin@example.com"), login("a.manager@example.com")
    ids = ids_by_name(client, admin)
    group = client.post("/api/v1/tag-groups", headers=admin, json={"name": "意向"}).json()
    vip = client.post("/api/v1/tags", headers=admin, json={"name": "重要客户", "group_id": group["id"],
                                                           "colour": "orange"}).json()
    assert client.post(f"/api/v1/tags/{vip['id']}/customers", headers=admin,
                       json={"profile_ids": [ids["张伟"], ids["王芳"]]}).json() == {"tagged": 2}
    assert client.post(f"/api/v1/tags/{vip['id']}/customers", headers=admin,
                       json={"profile_ids": [ids["张伟"]]}).json() == {"tagged": 0}  # already there
    assert tagged(client, admin, vip["id"]) == ["张伟", "王芳"]
    # a dealer manager may tag only its own dealer's customers, and sees only them
    refused = client.post(f"/api/v1/tags/{vip['id']}/customers", headers=dealer,
                          json={"profile_ids": [ids["刘洋"]]})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "profile_ids"
    assert tagged(client, dealer, vip["id"]) == ["张伟"]
    tags = {t["name"]: t for t in client.get("/api/v1/tags", headers=dealer).json()}
    assert tags["重要客户"]["customers"] == 1
    on_zhang = client.get(f"/api/v1/customers/{ids['张伟']}/tags", headers=admin).json()
    assert [(t["name"], t["origin"], t["colour"]) for t in on_zhang] == [("重要客户", "manual", "orange")]
    lacks = client.post("/api/v1/segments/preview", headers=admin, json={
        "condition": {"type": "tag", "tag_id": vip["id"], "op": "lacks"}}).json()
    assert lacks["count"] == 3
    assert client.post(f"/api/v1/tags/{vip['id']}/customers/remove", headers=admin,
                       json={"profile_ids": [ids["王芳"]]}).json() == {"untagged": 1}
    assert tagged(client, admin, vip["id"]) == ["张伟"]
    duplicate = client.post("/api/v1/tags", headers=admin, json={"name": "重要客户"})
    assert duplicate.status_code == 409
    unknown = client.post("/api/v1/segments/preview", headers=admin, json={
        "condition": {"type": "tag", "tag_id": 999999}})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["code"] == "unknown_tag"


def test_a_rule_tag_is_on_exactly_its_segments_members(people, client, login, session, clean_database, settings):
    admin = login("admin@example.com")
    shanghai = create(client, admin, name="上海客户", condition=SHANGHAI)
    run_jobs(clean_database, settings)
    rule = client.post("/api/v1/tags", headers=admin, json={"name": "上海", "segment_id": shanghai["id"]}).json()
    assert rule["customers"] == 2 and tagged(client, admin, rule["id"]) == ["张伟", "李娜"]
    ids = ids_by_name(client, admin)
    assert client.post(f"/api/v1/tags/{rule['id']}/customers", headers=admin,
                       json={"profile_ids": [ids["王芳"]]}).status_code == 409  # the segment decides
    move_to(client, people, session, "ln", "苏州")
    move_to(client, people, session, "ly", "上海")
    process(clean_database)
    client.post(f"/api/v1/segments/{shanghai['id']}/refresh", headers=admin)
    run_jobs(clean_database, settings)
    assert tagged(client, admin, rule["id"]) == ["刘洋", "张伟"]
    on_liu = client.get(f"/api/v1/customers/{ids['刘洋']}/tags", headers=admin).json()
    assert [(t["name"], t["origin"]) for t in on_liu] == [("上海", "rule")]
    assert client.delete(f"/api/v1/tags/{rule['id']}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/customers/{ids['刘洋']}/tags", headers=admin).json() == []
