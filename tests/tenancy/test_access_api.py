"""Who sees what, through the API: dealer isolation, region roll-up, other organisations, masking."""

from __future__ import annotations


def ids(response) -> set[int]:  # type: ignore[no-untyped-def]
    body = response.json()
    items = body["items"] if isinstance(body, dict) else body
    return {item["id"] for item in items}


def test_dealer_sales_sees_only_their_own_dealer_staff(client, tree, login):
    headers = login("a.sales@example.com")
    response = client.get("/api/v1/users?limit=500", headers=headers)
    assert response.status_code == 200
    assert ids(response) == {tree.a_manager.id, tree.a_sales.id, tree.a_sales2.id}


def test_dealer_user_gets_404_not_403_for_another_dealers_records(client, tree, login):
    headers = login("a.sales@example.com")
    assert client.get(f"/api/v1/users/{tree.b_sales.id}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/units/{tree.dealer_b.id}", headers=headers).status_code == 404
    problem = client.get(f"/api/v1/users/{tree.b_sales.id}", headers=headers)
    assert problem.headers["content-type"].startswith("application/problem+json")
    assert problem.json()["status"] == 404


def test_region_manager_sees_every_dealer_under_the_region_and_nothing_else(client, tree, login):
    headers = login("east@example.com")
    units = client.get("/api/v1/units", headers=headers)
    assert ids(units) == {tree.east.id, tree.dealer_a.id, tree.dealer_b.id}
    users = client.get("/api/v1/users?limit=500", headers=headers)
    assert tree.b_sales.id in ids(users) and tree.a_sales.id in ids(users)
    assert tree.c_sales.id not in ids(users) and tree.admin.id not in ids(users)
    assert client.get(f"/api/v1/users/{tree.c_sales.id}", headers=headers).status_code == 404


def test_admin_of_another_organisation_sees_nothing_of_ours(client, tree, login):
    headers = login("boss@other.example.com")
    users = client.get("/api/v1/users?limit=500", headers=headers)
    assert ids(users) == {tree.other_org_admin.id}
    units = client.get("/api/v1/units", headers=headers)
    assert tree.hq.id not in ids(units) and tree.dealer_a.id not in ids(units)
    for path in (f"/api/v1/users/{tree.a_sales.id}", f"/api/v1/units/{tree.dealer_a.id}"):
        assert client.get(path, headers=headers).status_code == 404
    audit = client.get("/api/v1/audit?limit=500", headers=headers).json()["items"]
    assert all(entry["entity_id"] != tree.a_sales.id or entry["entity"] != "users" for entry in audit)


def test_hq_admin_sees_the_whole_group(client, tree, login):
    headers = login("admin@example.com")
    units = client.get("/api/v1/units", headers=headers)
    assert {tree.hq.id, tree.east.id, tree.north.id, tree.dealer_a.id, tree.dealer_b.id, tree.dealer_c.id} == ids(units)
    tree_view = client.get("/api/v1/units/tree", headers=headers).json()
    assert [n["code"] for n in tree_view] == ["HQ"]
    assert {c["code"] for c in tree_view[0]["children"]} == {"EAST", "NORTH"}


def test_pii_is_masked_without_pii_read(client, tree, login, session):
    from kehu.tenancy import schemas, service

    analyst_role = service.create_role(session, tree.system, data=schemas.RoleCreate(
        code="staff_reader", name_zh="只读", name_en="Reader", privileges={"users.read": "org"}))
    service.create_user(session, tree.system, data=schemas.UserCreate(
        email="reader@example.com", name="读者", password="correct-horse-1", unit_id=tree.hq.id,
        roles=[analyst_role.code]))
    session.commit()
    masked = client.get(f"/api/v1/users/{tree.a_sales.id}", headers=login("reader@example.com")).json()
    assert masked["phone"] == "+86138****5678"
    assert masked["email"] == "a***@example.com"
    clear = client.get(f"/api/v1/users/{tree.a_sales.id}", headers=login("admin@example.com")).json()
    assert clear["phone"] == "+8613812345678"


def test_dealer_sales_cannot_create_users_or_units(client, tree, login):
    headers = login("a.sales@example.com")
    response = client.post("/api/v1/users", headers=headers, json={
        "email": "new@example.com", "name": "新人", "password": "long-enough-1", "unit_id": tree.dealer_a.id,
        "roles": ["dealer_sales"]})
    assert response.status_code == 403
    assert response.json()["type"].endswith("/forbidden")
    response = client.post("/api/v1/units", headers=headers, json={
        "parent_id": tree.dealer_a.id, "name": "新团队", "code": "T1", "kind": "team"})
    assert response.status_code == 403


def test_dealer_manager_cannot_mint_an_administrator(client, tree, login):
    headers = login("a.manager@example.com")
    response = client.post("/api/v1/users", headers=headers, json={
        "email": "sneaky@example.com", "name": "越权", "password": "long-enough-1", "unit_id": tree.dealer_a.id,
        "roles": ["org_admin"]})
    assert response.status_code == 403
    assert "wider than your own" in response.json()["detail"]


def test_dealer_manager_manages_staff_of_own_dealer_only(client, tree, login):
    headers = login("a.manager@example.com")
    ok = client.post("/api/v1/users", headers=headers, json={
        "email": "new.sales@example.com", "name": "新销售", "password": "long-enough-1",
        "unit_id": tree.dealer_a.id, "roles": ["dealer_sales"]})
    assert ok.status_code == 201, ok.text
    elsewhere = client.post("/api/v1/users", headers=headers, json={
        "email": "intruder@example.com", "name": "跨店", "password": "long-enough-1",
        "unit_id": tree.dealer_b.id, "roles": ["dealer_sales"]})
    assert elsewhere.status_code == 422
    assert [(e["field"], e["code"]) for e in elsewhere.json()["errors"]] == [("unit_id", "out_of_scope")]
