"""Staff turnover through the API: reassign runs as an audited job; jobs are listed, scoped and retried."""

from __future__ import annotations

from kehu.app import make_worker
from kehu.core import jobs


def test_reassign_runs_as_a_job_deactivates_the_leaver_and_is_audited(client, tree, login, clean_database, settings):
    admin = login("admin@example.com")
    response = client.post("/api/v1/reassignments", headers=admin, json={
        "from_user_id": tree.a_sales.id, "to_user_id": tree.a_sales2.id, "deactivate_from_user": True})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.json()["status"] == "queued"
    assert make_worker(clean_database, settings).run_once()
    job = client.get(f"/api/v1/jobs/{job_id}", headers=admin).json()
    assert job["status"] == "succeeded" and job["progress"] == 100
    assert client.get(f"/api/v1/users/{tree.a_sales.id}", headers=admin).json()["is_active"] is False
    actions = [e["action"] for e in client.get(f"/api/v1/audit?entity=users&entity_id={tree.a_sales.id}",
                                                   headers=admin).json()["items"]]
    assert "reassign.requested" in actions and "reassign" in actions


def test_reassign_refuses_wrong_role_other_dealers_and_self(client, tree, login):
    sales = login("a.sales@example.com")
    body = {"from_user_id": tree.a_sales.id, "to_user_id": tree.a_sales2.id}
    assert client.post("/api/v1/reassignments", headers=sales, json=body).status_code == 403
    manager = login("a.manager@example.com")
    other = {"from_user_id": tree.b_sales.id, "to_user_id": tree.a_sales2.id}
    refused = client.post("/api/v1/reassignments", headers=manager, json=other)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "from_user_id"
    assert refused.json()["errors"][0]["code"] == "out_of_scope"
    same = client.post("/api/v1/reassignments", headers=manager,
                       json={"from_user_id": tree.a_sales.id, "to_user_id": tree.a_sales.id})
    assert same.status_code == 422 and same.json()["errors"][0]["field"] == "to_user_id"


def test_jobs_are_scoped_and_failed_ones_can_be_retried(client, tree, login, session):
    failed = jobs.enqueue(session, kind="test.missing", org_id=tree.org.id, unit_id=tree.dealer_b.id,
                          created_by_id=tree.b_sales.id)
    failed.status, failed.error = "failed", "boom"
    session.commit()
    a_manager = login("a.manager@example.com")
    assert client.get(f"/api/v1/jobs/{failed.id}", headers=a_manager).status_code == 404
    assert failed.id not in {j["id"] for j in client.get("/api/v1/jobs", headers=a_manager).json()["items"]}
    admin = login("admin@example.com")
    listed = client.get("/api/v1/jobs?status=failed", headers=admin).json()["items"]
    assert [j["id"] for j in listed] == [failed.id]
    retried = client.post(f"/api/v1/jobs/{failed.id}/retry", headers=admin)
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    again = client.post(f"/api/v1/jobs/{failed.id}/retry", headers=admin)
    assert again.status_code == 409
    assert client.get("/api/v1/jobs?status=exploded", headers=admin).status_code == 422
