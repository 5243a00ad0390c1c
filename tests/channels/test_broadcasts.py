"""Broadcasts end to end in the services: communication control decides who gets a message (and says why not),
the approval flow holds a dealer's broadcast until HQ approves, a dealer reaches only its own customers, the
outbox receives what would have gone out, and a paused broadcast sends nobody twice."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

import kehu.cdp.happenings  # noqa: F401 - the consumer that writes the customers' events
from kehu.cdp.models import Event, Profile
from kehu.channels import broadcasts, control, schemas, service
from kehu.channels.models import Broadcast, Message
from kehu.core import events
from kehu.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tests.channels.conftest import (
    ALWAYS_OPEN,
    dispatch_all,
    email_template,
    run_due,
    send_now,
    statuses,
)


def test_control_names_why_each_customer_is_skipped(session, clean_database, audience):
    hq = audience.principal(session, audience.hq_marketer)
    c = audience.customers
    control.suppress(session, org_id=hq.org_id, channel="email", address="liuyang@example.com",
                     reason="hard_bounce", evidence="550 5.1.1 no such user")
    template = email_template(session, hq)
    broadcast = send_now(session, hq, template.id, audience.segment_id)
    run_due(clean_database)
    found = statuses(session, broadcast.id)
    assert found == {
        c["zhang"].id: ("queued", None),
        c["li"].id: ("skipped", "no_consent"),
        c["zhao"].id: ("skipped", "no_address"),
        c["wang"].id: ("queued", None),
        c["liu"].id: ("skipped", "suppressed"),
    }
    report = broadcasts.report(session, hq, broadcast.id)
    assert report.skipped == {"no_consent": 1, "no_address": 1, "suppressed": 1}
    assert report.queued == 2 and report.total == 5


def test_running_the_broadcast_job_again_adds_nobody(session, clean_database, audience):
    hq = audience.principal(session, audience.hq_marketer)
    broadcast = send_now(session, hq, email_template(session, hq).id, audience.segment_id)
    run_due(clean_database)
    session.expire_all()
    assert broadcasts.make_messages(session, session.merge(broadcast)) == 5
    session.commit()
    assert session.scalar(select(func.count()).select_from(Message).where(
        Message.broadcast_id == broadcast.id)) == 5


def test_frequency_cap_counts_what_was_sent_lately(session, clean_database, audience):
    hq = audience.principal(session, audience.hq_marketer)
    control.set_policy(session, audience.tree.system, audience.tree.hq.id, schemas.PolicyIn(
        per_day=schemas.Caps(email=1), quiet_start="00:00", quiet_end="00:00"))
    session.commit()
    first = send_now(session, hq, email_template(session, hq).id, audience.segment_id, "第一次")
    run_due(clean_database)
    second = send_now(session, hq, email_template(session, hq, name="第二个").id, audience.segment_id, "第二次")
    run_due(clean_database)
    c = audience.customers
    assert statuses(session, first.id)[c["zhang"].id] == ("queued", None)
    assert statuses(session, second.id)[c["zhang"].id] == ("skipped", "frequency_cap")
    # service messages are not marketing: the cap does not hold them, withdrawn consent would
    service_template = email_template(session, hq, name="召回通知", purpose="service")
    third = send_now(session, hq, service_template.id, audience.segment_id, "召回")
    run_due(clean_database)
    assert statuses(session, third.id)[c["zhang"].id] == ("queued", None)
    assert statuses(session, third.id)[c["li"].id] == ("queued", None)  # never asked: service may go


def test_quiet_hours_hold_marketing_until_they_end(session, clean_database, audience):
    hq = audience.principal(session, audience.hq_marketer)
    # quiet all day but the minute before now: whenever the test runs, it is quiet
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo
    local = datetime.now(ZoneInfo("Asia/Shanghai"))
    opening = (local - timedelta(minutes=2)).strftime("%H:%M")
    closing = (local - timedelta(minutes=1)).strftime("%H:%M")
    control.set_policy(session, audience.tree.system, audience.tree.hq.id,
                       schemas.PolicyIn(quiet_start=closing, quiet_end=opening))
    session.commit()
    broadcast = send_now(session, hq, email_template(session, hq).id, audience.segment_id)
    run_due(clean_database)
    assert dispatch_all(clean_database) == 0  # nothing is due before the quiet hours end
    report = broadcasts.report(session, hq, broadcast.id)
    assert report.held == 3 and report.sent == 0  # 张伟, 王芳, 刘洋 may receive it, later


def test_duplicate_address_in_one_send_gets_one_message(session, clean_database, audience):
    hq = audience.principal(session, audience.hq_marketer)
    zhang = audience.customers["zhang"]
    twin = Profile(org_id=zhang.org_id, unit_id=zhang.unit_id, name="张伟(重复)", email=zhang.email,
                   lifecycle_stage="prospect", attributes={}, trait_times={})
    session.add(twin)
    session.flush()
    from kehu.cdp import relations
    relations.record_consent(session, audience.tree.system, twin, channel="email", purpose="marketing",
                             granted=True, evidence="form")
    from kehu.core.db import utcnow
    from kehu.segments.models import SegmentMember
    session.add(SegmentMember(segment_id=audience.segment_id, profile_id=twin.id, org_id=twin.org_id,
                              added_at=utcnow()))
    session.commit()
    broadcast = send_now(session, hq, email_template(session, hq).id, audience.segment_id)
    run_due(clean_database)
    found = statuses(session, broadcast.id)
    assert found[zhang.id] == ("queued", None)
    assert found[twin.id] == ("skipped", "duplicate")


def test_dealer_broadcast_waits_for_hq_approval_and_reaches_only_its_customers(session, clean_database, audience):
    tree = audience.tree
    control.set_policy(session, tree.system, tree.hq.id, schemas.PolicyIn(
        quiet_start="00:00", quiet_end="00:00", approval_required=True))
    session.commit()
    a = audience.principal(session, audience.a_marketer)
    template = email_template(session, a, name="A店活动")
    broadcast = broadcasts.create_broadcast(session, a, schemas.BroadcastCreate(
        name="A店周末试驾", template_id=template.id, segment_id=audience.segment_id))
    assert broadcasts.submit(session, a, broadcast.id).status == "submitted"
    session.commit()
    run_due(clean_database)
    assert statuses(session, broadcast.id) == {}  # nothing made before approval

    with pytest.raises(NotFound):  # another dealer does not even see it
        broadcasts.review(session, audience.principal(session, audience.b_marketer), broadcast.id,
                          schemas.Review(approve=True))
    with pytest.raises(Forbidden):  # the dealer's manager sees it but may not approve
        broadcasts.review(session, audience.principal(session, tree.a_manager), broadcast.id,
                          schemas.Review(approve=True))
    hq = audience.principal(session, audience.hq_marketer)
    with pytest.raises(ValidationFailed) as rejected_without_reason:
        broadcasts.review(session, hq, broadcast.id, schemas.Review(approve=False))
    assert rejected_without_reason.value.errors[0].field == "comment"
    rejected = broadcasts.review(session, hq, broadcast.id, schemas.Review(approve=False, comment="标题太长"))
    assert rejected.status == "rejected" and rejected.review_comment == "标题太长"
    broadcasts.update_broadcast(session, a, broadcast.id, schemas.BroadcastUpdate(name="A店试驾"))
    broadcasts.submit(session, a, broadcast.id)
    approved = broadcasts.review(session, hq, broadcast.id, schemas.Review(approve=True, comment="同意"))
    assert approved.status == "scheduled" and approved.reviewed_by_id == audience.hq_marketer.id
    session.commit()
    run_due(clean_database)
    c = audience.customers
    assert set(statuses(session, broadcast.id)) == {c["zhang"].id, c["li"].id, c["zhao"].id}  # dealer A's only


def test_author_cannot_approve_their_own_broadcast(session, clean_database, audience):
    tree = audience.tree
    control.set_policy(session, tree.system, tree.hq.id, schemas.PolicyIn(approval_required=True))
    admin = tree.principal(session, tree.admin)
    east = make_regional_broadcast(session, admin, audience)
    with pytest.raises(Forbidden):
        broadcasts.review(session, admin, east.id, schemas.Review(approve=True))


def make_regional_broadcast(session, admin, audience):  # type: ignore[no-untyped-def]
    template = email_template(session, admin, name="大区活动")
    broadcast = broadcasts.create_broadcast(session, admin, schemas.BroadcastCreate(
        name="华东活动", template_id=template.id, segment_id=audience.segment_id, unit_id=audience.tree.east.id))
    broadcasts.submit(session, admin, broadcast.id)
    assert broadcast.status == "submitted"
    return broadcast


def test_another_dealer_sees_nothing_of_a_dealers_broadcast(session, clean_database, audience):
    a = audience.principal(session, audience.a_marketer)
    b = audience.principal(session, audience.b_marketer)
    broadcast = send_now(session, a, email_template(session, a, name="A店").id, audience.segment_id)
    run_due(clean_database)
    dispatch_all(clean_database)
    with pytest.raises(NotFound):
        broadcasts.get_broadcast(session, b, broadcast.id)
    assert service.list_messages(session, b).items == []
    a_message = service.list_messages(session, a).items[0]
    with pytest.raises(NotFound):
        service.get_message(session, b, a_message.id)
    # nor does naming A's broadcast in a filter reveal anything
    assert service.list_messages(session, b, broadcast_id=broadcast.id).items == []
    # a dealer cannot send another dealer's template either
    with pytest.raises(ValidationFailed) as refused:
        broadcasts.create_broadcast(session, b, schemas.BroadcastCreate(
            name="偷用", template_id=broadcast.template_id, segment_id=audience.segment_id))
    assert refused.value.errors[0].field == "template_id"


def test_outbox_receives_rendered_messages_and_the_customers_events(session, clean_database, audience):
    hq = audience.principal(session, audience.hq_marketer)
    broadcast = send_now(session, hq, email_template(session, hq).id, audience.segment_id)
    run_due(clean_database)
    assert dispatch_all(clean_database) == 3
    session.expire_all()
    sent = {m.profile_id: m for m in session.scalars(select(Message).where(Message.broadcast_id == broadcast.id,
                                                                           Message.status == "sent"))}
    zhang = audience.customers["zhang"]
    assert set(sent) == {zhang.id, audience.customers["wang"].id, audience.customers["liu"].id}
    assert "您好 张伟" in sent[zhang.id].body and sent[zhang.id].subject == "张伟，春季保养优惠"
    assert "/t/c/" in sent[zhang.id].body and "dealer.example.com" not in sent[zhang.id].body  # links tracked
    run_due(clean_database)
    session.expire_all()
    assert broadcasts.get_broadcast(session, hq, broadcast.id).status == "sent"
    while events.consume_all(clean_database):
        pass
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Event).where(
        Event.profile_id == zhang.id, Event.event == "message_sent")) == 1


def test_pause_holds_the_rest_and_resume_sends_nobody_twice(session, clean_database, audience):
    hq = audience.principal(session, audience.hq_marketer)
    broadcast = send_now(session, hq, email_template(session, hq).id, audience.segment_id)
    run_due(clean_database)
    broadcasts.pause(session, hq, broadcast.id)
    session.commit()
    assert dispatch_all(clean_database) == 0
    with pytest.raises(Conflict):
        broadcasts.pause(session, hq, broadcast.id)
    broadcasts.resume(session, hq, broadcast.id)
    session.commit()
    assert dispatch_all(clean_database) == 3
    assert dispatch_all(clean_database) == 0
    report = broadcasts.report(session, hq, broadcast.id)
    assert report.sent == 3 and report.queued == 0


def test_a_dealer_may_tighten_hq_rules_but_not_loosen_them(session, clean_database, audience):
    tree = audience.tree
    control.set_policy(session, tree.system, tree.hq.id, schemas.PolicyIn(
        per_day=schemas.Caps(all=3), quiet_start="21:00", quiet_end="09:00"))
    with pytest.raises(ValidationFailed) as looser:
        control.set_policy(session, tree.system, tree.dealer_a.id, schemas.PolicyIn(
            per_day=schemas.Caps(all=5), quiet_start="22:00", quiet_end="08:00"))
    assert {e.field for e in looser.value.errors} == {"per_day.all", "quiet_start"}
    control.set_policy(session, tree.system, tree.dealer_a.id, schemas.PolicyIn(
        per_day=schemas.Caps(all=2, sms=1), quiet_start="20:00", quiet_end="10:00"))
    rules = control.rules_for(session, tree.org.id, tree.dealer_a.id)
    assert rules.per_day == {"all": 2, "sms": 1} and (rules.quiet_start, rules.quiet_end) == ("20:00", "10:00")
    assert control.rules_for(session, tree.org.id, tree.dealer_b.id).per_day == {"all": 3}
    shown = control.get_policy(session, tree.system, tree.dealer_a.id)  # what the settings page shows
    assert (shown.effective.per_day.all, shown.inherited.per_day.all, shown.own.per_day.all) == (2, 3, 2)
    assert shown.inherited.quiet_start == "21:00" and shown.effective.quiet_start == "20:00"
    with pytest.raises(Forbidden):
        control.set_policy(session, audience.principal(session, audience.a_marketer), tree.dealer_a.id, ALWAYS_OPEN)


def test_the_report_counts_a_dealers_teams_for_the_dealer_and_shows_every_hour(session, clean_database, audience):
    from datetime import UTC, datetime, timedelta

    from kehu.segments import schemas as segment_schemas
    from kehu.segments import service as segment_service
    from kehu.tenancy import schemas as tenancy_schemas
    from kehu.tenancy import service as tenancy_service
    from tests.channels.conftest import customer

    tree = audience.tree
    team = tenancy_service.create_unit(session, tree.system, data=tenancy_schemas.UnitCreate(
        parent_id=tree.dealer_a.id, code="A-S", name="A店销售组", kind="team"))
    chen = customer(session, tree.system, team.id, "陈静", email="chenjing@example.com", consent={"email": True})
    people = [audience.customers["zhang"].id, chen.id, audience.customers["wang"].id]
    segment = segment_service.create_segment(session, tree.system, segment_schemas.SegmentCreate(
        name="三位", kind="static", profile_ids=people))
    session.commit()
    hq = audience.principal(session, audience.hq_marketer)
    broadcast = send_now(session, hq, email_template(session, hq).id, segment.id)
    run_due(clean_database)
    assert dispatch_all(clean_database) == 3
    session.expire_all()
    half_past = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    for message in session.scalars(select(Message).where(Message.broadcast_id == broadcast.id)):
        # Chen's went out three hours before the others
        message.sent_at = half_past - timedelta(hours=3) if message.profile_id == chen.id else half_past
    session.commit()

    report = broadcasts.report(session, hq, broadcast.id)
    by_unit = {row["name"]: row["sent"] for row in report.by_unit}
    assert by_unit == {tree.dealer_a.name: 2, tree.dealer_b.name: 1}  # the team's customer counts for dealer A
    assert [h["sent"] for h in report.by_hour] == [1, 0, 0, 2]  # the quiet hours between are there, as zeros


def test_failed_messages_are_sent_again_by_whoever_may_touch_them(session, clean_database, audience):
    """The dead letters: after a person read why they failed, they replay them — each dealer only its own; a
    cancelled broadcast's stay failed."""
    hq = audience.principal(session, audience.hq_marketer)
    b = audience.principal(session, audience.b_marketer)
    c = audience.customers
    broadcast = send_now(session, hq, email_template(session, hq).id, audience.segment_id)
    run_due(clean_database)
    assert dispatch_all(clean_database) == 3
    session.execute(update(Message).where(Message.broadcast_id == broadcast.id, Message.status == "sent")
                    .values(status="failed", error="503 the endpoint was down", attempts=6))
    session.commit()
    zhang_message = session.scalar(select(Message.id).where(Message.profile_id == c["zhang"].id))

    with pytest.raises(ValidationFailed):  # "every failed message" is never one click away
        service.retry_messages(session, hq, schemas.MessageRetry())
    with pytest.raises(ValidationFailed) as refused:  # dealer B names dealer A's message: refused, untouched
        service.retry_messages(session, b, schemas.MessageRetry(message_ids=[zhang_message]))
    assert [e.field for e in refused.value.errors] == ["message_ids"]
    assert service.retry_messages(session, b, schemas.MessageRetry(broadcast_id=broadcast.id)) == 1  # 王芳 only
    assert service.retry_messages(session, hq, schemas.MessageRetry(broadcast_id=broadcast.id)) == 2
    session.commit()
    assert statuses(session, broadcast.id)[c["wang"].id] == ("queued", None)
    assert dispatch_all(clean_database) == 3
    assert {s for s, _ in statuses(session, broadcast.id).values()} == {"sent", "skipped"}

    session.execute(update(Message).where(Message.broadcast_id == broadcast.id, Message.status == "sent")
                    .values(status="failed"))
    session.execute(update(Broadcast).where(Broadcast.id == broadcast.id).values(status="cancelled"))
    session.commit()
    assert service.retry_messages(session, hq, schemas.MessageRetry(status="failed")) == 0


