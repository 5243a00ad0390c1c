"""Journeys (客户旅程): a unit's marketer draws who enters, what they receive, how long they wait and which way they
go; kehu walks every enrolled customer through it.

Life cycle: draft → live ⇄ paused → stopped. What runs is a published version, never the draft being edited:
publishing again makes a new version, and the customers already inside either finish on the version they are on
or move to the node of the same id in the new one (the editor chooses; whoever's node is gone stays). Pausing
holds everyone where they are (nothing is sent, no wait ends); stopping takes everyone out, with the reason.

Entry: customers enter as the trigger says — as they enter or leave a segment, as an event of a name (and
property values) arrives for them, on a schedule or on a date of their profile (kehu/journeys/timing.py), or when
enrolled by hand or through the API — and only customers of the
journey's unit and the units below it. ``re_entry`` ``never``: once per customer; ``after_exit``: again once the
last walk ended and ``reentry_days`` have passed since it began. A customer is in a journey at most once at a time
(a unique index over the active enrolments: two triggers at once cannot both enrol them).

The engine that walks them, and the triggers that enrol them, are kehu/journeys/engine.py.

Over 600 lines: a journey's rules — what a draft may hold and what keeps it from going live, publishing and moving
the people inside, the life cycle and enrolment — check and change one piece of state under one lock; timing,
settable fields, results and the engine live apart."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import (
    exists,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kehu.cdp import service as cdp_service
from kehu.cdp.models import Profile
from kehu.channels import control, templates
from kehu.channels.models import Template
from kehu.core import audit
from kehu.core.db import affected, dialect_insert, refresh_statistics, utcnow
from kehu.core.errors import Conflict, FieldError, Forbidden, ValidationFailed
from kehu.core.pagination import Page, keyset_page
from kehu.journeys import fields as journey_fields
from kehu.journeys import locking, schemas
from kehu.journeys.models import ACTIVE, Enrolment, Journey, JourneyVersion
from kehu.journeys.timing import (
    TIMED,
    arrive_by_dates,
    date_field_problems,
    next_entry,
    timing_of,
    wait_until,
    waited_for,
)
from kehu.segments.conditions import compile_condition
from kehu.segments.models import Segment, SegmentMember, Tag
from kehu.tenancy.access import (
    DEFAULT_TIMEZONE,
    Place,
    Principal,
    Ref,
    check_references,
    get_scoped,
    home_unit,
    is_root_path,
    org_timezone,
    require_row,
    scope,
    units_under,
)
from kehu.tenancy.models import BusinessUnit

EDITABLE = ("draft", "live", "paused")
_definition = TypeAdapter(schemas.Definition)


# -- the graph ------------------------------------------------------------------------------------------------------
class Graph:
    """A definition's nodes by id and where each leads (per branch for a split)."""

    def __init__(self, definition: schemas.Definition) -> None:
        self.definition = definition
        self.nodes: dict[str, Any] = {node.id: node for node in definition.nodes}
        self.ways: dict[tuple[str, str | None], str] = {(e.source, e.branch): e.target for e in definition.edges}
        self.entry = next((node.id for node in definition.nodes if node.type == "entry"), None)

    def next(self, node_id: str, branch: str | None = None) -> str | None:
        return self.ways.get((node_id, branch))

    def arrival(self, node_id: str | None, now: datetime, timezone: str = DEFAULT_TIMEZONE) -> datetime:
        """When a node acts on a customer who arrives now: a wait's end (a wait for an event: its time-out, unless
        the event comes first; a wait until a time: that time in the organisation's ``timezone``), otherwise at
        once."""
        node = self.nodes.get(node_id or "")
        if node is not None and node.type in TIMED:
            return now + timedelta(seconds=node.seconds)
        if node is not None and node.type == "wait_until":
            return wait_until(node, now, timezone)
        return now


def parse(definition: dict[str, Any]) -> schemas.Definition:
    return _definition.validate_python(definition)


# Published versions never change: each is parsed once per process. The key holds when it was published, so that a
# database emptied and filled again (tests, a restored backup) never meets a graph of the ids' former owner.
_graphs: OrderedDict[tuple[int, int, datetime], Graph] = OrderedDict()


