"""Customers in a real browser: the list follows the viewer's scope; another dealer's customer stays hidden."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shoot

pytestmark = pytest.mark.e2e


def api(server: str, email: str, password: str = "kehu-demo-2026") -> httpx.Client:
    token = httpx.post(f"{server}/api/v1/auth/token",
                       data={"username": email, "password": password}).json()["access_token"]
    return httpx.Client(base_url=server, headers={"Authorization": f"Bearer {token}"})


def test_sales_consultant_sees_own_customers_and_not_another_dealers(page, server, sign_in):
    with api(server, "sh001.sales1@demo.kehu.dev") as sales:
        own = sales.get("/api/v1/customers", params={"limit": 500}).json()["items"]
        me = sales.get("/api/v1/me").json()
    with api(server, "admin@demo.kehu.dev") as admin:
        units = {u["code"]: u["id"] for u in admin.get("/api/v1/units").json()}
        beijing = admin.get("/api/v1/customers", params={"unit_id": units["BJ001"], "limit": 5}).json()["items"]
    assert own and all(c["owner_id"] == me["user_id"] for c in own)
    assert beijing

    sign_in("sh001.sales1@demo.kehu.dev")
    page.goto(f"{server}/customers")
    table = page.locator(".q-table")
    table.get_by_text(own[0]["name"] or "匿名访客").first.wait_for()
    footer = page.locator(".q-table__bottom").inner_text()
    assert f"共 {len(own)}" in footer  # the pager counts only this consultant's customers
    shoot(page, "customers-dealer-sales")

    page.goto(f"{server}/customers/{beijing[0]['id']}")
    page.get_by_text("找不到该客户").wait_for()
    assert beijing[0]["name"] not in page.locator("main").inner_text()


def test_admin_searches_by_pinyin_and_opens_customer_360(page, server, sign_in):
    with api(server, "admin@demo.kehu.dev") as admin:
        someone = next(c for c in admin.get("/api/v1/customers", params={"limit": 50}).json()["items"]
                       if c["name"] and c["name_pinyin"])
        assert admin.patch(f"/api/v1/customers/{someone['id']}", json={"city": "苏州"}).status_code == 200
        found = admin.get("/api/v1/customers", params={"q": someone["name_pinyin"], "limit": 50}).json()["items"]
    sign_in("admin@demo.kehu.dev")
    page.goto(f"{server}/customers")
    page.get_by_placeholder("搜索姓名、拼音、手机号、邮箱、车架号").fill(someone["name_pinyin"])
    # the search answered (a row clicked while the table redraws is lost)
    expect(page.locator(".q-table tbody tr")).to_have_count(min(len(found), 20))
    page.locator(".q-table").get_by_text(someone["name"]).first.click()
    page.wait_for_url(f"{server}/customers/*")
    page.get_by_text("时间线").wait_for()
    assert someone["name"] in page.get_by_text(someone["name"]).first.inner_text()
    timeline = page.get_by_test_id("timeline")  # the change sits above the customer's own events
    assert timeline.get_by_text("修改了客户资料").is_visible() and timeline.get_by_text("城市: 苏州").is_visible()
    shoot(page, "customer-360")


def test_a_dealer_manager_exports_only_their_dealers_customers(page, server, sign_in, tmp_path):
    with api(server, "hz001.manager@demo.kehu.dev") as manager:
        visible = manager.get("/api/v1/customers", params={"limit": 500}).json()["items"]
    with api(server, "admin@demo.kehu.dev") as admin:
        everyone = admin.get("/api/v1/customers", params={"limit": 500}).json()["items"]
    assert visible and len(visible) < len(everyone)
    sign_in("hz001.manager@demo.kehu.dev")
    page.goto(f"{server}/customers")
    page.get_by_role("button", name="导出").click()
    page.get_by_role("button", name="CSV").click()
    page.get_by_role("button", name="开始导出").click()
    page.get_by_text(f"已导出 {len(visible)} 位客户").wait_for(timeout=30_000)
    shoot(page, "customers-export")
    with page.expect_download() as download:
        page.get_by_role("button", name="下载文件").click()
    path = tmp_path / "export.csv"
    download.value.save_as(path)
    text = path.read_text(encoding="utf-8-sig")
    exported = {int(line.split(",")[0]) for line in text.splitlines()[1:]}
    assert exported == {c["id"] for c in visible}


def test_a_search_without_hits_then_one_with_hits_shows_the_table_again(page, server, sign_in):
    sign_in("admin@demo.kehu.dev")
    page.goto(f"{server}/customers")
    rows = page.locator(".q-table tbody tr")
    expect(rows).to_have_count(20)
    search = page.get_by_placeholder("搜索姓名、拼音、手机号、邮箱、车架号")
    search.fill("没有这个人zzzq")
    page.get_by_text("没有符合条件的客户", exact=False).wait_for()
    search.fill("王")
    expect(rows.first).to_contain_text("王")
    search.fill("")
    expect(rows).to_have_count(20)
    # the pager's rows-per-page choice takes effect (its options once reached the browser as a string)
    page.locator(".q-table__bottom .q-select").click()
    page.get_by_role("option", name="50").click()
    expect(rows).to_have_count(50)
    assert "1–50" in page.locator(".q-table__bottom").inner_text()
