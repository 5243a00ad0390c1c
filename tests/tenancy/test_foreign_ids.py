"""Writes name units, owners and customers only of the caller's organisation and scope (issue 19, item 2): another
organisation's id is as unknown as one that does not exist, another dealer's is out of scope; the depth check
itself refuses them too, whoever calls it."""

from __future__ import annotations

from sqlalchemy import func, select

from kehu.cdp.models import Order, Profile
from kehu.tenancy.access import NONE, ORG, OWN, UNIT, UNIT_TREE, within_depth

LINES = [{"name": "ID.4 CROZZ", "price": "199900.00"}]


def _fault(response) -> tuple[int, list[tuple[str, str]]]:  # type: ignore[no-untyped-def]
    body = response.json()
    return response.status_code, [(e["field"], e["code"]) for e in body.get("errors") or []]


def _counts(session) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return (session.scalar(select(func.count()).select_from(Profile)),
            session.scalar(select(func.count()).select_from(Order)))


def test_another_organisations_admin_cannot_place_customers_or_orders_in_our_units(client, tree, login, session):
    boss = login("boss@other.example.com")
    own = client.post("/api/v1/customers", headers=boss, json={"name": "他们的客户"})
    assert own.status_code == 201
    before = _counts(session)
    for unit_id in (tree.dealer_a.id, tree.hq.id, 987654321, 2**63 + 5):
        # an id past int64 is no id at all: refused at the door, before any lookup (issue 19, item 8)
        fault = [("body.unit_id", "out_of_range")] if unit_id >= 2**63 else [("unit_id", "unknown")]
        customer = client.post("/api/v1/customers", headers=boss, json={"name": "潜入", "unit_id": unit_id})
        assert _fault(customer) == (422, fault), (unit_id, customer.text)
        order = client.post("/api/v1/orders", headers=boss, json={
            "profile_id": own.json()["id"], "external_id": f"SO-{unit_id}", "unit_id": unit_id, "lines": LINES})
        assert _fault(order) == (422, fault), (unit_id, order.text)
    # an owner of ours is as unknown to them as a unit of ours
    owner = client.post("/api/v1/customers", headers=boss, json={"name": "潜入", "owner_id": tree.a_sales.id})
    assert _fault(owner) == (422, [("owner_id", "unknown")])
    # and so is a customer of ours for an order
    ours = client.post("/api/v1/customers", headers=login("a.sales@example.com"), json={"name": "我们的客户"})
    theirs = client.post("/api/v1/orders", headers=boss, json={"profile_id": ours.json()["id"], "external_id": "X",
                                                                 "lines": LINES})
    assert _fault(theirs) == (422, [("profile_id", "unknown")])
    assert _counts(session) == (before[0] + 1, before[1])  # only our consultant's customer was made


def test_a_consultant_places_customers_and_orders_only_at_their_own_dealer(client, tree, login, session):
    a_sales = login("a.sales@example.com")
    before = _counts(session)
    in_b = client.post("/api/v1/customers", headers=a_sales, json={"name": "别店客户", "unit_id": tree.dealer_b.id})
    assert _fault(in_b) == (422, [("unit_id", "out_of_scope")])
    for_colleague = client.post("/api/v1/customers", headers=a_sales, json={
        "name": "同事的客户", "owner_id": tree.a_sales2.id})
    assert _fault(for_colleague) == (422, [("owner_id", "out_of_scope")])
    mine = client.post("/api/v1/customers", headers=a_sales, json={"name": "我的客户", "unit_id": tree.dealer_a.id})
    assert mine.status_code == 201 and mine.json()["owner_id"] == tree.a_sales.id
    order_in_b = client.post("/api/v1/orders", headers=a_sales, json={
        "profile_id": mine.json()["id"], "external_id": "SO-B", "unit_id": tree.dealer_b.id, "lines": LINES})
    assert _fault(order_in_b) == (422, [("unit_id", "out_of_scope")])
    # a dealer manager names another dealer's salesperson: out of scope; one of theirs at another unit: wrong unit
    manager = login("a.manager@example.com")
    other_dealer = client.post("/api/v1/customers", headers=manager, json={
        "name": "x", "unit_id": tree.dealer_b.id, "owner_id": tree.b_sales.id})
    assert _fault(other_dealer) == (422, [("unit_id", "out_of_scope")])
    at_ours = client.post("/api/v1/customers", headers=manager, json={"name": "x", "owner_id": tree.b_sales.id})
    assert _fault(at_ours) == (422, [("owner_id", "wrong_unit")])  # placed at the manager's dealer by default
    misplaced = client.post("/api/v1/customers", headers=login("admin@example.com"), json={
        "name": "x", "unit_id": tree.dealer_b.id, "owner_id": tree.a_sales.id})
    assert _fault(misplaced) == (422, [("owner_id", "wrong_unit")])
    assert _counts(session) == (before[0] + 1, before[1])


