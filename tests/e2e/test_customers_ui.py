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


def test_a_new_customer_already_known_elsewhere_becomes_an_inquiry(page, server, sign_in):
    """Issue 19, item 3: a consultant enters a new customer whose mobile a customer of another dealer holds —
    the dialog says the mobile is in use, names nobody, and offers to record an inquiry, which becomes the
    consultant's own lead about that customer."""
    with api(server, "admin@demo.kehu.dev") as admin:
        units = {u["code"]: u["id"] for u in admin.get("/api/v1/units").json()}
        held = next(c for c in admin.get("/api/v1/customers", params={"unit_id": units["BJ001"], "limit": 50})
                    .json()["items"] if c["mobile"] and c["name"])
    sign_in("sh001.sales1@demo.kehu.dev")
    page.goto(f"{server}/customers")
    page.get_by_role("button", name="新增客户").click()
    dialog = page.locator(".q-dialog")
    dialog.get_by_label("姓名").fill("测试认领")
    dialog.get_by_label("手机").fill(held["mobile"])
    dialog.get_by_role("button", name="保存").click()
    notice = page.get_by_test_id("customer-in-use")
    notice.wait_for()
    assert notice.inner_text() == "该手机号已被使用。"
    text = dialog.inner_text()
    assert held["name"] not in text and str(held["id"]) not in text and "记录询盘" in text
    shoot(page, "customer-in-use")
    page.get_by_test_id("customer-record-inquiry").click()
    lead_dialog = page.locator(".q-dialog").filter(has_text="录入线索")
    lead_dialog.wait_for()
    assert lead_dialog.get_by_label("手机").input_value() == held["mobile"]
    shoot(page, "customer-in-use-inquiry")
    lead_dialog.get_by_role("button", name="保存").click()
    page.wait_for_url(f"{server}/leads")  # to the consultant's queue, where the new lead is
    page.locator(".q-table tbody tr").first.get_by_text(held["name"]).wait_for()  # the group's customer, by name
    with api(server, "sh001.sales1@demo.kehu.dev") as sales:
        mine = sales.get("/api/v1/leads", params={"q": held["mobile"]}).json()["items"]
        me = sales.get("/api/v1/me").json()
        assert [(lead["profile_id"], lead["unit_id"], lead["owner_id"]) for lead in mine] == [
            (held["id"], me["unit_id"], me["user_id"])]  # at their own unit (a team of SH001)
        assert sales.get(f"/api/v1/customers/{held['id']}").status_code == 200  # seen through the lead


def test_a_customer_entered_with_an_address_shows_it_on_the_360(page, server, sign_in):
    sign_in("admin@demo.kehu.dev")
    page.goto(f"{server}/customers")
    page.get_by_role("button", name="新增客户").click()
    page.get_by_label("姓名", exact=True).fill("花木兰")
    page.get_by_label("手机", exact=True).fill("13512340987")
    page.get_by_label("地址").fill("河南省商丘市虞城县木兰大道8号")
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(f"{server}/customers/*")
    page.get_by_text("河南省商丘市虞城县木兰大道8号").wait_for()
    shoot(page, "customer-360-address")
