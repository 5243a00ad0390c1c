"""One of each record an organisation can hold, made through the services (so every rule applies): the other side
of tests that check nothing crosses between organisations."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.cdp import commerce, dedupe, exports, fields, imports
from kehu.cdp import schemas as cdp_schemas
from kehu.cdp import service as cdp_service
from kehu.cdp.models import DuplicateCandidate, Product
from kehu.channels import broadcasts, control, templates
from kehu.channels import schemas as channel_schemas
from kehu.core.jobs import Job
from kehu.journeys import schemas as journey_schemas
from kehu.journeys import service as journey_service
from kehu.sales import activities, opportunities, pipelines, scoring
from kehu.sales import schemas as sales_schemas
from kehu.sales import service as sales_service
from kehu.segments import schemas as segment_schemas
from kehu.segments import service as segment_service
from kehu.segments import tags
from kehu.tenancy import schemas as tenancy_schemas
from kehu.tenancy import service as tenancy_service
from kehu.tenancy.access import Principal
from kehu.tenancy.models import User
from tests.factories.cdp import make_source
from tests.factories.tenancy import make_unit, make_user

_seq = itertools.count(1)


def one_of_each(session: Session, system: Principal) -> dict[str, int]:
    """Make one record of every kind in ``system``'s organisation; their ids by kind (the names a foreign-id field
    is filled from: unit, user, profile, lead, …)."""
    n = next(_seq)
    hq = tenancy_service.root_unit(session, system.org_id)
    unit = make_unit(session, system, hq, f"店{n}", "dealer")
    user = make_user(session, system, unit, "dealer_manager", email=f"everything{n}@example.com")
    manager = tenancy_service.principal_for_user(session, user.id)
    role = tenancy_service.create_role(session, system, data=tenancy_schemas.RoleCreate(
        code=f"role_{n}", name_zh="角色", name_en="Role", privileges={"profiles.read": "unit"}))
    key, _secret = tenancy_service.create_api_key(session, system, data=tenancy_schemas.ApiKeyCreate(
        name="key", role="org_admin", unit_id=unit.id))
    source, _write_key = make_source(session, system, "官网", unit.id)
    field = fields.create_field(session, system, {"key": f"budget_{n}", "label_zh": "预算", "label_en": "Budget",
                                                  "type": "number"})
    product = commerce.create_product(session, system, {"sku": f"SKU-{n}", "name": "ID.4", "kind": "vehicle_model",
                                                        "price": 199900})
    first = cdp_service.create_profile(session, manager, data=cdp_schemas.ProfileCreate(
        name="王一", mobile=f"1390000{n:04d}", owner_id=user.id))
    second = cdp_service.create_profile(session, manager, data=cdp_schemas.ProfileCreate(
        name="王二", mobile=f"1370000{n:04d}", owner_id=user.id))
    third = cdp_service.create_profile(session, manager, data=cdp_schemas.ProfileCreate(name="王三", owner_id=user.id))
    merge = cdp_service.merge_by_hand(session, system, data=cdp_schemas.MergeRequest(
        winner_id=second.id, loser_id=third.id))
    account = cdp_service.create_account(session, manager, name="公司", kind="company", unit_id=unit.id,
                                         owner_id=user.id)
    order = cdp_service.create_order(session, manager, data=cdp_schemas.OrderCreate(
        profile_id=first.id, external_id=f"SO-{n}", lines=[cdp_schemas.OrderLineIn(name="ID.4", price=1)]))
    candidate = DuplicateCandidate(org_id=system.org_id, profile_a_id=first.id, profile_b_id=second.id,
                                   probability=0.9, levels={})
    session.add(candidate)
    run = imports.upload(session, system, filename="a.csv", content="手机\n13511112222\n".encode(), unit_id=unit.id)
    export = exports.request_export(session, system)
    segment = segment_service.create_segment(session, system, segment_schemas.SegmentCreate(
        name=f"客群{n}", kind="static", profile_ids=[first.id]))
    dynamic = segment_service.create_segment(session, system, segment_schemas.SegmentCreate(
        name=f"动态客群{n}", kind="dynamic", condition={"type": "unit", "unit_id": unit.id}))
    group = tags.create_group(session, system, f"组{n}")
    tag = tags.create_tag(session, system, segment_schemas.TagCreate(name=f"标签{n}", group_id=group.id))
    lead, _new = sales_service.create_lead(session, manager, sales_schemas.LeadCreate(
        profile_id=first.id, source="web", owner_id=user.id))
    lead_rule = sales_service.save_rule(session, system, sales_schemas.LeadRuleIn(event=f"Test Drive {n}"))
    routing = sales_service.save_routing(session, system, sales_schemas.RoutingRuleIn(name="路由", unit_id=unit.id))
    sales_service.set_sla(session, system, sales_schemas.SlaIn(unit_id=unit.id, first_contact_hours=4))
    score_rule = scoring.save_rule(session, system, sales_schemas.ScoreRuleIn(name="试驾", event="Test Drive",
                                                                               points=10))
    pipeline = pipelines.default_pipeline(session, system.org_id)
    deal = opportunities.create_opportunity(session, manager, sales_schemas.OpportunityCreate(
        title="商机", profile_id=first.id, account_id=account.id))
    activity = activities.log(session, manager, sales_schemas.ActivityIn(profile_id=first.id, kind="call"))
    dedupe.update_settings(session, system, review_threshold=0.8, auto_merge_threshold=None)
    template = templates.create_template(session, system, channel_schemas.TemplateCreate(
        name=f"模板{n}", channel="sms", content=channel_schemas.TemplateContent(
            zh=channel_schemas.Variant(text="{{ name }}"))))
    broadcast = broadcasts.create_broadcast(session, system, channel_schemas.BroadcastCreate(
        name=f"群发{n}", template_id=template.id, segment_id=segment.id))
    content = templates.save_content(session, system, channel_schemas.ContentItemIn(name=f"snippet{n}", body="x"))
    suppression = control.add_suppression(session, system, channel_schemas.SuppressionIn(
        channel="sms", address=f"+86139{n:08d}"))
    message = templates.test_send(session, system, template.id, channel_schemas.TestSend(address=f"+86138{n:08d}"))
    journey = journey_service.create_journey(session, system, journey_schemas.JourneyCreate(name=f"旅程{n}"))
    journey_service.publish_version(session, system, journey.id, journey_schemas.Publish())
    session.flush()
    job = session.scalar(select(Job.id).where(Job.org_id == system.org_id).order_by(Job.id))
    assert session.get(Product, product.id) is not None and session.get(User, user.id) is not None
    found: dict[str, Any] = {
        "unit": unit.id, "user": user.id, "role": role.id, "api_key": key.id, "source": source.id,
        "field": field.id, "product": product.id, "profile": first.id, "other_profile": second.id,
        "merge": merge.id, "account": account.id, "order": order.id, "candidate": candidate.id, "import": run.id,
        "export": export.id, "segment": segment.id,
        "dynamic_segment": dynamic.id, "tag_group": group.id, "tag": tag.id, "lead": lead.id,
        "lead_rule": lead_rule.id, "routing_rule": routing.id, "score_rule": score_rule.id,
        "pipeline": pipeline.id, "opportunity": deal.id, "activity": activity.id, "job": job,
        "template": template.id, "broadcast": broadcast.id, "content_item": content.id,
        "suppression": suppression.id, "message": message.id, "journey": journey.id,
    }
    return found
