"""Leads (线索): made from inquiries of any channel, one open lead per customer, routed to a dealer and a
salesperson there, followed through inquiry → MQL → SAL → SQL → converted / disqualified / recycled, with a
first-contact service level that escalates to the dealer's manager. Every change is kept (the lead's history
and the customer's timeline) and written back to the customer, where segments see it.

Over 800 lines: the lead's life cycle (making, routing, moving, escalating, merging) shares one set of
status rules and history writers; to split next is the inquiry intake (record_inquiries) into leads_intake.py.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, func, select, update
from sqlalchemy.orm import Session

from kehu.cdp import fields, normalise, timeline
from kehu.cdp import schemas as cdp_schemas
from kehu.cdp import service as cdp_service
from kehu.cdp.manifest import MERGE_UNDONE, PROFILE_MERGED
from kehu.cdp.models import CustomField, Event, Identity, Merge, Profile
from kehu.core import audit, events, jobs
from kehu.core.db import Database, copy_rows, utcnow
from kehu.core.errors import Conflict, FieldError, NotFound, ValidationFailed, invalid
from kehu.core.i18n import t
from kehu.core.pagination import OffsetPage, offset_page
from kehu.sales import schemas
from kehu.sales.manifest import LEAD_STATUS_CHANGED
from kehu.sales.models import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    STATUSES,
    Lead,
    LeadChange,
    LeadRule,
    LeadSla,
    RoutingRule,
    lead_fields,
)
from kehu.sales.routing import Route, Router
from kehu.tenancy.access import (
    Place,
    Principal,
    Ref,
    check_references,
    get_scoped,
    require_row,
    scope,
    scoped_once,
    units_under,
    within_depth,
)
from kehu.tenancy.models import BusinessUnit

# Which status may follow which by a status change. Converting is its own step (``convert_lead``: it opens the
# opportunity) from any open status and is final; a disqualified lead can only be recycled (reopened).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "inquiry": ("mql", "sal", "sql", "disqualified"),
    "mql": ("sal", "sql", "disqualified", "recycled"),
    "sal": ("sql", "disqualified", "recycled"),
    "sql": ("disqualified", "recycled"),
    "recycled": ("mql", "sal", "sql", "disqualified"),
    "disqualified": ("recycled",),
    "converted": (),
}
# How the customer's life-cycle stage follows their leads (it never moves back).
STAGE_ORDER = ("visitor", "prospect", "lead", "opportunity", "customer", "owner")


def _now() -> datetime:
    return utcnow()


def _change_row(lead: Lead, kind: str, actor: Principal | None, *, at: datetime, from_status: str | None = None,
                to_status: str | None = None, reason: str = "", unit_id: int | None = None,
                owner_id: int | None = None) -> dict[str, Any]:
    """A line of the lead's history; ``unit_id`` / ``owner_id`` say where it was when that differs from now."""
    return {"org_id": lead.org_id, "lead_id": lead.id, "profile_id": lead.profile_id, "kind": kind,
            "from_status": from_status, "to_status": to_status,
            "unit_id": lead.unit_id if unit_id is None else unit_id,
            "owner_id": lead.owner_id if unit_id is None else owner_id, "reason": reason[:500],
            "actor_id": actor.user_id if actor else None, "actor": (actor.display if actor else "system")[:100],
            "at": at}


def record_change(session: Session, lead: Lead, kind: str, actor: Principal | None, *, at: datetime,
                  from_status: str | None = None, to_status: str | None = None, reason: str = "") -> None:
    """A line of the lead's history, and for a move of its status the domain event other domains react to (the
    customer's happening among them): every status change of a lead goes through here."""
    session.add(LeadChange(**_change_row(lead, kind, actor, at=at, from_status=from_status, to_status=to_status,
                                         reason=reason)))
    if kind == "status":
        events.publish(session, LEAD_STATUS_CHANGED, org_id=lead.org_id, entity=Lead.__tablename__,
                       entity_id=lead.id, profile_id=lead.profile_id, lead_id=lead.id, from_status=from_status,
                       to_status=to_status, reason=reason[:200], unit_id=lead.unit_id)


def is_overdue(lead: Lead, now: datetime | None = None) -> bool:
    return (lead.status in OPEN_STATUSES and lead.first_contacted_at is None and lead.first_contact_due_at is not None
            and lead.first_contact_due_at < (now or _now()))


def lead_out(lead: Lead, **extra: Any) -> dict[str, Any]:
    return {**{c.key: getattr(lead, c.key) for c in Lead.__table__.columns}, "overdue": is_overdue(lead), **extra}


# -- the customer --------------------------------------------------------------------------------------------
def _customer_for(session: Session, principal: Principal, data: schemas.LeadCreate) -> Profile:
    """The customer the inquiry is about: given, found by One ID (mobile, then e-mail), or made now."""
    if data.profile_id is not None:
        return cdp_service.get_profile(session, principal, data.profile_id)
    errors: list[FieldError] = []
    pairs = []
    for kind, value in (("mobile", data.mobile), ("email", data.email)):
        if not value:
            continue
        try:
            pairs.append((kind, normalise.identity_value(kind, value)))
        except normalise.InvalidValue as error:
            errors.append(FieldError(kind, error.text(principal.locale), error.code))
    if errors:
        raise ValidationFailed("; ".join(e.message for e in errors), errors=errors)
    for kind, value in pairs:
        found = session.scalar(select(Profile).join(Identity, Identity.profile_id == Profile.id).where(
            Identity.org_id == principal.org_id, Identity.kind == kind, Identity.value == value,
            Profile.merged_into_id.is_(None)))
        if found is not None:
            return found  # the same person, whoever holds their record: One ID, not a duplicate
    return cdp_service.create_profile(session, principal, data=cdp_schemas.ProfileCreate(
        name=data.name, mobile=data.mobile, email=data.email, province=data.province, city=data.city,
        lifecycle_stage="lead"))