def graph_of(session: Session, journey_id: int, version: int) -> Graph:
    row = session.execute(select(JourneyVersion.published_at, JourneyVersion.definition).where(
        JourneyVersion.journey_id == journey_id, JourneyVersion.version == version)).first()
    if row is None:
        return Graph(parse({}))
    key = (journey_id, version, row.published_at)
    found = _graphs.get(key)
    if found is None:
        found = Graph(parse(row.definition or {}))
        _graphs[key] = found
        while len(_graphs) > 1000:
            _graphs.popitem(last=False)
    return found


def problems(session: Session, principal: Principal, journey: Journey) -> list[FieldError]:
    """What stops the draft from going live, each at its place (``definition.nodes[2].template_id``): a draft may be
    saved unfinished, the canvas shows these on their nodes, and publishing refuses while any is left."""
    return problems_of(session, principal, journey.org_id, parse(journey.draft or {}), ran=journey.version > 0,
                       template=template_of(session, journey))


def template_of(session: Session, journey: Journey) -> schemas.Definition | None:
    """The template version a dealer's journey was made from (None: not made of a template, or the template is
    gone)."""
    if journey.template_id is None or not journey.template_version:
        return None
    graph = graph_of(session, journey.template_id, journey.template_version)
    return graph.definition if graph.definition.nodes else None


def problems_of(session: Session, principal: Principal, org_id: int, definition: schemas.Definition, *,
                ran: bool = False, template: schemas.Definition | None = None) -> list[FieldError]:
    """The problems of a definition as drawn (the canvas asks as the user draws, before saving). ``ran``: the
    journey has run (a schedule's date may have passed: it ran then). ``template``: the template version a dealer's
    journey was made from (what it locks is a problem when changed; what it names was HQ's to choose)."""
    errors: list[FieldError] = locking.locked_changes(template, definition) if template is not None else []
    where = "definition"
    trigger = definition.trigger
    if trigger.type == "date" and trigger.field:
        errors += date_field_problems(session, org_id, trigger.field, f"{where}.trigger.field")
    if trigger.type == "schedule" and trigger.date is not None and not ran \
            and next_entry(trigger, utcnow(), org_timezone(session, org_id)) is None:
        errors.append(FieldError(f"{where}.trigger.date", "the day and time to enrol on have passed", "past"))
    seen: set[str] = set()
    for index, node in enumerate(definition.nodes):
        if node.id in seen:
            errors.append(FieldError(f"{where}.nodes[{index}].id", f"{node.id!r} is used by another node", "unique"))
        seen.add(node.id)
    graph = Graph(definition)
    if sum(node.type == "entry" for node in definition.nodes) != 1:
        errors.append(FieldError(f"{where}.nodes", "a journey has exactly one entry node", "entry"))
    for index, edge in enumerate(definition.edges):
        for side, node_id in (("from", edge.source), ("to", edge.target)):
            if node_id not in graph.nodes:
                errors.append(FieldError(f"{where}.edges[{index}].{side}", f"no node {node_id!r}", "unknown"))
        source = graph.nodes.get(edge.source)
        if source is not None and source.type != "exit" and edge.branch not in schemas.ways_of(source):
            errors.append(FieldError(f"{where}.edges[{index}].branch",
                                     f"{source.type} {source.id!r} has no way {edge.branch!r}", "branch"))
    counted: dict[tuple[str, str | None], int] = {}
    for edge in definition.edges:
        counted[(edge.source, edge.branch)] = counted.get((edge.source, edge.branch), 0) + 1
    for index, node in enumerate(definition.nodes):
        at = f"{where}.nodes[{index}]"
        if node.type == "exit":
            if any(source == node.id for source, _ in counted):
                errors.append(FieldError(at, "an exit leads nowhere", "exit"))
            continue
        ways = schemas.ways_of(node)
        for way in ways:
            if counted.get((node.id, way), 0) == 0:
                label = f"branch {way!r}" if way else "the way on"
                errors.append(FieldError(at, f"{node.type} {node.id!r} needs {label} connected", "unconnected"))
            elif counted[(node.id, way)] > 1:
                errors.append(FieldError(at, f"{node.type} {node.id!r} leads two ways from one exit", "ambiguous"))
    if graph.entry is not None:
        reached, stack = set(), [graph.entry]
        while stack:
            current = stack.pop()
            if current in reached:
                continue
            reached.add(current)
            stack += [target for (source, _), target in graph.ways.items() if source == current]
        for index, node in enumerate(definition.nodes):
            if node.id not in reached:
                errors.append(FieldError(f"{where}.nodes[{index}]", f"nobody reaches {node.id!r}", "unreachable"))
        if _has_cycle(graph):
            errors.append(FieldError(f"{where}.edges", "the path leads back to a node it came from", "cycle"))
    if definition.exit_on_goal and definition.goal is None:
        errors.append(FieldError(f"{where}.exit_on_goal", "leaving on the goal needs a goal", "goal"))
    errors += _unfinished(definition)
    errors += [problem for index, node in enumerate(definition.nodes) if node.type == "wait_until" and node.field
               for problem in date_field_problems(session, org_id, node.field, f"{where}.nodes[{index}].field")]
    for index, node in enumerate(definition.nodes):
        if node.type == "field" and node.field is not None:  # a field a journey may set, a value that fits it
            _, problem = journey_fields.checked_value(session, org_id, node.field, node.value)
            if problem is not None:
                errors.append(FieldError(f"{where}.nodes[{index}].{problem.field}", problem.message, problem.code))
    errors += _reference_problems(session, principal, org_id, definition, locking.inherited(template, definition))
    errors += [FieldError(f"{where}.nodes[{index}]", f"{node.type} nodes need the journeys.actions permission",
                          "forbidden")
               for index, node in enumerate(definition.nodes) if node.type in ACTING_NODES
               and not (principal.has(ACTIONS) or principal.can(*ACTING_NODES[node.type]))]
    return errors


