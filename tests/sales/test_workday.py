"""The home page's day (GET /api/v1/home): what a salesperson must do now and how their month goes, their own
only; a dealer manager's salespeople side by side; a region's dealers compared."""

from __future__ import annotations

from datetime import timedelta

from kehu.core.db import utcnow
from tests.sales.conftest import new_lead


def test_a_salesperson_sees_their_waiting_leads_agenda_and_month(sales, client, login):  # type: ignore[no-untyped-def]
    agent, b_sales = login("agent@example.com"), login("b.sales@example.com")
    mine = new_lead(client, agent, "13900014001", city="杭州", model_interest="ID.4")
    theirs = new_lead(client, agent, "13900014002", city="上海")  # dealer A's
    late = client.post("/api/v1/activities", headers=b_sales, json={
        "lead_id": mine["id"], "kind": "task", "subject": "发送报价",
        "due_at": (utcnow() - timedelta(hours=2)).isoformat()})
    assert late.status_code == 201, late.text
    soon = client.post("/api/v1/activities", headers=b_sales, json={
        "lead_id": mine["id"], "kind": "test_drive", "subject": "试驾 ID.4",
        "due_at": (utcnow() + timedelta(minutes=5)).isoformat()})
    assert soon.status_code == 201, soon.text
    day = client.get("/api/v1/home", headers=b_sales)
    assert day.status_code == 200, day.text
    body = day.json()
    assert body["scope_kind"] == "own"
    assert [w["id"] for w in body["waiting"]] == [mine["id"]] and body["waiting_count"] == 1
    assert body["waiting"][0]["model"] == "ID.4" and theirs["id"] not in [w["id"] for w in body["waiting"]]
    assert [a["id"] for a in body["overdue"]] == [late.json()["id"]] and body["overdue_count"] == 1
    if (utcnow() + timedelta(hours=8)).hour < 23 or (utcnow() + timedelta(hours=8)).minute < 50:  # Asia/Shanghai
        assert [a["id"] for a in body["today"]] == [soon.json()["id"]]
    assert [s["key"] for s in body["pipeline"]][:2] == ["lead", "qualified"]
    assert body["month"] == {"won_count": 0, "won": 0.0, "last_count": 0, "last": 0.0}
    assert body["people"] is None and body["units"] is None


def test_a_dealer_manager_sees_each_salesperson_and_a_region_its_dealers(sales, client, login):  # type: ignore[no-untyped-def]
    agent = login("agent@example.com")
    for n in range(3):
        new_lead(client, agent, f"1390001500{n}", city="上海")  # round robin between dealer A's two salespeople
    new_lead(client, agent, "13900015009", city="杭州")
    manager = client.get("/api/v1/home", headers=login("a.manager@example.com")).json()
    assert manager["scope_kind"] == "dealer"
    people = {p["name"]: p for p in manager["people"]}
    assert {"张销售", "赵销售"} <= set(people) and "陈销售" not in people  # dealer B's salesperson is not theirs
    assert people["张销售"]["open_leads"] + people["赵销售"]["open_leads"] == 3
    region = client.get("/api/v1/home", headers=login("east@example.com")).json()
    assert region["scope_kind"] == "region"
    dealers = {u["name"]: u for u in region["units"]}
    assert set(dealers) == {"上海浦东店", "杭州西湖店"}
    assert dealers["上海浦东店"]["open_leads"] == 3 and dealers["杭州西湖店"]["open_leads"] == 1
    hq = client.get("/api/v1/home", headers=login("admin@example.com")).json()
    assert hq["scope_kind"] == "network" and {u["name"] for u in hq["units"]} == {"华东大区", "华北大区"}


