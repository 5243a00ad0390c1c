"""HQ's templates for dealers (场景模版): HQ draws a journey once and offers it to the dealers below; each dealer
makes its own of it, changes only what HQ left open (its audience, a wait), runs it for its own customers; HQ sees
every dealer's results side by side. A template enrols nobody; a dealer never sees another dealer's journey made
of it, nor a template of a unit beside its own."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kehu.core.errors import Conflict, NotFound, ValidationFailed
from kehu.journeys import schemas, service, templates
from kehu.journeys.calendar import calendar as journey_calendar
from kehu.segments import schemas as segment_schemas
from kehu.segments import service as segment_service
from tests.channels.conftest import Audience, email_template
from tests.journeys.test_results import _event


def _offer(template_id: int, segment_id: int) -> dict[str, Any]:
    """Enter the segment → wait 2 days → HQ's e-mail → exit; the audience and the wait are the dealer's."""
    return {"trigger": {"type": "segment_entered", "segment_id": segment_id},
            "goal": {"event": "order_completed", "within_days": 30}, "re_entry": "never",
            "open": ["trigger", "wait"],
            "nodes": [{"id": "entry", "type": "entry"}, {"id": "wait", "type": "wait", "days": 2},
                      {"id": "mail", "type": "send", "template_id": template_id}, {"id": "out", "type": "exit"}],
            "edges": [{"from": "entry", "to": "wait"}, {"from": "wait", "to": "mail"}, {"from": "mail", "to": "out"}]}


def _published_template(session, audience: Audience) -> Any:  # type: ignore[no-untyped-def]
    hq = audience.principal(session, audience.hq_marketer)
    mail = email_template(session, hq, name="总部春季保养")
    template = service.create_journey(session, hq, schemas.JourneyCreate(
        name="保养季模版", template=True, definition=schemas.Definition.model_validate(
            _offer(mail.id, audience.segment_id))))
    service.publish_version(session, hq, template.id, schemas.Publish())
    session.commit()
    return template


def _changed(journey: Any, change: Any) -> schemas.JourneyUpdate:
    definition = dict(journey.draft)
    definition["nodes"] = [dict(n) for n in definition["nodes"]]
    change(definition)
    return schemas.JourneyUpdate(definition=schemas.Definition.model_validate(definition))


def test_a_dealer_makes_hqs_template_its_own_and_changes_only_what_is_open(  # type: ignore[no-untyped-def]
        session, clean_database, audience: Audience, tree):
    template = _published_template(session, audience)
    hq = audience.principal(session, audience.hq_marketer)
    assert (template.status, template.trigger_kind, template.next_entry_at) == ("live", None, None)
    with pytest.raises(Conflict):  # a template enrols nobody
        service.enrol_by_hand(session, hq, template.id, schemas.EnrolRequest(
            profile_ids=[audience.customers["zhang"].id]))
    now = service.utcnow()  # nor runs on the campaign calendar
    assert template.id not in {item.journey_id for item in journey_calendar(
        session, hq, start=now - timedelta(days=1), end=now + timedelta(days=30))}

    dealer = audience.principal(session, audience.a_marketer)
    offered = templates.offered_templates(session, dealer)
    assert [(t.id, t.open, t.instances) for t in offered] == [(template.id, ["trigger", "wait"], 0)]
    mine = templates.instantiate(session, dealer, template.id, schemas.InstanceCreate(name="A店保养季"))
    session.commit()
    assert (mine.unit_id, mine.template_id, mine.template_version, mine.status) == (
        tree.dealer_a.id, template.id, 1, "draft")
    # HQ's e-mail and segment are the template's: the dealer's journey may use them, and has nothing to fix
    assert service.problems(session, dealer, mine) == []

    # open: the audience (the dealer's own segment) and the wait
    own = segment_service.create_segment(session, dealer, segment_schemas.SegmentCreate(
        name="A店保养客户", kind="static", profile_ids=[audience.customers["zhang"].id]))

    def adjust(d: dict[str, Any]) -> None:
        d["trigger"] = {"type": "segment_entered", "segment_id": own.id}
        d["nodes"][1]["days"] = 5
        d["nodes"][2]["label"] = "保养邀请"  # a name on the canvas is the dealer's too
    mine = service.update_journey(session, dealer, mine.id, _changed(mine, adjust))
    assert mine.draft["nodes"][1]["days"] == 5
    session.commit()

    # locked: the message, the nodes and ways, the goal, the kind of trigger
    def swap_mail(d: dict[str, Any]) -> None:
        d["nodes"][2]["template_id"] = email_template(session, dealer, name="A店自己的").id

    def cut_wait(d: dict[str, Any]) -> None:
        d["nodes"] = [n for n in d["nodes"] if n["id"] != "wait"]
        d["edges"] = [{"from": "entry", "to": "mail"}, {"from": "mail", "to": "out"}]
        d["open"] = ["trigger"]

    def longer_goal(d: dict[str, Any]) -> None:
        d["goal"] = {"event": "order_completed", "within_days": 90}

    def by_hand(d: dict[str, Any]) -> None:
        d["trigger"] = {"type": "manual"}

    for change, fields in ((swap_mail, ["definition.nodes[2]"]),
                           (cut_wait, ["definition.open", "definition.nodes", "definition.edges"]),
                           (longer_goal, ["definition.goal"]), (by_hand, ["definition.trigger.type"])):
        with pytest.raises(ValidationFailed) as refused:
            service.update_journey(session, dealer, mine.id, _changed(mine, change))
        assert [e.field for e in refused.value.errors] == fields, change.__name__
        assert {e.code for e in refused.value.errors} == {"locked"}
    session.rollback()

    live = service.publish_version(session, dealer, mine.id, schemas.Publish())
    assert (live.status, live.trigger_kind, live.trigger_key) == ("live", "segment_entered", str(own.id))
    session.commit()


def test_hq_sees_every_dealers_results_and_dealers_see_only_their_own(  # type: ignore[no-untyped-def]
        session, clean_database, audience: Audience, tree):
    template = _published_template(session, audience)
    hq = audience.principal(session, audience.hq_marketer)
    a = audience.principal(session, audience.a_marketer)
    b = audience.principal(session, audience.b_marketer)
    journeys = {}
    for principal, name in ((a, "A店保养季"), (b, "B店保养季")):
        made = templates.instantiate(session, principal, template.id, schemas.InstanceCreate(name=name))
        service.publish_version(session, principal, made.id, schemas.Publish())
        journeys[name] = made
    people = audience.customers
    service.enrol_by_hand(session, a, journeys["A店保养季"].id, schemas.EnrolRequest(
        profile_ids=[people["zhang"].id, people["li"].id, people["zhao"].id]))
    service.enrol_by_hand(session, b, journeys["B店保养季"].id, schemas.EnrolRequest(profile_ids=[people["wang"].id]))
    # a dealer's journey reaches its own customers only, however they are named
    assert service.enrol_by_hand(session, hq, journeys["B店保养季"].id, schemas.EnrolRequest(
        profile_ids=[people["zhang"].id])) == 0
    now = service.utcnow()
    _event(session, people["zhang"].id, "order_completed", now + timedelta(days=3))
    _event(session, people["wang"].id, "order_completed", now + timedelta(days=40))  # after the goal's 30 days
    session.commit()

    side_by_side = templates.instance_results(session, hq, template.id)
    assert [(i.name, i.unit_id, i.entered, i.converted) for i in side_by_side.instances] == [
        ("A店保养季", tree.dealer_a.id, 3, 1), ("B店保养季", tree.dealer_b.id, 1, 0)]
    assert (side_by_side.entered, side_by_side.converted) == (4, 1)
    assert side_by_side.instances[0].rate == pytest.approx(1 / 3)
    # dealer B sees neither HQ's template's results nor A's journey; it sees what it made
    with pytest.raises(NotFound):
        templates.instance_results(session, b, template.id)
    with pytest.raises(NotFound):
        service.get_journey(session, b, journeys["A店保养季"].id)
    assert [t.instances for t in templates.offered_templates(session, b)] == [1]


def test_a_template_is_offered_only_below_its_unit_and_while_live(  # type: ignore[no-untyped-def]
        session, clean_database, audience: Audience, tree):
    a = audience.principal(session, audience.a_marketer)
    b = audience.principal(session, audience.b_marketer)
    mail = email_template(session, a, name="A店模版邮件")
    own = service.create_journey(session, a, schemas.JourneyCreate(
        name="A店的模版", template=True, definition=schemas.Definition.model_validate(
            {**_offer(mail.id, audience.segment_id), "trigger": {"type": "manual"}})))
    service.publish_version(session, a, own.id, schemas.Publish())
    session.commit()
    assert [t.name for t in templates.offered_templates(session, a)] == ["A店的模版"]
    assert templates.offered_templates(session, b) == []  # a unit beside A's is not offered A's
    with pytest.raises(NotFound):
        templates.instantiate(session, b, own.id, schemas.InstanceCreate(name="拿来用"))
    with pytest.raises(ValidationFailed):  # a unit of another dealer named for the copy: not A's to place
        templates.instantiate(session, a, own.id, schemas.InstanceCreate(name="放到B店", unit_id=tree.dealer_b.id))
    session.rollback()
    service.pause(session, a, own.id)
    assert templates.offered_templates(session, a) == []
    with pytest.raises(NotFound):
        templates.instantiate(session, a, own.id, schemas.InstanceCreate(name="暂停了"))


def test_a_dealers_journey_takes_the_templates_new_version_keeping_its_own_settings(  # type: ignore[no-untyped-def]
        session, clean_database, audience: Audience, tree):
    template = _published_template(session, audience)
    hq = audience.principal(session, audience.hq_marketer)
    dealer = audience.principal(session, audience.a_marketer)
    mine = templates.instantiate(session, dealer, template.id, schemas.InstanceCreate(name="A店保养季"))

    def five_days(d: dict[str, Any]) -> None:
        d["nodes"][1]["days"] = 5
    mine = service.update_journey(session, dealer, mine.id, _changed(mine, five_days))
    assert templates.newest_version(session, dealer, mine) is None
    # HQ adds a goal property and publishes version 2
    draft = dict(template.draft)
    draft["goal"] = {"event": "order_completed", "within_days": 14}
    service.update_journey(session, hq, template.id, schemas.JourneyUpdate(
        definition=schemas.Definition.model_validate(draft)))
    service.publish_version(session, hq, template.id, schemas.Publish())
    session.commit()
    assert templates.newest_version(session, dealer, mine) == 2
    rebased = templates.rebase(session, dealer, mine.id)
    assert rebased.template_version == 2
    assert rebased.draft["goal"]["within_days"] == 14 and rebased.draft["nodes"][1]["days"] == 5
    assert service.problems(session, dealer, rebased) == []


def test_the_api_offers_makes_and_compares(client, login, session, clean_database,  # type: ignore[no-untyped-def]
                                            audience: Audience, tree):
    template = _published_template(session, audience)
    dealer = login("a.mkt@example.com")
    offered = client.get("/api/v1/journeys/templates", headers=dealer)
    assert offered.status_code == 200 and [t["name"] for t in offered.json()] == ["保养季模版"]
    made = client.post(f"/api/v1/journeys/templates/{template.id}/instances", headers=dealer,
                       json={"name": "A店保养季"})
    assert made.status_code == 201 and made.json()["template_id"] == template.id
    body = made.json()["definition"]
    body["nodes"][2]["template_id"] = 999999
    refused = client.patch(f"/api/v1/journeys/{made.json()['id']}", headers=dealer, json={"definition": body})
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in refused.json()["errors"]] == ["definition.nodes[2]"]
    assert client.post(f"/api/v1/journeys/templates/{template.id}/instances", headers=login("b.mkt@example.com"),
                       json={"name": "A店保养季"}).status_code == 201  # a name is the dealer's own
    results = client.get(f"/api/v1/journeys/templates/{template.id}/results", headers=login("hq.mkt@example.com"))
    assert results.status_code == 200 and len(results.json()["instances"]) == 2
    assert client.get(f"/api/v1/journeys/templates/{template.id}/results", headers=dealer).status_code == 404
    assert client.post("/api/v1/journeys/templates/999999/instances", headers=dealer,
                       json={"name": "无"}).status_code == 404


def test_rebase_keeps_only_what_the_dealer_chose_and_refuses_when_it_cannot(  # type: ignore[no-untyped-def]
        session, clean_database, audience: Audience, tree):
    template = _published_template(session, audience)
    hq = audience.principal(session, audience.hq_marketer)
    dealer = audience.principal(session, audience.a_marketer)
    left = templates.instantiate(session, dealer, template.id, schemas.InstanceCreate(name="没改过"))
    changed = templates.instantiate(session, dealer, template.id, schemas.InstanceCreate(name="改过等待"))

    def five_days(d: dict[str, Any]) -> None:
        d["nodes"][1]["days"] = 5
    service.update_journey(session, dealer, changed.id, _changed(changed, five_days))
    # version 2: HQ waits 3 days by default now
    draft = dict(template.draft)
    draft["nodes"] = [dict(n) for n in draft["nodes"]]
    draft["nodes"][1]["days"] = 3
    service.update_journey(session, hq, template.id, schemas.JourneyUpdate(
        definition=schemas.Definition.model_validate(draft)))
    service.publish_version(session, hq, template.id, schemas.Publish())
    session.commit()
    assert templates.rebase(session, dealer, left.id).draft["nodes"][1]["days"] == 3  # HQ's new default
    assert templates.rebase(session, dealer, changed.id).draft["nodes"][1]["days"] == 5  # the dealer's choice
    session.commit()
    service.pause(session, hq, template.id)  # withdrawn: nothing newer to take, and said so
    session.commit()
    with pytest.raises(Conflict):
        templates.rebase(session, dealer, left.id)


def test_each_dealers_journey_is_measured_by_the_goal_of_its_template_version(  # type: ignore[no-untyped-def]
        session, clean_database, audience: Audience, tree):
    template = _published_template(session, audience)  # goal: an order within 30 days
    hq = audience.principal(session, audience.hq_marketer)
    dealer = audience.principal(session, audience.a_marketer)
    mine = templates.instantiate(session, dealer, template.id, schemas.InstanceCreate(name="A店保养季"))
    service.publish_version(session, dealer, mine.id, schemas.Publish())
    zhang = audience.customers["zhang"]
    service.enrol_by_hand(session, dealer, mine.id, schemas.EnrolRequest(profile_ids=[zhang.id]))
    _event(session, zhang.id, "order_completed", service.utcnow() + timedelta(days=20))
    draft = dict(template.draft)
    draft["goal"] = {"event": "order_completed", "within_days": 14}  # version 2 asks more
    service.update_journey(session, hq, template.id, schemas.JourneyUpdate(
        definition=schemas.Definition.model_validate(draft)))
    service.publish_version(session, hq, template.id, schemas.Publish())
    session.commit()
    [row] = templates.instance_results(session, hq, template.id).instances
    assert (row.template_version, row.entered, row.converted) == (1, 1, 1)  # its own 30 days, as its page says


def test_a_dealer_asks_only_of_its_own_units_and_an_archived_message_of_hq_stops_publishing(  # type: ignore[no-untyped-def]
        session, clean_database, audience: Audience, tree):
    from kehu.channels import schemas as message_schemas
    from kehu.channels import templates as message_templates

    template = _published_template(session, audience)
    a = audience.principal(session, audience.a_marketer)
    b = audience.principal(session, audience.b_marketer)
    with pytest.raises(ValidationFailed):  # dealer A's unit is not B's to ask about
        templates.offered_templates(session, b, unit_id=tree.dealer_a.id)
    mine = templates.instantiate(session, a, template.id, schemas.InstanceCreate(name="A店保养季"))
    assert service.problems(session, a, mine) == []
    hq = audience.principal(session, audience.hq_marketer)
    message_templates.update_template(session, hq, mine.draft["nodes"][2]["template_id"],
                                      message_schemas.TemplateUpdate(is_archived=True))
    assert [(p.field, p.code) for p in service.problems(session, a, mine)] == [
        ("definition.nodes[2].template_id", "unknown")]