LEAD_STATUS_FIELD = "lead_status"


def _ensure_status_field(session: Session, org_id: int) -> None:
    """The customer's lead status is a declared option field (线索状态), so the Customer 360 shows it in the
    reader's words and the segment builder offers it with its options. Declared by the platform once."""
    if session.scalar(select(CustomField.id).where(CustomField.org_id == org_id,
                                                   CustomField.key == LEAD_STATUS_FIELD)) is not None:
        return
    from kehu.tenancy.service import system_principal

    fields.create_field(session, system_principal(session, org_id), {
        "key": LEAD_STATUS_FIELD, "label_zh": t("leads.field", "zh"), "label_en": t("leads.field", "en"),
        "type": "option", "options": [{"value": s, "zh": t(f"lead.status.{s}", "zh"),
                                       "en": t(f"lead.status.{s}", "en")} for s in STATUSES]})


def _write_back(session: Session, lead: Lead, profile: Profile, router: Router | None = None) -> None:
    """The lead's state on the customer: their stage moves forward (lead, then opportunity when converted),
    ``attributes.lead_status`` says where their latest lead stands (segments ask it). A customer held by no
    dealer (at headquarters, a region, the call centre) moves to the lead's dealer and salesperson, who now
    follow them up; one of the same dealer without a salesperson gets the lead's; a customer of another
    dealer stays theirs."""
    stage = "opportunity" if lead.status == "converted" else "lead"
    current = profile.lifecycle_stage
    if current not in STAGE_ORDER or STAGE_ORDER.index(current) < STAGE_ORDER.index(stage):  # churned comes back
        profile.lifecycle_stage = stage
    profile.attributes = {**(profile.attributes or {}), "lead_status": lead.status}
    if lead.owner_id is None or (profile.unit_id == lead.unit_id and profile.owner_id == lead.owner_id):
        return
    router = router or Router(session, lead.org_id)
    holder = router.dealer_of(profile.unit_id)
    if holder is None:  # held by headquarters, a region or the call centre: the dealer takes them over
        profile.unit_id, profile.owner_id = lead.unit_id, lead.owner_id
    elif holder == router.dealer_of(lead.unit_id) and profile.owner_id is None:
        profile.owner_id = lead.owner_id


# -- placing by hand (kehu.sales.routing decides where new leads go) -------------------------------------------------
def next_salesperson(session: Session, org_id: int, unit_id: int) -> int | None:
    """The unit's salesperson whose turn it is (round robin), for a deal or lead handed to the unit."""
    return Router(session, org_id).pick(unit_id, "round_robin")


def _place(session: Session, lead: Lead, unit_id: int, owner_id: int | None, actor: Principal | None,
           now: datetime, reason: str, router: Router | None = None) -> None:
    lead.unit_id, lead.owner_id = unit_id, owner_id
    if owner_id is not None:
        lead.assigned_at = now
        if lead.first_contacted_at is None:
            lead.first_contact_due_at = (router or Router(session, lead.org_id)).first_contact_due(unit_id, now)
            lead.escalated_at = None
    record_change(session, lead, "assigned", actor, at=now, reason=reason)


# -- making leads ----------------------------------------------------------------------------------------------
def create_lead(session: Session, principal: Principal, data: schemas.LeadCreate) -> tuple[Lead, bool]:
    """A lead for the inquiry, or the customer's open lead updated (returns it and whether it is new).

    The customer is found across the group by One ID (or made); the lead is the caller's: an open lead of the
    person is updated only if the caller may read it, otherwise the inquiry is a new lead of the caller's own,
    at their unit (see ``record_inquiries``). Another dealer's lead is neither returned nor changed."""
    principal.require("leads", "create")
    check_references(session, principal, {"profile_id": cdp_service.customer_ref(data.profile_id)})
    profile = _customer_for(session, principal, data)
    if data.unit_id is not None or data.owner_id is not None:
        unit_id, owner_id = placement(session, principal, data.unit_id, data.owner_id, entity="leads",
                                      privilege="create")
        placed: Route | None = Route(unit_id, owner_id, "none", "by_hand")
    else:
        placed = None
    lead, created = record_inquiry(session, principal, profile, source=data.source, source_event=None,
                             model=data.model_interest, note=data.note, at=_now(), placed=placed)
    return lead, created


def placement(session: Session, principal: Principal, unit_id: int | None, owner_id: int | None, *,
              entity: str | None = None, privilege: str = "assign") -> tuple[int, int | None]:
    """A placement given by hand, checked (kehu.tenancy.access.check_references): the unit is the
    organisation's, the owner an active user working there, and, for a row of ``entity``, both within what the
    principal may ``privilege`` (a consultant places nothing at another dealer). Without ``entity`` (a routing
    rule's or a service level's unit) the unit only has to be the organisation's."""
    if entity is None:
        check_references(session, principal, {"unit_id": Ref(BusinessUnit, unit_id, None)})
        assert unit_id is not None
        return unit_id, owner_id
    found = check_references(session, principal, place=Place(entity, privilege, unit_id, owner_id))
    assert found.unit_id is not None
    return found.unit_id, owner_id


