"""What happens to a customer in sales (a lead qualified or disqualified, a deal won or lost) joins the customer's
own events, once, through the one consumer of domain events: a segment finds "won a deal over 200,000" as it
finds "booked a test drive", and the Customer 360's timeline still shows the lead's history once, not twice."""

from __future__ import annotations

from sqlalchemy import select

from kehu.cdp.models import HAPPENING, Event
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


def test_another_dealers_happening_on_a_shared_customer_counts_only_for_that_dealer(sales, client, login,
                                                                                    clean_database):
    """One person, a customer of dealer A, inquires at dealer B too: B disqualifying its lead is B's business.
    Dealer A's segments do not find the person by it (nor does the 360's list of events show it); once A's own
    lead moves, A's do."""
    admin = login("admin@example.com")
    person = client.post("/api/v1/customers", headers=admin, json={
        "name": "两边客", "mobile": "13900007021", "unit_id": sales.dealer_a.id})
    assert person.status_code == 201, person.text
    profile_id = person.json()["id"]
    at_a = new_lead(client, login("a.sales@example.com"), "13900007021")
    b_sales = login("b.sales@example.com")
    at_b = new_lead(client, b_sales, "13900007021")
    assert at_a["id"] != at_b["id"] and at_a["profile_id"] == at_b["profile_id"] == profile_id
    assert client.post(f"/api/v1/leads/{at_b['id']}/status", headers=b_sales,
                       json={"status": "disqualified", "reason": "bought_elsewhere"}).status_code == 200
    while events.consume_all(clean_database):
        pass
    changed = {"type": "event", "event": "lead_status_changed"}
    a_manager = login("a.manager@example.com")
    assert preview(client, admin, changed) == ["两边客"]
    assert preview(client, a_manager, changed) == []
    seen = client.get(f"/api/v1/customers/{profile_id}", headers=a_manager, params={"include": "events"})
    assert seen.status_code == 200, seen.text
    assert "events" in seen.json()
    assert not [e for e in seen.json()["events"] if e.get("event") == "lead_status_changed"]
    assert client.post(f"/api/v1/leads/{at_a['id']}/status", headers=admin, json={"status": "mql"}).status_code == 200
    while events.consume_all(clean_database):
        pass
    assert preview(client, a_manager, changed) == ["两边客"]


def test_a_happening_follows_a_merge_made_before_it_was_read(sales, client, login, clean_database):
    """The lead moved, then its customer was merged into another record before the worker read the event: the
    customer's event lands on the record kept, where segments look, not on the merged-away one."""
    admin = login("admin@example.com")
    lead = new_lead(client, login("agent@example.com"), "13900007031", name="合并前", city="上海")
    assert client.post(f"/api/v1/leads/{lead['id']}/status", headers=admin, json={"status": "mql"}).status_code == 200
    kept = customer(client, admin, "13900007032", name="合并后")
    merged = client.post("/api/v1/customers/merges", headers=admin,
                         json={"winner_id": kept, "loser_id": lead["profile_id"]})
    assert merged.status_code == 201, merged.text
    while events.consume_all(clean_database):
        pass
    assert preview(client, admin, {"type": "event", "event": "lead_status_changed"}) == ["合并后"]


def test_scores_and_deals_won_at_once_are_happenings_too(sales, client, login, session, clean_database):
    """A deal entered as already won (a sale recorded after the fact) is a win like any other."""
    admin = login("admin@example.com")
    buyer = customer(client, admin, "13900007041", name="补录")
    open_deal(client, admin, buyer, amount="180000", stage_key="delivery")
    while events.consume_all(clean_database):
        pass
    assert preview(client, admin, {"type": "event", "event": "opportunity_won"}) == ["补录"]