def _unfinished(definition: schemas.Definition) -> list[FieldError]:
    """What a node was left without while drawing: a send's template, a wait's event, a branch's condition."""
    errors = []
    for index, node in enumerate(definition.nodes):
        at = f"definition.nodes[{index}]"
        if node.type == "send" and node.template_id is None:
            errors.append(FieldError(f"{at}.template_id", "choose the template to send", "template"))
        elif node.type == "tag" and node.tag_id is None:
            errors.append(FieldError(f"{at}.tag_id", "choose the tag", "tag"))
        elif node.type == "field" and node.field is None:
            errors.append(FieldError(f"{at}.field", "choose the field to set", "field"))
        elif node.type == "segment" and node.segment_id is None:
            errors.append(FieldError(f"{at}.segment_id", "choose the static segment", "segment"))
        elif node.type == "segment" and node.segment_id in (definition.trigger.segment_id, definition.exit_segment_id):
            # changing the segment that enrols (or takes out) would set the journey off again and again
            errors.append(FieldError(f"{at}.segment_id", "the journey's own trigger or exit segment", "loop"))
        elif node.type == "task" and not node.subject.strip():
            errors.append(FieldError(f"{at}.subject", "say what the salesperson should do", "subject"))
        elif node.type == "wait_for_event" and not node.event:
            errors.append(FieldError(f"{at}.event", "name the event to wait for", "event"))
        elif node.type == "split":
            errors += [FieldError(f"{at}.branches[{number}].condition", f"branch {branch.name!r} needs a condition",
                                  "condition")
                       for number, branch in enumerate(node.branches) if branch.condition is None]
        elif node.type == "random_split" and sum(group.percent for group in node.groups) != 100:
            errors.append(FieldError(f"{at}.groups", "the groups' shares add up to 100 %", "shares"))
    return errors


def _has_cycle(graph: Graph) -> bool:
    state: dict[str, int] = {}

    def visit(node_id: str) -> bool:
        state[node_id] = 1
        for (source, _), target in graph.ways.items():
            if source != node_id:
                continue
            if state.get(target) == 1 or (state.get(target) is None and visit(target)):
                return True
        state[node_id] = 2
        return False

    return any(state.get(node_id) is None and visit(node_id) for node_id in list(graph.nodes))


# Nodes that change customers or make sales' records for every customer the journey reaches: only someone granted
# journeys.actions (or the privilege itself) publishes one; a draft may hold it. The permission, not the
# privileges, is what marketers get: leads.create would also open the leads API to them.
ACTIONS = "journeys.actions"
ACTING_NODES = {"field": ("profiles", "update"), "lead": ("leads", "create"), "task": ("activities", "create")}


