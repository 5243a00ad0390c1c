"""Activities: a call logged on a lead is its first contact, planned tasks make a to-do list (due first,
overdue marked) until done, everything is on the customer's timeline, within the logger's scope."""

from __future__ import annotations

from datetime import timedelta

from kehu.core.db import utcnow
from tests.sales.conftest import new_lead


def test_calls_tasks_and_the_timeline(sales, client, login):  # type: ignore[no-untyped-def]
    agent, b_sales = login("agent@example.com"), login("b.sales@example.com")
    lead = new_lead(client, agent, "13900013001", city="杭州")
    assert lead["owner_id"] == sales.b_sales.id and lead["first_contacted_at"] is None
    call = client.post("/api/v1/activities", headers=b_sales, json={
        "lead_id": lead["id"], "kind": "call", "subject": "首次电话", "outcome": "约周六试驾"})
    assert call.status_code == 201, call.text
    assert call.json()["done_at"] is not None and call.json()["profile_id"] == lead["profile_id"]
    assert client.get(f"/api/v1/leads/{lead['id']}", headers=b_sales).json()["first_contacted_at"] is not None
    # two tasks: one already late, one next week — the late one first, marked
    late = client.post("/api/v1/activities", headers=b_sales, json={
        "lead_id": lead["id"], "kind": "task", "subject": "发送报价",
        "due_at": (utcnow() - timedelta(hours=2)).isoformat()})
    soon = client.post("/api/v1/activities", headers=b_sales, json={
        "lead_id": lead["id"], "kind": "test_drive", "subject": "试驾 ID.4",
        "due_at": (utcnow() + timedelta(days=5)).isoformat()})
    todo = client.get("/api/v1/activities", headers=b_sales, params={"mine_open": True}).json()
    assert [a["id"] for a in todo["items"]] == [late.json()["id"], soon.json()["id"]]
    assert [a["overdue"] for a in todo["items"]] == [True, False]
    done = client.post(f"/api/v1/activities/{late.json()['id']}/done", headers=b_sales, json={"outcome": "已发"})
    assert done.status_code == 200 and done.json()["outcome"] == "已发"
    assert client.post(f"/api/v1/activities/{late.json()['id']}/done", headers=b_sales, json={}).status_code == 409
    assert client.get("/api/v1/activities", headers=b_sales, params={"mine_open": True}).json()["total"] == 1
    of_lead = client.get("/api/v1/activities", headers=b_sales, params={"lead_id": lead["id"]}).json()
    assert of_lead["total"] == 3
    timeline = client.get(f"/api/v1/customers/{lead['profile_id']}/timeline", headers=b_sales).json()["items"]
    assert sorted(i["action"] for i in timeline if i["kind"] == "activity") == ["call", "task", "test_drive"]


def test_activities_stay_within_scope_and_shape(sales, client, login):  # type: ignore[no-untyped-def]
    agent = login("agent@example.com")
    in_b = new_lead(client, agent, "13900013002", city="杭州")
    a_sales = login("a.sales@example.com")
    theirs = client.post("/api/v1/activities", headers=a_sales, json={"lead_id": in_b["id"], "kind": "call"})
    assert theirs.status_code == 422  # another dealer's lead
    assert theirs.json()["errors"][0] == {"field": "lead_id", "code": "out_of_scope",
                                          "message": theirs.json()["errors"][0]["message"]}
    assert client.post("/api/v1/activities", headers=a_sales, json={"kind": "call"}).status_code == 422
    assert client.post("/api/v1/activities", headers=login("b.sales@example.com"), json={
        "lead_id": in_b["id"], "kind": "fax"}).status_code == 422
    assert client.get("/api/v1/activities", headers=a_sales, params={"lead_id": in_b["id"]}).status_code == 404
    assert client.get("/api/v1/activities", headers=login("boss@other.example.com")).json()["total"] == 0