def test_a_templates_report_counts_every_broadcast_that_used_it_within_the_readers_scope(
        session, clean_database, audience):
    hq = audience.principal(session, audience.hq_marketer)
    template = email_template(session, hq)
    for name in ("第一次", "第二次"):
        send_now(session, hq, template.id, audience.segment_id, name=name)
    run_due(clean_database)
    assert dispatch_all(clean_database) == 6
    assert broadcasts.template_report(session, hq, template.id).sent == 6
    b = audience.principal(session, audience.b_marketer)
    seen_by_b = broadcasts.template_report(session, b, template.id)
    assert (seen_by_b.sent, seen_by_b.total, seen_by_b.by_unit) == (2, 2, [])  # 王芳 twice; no per-dealer table
    with pytest.raises(NotFound):
        broadcasts.template_report(session, hq, template.id + 999)


def test_a_dealer_manager_reads_the_messages_to_their_own_customers_only(session, clean_database, audience):
    hq = audience.principal(session, audience.hq_marketer)
    broadcast = send_now(session, hq, email_template(session, hq).id, audience.segment_id)
    run_due(clean_database)
    assert dispatch_all(clean_database) == 3
    manager = audience.principal(session, audience.tree.a_manager)
    seen = service.list_messages(session, manager, broadcast_id=broadcast.id).items
    assert {m.profile_id for m in seen} == {audience.customers["zhang"].id, audience.customers["li"].id,
                                            audience.customers["zhao"].id}  # dealer A's three, sent or skipped
    report = broadcasts.report(session, manager, broadcast.id)
    assert (report.sent, report.by_unit) == (1, [])  # no other dealer's figures either