def _reference_problems(session: Session, principal: Principal, org_id: int, definition: schemas.Definition,
                        inherited: set[str] | None = None) -> list[FieldError]:
    """Templates, segments and conditions the journey names: each must be one its author may use (the parts a
    dealer's journey has unchanged from its template were HQ's to choose: ``inherited``)."""
    errors: list[FieldError] = []
    inherited = inherited or set()
    trigger = definition.trigger
    if trigger.segment_id is not None and locking.TRIGGER not in inherited:
        errors += _ref_errors(session, principal, "definition.trigger.segment_id", Ref(Segment, trigger.segment_id))
    if definition.exit_segment_id is not None and "exit_segment_id" not in inherited:
        errors += _ref_errors(session, principal, "definition.exit_segment_id",
                              Ref(Segment, definition.exit_segment_id))
    timezone = principal.timezone
    for index, node in enumerate(definition.nodes):
        at = f"definition.nodes[{index}]"
        if node.id in inherited:  # HQ's choice, used whatever the dealer may read — but it must still be sendable
            if node.type == "send" and node.template_id is not None and session.scalar(
                    select(Template.id).where(Template.id == node.template_id, Template.org_id == org_id,
                                              Template.is_archived.is_(False))) is None:
                errors.append(FieldError(f"{at}.template_id", "the template's message is archived or gone",
                                         "unknown"))
            continue
        if node.type == "send" and node.template_id is not None:
            errors += _ref_errors(session, principal, f"{at}.template_id",
                                  Ref(Template, node.template_id, "read", Template.is_archived.is_(False),
                                      reach=templates.inherited))
        elif node.type == "tag" and node.tag_id is not None:
            errors += _ref_errors(session, principal, f"{at}.tag_id",
                                  Ref(Tag, node.tag_id, "read", Tag.segment_id.is_(None), Tag.rule.is_(None)))
        elif node.type == "segment" and node.segment_id is not None:
            # a list the author keeps: one they may change, and static (a dynamic one's members are its condition's)
            errors += _ref_errors(session, principal, f"{at}.segment_id",
                                  Ref(Segment, node.segment_id, "update", Segment.kind == "static"))
        elif node.type == "split":
            for number, branch in enumerate(node.branches):
                if branch.condition is None:
                    continue
                try:
                    compile_condition(session, org_id, timezone, branch.condition, reader=principal,
                                      path=f"{at}.branches[{number}].condition")
                except (ValidationFailed, Forbidden) as failed:  # Forbidden: it asks of personal data
                    errors += failed.errors or [FieldError(f"{at}.branches[{number}].condition", failed.detail,
                                                           "forbidden")]
    return errors


def _refuse_foreign_ids(session: Session, principal: Principal, definition: schemas.Definition,
                        template: schemas.Definition | None = None) -> None:
    """A draft may be unfinished, never hold what its author may not use: a segment, template, unit, tag or
    account of another organisation or outside the author's scope is refused when saved (422 naming it). A dealer's
    journey made of a template may not change what the template locks."""
    if template is not None:
        locked = locking.locked_changes(template, definition)
        if locked:
            raise ValidationFailed("The template locks what was changed.", errors=locked,
                                   message=("journeys.template.locked", {}))
    errors = _reference_problems(session, principal, principal.org_id, definition,
                                 locking.inherited(template, definition))
    if errors:
        raise ValidationFailed("The journey names records you cannot use.", errors=errors)


def _ref_errors(session: Session, principal: Principal, field: str, ref: Ref) -> list[FieldError]:
    try:
        check_references(session, principal, {field: ref})
    except ValidationFailed as failed:
        return list(failed.errors or [])
    return []


# -- journeys -------------------------------------------------------------------------------------------------------
def journey_out(journey: Journey) -> schemas.JourneyOut:
    return schemas.JourneyOut(id=journey.id, unit_id=journey.unit_id, owner_id=journey.owner_id, name=journey.name,
                              description=journey.description, status=journey.status, version=journey.version,
                              definition=journey.draft or {}, started_at=journey.started_at,
                              stopped_at=journey.stopped_at, created_at=journey.created_at,
                              updated_at=journey.updated_at, review_status=journey.review_status,  # type: ignore[arg-type]
                              review_comment=journey.review_comment or "", submitted_at=journey.submitted_at,
                              is_template=journey.is_template, template_id=journey.template_id,
                              template_version=journey.template_version)


def _starting_definition() -> dict[str, Any]:
    """What a new journey's canvas shows: an entry leading to an exit, enrolled by hand."""
    return {"trigger": {"type": "manual"}, "re_entry": "never", "reentry_days": 0,
            "nodes": [{"id": "entry", "type": "entry", "position": {"x": 0, "y": 0}},
                      {"id": "exit", "type": "exit", "position": {"x": 0, "y": 160}}],
            "edges": [{"from": "entry", "to": "exit"}]}


