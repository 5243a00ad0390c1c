"""The business-unit tree: creation rules, moving subtrees, deactivation, audit."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from kehu.core.audit import AuditRecord
from kehu.core.errors import Conflict, ValidationFailed
from kehu.tenancy import schemas, service
from kehu.tenancy.models import BusinessUnit


def test_new_unit_gets_a_materialised_path_under_its_parent(session, tree):
    team = service.create_unit(session, tree.system, data=schemas.UnitCreate(
        parent_id=tree.dealer_a.id, name="销售一组", code="SH001-S1", kind="team"))
    assert team.path == f"{tree.dealer_a.path}{team.id}/"
    assert team.depth == 3
    entry = session.scalar(select(AuditRecord).where(AuditRecord.entity == "units", AuditRecord.entity_id == team.id))
    assert entry.action == "create" and entry.after["code"] == "SH001-S1"


def test_region_cannot_sit_under_a_dealer_and_hq_is_unique(session, tree):
    with pytest.raises(ValidationFailed) as err:
        service.create_unit(session, tree.system, data=schemas.UnitCreate(
            parent_id=tree.dealer_a.id, name="x", code="X", kind="region"))
    assert err.value.errors[0].field == "kind"
    with pytest.raises(ValidationFailed):
        service.create_unit(session, tree.system, data=schemas.UnitCreate(
            parent_id=tree.hq.id, name="x", code="X2", kind="hq"))


def test_duplicate_code_is_a_conflict_on_the_code_field(session, tree):
    with pytest.raises(Conflict) as err:
        service.create_unit(session, tree.system, data=schemas.UnitCreate(
            parent_id=tree.east.id, name="重复", code="SH001", kind="dealer"))
    assert err.value.errors[0].field == "code"


def test_moving_a_dealer_moves_its_whole_subtree_and_changes_visibility(session, tree):
    team = service.create_unit(session, tree.system, data=schemas.UnitCreate(
        parent_id=tree.dealer_b.id, name="团队", code="HZ-T", kind="team"))
    session.commit()
    service.update_unit(session, tree.system, tree.dealer_b.id, data=schemas.UnitUpdate(parent_id=tree.north.id))
    session.commit()
    moved = session.get(BusinessUnit, tree.dealer_b.id)
    child = session.get(BusinessUnit, team.id)
    assert moved.path == f"{tree.north.path}{moved.id}/"
    assert child.path == f"{moved.path}{child.id}/" and child.depth == 3
    east_manager = tree.principal(session, tree.east_manager)
    visible = {u.id for u in service.list_units(session, east_manager)}
    assert tree.dealer_b.id not in visible and team.id not in visible and tree.dealer_a.id in visible


def test_unit_cannot_move_under_its_own_descendant(session, tree):
    with pytest.raises(ValidationFailed) as err:
        service.update_unit(session, tree.system, tree.east.id, data=schemas.UnitUpdate(parent_id=tree.dealer_a.id))
    assert err.value.errors[0].field == "parent_id"


def test_unit_with_active_staff_cannot_be_deactivated(session, tree):
    with pytest.raises(Conflict):
        service.update_unit(session, tree.system, tree.east.id, data=schemas.UnitUpdate(is_active=False))
    empty = service.create_unit(session, tree.system, data=schemas.UnitCreate(
        parent_id=tree.north.id, name="空店", code="EMPTY", kind="dealer"))
    closed = service.update_unit(session, tree.system, empty.id, data=schemas.UnitUpdate(is_active=False))
    assert closed.is_active is False


def test_dealer_manager_creates_teams_in_own_dealer_via_api(client, tree, login):
    headers = login("a.manager@example.com")
    ok = client.post("/api/v1/units", headers=headers, json={
        "parent_id": tree.dealer_a.id, "name": "展厅一组", "code": "SH001-T1", "kind": "team"})
    assert ok.status_code == 201
    other = client.post("/api/v1/units", headers=headers, json={
        "parent_id": tree.dealer_b.id, "name": "越界", "code": "HZ001-T1", "kind": "team"})
    assert other.status_code == 422
    assert [(e["field"], e["code"]) for e in other.json()["errors"]] == [("parent_id", "out_of_scope")]
