"""The review queue of possible duplicates in a real browser: the demo's hotline callers were written down a
second time (another phone, the name taken by ear); HQ merges one pair and dismisses another; a dealer, who
holds only one side of each pair, sees none; the Customer 360 points at the other record."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.conftest import shoot

pytestmark = pytest.mark.e2e


def test_hq_reviews_duplicates_and_a_dealer_sees_none(page, server, sign_in):  # type: ignore[no-untyped-def]
    sign_in("admin@demo.kehu.dev")
    page.goto(f"{server}/customers/duplicates")
    page.get_by_text("疑似重复客户").first.wait_for()
    rows = page.locator("tbody tr")
    rows.first.wait_for()
    total = int(re.search(r"共 (\d+)", page.get_by_text(re.compile(r"1–\d+ 共 \d+")).inner_text()).group(1))
    assert total >= 10
    assert page.get_by_text("姓名同音/拼音相同").first.is_visible()
    assert page.get_by_text("生日相同").first.is_visible()
    shoot(page, "duplicates-zh")

    # the first pair's 360 says who the other record is
    rows.first.locator("a").first.click()
    page.wait_for_url(re.compile(r"/customers/\d+$"))
    page.get_by_text(re.compile("可能是同一人")).wait_for()
    shoot(page, "duplicates-on-360")
    # back to the queue by its address, not by Back: once in CI the merge button of a page restored by Back
    # opened no dialog (suspected: clicked before the restored page had reconnected)
    page.goto(f"{server}/customers/duplicates")
    rows.first.wait_for()

    # merge the most probable pair, keeping the older record
    dialog = page.get_by_text(re.compile("合并这两位客户"))
    for attempt in range(2):
        # a click on a page just drawn on a loaded machine was lost twice in CI (no event reached the server);
        # a user clicks again, and so does this test, once
        rows.first.get_by_role("button", name="合并").click()
        try:
            dialog.wait_for(timeout=10_000)
            break
        except PlaywrightTimeout:
            if attempt:
                raise
    shoot(page, "duplicates-merge-dialog")
    page.get_by_role("button", name="确认合并").click()
    page.get_by_text(f"共 {total - 1}").wait_for()
    # not the same person: the pair leaves the queue and shows among the dismissed
    rows.first.get_by_role("button", name="不是同一人").click()
    page.get_by_text("已排除，这对客户不会再被提示").wait_for()
    page.get_by_text(f"共 {total - 2}").wait_for()
    page.get_by_role("tab", name="已排除").click()
    page.get_by_text("1–1 共 1").wait_for()  # the dismissed pair alone (the tab's table is drawn anew)
    assert page.locator("tbody tr").count() == 1

    page.get_by_role("button", name="EN").click()
    page.get_by_text("Possible duplicate customers").first.wait_for()
    page.get_by_role("tab", name="To review").click()
    page.locator("tbody tr").first.wait_for()
    shoot(page, "duplicates-en")
    page.get_by_role("button", name="中文").click()


def test_a_dealer_sees_no_pair_it_holds_only_one_side_of(page, server, sign_in):  # type: ignore[no-untyped-def]
    sign_in("sh001.manager@demo.kehu.dev")
    page.goto(f"{server}/customers/duplicates")
    page.get_by_text(re.compile("您可见的客户中暂无疑似重复")).wait_for()
    assert page.locator("tbody tr a").count() == 0
    assert page.get_by_role("button", name="立即查找").count() == 0  # runs are for settings managers


def test_merging_by_hand_keeps_the_chosen_record_and_the_picked_values(page, server, sign_in):  # type: ignore[no-untyped-def]
    """Issue 20: keeping the dealer's 丁梓涵 and merging a hotline record into it left "Zihan Ding" with the other
    mobile and an earlier stage. Side by side, the kept record's values are preselected; the person picks the
    e-mail and postcode of the other record; both mobiles find the customer afterwards."""
    from tests.e2e.test_customers_ui import api

    with api(server, "admin@demo.kehu.dev") as admin:
        dealer = admin.post("/api/v1/customers", json={"name": "丁梓涵", "mobile": "13900070001",
                                                       "email": "ding@dealer.example.com", "postcode": "200120",
                                                       "lifecycle_stage": "opportunity"}).json()
        hotline = admin.post("/api/v1/customers", json={"name": "Zihan Ding", "mobile": "13900070002",
                                                        "email": "zihan@hotline.example.com", "postcode": "200135",
                                                        "lifecycle_stage": "prospect"}).json()
    sign_in("admin@demo.kehu.dev")
    page.goto(f"{server}/customers/{dealer['id']}")
    page.get_by_role("button", name="合并重复客户…").click()
    dialog = page.locator(".q-dialog")
    dialog.get_by_placeholder(re.compile("搜索")).fill("Zihan Ding")
    dialog.get_by_text(re.compile(f"#{hotline['id']} Zihan Ding")).click()
    dialog.locator("[data-test='merge-compare']").click()
    side = page.locator(".q-dialog").filter(has_text="保留这份")
    side.wait_for()
    # preselected: the kept record's name, mobile and the further stage
    assert side.locator("[data-test='pick-name-0'] .q-radio__inner--truthy").count() == 1
    assert side.locator("[data-test='pick-name-1'] .q-radio__inner--truthy").count() == 0
    # each pick draws the grid anew: the next is clicked once the last shows as taken. The radio itself, not its
    # group: a short value (a postcode) leaves the middle of the group's cell empty
    for field in ("email", "postcode"):  # the postcode side by side too (issue 24)
        side.locator(f"[data-test='pick-{field}-1'] [role=radio]").click()
        side.locator(f"[data-test='pick-{field}-1'] .q-radio__inner--truthy").wait_for()
    shoot(page, "merge-side-by-side")
    side.get_by_role("button", name="确认合并").click()
    page.get_by_role("button", name="撤销合并").wait_for()  # the page comes back with the merge in its history
    with api(server, "admin@demo.kehu.dev") as admin:
        kept = admin.get(f"/api/v1/customers/{dealer['id']}").json()["profile"]
        found = admin.get("/api/v1/customers", params={"q": "13900070002"}).json()["items"]
    assert (kept["name"], kept["mobile"], kept["lifecycle_stage"]) == ("丁梓涵", "+8613900070001", "opportunity")
    assert kept["email"] == "zihan@hotline.example.com" and kept["postcode"] == "200135"
    assert [c["id"] for c in found] == [dealer["id"]]