def _dump(definition: schemas.Definition) -> dict[str, Any]:
    return definition.model_dump(mode="json", by_alias=True, exclude_none=True)


def list_journeys(session: Session, principal: Principal, *, status: str | None = None, limit: int = 50,
                  cursor: str | None = None) -> Page[Any]:
    principal.require("journeys", "read")
    query = select(Journey).where(scope(principal, Journey))
    if status:
        query = query.where(Journey.status == status)
    return keyset_page(session, query, id_column=Journey.id, limit=limit, cursor=cursor)


def get_journey(session: Session, principal: Principal, journey_id: int, privilege: str = "read", *,
                lock: bool = False) -> Journey:
    """A journey in scope. ``lock``: held until the transaction ends (a status change or a publication; two at once
    take turns instead of one failing on the version's unique key)."""
    journey = get_scoped(session, principal, Journey, journey_id, privilege)
    if lock:
        _lock(session, journey.id)
        session.refresh(journey)
    return journey


def may_change(session: Session, principal: Principal, journey: Journey) -> bool:
    """Whether the principal may edit this journey (update privilege reaching its unit and owner; not stopped)."""
    if journey.status not in EDITABLE:
        return False
    try:
        require_row(session, principal, "journeys", "update", unit_id=journey.unit_id, owner_id=journey.owner_id)
    except Forbidden:
        return False
    return True


