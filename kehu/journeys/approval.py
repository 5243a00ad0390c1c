"""Approval of a journey's version (draft → submitted → approved: live | rejected → edited and submitted again),
where a unit above asks to approve this unit's messages — the same rule, permission and four eyes as the channels'
broadcasts: a reviewer holds ``messages.approve``, may see the journey, and is neither its owner nor who submitted
it. While a version waits, the draft is not edited (what is approved is what was submitted) and the version already
running goes on; its author may withdraw it to edit again."""

from __future__ import annotations

from sqlalchemy.orm import Session

from kehu.channels.broadcasts import APPROVE
from kehu.core import audit
from kehu.core.db import utcnow
from kehu.core.errors import Conflict, FieldError, Forbidden, ValidationFailed
from kehu.journeys import schemas
from kehu.journeys.models import Journey
from kehu.journeys.service import get_journey, problems, publish_now
from kehu.tenancy.access import Principal, require_row


def review(session: Session, principal: Principal, journey_id: int, data: schemas.Review) -> Journey:
    """Approve (the submitted draft goes live as the next version, moving the people inside as its author chose) or
    reject it, saying why."""
    journey = get_journey(session, principal, journey_id, lock=True)
    principal.require_permission(APPROVE)
    if journey.review_status != "submitted":
        raise Conflict("Only a journey waiting for approval is reviewed.", message=("journeys.review.not_waiting", {}))
    if principal.user_id is not None and principal.user_id in (journey.owner_id, journey.submitted_by_id):
        raise Forbidden("A journey is approved by someone other than its author.",
                        message=("journeys.review.four_eyes", {}))
    if not data.approve and not data.comment.strip():
        raise ValidationFailed("comment: say why it is rejected",
                               errors=[FieldError("comment", "say why it is rejected", "required")],
                               message=("journeys.review.say_why", {}))
    now = utcnow()
    journey.reviewed_by_id, journey.reviewed_at, journey.review_comment = principal.user_id, now, data.comment
    if not data.approve:
        journey.review_status = "rejected"
        journey.updated_at = now
        session.flush()
        audit.record(session, principal, action="rejected", entity="journeys", entity_id=journey.id,
                     unit_id=journey.unit_id, after={"comment": data.comment},
                     summary=f"Journey {journey.name} rejected")
        return journey
    found = problems(session, principal, journey)  # what it names may have gone since it was submitted
    if found:
        raise ValidationFailed("The journey cannot go live yet.", errors=found)
    journey.review_status = None
    audit.record(session, principal, action="approved", entity="journeys", entity_id=journey.id,
                 unit_id=journey.unit_id, after={"comment": data.comment}, summary=f"Journey {journey.name} approved")
    return publish_now(session, principal, journey, move_people=journey.submitted_move_people)


def withdraw(session: Session, principal: Principal, journey_id: int) -> Journey:
    """Take a submitted journey back to edit it (who may edit it may withdraw it)."""
    journey = get_journey(session, principal, journey_id, "update", lock=True)
    require_row(session, principal, "journeys", "update", unit_id=journey.unit_id, owner_id=journey.owner_id)
    if journey.review_status != "submitted":
        raise Conflict("Only a journey waiting for approval is withdrawn.", message=("journeys.review.not_waiting", {}))
    journey.review_status, journey.updated_at = None, utcnow()
    session.flush()
    audit.record(session, principal, action="withdrawn", entity="journeys", entity_id=journey.id,
                 unit_id=journey.unit_id, summary=f"Journey {journey.name} withdrawn from approval")
    return journey