@dataclass
class Inquiry:
    """A person asking about a car: from an event the lead rules read, a form, a call, an import row."""

    profile: Profile
    source: str
    source_event: str | None
    model: str | None
    note: str
    at: datetime
    placed: Route | None = None  # a placement given by hand; otherwise routing decides


def _within_reach(session: Session, actor: Principal, router: Router, route: Route | None) -> Route | None:
    """A person's new lead where they may read it: routed as usual when the route stays within what the
    caller may read, else the caller's own lead at their unit (themselves as its salesperson when they work
    leads there, else the unit's next salesperson the caller may read, else the caller). The platform's
    leads go where routing sends them."""
    if actor.is_system or actor.unit_id is None:
        return route
    depth = actor.depth("leads", "read")
    # no route: the lead waits unassigned at the caller's unit (the call centre's or HQ's queue)
    unit_id, owner_id = (route.unit_id, route.owner_id) if route is not None else (actor.unit_id, None)
    if within_depth(session, actor, depth, unit_id=unit_id, owner_id=owner_id):
        return route
    unit_id, owner_id = actor.unit_id, actor.user_id
    if actor.user_id not in router.salespeople(unit_id):
        picked = router.pick(unit_id, "round_robin")
        if picked is not None and within_depth(session, actor, depth, unit_id=unit_id, owner_id=picked):
            owner_id = picked
    elif owner_id is not None:
        router.handed(unit_id, owner_id)  # their turn is taken, as if routing had handed it to them
    return Route(unit_id, owner_id, "none", "own_inquiry")


def record_inquiry(session: Session, actor: Principal, profile: Profile, *, source: str, source_event: str | None,
                   model: str | None, note: str, at: datetime, placed: Route | None = None,
                   router: Router | None = None) -> tuple[Lead, bool]:
    """An inquiry of ``profile`` at ``at``: their open lead asked again, or a new lead routed (the rules and
    imports call it for customers they already hold)."""
    return record_inquiries(session, actor, [Inquiry(profile, source, source_event, model, note, at, placed)],
                            router)[0]


def record_inquiries(session: Session, actor: Principal, inquiries: list[Inquiry],
                     router: Router | None = None, *,
                     within_units: Collection[int] | None = None) -> list[tuple[Lead, bool]]:
    """Inquiries of one organisation's customers, each answered as ``record_inquiry`` would (a lead and
    whether it is new), in a handful of statements however many there are: the open leads are read in one
    query, the new leads routed in memory and inserted together, their history and audit written together.
    Two inquiries of one person in the batch make one lead asked twice.

    Whose open lead an inquiry joins depends on who records it. The platform (lead rules, imports, ingestion:
    a system actor) keeps one open lead per person and routes new ones. A person (a consultant, a manager, the
    call centre) only ever touches leads they may read: the inquiry is folded into the person's open lead if
    the caller may read it; otherwise it becomes a new lead, and a new lead that routing would send where the
    caller may not read it (another dealer's customer, another salesperson's) stays the caller's own, at the
    caller's unit. Two dealers may so each hold an open lead of the same person — the group shares the
    customer, not each dealer's pipeline — and the caller's answer is their own lead, never another's.
    ``within_units``: the platform acting for those units only (a dealer's journey) joins no other unit's lead."""
    if not inquiries:
        return []
    org_id = inquiries[0].profile.org_id
    router = router or Router(session, org_id)
    wanted = sorted({i.profile.id for i in inquiries})
    open_leads: dict[int, Lead] = {}
    for start in range(0, len(wanted), 5000):
        # by the customer's index alone, status checked here: given (org_id, status) PostgreSQL may walk every
        # open lead of the organisation once per batch when its statistics lag behind a bulk load
        query = select(Lead).where(Lead.profile_id.in_(wanted[start:start + 5000]))
        if not actor.is_system:  # a person's inquiry joins only a lead they may read
            query = query.where(scope(actor, Lead))
        if within_units is not None:  # a dealer's automation (a journey) joins only that dealer's open leads
            query = query.where(Lead.unit_id.in_(sorted(within_units)))
        for lead in session.scalars(query.order_by(Lead.id)):
            if lead.status in OPEN_STATUSES and lead.org_id == org_id:
                open_leads[lead.profile_id] = lead  # the newest open one
    answers: list[tuple[Lead, bool]] = []
    fresh: list[tuple[Lead, Inquiry, int, Route | None]] = []
    again: list[tuple[Lead, Inquiry]] = []
    for inquiry in inquiries:
        lead = open_leads.get(inquiry.profile.id)
        if lead is not None:  # the same person asking again: one lead, busier
            lead.inquiries += 1
            lead.last_inquiry_at = max(lead.last_inquiry_at, inquiry.at)
            lead.model_interest = inquiry.model or lead.model_interest
            if inquiry.note:
                lead.note = (lead.note + "\n" + inquiry.note).strip()[-2000:]
            again.append((lead, inquiry))
            answers.append((lead, False))
            continue
        lead = Lead(org_id=org_id, unit_id=actor.unit_id or inquiry.profile.unit_id, owner_id=None,
                    profile_id=inquiry.profile.id, status="inquiry", source=inquiry.source,
                    source_event=inquiry.source_event, model_interest=inquiry.model, note=inquiry.note, inquiries=1,
                    first_inquiry_at=inquiry.at, last_inquiry_at=inquiry.at, status_changed_at=inquiry.at,
                    created_by_id=actor.user_id)
        made_at = lead.unit_id
        chosen = inquiry.placed or _within_reach(session, actor, router, router.route(inquiry.profile, lead))
        if chosen is not None:
            lead.unit_id, lead.owner_id = chosen.unit_id, chosen.owner_id
            if chosen.owner_id is not None:
                lead.assigned_at = inquiry.at
                lead.first_contact_due_at = router.first_contact_due(chosen.unit_id, inquiry.at)
        _write_back(session, lead, inquiry.profile, router)
        open_leads[inquiry.profile.id] = lead
        fresh.append((lead, inquiry, made_at, chosen))
        answers.append((lead, True))
    session.add_all([lead for lead, *_ in fresh])
    session.flush()  # one multi-row INSERT … RETURNING gives the new leads their ids
    if fresh and not router.status_field_ready:
        _ensure_status_field(session, org_id)
        router.status_field_ready = True
    changes: list[dict[str, Any]] = []
    trail: list[dict[str, Any]] = []
    for lead, inquiry, made_at, chosen in fresh:
        why = inquiry.source_event or inquiry.source
        changes.append(_change_row(lead, "created", actor, at=inquiry.at, to_status="inquiry", reason=why,
                                   unit_id=made_at, owner_id=None))
        if chosen is not None:
            changes.append(_change_row(lead, "assigned", actor, at=inquiry.at, reason=chosen.why))
        trail.append(audit.entry(actor, org_id=org_id, action="create", entity="leads", entity_id=lead.id,
                                 unit_id=lead.unit_id, after=lead_fields(lead),
                                 summary=f"Lead {lead.id} for customer {lead.profile_id} ({why})"))
    session.flush()  # pending updates (leads asked again) go out before rows copied beside the ORM
    for lead, inquiry in again:
        why = inquiry.source_event or inquiry.source
        changes.append(_change_row(lead, "inquiry", actor, at=inquiry.at, reason=why))
        trail.append(audit.entry(actor, org_id=org_id, action="inquiry", entity="leads", entity_id=lead.id,
                                 unit_id=lead.unit_id, after={"inquiries": lead.inquiries},
                                 summary=f"Lead {lead.id}: inquiry ({why})"))
    copy_rows(session, LeadChange, changes)  # history and audit trail: one statement each
    audit.record_many(session, trail)
    return answers


