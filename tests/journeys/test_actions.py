"""Nodes that act for sales: a journey records leads (routed as every lead; an open lead asked again) and gives
salespeople follow-up tasks (the customer's owner, else their open lead's, never another dealer's)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from kehu.cdp import fields
from kehu.cdp.models import Profile
from kehu.core.errors import ValidationFailed
from kehu.core.events import DomainEvent
from kehu.journeys import schemas, service
from kehu.sales import activities
from kehu.sales import schemas as sales_schemas
from kehu.sales import service as sales_service
from kehu.sales.models import Activity, Lead
from kehu.segments import schemas as segment_schemas
from kehu.segments import service as segment_service
from kehu.segments.models import SegmentChange, SegmentMember
from tests.channels.conftest import Audience
from tests.journeys.test_engine import advance, live_journey, places

ENTRY_TO_EXIT = {"from": "act", "to": "out"}


def _definition(node: dict[str, object]) -> dict[str, object]:
    return {"nodes": [{"id": "entry", "type": "entry"}, {"id": "act", **node}, {"id": "out", "type": "exit"}],
            "edges": [{"from": "entry", "to": "act"}, ENTRY_TO_EXIT]}


def test_a_lead_node_records_an_inquiry_routed_as_every_lead(session, clean_database, audience: Audience, tree):  # type: ignore[no-untyped-def]
    zhang, li = audience.customers["zhang"], audience.customers["li"]
    manager = tree.principal(session, tree.a_manager)
    before, _ = sales_service.create_lead(session, manager, sales_schemas.LeadCreate(profile_id=zhang.id,
                                                                                     model_interest="ID.4"))
    session.commit()
    admin = tree.principal(session, tree.admin)
    journey = live_journey(session, admin, _definition({"type": "lead", "model": "ID.7", "note": "春季试驾邀约"}),
                           name="春季试驾")
    service.enrol_by_hand(session, admin, journey.id, schemas.EnrolRequest(profile_ids=[zhang.id, li.id]))
    session.commit()
    advance(clean_database, datetime.now(UTC) + timedelta(seconds=1))
    session.expire_all()
    leads = {lead.profile_id: lead for lead in session.scalars(select(Lead))}
    assert len(leads) == 2  # zhang's open lead asked again, not a second one
    assert (leads[zhang.id].id, leads[zhang.id].inquiries) == (before.id, 2)
    new = leads[li.id]
    assert (new.source, new.model_interest, new.status, new.note) == ("journey", "ID.7", "inquiry",
                                                                      "春季试驾: 春季试驾邀约")
    assert new.unit_id == tree.dealer_a.id  # routed as every lead: to the customer's dealer
    assert places(session, journey.id)[li.id] == ("out", "completed")


def test_a_task_goes_to_the_customers_salesperson_and_never_to_another_dealer(session, clean_database,  # type: ignore[no-untyped-def]
                                                                              audience: Audience, tree):
    zhang, li, zhao = (audience.customers[key] for key in ("zhang", "li", "zhao"))
    session.get_one(Profile, zhang.id).owner_id = tree.a_sales.id  # zhang has a salesperson
    # li has none, but an open lead with a_sales2 at dealer A …
    placed = sales_service.create_lead(session, tree.principal(session, tree.a_manager), sales_schemas.LeadCreate(
        profile_id=li.id, unit_id=tree.dealer_a.id, owner_id=tree.a_sales2.id))[0]
    # … and zhao only an open lead at dealer B (that dealer's business: not where dealer A's task goes)
    sales_service.create_lead(session, tree.principal(session, tree.b_sales),
                              sales_schemas.LeadCreate(mobile="13800000003"))
    session.commit()
    marketer = audience.principal(session, audience.a_marketer)
    journey = live_journey(session, marketer, _definition({"type": "task", "kind": "call", "subject": "回访试驾感受",
                                                          "due_days": 2}), name="试驾回访")
    service.enrol_by_hand(session, marketer, journey.id, schemas.EnrolRequest(profile_ids=[zhang.id, li.id, zhao.id]))
    session.commit()
    started = datetime.now(UTC)
    advance(clean_database, started + timedelta(seconds=1))
    session.expire_all()
    tasks = {task.profile_id: task for task in session.scalars(select(Activity).where(Activity.kind == "call"))}
    assert {key: (tasks[c.id].owner_id, tasks[c.id].unit_id, tasks[c.id].lead_id) for key, c in
            (("zhang", zhang), ("li", li), ("zhao", zhao))} == {
        "zhang": (tree.a_sales.id, tree.dealer_a.id, None),
        "li": (tree.a_sales2.id, tree.dealer_a.id, placed.id),
        "zhao": (None, tree.dealer_a.id, None)}
    for task in tasks.values():
        assert task.subject == "回访试驾感受" and task.done_at is None
        assert started + timedelta(days=2) <= task.due_at <= started + timedelta(days=2, minutes=1)
    # the consultant finds it on their to-do list
    mine = activities.page(session, tree.principal(session, tree.a_sales), mine_open=True).items
    assert [item.subject for item in mine] == ["回访试驾感受"]


def test_only_who_may_make_journeys_act_draws_one_that_does(session, clean_database, audience: Audience):  # type: ignore[no-untyped-def]
    """Marketers hold the journeys.actions permission, not the leads API's privileges (leads.create would let a
    dealer marketer probe the group's customers by mobile): without it a lead, task or field node is refused."""
    marketer = audience.principal(session, audience.a_marketer)
    assert marketer.has("journeys.actions") and not marketer.can("leads", "create")
    marketer = replace(marketer, privileges={key: depth for key, depth in marketer.privileges.items()
                                             if key != "journeys.actions"})
    for node, field in (({"type": "lead"}, "definition.nodes[1]"), ({"type": "task", "subject": "回访"},
                                                                     "definition.nodes[1]"),
                        ({"type": "field", "field": "lifecycle_stage", "value": "owner"}, "definition.nodes[1]")):
        draft = service.create_journey(session, marketer, schemas.JourneyCreate(
            name=f"草稿 {node['type']}", definition=schemas.Definition.model_validate(_definition(node))))
        assert [(p.field, p.code) for p in service.problems(session, marketer, draft)] == [(field, "forbidden")]
    draft = service.create_journey(session, marketer, schemas.JourneyCreate(
        name="没写任务", definition=schemas.Definition.model_validate(_definition({"type": "task"}))))
    assert ("definition.nodes[1].subject", "subject") in [(p.field, p.code)
                                                          for p in service.problems(session, marketer, draft)]