def test_the_depth_check_knows_the_organisation_and_the_dealer(session, tree):
    other_unit = tree.other_org_admin.unit_id
    admin, a_sales = tree.principal(session, tree.admin), tree.principal(session, tree.a_sales)
    # org-wide and system grants stop at the organisation's edge
    assert within_depth(session, admin, ORG, unit_id=tree.dealer_b.id)
    assert not within_depth(session, admin, ORG, unit_id=other_unit)
    assert not within_depth(session, admin, ORG, unit_id=987654321)
    assert not within_depth(session, tree.system, ORG, unit_id=other_unit)
    # "own": the consultant's row at their dealer or above it, never at another dealer, never someone else's
    assert within_depth(session, a_sales, OWN, unit_id=tree.dealer_a.id, owner_id=tree.a_sales.id)
    assert within_depth(session, a_sales, OWN, unit_id=tree.east.id, owner_id=tree.a_sales.id)
    assert not within_depth(session, a_sales, OWN, unit_id=tree.dealer_b.id, owner_id=tree.a_sales.id)
    assert not within_depth(session, a_sales, OWN, unit_id=other_unit, owner_id=tree.a_sales.id)
    assert not within_depth(session, a_sales, OWN, unit_id=tree.dealer_a.id, owner_id=tree.a_sales2.id)
    assert within_depth(session, a_sales, UNIT, unit_id=tree.dealer_a.id)
    assert not within_depth(session, a_sales, UNIT_TREE, unit_id=tree.dealer_b.id)
    assert not within_depth(session, a_sales, NONE, unit_id=tree.dealer_a.id, owner_id=tree.a_sales.id)


def test_a_condition_names_only_accounts_the_reader_may_see(client, tree, login, session):
    from kehu.cdp import service as cdp_service

    theirs = cdp_service.create_account(session, tree.system, name="杭州车队", kind="company",
                                        unit_id=tree.dealer_b.id, owner_id=None)
    ours = cdp_service.create_account(session, tree.system, name="上海车队", kind="company",
                                      unit_id=tree.dealer_a.id, owner_id=None)
    session.commit()
    manager = login("a.manager@example.com")

    def preview(account_id: int):  # type: ignore[no-untyped-def]
        return client.post("/api/v1/segments/preview", headers=manager, json={
            "condition": {"type": "account", "account_id": account_id}})

    assert preview(ours.id).status_code == 200
    assert _fault(preview(theirs.id)) == (422, [("condition.account_id", "out_of_scope")])
    assert _fault(preview(987654321)) == (422, [("condition.account_id", "unknown_account")])


def test_the_check_speaks_english_to_the_api_and_the_readers_language_to_pages(session, tree):
    import pytest

    from kehu.core.errors import ValidationFailed
    from kehu.core.i18n import t
    from kehu.tenancy.access import Place, check_references

    a_sales = tree.principal(session, tree.a_sales)
    with pytest.raises(ValidationFailed) as raised:
        check_references(session, a_sales, place=Place("profiles", "create", tree.dealer_b.id))
    assert [(e.field, e.code) for e in raised.value.errors] == [("unit_id", "out_of_scope")]
    assert raised.value.errors[0].message.startswith("outside what your roles allow")
    key, params = raised.value.message  # type: ignore[misc]
    assert t(key, "zh", **params) == "超出您的角色权限范围。"