# -- reading -----------------------------------------------------------------------------------------------------
def get_lead(session: Session, principal: Principal, lead_id: int) -> Lead:
    return get_scoped(session, principal, Lead, lead_id)


def page_leads(session: Session, principal: Principal, *, status: str | None = None, unit_id: int | None = None,
               owner_id: int | None = None, overdue: bool = False, unassigned: bool = False, q: str | None = None,
               page: int = 1, per_page: int = 20) -> OffsetPage[Lead]:
    """The leads the reader may see, newest inquiry first, filtered as a work queue asks."""
    principal.require("leads", "read")
    query = select(Lead).where(scope(principal, Lead))
    if status == "open":
        query = query.where(Lead.status.in_(OPEN_STATUSES))
    elif status:
        query = query.where(Lead.status == status)
    if unit_id is not None:
        query = query.where(Lead.unit_id.in_(unit_and_below(session, principal, unit_id)))
    if owner_id is not None:
        query = query.where(Lead.owner_id == owner_id)
    if unassigned:
        query = query.where(Lead.owner_id.is_(None), Lead.status.in_(OPEN_STATUSES))
    if overdue:
        query = query.where(Lead.status.in_(OPEN_STATUSES), Lead.first_contacted_at.is_(None),
                            Lead.first_contact_due_at < _now())
    if q:
        # among the reader's leads: their customers are seen through the leads (customers_of), in scope or not
        query = query.where(Lead.profile_id.in_(select(Profile.id).where(
            cdp_service.search_filter(principal, q), Profile.merged_into_id.is_(None))))
    return offset_page(session, query, order_by=[Lead.last_inquiry_at.desc(), Lead.id.desc()], page=page,
                       per_page=per_page)


def unit_and_below(session: Session, principal: Principal, unit_id: int) -> tuple[int, ...]:
    """A list filter's unit (one of the organisation's) and the units under it, by id."""
    unit = check_references(session, principal, {"unit_id": Ref(BusinessUnit, unit_id, None)})["unit_id"]
    return units_under(session, unit.org_id, unit.path)


def customers_of(session: Session, principal: Principal, rows: list[Any]) -> dict[int, Profile]:
    """The customers of leads (or activities) the reader may see: whoever works a lead sees who it is about
    (with masking as their roles say), even when the customer's record sits elsewhere."""
    ids = sorted({row.profile_id for row in rows if row.org_id == principal.org_id})
    return {p.id: p for p in session.scalars(select(Profile).where(Profile.id.in_(ids)))} if ids else {}


def history(session: Session, principal: Principal, lead_id: int) -> list[LeadChange]:
    lead = get_lead(session, principal, lead_id)
    return list(session.scalars(select(LeadChange).where(LeadChange.lead_id == lead.id)
                                .order_by(LeadChange.at.desc(), LeadChange.id.desc())))


def leads_of(session: Session, principal: Principal, profile_id: int) -> list[Lead]:
    """A customer's leads that the reader may see (the Customer 360)."""
    profile = cdp_service.get_profile(session, principal, profile_id)
    if not principal.can("leads"):
        return []
    return list(session.scalars(select(Lead).where(Lead.profile_id == profile.id, scope(principal, Lead))
                                .order_by(Lead.id.desc())))


