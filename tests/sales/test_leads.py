"""Leads end to end through the API: call-centre inquiries routed to dealers and their salespeople in turn,
repeated inquiries folded into one lead, the life cycle's rules, scope, reassignment and write-back to the
customer."""

from __future__ import annotations

import threading
from collections import Counter

from kehu.sales import schemas, service
from kehu.tenancy.service import principal_for_user
from tests.sales.conftest import new_lead


def test_a_call_centre_inquiry_reaches_the_right_dealer_and_salesperson(sales, client, login):  # type: ignore[no-untyped-def]
    agent, admin = login("agent@example.com"), login("admin@example.com")
    made = client.post("/api/v1/leads", headers=agent, json={
        "name": "周杰", "mobile": "13900001111", "city": "杭州", "source": "call_centre",
        "model_interest": "ID.4", "note": "想周末试驾"})
    assert made.status_code == 201, made.text
    lead = made.json()
    assert lead["created"] is True and lead["status"] == "inquiry" and lead["unit_id"] == sales.dealer_b.id
    assert lead["owner_id"] == sales.b_sales.id and lead["first_contact_due_at"] is not None
    # the customer was made and now belongs to dealer B's salesperson, as a lead
    customer = client.get(f"/api/v1/customers/{lead['profile_id']}", headers=admin).json()["profile"]
    assert (customer["unit_id"], customer["owner_id"], customer["lifecycle_stage"]) == \
        (sales.dealer_b.id, sales.b_sales.id, "lead")
    assert customer["attributes"]["lead_status"] == "inquiry"
    # the same person calls again, giving the mobile another way: the same lead, asked twice
    again = client.post("/api/v1/leads", headers=agent, json={"mobile": "+86 139 0000 1111",
                                                               "source": "call_centre", "note": "再次来电"})
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["id"] == lead["id"] and again.json()["inquiries"] == 2
    history = client.get(f"/api/v1/leads/{lead['id']}/history", headers=admin).json()
    assert [h["kind"] for h in history] == ["inquiry", "assigned", "created"]


def test_salespeople_take_new_leads_in_turn(sales, client, login):  # type: ignore[no-untyped-def]
    agent = login("agent@example.com")
    owners = [new_lead(client, agent, f"1390000200{n}", city="上海")["owner_id"] for n in range(6)]
    assert Counter(owners) == {sales.a_sales.id: 3, sales.a_sales2.id: 3}
    assert owners[0::2] == [owners[0]] * 3 and owners[0] != owners[1]  # strictly alternating
    # a city no rule covers waits at HQ, unassigned, in the call centre's queue
    stray = new_lead(client, agent, "13900003000", city="乌鲁木齐")
    assert (stray["unit_id"], stray["owner_id"]) == (sales.hq.id, None)
    unassigned = client.get("/api/v1/leads", headers=login("admin@example.com"), params={"unassigned": True})
    assert [lead["id"] for lead in unassigned.json()["items"]] == [stray["id"]]


def test_the_least_loaded_salesperson_gets_the_next_lead(sales, client, login, session):  # type: ignore[no-untyped-def]
    admin, agent = login("admin@example.com"), login("agent@example.com")
    rules = client.get("/api/v1/routing-rules", headers=admin).json()
    shanghai = next(r for r in rules if r["name"] == "上海")
    assert client.put(f"/api/v1/routing-rules/{shanghai['id']}", headers=admin,
                      json={**{k: v for k, v in shanghai.items() if k != "id"}, "method": "least_loaded"}
                      ).status_code == 200
    first = new_lead(client, agent, "13900004001", city="上海")
    second = new_lead(client, agent, "13900004002", city="上海")
    assert {first["owner_id"], second["owner_id"]} == {sales.a_sales.id, sales.a_sales2.id}
    # the first salesperson closes theirs: they carry less, so they get the next one
    client.post(f"/api/v1/leads/{first['id']}/status", headers=admin,
                json={"status": "disqualified", "reason": "no_budget"})
    third = new_lead(client, agent, "13900004003", city="上海")
    assert third["owner_id"] == first["owner_id"]


def test_a_customer_of_a_dealer_goes_back_to_that_dealer(sales, client, login):  # type: ignore[no-untyped-def]
    c_sales, agent = login("c.sales@example.com"), login("agent@example.com")
    made = client.post("/api/v1/customers", headers=c_sales, json={"name": "老客户", "mobile": "13900005000",
                                                                   "city": "上海"})
    assert made.status_code == 201, made.text
    lead = new_lead(client, agent, "13900005000", city="上海")  # Shanghai, but dealer C's customer
    assert (lead["unit_id"], lead["owner_id"]) == (sales.dealer_c.id, sales.c_sales.id)
    assert lead["profile_id"] == made.json()["id"]


