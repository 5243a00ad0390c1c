"""Test before launch: one customer walked through the journey as drawn, on a simulated clock, writing nothing —
each split read on their data, their random group as the engine draws it, each message rendered for them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from kehu.cdp.models import Profile
from kehu.core.errors import ValidationFailed
from kehu.journeys import engine, schemas, service, simulation
from kehu.journeys.models import Enrolment, JourneyStep
from kehu.journeys.service import parse
from tests.channels.conftest import Audience, email_template
from tests.journeys.test_engine import OWNER

START = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)  # a Monday, 09:00 in Shanghai


def _draft(session, principal, template_id: int):  # type: ignore[no-untyped-def]
    """entry → wait 1 day → e-mail → A/B (with a control group) → wait for a visit up to 3 days → owners | else."""
    return service.create_journey(session, principal, schemas.JourneyCreate(name="试运行", definition=schemas
        .Definition.model_validate({
            "nodes": [{"id": "entry", "type": "entry"}, {"id": "wait", "type": "wait", "days": 1},
                      {"id": "mail", "type": "send", "template_id": template_id},
                      {"id": "ab", "type": "random_split", "groups": [{"name": "a", "percent": 50},
                                                                      {"name": "b", "percent": 50, "control": True}]},
                      {"id": "visit", "type": "wait_for_event", "event": "showroom_visit", "days": 3},
                      {"id": "split", "type": "split", "branches": [{"name": "owners", "condition": OWNER}]},
                      {"id": "done_owner", "type": "exit"}, {"id": "done_other", "type": "exit"}],
            "edges": [{"from": "entry", "to": "wait"}, {"from": "wait", "to": "mail"}, {"from": "mail", "to": "ab"},
                      {"from": "ab", "to": "visit", "branch": "a"}, {"from": "ab", "to": "visit", "branch": "b"},
                      {"from": "visit", "to": "split", "branch": "happened"},
                      {"from": "visit", "to": "split", "branch": "timed_out"},
                      {"from": "split", "to": "done_owner", "branch": "owners"},
                      {"from": "split", "to": "done_other", "branch": "else"}]})))


def test_a_test_run_shows_the_path_the_times_and_the_message_and_writes_nothing(session, clean_database,  # type: ignore[no-untyped-def]
                                                                                  audience: Audience):
    hq = audience.principal(session, audience.hq_marketer)
    template = email_template(session, hq)
    journey = _draft(session, hq, template.id)
    zhang = audience.customers["zhang"]
    session.get_one(Profile, zhang.id).lifecycle_stage = "owner"
    session.commit()
    out = simulation.test_run(session, hq, journey.id, schemas.TestRun(profile_id=zhang.id, start_at=START))
    assert out.enters and out.ends == "completed"
    assert [(s.node, s.way) for s in out.steps][:3] == [("entry", None), ("wait", None), ("mail", None)]
    by_node = {s.node: s for s in out.steps}
    assert by_node["wait"].at == datetime(2026, 12, 8, 1, 0, tzinfo=UTC)  # a day later
    message = by_node["mail"].message
    assert message is not None and message.subject == "张伟，春季保养优惠" and "您好 张伟" in (message.html or "")
    assert message.address != "zhangwei@example.com"  # HQ marketing sees personal data masked, here too
    group = engine.share_out(journey.id, parse(journey.draft).nodes[3], [(0, zhang.id)])  # type: ignore[arg-type]
    assert by_node["ab"].way == next(name for name, taken in group.items() if taken)  # the engine's own draw
    assert by_node["visit"].way == "timed_out" and by_node["visit"].at == datetime(2026, 12, 11, 1, 0, tzinfo=UTC)
    assert by_node["split"].way == "owners" and out.steps[-1].node == "done_owner"
    # the visit comes at once: no three days' wait; li is no owner: the other way
    li = audience.customers["li"]
    other = simulation.test_run(session, hq, journey.id, schemas.TestRun(profile_id=li.id, start_at=START,
                                                                         happened=["visit"]))
    steps = {s.node: s for s in other.steps}
    assert steps["visit"].way == "happened" and steps["visit"].at == datetime(2026, 12, 8, 1, 0, tzinfo=UTC)
    assert other.steps[-1].node == "done_other"
    assert session.scalar(select(func.count()).select_from(Enrolment)) == 0  # nothing written
    assert session.scalar(select(func.count()).select_from(JourneyStep)) == 0


def test_a_test_run_says_where_the_path_stops_and_who_would_not_enter(session, clean_database,  # type: ignore[no-untyped-def]
                                                                        audience: Audience):
    marketer = audience.principal(session, audience.a_marketer)
    journey = service.create_journey(session, marketer, schemas.JourneyCreate(
        name="未完成", definition=schemas.Definition.model_validate({
            "nodes": [{"id": "entry", "type": "entry"}, {"id": "mail", "type": "send"},
                      {"id": "out", "type": "exit"}], "edges": [{"from": "entry", "to": "mail"}]})))
    out = simulation.test_run(session, marketer, journey.id,
                              schemas.TestRun(profile_id=audience.customers["zhang"].id))
    assert out.ends == "stopped" and out.steps[-1].node == "mail"
    assert out.steps[-1].problem and out.steps[-1].message is None  # no template yet; nothing connected on
    # another dealer's customer is not the dealer marketer's to test with
    with pytest.raises(ValidationFailed):
        simulation.test_run(session, marketer, journey.id, schemas.TestRun(profile_id=audience.customers["wang"].id))
    hq = audience.principal(session, audience.hq_marketer)  # HQ may read them, but the journey is dealer A's
    assert not simulation.test_run(session, hq, journey.id,
                                   schemas.TestRun(profile_id=audience.customers["wang"].id)).enters


def test_a_test_run_through_the_api(client, login, session, clean_database, audience: Audience, tree):  # type: ignore[no-untyped-def]
    hq = audience.principal(session, audience.hq_marketer)
    journey = _draft(session, hq, email_template(session, hq).id)
    session.commit()
    headers = login("hq.mkt@example.com")
    answer = client.post(f"/api/v1/journeys/{journey.id}/test-run", headers=headers,
                         json={"profile_id": audience.customers["zhao"].id, "happened": ["visit"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["ends"] == "completed" and answer.json()["steps"][0]["node"] == "entry"
    bad = client.post(f"/api/v1/journeys/{journey.id}/test-run", headers=headers, json={"profile_id": "x"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    consultant = login("a.sales@example.com")  # no journeys privilege: the journey is not found for them
    assert client.post(f"/api/v1/journeys/{journey.id}/test-run", headers=consultant,
                       json={"profile_id": audience.customers["zhang"].id}).status_code in (403, 404)
