"""HQ's templates for dealers in a real browser: HQ's marketer opens a template's wait to the dealers and publishes
it; a dealer's marketer makes the dealer's own journey of it, finds the message locked (and the drawing: Delete
does nothing but say so), changes the wait, saves; HQ sees that dealer's journey on the template's page."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shoot
from tests.e2e.test_customers_ui import api

pytestmark = pytest.mark.e2e

HQ = "marketing1@demo.kehu.dev"
DEALER = "sh001.marketing@demo.kehu.dev"


def _template(server: str) -> dict:  # type: ignore[type-arg]
    with api(server, HQ) as marketer:
        sms = next(t for t in marketer.get("/api/v1/templates").json()["items"] if t["channel"] == "sms")
        made = marketer.post("/api/v1/journeys", json={
            "name": f"试驾关怀模版 {uuid.uuid4().hex[:6]}", "template": True,
            "description": "试驾后一天发短信，到店率按经销商比较",
            "definition": {
                "goal": {"event": "order_completed", "within_days": 30},
                "nodes": [{"id": "entry", "type": "entry"},
                          {"id": "wait", "type": "wait", "days": 1, "label": "等一天"},
                          {"id": "sms", "type": "send", "template_id": sms["id"], "label": "试驾关怀短信"},
                          {"id": "done", "type": "exit"}],
                "edges": [{"from": "entry", "to": "wait"}, {"from": "wait", "to": "sms"},
                          {"from": "sms", "to": "done"}]}})
        assert made.status_code == 201, made.text
        return made.json()


def test_hq_offers_a_template_and_a_dealer_makes_it_its_own(page, server, sign_in):
    template = _template(server)
    sign_in(HQ)
    page.goto(f"{server}/journeys/{template['id']}")
    expect(page.get_by_test_id("journey-template")).to_contain_text("经销商模版")
    page.get_by_test_id("canvas-node-wait").click()
    switch = page.get_by_test_id("panel-open")
    expect(switch).to_be_visible()
    switch.click()
    expect(page.get_by_test_id("canvas-mark-wait")).to_have_text(re.compile("可调整"))
    page.get_by_test_id("canvas-save").click()
    expect(page.get_by_test_id("canvas-unsaved")).to_be_hidden()
    page.get_by_test_id("journey-publish").click()
    page.get_by_test_id("journey-publish-confirm").click()
    expect(page.get_by_test_id("journey-status")).to_have_text("运行中")
    expect(page.get_by_test_id("template-instances")).to_contain_text("还没有单位按这个模版建立旅程")
    page.context.clear_cookies()

    # the dealer: from the template, its own journey
    sign_in(DEALER)
    page.goto(f"{server}/journeys")
    page.get_by_test_id("from-template").click()
    dialog = page.get_by_test_id("offered-templates")
    dialog.get_by_test_id(f"offered-{template['id']}").click()
    page.get_by_test_id("instance-create").click()
    expect(page.get_by_text("请检查").first).to_be_visible()  # no name: said so, nothing made
    assert page.url.endswith("/journeys")
    name = f"本店试驾关怀 {uuid.uuid4().hex[:6]}"
    page.get_by_test_id("instance-name").fill(name)
    shoot(page, "journeys-template-offered")
    page.get_by_test_id("instance-create").click()
    page.wait_for_url(re.compile(r"/journeys/\d+$"))
    expect(page.get_by_test_id("journey-template")).to_contain_text(f"基于模版「{template['name']}」第 1 版")
    expect(page.get_by_test_id("flow-palette")).to_have_count(0)  # the drawing is the template's
    expect(page.get_by_test_id("canvas-mark-sms")).to_have_text(re.compile("锁定"))
    page.get_by_test_id("canvas-node-sms").click()
    expect(page.get_by_test_id("panel-locked")).to_be_visible()
    page.keyboard.press("Delete")
    expect(page.get_by_text("只能调整标有「可调整」的节点")).to_be_visible()
    expect(page.get_by_test_id("canvas-node-sms")).to_be_visible()
    page.get_by_test_id("canvas-node-wait").click()
    days = page.get_by_test_id("panel-days")
    days.fill("3")
    expect(page.get_by_test_id("canvas-node-wait")).to_contain_text("3 天")
    shoot(page, "journeys-template-instance")
    page.get_by_test_id("canvas-save").click()
    expect(page.get_by_test_id("canvas-unsaved")).to_be_hidden()
    page.reload()
    expect(page.get_by_test_id("canvas-node-wait")).to_contain_text("3 天")
    page.context.clear_cookies()

    # HQ sees the dealer's journey beside any other made of the template
    sign_in(HQ)
    page.goto(f"{server}/journeys/{template['id']}")
    table = page.get_by_test_id("template-instances-table")
    expect(table).to_contain_text(name)
    expect(table).to_contain_text("草稿")
    shoot(page, "journeys-template-results")
