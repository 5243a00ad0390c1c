"""The figures the dashboard shows follow the viewer's scope."""

from __future__ import annotations

from kehu.tenancy import service


def test_hq_sees_staff_per_region_and_a_region_manager_per_dealer(session, tree):
    admin = tree.principal(session, tree.admin)
    assert dict(service.staff_by_top_unit(session, admin)) == {"华东大区": 5, "华北大区": 1}
    assert service.counts_by_unit_kind(session, admin) == {"hq": 1, "region": 2, "dealer": 3}
    east = tree.principal(session, tree.east_manager)
    assert dict(service.staff_by_top_unit(session, east)) == {"上海浦东店": 3, "杭州西湖店": 1}
    assert service.active_user_count(session, east) == 5


def test_another_organisation_sees_none_of_it(session, tree):
    other = tree.principal(session, tree.other_org_admin)
    assert service.staff_by_top_unit(session, other) == [("另一个集团", 1)]  # its HQ only, none of ours
    assert service.active_user_count(session, other) == 1