def test_a_dealer_managers_month_and_each_salespersons_deals(sales, client, login, session):  # type: ignore[no-untyped-def]
    """Won this month so far against last month to the same point, and each salesperson's open and won deals —
    their own dealer's only."""
    from types import SimpleNamespace

    from sqlalchemy import update

    from kehu.sales.models import Opportunity
    from kehu.sales.workday import _day_bounds

    a_sales, b_sales = login("a.sales@example.com"), login("b.sales@example.com")

    def deal(headers, mobile: str, amount: int, outcome: str | None = None) -> int:  # type: ignore[no-untyped-def]
        customer = client.post("/api/v1/customers", headers=headers, json={"name": "顾客", "mobile": mobile})
        assert customer.status_code == 201, customer.text
        made = client.post("/api/v1/opportunities", headers=headers, json={
            "title": "ID.4 购车", "profile_id": customer.json()["id"], "amount": amount})
        assert made.status_code == 201, made.text
        if outcome:
            closed = client.post(f"/api/v1/opportunities/{made.json()['id']}/close", headers=headers,
                                 json={"outcome": outcome, "reason": "competitor"} if outcome == "lost"
                                 else {"outcome": outcome})
            assert closed.status_code == 200, closed.text
        return made.json()["id"]

    deal(a_sales, "13900016001", 100_000)
    deal(a_sales, "13900016002", 200_000, "won")
    last_month = deal(a_sales, "13900016003", 300_000, "won")
    deal(a_sales, "13900016004", 50_000, "lost")
    deal(b_sales, "13900016005", 700_000, "won")  # dealer B's
    _, _, previous_start, previous_same = _day_bounds(SimpleNamespace(timezone="Asia/Shanghai"), utcnow())
    session.execute(update(Opportunity).where(Opportunity.id == last_month)
                    .values(closed_at=previous_start + (previous_same - previous_start) / 2))
    session.commit()
    manager = client.get("/api/v1/home", headers=login("a.manager@example.com")).json()
    assert manager["month"] == {"won_count": 1, "won": 200_000.0, "last_count": 1, "last": 300_000.0}
    people = {p["name"]: p for p in manager["people"]}
    assert {k: people["张销售"][k] for k in ("open_deals", "pipeline", "won_count", "won")} == {
        "open_deals": 1, "pipeline": 100_000.0, "won_count": 1, "won": 200_000.0}
    assert {k: people["赵销售"][k] for k in ("open_deals", "pipeline", "won_count", "won")} == {
        "open_deals": 0, "pipeline": 0.0, "won_count": 0, "won": 0.0}


def test_a_dealer_managers_day_counts_beyond_the_rows_shown_in_few_statements(sales, client, login, clean_database):  # type: ignore[no-untyped-def]
    """Each list's count comes with its first rows (a window over the same rows), the customers' names of every list
    from one lookup, each salesperson's figures in one statement: under load each statement of the home page waits
    its turn (kehu bench load's sign-in ≤ 2 s)."""
    from sqlalchemy import event

    from kehu.sales.workday import SHOWN

    agent, manager = login("agent@example.com"), login("a.manager@example.com")
    leads = [new_lead(client, agent, f"139000160{n:02d}", city="上海", name=f"客户{n:02d}") for n in range(SHOWN + 3)]
    for lead in leads[:SHOWN + 1]:  # more overdue tasks than the home page lists
        assert client.post("/api/v1/activities", headers=manager, json={
            "lead_id": lead["id"], "kind": "task", "subject": "回访",
            "due_at": (utcnow() - timedelta(hours=1)).isoformat()}).status_code == 201
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    client.get("/api/v1/home", headers=manager)  # the principal and its memo are kept after the first request
    event.listen(clean_database.engine, "before_cursor_execute", count)
    try:
        day = client.get("/api/v1/home", headers=manager)
    finally:
        event.remove(clean_database.engine, "before_cursor_execute", count)
    assert day.status_code == 200, day.text
    body = day.json()
    assert body["waiting_count"] == SHOWN + 3 and len(body["waiting"]) == SHOWN
    assert body["overdue_count"] == SHOWN + 1 and len(body["overdue"]) == SHOWN
    assert all(w["customer"] and w["customer"].startswith("客户") for w in body["waiting"])
    assert all(a["customer"] and a["customer"].startswith("客户") for a in body["overdue"])
    people = {p["name"]: p for p in body["people"]}
    assert people["张销售"]["open_leads"] + people["赵销售"]["open_leads"] == SHOWN + 3
    assert sum(1 for s in statements if "FROM profiles" in s) == 1, statements  # one lookup of names
    assert len(statements) <= 8, statements