def counts(session: Session, principal: Principal) -> dict[str, int]:
    """Leads per status within the reader's scope, with the open ones overdue and unassigned."""
    principal.require("leads", "read")
    now = _now()
    rows = dict(session.execute(select(Lead.status, func.count()).where(scope(principal, Lead))
                                .group_by(Lead.status)).all())
    open_filter = and_(scope(principal, Lead), Lead.status.in_(OPEN_STATUSES))
    overdue, unassigned = session.execute(select(
        func.count(case((and_(Lead.first_contacted_at.is_(None), Lead.first_contact_due_at < now), 1))),
        func.count(case((Lead.owner_id.is_(None), 1)))).where(open_filter)).one()
    return {**rows, "open": sum(rows.get(s, 0) for s in OPEN_STATUSES), "overdue": overdue or 0,
            "unassigned": unassigned or 0}


# -- working a lead ------------------------------------------------------------------------------------------------
def change_status(session: Session, principal: Principal, lead_id: int, data: schemas.StatusChange) -> Lead:
    lead = get_lead(session, principal, lead_id)
    require_row(session, principal, "leads", "update", unit_id=lead.unit_id, owner_id=lead.owner_id)
    if data.status == lead.status:
        return lead
    if data.status == "converted" and lead.status in OPEN_STATUSES:
        raise Conflict("A lead is converted with its opportunity: POST /api/v1/leads/{id}/convert.",
                       errors=[FieldError("status", "convert the lead to open its opportunity", "use_convert")])
    if data.status not in TRANSITIONS[lead.status]:
        allowed = ", ".join(TRANSITIONS[lead.status]) or "none (it is final)"
        raise Conflict(f"A lead that is {lead.status} cannot become {data.status}; it can become {allowed}.",
                       errors=[FieldError("status", f"not allowed after {lead.status}", "transition")])
    if data.status == "disqualified" and data.reason is None:
        raise invalid("reason", "say why the lead is disqualified", "required")
    set_status(session, principal, lead, data.status, reason=data.reason, note=data.note)
    return lead


def set_status(session: Session, principal: Principal, lead: Lead, status: str, *, reason: str | None,
               note: str = "") -> None:
    """Move a lead (the caller checked the move), with its history, write-back and audit."""
    now = _now()
    before = lead.status
    lead.status, lead.status_changed_at = status, now
    lead.disqualify_reason = reason if status == "disqualified" else None
    if status in ("sal", "sql", "converted") and lead.first_contacted_at is None:
        lead.first_contacted_at = now  # accepting or qualifying a lead means sales has talked to them
    session.flush()
    record_change(session, lead, "status", principal, at=now, from_status=before, to_status=status,
            reason=" ".join(filter(None, [reason, note])))
    _write_back(session, lead, session.get(Profile, lead.profile_id))  # type: ignore[arg-type]
    audit.record(session, principal, action="status", entity="leads", entity_id=lead.id, unit_id=lead.unit_id,
                 before={"status": before}, after={"status": lead.status, "reason": reason},
                 summary=f"Lead {lead.id}: {before} → {lead.status}")


def mark_contacted(session: Session, principal: Principal, lead_id: int, note: str = "") -> Lead:
    """The first contact made (stops the service-level clock); later contacts only add to the history."""
    lead = get_lead(session, principal, lead_id)
    require_row(session, principal, "leads", "update", unit_id=lead.unit_id, owner_id=lead.owner_id)
    now = _now()
    if lead.first_contacted_at is None:
        lead.first_contacted_at = now
    record_change(session, lead, "contacted", principal, at=now, reason=note)
    session.flush()
    return lead


def assign(session: Session, principal: Principal, lead_id: int, data: schemas.Assignment) -> Lead:
    """Hand a lead to a unit (its routing picks the salesperson) or to a salesperson, by someone who may
    assign it (a dealer manager within the dealer, HQ or the call centre anywhere)."""
    lead = get_lead(session, principal, lead_id)
    require_row(session, principal, "leads", "assign", unit_id=lead.unit_id, owner_id=lead.owner_id)
    if lead.status in CLOSED_STATUSES:
        raise Conflict(f"A {lead.status} lead is not assigned any more.")
    unit_id, owner_id = placement(session, principal, data.unit_id, data.owner_id, entity="leads")
    if _already_there(lead, unit_id, data.owner_id):
        return lead  # "to this dealer" when one of its salespeople has it already: nothing to do
    if owner_id is None:
        owner_id = next_salesperson(session, principal.org_id, unit_id)
    before = {"unit_id": lead.unit_id, "owner_id": lead.owner_id}
    # Compare and set: of two people (or workers) assigning the same lead at once, one moves it; the other
    # finds it moved — the same placement is then done already, another one is a conflict to look at again.
    owner_then = Lead.owner_id.is_(None) if lead.owner_id is None else Lead.owner_id == lead.owner_id
    claimed = session.execute(update(Lead).where(Lead.id == lead.id, Lead.unit_id == lead.unit_id, owner_then)
                              .values(unit_id=unit_id, owner_id=owner_id)
                              .execution_options(synchronize_session=False)).rowcount
    if not claimed:
        session.refresh(lead)
        if _already_there(lead, unit_id, data.owner_id):
            return lead
        raise Conflict("Someone assigned this lead meanwhile; look at it again before reassigning it.",
                       errors=[FieldError("owner_id", "the lead was assigned meanwhile", "changed")])
    _place(session, lead, unit_id, owner_id, principal, _now(), "by_hand")
    _write_back(session, lead, session.get(Profile, lead.profile_id))  # type: ignore[arg-type]
    audit.record(session, principal, action="assign", entity="leads", entity_id=lead.id, unit_id=lead.unit_id,
                 before=before, after={"unit_id": unit_id, "owner_id": owner_id},
                 summary=f"Lead {lead.id} assigned")
    return lead


