"""Importing a GBK spreadsheet export through the page, as an HQ marketer would."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import shoot

pytestmark = pytest.mark.e2e


def test_import_a_gbk_csv_with_a_bad_row(page, server, sign_in, tmp_path):
    path = tmp_path / "展厅客户.csv"
    path.write_bytes("姓名,手机号码,城市,意向车型\n孙悟空,13599998888,杭州,ID.4\n猪八戒,123,杭州,ID.6\n".encode("gbk"))
    sign_in("marketing1@demo.kehu.dev")
    page.goto(f"{server}/customers/import")
    page.locator(".q-uploader input[type=file]").set_input_files(str(path))
    page.get_by_text("2. 核对字段对应").wait_for()
    assert page.get_by_text("扩展属性「意向车型」").is_visible()
    page.get_by_role("button", name="预检").click()
    page.get_by_text("手机号码: 不是有效的手机号：123").wait_for()
    shoot(page, "import-mapping")
    page.get_by_role("button", name="开始导入").click()
    page.get_by_text("导入完成").wait_for(timeout=30_000)
    assert "已接受 1 行（新客户 1 位），拒绝 1 行" in page.get_by_text("已接受").inner_text()
    assert page.get_by_role("button", name="下载被拒绝的行").is_visible()
    shoot(page, "import-done")
