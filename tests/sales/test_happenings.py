"""What happens to a customer in sales (a lead qualified or disqualified, a deal won or lost) joins the customer's
own events, once, through the one consumer of domain events: a segment finds "won a deal over 200,000" as it
finds "booked a test drive", and the Customer 360's timeline still shows the lead's history once, not twice."""

from __future__ import annotations

from sqlalchemy import select

from kehu.cdp.happenings import HAPPENING
from kehu.cdp.models import Event
from kehu.core import events
from tests.sales.conftest import new_lead
from tests.sales.test_opportunities import customer, open_deal


def preview(client, headers, condition) -> list[str]:  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/segments/preview", headers=headers, json={"condition": condition})
    assert response.status_code == 200, response.text
    return sorted(p["name"] for p in response.json()["sample"])


def test_lead_and_deal_happenings_are_the_customers_events(sales, client, login, session, clean_database):
    admin, agent = login("admin@example.com"), login("agent@example.com")
    lead = new_lead(client, agent, "13900007001", name="钱进", city="上海")
    other = new_lead(client, agent, "13900007002", name="孙退", city="上海")
    assert client.post(f"/api/v1/leads/{lead['id']}/status", headers=admin, json={"status": "mql"}).status_code == 200
    assert client.post(f"/api/v1/leads/{other['id']}/status", headers=admin,
                       json={"status": "disqualified", "reason": "no_budget"}).status_code == 200
    buyer = customer(client, admin, "13900007003", name="周赢")
    deal = open_deal(client, admin, buyer, amount="250000")
    won = client.post(f"/api/v1/opportunities/{deal['id']}/close", headers=admin, json={"outcome": "won"})
    assert won.status_code == 200, won.text

    qualified = {"type": "event", "event": "lead_status_changed",
                 "where": [{"property": "to_status", "op": "eq", "value": "mql"}]}
    assert preview(client, admin, qualified) == []  # not before the consumer has read them (the worker's step)
    while events.consume_all(clean_database):
        pass
    assert preview(client, admin, qualified) == ["钱进"]
    assert preview(client, admin, {"type": "event", "event": "lead_status_changed", "where": [
        {"property": "to_status", "op": "eq", "value": "disqualified"}]}) == ["孙退"]
    big_wins = {"type": "event", "event": "opportunity_won", "where": [{"property": "amount", "op": "gte",
                                                                         "value": 200000}]}
    assert preview(client, admin, big_wins) == ["周赢"]

    # once each, however often the consumer runs; kehu's own type and no source, the deal's id in the properties
    while events.consume_all(clean_database):
        pass
    session.expire_all()
    mine = session.scalars(select(Event).where(Event.type == HAPPENING).order_by(Event.id)).all()
    assert [(e.event, e.properties.get("to_status")) for e in mine] == [
        ("lead_status_changed", "mql"), ("lead_status_changed", "disqualified"), ("opportunity_won", None)]
    assert mine[2].properties["opportunity_id"] == deal["id"] and mine[2].source_id == 0

    # the lead's history is on the timeline once (its own stream), not again as an event
    timeline = client.get(f"/api/v1/customers/{lead['profile_id']}/timeline", headers=admin,
                          params={"limit": 100}).json()["items"]
    assert not [i for i in timeline if i["kind"] == "event" and i.get("event") == "lead_status_changed"]
    assert [i for i in timeline if i["kind"] == "lead"]


def test_a_dealer_finds_only_its_own_customers_happenings(sales, client, login, clean_database):
    admin, agent = login("admin@example.com"), login("agent@example.com")
    in_a = new_lead(client, agent, "13900007011", name="上海客", city="上海")
    in_b = new_lead(client, agent, "13900007012", name="杭州客", city="杭州")
    for lead in (in_a, in_b):
        assert client.post(f"/api/v1/leads/{lead['id']}/status", headers=admin,
                           json={"status": "mql"}).status_code == 200
    while events.consume_all(clean_database):
        pass
    changed = {"type": "event", "event": "lead_status_changed"}
    assert preview(client, admin, changed) == ["上海客", "杭州客"]
    assert preview(client, login("a.manager@example.com"), changed) == ["上海客"]
