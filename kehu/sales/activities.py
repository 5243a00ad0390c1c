"""Activities (跟进记录): what a salesperson did with a customer or plans to do — a call, a visit, a test
drive, a quote, a message, a task due on a day. A call or a visit done on an open lead is its first contact;
planned tasks make each person's to-do list (overdue ones first); all of it is on the customer's timeline."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from kehu.cdp import service as cdp_service
from kehu.cdp import timeline
from kehu.cdp.models import Profile
from kehu.core import audit
from kehu.core.db import utcnow
from kehu.core.errors import Conflict
from kehu.core.i18n import t
from kehu.core.pagination import OffsetPage, offset_page
from kehu.core.timeutil import aware
from kehu.sales import schemas
from kehu.sales.models import OPEN_STATUSES, Activity, Lead
from kehu.sales.service import get_lead, mark_contacted
from kehu.tenancy.access import Principal, Ref, check_references, get_scoped, require_row, scope, scoped_once

CONTACTS = ("call", "visit", "test_drive", "quote", "wechat", "sms", "email")  # a touch with the customer


def log(session: Session, principal: Principal, data: schemas.ActivityIn) -> Activity:
    """Record an activity done now (or at ``done_at``), or plan one (``due_at`` without ``done_at``)."""
    principal.require("activities", "create")
    check_references(session, principal, {"lead_id": Ref(Lead, data.lead_id),
                                          "profile_id": cdp_service.customer_ref(data.profile_id)})
    lead = get_lead(session, principal, data.lead_id) if data.lead_id is not None else None
    profile_id = lead.profile_id if lead is not None else data.profile_id
    if lead is None:
        cdp_service.get_profile(session, principal, profile_id)  # type: ignore[arg-type]
    unit_id = lead.unit_id if lead is not None else principal.unit_id
    require_row(session, principal, "activities", "create", unit_id=unit_id, owner_id=principal.user_id)
    now = utcnow()
    # a time without a zone is the organisation's wall clock (it reached the database as a 500 before)
    due_at, done_at = aware(data.due_at, principal.timezone), aware(data.done_at, principal.timezone)
    done_at = done_at or (None if due_at is not None and not data.done else now)
    activity = Activity(org_id=principal.org_id, unit_id=unit_id, owner_id=principal.user_id,
                        profile_id=profile_id, lead_id=lead.id if lead else None, kind=data.kind,
                        subject=data.subject, note=data.note, outcome=data.outcome, due_at=due_at,
                        done_at=done_at, created_by_id=principal.user_id)
    session.add(activity)
    session.flush()
    if lead is not None and done_at is not None and data.kind in CONTACTS and lead.status in OPEN_STATUSES:
        mark_contacted(session, principal, lead.id, data.subject or data.kind)
    audit.record(session, principal, action="create", entity="activities", entity_id=activity.id,
                 unit_id=unit_id, after={"kind": data.kind, "lead_id": activity.lead_id, "done": done_at is not None},
                 summary=f"{data.kind} with customer {profile_id}")
    return activity


def complete(session: Session, principal: Principal, activity_id: int, outcome: str = "") -> Activity:
    """A planned activity done; if it touched the customer of an open lead, that lead was contacted."""
    activity = get_scoped(session, principal, Activity, activity_id)
    require_row(session, principal, "activities", "update", unit_id=activity.unit_id, owner_id=activity.owner_id)
    if activity.done_at is not None:
        raise Conflict("This activity is done already.")
    activity.done_at, activity.outcome = utcnow(), outcome or activity.outcome
    session.flush()
    if activity.lead_id is not None and activity.kind in CONTACTS:
        lead = session.get(Lead, activity.lead_id)
        if lead is not None and lead.status in OPEN_STATUSES:
            mark_contacted(session, principal, lead.id, activity.subject or activity.kind)
    return activity


def page(session: Session, principal: Principal, *, lead_id: int | None = None, profile_id: int | None = None,
         mine_open: bool = False, page_no: int = 1, per_page: int = 50) -> OffsetPage[Activity]:
    """Activities the reader may see: of a lead, of a customer, or their own still to do (due first)."""
    principal.require("activities", "read")
    query = select(Activity).where(scope(principal, Activity))
    order = [Activity.created_at.desc(), Activity.id.desc()]
    if lead_id is not None:
        query = query.where(Activity.lead_id == get_lead(session, principal, lead_id).id)
    if profile_id is not None:
        query = query.where(Activity.profile_id == profile_id)
    if mine_open:
        query = query.where(Activity.owner_id == principal.user_id, Activity.done_at.is_(None))
        order = [Activity.due_at.asc().nulls_last(), Activity.id]
    return offset_page(session, query, order_by=order, page=page_no, per_page=per_page)


def out(activity: Activity) -> dict[str, Any]:
    now = utcnow()
    return {**{c.key: getattr(activity, c.key) for c in Activity.__table__.columns},
            "overdue": activity.done_at is None and activity.due_at is not None and activity.due_at < now}


# -- on the customer's timeline -----------------------------------------------------------------------------------
def _timeline_rows(session: Session, principal: Principal, profile: Profile,
                   params: dict[str, Any]) -> list[timeline.TimelineItem]:
    if not principal.can("activities"):
        return []
    query, scoped = scoped_once("activity_timeline", principal, Activity, lambda in_scope: select(Activity).where(
        Activity.profile_id == bindparam("profile_id"), in_scope, timeline.before(Activity.created_at, Activity.id))
        .order_by(Activity.created_at.desc(), Activity.id.desc()).limit(bindparam("rows")))
    return [timeline.TimelineItem("activity", a.id, a.created_at, a)
            for a in session.scalars(query, {**params, **scoped})]


def _timeline_item(principal: Principal, activity: Activity) -> dict[str, Any]:
    return {"action": activity.kind, "entity": "leads" if activity.lead_id else "customers",
            "entity_id": activity.lead_id or activity.profile_id, "summary": activity.subject or None,
            "changes": {k: v for k, v in (("note", activity.note), ("outcome", activity.outcome),
                                          ("due", activity.due_at.isoformat() if activity.due_at and
                                           not activity.done_at else "")) if v}}


def _timeline_title(item: Any, locale: str | None) -> str:
    kind = t(f"activity.kind.{item.action}", locale)
    details = item.changes or {}
    text = " · ".join(filter(None, [kind, item.summary, details.get("note"), details.get("outcome")]))
    return t("timeline.activity_planned", locale, what=text) if details.get("due") else text


TIMELINE_STREAM = timeline.TimelineStream("activity", 4, _timeline_rows, _timeline_item, _timeline_title, {
    "": ("event_note", "text-teal-7"), "call": ("call", "text-teal-7"), "visit": ("storefront", "text-teal-7"),
    "test_drive": ("directions_car", "text-teal-7"), "task": ("task_alt", "text-teal-7")})