def test_the_life_cycle_allows_what_it_allows(sales, client, login):  # type: ignore[no-untyped-def]
    agent, owner_headers = login("agent@example.com"), login("b.sales@example.com")
    lead = new_lead(client, agent, "13900006000", city="杭州")

    def move(status: str, **extra):  # type: ignore[no-untyped-def]
        return client.post(f"/api/v1/leads/{lead['id']}/status", headers=owner_headers,
                           json={"status": status, **extra})

    assert move("sql").status_code == 200
    wrong = move("inquiry")
    assert wrong.status_code == 409 and wrong.json()["errors"][0]["field"] == "status"
    assert "recycled" in wrong.json()["detail"]
    no_reason = move("disqualified")
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
    assert move("disqualified", reason="shoe_size").status_code == 422
    assert move("converted").json()["errors"][0]["code"] == "use_convert"  # converting opens the opportunity
    converted = client.post(f"/api/v1/leads/{lead['id']}/convert", headers=owner_headers, json={})
    assert converted.status_code == 201, converted.text
    done = client.get(f"/api/v1/leads/{lead['id']}", headers=owner_headers).json()
    assert done["status"] == "converted" and done["first_contacted_at"] is not None
    assert move("recycled").status_code == 409  # converted is final
    customer = client.get(f"/api/v1/customers/{lead['profile_id']}", headers=owner_headers).json()["profile"]
    assert customer["lifecycle_stage"] == "opportunity" and customer["attributes"]["lead_status"] == "converted"
    # marketing sees what sales did: the lead status is a declared field that segments ask about
    found = client.post("/api/v1/segments/preview", headers=login("admin@example.com"), json={"condition": {
        "type": "field", "field": "attributes.lead_status", "op": "eq", "value": "converted"}}).json()
    assert [p["id"] for p in found["sample"]] == [lead["profile_id"]]
    wrong = client.post("/api/v1/segments/preview", headers=login("admin@example.com"), json={"condition": {
        "type": "field", "field": "attributes.lead_status", "op": "eq", "value": "won"}})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["code"] == "not_option"
    # a converted customer asking again starts a new lead
    fresh = new_lead(client, agent, "13900006000")
    assert fresh["created"] is True and fresh["id"] != lead["id"]


def test_dealers_see_and_work_only_their_own_leads(sales, client, login):  # type: ignore[no-untyped-def]
    agent = login("agent@example.com")
    in_a = [new_lead(client, agent, f"1390000700{n}", city="上海") for n in range(2)]
    in_b = new_lead(client, agent, "13900007100", city="杭州")
    a_sales, a_manager, b_sales = login("a.sales@example.com"), login("a.manager@example.com"), \
        login("b.sales@example.com")
    mine = client.get("/api/v1/leads", headers=a_sales).json()
    assert [lead["owner_id"] for lead in mine["items"]] == [sales.a_sales.id] * mine["total"] and mine["total"] == 1
    assert client.get("/api/v1/leads", headers=a_manager).json()["total"] == 2
    assert client.get(f"/api/v1/leads/{in_b['id']}", headers=a_manager).status_code == 404
    assert client.get(f"/api/v1/leads/{in_a[0]['id']}", headers=b_sales).status_code == 404
    assert client.post(f"/api/v1/leads/{in_a[0]['id']}/status", headers=b_sales,
                       json={"status": "mql"}).status_code == 404
    assert client.get("/api/v1/leads", headers=login("boss@other.example.com")).json()["total"] == 0
    # the manager reassigns within the dealer; a salesperson may not reassign; nobody assigns across orgs
    theirs = next(lead for lead in in_a if lead["owner_id"] == sales.a_sales2.id)
    moved = client.post(f"/api/v1/leads/{theirs['id']}/assign", headers=a_manager,
                        json={"owner_id": sales.a_sales.id})
    assert moved.status_code == 200 and moved.json()["owner_id"] == sales.a_sales.id
    assert client.post(f"/api/v1/leads/{theirs['id']}/assign", headers=a_sales,
                       json={"owner_id": sales.a_sales2.id}).status_code == 403
    elsewhere = client.post(f"/api/v1/leads/{theirs['id']}/assign", headers=a_manager,
                            json={"owner_id": sales.b_sales.id})  # another dealer's person
    assert elsewhere.status_code == 422 and elsewhere.json()["errors"][0]["code"] == "out_of_scope"
    bulk = client.post("/api/v1/leads/assign", headers=login("admin@example.com"),
                       json={"lead_ids": [lead["id"] for lead in in_a], "unit_id": sales.dealer_c.id})
    assert bulk.json() == {"assigned": 2}
    assert client.get("/api/v1/leads", headers=login("c.sales@example.com")).json()["total"] == 2
    assert client.post("/api/v1/leads/assign", headers=login("admin@example.com"),
                       json={"lead_ids": [999999], "unit_id": sales.dealer_c.id}).status_code == 422


