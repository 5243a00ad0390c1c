"""Importing a GBK spreadsheet export through the page, as an HQ marketer would."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import shoot

pytestmark = pytest.mark.e2e


def test_import_a_gbk_csv_with_a_bad_row_and_a_bad_value(page, server, sign_in, tmp_path):
    """A row without a usable mobile is rejected; a row whose birthday is wrong is imported without it, and the
    birthday is listed on the page with its row, column and reason."""
    path = tmp_path / "展厅客户.csv"
    path.write_bytes(("姓名,手机号码,城市,地址,生日,意向车型\n孙悟空,13599998888,杭州,花果山水帘洞1号,,ID.4\n"
                      "猪八戒,123,杭州,,,ID.6\n沙和尚,13599997777,杭州,流沙河,1945-04-93,ID.3\n").encode("gbk"))
    sign_in("marketing1@demo.kehu.dev")
    page.goto(f"{server}/customers/import")
    page.locator(".q-uploader input[type=file]").set_input_files(str(path))
    page.get_by_text("2. 核对字段对应").wait_for()
    assert page.get_by_text("扩展属性「意向车型」").is_visible()
    page.get_by_role("button", name="预检").click()
    page.get_by_text("手机号码: 不是有效的手机号：123").wait_for()
    assert page.get_by_text("生日: 不是日期（YYYY-MM-DD）：1945-04-93").is_visible()
    shoot(page, "import-mapping")
    page.get_by_role("button", name="开始导入").click()
    page.get_by_text("导入完成").wait_for(timeout=30_000)
    assert page.get_by_text("已接受 2 行（新客户 2 位），拒绝 1 行").is_visible()
    assert page.get_by_role("button", name="下载被拒绝的行").is_visible()
    page.get_by_text("已接受的行中有 1 个值未导入").wait_for()
    assert page.get_by_role("cell", name="1945-04-93", exact=True).is_visible()
    assert page.get_by_role("button", name="下载未导入的值").is_visible()
    _bar_is_full(page)
    shoot(page, "import-done")
    with page.expect_download() as download:
        page.get_by_role("button", name="下载未导入的值").click()
    assert "1945-04-93" in download.value.path().read_bytes().decode("utf-8-sig")
    page.get_by_role("button", name="再导入一个文件").click()
    page.get_by_text("最近的导入").wait_for()
    page.get_by_role("cell", name="展厅客户.csv").click()  # a past import's values left out, again
    page.get_by_role("dialog").get_by_text("已接受的行中有 1 个值未导入").wait_for()
    shoot(page, "import-recent-warnings")


def test_a_dealer_manager_imports_orders(page, server, sign_in, tmp_path):
    path = tmp_path / "三月订单.csv"
    path.write_text("订单号,下单日期,客户姓名,手机,车型代码,车型,数量,单价\n"
                    "HZ-2503-01,2025-03-05 10:00,唐僧,13588887777,ID4,ID.4 Pro,1,25.98万\n"
                    "HZ-2503-01,2025-03-05 10:00,唐僧,13588887777,MAT,全包围脚垫,1,880\n"
                    "HZ-2503-02,2025-03-06,沙和尚,13588886666,ID6,ID.6 X,一台,31.2万\n", encoding="utf-8")
    sign_in("hz001.manager@demo.kehu.dev")
    page.goto(f"{server}/customers/import")
    page.get_by_role("button", name="订单").click()
    page.get_by_text("订单号相同的行合并为一个订单").wait_for()
    page.locator(".q-uploader input[type=file]").set_input_files(str(path))
    page.get_by_text("2. 核对字段对应").wait_for()
    page.get_by_role("button", name="预检").click()
    page.get_by_text("数量须为正整数：一台").wait_for()
    shoot(page, "import-orders-mapping")
    page.get_by_role("button", name="开始导入").click()
    page.get_by_text("导入完成").wait_for(timeout=30_000)
    assert "已接受 2 行（新订单 1 个，新客户 1 位），拒绝 1 行" in page.get_by_text("已接受").inner_text()
    _bar_is_full(page)
    shoot(page, "import-orders-done")
    page.get_by_role("button", name="再导入一个文件").click()
    page.get_by_text("最近的导入").wait_for()
    assert page.get_by_role("cell", name="三月订单.csv").is_visible()


def _bar_is_full(page) -> None:  # type: ignore[no-untyped-def]
    """A finished import's bar says 100 % (then waits out the fill animation, 0.3 s, so the picture shows it)."""
    page.wait_for_function("document.querySelector('.q-linear-progress')?.getAttribute('aria-valuenow') === '1'")
    page.wait_for_timeout(400)
