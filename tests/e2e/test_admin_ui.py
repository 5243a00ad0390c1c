"""Smoke tests in a real browser: sign in, the business-unit tree, language, and dealer isolation in the UI."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import shoot

pytestmark = pytest.mark.e2e


def test_admin_signs_in_opens_the_unit_tree_and_adds_a_dealer(page, server, sign_in):
    sign_in("admin@demo.kehu.dev")
    assert page.get_by_text("工作台").first.is_visible()
    page.goto(f"{server}/admin/units")
    tree = page.locator(".q-tree")
    tree.get_by_text("华东大区", exact=True).wait_for()
    assert tree.get_by_text("上海浦东4S店", exact=True).is_visible()
    shoot(page, "business-units")
    tree.get_by_text("华东大区", exact=True).click()
    page.get_by_role("button", name="新增下级单位").click()
    page.get_by_label("名称").fill("苏州园区4S店")
    page.get_by_label("编码").fill("SZH001")
    page.get_by_role("button", name="保存").click()
    page.get_by_text("已保存").wait_for()
    assert tree.get_by_text("苏州园区4S店", exact=True).is_visible()


def test_language_switch_shows_english(page, server, sign_in):
    sign_in("admin@demo.kehu.dev")
    page.get_by_role("button", name="EN").click()
    page.get_by_text("Business units").first.wait_for()
    page.goto(f"{server}/admin/users")
    page.get_by_text("Last sign-in").wait_for()
    shoot(page, "users-en")


def test_dealer_sales_sees_only_their_dealer_in_the_ui(page, server, sign_in):
    sign_in("sh001.sales1@demo.kehu.dev")
    nav = page.locator(".q-drawer")
    assert not nav.get_by_text("审计日志").is_visible()
    page.goto(f"{server}/admin/users")
    page.get_by_text("sh001.sales1@demo.kehu.dev").wait_for()
    table = page.locator(".q-table")
    body = table.inner_text()
    assert "sh001.sales1@demo.kehu.dev" in body
    assert "hz001" not in body and "bj001" not in body and "sh002" not in body
    page.goto(f"{server}/admin/units")
    page.locator(".q-tree").get_by_text("上海浦东4S店销售组", exact=True).wait_for()
    assert "华东大区" not in page.locator(".q-tree").inner_text()
    shoot(page, "dealer-sales-units")
    page.goto(f"{server}/admin/audit")
    page.get_by_text("无权访问").wait_for()
