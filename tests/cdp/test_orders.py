"""Orders from Segment e-commerce calls and the API, products by SKU, vehicles by VIN; scope and merges."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from kehu.cdp import schemas, service
from kehu.cdp.models import Order, OrderLine, Product, Profile, Vehicle
from tests.factories.cdp import basic, call, process


def send(client, key, *calls):  # type: ignore[no-untyped-def]
    response = client.post("/v1/batch", headers=basic(key), json={"batch": list(calls)})
    assert response.status_code == 200 and not response.json()["rejected"], response.text


def count(session, model) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def test_order_completed_creates_the_order_lines_and_products_once(client, dealer_source, session,
                                                                    clean_database, login):
    _, key = dealer_source
    completed = call("track", userId="u1", event="Order Completed", timestamp="2026-04-01T02:00:00Z",
                     properties={"order_id": "SO-2026-0001", "total": 219900, "currency": "cny", "products": [
                         {"sku": "TIGUAN-L-330", "name": "Tiguan L 330TSI", "price": 209900, "quantity": 1},
                         {"sku": "MAT-01", "name": "脚垫", "price": "500", "quantity": 2}]})
    send(client, key, completed)
    send(client, key, completed)  # replayed
    send(client, key, call("track", userId="u1", event="Order Completed",
                           properties={"order_id": "SO-2026-0002", "products": [
                               {"sku": "MAT-01", "name": "脚垫", "price": 500, "quantity": 3}]}))
    process(clean_database)
    assert count(session, Order) == 2 and count(session, OrderLine) == 3 and count(session, Product) == 2
    first = session.scalars(select(Order).where(Order.external_id == "SO-2026-0001")).one()
    assert (first.total, first.currency, first.status) == (Decimal("219900.00"), "CNY", "placed")
    second = session.scalars(select(Order).where(Order.external_id == "SO-2026-0002")).one()
    assert second.total == Decimal("1500.00")  # no total given: the sum of its lines
    send(client, key, call("track", userId="u1", event="vehicle_delivered", timestamp="2026-04-20T02:00:00Z",
                           properties={"order_id": "SO-2026-0001", "vin": "lsvaa4182e2123456", "model": "Tiguan L"}))
    send(client, key, call("track", userId="u1", event="Order Cancelled", properties={"order_id": "SO-2026-0002"}))
    process(clean_database)
    session.expire_all()
    assert {o.external_id: o.status for o in session.scalars(select(Order))} == {
        "SO-2026-0001": "delivered", "SO-2026-0002": "cancelled"}
    profile = session.scalars(select(Profile)).one()
    view = client.get(f"/api/v1/customers/{profile.id}?include=orders,vehicles",
                      headers=login("admin@example.com")).json()
    assert [o["external_id"] for o in view["orders"]] == ["SO-2026-0002", "SO-2026-0001"]
    assert view["orders"][1]["lines"][1] == {"sku": "MAT-01", "name": "脚垫", "quantity": 2, "unit_price": "500.00"}
    assert view["vehicles"][0]["vin"] == "LSVAA4182E2123456"
    found = client.get("/api/v1/customers?q=LSVAA4182E2123456", headers=login("admin@example.com")).json()
    assert [p["id"] for p in found["items"]] == [profile.id]


def test_orders_by_api_are_scoped_to_the_dealer(client, tree, login, session):
    sales = login("a.sales@example.com")
    customer = client.post("/api/v1/customers", headers=sales, json={"name": "顾客甲", "mobile": "13655554444"}).json()
    created = client.post("/api/v1/orders", headers=sales, json={
        "profile_id": customer["id"], "external_id": "SH001-0001",
        "lines": [{"sku": "ID4-PURE", "name": "ID.4 CROZZ 纯净版", "price": "199900.00"}]})
    assert created.status_code == 201, created.text
    assert created.json()["total"] == "199900.00" and created.json()["unit_id"] == tree.dealer_a.id
    duplicate = client.post("/api/v1/orders", headers=sales, json={
        "profile_id": customer["id"], "external_id": "SH001-0001", "lines": [{"name": "x", "price": 1}]})
    assert duplicate.status_code == 409
    bad = client.post("/api/v1/orders", headers=sales, json={
        "profile_id": customer["id"], "external_id": "X", "lines": [{"name": "x", "price": -5, "quantity": 0}]})
    assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} == {
        "body.lines.0.price", "body.lines.0.quantity"}
    assert client.get("/api/v1/orders", headers=login("b.sales@example.com")).json()["items"] == []
    assert [o["external_id"] for o in client.get("/api/v1/orders", headers=login("east@example.com")).json()[
        "items"]] == ["SH001-0001"]


def test_orders_and_vehicles_follow_a_merge(client, web_source, session, clean_database, tree):
    _, key = web_source
    send(client, key, call("identify", userId="a"),
         call("track", userId="b", event="order_placed", properties={"order_id": "O-1", "amount": 100}))
    process(clean_database)
    a, b = sorted(session.scalars(select(Profile)), key=lambda p: p.id)
    service.register_vehicle(session, tree.system, b.id, data=schemas.VehicleIn(vin="LSVAA4182E2123456"))
    merge = service.merge_by_hand(session, tree.system, data=schemas.MergeRequest(winner_id=a.id, loser_id=b.id))
    session.commit()
    assert {o.profile_id for o in session.scalars(select(Order))} == {a.id}
    assert {v.profile_id for v in session.scalars(select(Vehicle))} == {a.id}
    service.unmerge(session, tree.system, merge.id)
    session.commit()
    session.expire_all()
    assert {o.profile_id for o in session.scalars(select(Order))} == {b.id}
    assert {v.profile_id for v in session.scalars(select(Vehicle))} == {b.id}
