"""Personal data in a real browser, through the eyes of HQ staff without pii.read: the Customer 360 shows no
raw value of any kind (standard fields, every kind of PII custom field, the car's VIN and plate, the timeline),
and the segment builder lets a marketer ask only whether a masked field is set."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import shoot
from tests.e2e.test_customers_ui import api

pytestmark = pytest.mark.e2e

FIELDS = {"e2e_id_card": ("text", "330106196204187732"), "e2e_income": ("number", 915836.47),
          "e2e_anniversary": ("date", "1961-11-29"), "e2e_vip": ("boolean", False),
          "e2e_club": ("option", "onyx")}
PLATE = "浙AK7Q3X"


def watch(page):  # type: ignore[no-untyped-def]
    """The page's console errors and uncaught exceptions, to fail on."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def test_a_customer_360_shows_an_analyst_no_personal_value(page, server, sign_in):
    with api(server, "admin@demo.kehu.dev") as admin:
        for key, (kind, _) in FIELDS.items():
            options = [{"value": "onyx", "zh": "黑金", "en": "Onyx"}] if kind == "option" else []
            made = admin.post("/api/v1/custom-fields", json={"key": key, "label_zh": key, "label_en": key,
                                                             "type": kind, "is_pii": True, "options": options})
            assert made.status_code in (201, 409), made.text
        someone = next(c for c in admin.get("/api/v1/customers", params={"limit": 200}).json()["items"]
                       if c["mobile"] and c["email"] and c["birthday"])
        changed = admin.patch(f"/api/v1/customers/{someone['id']}",
                              json={"attributes": {k: v for k, (_, v) in FIELDS.items()}})
        assert changed.status_code == 200, changed.text
        assert changed.json()["attributes"]["e2e_id_card"] == "330106196204187732"  # the admin holds pii.read
        vin = f"LFVZX9K35R{someone['id']:07d}"
        assert admin.post(f"/api/v1/customers/{someone['id']}/vehicles",
                          json={"vin": vin, "model": "ID.7", "plate": PLATE}).status_code == 201
    mobile, email, birthday = someone["mobile"], someone["email"], someone["birthday"]

    problems = watch(page)
    sign_in("analyst@demo.kehu.dev")
    page.goto(f"{server}/customers/{someone['id']}")
    page.get_by_text("时间线").wait_for()
    page.get_by_text("扩展属性").wait_for()
    page.get_by_text(re.compile(r"^\*\*\*7732$")).wait_for()  # a short tail, not 330****7732
    shown = page.locator("main").inner_text()
    digits = re.sub(r"\D", "", shown)
    hidden_middle = mobile[-8:-4]  # +86138 ****5678: the four digits the mask hides
    assert mobile not in shown and mobile[3:] not in digits and mobile[-8:] not in digits, hidden_middle
    assert email not in shown and email.split("@")[0] not in shown
    assert birthday not in shown and f"{birthday[:4]}-**-**" in shown
    for key, (_, value) in FIELDS.items():
        assert str(value) not in shown, key
    assert "1961-11-29" not in shown and "915836" not in shown and "黑金" not in shown and "330106" not in shown
    assert vin not in shown and vin[:10] not in shown and PLATE not in shown
    card = page.locator(".q-card").filter(has_text="扩展属性").inner_text()
    for key in ("e2e_income", "e2e_anniversary", "e2e_vip", "e2e_club"):  # hidden whole: not 是/否, not 915****6.47
        assert re.search(rf"{key}\s+\*\*\*\s", card + "\n"), (key, card)
    shoot(page, "customer-360-analyst")
    assert problems == []



def test_the_builder_offers_a_marketer_only_whether_a_masked_field_is_set(page, server, sign_in):
    problems = watch(page)
    sign_in("marketing1@demo.kehu.dev")
    page.goto(f"{server}/segments/new")
    page.get_by_role("button", name="添加条件", exact=True).click()
    page.locator(".q-menu").get_by_text("客户属性").click()
    page.locator(".q-select").nth(0).click()  # the rule's field
    page.get_by_role("option", name="手机号").click()
    page.get_by_test_id("rule-personal").wait_for()  # the lock that says why
    page.get_by_text(re.compile(r"[\d,]+ 位客户")).wait_for()  # "is set" is asked and answered
    page.locator(".q-select").nth(1).click()  # the operators offered
    offered = page.get_by_role("option").all_inner_texts()
    assert sorted(offered) == sorted(["已填写", "未填写"])
    shoot(page, "segments-builder-masked-field")
    page.keyboard.press("Escape")
    assert problems == []
