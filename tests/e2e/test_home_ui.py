"""Each role's home page (issue 20): a salesperson's day, a dealer manager's team, a region's dealers compared,
headquarters' regions — not the organisation's unit counts for everyone and a note that the CRM is coming."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import shoot
from tests.e2e.test_customers_ui import api

pytestmark = pytest.mark.e2e


def test_a_salesperson_starts_the_day_with_their_leads_agenda_and_pipeline(page, server, sign_in):
    with api(server, "sh001.sales1@demo.kehu.dev") as sales:
        me = sales.get("/api/v1/me").json()
        open_deals = sales.get("/api/v1/opportunities", params={"status": "open", "per_page": 1}).json()
    sign_in("sh001.sales1@demo.kehu.dev")
    page.get_by_text("您自己的线索、日程与商机").wait_for()
    for heading in ("待首次联系", "今日待办", "在谈商机金额", "本月赢单", "待首次联系的线索", "商机漏斗"):
        assert page.get_by_text(heading, exact=True).count() >= 1, heading
    assert page.get_by_text("大区", exact=True).count() == 0  # the organisation's unit counts are not their day
    assert page.get_by_text("接下来").count() == 0
    if open_deals["total"]:
        page.locator("[data-test='home-pipeline'] canvas").first.wait_for()
    # styled by kehu's built Tailwind stylesheet (.ci/build_styles), arbitrary values included: the figures large,
    # the cards no narrower than written
    assert page.locator(".text-3xl").first.evaluate("e => getComputedStyle(e).fontSize") == "30px"
    assert page.locator("[data-test='home-waiting']").evaluate("e => getComputedStyle(e).minWidth") == "380px"
    shoot(page, "home-salesperson")
    assert me["user_id"]


def test_a_dealer_manager_sees_their_salespeople_side_by_side(page, server, sign_in):
    sign_in("sh001.manager@demo.kehu.dev")
    team = page.locator("[data-test='home-team']")
    team.wait_for()
    with api(server, "sh001.manager@demo.kehu.dev") as manager:
        staff = manager.get("/api/v1/users", params={"limit": 200}).json()["items"]
    sellers = [u["name"] for u in staff if u["email"].startswith("sh001.sales")]
    assert sellers and all(team.get_by_text(name, exact=True).count() == 1 for name in sellers)
    assert "hz001" not in team.inner_text()
    shoot(page, "home-dealer-manager")


def test_a_region_manager_compares_their_dealers(page, server, sign_in):
    sign_in("east.manager@demo.kehu.dev")
    units = page.locator("[data-test='home-units']")
    units.get_by_text("各经销商对比").wait_for()
    text = units.inner_text()
    assert "上海浦东4S店" in text and "北京" not in text  # the region's dealers only
    shoot(page, "home-region")
    page.context.clear_cookies()
    sign_in("admin@demo.kehu.dev")
    page.locator("[data-test='home-units']").get_by_text("各大区对比").wait_for()
    assert "华东大区" in page.locator("[data-test='home-units']").inner_text()
    page.get_by_text("下级单位在职员工").wait_for()
    shoot(page, "home-hq")
