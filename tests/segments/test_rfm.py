"""RFM: scores and classes from orders, kept as rule tags, counted within the reader's scope."""

from __future__ import annotations

from tests.cdp.test_imports import run_jobs
from tests.segments.test_tags import ids_by_name


def test_rfm_scores_classes_and_tags(people, client, login, clean_database, settings):  # type: ignore[no-untyped-def]
    admin, dealer = login("admin@example.com"), login("a.manager@example.com")
    model = client.get("/api/v1/rfm", headers=admin).json()
    assert model["recency_days"] == [30, 90, 180, 365] and model["computed_at"] is None
    assert client.post("/api/v1/rfm/run", headers=admin).status_code == 202
    run_jobs(clean_database, settings)
    counts = client.get("/api/v1/rfm/distribution", headers=admin).json()
    # 张伟: one order of ¥250,000 two days ago (recent, not frequent, valuable); 王芳: three of ¥1,000 long ago
    assert {k: v for k, v in counts["classes"].items() if v} == {"important_development": 1, "general_retention": 1}
    assert counts["scores"]["r"] == {"1": 1, "2": 0, "3": 0, "4": 0, "5": 1}
    ids = ids_by_name(client, admin)
    zhang = client.get(f"/api/v1/customers/{ids['张伟']}/tags", headers=admin).json()
    assert [(t["name"], t["origin"]) for t in zhang] == [("重要发展客户", "rule")]
    # the dealer counts its own customers only
    own = client.get("/api/v1/rfm/distribution", headers=dealer).json()
    assert {k: v for k, v in own["classes"].items() if v} == {"important_development": 1}
    # RFM tags are the rule's: nobody puts them on by hand, and they work in conditions
    tag_id = zhang[0]["id"]
    assert client.post(f"/api/v1/tags/{tag_id}/customers", headers=admin,
                       json={"profile_ids": [ids["陈静"]]}).status_code == 409
    found = client.post("/api/v1/segments/preview", headers=admin, json={
        "condition": {"type": "tag", "tag_id": tag_id}}).json()
    assert [p["name"] for p in found["sample"]] == ["张伟"]
    # new bounds: ¥300,000 for a middling score makes 张伟 ordinary at the next run; bad bounds are refused
    bad = client.put("/api/v1/rfm", headers=admin, json={"monetary": [5, 4, 3, 2]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "monetary"
    assert client.put("/api/v1/rfm", headers=dealer, json={"monetary": [1, 2, 3, 4]}).status_code == 403
    assert client.put("/api/v1/rfm", headers=admin, json={"monetary": [10_000, 300_000, 350_000, 400_000]}
                      ).status_code == 200
    client.post("/api/v1/rfm/run", headers=admin)
    run_jobs(clean_database, settings)
    zhang = client.get(f"/api/v1/customers/{ids['张伟']}/tags", headers=admin).json()
    assert [t["name"] for t in zhang] == ["一般发展客户"]
