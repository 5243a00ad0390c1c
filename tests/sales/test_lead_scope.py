"""Issue 19, item 1: an inquiry is folded into the person's open lead only when the caller may read that
lead; otherwise it becomes the caller's own lead at the caller's unit, and the answer says nothing of the
other dealer's lead. Two dealers may each hold an open lead of the same person."""

from __future__ import annotations

import pytest

LEAD_KEYS = ("id", "unit_id", "owner_id", "note", "status", "model_interest", "inquiries")


@pytest.mark.parametrize("kind,value,again", [("mobile", "13900091000", "+86 139 0009 1000"),
                                               ("email", "Zhou.Jie@example.com", "zhou.jie@EXAMPLE.com")])
def test_a_dealer_inquiry_never_reaches_another_dealers_lead(sales, client, login, kind, value, again):  # type: ignore[no-untyped-def]
    a_sales, b_sales = login("a.sales@example.com"), login("b.sales@example.com")
    b_lead = client.post("/api/v1/leads", headers=b_sales, json={
        kind: value, "name": "周杰", "city": "杭州", "source": "showroom", "model_interest": "ID.4",
        "note": "B店私密备注: 预算30万"})
    assert b_lead.status_code == 201, b_lead.text
    b_lead = b_lead.json()
    assert (b_lead["unit_id"], b_lead["owner_id"]) == (sales.dealer_b.id, sales.b_sales.id)

    a_answer = client.post("/api/v1/leads", headers=a_sales, json={
        kind: again, "source": "showroom", "model_interest": "ID.6", "note": "A店来访"})
    assert a_answer.status_code == 201, a_answer.text
    a_lead = a_answer.json()
    # A's own new lead, at A, for A's consultant, about the same person (the group shares the customer)
    assert a_lead["created"] is True and a_lead["id"] != b_lead["id"]
    assert (a_lead["unit_id"], a_lead["owner_id"]) == (sales.dealer_a.id, sales.a_sales.id)
    assert (a_lead["inquiries"], a_lead["note"], a_lead["model_interest"]) == (1, "A店来访", "ID.6")
    assert a_lead["profile_id"] == b_lead["profile_id"]
    # nothing of B's lead in A's answer
    assert "B店私密备注" not in a_answer.text and "ID.4" not in a_answer.text
    assert a_lead["unit_id"] != sales.dealer_b.id and a_lead["owner_id"] != sales.b_sales.id
    # B's lead as it was
    b_now = client.get(f"/api/v1/leads/{b_lead['id']}", headers=b_sales).json()
    assert {k: b_now[k] for k in LEAD_KEYS} == {k: b_lead[k] for k in LEAD_KEYS}
    assert [h["kind"] for h in client.get(f"/api/v1/leads/{b_lead['id']}/history", headers=b_sales).json()] \
        == ["assigned", "created"]
    # each dealer's next inquiry of this person goes to its own lead
    a_again = client.post("/api/v1/leads", headers=a_sales, json={kind: value, "source": "showroom"}).json()
    assert (a_again["id"], a_again["created"], a_again["inquiries"]) == (a_lead["id"], False, 2)
    b_again = client.post("/api/v1/leads", headers=b_sales, json={kind: value, "source": "showroom"}).json()
    assert (b_again["id"], b_again["created"], b_again["inquiries"]) == (b_lead["id"], False, 2)
    # A's lead and customer views: A's lead only
    assert [lead["id"] for lead in client.get("/api/v1/leads", headers=a_sales).json()["items"]] == [a_lead["id"]]
    listed = client.get(f"/api/v1/customers/{a_lead['profile_id']}/leads", headers=a_sales)
    assert listed.status_code == 200 and [lead["id"] for lead in listed.json()] == [a_lead["id"]]
    # B's manager-free view: B sees B's lead only
    assert [lead["id"] for lead in client.get("/api/v1/leads", headers=b_sales).json()["items"]] == [b_lead["id"]]


