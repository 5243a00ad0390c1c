"""Channels in a real browser.

Part A — templates and the outbox: a marketer writes an e-mail template with a personalised subject, sees the
preview render a real customer's name, meets a template syntax error under the field at fault (no crash), fixes
it, saves two versions, sends herself a test and finds it in the outbox, exactly as it would have gone out; a
dealer's sales consultant, who holds no messages privilege, is refused the templates by the shell."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shoot
from tests.e2e.test_customers_ui import api

pytestmark = pytest.mark.e2e

MARKETER = "marketing1@demo.kehu.dev"
SALES = "sh001.sales1@demo.kehu.dev"  # a dealer's sales consultant (kehu/demo/seed.py: dealer SH001)


def _customer(server: str) -> dict:  # type: ignore[type-arg]
    """A named customer the marketer may see, whom the customer search finds by name."""
    with api(server, MARKETER) as marketer:
        people = marketer.get("/api/v1/customers", params={"limit": 100}).json()["items"]
        for person in people:
            if person["name"] and len(person["name"]) >= 2:
                found = marketer.get("/api/v1/customers", params={"q": person["name"], "limit": 20}).json()
                if any(p["id"] == person["id"] for p in found["items"]):
                    return person
    raise AssertionError("the demo has no named customer the marketer can find")


class TestTemplates:
    """Part A: templates, their preview and versions, the outbox (``-k templates`` runs this part)."""

    def test_marketer_writes_a_template_and_previews_it_on_a_customer(self, page, server, sign_in):
        someone = _customer(server)
        name = f"保养礼遇 {uuid.uuid4().hex[:6]}"
        subject = '{{ name | default("车主") }}，您的专属保养礼遇'

        sign_in(MARKETER)
        page.goto(f"{server}/templates")
        new = page.get_by_role("button", name="新建模板").first
        new.wait_for()
        shoot(page, "channels-templates-list-before")
        new.click()
        page.wait_for_url(f"{server}/templates/new")
        page.get_by_label("模板名称").fill(name)
        page.get_by_label("主题").first.fill(subject)
        page.get_by_test_id("mjml-starter-zh").click()
        page.locator(".cm-content").first.get_by_text("<mjml>").wait_for()  # the starter is in the code editor

        # the preview, on a customer chosen by name
        page.get_by_test_id("preview-search").fill(someone["name"])
        page.get_by_test_id("preview-customer").click()
        page.get_by_role("option", name=re.compile(re.escape(someone["name"]))).first.click()
        expect(page.get_by_test_id("preview-subject")).to_have_text(f"{someone['name']}，您的专属保养礼遇")
        mail = page.frame_locator("[data-testid=preview-frame]")
        # the preview is rendered server-side (MJML) after the subject: on a loaded machine it may take a while
        expect(mail.locator("body")).to_contain_text(f"{someone['name']}，您好：", timeout=60_000)
        assert page.get_by_test_id("preview-frame").get_attribute("sandbox") == ""
        shoot(page, "channels-template-editor")

        # a syntax error shows under the field at fault; the page keeps working
        page.get_by_label("主题").first.fill('{{ name | default("车主") }，您的专属保养礼遇')
        subject_field = page.locator("label.q-field").filter(has=page.get_by_test_id("subject-zh"))
        expect(subject_field).to_contain_text("模板语法错误", timeout=10_000)
        expect(page.get_by_test_id("preview-problem")).to_contain_text("请修正标红的内容")
        shoot(page, "channels-template-syntax-error")
        page.get_by_role("button", name="保存模板").click()  # refused, with the fault still at its field
        page.get_by_text("请先修正标红的内容再保存").wait_for()
        assert page.url == f"{server}/templates/new"
        page.get_by_label("主题").first.fill(subject)
        expect(subject_field).not_to_contain_text("模板语法错误", timeout=10_000)
        expect(page.get_by_test_id("preview-subject")).to_have_text(f"{someone['name']}，您的专属保养礼遇")

        # saved: version 1, then a change makes version 2
        page.get_by_role("button", name="保存模板").click()
        page.wait_for_url(re.compile(rf"{server}/templates/\d+\?preview={someone['id']}$"))  # the same customer
        template_url = page.url
        expect(page.get_by_test_id("template-version")).to_have_text("版本 1")
        page.get_by_label("主题").first.fill(subject + "（本月有效）")
        page.get_by_test_id("template-note").fill("主题加上有效期")
        page.get_by_role("button", name="保存模板").click()
        page.get_by_text("已保存为版本 2").wait_for()
        expect(page.get_by_test_id("template-version")).to_have_text("版本 2")
        versions = page.get_by_test_id("versions")
        versions.get_by_text("主题加上有效期").wait_for()
        expect(versions.get_by_text(re.compile(r"^版本 [12]$"))).to_have_count(2)
        versions.get_by_role("button", name="查看").last.click()  # the first version, read-only
        page.get_by_text(re.compile(r"^版本 1 · ")).wait_for()
        page.locator(".q-dialog").get_by_text(subject, exact=True).wait_for()
        shoot(page, "channels-template-version-1")
        page.locator(".q-dialog").get_by_role("button", name="关闭").click()

        # a test to oneself goes out through the outbox
        page.get_by_test_id("test-send").click()
        page.get_by_text("测试消息已发送到").wait_for()
        shoot(page, "channels-template-saved")

        page.goto(f"{server}/templates")
        page.locator(".q-table").get_by_text(name).wait_for()
        shoot(page, "channels-templates-list")
        page.get_by_test_id("library-tab").click()
        page.get_by_test_id("library-add").first.click()
        snippet = f"footer_{uuid.uuid4().hex[:6]}"
        page.get_by_test_id("library-name").fill(snippet)
        page.get_by_test_id("library-body").fill("<p>示范汽车集团 · 客服热线 400-800-0000</p>")
        page.get_by_test_id("library-save").click()
        page.get_by_text(f"素材「{snippet}」已保存").wait_for()
        page.locator(".q-table").get_by_text(f'{{{{ snippet("{snippet}") }}}}').wait_for()
        shoot(page, "channels-library")

        # the newest e-mail (the demo's SMS broadcast may make its messages after it, so only e-mails are shown)
        sent = f"{someone['name']}，您的专属保养礼遇（本月有效）"
        row = page.locator(".q-table tbody tr").filter(has_text=sent).first
        banner = page.get_by_test_id("outbox-banner")  # no real provider: the outbox says so
        page.goto(f"{server}/outbox?channel=email")
        for _ in range(60):  # the embedded worker hands the test to the outbox (the banner: once one went there)
            if row.count() and banner.count():
                break
            page.wait_for_timeout(500)
            page.goto(f"{server}/outbox?channel=email")
        row.wait_for()
        banner.wait_for()
        shoot(page, "channels-outbox")
        row.click()
        dialog = page.get_by_test_id("message-dialog")
        dialog.get_by_text("测试发送").first.wait_for()
        page.frame_locator("[data-testid=message-frame]").get_by_text(f"{someone['name']}，您好：").wait_for()
        shoot(page, "channels-outbox-message")
        dialog.get_by_role("button", name="关闭").click()

        # the customer's messages on the 360 (a test is no customer's message: the panel is there, empty or not)
        page.goto(f"{server}/customers/{someone['id']}")
        page.get_by_test_id("customer-messages").wait_for()
        shoot(page, "channels-customer-messages")

        # the same pages in English
        page.goto(template_url)
        page.get_by_role("button", name="EN", exact=True).click()
        page.get_by_text("Save template").wait_for()
        shoot(page, "channels-template-editor-en")
        page.goto(f"{server}/outbox")
        page.get_by_text("Messages & outbox").first.wait_for()
        shoot(page, "channels-outbox-en")


    def test_a_sales_consultant_is_refused_the_templates(self, page, server, sign_in):
        sign_in(SALES)
        for path in ("/templates", "/templates/new", "/outbox"):
            page.goto(f"{server}{path}")
            page.get_by_text("无权访问").wait_for()
            assert "Traceback" not in page.content()
        shoot(page, "channels-templates-refused")
        assert not page.get_by_role("link", name="消息模板").count()  # not in the navigation either


DEALER_MARKETER = "sh001.marketing@demo.kehu.dev"  # the first dealer of each region runs its own campaigns
APPROVER = "marketing2@demo.kehu.dev"  # HQ marketing holds messages.approve
ADMIN = "admin@demo.kehu.dev"


def _switch_user(page, sign_in, email: str) -> None:  # type: ignore[no-untyped-def]
    page.context.clear_cookies()
    sign_in(email)


def _pick(page, test_id: str, text: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_test_id(test_id).click()
    page.get_by_role("option", name=re.compile(re.escape(text))).first.click()


class TestBroadcasts:
    """Part B: broadcasts — the list, the calendar, the report, and a dealer's broadcast through HQ's approval
    (``-k broadcasts`` runs this part)."""

    def test_hq_marketer_reads_the_report_and_the_calendar(self, page, server, sign_in):
        sign_in(MARKETER)
        page.goto(f"{server}/broadcasts")
        table = page.get_by_test_id("broadcasts-table")
        table.get_by_text("春季保养节 · 全国").wait_for()
        table.get_by_text("五一车主关怀（草稿）").wait_for()
        shoot(page, "channels-broadcasts")

        # the campaign calendar shows the SMS broadcast on the day it started (today, in Shanghai)
        page.get_by_test_id("calendar-tab").click()
        grid = page.get_by_test_id("calendar-grid")
        grid.get_by_text("周末试驾日 · 短信").wait_for()
        shoot(page, "channels-calendar")
        page.get_by_test_id("calendar-next").click()  # next month; the page still works
        page.wait_for_url(re.compile(r".*month=\d{4}-\d{2}"))  # (the click navigates: the goto below must not race it)
        page.get_by_test_id("calendar-month").wait_for()
        page.goto(f"{server}/broadcasts?month=not-a-month")  # unparseable: this month, no error
        page.get_by_test_id("calendar-grid").get_by_text("周末试驾日 · 短信").wait_for()
        page.get_by_test_id("calendar-view").get_by_text("周", exact=True).click()  # this week, with times
        page.wait_for_url(re.compile(r".*week=\d{4}-\d{2}-\d{2}"))
        page.get_by_test_id("calendar-grid").get_by_text("周末试驾日 · 短信").wait_for()
        shoot(page, "channels-calendar-week")
        page.goto(f"{server}/broadcasts?week=2026-02-30")  # no such day: this week, no error
        page.get_by_test_id("calendar-grid").get_by_text("周末试驾日 · 短信").wait_for()
        # one dealer's calendar: HQ's own broadcast is not that dealer's
        _pick(page, "calendar-unit", "上海浦东4S店")
        page.wait_for_url(re.compile(r".*unit_id=\d+"))
        page.get_by_test_id("calendar-grid").wait_for()
        expect(page.get_by_test_id("calendar-grid").get_by_text("周末试驾日 · 短信")).to_have_count(0)

        # the e-mail of yesterday: its report, once the embedded worker has sent it
        page.goto(f"{server}/broadcasts")
        page.get_by_test_id("broadcasts-table").get_by_text("春季保养节 · 全国").click()
        page.wait_for_url(re.compile(rf"{server}/broadcasts/\d+$"))
        expect(page.get_by_test_id("broadcast-status")).to_have_text("已完成", timeout=60_000)
        broadcast_id = int(page.url.rsplit("/", 1)[1])
        with api(server, MARKETER) as marketer:
            figures = marketer.get(f"/api/v1/broadcasts/{broadcast_id}/report").json()
        assert figures["sent"] > 0 and figures["total"] >= figures["sent"]
        report = page.get_by_test_id("broadcast-report")
        expect(report).to_contain_text(f"{figures['sent']:,}")
        page.get_by_test_id("broadcast-chart").wait_for()
        shoot(page, "channels-broadcast-report")
        page.get_by_role("button", name="查看消息").click()
        page.wait_for_url(re.compile(rf"{server}/outbox\?broadcast_id=\d+"))
        page.locator(".q-table tbody tr").first.wait_for()

        page.goto(f"{server}/broadcasts/999999")  # no such broadcast: a page that says so
        page.get_by_text("找不到这次群发").wait_for()

    def test_a_dealers_broadcast_goes_through_hqs_approval(self, page, server, sign_in):
        name = f"本店车主回馈 {uuid.uuid4().hex[:6]}"
        sign_in(DEALER_MARKETER)
        page.goto(f"{server}/broadcasts")
        page.get_by_text("本店周末试驾日").first.wait_for()  # the dealer's own, waiting for HQ
        assert not page.get_by_text("五一车主关怀（草稿）").count()  # HQ's draft is not the dealer's to see

        page.get_by_test_id("new-broadcast").click()
        dialog = page.get_by_test_id("broadcast-dialog")
        dialog.get_by_test_id("broadcast-save").click()  # nothing filled in: refused, the dialog stays
        expect(dialog.get_by_test_id("broadcast-problem")).to_have_text(["请填写名称", "请选择模板", "请选择客群"])
        page.get_by_test_id("broadcast-name").fill("   ")  # blank is no name
        dialog.get_by_test_id("broadcast-save").click()
        expect(dialog.get_by_test_id("broadcast-problem").first).to_have_text("请填写名称")
        page.get_by_test_id("broadcast-name").fill(name)
        _pick(page, "broadcast-template", "周末试驾邀请")
        _pick(page, "broadcast-segment", "同意短信营销的潜客")
        page.get_by_test_id("broadcast-later").click()
        dialog.get_by_label("日期").fill("")
        dialog.get_by_test_id("broadcast-save").click()  # a time asked for, none given
        dialog.get_by_text("请填写完整的日期和时间。").wait_for()
        dialog.get_by_label("日期").fill("2099-01-15")
        shoot(page, "channels-broadcast-dialog")
        dialog.get_by_test_id("broadcast-save").click()
        page.wait_for_url(re.compile(rf"{server}/broadcasts/\d+$"))
        broadcast_url = page.url
        expect(page.get_by_test_id("broadcast-status")).to_have_text("草稿")
        page.get_by_text("这次群发提交后需经审批").wait_for()
        page.get_by_test_id("broadcast-submit").click()
        expect(page.get_by_test_id("broadcast-status")).to_have_text("待审批")
        assert not page.get_by_test_id("broadcast-approve").count()  # a dealer does not approve
        shoot(page, "channels-broadcast-submitted")

        # HQ's approver rejects it with a comment, the dealer reads it, fixes nothing and submits again
        _switch_user(page, sign_in, APPROVER)
        page.goto(broadcast_url)
        page.get_by_test_id("broadcast-reject").click()
        page.get_by_test_id("review-text").fill("请改到周末上午发送")
        page.get_by_test_id("review-save").click()
        expect(page.get_by_test_id("broadcast-status")).to_have_text("已驳回")
        _switch_user(page, sign_in, DEALER_MARKETER)
        page.goto(broadcast_url)
        expect(page.get_by_test_id("review-comment")).to_have_text("请改到周末上午发送")
        page.get_by_test_id("broadcast-submit").click()
        expect(page.get_by_test_id("broadcast-status")).to_have_text("待审批")

        _switch_user(page, sign_in, APPROVER)
        page.goto(broadcast_url)
        page.get_by_test_id("broadcast-approve").click()
        page.get_by_test_id("review-text").fill("同意")
        page.get_by_test_id("review-save").click()
        expect(page.get_by_test_id("broadcast-status")).to_have_text("待发送")
        shoot(page, "channels-broadcast-approved")
        page.get_by_test_id("broadcast-cancel").click()
        page.locator(".q-dialog").get_by_role("button", name="取消群发").click()
        expect(page.get_by_test_id("broadcast-status")).to_have_text("已取消")
        assert not page.get_by_test_id("broadcast-cancel").count()

    def test_hq_marketer_sends_a_broadcast_to_a_segment_and_reads_it_in_the_outbox_and_report(
            self, page, server, sign_in):
        name = f"保养到期提醒 {uuid.uuid4().hex[:6]}"
        with api(server, ADMIN) as admin, api(server, MARKETER) as marketer:
            rules = admin.get("/api/v1/communication-policy").json()["own"]
            # a service message goes at once whatever the hour only where no quiet hours hold it (the test must
            # not depend on the time it runs at: the same start and end mean none); the demo's rules come back after
            assert admin.put("/api/v1/communication-policy", json={
                **rules, "quiet_start": "00:00", "quiet_end": "00:00"}).status_code == 200
            template = marketer.post("/api/v1/templates", json={
                "name": name, "channel": "email", "purpose": "service", "content": {"zh": {
                    "subject": "{{ name | default('车主') }}，您的爱车该保养了",
                    "html": "<p>{{ name | default('车主') }}，您好：</p><p>{{ dealer.name }}提醒您按时保养。</p>"}}})
            assert template.status_code == 201, template.text
        try:
            sign_in(MARKETER)
            page.goto(f"{server}/broadcasts")
            page.get_by_test_id("new-broadcast").click()
            page.get_by_test_id("broadcast-name").fill(f"{name} · 全国")
            _pick(page, "broadcast-template", name)
            _pick(page, "broadcast-segment", "有邮箱的客户")
            page.get_by_test_id("broadcast-save").click()
            page.wait_for_url(re.compile(rf"{server}/broadcasts/\d+$"))
            page.get_by_test_id("broadcast-submit").click()  # HQ's own: no approval asked
            expect(page.get_by_test_id("broadcast-status")).to_have_text("已完成", timeout=60_000)
            report = page.get_by_test_id("broadcast-report")
            expect(report).to_contain_text("已发送")
            expect(report.locator(".text-3xl").nth(1)).not_to_have_text("0")  # something was sent
            shoot(page, "channels-broadcast-sent")
            page.get_by_role("button", name="查看消息").click()
            page.wait_for_url(re.compile(rf"{server}/outbox\?broadcast_id=\d+"))
            rows = page.locator(".q-table tbody tr")
            expect(rows.filter(has_text="您的爱车该保养了").first).to_be_visible()
            expect(rows.filter(has_text="已发送").first).to_be_visible()
        finally:
            with api(server, ADMIN) as admin:
                assert admin.put("/api/v1/communication-policy", json=rules).status_code == 200

    def test_a_sales_consultant_has_no_broadcasts(self, page, server, sign_in):
        sign_in(SALES)
        page.goto(f"{server}/broadcasts")
        page.get_by_text("无权访问").wait_for()
        assert not page.get_by_role("link", name="群发").count()


class TestChannelSettings:
    """Part C: channel accounts, the communication rules and the suppression list (``-k settings``)."""

    def test_admin_sets_up_a_channel_the_rules_and_a_suppression(self, page, server, sign_in):
        with api(server, ADMIN) as admin:
            units = {u["code"]: u["id"] for u in admin.get("/api/v1/units").json()}
        sign_in(ADMIN)
        page.goto(f"{server}/admin/channels?unit_id={units['SH002']}")
        email = page.get_by_test_id("channel-email")
        expect(page.get_by_test_id("channel-state-email")).to_have_text("仅存入发件箱")
        _pick(page, "provider-email", "邮件服务器（SMTP）")
        page.get_by_test_id("save-email").click()  # nothing filled in: each required field says so
        expect(email).to_contain_text("必填")
        page.get_by_text("未保存：请补全标红的项").wait_for()
        shoot(page, "channels-settings-required")
        page.get_by_test_id("email-host").fill("smtp.sh002.example.com")
        page.get_by_test_id("email-port").fill("five-eight-seven")
        page.get_by_test_id("save-email").click()
        expect(email).to_contain_text("请填写整数")
        page.get_by_test_id("email-port").fill("587")
        page.get_by_test_id("email-from_address").fill("service@sh002.example.com")
        page.get_by_test_id("save-email").click()
        expect(page.get_by_test_id("channel-state-email")).to_have_text("邮件服务器（SMTP）")
        shoot(page, "channels-settings")
        page.get_by_test_id("channel-email").get_by_role("button", name="改回发件箱").click()
        expect(page.get_by_test_id("channel-state-email")).to_have_text("仅存入发件箱")

        # a dealer may tighten HQ's rules, never loosen them (HQ: two marketing messages a day at most)
        page.get_by_test_id("rules-tab").click()
        page.get_by_test_id("cap-per_day-all").fill("5")
        page.get_by_test_id("rules-save").click()
        page.get_by_text("沟通规则未保存").wait_for()
        expect(page.get_by_test_id("channel-rules")).to_contain_text("上级允许最多 2 条")
        page.get_by_test_id("quiet-start").fill("23:00")  # HQ keeps 21:00–09:00 quiet: narrower is looser
        page.get_by_test_id("quiet-end").fill("07:00")
        page.get_by_test_id("rules-save").click()
        expect(page.get_by_test_id("channel-rules")).to_contain_text("须包含上级的免打扰时段 21:00–09:00")
        page.get_by_test_id("quiet-start").fill("20:00")
        page.get_by_test_id("quiet-end").fill("09:00")
        page.get_by_test_id("cap-per_day-all").fill("1")
        page.get_by_test_id("rules-save").click()
        page.get_by_text("沟通规则已保存").wait_for()
        shoot(page, "channels-settings-rules")

        page.get_by_test_id("suppressions-tab").click()
        page.get_by_test_id("suppression-address").fill("no-such-address")
        page.get_by_test_id("suppression-add").click()
        page.get_by_text("这不是有效的邮件地址").wait_for()  # refused, nothing listed
        expect(page.get_by_text("no-such-address", exact=True)).to_have_count(0)
        address = f"stop.{uuid.uuid4().hex[:6]}@example.com"
        page.get_by_test_id("suppression-address").fill(address.upper())  # kept as messages carry it
        page.get_by_test_id("suppression-add").click()
        page.get_by_text("已加入屏蔽名单").wait_for()
        page.get_by_text(address).wait_for()
        shoot(page, "channels-settings-suppressions")

    def test_a_dealer_marketer_is_refused_the_settings(self, page, server, sign_in):
        sign_in(DEALER_MARKETER)
        page.goto(f"{server}/admin/channels")
        page.get_by_text("无权访问").wait_for()


class TestDeadLetters:
    """Part D: webhooks that failed are read, the cause fixed, and sent again from the outbox (``-k dead``)."""

    def test_a_marketer_replays_failed_webhooks_once_the_cause_is_fixed(self, page, server, sign_in):
        with api(server, ADMIN) as admin, api(server, MARKETER) as marketer:
            # the partner's endpoint is wrong: each call answers 404, which no retry mends
            account = admin.put("/api/v1/channel-accounts", json={
                "channel": "webhook", "provider": "webhook", "config": {"url": f"{server}/no-such-endpoint"},
                "secrets": {"signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}})
            assert account.status_code == 200, account.text
            people = [p["id"] for p in marketer.get("/api/v1/customers", params={"limit": 3}).json()["items"]]
            segment = marketer.post("/api/v1/segments", json={
                "name": f"回传测试 {uuid.uuid4().hex[:6]}", "kind": "static", "profile_ids": people}).json()
            template = marketer.post("/api/v1/templates", json={
                "name": f"同步经销商系统 {uuid.uuid4().hex[:6]}", "channel": "webhook", "purpose": "transactional",
                "content": {"zh": {"text": ""}, "payload": {"name": "{{ name }}"}}}).json()
            broadcast = marketer.post("/api/v1/broadcasts", json={
                "name": "同步到经销商系统", "template_id": template["id"], "segment_id": segment["id"]}).json()
            assert marketer.post(f"/api/v1/broadcasts/{broadcast['id']}/submit").status_code == 200
            for _ in range(120):
                report = marketer.get(f"/api/v1/broadcasts/{broadcast['id']}/report").json()
                if report["failed"] == 3:
                    break
                time.sleep(0.5)
            assert report["failed"] == 3, report

        sign_in(MARKETER)
        page.goto(f"{server}/outbox?status=failed&broadcast_id={broadcast['id']}")
        rows = page.locator(".q-table tbody tr")
        expect(rows).to_have_count(3)
        rows.first.click()
        dialog = page.get_by_test_id("message-dialog")
        dialog.get_by_text("webhook HTTP 404").wait_for()  # why it failed, in the provider's words
        shoot(page, "channels-dead-letter")
        dialog.get_by_role("button", name="关闭").click()

        with api(server, ADMIN) as admin:  # the cause fixed: the hook goes to the outbox for now
            assert admin.delete(f"/api/v1/channel-accounts/{account.json()['id']}").status_code == 204
        page.get_by_test_id("retry-all").click()
        page.get_by_text("重新发送 3 条消息？").wait_for()
        page.get_by_test_id("retry-confirm").click()
        page.get_by_text("3 条消息已重新排队发送").wait_for()
        page.goto(f"{server}/outbox?broadcast_id={broadcast['id']}")
        for _ in range(60):
            if page.locator(".q-table tbody tr").filter(has_text="已发送").count() == 3:
                break
            page.wait_for_timeout(500)
            page.reload()
        expect(page.locator(".q-table tbody tr").filter(has_text="已发送")).to_have_count(3)
        shoot(page, "channels-dead-letters-replayed")