def _already_there(lead: Lead, unit_id: int, owner_id: int | None) -> bool:
    """Whether the lead already sits where an assignment would put it (a unit only: with someone there)."""
    if owner_id is not None:
        return lead.unit_id == unit_id and lead.owner_id == owner_id
    return lead.unit_id == unit_id and lead.owner_id is not None


def bulk_assign(session: Session, principal: Principal, data: schemas.BulkAssignment) -> int:
    """Several leads at once (a salesperson leaving, a campaign's leads to a dealer): all or none."""
    check_references(session, principal, {"lead_ids": Ref(Lead, data.lead_ids, "assign")})
    assigned = 0
    for lead_id in sorted(set(data.lead_ids)):
        try:
            assign(session, principal, lead_id, schemas.Assignment(unit_id=data.unit_id, owner_id=data.owner_id))
        except NotFound as error:
            raise invalid("lead_ids", f"no lead {lead_id} that you may see", "unknown") from error
        assigned += 1
    return assigned


# -- the service level: overdue leads go to the dealer manager's queue ---------------------------------------------
@jobs.poller
def escalate_overdue(database: Database, limit: int = 500) -> bool:
    """Mark assigned leads nobody contacted in time as escalated (once each), with a history entry: the
    manager's work queue and the SLA report count them. Several workers may run it; the update decides."""
    now = _now()
    with database.unit_of_work() as session:
        due = list(session.scalars(select(Lead).where(
            Lead.status.in_(OPEN_STATUSES), Lead.first_contacted_at.is_(None), Lead.escalated_at.is_(None),
            Lead.first_contact_due_at < now).order_by(Lead.first_contact_due_at).limit(limit)))
        for lead in due:
            claimed = session.execute(update(Lead).where(Lead.id == lead.id, Lead.escalated_at.is_(None))
                                      .values(escalated_at=now).execution_options(synchronize_session=False)).rowcount
            if claimed:
                record_change(session, lead, "escalated", None, at=now, reason="first_contact_overdue")
    return bool(due)


# -- leads from behaviour ------------------------------------------------------------------------------------------
LEAD_RULES = "sales.lead_rules"  # the lead rules' event consumer
LEAD_RULES_BATCH = 2000


def list_rules(session: Session, principal: Principal) -> list[LeadRule]:
    principal.require("leads", "read")
    return list(session.scalars(select(LeadRule).where(LeadRule.org_id == principal.org_id).order_by(LeadRule.event)))


def save_rule(session: Session, principal: Principal, data: schemas.LeadRuleIn) -> LeadRule:
    """Add or change the rule for an event. A rule acts on events received from its creation on: the history
    already stored does not flood the dealers with old leads."""
    principal.require_permission("settings.manage")
    rule = session.scalar(select(LeadRule).where(LeadRule.org_id == principal.org_id, LeadRule.event == data.event))
    if rule is None:
        rule = LeadRule(org_id=principal.org_id, event=data.event)
        session.add(rule)
    rule.source, rule.model_property, rule.is_active = data.source, data.model_property, data.is_active
    events.start(session, LEAD_RULES)  # the first rule anywhere: the rules read the events from here on
    session.flush()
    audit.record(session, principal, action="update", entity="lead_rules", entity_id=rule.id,
                 after=data.model_dump(), summary=f"Lead rule for {data.event}")
    return rule


def org_setting(session: Session, principal: Principal, model: Any, row_id: int, what: str) -> Any:
    """One of the organisation's configuration rows (a lead rule, a routing rule, a score rule) by id."""
    row = session.scalar(select(model).where(model.id == row_id, model.org_id == principal.org_id))
    if row is None:
        raise NotFound(f"No {what} {row_id}.")
    return row


def delete_setting(session: Session, principal: Principal, model: Any, row_id: int, what: str) -> None:
    """Remove a configuration row, by a settings manager, audited."""
    principal.require_permission("settings.manage")
    row = org_setting(session, principal, model, row_id, what)
    session.delete(row)
    audit.record(session, principal, action="delete", entity=model.__tablename__, entity_id=row_id,
                 before={"name": getattr(row, "name", None) or getattr(row, "event", None)},
                 summary=f"{what.capitalize()} {row_id} removed")
    session.flush()


def delete_rule(session: Session, principal: Principal, rule_id: int) -> None:
    delete_setting(session, principal, LeadRule, rule_id, "lead rule")


def _rule_events(session: Session) -> list[Any] | None:
    """What the lead rules want of the customers' events: those an active rule names (None: no rule anywhere)."""
    names = list(session.scalars(select(LeadRule.event).where(LeadRule.is_active.is_(True)).distinct()))
    return [Event.event.in_(names)] if names else None