def test_a_dealer_takes_up_a_customer_of_another_dealer_through_its_own_lead(sales, client, login):  # type: ignore[no-untyped-def]
    """The claim: A records an inquiry of B's customer, works its own lead with the customer's record (the
    360, conversion to A's deal) without changing B's record or seeing B's lead."""
    a_sales, b_sales = login("a.sales@example.com"), login("b.sales@example.com")
    made = client.post("/api/v1/customers", headers=b_sales, json={"name": "钱女士", "mobile": "13900092000"})
    assert made.status_code == 201, made.text
    customer_id = made.json()["id"]
    b_lead = client.post("/api/v1/leads", headers=b_sales, json={"profile_id": customer_id, "note": "B跟进中"})
    assert b_lead.status_code == 201
    assert client.get(f"/api/v1/customers/{customer_id}", headers=a_sales).status_code == 404  # not yet A's
    a_lead = client.post("/api/v1/leads", headers=a_sales, json={"mobile": "13900092000", "source": "showroom"})
    assert a_lead.status_code == 201 and a_lead.json()["unit_id"] == sales.dealer_a.id
    seen = client.get(f"/api/v1/customers/{customer_id}", headers=a_sales, params={"include": "timeline"})
    assert seen.status_code == 200 and seen.json()["profile"]["unit_id"] == sales.dealer_b.id  # still B's record
    assert "B跟进中" not in seen.text  # B's lead is not on A's timeline
    assert client.patch(f"/api/v1/customers/{customer_id}", headers=a_sales, json={"name": "改名"}).status_code == 403
    found = client.get("/api/v1/leads", headers=a_sales, params={"q": "13900092000"}).json()["items"]
    assert [lead["id"] for lead in found] == [a_lead.json()["id"]]  # A finds its lead by its customer's mobile
    deal = client.post(f"/api/v1/leads/{a_lead.json()['id']}/convert", headers=a_sales, json={})
    assert deal.status_code == 201, deal.text
    assert deal.json()["opportunity"]["unit_id"] == sales.dealer_a.id
    b_now = client.get(f"/api/v1/leads/{b_lead.json()['id']}", headers=b_sales).json()
    assert (b_now["status"], b_now["inquiries"], b_now["note"]) == ("inquiry", 1, "B跟进中")


def test_a_merge_keeps_each_dealers_open_lead(sales, client, login):  # type: ignore[no-untyped-def]
    """Two records of one person, each with an open lead at a different dealer, merged: both leads stay open,
    each its dealer's; an unmerge leaves them as they are."""
    a_sales, b_sales, admin = login("a.sales@example.com"), login("b.sales@example.com"), login("admin@example.com")
    in_a = client.post("/api/v1/leads", headers=a_sales, json={"mobile": "13900093001", "name": "孙先生"}).json()
    in_b = client.post("/api/v1/leads", headers=b_sales, json={"mobile": "13900093002", "name": "孙先生"}).json()
    merged = client.post("/api/v1/customers/merges", headers=admin, json={
        "winner_id": in_b["profile_id"], "loser_id": in_a["profile_id"]})
    assert merged.status_code == 201, merged.text
    a_now = client.get(f"/api/v1/leads/{in_a['id']}", headers=a_sales).json()
    b_now = client.get(f"/api/v1/leads/{in_b['id']}", headers=b_sales).json()
    assert (a_now["status"], a_now["inquiries"], a_now["unit_id"]) == ("inquiry", 1, sales.dealer_a.id)
    assert (b_now["status"], b_now["inquiries"], b_now["unit_id"]) == ("inquiry", 1, sales.dealer_b.id)
    assert client.post(f"/api/v1/customers/merges/{merged.json()['id']}/undo", headers=admin).status_code == 200
    assert client.get(f"/api/v1/leads/{in_a['id']}", headers=a_sales).json()["status"] == "inquiry"