def test_sending_again_applies_the_rules_again_and_leaves_unknown_ones_unless_asked(
        session, clean_database, audience):
    hq = audience.principal(session, audience.hq_marketer)
    c = audience.customers
    broadcast = send_now(session, hq, email_template(session, hq).id, audience.segment_id)
    run_due(clean_database)
    assert dispatch_all(clean_database) == 3
    session.execute(update(Message).where(Message.broadcast_id == broadcast.id, Message.status == "sent")
                    .values(status="failed"))
    session.execute(update(Message).where(Message.profile_id == c["liu"].id).values(status="unknown"))
    session.commit()
    # since it failed, 王芳 unsubscribed (her address is suppressed)
    control.suppress(session, org_id=hq.org_id, channel="email", address="wangfang@example.com",
                     reason="unsubscribed", evidence="the link in another e-mail")
    session.commit()
    assert service.retry_messages(session, hq, schemas.MessageRetry(broadcast_id=broadcast.id)) == 1  # 张伟
    session.commit()
    found = statuses(session, broadcast.id)
    assert found[c["zhang"].id] == ("queued", None)
    assert found[c["wang"].id] == ("skipped", "suppressed")  # the rules hold for a message sent again
    assert found[c["liu"].id] == ("unknown", None)  # an unknown outcome is replayed only when asked for
    assert service.retry_messages(session, hq, schemas.MessageRetry(status="unknown")) == 1
    session.commit()
    session.execute(update(Message).where(Message.broadcast_id == broadcast.id).values(status="failed"))
    session.execute(update(Broadcast).where(Broadcast.id == broadcast.id).values(status="paused"))
    session.commit()
    assert service.retry_messages(session, hq, schemas.MessageRetry(broadcast_id=broadcast.id)) == 0  # paused


def test_the_suppression_list_is_the_organisations_to_manage(session, clean_database, audience):
    """A dealer's settings manager (a custom role: settings.manage for its unit only) would otherwise read every
    dealer's suppressed addresses, or lift another dealer's customer's hard bounce."""
    from dataclasses import replace

    tree = audience.tree
    control.suppress(session, org_id=tree.org.id, channel="email", address="gone@example.com", reason="hard_bounce")
    manager = audience.principal(session, tree.a_manager)
    dealer_settings = replace(manager, privileges={**manager.privileges, "settings.manage": "unit_tree",
                                                   "messages.read": "unit_tree"})
    with pytest.raises(Forbidden):
        control.list_suppressions(session, dealer_settings)
    with pytest.raises(Forbidden):
        control.add_suppression(session, dealer_settings, schemas.SuppressionIn(channel="email",
                                                                                address="x@example.com"))
    admin = audience.principal(session, tree.admin)
    assert [s.address for s in control.list_suppressions(session, admin)] == ["gone@example.com"]