@events.subscribe(LEAD_RULES, stream=Event, wanted=_rule_events, batch=LEAD_RULES_BATCH)
def _leads_from(session: Session, batch: list[Event]) -> None:
    """The customers' events an active rule names make or update leads (as the platform), in the transaction that
    moves the lead rules' cursor past them: a crash repeats nothing and loses nothing, and two workers never take
    the same events (core/events.py). Events are read as soon as their transaction is known to be final, with
    no settle delay. A rule acts on events received from its creation on."""
    from kehu.tenancy.service import system_principal

    by_org: dict[int, list[Event]] = {}
    for event in batch:
        by_org.setdefault(event.org_id, []).append(event)
    for org_id, org_events in by_org.items():
        rules = {r.event: r for r in session.scalars(select(LeadRule).where(
            LeadRule.org_id == org_id, LeadRule.is_active.is_(True)))}
        org_events = [e for e in org_events if e.event in rules and e.received_at >= rules[e.event].created_at]
        if not org_events:
            continue
        live = cdp_service.live_profile_ids(session, {e.profile_id for e in org_events})
        loaded = {p.id: p for p in session.scalars(select(Profile).where(
            Profile.id.in_(set(live.values()))))}  # one read for the batch, merged-away ids followed
        inquiries: list[Inquiry] = []
        for event in org_events:
            profile = loaded.get(live.get(event.profile_id, event.profile_id))
            if profile is None:
                continue
            rule = rules[event.event]
            model = (event.properties or {}).get(rule.model_property)
            inquiries.append(Inquiry(profile, rule.source, event.event, str(model)[:100] if model else None, "",
                                     event.ts))
        record_inquiries(session, system_principal(session, org_id), inquiries)  # a few statements per batch


def leads_from_events(database: Database) -> bool:
    """One step of the lead rules (what the worker runs among the event consumers): True when there were events."""
    return events.consume(database, events.subscriptions()[LEAD_RULES]) > 0


# -- routing rules and service levels --------------------------------------------------------------------------------
def list_routing(session: Session, principal: Principal) -> list[RoutingRule]:
    principal.require("leads", "read")
    return list(session.scalars(select(RoutingRule).where(RoutingRule.org_id == principal.org_id)
                                .order_by(RoutingRule.priority, RoutingRule.id)))


def save_routing(session: Session, principal: Principal, data: schemas.RoutingRuleIn,
                 rule_id: int | None = None) -> RoutingRule:
    principal.require_permission("settings.manage")
    placement(session, principal, data.unit_id, None)
    if rule_id is None:
        rule = RoutingRule(org_id=principal.org_id)
        session.add(rule)
    else:
        rule = org_setting(session, principal, RoutingRule, rule_id, "routing rule")
    for key, value in data.model_dump().items():
        setattr(rule, key, value)
    session.flush()
    audit.record(session, principal, action="update", entity="routing_rules", entity_id=rule.id,
                 after=data.model_dump(), summary=f"Routing rule {rule.name}")
    return rule


def delete_routing(session: Session, principal: Principal, rule_id: int) -> None:
    delete_setting(session, principal, RoutingRule, rule_id, "routing rule")


def list_slas(session: Session, principal: Principal) -> list[LeadSla]:
    """The organisation's default first-contact hours (unit empty) and the units' own."""
    principal.require("leads", "read")
    return list(session.scalars(select(LeadSla).where(LeadSla.org_id == principal.org_id)
                                .order_by(LeadSla.unit_id.is_not(None), LeadSla.unit_id)))


def delete_sla(session: Session, principal: Principal, unit_id: int) -> None:
    """A unit goes back to the level above it."""
    principal.require_permission("settings.manage")
    row = session.scalar(select(LeadSla).where(LeadSla.org_id == principal.org_id, LeadSla.unit_id == unit_id))
    if row is not None:
        session.delete(row)
        session.flush()


def set_sla(session: Session, principal: Principal, data: schemas.SlaIn) -> LeadSla:
    principal.require_permission("settings.manage")
    if data.unit_id is not None:
        placement(session, principal, data.unit_id, None)
    row = session.scalar(select(LeadSla).where(LeadSla.org_id == principal.org_id, LeadSla.unit_id.is_(None)
                                               if data.unit_id is None else LeadSla.unit_id == data.unit_id))
    if row is None:
        row = LeadSla(org_id=principal.org_id, unit_id=data.unit_id)
        session.add(row)
    if (data.opens_at is None) != (data.closes_at is None):
        raise invalid("closes_at" if data.closes_at is None else "opens_at", "give both opening and closing time",
                      "required")
    if data.opens_at is not None and data.closes_at is not None and data.opens_at >= data.closes_at:
        raise invalid("closes_at", "closes after it opens", "range")
    if not set(data.open_days) <= set(range(7)) or len(set(data.open_days)) != len(data.open_days):
        raise invalid("open_days", "distinct days from 0 (Monday) to 6 (Sunday)", "range")
    row.first_contact_hours = data.first_contact_hours
    row.opens_at, row.closes_at, row.open_days = data.opens_at, data.closes_at, sorted(data.open_days)
    session.flush()
    audit.record(session, principal, action="update", entity="lead_slas", entity_id=row.id, after=data.model_dump(),
                 summary=f"First contact within {data.first_contact_hours} h")
    return row


# -- merges: one open lead per person ---------------------------------------------------------------------------------
# How far along an open lead is: after a merge, the one furthest along stays open.
PROGRESS = {"inquiry": 0, "recycled": 0, "mql": 1, "sal": 2, "sql": 3}


@events.subscribe("sales.fold_open_leads", [PROFILE_MERGED], within=True)
def _fold_after_merge(session: Session, merged: list[events.DomainEvent]) -> None:
    for event in merged:
        record = session.get(Merge, event.entity_id)
        winner = session.get(Profile, event.profile_id)
        assert record is not None and winner is not None
        fold_open_leads(session, winner, record)