def _lock(session: Session, journey_id: int, *, share: bool = False) -> str | None:
    """Lock the journey's row (PostgreSQL; SQLite's writer is alone anyway) and read its status: an enrolment or a
    step holds it shared, so that a pause or a stop committing meanwhile waits for them, and they see it after."""
    query = select(Journey.status).where(Journey.id == journey_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(read=share)
    return session.scalar(query)


def _name_taken(session: Session, journey: Journey | None, org_id: int, unit_id: int, name: str) -> None:
    clash = select(Journey.id).where(Journey.org_id == org_id, Journey.unit_id == unit_id, Journey.name == name)
    if journey is not None:
        clash = clash.where(Journey.id != journey.id)
    if session.scalar(clash) is not None:
        raise Conflict(f"Your unit has a journey named {name!r} already.",
                       errors=[FieldError("name", "already in use in this unit", "unique")],
                       message=("journeys.name_taken", {"name": name}))


def _flush_named(session: Session, name: str) -> None:
    """Flush; two writers saving one name in one unit at once: the second answers 409, not 500."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"Your unit has a journey named {name!r} already.",
                       errors=[FieldError("name", "already in use in this unit", "unique")],
                       message=("journeys.name_taken", {"name": name})) from exc


def create_journey(session: Session, principal: Principal, data: schemas.JourneyCreate) -> Journey:
    unit_id = data.unit_id if data.unit_id is not None else home_unit(session, principal)
    check_references(session, principal, place=Place("journeys", "create", unit_id, principal.user_id,
                                                     owner_at_unit=False))
    if data.definition is not None:
        _refuse_foreign_ids(session, principal, data.definition)
    _name_taken(session, None, principal.org_id, unit_id, data.name)
    journey = Journey(org_id=principal.org_id, unit_id=unit_id, owner_id=principal.user_id, name=data.name,
                      description=data.description, status="draft", is_template=data.template,
                      draft=_dump(data.definition) if data.definition is not None else _starting_definition())
    session.add(journey)
    _flush_named(session, data.name)
    audit.record(session, principal, action="create", entity="journeys", entity_id=journey.id,
                 unit_id=journey.unit_id, after={"name": journey.name}, summary=f"Journey {journey.name} drafted")
    return journey


def update_journey(session: Session, principal: Principal, journey_id: int,
                   data: schemas.JourneyUpdate) -> Journey:
    """Edit the name, the description or the draft. A live journey goes on running its published version until
    the draft is published."""
    journey = get_journey(session, principal, journey_id, "update", lock=True)
    if journey.status not in EDITABLE:
        raise Conflict("A stopped journey is kept as it ran; copy it to start again.")
    if journey.review_status == "submitted":  # what the reviewer approves is what was submitted
        raise Conflict("A journey waiting for approval is not edited; withdraw it first.",
                       message=("journeys.review.locked", {}))
    if data.definition is not None:
        _refuse_foreign_ids(session, principal, data.definition, template_of(session, journey))
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] != journey.name:
        _name_taken(session, journey, journey.org_id, journey.unit_id, changes["name"])
        journey.name = changes["name"]
        _flush_named(session, journey.name)
    if "description" in changes:
        journey.description = changes["description"]
    if data.definition is not None:
        journey.draft = _dump(data.definition)
    journey.updated_at = utcnow()
    audit.record(session, principal, action="update", entity="journeys", entity_id=journey.id,
                 unit_id=journey.unit_id, after={k: v for k, v in changes.items() if k != "definition"},
                 summary=f"Journey {journey.name} edited")
    return journey


def export_journey(session: Session, principal: Principal, journey_id: int) -> schemas.JourneyExport:
    """The journey's draft (what was last drawn, published or not) as a versioned file."""
    journey = get_journey(session, principal, journey_id)
    return schemas.JourneyExport(name=journey.name, description=journey.description,
                                 definition=_dump(parse(journey.draft or {})), exported_at=utcnow())


def import_journey(session: Session, principal: Principal, data: schemas.JourneyImport) -> Journey:
    """A new draft from an exported journey: the same checks as drawing it (every template, segment or field it
    names must be one the importer may use — 422 naming each that is not)."""
    return create_journey(session, principal, schemas.JourneyCreate(
        name=data.name, description=data.description, unit_id=data.unit_id, definition=data.definition))


def delete_journey(session: Session, principal: Principal, journey_id: int) -> None:
    journey = get_journey(session, principal, journey_id, "delete")
    if journey.version:
        raise Conflict("A journey that ran is kept with its history; stop it instead.")
    session.delete(journey)
    audit.record(session, principal, action="delete", entity="journeys", entity_id=journey_id,
                 unit_id=journey.unit_id, summary=f"Journey {journey.name} deleted")


def publish_version(session: Session, principal: Principal, journey_id: int, data: schemas.Publish) -> Journey:
    """The draft becomes the next version and runs (a draft goes live; a paused journey stays paused) — or, where
    a unit above asks to approve this unit's messages, it is submitted for approval and waits (unchanged until
    approved or rejected: kehu/journeys/approval.py); the version running meanwhile goes on."""
    journey = get_journey(session, principal, journey_id, "update", lock=True)
    if journey.status not in EDITABLE:
        raise Conflict("A stopped journey does not run again.")
    if journey.review_status == "submitted":
        raise Conflict("This journey waits for approval already.", message=("journeys.review.waiting", {}))
    found = problems(session, principal, journey)
    if found:
        raise ValidationFailed("The journey cannot go live yet.", errors=found)
    if needs_approval(session, principal, journey):
        now = utcnow()
        journey.review_status, journey.review_comment = "submitted", ""
        journey.submitted_by_id, journey.submitted_at = principal.user_id, now
        journey.submitted_move_people, journey.reviewed_by_id, journey.reviewed_at = data.move_people, None, None
        journey.updated_at = now
        session.flush()
        audit.record(session, principal, action="submitted", entity="journeys", entity_id=journey.id,
                     unit_id=journey.unit_id, after={"move_people": data.move_people},
                     summary=f"Journey {journey.name} submitted for approval")
        return journey
    return publish_now(session, principal, journey, move_people=data.move_people)


def needs_approval(session: Session, principal: Principal, journey: Journey) -> bool:
    """A unit above the journey's asks to approve this unit's messages (the channels' rule, as for broadcasts); the
    platform itself publishes without one."""
    return not principal.is_system and control.rules_for(session, journey.org_id, journey.unit_id).approval_required


def publish_now(session: Session, principal: Principal, journey: Journey, *, move_people: bool) -> Journey:
    """Publish the (checked) draft of a locked journey: the next version, live."""
    definition = parse(journey.draft)
    now = utcnow()
    before = graph_of(session, journey.id, journey.version).definition.trigger if journey.version else None
    journey.version += 1
    session.add(JourneyVersion(org_id=journey.org_id, journey_id=journey.id, version=journey.version,
                               definition=_dump(definition), published_at=now, published_by_id=principal.user_id))
    trigger = definition.trigger
    if journey.is_template:  # offered to the units below, enrolling nobody: no trigger listens for it
        journey.trigger_kind = journey.trigger_key = journey.next_entry_at = None
    else:
        journey.trigger_kind = trigger.type
        journey.trigger_key = str(trigger.segment_id) if trigger.type.startswith("segment") else trigger.event
        # the same trigger keeps its next run (one due and not made yet is made, not dropped); another one runs
        # from now on: none is made twice
        if before != trigger or journey.next_entry_at is None:
            journey.next_entry_at = next_entry(trigger, now, org_timezone(session, journey.org_id))
    if journey.status == "draft":
        journey.status, journey.started_at = "live", now
    moved = 0
    if move_people and journey.version > 1:
        moved = _move_people(session, journey, definition, now)
    journey.updated_at = now
    session.flush()
    audit.record(session, principal, action="publish", entity="journeys", entity_id=journey.id,
                 unit_id=journey.unit_id, after={"version": journey.version, "moved": moved},
                 summary=f"Journey {journey.name}: version {journey.version} published")
    return journey


def _move_people(session: Session, journey: Journey, definition: schemas.Definition, now: datetime) -> int:
    """Active customers of older versions move to the node of the same id in the new one (whoever's node is gone
    stays on their version). A node that changed kind acts as the new kind does: a wait that became a send sends
    now, a send that became a wait starts waiting now."""
    new = Graph(definition)
    timezone = org_timezone(session, journey.org_id)
    moved = 0
    older = session.execute(select(Enrolment.version, Enrolment.node).where(
        Enrolment.journey_id == journey.id, Enrolment.state == ACTIVE, Enrolment.version < journey.version)
        .distinct()).all()
    for version, node_id in older:
        if node_id not in new.nodes:
            continue
        values: dict[str, Any] = {"version": journey.version}
        before = graph_of(session, journey.id, version).nodes.get(node_id)
        after = new.nodes[node_id]
        at_node = (Enrolment.journey_id == journey.id, Enrolment.state == ACTIVE, Enrolment.version == version,
                   Enrolment.node == node_id)
        if before is not None and timing_of(before) != timing_of(after) and waited_for(before) == waited_for(after) \
                and after.type == "wait_for_event":
            # the same event, another time-out: whoever's event came goes on; the others' time-out starts over
            session.execute(update(Enrolment).where(*at_node, Enrolment.signal.is_(None))
                            .values(due_at=new.arrival(node_id, now, timezone))
                            .execution_options(synchronize_session=False))
        elif before is None or timing_of(before) != timing_of(after):
            values.update(due_at=new.arrival(node_id, now, timezone), arrived_at=now, signal=None)
            if after.type == "wait_until" and after.field is not None:  # each customer's own date, below
                arrive_by_dates(session, journey, after, list(session.scalars(select(Enrolment.id).where(*at_node))),
                                now)
                values.pop("due_at")
        moved += affected(session.execute(update(Enrolment).where(*at_node).values(**values)
                                          .execution_options(synchronize_session=False)))
    return moved


def _move_status(session: Session, principal: Principal, journey_id: int, allowed: tuple[str, ...], status: str,
                 verb: str) -> Journey:
    journey = get_journey(session, principal, journey_id, "update", lock=True)
    if journey.status not in allowed:
        raise Conflict(f"A {journey.status} journey cannot be {verb}.")
    before = journey.status
    journey.status = status
    journey.updated_at = utcnow()
    audit.record(session, principal, action=verb, entity="journeys", entity_id=journey.id, unit_id=journey.unit_id,
                 before={"status": before}, after={"status": status}, summary=f"Journey {journey.name} {verb}")
    return journey


def pause(session: Session, principal: Principal, journey_id: int) -> Journey:
    """Everyone stays where they are; nothing is sent and no wait ends until it resumes (a wait that ended
    meanwhile ends at resumption)."""
    return _move_status(session, principal, journey_id, ("live",), "paused", "paused")


def resume(session: Session, principal: Principal, journey_id: int) -> Journey:
    return _move_status(session, principal, journey_id, ("paused",), "live", "resumed")


def stop(session: Session, principal: Principal, journey_id: int) -> Journey:
    """Everyone inside leaves (reason ``journey_stopped``); nobody enters any more."""
    journey = _move_status(session, principal, journey_id, ("live", "paused"), "stopped", "stopped")
    now = utcnow()
    journey.stopped_at = now
    session.execute(update(Enrolment).where(Enrolment.journey_id == journey.id, Enrolment.state == ACTIVE)
                    .values(state="exited", left_at=now, exit_reason="journey_stopped")
                    .execution_options(synchronize_session=False))
    return journey


# -- entering -------------------------------------------------------------------------------------------------------
def enrol(session: Session, journey: Journey, audience: Any, *, now: datetime | None = None) -> int:
    """Enrol the customers ``audience`` names (a SELECT of profile ids, or ids) who may enter: live records of the
    journey's units, by its entry rules, nobody twice at once. One INSERT … SELECT; returns how many entered."""
    if _lock(session, journey.id, share=True) != "live" or not journey.version or journey.is_template:
        return 0  # a template enrols nobody: the dealers' journeys made of it do
    now = now or utcnow()
    graph = graph_of(session, journey.id, journey.version)
    if graph.entry is None:
        return 0
    if isinstance(audience, list | set | tuple):
        if not audience:
            return 0
        audience = list(audience)
    else:  # a segment filled a moment ago is still empty to the planner: a million would be planned as a handful
        refresh_statistics(session, ["segment_members", "journey_enrolments"])
    people = select(Profile.id, Profile.unit_id).where(Profile.org_id == journey.org_id,
                                                       Profile.merged_into_id.is_(None), Profile.id.in_(audience))
    units = journey_units(session, journey)
    if units is not None:
        people = people.where(Profile.unit_id.in_(units))
    before = select(Enrolment.id).where(Enrolment.journey_id == journey.id, Enrolment.profile_id == Profile.id)
    definition = graph.definition
    if session.scalar(select(Enrolment.id).where(Enrolment.journey_id == journey.id).limit(1)) is None:
        # nobody entered yet: nothing to look up. (Asked anyway of an empty table, PostgreSQL plans the lookup as a
        # scan of the table per customer — a scan that reads the statement's own new rows as it goes: a million
        # enrolled in hours instead of seconds.)
        pass
    elif definition.re_entry == "never":
        people = people.where(~exists(before))
    else:
        blocking = Enrolment.state == ACTIVE
        if definition.reentry_days:
            blocking = blocking | (Enrolment.entered_at > now - timedelta(days=definition.reentry_days))
        people = people.where(~exists(before.where(blocking)))
    entering = people.subquery("entering")
    rows = select(literal(journey.org_id), entering.c.unit_id, literal(journey.id), literal(journey.version),
                  entering.c.id, literal(graph.entry), literal(ACTIVE), literal(now, type_=Enrolment.due_at.type),
                  literal(now, type_=Enrolment.entered_at.type), literal(now, type_=Enrolment.arrived_at.type)) \
        .where(true())
    columns = ["org_id", "unit_id", "journey_id", "version", "profile_id", "node", "state", "due_at", "entered_at",
               "arrived_at"]
    # counted from what it returns: PostgreSQL's driver tells no row count for an INSERT … SELECT ON CONFLICT
    return len(session.execute(dialect_insert(session)(Enrolment).from_select(columns, rows)
                               .on_conflict_do_nothing().returning(Enrolment.id)).all())


def journey_units(session: Session, journey: Journey) -> tuple[int, ...] | None:
    """The units whose customers the journey reaches: its own and those below (None: the whole organisation)."""
    path = session.scalar(select(BusinessUnit.path).where(BusinessUnit.id == journey.unit_id))
    return None if path is None or is_root_path(path) else units_under(session, journey.org_id, path)


def enrol_by_hand(session: Session, principal: Principal, journey_id: int, data: schemas.EnrolRequest) -> int:
    """Customers or a segment's members enrolled now (those the caller may read; the rules decide who enters)."""
    journey = get_journey(session, principal, journey_id, "update")
    if journey.is_template:
        raise Conflict("A template enrols nobody: the journeys dealers make of it do.",
                       message=("journeys.template.enrols_nobody", {}))
    if journey.status != "live":
        raise Conflict("Customers enter a live journey only.")
    refs = {}
    if data.profile_ids:
        refs["profile_ids"] = cdp_service.customer_ref(sorted(set(data.profile_ids)))
    if data.segment_id is not None:
        refs["segment_id"] = Ref(Segment, data.segment_id)
    check_references(session, principal, refs)
    entered = 0
    if data.profile_ids:
        live = cdp_service.live_profile_ids(session, set(data.profile_ids))
        entered += enrol(session, journey, sorted(set(live.values())))
    if data.segment_id is not None:
        entered += enrol(session, journey, select(SegmentMember.profile_id).where(
            SegmentMember.segment_id == data.segment_id))
    audit.record(session, principal, action="enrol", entity="journeys", entity_id=journey.id,
                 unit_id=journey.unit_id, after={"entered": entered},
                 summary=f"Journey {journey.name}: {entered} customers enrolled")
    return entered
