"""Lead scoring: points from behaviour (with decay) and from conditions, computed for every customer by a
job, copied onto open leads, inquiries past the threshold promoted to MQL, each lead's score explained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.cdp.test_imports import run_jobs
from tests.factories.cdp import basic, call, make_source, process
from tests.sales.conftest import new_lead

NOW = datetime.now(UTC)


def ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def test_scores_come_from_behaviour_and_conditions(sales, client, login, session, clean_database, settings):  # type: ignore[no-untyped-def]
    admin, agent = login("admin@example.com"), login("agent@example.com")
    _, key = make_source(session, sales.system, "官网", sales.hq.id)
    session.commit()
    # 钱多: three recent model-page views and a test drive booking; 钱少: one view long ago
    batch = [call("identify", userId="qd", traits={"name": "钱多", "phone": "13900012001", "city": "上海"}),
             *[call("track", userId="qd", event="model_viewed", timestamp=ago(d)) for d in (1, 2, 3)],
             call("track", userId="qd", event="test_drive_booked", timestamp=ago(2)),
             call("identify", userId="qs", traits={"name": "钱少", "phone": "13900012002", "city": "上海"}),
             call("track", userId="qs", event="model_viewed", timestamp=ago(40))]
    assert client.post("/v1/batch", headers=basic(key), json={"batch": batch}).status_code == 200
    process(clean_database)
    rich, poor = new_lead(client, agent, "13900012001"), new_lead(client, agent, "13900012002")

    rules = [
        {"name": "浏览车型", "event": "model_viewed", "points": 10, "half_life_days": 30, "max_points": 25},
        {"name": "预约试驾", "event": "test_drive_booked", "points": 40},
        {"name": "上海客户", "kind": "condition", "points": 5,
         "condition": {"type": "field", "field": "city", "op": "eq", "value": "上海"}},
    ]
    for rule in rules:
        response = client.post("/api/v1/score-rules", headers=admin, json=rule)
        assert response.status_code == 201, response.text
    assert client.put("/api/v1/scoring", headers=admin, json={"mql_threshold": 60}).status_code == 200
    assert client.post("/api/v1/scoring/run", headers=admin).status_code == 202
    run_jobs(clean_database, settings)

    # 钱多: views capped at 25, booking 40, Shanghai 5 = 70 → MQL; 钱少: one view 40 days old (half) + 5 = 10
    rich_now = client.get(f"/api/v1/leads/{rich['id']}", headers=admin).json()
    poor_now = client.get(f"/api/v1/leads/{poor['id']}", headers=admin).json()
    assert (rich_now["score"], rich_now["status"]) == (70, "mql")
    assert (poor_now["score"], poor_now["status"]) == (10, "inquiry")
    explained = client.get(f"/api/v1/leads/{rich['id']}/score", headers=admin).json()
    assert explained["score"] == 70
    assert [(p["rule"], p["points"]) for p in explained["now"]] == [("浏览车型", 25), ("预约试驾", 40), ("上海客户", 5)]
    history = client.get(f"/api/v1/leads/{rich['id']}/history", headers=admin).json()
    assert (history[0]["kind"], history[0]["to_status"], history[0]["reason"]) == ("status", "mql", "score 70")
    # computing again changes nothing
    client.post("/api/v1/scoring/run", headers=admin)
    run_jobs(clean_database, settings)
    assert len(client.get(f"/api/v1/leads/{rich['id']}/history", headers=admin).json()) == len(history)


def test_score_rules_are_checked_and_guarded(sales, client, login):  # type: ignore[no-untyped-def]
    admin = login("admin@example.com")
    no_event = client.post("/api/v1/score-rules", headers=admin, json={"name": "x", "points": 5})
    assert no_event.status_code == 422
    bad_condition = client.post("/api/v1/score-rules", headers=admin, json={
        "name": "x", "kind": "condition", "points": 5,
        "condition": {"type": "field", "field": "shoe_size", "op": "eq", "value": 42}})
    assert bad_condition.status_code == 422 and bad_condition.json()["errors"][0]["field"] == "condition.field"
    assert client.post("/api/v1/score-rules", headers=login("a.manager@example.com"), json={
        "name": "x", "event": "y", "points": 5}).status_code == 403
    assert client.put("/api/v1/scoring", headers=admin, json={"mql_threshold": 0}).status_code == 422
    assert client.get("/api/v1/score-rules", headers=login("boss@other.example.com")).json() == []


def test_settings_rows_are_removed_by_their_organisation_only(sales, client, login):  # type: ignore[no-untyped-def]
    admin, stranger = login("admin@example.com"), login("boss@other.example.com")
    score = client.post("/api/v1/score-rules", headers=admin, json={"name": "试驾", "event": "x", "points": 5}).json()
    lead_rule = client.put("/api/v1/lead-rules", headers=admin, json={"event": "quote_requested"}).json()
    routing = client.get("/api/v1/routing-rules", headers=admin).json()[0]
    for path in (f"/api/v1/score-rules/{score['id']}", f"/api/v1/lead-rules/{lead_rule['id']}",
                 f"/api/v1/routing-rules/{routing['id']}"):
        assert client.delete(path, headers=stranger).status_code in (403, 404), path
        assert client.delete(path, headers=login("a.manager@example.com")).status_code == 403, path
        assert client.delete(path, headers=admin).status_code == 204, path
        assert client.delete(path, headers=admin).status_code == 404, path
    assert client.get("/api/v1/score-rules", headers=admin).json() == []
    assert client.get("/api/v1/lead-rules", headers=admin).json() == []
    assert len(client.get("/api/v1/routing-rules", headers=admin).json()) == 1
