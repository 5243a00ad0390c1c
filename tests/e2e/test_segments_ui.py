"""Segments in a real browser: build a condition with a live count, save, see the members and the segment on
the customer's 360 page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.conftest import shoot
from tests.e2e.test_customers_ui import api

pytestmark = pytest.mark.e2e


def test_marketing_builds_a_segment_and_sees_it_on_the_customer(page, server, sign_in):
    with api(server, "admin@demo.kehu.dev") as admin:
        expected = admin.post("/api/v1/segments/preview", json={"condition": {
            "type": "field", "field": "lifecycle_stage", "op": "eq", "value": "owner"}}).json()
    assert expected["count"] > 0

    sign_in("admin@demo.kehu.dev")
    page.goto(f"{server}/segments")
    page.get_by_text("有邮箱的客户").first.wait_for()  # the demo's marketing made two segments for its broadcasts
    shoot(page, "segments-list-before")
    page.get_by_role("button", name="新建客群").click()
    page.wait_for_url(f"{server}/segments/new")
    page.get_by_label("名称").fill("车主")
    page.get_by_role("button", name="添加条件", exact=True).click()
    page.locator(".q-menu").get_by_text("客户属性").click()
    page.get_by_text("条件还不完整").wait_for()  # a city rule without a city yet
    page.locator(".q-select").nth(0).click()  # the rule's field
    page.get_by_role("option", name="生命周期阶段").click()
    page.locator(".q-select").nth(2).click()  # a stage is picked from the stages
    page.get_by_role("option", name="车主").click()
    page.get_by_text(re.compile(rf"{expected['count']:,} 位客户")).wait_for()
    shoot(page, "segments-builder")
    page.get_by_role("button", name="保存客群").click()
    page.wait_for_url(re.compile(rf"{server}/segments/\d+"))
    segment_url = page.url
    for _ in range(90):  # the embedded worker computes the members
        page.goto(segment_url)
        if page.get_by_text("已就绪").count():
            break
        page.wait_for_timeout(500)
    page.get_by_text("已就绪").wait_for()
    first = expected["sample"][0]["name"]
    page.locator(".q-table").get_by_text(first).first.wait_for()
    shoot(page, "segments-detail")

    # edit it: owners outside Shanghai, as a nested group that excludes
    with api(server, "admin@demo.kehu.dev") as admin:
        narrowed = admin.post("/api/v1/segments/preview", json={"condition": {"type": "all", "conditions": [
            {"type": "field", "field": "lifecycle_stage", "op": "eq", "value": "owner"},
            {"type": "not", "condition": {"type": "any", "conditions": [
                {"type": "field", "field": "city", "op": "eq", "value": "上海"}]}}]}}).json()
    assert 0 < narrowed["count"] < expected["count"]
    page.get_by_role("button", name="编辑客群").click()
    page.wait_for_url(f"{segment_url}/edit")
    page.get_by_text(re.compile(rf"{expected['count']:,} 位客户")).wait_for()  # the saved condition, read back
    page.get_by_role("button", name="添加条件组").click()
    page.get_by_role("button", name="添加条件", exact=True).nth(1).click()
    page.locator(".q-menu").get_by_text("客户属性").click()
    page.get_by_label("值").fill("上海")
    page.get_by_text("排除", exact=True).nth(1).click()
    page.get_by_text(re.compile(rf"{narrowed['count']:,} 位客户")).wait_for()
    shoot(page, "segments-builder-nested")
    page.get_by_role("button", name="保存客群").click()
    page.wait_for_url(segment_url)
    for _ in range(90):  # the worker counts the members again; under a loaded CI machine that takes a while
        page.goto(segment_url)
        if page.get_by_text(f"{narrowed['count']:,}", exact=True).count():
            break
        page.wait_for_timeout(500)
    page.get_by_text(f"{narrowed['count']:,}", exact=True).first.wait_for()
    first = narrowed["sample"][0]["name"]

    with api(server, "admin@demo.kehu.dev") as admin:
        assert admin.post("/api/v1/tags", json={"name": "重要客户", "colour": "orange"}).status_code == 201
    page.locator(".q-table").get_by_text(first).first.click()
    page.wait_for_url(re.compile(rf"{server}/customers/\d+"))
    page.get_by_text("标签与客群").wait_for()
    page.locator(".q-chip").filter(has_text="车主").first.wait_for()
    page.get_by_label("添加标签").click()
    page.get_by_role("option", name="重要客户").click()
    page.locator(".q-chip").filter(has_text="重要客户").first.wait_for()
    shoot(page, "segments-on-customer")
    page.goto(f"{server}/segments")
    page.get_by_text("重要客户").first.wait_for()
    page.get_by_role("button", name="计算 RFM").click()
    page.get_by_text("计算中").wait_for()
    for _ in range(30):  # the embedded worker scores the customers with orders
        page.goto(f"{server}/segments")
        if page.get_by_text("计算于").count():
            break
        page.wait_for_timeout(500)
    page.locator("canvas").first.wait_for()  # the chart of the eight classes
    shoot(page, "segments-list")
    page.get_by_role("button", name="调整评分区间").click()
    page.locator(".q-dialog input").nth(0).fill("14")  # recent means within two weeks (was 30 days)
    shoot(page, "segments-rfm-bounds")
    page.get_by_role("button", name="保存").click()
    page.get_by_text(re.compile("≤ 14, 90, 180, 365")).wait_for()


def _click_for(button, appears, state: str = "visible") -> None:  # type: ignore[no-untyped-def]
    """Click ``button`` until ``appears`` does, twice at most: a click on a page just drawn on a loaded machine was
    lost in CI (no event reached the server, no dialog); a user clicks again, and so does this test, once."""
    for attempt in range(2):
        button.click()
        try:
            appears.wait_for(state=state, timeout=10_000)
            return
        except PlaywrightTimeout:
            if attempt:
                raise


def test_a_trade_fair_list_becomes_a_static_segment(page, server, sign_in, tmp_path):
    with api(server, "admin@demo.kehu.dev") as admin:
        owners = admin.post("/api/v1/segments/preview", json={"condition": {
            "type": "field", "field": "mobile", "op": "is_set"}, "sample": 3}).json()["sample"]
    mobiles = [p["mobile"].replace("+86", "") for p in owners]
    listed = tmp_path / "车展名单.csv"
    listed.write_text("手机号,姓名\n" + "".join(f"{m},来宾\n" for m in mobiles) + "123,写错了\n", encoding="utf-8")

    sign_in("admin@demo.kehu.dev")
    page.goto(f"{server}/segments")
    uploader = page.locator(".q-uploader input[type=file]")
    _click_for(page.get_by_role("button", name="从名单导入"), page.get_by_label("名称"))
    page.get_by_label("名称").fill("车展来宾")
    uploader.set_input_files(str(listed))
    page.get_by_text(f"共 4 行：新增 {len(mobiles)} 位客户，0 位已在客群，1 行未导入。").wait_for()
    shoot(page, "segments-from-list")
    page.get_by_role("button", name="查看客群").click()
    page.wait_for_url(re.compile(rf"{server}/segments/\d+"))
    page.locator(".q-table").get_by_text(owners[0]["name"]).first.wait_for()
    page.get_by_role("button", name="导入名单").wait_for()  # a static segment takes more lists

    # the same list puts a tag on those customers
    with api(server, "admin@demo.kehu.dev") as admin:
        assert admin.post("/api/v1/tags", json={"name": "车展来宾", "colour": "teal"}).status_code == 201
    page.goto(f"{server}/segments")
    _click_for(page.locator("tr").filter(has_text="车展来宾").get_by_role("button", name="导入名单"), uploader,
               "attached")  # the file input itself is hidden behind the uploader's button
    uploader.set_input_files(str(listed))
    page.get_by_text(f"共 4 行：{len(mobiles)} 位客户贴上标签，0 位已有此标签，1 行未导入。").wait_for()
    shoot(page, "tags-from-list")
    page.get_by_role("button", name="关闭").click()
    page.locator("tr").filter(has_text="车展来宾").get_by_text(str(len(mobiles)), exact=True).wait_for()

    # customers picked in the list go into a new static segment
    page.goto(f"{server}/customers")
    boxes = page.locator(".q-table tbody .q-checkbox")
    boxes.nth(0).click()
    boxes.nth(1).click()
    page.get_by_text("已选择 2 位客户").wait_for()
    assert page.url == f"{server}/customers"  # ticking a box does not open the customer
    shoot(page, "customers-picked")
    page.get_by_role("button", name="加入静态客群").click()
    target = page.get_by_label("选择静态客群，或输入新客群名称")
    target.fill("展厅回访")
    target.press("Enter")
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(re.compile(rf"{server}/segments/\d+"))
    page.get_by_text("展厅回访").first.wait_for()
    assert page.locator(".q-table tbody tr").count() == 2
