"""Customers within the viewer's scope only — through the API; masking; search; reassign moves them."""

from __future__ import annotations

from kehu.app import make_worker
from kehu.cdp import schemas, service
from kehu.cdp.models import Profile


def create(session, principal, **fields):  # type: ignore[no-untyped-def]
    return service.create_profile(session, principal, data=schemas.ProfileCreate(**fields))


def seed(session, tree):  # type: ignore[no-untyped-def]
    a_sales = tree.principal(session, tree.a_sales)
    b_sales = tree.principal(session, tree.b_sales)
    mine = create(session, a_sales, name="张三", mobile="13811112222", unit_id=tree.dealer_a.id)
    colleague = create(session, tree.principal(session, tree.a_sales2), name="李四", mobile="13811113333",
                       unit_id=tree.dealer_a.id)
    other = create(session, b_sales, name="王五", mobile="13811114444", email="ww@example.com",
                   unit_id=tree.dealer_b.id)
    north = create(session, tree.system, name="赵六", unit_id=tree.dealer_c.id)
    session.commit()
    return mine, colleague, other, north


def ids(response) -> set[int]:  # type: ignore[no-untyped-def]
    return {p["id"] for p in response.json()["items"]}


def test_dealer_sales_sees_only_their_own_customers(client, tree, login, session):
    mine, colleague, other, north = seed(session, tree)
    sales = login("a.sales@example.com")
    assert ids(client.get("/api/v1/customers", headers=sales)) == {mine.id}
    for hidden in (colleague, other, north):
        assert client.get(f"/api/v1/customers/{hidden.id}", headers=sales).status_code == 404
        assert client.patch(f"/api/v1/customers/{hidden.id}", headers=sales, json={"city": "x"}).status_code == 404
    assert client.get("/api/v1/customers?q=王五", headers=sales).json()["items"] == []


def test_manager_sees_the_dealer_region_sees_the_region_hq_sees_all(client, tree, login, session):
    mine, colleague, other, north = seed(session, tree)
    assert ids(client.get("/api/v1/customers", headers=login("a.manager@example.com"))) == {mine.id, colleague.id}
    assert ids(client.get("/api/v1/customers", headers=login("east@example.com"))) == {mine.id, colleague.id,
                                                                                       other.id}
    assert ids(client.get("/api/v1/customers", headers=login("admin@example.com"))) == {
        mine.id, colleague.id, other.id, north.id}
    assert client.get("/api/v1/customers", headers=login("boss@other.example.com")).json()["items"] == []


def test_pii_is_masked_for_roles_without_pii_read(client, tree, login, session):
    from kehu.tenancy import schemas as tenancy_schemas
    from kehu.tenancy import service as tenancy_service

    _, _, other, _ = seed(session, tree)
    tenancy_service.create_user(session, tree.system, data=tenancy_schemas.UserCreate(
        email="analyst@example.com", name="分析师", password="correct-horse-1", unit_id=tree.hq.id,
        roles=["hq_analyst"]))
    session.commit()
    view = client.get(f"/api/v1/customers/{other.id}?include=identities", headers=login("analyst@example.com"))
    body = view.json()
    assert body["profile"]["mobile"] == "+86138****4444" and body["profile"]["email"] == "***@example.com"
    assert {i["value"] for i in body["identities"]} == {"+86138****4444", "***@example.com"}
    clear = client.get(f"/api/v1/customers/{other.id}", headers=login("admin@example.com")).json()
    assert clear["profile"]["mobile"] == "+8613811114444"


def test_search_by_name_pinyin_mobile_in_any_format_tail_digits_and_email(client, tree, login, session):
    _, _, other, _ = seed(session, tree)
    admin = login("admin@example.com")
    for q in ("王五", "wangwu", "wang", "138 1111 4444", "+86-138-1111-4444", "4444", "WW@example.com"):
        found = client.get("/api/v1/customers", headers=admin, params={"q": q}).json()["items"]
        assert [p["id"] for p in found] == [other.id], q


def test_duplicate_mobile_on_create_is_a_conflict_naming_the_existing_customer(client, tree, login, session):
    _, _, other, _ = seed(session, tree)
    response = client.post("/api/v1/customers", headers=login("admin@example.com"),
                           json={"name": "王五二", "mobile": "138 1111 4444"})
    assert response.status_code == 409
    assert response.json()["existing_id"] == other.id and response.json()["errors"][0]["field"] == "mobile"
    bad = client.post("/api/v1/customers", headers=login("admin@example.com"),
                      json={"name": "坏号码", "mobile": "12345", "email": "not-mail"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"mobile", "email"}


def test_reassign_moves_the_leavers_customers_to_the_colleague(client, tree, login, session, clean_database,
                                                               settings):
    mine, colleague, other, _ = seed(session, tree)
    manager = login("a.manager@example.com")
    response = client.post("/api/v1/reassignments", headers=manager, json={
        "from_user_id": tree.a_sales.id, "to_user_id": tree.a_sales2.id, "deactivate_from_user": True})
    assert response.status_code == 202
    assert make_worker(clean_database, settings).run_once()
    job = client.get(f"/api/v1/jobs/{response.json()['id']}", headers=manager).json()
    assert job["status"] == "succeeded"
    assert job["result"]["moved"] == {"activities": 0, "leads": 0, "opportunities": 0, "orders": 0, "profiles": 1}
    session.expire_all()
    assert session.get(Profile, mine.id).owner_id == tree.a_sales2.id
    assert session.get(Profile, other.id).owner_id == tree.b_sales.id  # another dealer's: untouched
    colleague_view = ids(client.get("/api/v1/customers", headers=login("a.sales2@example.com")))
    assert colleague_view == {mine.id, colleague.id}


def test_assign_gives_customers_to_a_salesperson_within_scope_only(client, tree, login, session):
    mine, colleague, other, _ = seed(session, tree)
    manager = login("a.manager@example.com")
    ok = client.post("/api/v1/customers/assign", headers=manager,
                     json={"profile_ids": [mine.id, colleague.id], "owner_id": tree.a_sales2.id})
    assert ok.status_code == 200 and ok.json() == {"assigned": 2}
    assert ids(client.get("/api/v1/customers", headers=login("a.sales2@example.com"))) == {mine.id, colleague.id}
    outside = client.post("/api/v1/customers/assign", headers=manager,
                          json={"profile_ids": [mine.id, other.id], "owner_id": tree.a_sales.id})
    assert outside.status_code == 422 and outside.json()["errors"][0]["field"] == "profile_ids"
    session.expire_all()
    assert session.get(Profile, mine.id).owner_id == tree.a_sales2.id  # nothing half-done
    to_other_dealer = client.post("/api/v1/customers/assign", headers=manager,
                                  json={"profile_ids": [mine.id], "owner_id": tree.b_sales.id})
    assert to_other_dealer.status_code == 422 and to_other_dealer.json()["errors"][0]["code"] == "out_of_scope"
    assert client.post("/api/v1/customers/assign", headers=login("a.sales@example.com"),
                       json={"profile_ids": [mine.id], "owner_id": tree.a_sales.id}).status_code == 403
