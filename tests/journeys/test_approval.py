"""Approval of a journey's version where a unit above asks for it: a dealer's published draft waits (and is not
edited meanwhile), HQ's approver makes it live or sends it back with a comment; four eyes; the version running
goes on while the next one waits."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from kehu.channels import control
from kehu.channels import schemas as channel_schemas
from kehu.core.errors import Conflict, Forbidden, ValidationFailed
from kehu.journeys import approval, schemas, service
from kehu.journeys.models import JourneyVersion
from tests.channels.conftest import Audience
from tests.journeys.test_timed_triggers import WALK


def test_a_dealers_journey_goes_live_once_hq_approves_it(session, clean_database, audience: Audience, tree):  # type: ignore[no-untyped-def]
    control.set_policy(session, tree.system, tree.hq.id, channel_schemas.PolicyIn(
        quiet_start="00:00", quiet_end="00:00", approval_required=True))
    session.commit()
    dealer = audience.principal(session, audience.a_marketer)
    hq = audience.principal(session, audience.hq_marketer)  # holds messages.approve
    journey = service.create_journey(session, dealer, schemas.JourneyCreate(
        name="到店礼", definition=schemas.Definition.model_validate(WALK)))
    submitted = service.publish_version(session, dealer, journey.id, schemas.Publish())
    assert (submitted.status, submitted.version, submitted.review_status) == ("draft", 0, "submitted")
    with pytest.raises(Conflict):  # what is approved is what was submitted
        service.update_journey(session, dealer, journey.id, schemas.JourneyUpdate(description="改一下"))
    with pytest.raises(Conflict):
        service.publish_version(session, dealer, journey.id, schemas.Publish())
    with pytest.raises(Forbidden):  # the author does not approve their own (nor may they: no permission)
        approval.review(session, dealer, journey.id, schemas.Review(approve=True))
    with pytest.raises(ValidationFailed):  # a rejection says why
        approval.review(session, hq, journey.id, schemas.Review(approve=False))
    rejected = approval.review(session, hq, journey.id, schemas.Review(approve=False, comment="礼品写清楚"))
    assert (rejected.review_status, rejected.review_comment, rejected.status) == ("rejected", "礼品写清楚", "draft")
    service.update_journey(session, dealer, journey.id, schemas.JourneyUpdate(description="礼品：车载香薰"))
    service.publish_version(session, dealer, journey.id, schemas.Publish())
    live = approval.review(session, hq, journey.id, schemas.Review(approve=True, comment="好"))
    assert (live.status, live.version, live.review_status) == ("live", 1, None)
    # the next version waits while version 1 runs
    service.publish_version(session, dealer, journey.id, schemas.Publish(move_people=True))
    session.commit()
    waiting = service.get_journey(session, dealer, journey.id)
    assert (waiting.status, waiting.version, waiting.review_status) == ("live", 1, "submitted")
    approval.withdraw(session, dealer, journey.id)
    assert service.get_journey(session, dealer, journey.id).review_status is None
    assert len(session.scalars(select(JourneyVersion).where(JourneyVersion.journey_id == journey.id)).all()) == 1


def test_without_the_rule_a_journey_goes_live_at_once_and_through_the_api(client, login, session,  # type: ignore[no-untyped-def]
                                                                           clean_database, audience: Audience, tree):
    dealer = audience.principal(session, audience.a_marketer)
    journey = service.create_journey(session, dealer, schemas.JourneyCreate(
        name="直接上线", definition=schemas.Definition.model_validate(WALK)))
    session.commit()
    headers = login("a.mkt@example.com")
    answer = client.post(f"/api/v1/journeys/{journey.id}/publish", headers=headers)
    assert answer.status_code == 200 and answer.json()["status"] == "live" and answer.json()["review_status"] is None
    refused = client.post(f"/api/v1/journeys/{journey.id}/review", headers=login("hq.mkt@example.com"),
                          json={"approve": True})
    assert refused.status_code == 409  # nothing waits