def test_a_segment_node_keeps_a_static_list_and_refuses_one_its_author_may_not_change(  # type: ignore[no-untyped-def]
        session, clean_database, audience: Audience, tree):
    marketer = audience.principal(session, audience.a_marketer)
    visited = segment_service.create_segment(session, marketer, segment_schemas.SegmentCreate(
        name="已邀约", kind="static", profile_ids=[]))
    session.commit()
    zhang, li = audience.customers["zhang"], audience.customers["li"]
    journey = live_journey(session, marketer, {
        "nodes": [{"id": "entry", "type": "entry"}, {"id": "in", "type": "segment", "segment_id": visited.id},
                  {"id": "wait", "type": "wait", "days": 1},
                  {"id": "off", "type": "segment", "segment_id": visited.id, "remove": True},
                  {"id": "out", "type": "exit"}],
        "edges": [{"from": "entry", "to": "in"}, {"from": "in", "to": "wait"}, {"from": "wait", "to": "off"},
                  {"from": "off", "to": "out"}]}, name="邀约名单")
    service.enrol_by_hand(session, marketer, journey.id, schemas.EnrolRequest(profile_ids=[zhang.id, li.id]))
    session.commit()

    def members() -> set[int]:
        session.expire_all()
        return set(session.scalars(select(SegmentMember.profile_id).where(SegmentMember.segment_id == visited.id)))

    advance(clean_database, datetime.now(UTC) + timedelta(seconds=1))
    assert members() == {zhang.id, li.id}
    changes = session.scalars(select(SegmentChange.change).where(SegmentChange.segment_id == visited.id)).all()
    assert sorted(changes) == ["entered", "entered"]  # as a change by hand: segment triggers hear it
    advance(clean_database, datetime.now(UTC) + timedelta(days=1, minutes=1))
    assert members() == set()

    def draft(segment_id: int) -> Any:
        return service.create_journey(session, marketer, schemas.JourneyCreate(
            name=f"名单 {segment_id}", definition=schemas.Definition.model_validate(
                _definition({"type": "segment", "segment_id": segment_id}))))

    # HQ's list (a dealer marketer reads it, may not change it) and a dynamic segment are refused when saved
    with pytest.raises(ValidationFailed) as refused:
        draft(audience.segment_id)
    assert [e.field for e in refused.value.errors] == ["definition.nodes[1].segment_id"]
    dynamic = segment_service.create_segment(session, marketer, segment_schemas.SegmentCreate(
        name="上海客户", kind="dynamic", condition={"type": "field", "field": "city", "op": "eq", "value": "上海"}))
    with pytest.raises(ValidationFailed):
        draft(dynamic.id)