def test_bad_inquiries_are_refused_with_the_field_at_fault(sales, client, login):  # type: ignore[no-untyped-def]
    agent = login("agent@example.com")
    nobody = client.post("/api/v1/leads", headers=agent, json={"source": "call_centre"})
    assert nobody.status_code == 422
    bad_mobile = client.post("/api/v1/leads", headers=agent, json={"mobile": "12345", "source": "call_centre"})
    assert bad_mobile.status_code == 422 and bad_mobile.json()["errors"][0]["field"] == "mobile"
    wrong_source = client.post("/api/v1/leads", headers=agent, json={"mobile": "13900008000", "source": "fax"})
    assert wrong_source.status_code == 422
    elsewhere = client.post("/api/v1/leads", headers=agent, json={"mobile": "13900008000",
                                                                   "owner_id": sales.other_org_admin.id})
    assert elsewhere.status_code == 422 and elsewhere.json()["errors"][0]["field"] == "owner_id"
    foreign = client.post("/api/v1/leads", headers=login("boss@other.example.com"), json={"profile_id": 1})
    assert foreign.status_code == 422 and foreign.json()["errors"][0]["field"] == "profile_id"
    assert foreign.json()["errors"][0]["code"] == "unknown"  # another organisation's customer is not told apart


def test_a_rule_to_a_region_shares_its_leads_among_the_dealers(sales, client, login):  # type: ignore[no-untyped-def]
    admin, agent = login("admin@example.com"), login("agent@example.com")
    assert client.post("/api/v1/routing-rules", headers=admin, json={
        "name": "浙江其他城市", "cities": ["宁波", "温州"], "unit_id": sales.east.id}).status_code == 201
    placed = [new_lead(client, agent, f"1390001100{n}", city="宁波") for n in range(4)]
    assert Counter(lead["unit_id"] for lead in placed) == {sales.dealer_a.id: 2, sales.dealer_b.id: 2}
    assert all(lead["owner_id"] is not None for lead in placed)  # and a salesperson there


def test_a_merge_folds_two_open_leads_into_one_and_an_unmerge_parts_them(sales, client, login):  # type: ignore[no-untyped-def]
    agent, owner, admin = login("agent@example.com"), login("a.sales@example.com"), login("admin@example.com")
    first = new_lead(client, agent, "13900030001", city="上海", name="孙先生")
    second = new_lead(client, agent, "13900030002", city="上海", name="孙先生")
    second = new_lead(client, agent, "13900030002", city="上海")  # asked twice on his second number
    assert second["inquiries"] == 2 and first["id"] != second["id"]
    client.post(f"/api/v1/leads/{first['id']}/status", headers=owner if first["owner_id"] == sales.a_sales.id
                else login("a.sales2@example.com"), json={"status": "sal"})
    merged = client.post("/api/v1/customers/merges", headers=admin, json={
        "winner_id": second["profile_id"], "loser_id": first["profile_id"]})
    assert merged.status_code == 201, merged.text
    kept = client.get(f"/api/v1/leads/{first['id']}", headers=admin).json()
    folded = client.get(f"/api/v1/leads/{second['id']}", headers=admin).json()
    assert (kept["status"], kept["inquiries"], kept["profile_id"]) == ("sal", 3, second["profile_id"])
    assert (folded["status"], folded["disqualify_reason"]) == ("disqualified", "duplicate")
    open_now = client.get("/api/v1/leads", headers=admin, params={"status": "open", "q": "13900030002"}).json()
    assert [lead["id"] for lead in open_now["items"]] == [first["id"]]
    # another inquiry lands on the one open lead
    assert new_lead(client, agent, "13900030001")["id"] == first["id"]

    undone = client.post(f"/api/v1/customers/merges/{merged.json()['id']}/undo", headers=admin)
    assert undone.status_code == 200, undone.text
    back = client.get(f"/api/v1/leads/{second['id']}", headers=admin).json()
    assert (back["status"], back["profile_id"]) == ("inquiry", second["profile_id"])
    kept = client.get(f"/api/v1/leads/{first['id']}", headers=admin).json()
    assert (kept["profile_id"], kept["inquiries"]) == (first["profile_id"], 2)


def test_two_people_assigning_one_lead_at_once_assign_it_once(sales, client, login, clean_database, monkeypatch):  # type: ignore[no-untyped-def]
    lead = new_lead(client, login("agent@example.com"), "13900031001", city="乌鲁木齐")  # no rule: waits at HQ
    assert lead["owner_id"] is None
    both_placed = threading.Barrier(2, timeout=20)
    real_placement = service.placement

    def placement_then_wait(*args, **kwargs):  # type: ignore[no-untyped-def]
        placed = real_placement(*args, **kwargs)
        both_placed.wait()  # both have read the lead unassigned before either moves it
        return placed

    monkeypatch.setattr(service, "placement", placement_then_wait)
    errors: list[BaseException] = []

    def assign_to_dealer(user_id: int) -> None:
        try:
            with clean_database.unit_of_work() as session:
                principal = principal_for_user(session, user_id)
                service.assign(session, principal, lead["id"], schemas.Assignment(unit_id=sales.dealer_a.id))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=assign_to_dealer, args=(sales.admin.id,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    history = client.get(f"/api/v1/leads/{lead['id']}/history", headers=login("admin@example.com")).json()
    assert [h["kind"] for h in history].count("assigned") == 1
    final = client.get(f"/api/v1/leads/{lead['id']}", headers=login("admin@example.com")).json()
    assert final["unit_id"] == sales.dealer_a.id and final["owner_id"] in (sales.a_sales.id, sales.a_sales2.id)
