"""HQ's templates for dealers (场景模版): a journey HQ (or a region) draws once and offers to the units below it.
The template itself enrols nobody. Published, it is offered; each dealer makes its own journey of it — a copy of
the template's published version, for the dealer's own customers — and may change only what HQ left open:

- ``"trigger"`` in the definition's ``open``: the audience (which segment, which event's properties, which date)
  — never the kind of trigger;
- a node's id in ``open``: that node's settings (a wait's days, the template a send uses for the dealer's own
  offer, a split's conditions) — never its kind nor where it leads.

Everything else is locked: the nodes and the ways between them, the other nodes' settings (the messages' content
and so their consent purpose), the entry rules (how often a customer may enter), the goal and the exit criteria.
A save that changes a locked part is refused (422, each change at its place), so every dealer's journey measures
the same goal and HQ compares their results side by side. Paused or stopped, the template is offered no more; the
dealers' journeys go on as their own.

A dealer's journey stays on the template version it was made from; ``rebase`` takes a newer one, keeping the
dealer's settings of the parts that are still open."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from kehu.cdp.models import HAPPENING, Event
from kehu.core import audit
from kehu.core.db import seconds_between, utcnow
from kehu.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from kehu.journeys import schemas
from kehu.journeys.locking import TRIGGER, settings_of
from kehu.journeys.models import ACTIVE, Enrolment, Journey
from kehu.journeys.service import (
    EDITABLE,
    _dump,
    create_journey,
    get_journey,
    graph_of,
    parse,
)
from kehu.tenancy.access import Place, Principal, check_references, home_unit, scope
from kehu.tenancy.models import BusinessUnit


def _reached(session: Session, org_id: int, goal: schemas.Goal, own: Any) -> Any:
    """1 for an enrolment whose customer reached ``goal`` within its days of entering (SQL, per row); an event kehu
    recorded at a unit (a deal won) counts only at the units of the journey's unit ``own``."""
    at = aliased(BusinessUnit)  # the unit such an event happened at
    happened = select(Event.id).where(
        Event.org_id == org_id, Event.profile_id == Enrolment.profile_id, Event.event == goal.event,
        Event.ts >= Enrolment.entered_at,
        seconds_between(Enrolment.entered_at, Event.ts, session.get_bind().dialect.name) <= goal.within_days * 86400,
        or_(Event.type != HAPPENING, exists(select(at.id).where(
            at.id == Event.properties["unit_id"].as_integer(), at.path.startswith(own.path)))))
    for key, value in goal.properties.items():
        prop = Event.properties[key]
        if isinstance(value, bool):
            happened = happened.where(prop.as_boolean() == value)
        elif isinstance(value, int | float):
            happened = happened.where(prop.as_float() == float(value))
        else:
            happened = happened.where(prop.as_string() == value)
    return case((exists(happened), 1), else_=0)


def _ancestors(path: str) -> list[int]:
    """The units a materialised path ("/1/7/42/") names: the unit and those above it."""
    return [int(part) for part in path.strip("/").split("/") if part]


def _unit_path(session: Session, principal: Principal, unit_id: int) -> str:
    path = session.scalar(select(BusinessUnit.path).where(BusinessUnit.id == unit_id,
                                                          BusinessUnit.org_id == principal.org_id))
    if path is None:
        raise ValidationFailed("No such unit.", errors=[FieldError("unit_id", "no such unit", "unknown")])
    return path


def _offered(principal: Principal, path: str) -> Any:
    """Live templates of the unit at ``path`` or of a unit above it."""
    return (Journey.org_id == principal.org_id, Journey.is_template.is_(True), Journey.status == "live",
            Journey.unit_id.in_(_ancestors(path)))


