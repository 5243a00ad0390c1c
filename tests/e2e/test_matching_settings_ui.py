"""Matching settings in a real browser (issue 24): HQ's admin opens the section on the possible-duplicates page, adds
a rule of its own without fields (refused beside the rule: it would compare every pair), gives it the membership
number, counts each rule's pairs, lets the membership number take part and saves; the page shows the saved
settings again; the defaults are restored. Any console error fails the test (the ``page`` fixture)."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import SCREENSHOTS, shoot
from tests.e2e.test_customers_ui import api

pytestmark = pytest.mark.e2e


def _input(locator):  # type: ignore[no-untyped-def]
    """The text box itself (Quasar puts a q-input's attributes on its native input)."""
    locator.wait_for()
    return locator if locator.evaluate("e => e.tagName") == "INPUT" else locator.locator("input")


def test_an_admin_chooses_what_is_compared(page, server, sign_in):  # type: ignore[no-untyped-def]
    with api(server, "admin@demo.kehu.dev") as admin:
        made = admin.post("/api/v1/custom-fields", json={"key": "e2e_member_no", "label_zh": "会员号",
                                                         "label_en": "Membership no.", "type": "text",
                                                         "is_pii": True})
        assert made.status_code in (201, 409), made.text
        assert admin.put("/api/v1/dedupe/matching", json={}).status_code == 200  # the defaults to start from
    sign_in("admin@demo.kehu.dev")
    page.goto(f"{server}/customers/duplicates")
    section = page.locator("[data-test='matching-settings'], .q-expansion-item").filter(has_text="匹配设置").first
    section.get_by_text("匹配设置", exact=True).first.click()
    section.get_by_text("默认设置", exact=True).wait_for()
    assert section.locator("[data-test='cmp-name'] .q-checkbox__inner--truthy").count() == 1

    # a rule of one's own with no field would compare every pair: said beside the rule, nothing counted
    section.get_by_role("button", name="添加规则").click()
    _input(section.locator("[data-test='own-name-0']")).fill("member_no")
    section.get_by_role("button", name="统计记录对").click()
    section.get_by_text("此规则会比较几乎所有记录对").wait_for()
    section.get_by_text("请更正标红的设置").wait_for()
    shoot(page, "matching-settings-refused")
    section.screenshot(path=str(SCREENSHOTS / "matching-settings-refused-section.png"))

    # the membership number takes part, compared exactly, and makes a rule of its own; counted, every rule shows
    # its pairs; saved
    section.locator("[data-test='kind-attributes.e2e_member_no']").click()
    page.locator(".q-menu").get_by_text("完全相同", exact=True).click()
    section.locator("[data-test='own-fields-0']").click()
    page.locator(".q-menu").get_by_text("会员号", exact=True).click()
    page.keyboard.press("Escape")
    section.get_by_role("button", name="统计记录对").click()
    section.get_by_text(re.compile(r"位客户，将比较 [\d,]+ 对记录")).wait_for()
    assert section.get_by_text("此规则会比较几乎所有记录对").count() == 0
    assert section.locator("[data-test='matching-count-mobile']").count() == 1
    assert section.locator("[data-test='matching-count-member_no']").inner_text() == "0 对"

    shoot(page, "matching-settings")
    section.screenshot(path=str(SCREENSHOTS / "matching-settings-section.png"))
    section.get_by_role("button", name="保存匹配设置").click()
    page.get_by_text("匹配设置已保存，下次查找时生效").wait_for()
    with api(server, "admin@demo.kehu.dev") as admin:
        saved = admin.get("/api/v1/dedupe/matching").json()
    assert {"field": "attributes.e2e_member_no", "kind": "exact"} in saved["comparisons"]
    assert {"name": "member_no", "fields": ["attributes.e2e_member_no"]} in saved["rules"]

    # drawn again from what was saved; then back to the defaults
    page.reload()
    section = page.locator(".q-expansion-item").filter(has_text="匹配设置").first
    section.get_by_text("匹配设置", exact=True).first.click()
    assert _input(section.locator("[data-test='own-name-0']")).input_value() == "member_no"
    assert section.get_by_text("默认设置", exact=True).count() == 0
    section.get_by_role("button", name="恢复默认").click()
    page.get_by_text("已恢复默认匹配设置").wait_for()
    section.get_by_text("默认设置", exact=True).wait_for()
    with api(server, "admin@demo.kehu.dev") as admin:
        assert admin.get("/api/v1/dedupe/matching").json()["is_default"] is True