@events.subscribe("sales.unfold_leads", [MERGE_UNDONE], within=True)
def _unfold_after_unmerge(session: Session, undone: list[events.DomainEvent]) -> None:
    for event in undone:
        record = session.get(Merge, event.entity_id)
        assert record is not None
        unfold_leads(session, record)


def fold_open_leads(session: Session, winner: Profile, record: Merge) -> None:
    """Two records of one person merged, each with an open lead at the same dealer: the lead furthest along
    (then the one contacted, then the oldest) stays open and counts the other's inquiries; the other is
    disqualified as a duplicate. Leads of different dealers stay open, each its dealer's (as an inquiry of a
    dealer never joins another dealer's lead). The merge record remembers it, so an unmerge reopens them."""
    open_leads = list(session.scalars(select(Lead).where(Lead.profile_id == winner.id,
                                                         Lead.status.in_(OPEN_STATUSES)).order_by(Lead.id)))
    if len(open_leads) < 2:
        return
    router = Router(session, winner.org_id)
    by_dealer: dict[int | None, list[Lead]] = {}
    for lead in open_leads:
        by_dealer.setdefault(router.dealer_of(lead.unit_id), []).append(lead)
    now = _now()
    folded: dict[str, str] = {}
    kept_by: dict[str, int] = {}
    for leads in by_dealer.values():
        kept = max(leads, key=lambda lead: (PROGRESS.get(lead.status, 0), lead.first_contacted_at is not None,
                                            -lead.first_inquiry_at.timestamp(), -lead.id))
        for lead in leads:
            if lead is kept:
                continue
            folded[str(lead.id)], kept_by[str(lead.id)] = lead.status, kept.id
            kept.inquiries += lead.inquiries
            kept.first_inquiry_at = min(kept.first_inquiry_at, lead.first_inquiry_at)
            kept.last_inquiry_at = max(kept.last_inquiry_at, lead.last_inquiry_at)
            before = lead.status
            lead.status, lead.status_changed_at, lead.disqualify_reason = "disqualified", now, "duplicate"
            session.flush()
            record_change(session, lead, "status", None, at=now, from_status=before, to_status="disqualified",
                    reason="duplicate")
    if folded:
        record.moved = {**(record.moved or {}), "folded_leads": {
            "kept": next(iter(kept_by.values())), "leads": folded, "kept_by": kept_by}}
    session.flush()


def unfold_leads(session: Session, record: Merge) -> None:
    """The merge undone: the leads it folded open again as they were (unless someone has worked them since)."""
    folded = (record.moved or {}).get("folded_leads")
    if not folded:
        return
    now = _now()
    for lead_id, status in folded["leads"].items():
        lead = session.get(Lead, int(lead_id))
        if lead is None or lead.status != "disqualified" or lead.disqualify_reason != "duplicate":
            continue
        lead.status, lead.status_changed_at, lead.disqualify_reason = status, now, None
        kept = session.get(Lead, (folded.get("kept_by") or {}).get(lead_id, folded["kept"]))
        if kept is not None:
            kept.inquiries = max(1, kept.inquiries - lead.inquiries)
        session.flush()
        record_change(session, lead, "status", None, at=now, from_status="disqualified", to_status=status,
                reason="unmerged")
    session.flush()


def reads_through_lead(session: Session, principal: Principal, profile_id: int) -> bool:
    """A reader of one of the customer's leads sees the customer, wherever their record sits: a dealer that
    took up a person the group already knew (an inquiry recorded for them) works its lead with them."""
    return principal.can("leads") and session.scalar(select(Lead.id).where(
        Lead.profile_id == profile_id, scope(principal, Lead)).limit(1)) is not None


# -- on the customer's timeline ------------------------------------------------------------------------------------
def _timeline_changes(session: Session, principal: Principal, profile: Profile,
                      params: dict[str, Any]) -> list[timeline.TimelineItem]:
    if not principal.can("leads"):
        return []
    query, scoped = scoped_once("lead_timeline", principal, Lead, lambda in_scope: (
        select(LeadChange).join(Lead, Lead.id == LeadChange.lead_id)
        .where(LeadChange.profile_id == bindparam("profile_id"), LeadChange.org_id == bindparam("org_id"),
               in_scope, timeline.before(LeadChange.at, LeadChange.id))
        .order_by(LeadChange.at.desc(), LeadChange.id.desc()).limit(bindparam("rows"))))
    return [timeline.TimelineItem("lead", c.id, c.at, c) for c in session.scalars(query, {**params, **scoped})]


def _timeline_item(principal: Principal, change: LeadChange) -> dict[str, Any]:
    return {"action": change.kind, "entity": "leads", "entity_id": change.lead_id, "actor": change.actor,
            "summary": change.to_status or change.reason or None,
            "changes": {k: v for k, v in (("from", change.from_status), ("to", change.to_status),
                                          ("reason", change.reason)) if v}}


def _timeline_title(item: Any, locale: str | None) -> str:
    """"Lead: SQL → converted", "Lead assigned", … in the reader's words."""
    details = dict(item.changes or {})
    words = {key: t(f"lead.status.{details[key]}", locale) for key in ("from", "to") if details.get(key)}
    reason = details.get("reason", "")
    words["reason"] = t(f"lead.reason.{reason}", locale, default=t(f"lead.source.{reason}", locale, default=reason))
    return t(f"timeline.lead_{item.action}", locale, **{"from": "", "to": "", **words})


TIMELINE_STREAM = timeline.TimelineStream("lead", 3, _timeline_changes, _timeline_item, _timeline_title, {
    "": ("person_search", "text-indigo-7"), "escalated": ("alarm", "text-negative")})

