"""The demo's journeys: HQ's template for dealers (a test drive followed up: a day later the dealer's SMS, then a
week to come to the showroom), offered to every dealer; SH001's own journey made of it, a draft to adjust and
publish; and HQ's birthday greeting, drafted. None runs yet, so the demo's outbox and reports stay as seeded:
publishing is the visitor's to try."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.channels import schemas as channel_schemas
from kehu.channels import templates as message_templates
from kehu.channels.models import Template
from kehu.journeys import schemas, service, templates
from kehu.tenancy import service as tenancy_service
from kehu.tenancy.models import User

TEMPLATE = "试驾关怀 · 经销商模版"


def _principal(session: Session, org_id: int, email: str):  # type: ignore[no-untyped-def]
    user = session.scalar(select(User).where(User.org_id == org_id, User.email == email))
    return tenancy_service.principal_for_user(session, user.id) if user is not None else None


def seed_journeys(session: Session, org_id: int) -> int:
    """Returns how many journeys were made."""
    hq = _principal(session, org_id, "marketing1@demo.kehu.dev")
    sms = session.scalar(select(Template.id).where(Template.org_id == org_id, Template.channel == "sms")
                         .order_by(Template.id))
    if hq is None or sms is None:
        return 0
    follow_up = service.create_journey(session, hq, schemas.JourneyCreate(
        name=TEMPLATE, template=True, description="试驾后一天发店里的短信，一周内没到店就再邀约；各店比较到店和成交",
        definition=schemas.Definition.model_validate({
            "trigger": {"type": "event", "event": "test_drive_booked"},
            "goal": {"event": "order_placed", "within_days": 30}, "re_entry": "after_exit", "reentry_days": 90,
            "open": ["wait", "visit"],
            "nodes": [
                {"id": "entry", "type": "entry", "position": {"x": 0, "y": 0}},
                {"id": "wait", "type": "wait", "days": 1, "label": "等一天", "position": {"x": 0, "y": 150}},
                {"id": "sms", "type": "send", "template_id": sms, "label": "试驾关怀短信",
                 "position": {"x": 0, "y": 300}},
                {"id": "visit", "type": "wait_for_event", "event": "showroom_visit", "days": 7,
                 "label": "一周内到店？", "position": {"x": 0, "y": 450}},
                {"id": "came", "type": "exit", "label": "已到店", "position": {"x": -160, "y": 620}},
                {"id": "task", "type": "task", "kind": "call", "subject": "试驾后未到店：电话回访",
                 "due_days": 1, "label": "销售回访", "position": {"x": 160, "y": 620}},
                {"id": "done", "type": "exit", "position": {"x": 160, "y": 780}}],
            "edges": [{"from": "entry", "to": "wait"}, {"from": "wait", "to": "sms"}, {"from": "sms", "to": "visit"},
                      {"from": "visit", "to": "came", "branch": "happened"},
                      {"from": "visit", "to": "task", "branch": "timed_out"}, {"from": "task", "to": "done"}]})))
    service.publish_version(session, hq, follow_up.id, schemas.Publish())
    made = 1
    dealer = _principal(session, org_id, "sh001.marketing@demo.kehu.dev")
    if dealer is not None:
        templates.instantiate(session, dealer, follow_up.id, schemas.InstanceCreate(name="浦东店试驾关怀"))
        made += 1
    greeting = message_templates.create_template(session, hq, channel_schemas.TemplateCreate(
        name="生日祝福短信", description="短信：生日前一天的祝福", channel="sms", purpose="marketing",
        content=channel_schemas.TemplateContent(
            zh=channel_schemas.Variant(text="【示范汽车】{{ name | default('您好', true) }}，明天是您的生日，"
                                            "{{ dealer.name }}全体同事祝您生日快乐！回复TD退订"),
            provider_template="1873563", params=["{{ name | default('客户', true) }}", "{{ dealer.name }}"])))
    service.create_journey(session, hq, schemas.JourneyCreate(
        name="生日祝福", description="生日前一天上午发祝福短信（草稿：发布后每天运行）",
        definition=schemas.Definition.model_validate({
            "trigger": {"type": "date", "field": "birthday", "offset_days": -1, "time": "10:00", "yearly": True},
            "nodes": [{"id": "entry", "type": "entry", "position": {"x": 0, "y": 0}},
                      {"id": "sms", "type": "send", "template_id": greeting.id, "label": "生日祝福",
                       "position": {"x": 0, "y": 150}},
                      {"id": "done", "type": "exit", "position": {"x": 0, "y": 300}}],
            "edges": [{"from": "entry", "to": "sms"}, {"from": "sms", "to": "done"}]})))
    session.flush()
    return made + 1
