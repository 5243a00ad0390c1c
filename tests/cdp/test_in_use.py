"""Issue 19, item 3: a mobile, e-mail or VIN in use elsewhere in the group answers 409 ``in_use`` "already in
use" naming the holder only to a caller who may read them, and points at the legitimate way to take the
person up (record an inquiry); a full mobile in a search finds only customers in the caller's scope."""

from __future__ import annotations

import pytest

from kehu.core.i18n import t


def _customer(client, headers, **body):  # type: ignore[no-untyped-def]
    made = client.post("/api/v1/customers", headers=headers, json=body)
    assert made.status_code == 201, made.text
    return made.json()["id"]


def _refused_blind(response, field: str, hidden_id: int) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["errors"][0]["field"] == field and body["errors"][0]["code"] == "in_use"
    assert "existing_id" not in body and str(hidden_id) not in body["detail"]
    assert str(hidden_id) not in " ".join(e["message"] for e in body["errors"])


@pytest.mark.parametrize("field,value", [("mobile", "13900094000"), ("email", "qian@example.com")])
def test_a_value_of_another_dealers_customer_is_in_use_without_naming_them(tree, client, login, field, value):  # type: ignore[no-untyped-def]
    a_sales, b_sales, admin = login("a.sales@example.com"), login("b.sales@example.com"), login("admin@example.com")
    theirs = _customer(client, b_sales, name="钱女士", **{field: value})
    created = client.post("/api/v1/customers", headers=a_sales, json={"name": "钱女士", field: value})
    _refused_blind(created, field, theirs)
    assert created.json()["hint"] == t("customers.in_use_hint", "zh")  # record an inquiry instead
    mine = _customer(client, a_sales, name="别人")
    updated = client.patch(f"/api/v1/customers/{mine}", headers=a_sales, json={field: value})
    _refused_blind(updated, field, theirs)
    assert updated.json()["hint"] == t("customers.in_use_hint", "zh")
    # a reader of the holder is told who it is (and may merge)
    seen = client.post("/api/v1/customers", headers=admin, json={"name": "钱女士", field: value})
    assert seen.status_code == 409 and seen.json()["existing_id"] == theirs
    # taking the person up: an inquiry makes A's own lead, through which A now sees the customer
    lead = client.post("/api/v1/leads", headers=a_sales, json={field: value, "source": "showroom"})
    assert lead.status_code == 201 and lead.json()["profile_id"] == theirs
    assert client.get(f"/api/v1/customers/{theirs}", headers=a_sales).status_code == 200
    again = client.post("/api/v1/customers", headers=a_sales, json={"name": "钱女士", field: value})
    assert again.status_code == 409 and again.json()["existing_id"] == theirs


def test_a_full_mobile_search_finds_only_customers_in_scope(tree, client, login):  # type: ignore[no-untyped-def]
    a_sales, b_sales = login("a.sales@example.com"), login("b.sales@example.com")
    theirs = _customer(client, b_sales, name="孙先生", mobile="13900095000")
    for q in ("13900095000", "+86 139 0009 5000", "5000", "孙先生"):
        assert client.get("/api/v1/customers", headers=a_sales, params={"q": q}).json()["items"] == [], q
        found = client.get("/api/v1/customers", headers=b_sales, params={"q": q}).json()["items"]
        assert [p["id"] for p in found] == [theirs], q


def test_a_vin_of_another_dealers_customer_is_neither_moved_nor_confirmed(tree, client, login):  # type: ignore[no-untyped-def]
    a_sales, b_sales, admin = login("a.sales@example.com"), login("b.sales@example.com"), login("admin@example.com")
    theirs = _customer(client, b_sales, name="周先生", mobile="13900096000")
    vin = "LSVAU2180N2183456"
    assert client.post(f"/api/v1/customers/{theirs}/vehicles", headers=b_sales,
                       json={"vin": vin, "model": "ID.4"}).status_code == 201
    mine = _customer(client, a_sales, name="吴先生", mobile="13900096001")
    moved = client.post(f"/api/v1/customers/{mine}/vehicles", headers=a_sales, json={"vin": vin, "model": "ID.4"})
    _refused_blind(moved, "vin", theirs)
    assert moved.json()["hint"] == t("vehicles.in_use_hint", "zh")
    vehicles = client.get(f"/api/v1/customers/{theirs}", headers=admin, params={"include": "vehicles"}).json()
    assert [v["vin"] for v in vehicles["vehicles"]] == [vin]  # still B's customer's car
    # a resale between customers the caller sees still moves the car
    other_mine = _customer(client, b_sales, name="冯先生", mobile="13900096002")
    resold = client.post(f"/api/v1/customers/{other_mine}/vehicles", headers=b_sales, json={"vin": vin})
    assert resold.status_code == 201, resold.text
