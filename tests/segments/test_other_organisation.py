"""Another organisation on the same kehu sees nothing of ours through segments, tags or RFM, and cannot
touch them: every id of ours is "not found" to it, and its own lists, counts and scores are its own."""

from __future__ import annotations

from tests.cdp.test_imports import run_jobs
from tests.segments.test_saved_segments import SHANGHAI, create
from tests.segments.test_tags import ids_by_name


def test_segments_tags_and_rfm_stay_within_their_organisation(people, client, login, clean_database,
                                                               settings):  # type: ignore[no-untyped-def]
    admin, stranger = login("admin@example.com"), login("boss@other.example.com")
    ids = ids_by_name(client, admin)
    segment = create(client, admin, name="上海客户", condition=SHANGHAI)
    group = client.post("/api/v1/tag-groups", headers=admin, json={"name": "意向"}).json()
    tag = client.post("/api/v1/tags", headers=admin, json={"name": "重要客户", "group_id": group["id"]}).json()
    client.post(f"/api/v1/tags/{tag['id']}/customers", headers=admin, json={"profile_ids": [ids["张伟"]]})
    client.post("/api/v1/rfm/run", headers=admin)
    run_jobs(clean_database, settings)

    # nothing of ours is listed or counted for them
    assert client.get("/api/v1/segments", headers=stranger).json()["items"] == []
    assert client.get("/api/v1/tags", headers=stranger).json() == []
    assert client.get("/api/v1/tag-groups", headers=stranger).json() == []
    assert {k: v for k, v in client.get("/api/v1/rfm/distribution", headers=stranger).json()["classes"].items()
            if v} == {}
    assert client.post("/api/v1/segments/preview", headers=stranger, json={"condition": SHANGHAI}
                       ).json()["count"] == 0
    # our ids are unknown to them, whether read, used in a condition or acted upon
    for path in (f"/api/v1/segments/{segment['id']}", f"/api/v1/segments/{segment['id']}/members",
                 f"/api/v1/customers/{ids['张伟']}/tags", f"/api/v1/customers/{ids['张伟']}/segments"):
        assert client.get(path, headers=stranger).status_code == 404, path
    for rule in ({"type": "segment", "segment_id": segment["id"]}, {"type": "tag", "tag_id": tag["id"]}):
        refused = client.post("/api/v1/segments/preview", headers=stranger, json={"condition": rule})
        assert refused.status_code == 422 and refused.json()["errors"][0]["code"].startswith("unknown_"), rule
    assert client.post(f"/api/v1/tags/{tag['id']}/customers", headers=stranger,
                       json={"profile_ids": [ids["张伟"]]}).status_code == 404
    assert client.delete(f"/api/v1/tags/{tag['id']}", headers=stranger).status_code == 404
    assert client.delete(f"/api/v1/segments/{segment['id']}", headers=stranger).status_code == 404
    assert client.post(f"/api/v1/segments/{segment['id']}/exports", headers=stranger,
                       json={"format": "csv"}).status_code == 404
    # a name of ours is free for them, their RFM bounds are their own
    assert client.post("/api/v1/tags", headers=stranger, json={"name": "重要客户"}).status_code == 201
    assert client.put("/api/v1/rfm", headers=stranger, json={"recency_days": [7, 14, 28, 56]}).status_code == 200
    assert client.get("/api/v1/rfm", headers=admin).json()["recency_days"] == [30, 90, 180, 365]
    # and ours are intact
    assert {t["name"] for t in client.get(f"/api/v1/customers/{ids['张伟']}/tags", headers=admin).json()} == {
        "重要客户", "重要发展客户"}
    assert client.get(f"/api/v1/segments/{segment['id']}", headers=admin).json()["member_count"] == 2
