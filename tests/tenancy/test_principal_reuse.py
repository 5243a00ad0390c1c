"""A server reuses the principal it made for a user until something it is made of changes: one query per request
instead of five (and a few hundred unit ids for a region manager), and no change of rights goes unseen."""

from __future__ import annotations

from sqlalchemy import event, select

from kehu.cdp import schemas as cdp_schemas
from kehu.cdp import service as cdp_service
from kehu.tenancy import service as tenancy_service
from kehu.tenancy.models import Role
from tests.factories.tenancy import make_unit, make_user


def customer(session, tree, unit, name):  # type: ignore[no-untyped-def]
    made = cdp_service.create_profile(session, tree.system, data=cdp_schemas.ProfileCreate(name=name, unit_id=unit.id))
    session.commit()
    return made.id


def names(client, headers):  # type: ignore[no-untyped-def]
    response = client.get("/api/v1/customers", headers=headers)
    return response.status_code, sorted(p["name"] for p in response.json().get("items", []))


def test_a_known_user_is_recognised_with_one_query(client, tree, login, app, monkeypatch):
    headers = login("east@example.com")
    client.get("/api/v1/customers", headers=headers)
    statements: list[str] = []
    engine = app.state.database.engine
    listener = lambda *args, **kwargs: statements.append(args[2])  # noqa: E731
    fingerprints: list[int] = []
    read_fingerprint = tenancy_service._read_fingerprint
    monkeypatch.setattr(tenancy_service, "_read_fingerprint",
                        lambda session, user_id: fingerprints.append(user_id) or read_fingerprint(session, user_id))
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert client.get("/api/v1/customers", headers=headers).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    about_the_user = [s for s in statements if "FROM users" in s or "FROM business_units" in s
                      or "FROM roles" in s or "FROM organizations" in s]
    assert len(fingerprints) == 1
    # the fingerprint is the only statement about the user (on PostgreSQL a prepared one, run by the driver)
    assert len(about_the_user) == (1 if engine.dialect.name == "sqlite" else 0), about_the_user


def test_a_roles_new_privileges_apply_to_the_next_request(client, tree, login, session):
    customer(session, tree, tree.dealer_a, "张三")
    manager = login("a.manager@example.com")
    assert names(client, manager) == (200, ["张三"])
    admin = login("admin@example.com")
    role_id = session.scalar(select(Role.id).where(Role.org_id == tree.org.id, Role.code == "dealer_manager"))
    privileges = dict(client.get(f"/api/v1/roles/{role_id}", headers=admin).json()["privileges"])
    privileges["profiles.read"] = "none"
    assert client.patch(f"/api/v1/roles/{role_id}", headers=admin, json={"privileges": privileges}).status_code == 200
    assert names(client, manager)[0] == 403


def test_a_region_managers_new_and_moved_dealers_are_theirs_at_once(client, tree, login, session):
    customer(session, tree, tree.dealer_a, "张三")
    east = login("east@example.com")
    assert names(client, east) == (200, ["张三"])
    new_dealer = make_unit(session, tree.system, tree.east, "苏州新店", "dealer", "SZ001")
    session.commit()
    customer(session, tree, new_dealer, "李四")
    assert names(client, east) == (200, ["张三", "李四"])
    customer(session, tree, tree.dealer_c, "王五")  # in the North
    admin = login("admin@example.com")
    moved = client.patch(f"/api/v1/units/{tree.dealer_c.id}", headers=admin, json={"parent_id": tree.east.id})
    assert moved.status_code == 200, moved.text
    assert names(client, east) == (200, ["张三", "李四", "王五"])


def test_a_region_managers_statements_read_the_same_whatever_the_regions_size(client, tree, login, session, app):
    """The units of a region go as one parameter on PostgreSQL, not written into the statement: its text (what the
    server compiles, the driver converts and PostgreSQL prepares once) is the same for a region of 3 dealers or 40,
    and for another region's manager. On SQLite they are listed in the statement, as SQLite has no arrays."""
    customer(session, tree, tree.dealer_a, "张三")
    customer(session, tree, tree.dealer_c, "王五")
    north_manager = make_user(session, tree.system, tree.north, "region_manager", email="north@example.com")
    session.commit()
    engine = app.state.database.engine
    statements: list[str] = []
    listener = lambda *args, **kwargs: statements.append(args[2])  # noqa: E731

    def list_statement(email: str) -> str:
        headers = login(email)
        statements.clear()
        event.listen(engine, "before_cursor_execute", listener)
        try:
            response = client.get("/api/v1/customers", headers=headers)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        assert response.status_code == 200, response.text
        found = [s for s in statements if "FROM profiles" in s]
        assert len(found) == 1, statements
        return found[0]

    east_before = list_statement("east@example.com")
    for number in range(40):
        make_unit(session, tree.system, tree.east, f"新店{number}", "dealer", f"NEW{number}")
    session.commit()
    east_after = list_statement("east@example.com")
    north = list_statement(north_manager.email)
    assert names(client, login("east@example.com")) == (200, ["张三"])
    assert names(client, login(north_manager.email)) == (200, ["王五"])
    if engine.dialect.name == "postgresql":
        assert east_before == east_after == north
        assert str(tree.dealer_a.id) not in east_after.replace(str(tree.org.id), "")
    else:
        assert len(east_after) > len(east_before)