def test_a_field_node_sets_the_stage_or_a_custom_field_and_live_segments_follow(  # type: ignore[no-untyped-def]
        session, clean_database, audience: Audience, tree):
    fields.create_field(session, tree.system, {"key": "interests", "label_zh": "兴趣", "label_en": "Interests",
                                               "type": "multi_option", "options": [
                                                   {"value": "suv", "zh": "SUV", "en": "SUV"},
                                                   {"value": "ev", "zh": "电动", "en": "EV"}]})
    fields.create_field(session, tree.system, {"key": "id_card_no", "label_zh": "身份证号", "label_en": "ID card",
                                               "type": "text", "is_pii": True})
    zhang, li = audience.customers["zhang"], audience.customers["li"]
    session.get_one(Profile, zhang.id).attributes = {"hobby": "越野"}
    session.commit()
    hq = audience.principal(session, audience.hq_marketer)
    journey = live_journey(session, hq, {
        "nodes": [{"id": "entry", "type": "entry"},
                  {"id": "stage", "type": "field", "field": "lifecycle_stage", "value": "lead"},
                  {"id": "likes", "type": "field", "field": "attributes.interests", "value": ["电动"]},
                  {"id": "out", "type": "exit"}],
        "edges": [{"from": "entry", "to": "stage"}, {"from": "stage", "to": "likes"}, {"from": "likes", "to": "out"}]},
        name="意向电动")
    since = datetime.now(UTC)
    service.enrol_by_hand(session, hq, journey.id, schemas.EnrolRequest(profile_ids=[zhang.id, li.id]))
    session.commit()
    advance(clean_database, datetime.now(UTC) + timedelta(seconds=1))
    session.expire_all()
    for customer in (zhang, li):
        profile = session.get_one(Profile, customer.id)
        assert profile.lifecycle_stage == "lead"
        assert profile.attributes.get("interests") == ["ev"]  # the option's value, as the field stores it
        assert datetime.fromisoformat(profile.trait_times["interests"]["ts"]) >= since  # a later call wins, not older
    assert session.get_one(Profile, zhang.id).attributes["hobby"] == "越野"  # the rest of the profile stays
    told = session.scalars(select(DomainEvent.profile_id).where(DomainEvent.kind == "cdp.profile_changed",
                                                                DomainEvent.at >= since)).all()
    assert sorted(told) == sorted([zhang.id, li.id] * 2)  # live segments re-read them after each change

    def problems(node: dict[str, object]) -> list[tuple[str, str]]:
        draft = service.create_journey(session, hq, schemas.JourneyCreate(
            name=f"字段 {len(str(node))}-{node.get('field')}", definition=schemas.Definition.model_validate(
                _definition({"type": "field", **node}))))
        return [(p.field, p.code) for p in service.problems(session, hq, draft)]

    assert problems({"field": "attributes.id_card_no", "value": "x"}) == [("definition.nodes[1].field", "field")]
    assert problems({"field": "attributes.interests", "value": ["飞行"]}) == [("definition.nodes[1].value", "value")]
    assert problems({"field": "lifecycle_stage", "value": None}) == [("definition.nodes[1].value", "value")]
    assert problems({}) == [("definition.nodes[1].field", "field")]


def test_a_dealers_lead_node_leaves_another_dealers_lead_alone(session, clean_database, audience: Audience, tree):  # type: ignore[no-untyped-def]
    """Dealer B holds an open lead of 赵强 (dealer A's customer): dealer A's journey records A's own lead and B's
    lead is not asked again, nor its model or note touched."""
    zhao = audience.customers["zhao"]
    theirs = sales_service.create_lead(session, tree.principal(session, tree.b_sales), sales_schemas.LeadCreate(
        mobile="13800000003", model_interest="Tiguan L", note="B店的备注"))[0]
    session.commit()
    marketer = audience.principal(session, audience.a_marketer)
    journey = live_journey(session, marketer, _definition({"type": "lead", "model": "ID.7", "note": "A店"}),
                           name="A店邀约")
    service.enrol_by_hand(session, marketer, journey.id, schemas.EnrolRequest(profile_ids=[zhao.id]))
    session.commit()
    advance(clean_database, datetime.now(UTC) + timedelta(seconds=1))
    session.expire_all()
    b_lead = session.get_one(Lead, theirs.id)
    assert (b_lead.inquiries, b_lead.model_interest, b_lead.note) == (1, "Tiguan L", "B店的备注")
    mine = session.scalars(select(Lead).where(Lead.profile_id == zhao.id, Lead.id != theirs.id)).all()
    assert [(lead.unit_id, lead.model_interest) for lead in mine] == [(tree.dealer_a.id, "ID.7")]


def test_a_segment_node_may_not_change_the_journeys_own_trigger_segment(session, clean_database,  # type: ignore[no-untyped-def]
                                                                         audience: Audience):
    marketer = audience.principal(session, audience.a_marketer)
    listed = segment_service.create_segment(session, marketer, segment_schemas.SegmentCreate(
        name="回访名单", kind="static", profile_ids=[]))
    draft = service.create_journey(session, marketer, schemas.JourneyCreate(name="自己触发自己", definition=schemas
        .Definition.model_validate({**_definition({"type": "segment", "segment_id": listed.id, "remove": True}),
                                    "trigger": {"type": "segment_entered", "segment_id": listed.id},
                                    "re_entry": "after_exit"})))
    assert ("definition.nodes[1].segment_id", "loop") in [(p.field, p.code)
                                                          for p in service.problems(session, marketer, draft)]
