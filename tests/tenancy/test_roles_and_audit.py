"""Roles: validation, widest grant wins, system role protection; the audit log and its filters."""

from __future__ import annotations

import pytest

from kehu.core.errors import Conflict, Forbidden
from kehu.tenancy import schemas, service
from kehu.tenancy.access import NONE, ORG, OWN, UNIT_TREE, merge_privileges
from kehu.tenancy.roles import system_roles


def test_every_system_role_grants_only_known_privileges():
    for spec in system_roles().values():
        service._validate_privileges(dict(spec["privileges"]))  # raises on anything unknown


def test_widest_grant_wins_across_roles():
    merged = merge_privileges([{"profiles.read": OWN}, {"profiles.read": UNIT_TREE, "leads.read": NONE}, {}])
    assert merged == {"profiles.read": UNIT_TREE, "leads.read": NONE}


def test_unknown_privilege_keys_are_rejected_with_their_path(client, tree, login):
    response = client.post("/api/v1/roles", headers=login("admin@example.com"), json={
        "code": "odd", "name_zh": "怪", "name_en": "Odd",
        "privileges": {"spaceships.read": "org", "users.read": "org"}})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "privileges.spaceships.read"
    response = client.post("/api/v1/roles", headers=login("admin@example.com"), json={
        "code": "odd", "name_zh": "怪", "name_en": "Odd", "privileges": {"users.read": "galaxy"}})
    assert response.status_code == 422


def test_admin_role_is_protected_and_roles_in_use_cannot_be_deleted(session, tree):
    admin = tree.principal(session, tree.admin)
    roles = {r.code: r for r in service.list_roles(session, admin)}
    with pytest.raises(Forbidden):
        service.update_role(session, admin, roles["org_admin"].id, data=schemas.RoleUpdate(privileges={}))
    with pytest.raises(Conflict):
        service.delete_role(session, admin, roles["dealer_sales"].id)
    custom = service.create_role(session, admin, data=schemas.RoleCreate(
        code="temp", name_zh="临时", name_en="Temp", privileges={"users.read": ORG}))
    service.delete_role(session, admin, custom.id)


def test_changing_a_users_roles_takes_effect_and_is_audited(client, tree, login):
    admin = login("admin@example.com")
    response = client.patch(f"/api/v1/users/{tree.a_sales.id}", headers=admin, json={"roles": ["dealer_manager"]})
    assert response.status_code == 200 and response.json()["roles"] == ["dealer_manager"]
    audit = client.get(f"/api/v1/audit?entity=users&entity_id={tree.a_sales.id}&action=update", headers=admin).json()
    assert audit["items"][0]["before"]["roles"] == ["dealer_sales"]
    assert audit["items"][0]["after"]["roles"] == ["dealer_manager"]
    assert audit["items"][0]["actor_user_id"] == tree.admin.id


def test_audit_log_filters_by_user_and_time_and_pages_with_cursor(client, tree, login):
    admin = login("admin@example.com")
    for n in range(3):
        client.post("/api/v1/units", headers=admin, json={
            "parent_id": tree.north.id, "name": f"新店{n}", "code": f"NEW{n}", "kind": "dealer"})
    first = client.get(f"/api/v1/audit?user_id={tree.admin.id}&entity=units&limit=2", headers=admin).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = client.get(f"/api/v1/audit?user_id={tree.admin.id}&entity=units&limit=2&cursor={first['next_cursor']}",
                        headers=admin).json()
    names = [i["after"]["name"] for i in first["items"] + second["items"]]
    assert names == ["新店2", "新店1", "新店0"]
    future = client.get("/api/v1/audit?since=2999-01-01T00:00:00", headers=admin).json()
    assert future["items"] == []


def test_dealer_manager_reads_audit_of_own_dealer_only(client, tree, login):
    admin = login("admin@example.com")
    client.patch(f"/api/v1/users/{tree.b_sales.id}", headers=admin, json={"name": "陈二"})
    client.patch(f"/api/v1/users/{tree.a_sales.id}", headers=admin, json={"name": "张二"})
    entries = client.get("/api/v1/audit?entity=users&action=update", headers=login("a.manager@example.com")).json()
    assert {e["entity_id"] for e in entries["items"]} == {tree.a_sales.id}
    assert client.get("/api/v1/audit", headers=login("a.sales@example.com")).status_code == 403