def offered_templates(session: Session, principal: Principal, unit_id: int | None = None) \
        -> list[schemas.OfferedTemplate]:
    """The templates offered to a unit (the reader's own unless named): those of its unit and the units above it,
    live, each with how many journeys the reader's scope already made of it."""
    principal.require("journeys", "read")
    if unit_id is not None:  # another dealer's unit is not the caller's to ask about (nor told apart from none)
        check_references(session, principal, place=Place("journeys", "read", unit_id, None))
    path = _unit_path(session, principal, unit_id if unit_id is not None else home_unit(session, principal))
    instance = aliased(Journey)
    made = select(func.count(instance.id)).where(instance.template_id == Journey.id, scope(principal, instance)) \
        .scalar_subquery()
    rows = session.execute(select(Journey, BusinessUnit.name, made)
                           .join(BusinessUnit, BusinessUnit.id == Journey.unit_id)
                           .where(*_offered(principal, path)).order_by(Journey.name)).all()
    return [schemas.OfferedTemplate(id=template.id, name=template.name, description=template.description,
                                    unit_id=template.unit_id, unit=unit, version=template.version,
                                    open=graph_of(session, template.id, template.version).definition.open,
                                    instances=int(count or 0))
            for template, unit, count in rows]


def _template_for(session: Session, principal: Principal, template_id: int, unit_id: int) -> Journey:
    """The live template of that id offered to the unit: 404 for any other (a template of a unit beside or below
    the unit's, another organisation's, or one withdrawn is not told apart from one that does not exist)."""
    path = _unit_path(session, principal, unit_id)
    template = session.scalar(select(Journey).where(Journey.id == template_id, *_offered(principal, path)))
    if template is None:
        raise NotFound("No such template is offered to this unit.")
    return template


def instantiate(session: Session, principal: Principal, template_id: int, data: schemas.InstanceCreate) -> Journey:
    """The dealer's journey made of a template's published version: a draft of the dealer's unit (or the unit
    named, which the template must be offered to), to adjust where the template is open and publish."""
    principal.require("journeys", "create")
    unit_id = data.unit_id if data.unit_id is not None else home_unit(session, principal)
    # where the journey goes first: a unit the caller may not place a journey at is the answer, whatever the template
    check_references(session, principal, place=Place("journeys", "create", unit_id, principal.user_id,
                                                     owner_at_unit=False))
    template = _template_for(session, principal, template_id, unit_id)
    definition = graph_of(session, template.id, template.version).definition
    journey = create_journey(session, principal, schemas.JourneyCreate(
        name=data.name, description=data.description or template.description, unit_id=unit_id))
    journey.draft = _dump(definition)
    journey.template_id, journey.template_version = template.id, template.version
    session.flush()  # create_journey recorded it in the audit ("drafted"); its template is on the row
    return journey


def rebase(session: Session, principal: Principal, journey_id: int) -> Journey:
    """The dealer's journey takes the template's latest published version: the locked parts as the template has
    them now, the dealer's own settings kept for each part still open (the audience, a node of the same id and
    kind). Publish it afterwards to run it."""
    journey = get_journey(session, principal, journey_id, "update", lock=True)
    if journey.template_id is None:
        raise Conflict("This journey was not made of a template.")
    if journey.status not in EDITABLE:
        raise Conflict("A stopped journey is kept as it ran; copy it to start again.")
    if journey.review_status == "submitted":
        raise Conflict("A journey waiting for approval is not edited; withdraw it first.",
                       message=("journeys.review.locked", {}))
    try:
        template = _template_for(session, principal, journey.template_id, journey.unit_id)
    except NotFound:
        raise Conflict("The template is no longer offered: the journey stays as it is.",
                       message=("journeys.template.withdrawn", {})) from None
    older = graph_of(session, template.id, journey.template_version or 0).definition
    newest = graph_of(session, template.id, template.version).definition
    journey.draft = _dump(_rebased(older, newest, parse(journey.draft or {})))
    before = journey.template_version
    journey.template_version = template.version
    journey.updated_at = utcnow()
    session.flush()
    audit.record(session, principal, action="update", entity="journeys", entity_id=journey.id,
                 unit_id=journey.unit_id, before={"template_version": before},
                 after={"template_version": template.version},
                 summary=f"Journey {journey.name} takes version {template.version} of its template")
    return journey


