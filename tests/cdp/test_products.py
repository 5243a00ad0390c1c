"""The product catalogue: HQ keeps it (settings.manage), everyone who reads orders reads it, SKUs are unique,
bad prices are clear errors, new SKUs from orders join it, and another organisation never sees it."""

from __future__ import annotations


def test_hq_keeps_the_catalogue_and_dealers_read_it(client, tree, login):
    admin = login("admin@example.com")
    made = client.post("/api/v1/products", headers=admin,
                       json={"sku": "ID4-PRO", "name": "ID.4 Pro", "kind": "vehicle_model", "price": "259800"})
    assert made.status_code == 201, made.text
    assert made.json()["price"] == "259800.00" and made.json()["is_active"] is True
    again = client.post("/api/v1/products", headers=admin, json={"sku": "ID4-PRO", "name": "重复"})
    assert again.status_code == 409
    bad = client.post("/api/v1/products", headers=admin,
                      json={"sku": " ", "name": "", "kind": "rocket", "price": "-1"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"body.sku", "body.name", "body.kind", "body.price"}
    product_id = made.json()["id"]
    emptied = client.patch(f"/api/v1/products/{product_id}", headers=admin, json={"name": None})
    assert emptied.status_code == 422 and emptied.json()["errors"][0]["field"] == "body.name"  # a name stays
    changed = client.patch(f"/api/v1/products/{product_id}", headers=admin,
                           json={"price": "249800.5", "is_active": False})
    assert changed.status_code == 200
    assert (changed.json()["price"], changed.json()["is_active"], changed.json()["name"]) == (
        "249800.50", False, "ID.4 Pro")

    manager = login("a.manager@example.com")
    assert [p["sku"] for p in client.get("/api/v1/products", headers=manager).json()] == ["ID4-PRO"]
    assert client.get("/api/v1/products?active=true", headers=manager).json() == []
    assert client.post("/api/v1/products", headers=manager, json={"sku": "X", "name": "X"}).status_code == 403
    assert client.patch(f"/api/v1/products/{product_id}", headers=manager, json={"name": "Y"}).status_code == 403
    other = login("boss@other.example.com")
    assert client.get("/api/v1/products", headers=other).json() == []
    assert client.patch(f"/api/v1/products/{product_id}", headers=other, json={"name": "Y"}).status_code == 404


def test_skus_first_seen_in_orders_join_the_catalogue(client, tree, login, session):
    from tests.cdp.test_customer_access import create

    profile = create(session, tree.system, name="王五", mobile="13811114444", unit_id=tree.dealer_a.id)
    session.commit()
    admin = login("admin@example.com")
    client.post("/api/v1/orders", headers=admin, json={
        "profile_id": profile.id, "external_id": "SO-1", "lines": [
            {"sku": "MAT-01", "name": "全包围脚垫", "price": "880", "quantity": 1}]})
    catalogue = client.get("/api/v1/products?q=脚垫", headers=admin).json()
    assert [(p["sku"], p["name"]) for p in catalogue] == [("MAT-01", "全包围脚垫")]
