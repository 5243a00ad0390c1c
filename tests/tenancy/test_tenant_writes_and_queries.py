"""Another tenant cannot write into ours; list endpoints do not issue a query per row."""

from __future__ import annotations

from sqlalchemy import event, func, select

from kehu.tenancy.models import User


def test_other_organisation_cannot_touch_our_rows(client, tree, login, session):
    boss = login("boss@other.example.com")
    assert client.patch(f"/api/v1/users/{tree.a_sales.id}", headers=boss, json={"name": "被改"}).status_code == 404
    assert client.patch(f"/api/v1/units/{tree.dealer_a.id}", headers=boss, json={"name": "被改"}).status_code == 404
    planted = client.post("/api/v1/users", headers=boss, json={
        "email": "plant@example.com", "name": "卧底", "password": "long-enough-1", "unit_id": tree.dealer_a.id,
        "roles": ["dealer_sales"]})
    assert planted.status_code == 422 and planted.json()["errors"][0]["field"] == "unit_id"
    moved = client.post("/api/v1/units", headers=boss, json={
        "parent_id": tree.east.id, "name": "x", "code": "X9", "kind": "dealer"})
    assert moved.status_code == 422
    session.expire_all()
    assert session.get(User, tree.a_sales.id).name == "张销售"
    assert session.scalar(select(func.count()).select_from(User).where(User.email == "plant@example.com")) == 0


def test_listing_users_costs_the_same_queries_for_5_or_50_users(client, tree, login, app, session):
    from tests.factories.tenancy import make_user

    headers = login("admin@example.com")
    client.get("/api/v1/users?limit=100", headers=headers)  # the server has made the admin's principal once
    statements: list[str] = []

    def count(*args, **kwargs):  # type: ignore[no-untyped-def]
        statements.append(args[2])

    engine = app.state.database.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        client.get("/api/v1/users?limit=100", headers=headers)
        few = len(statements)
        for n in range(45):
            make_user(session, tree.system, tree.dealer_c, "dealer_sales", email=f"bulk{n}@example.com")
        session.commit()
        statements.clear()
        body = client.get("/api/v1/users?limit=100", headers=headers).json()
        many = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(body["items"]) > 50
    assert many == few