def _rebased(older: schemas.Definition, newest: schemas.Definition,
             mine: schemas.Definition) -> schemas.Definition:
    """The newest template version with the dealer's own choices kept: a part the dealer changed (open in the
    version it had, set otherwise than that version set it) that is still open, of the same kind — and, for a node
    with named ways, the same ways. Everything else is the template's as it is now, its new defaults included."""
    theirs = {node.id: node for node in older.nodes}
    kept = {node.id: node for node in mine.nodes}
    nodes = []
    for node in newest.nodes:
        own, was = kept.get(node.id), theirs.get(node.id)
        if (node.id in newest.open and node.id in older.open and own is not None and was is not None
                and own.type == node.type and settings_of(own) != settings_of(was)
                and schemas.ways_of(own) == schemas.ways_of(node)):
            node = own.model_copy(update={"position": node.position})
        nodes.append(node)
    trigger = newest.trigger
    if TRIGGER in newest.open and TRIGGER in older.open and mine.trigger.type == newest.trigger.type \
            and settings_of(mine.trigger) != settings_of(older.trigger):
        trigger = mine.trigger
    return newest.model_copy(update={"nodes": nodes, "trigger": trigger})


def newest_version(session: Session, principal: Principal, journey: Journey) -> int | None:
    """The template's published version when it is newer than the one the journey was made from (and still
    offered to the journey's unit)."""
    if journey.template_id is None:
        return None
    version = session.scalar(select(Journey.version).where(Journey.id == journey.template_id,
                                                           Journey.org_id == principal.org_id,
                                                           Journey.status == "live"))
    return version if version and version > (journey.template_version or 0) else None


def instance_results(session: Session, principal: Principal, template_id: int) -> schemas.TemplateResults:
    """Every journey made of the template (those in the reader's scope), side by side: customers entered, inside
    now, finished, and conversion to the template's goal — which the dealers cannot change — in one grouped
    statement. An event kehu recorded at a unit (a deal won) counts only at the units of the dealer's journey."""
    template = get_journey(session, principal, template_id)
    if not template.is_template:
        raise Conflict("This journey is not a template.")
    goal = (graph_of(session, template.id, template.version).definition if template.version
            else parse(template.draft or {})).goal
    own = aliased(BusinessUnit)  # the dealer journey's unit
    # each journey against the goal of the template version it was made from (what its own page shows too)
    versions: set[int] = {v for v in session.scalars(select(Journey.template_version).where(
        Journey.template_id == template.id)) if v}
    by_version = [(Journey.template_version == version, _reached(session, template.org_id, version_goal, own))
                  for version in sorted(versions)
                  if (version_goal := graph_of(session, template.id, version).definition.goal) is not None]
    converted: Any = case(*by_version, else_=0) if by_version else 0
    rows = session.execute(
        select(Journey.id, Journey.name, Journey.unit_id, own.name, Journey.status, Journey.version,
               Journey.template_version, func.count(Enrolment.id),
               func.coalesce(func.sum(case((Enrolment.state == ACTIVE, 1), else_=0)), 0),
               func.coalesce(func.sum(case((Enrolment.state == "completed", 1), else_=0)), 0),
               func.coalesce(func.sum(case((Enrolment.id.is_(None), 0), else_=converted)), 0))
        .join(own, own.id == Journey.unit_id)
        .outerjoin(Enrolment, and_(Enrolment.journey_id == Journey.id, scope(principal, Enrolment)))
        .where(Journey.template_id == template.id, scope(principal, Journey))
        .group_by(Journey.id, Journey.name, Journey.unit_id, own.name, Journey.status, Journey.version,
                  Journey.template_version)).all()
    instances = [schemas.InstanceResult(
        journey_id=journey_id, name=name, unit_id=unit_id, unit=unit, status=status, version=version,
        template_version=template_version or 0, entered=int(entered), active=int(active),
        completed=int(completed), converted=int(reached), rate=reached / entered if entered else 0.0)
        for journey_id, name, unit_id, unit, status, version, template_version, entered, active, completed, reached
        in rows]
    instances.sort(key=lambda i: (-i.rate, -i.entered, i.unit))
    entered = sum(i.entered for i in instances)
    reached = sum(i.converted for i in instances)
    return schemas.TemplateResults(goal=goal, version=template.version, entered=entered, converted=reached,
                                   rate=reached / entered if entered else 0.0, instances=instances)
