"""Journeys in a real browser: a marketer finds the journey she published on the list, opens it, sees how many
customers wait at each node, pauses, resumes and stops it; a draft with problems names them and cannot be
published; an unknown journey and a consultant without the privilege are told so plainly."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shoot
from tests.e2e.test_customers_ui import api

pytestmark = pytest.mark.e2e

MARKETER = "marketing1@demo.kehu.dev"
SALES = "sh001.sales1@demo.kehu.dev"


def _live_journey(server: str) -> dict:  # type: ignore[type-arg]
    with api(server, MARKETER) as marketer:
        template = next(t for t in marketer.get("/api/v1/templates").json()["items"] if t["channel"] == "sms")
        made = marketer.post("/api/v1/journeys", json={"name": f"试驾跟进 {uuid.uuid4().hex[:6]}", "definition": {
            "nodes": [{"id": "entry", "type": "entry"}, {"id": "wait", "type": "wait", "days": 1, "label": "等一天"},
                      {"id": "sms", "type": "send", "template_id": template["id"], "label": "试驾提醒"},
                      {"id": "done", "type": "exit"}],
            "edges": [{"from": "entry", "to": "wait"}, {"from": "wait", "to": "sms"}, {"from": "sms", "to": "done"}]}})
        assert made.status_code == 201, made.text
        journey = made.json()
        assert marketer.post(f"/api/v1/journeys/{journey['id']}/publish").status_code == 200
        people = [c["id"] for c in marketer.get("/api/v1/customers", params={"limit": 5}).json()["items"]]
        entered = marketer.post(f"/api/v1/journeys/{journey['id']}/enrolments", json={"profile_ids": people})
        assert entered.status_code == 200 and entered.json()["enrolled"] == len(people)
        journey["enrolled"] = len(people)
        return journey


def test_a_marketer_follows_pauses_and_stops_a_journey(page, server, sign_in):
    journey = _live_journey(server)
    sign_in(MARKETER)
    page.goto(f"{server}/journeys")
    table = page.get_by_test_id("journeys-table")
    table.get_by_text(journey["name"]).click()
    page.wait_for_url(f"{server}/journeys/{journey['id']}")
    expect(page.get_by_test_id("journey-status")).to_have_text("运行中")
    expect(page.get_by_test_id("node-wait")).to_be_visible()
    expect(page.get_by_test_id("node-sms")).to_contain_text("试驾提醒")
    shoot(page, "journeys-detail-live")

    page.get_by_test_id("journey-pause").click()
    expect(page.get_by_test_id("journey-status")).to_have_text("已暂停")
    page.get_by_test_id("journey-resume").click()
    expect(page.get_by_test_id("journey-status")).to_have_text("运行中")
    page.get_by_test_id("journey-stop").click()
    page.get_by_test_id("journey-stop-confirm").click()
    expect(page.get_by_test_id("journey-status")).to_have_text("已停止")
    expect(page.get_by_test_id("journey-pause")).to_have_count(0)
    page.goto(f"{server}/journeys")
    expect(page.get_by_test_id("journeys-table")).to_contain_text(journey["name"])
    shoot(page, "journeys-list")


def test_a_draft_with_problems_names_them_and_cannot_go_live(page, server, sign_in):
    sign_in(MARKETER)
    page.goto(f"{server}/journeys")
    page.get_by_test_id("new-journey").click()
    page.get_by_test_id("create-journey").click()  # no name: refused, nothing made
    expect(page.get_by_text("name", exact=False).first).to_be_visible()
    name = f"半成品 {uuid.uuid4().hex[:6]}"
    page.get_by_test_id("journey-name").fill(name)
    page.get_by_test_id("create-journey").click()
    page.wait_for_url(f"{server}/journeys/*")
    journey_id = int(page.url.rsplit("/", 1)[1])
    with api(server, MARKETER) as marketer:  # an unconnected wait, as a canvas would save it half drawn
        assert marketer.patch(f"/api/v1/journeys/{journey_id}", json={"definition": {
            "nodes": [{"id": "entry", "type": "entry"}, {"id": "wait", "type": "wait", "hours": 2},
                      {"id": "done", "type": "exit"}],
            "edges": [{"from": "entry", "to": "wait"}]}}).status_code == 200
    page.reload()
    expect(page.get_by_test_id("journey-problems")).to_contain_text("还有出口没有连线")
    expect(page.get_by_test_id("journey-publish")).to_be_disabled()
    expect(page.get_by_test_id("journey-status")).to_have_text("草稿")
    shoot(page, "journeys-draft-problems")


def test_an_unknown_journey_is_told_plainly(page, server, sign_in):
    sign_in(MARKETER)
    page.goto(f"{server}/journeys/987654321")
    expect(page.get_by_text("找不到这个旅程")).to_be_visible()


def test_a_consultant_without_journeys_is_refused_by_the_shell(page, server, sign_in):
    sign_in(SALES)
    page.goto(f"{server}/journeys")
    expect(page.get_by_text("无权访问").first).to_be_visible()
    expect(page.get_by_test_id("journeys-table")).to_have_count(0)
