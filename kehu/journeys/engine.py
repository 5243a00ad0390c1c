"""The journeys' engine and their triggers.

The engine (``advance_journeys``, a worker poller) works in sets: for each (journey, version, node) with
customers due, it takes up to ``STEP_BATCH`` of them in one statement (``FOR UPDATE SKIP LOCKED``: workers share
the work, never the same customer), applies the node to all of them — one INSERT … SELECT of message rows with
communication control for a send, one query per branch for a split — records the steps and moves them on, in one
transaction, through every node that acts at once to the next wait or the exit: a worker that dies mid-step
leaves the step undone, and it is done again whole (a message's unique key makes the repeat send nothing
twice).

Triggers read the segments' changes and the customers' events through the domain-event consumers
(kehu/core/events.py), each batch in the transaction that moves the consumer's cursor.

Over 600 lines: the triggers and the steps both enter, move and end walks by the same few functions (``_move``,
``_finish``, ``_record_steps``); to split next are the triggers, into a module of their own that calls them."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    any_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased

from kehu.cdp import service as cdp_service
from kehu.cdp.models import HAPPENING, Event, Profile
from kehu.channels.broadcasts import make_message_rows
from kehu.channels.models import Template
from kehu.core import events, jobs
from kehu.core.db import Database, dialect_insert, refresh_statistics, utcnow
from kehu.core.errors import ValidationFailed
from kehu.journeys import schemas
from kehu.journeys.fields import set_field
from kehu.journeys.models import ACTIVE, Enrolment, Journey, JourneyStep
from kehu.journeys.service import DEFAULT_TIMEZONE, Graph, _lock, enrol, graph_of, journey_units
from kehu.journeys.timing import arrive_by_dates, dated_customers, dates_due, next_entry
from kehu.sales.models import OPEN_STATUSES, Activity, Lead
from kehu.sales.service import Inquiry, record_inquiries
from kehu.segments import service as segment_service
from kehu.segments.conditions import compile_condition
from kehu.segments.models import ProfileTag, Segment, SegmentChange, SegmentMember, Tag
from kehu.tenancy.access import org_timezone
from kehu.tenancy.models import User
from kehu.tenancy.service import system_principal

log = logging.getLogger(__name__)
TIMED_BATCH = 50  # journeys whose timed trigger one poll runs
TIMED_LOCK = 23_051  # the advisory lock namespace of the journeys' timed triggers (PostgreSQL)
CATCH_UP_DAYS = 31  # a date trigger's days made up after the workers were down (or the journey paused) that long
STEP_BATCH = 5_000  # customers one step moves at a node, in one transaction
ROUND_SECONDS = 5.0  # a round of the engine gives the worker back to its other work after about this long
# Nodes that act on whoever arrives, without waiting: a step walks its customers on through them at once. A path of
# more than MAX_HOPS of them in a row (only a drawing that loops could have one) rests at the next and goes on a
# round later.
AT_ONCE = frozenset({"send", "tag", "field", "segment", "lead", "task", "split", "random_split"})
MAX_HOPS = 20
Trail = tuple[tuple[str, str], ...]  # (node, outcome) of the steps a walk took in this transaction


# -- triggers -------------------------------------------------------------------------------------------------------
def _live_with_trigger(session: Session, kinds: tuple[str, ...], keys: set[str] | None = None) -> list[Journey]:
    query = select(Journey).where(Journey.status == "live", Journey.trigger_kind.in_(kinds))
    if keys is not None:
        query = query.where(Journey.trigger_key.in_(sorted(keys)))
    return list(session.scalars(query.order_by(Journey.id)))


def _segment_triggers(session: Session) -> list[Any] | None:
    keys = {j.trigger_key for j in _live_with_trigger(session, ("segment_entered", "segment_left")) if j.trigger_key}
    return [SegmentChange.segment_id.in_(sorted(int(k) for k in keys))] if keys else None


@events.subscribe("journeys.segment_entries", stream=SegmentChange, wanted=_segment_triggers, batch=5_000)
def _enter_on_segment_changes(session: Session, batch: list[SegmentChange]) -> None:
    """Customers who entered (left) a segment enter the live journeys that start there, in the transaction that
    moves this consumer's cursor."""
    moved: dict[tuple[str, str], set[int]] = {}
    for change in batch:
        kind = "segment_entered" if change.change == "entered" else "segment_left"
        moved.setdefault((kind, str(change.segment_id)), set()).add(change.profile_id)
    for journey in _live_with_trigger(session, ("segment_entered", "segment_left"), {key for _, key in moved}):
        profile_ids = moved.get((journey.trigger_kind or "", journey.trigger_key or ""))
        if profile_ids:
            enrol(session, journey, sorted(profile_ids))


def _event_triggers(session: Session) -> list[Any] | None:
    names = {j.trigger_key for j in _live_with_trigger(session, ("event",)) if j.trigger_key}
    return [Event.event.in_(sorted(names))] if names else None


@events.subscribe("journeys.event_entries", stream=Event, wanted=_event_triggers, batch=5_000)
def _enter_on_events(session: Session, batch: list[Event]) -> None:
    """Customers an event of a journey's trigger arrived for (with the property values it asks for) enter it —
    events received after the journey went live, for the customer's record as it is now (merges followed)."""
    journeys = _live_with_trigger(session, ("event",), {event.event for event in batch})
    if not journeys:
        return
    live = cdp_service.live_profile_ids(session, {e.profile_id for e in batch if e.profile_id is not None})
    for journey in journeys:
        wanted = graph_of(session, journey.id, journey.version).definition.trigger.properties
        heard = _heard(session, journey, batch, live, journey.trigger_key or "", wanted, journey.started_at)
        enrol(session, journey, sorted(heard))


def _event_waits(session: Session) -> list[tuple[Journey, int, schemas.WaitForEventNode]]:
    """Every wait for an event in the versions of live and paused journeys (a paused journey's customers still
    hear their event: they go on when it resumes)."""
    found = []
    for journey in session.scalars(select(Journey).where(Journey.status.in_(("live", "paused")),
                                                         Journey.is_template.is_(False)).order_by(Journey.id)):
        for version in range(1, journey.version + 1):
            found += [(journey, version, node) for node in graph_of(session, journey.id, version).nodes.values()
                      if node.type == "wait_for_event"]
    return found


def _waited_events(session: Session) -> list[Any] | None:
    names = {node.event for _, _, node in _event_waits(session)}
    return [Event.event.in_(sorted(names))] if names else None


def _heard(session: Session, journey: Journey, batch: list[Event], live: dict[int, int], name: str,
           wanted: dict[str, Any], since: datetime | None) -> dict[int, datetime]:
    """Of ``batch``, the events of this name (and property values) a journey hears: its organisation's, of its units
    where kehu recorded them at a unit (a deal won at another dealer is not this dealer's), received from ``since``
    on. By the customer's record as it is now (merges followed): when each last received one."""
    units = journey_units(session, journey)
    heard: dict[int, datetime] = {}
    for e in batch:
        if (e.org_id == journey.org_id and e.event == name and e.profile_id in live
                and (since is None or e.received_at >= since)
                and (units is None or e.type != HAPPENING or (e.properties or {}).get("unit_id") in units)
                and all((e.properties or {}).get(key) == value for key, value in wanted.items())):
            profile_id = live[e.profile_id]
            heard[profile_id] = max(heard.get(profile_id, e.received_at), e.received_at)
    return heard


@events.subscribe("journeys.event_waits", stream=Event, wanted=_waited_events, batch=5_000)
def _end_waits_on_events(session: Session, batch: list[Event]) -> None:
    """Customers waiting for an event that has now arrived for them (received after they came to the wait) are
    marked and made due: the engine's next round takes them the ``happened`` way, within seconds."""
    waits = [(journey, version, node) for journey, version, node in _event_waits(session)
             if node.event in {event.event for event in batch}]
    if not waits:
        return
    live = cdp_service.live_profile_ids(session, {e.profile_id for e in batch if e.profile_id is not None})
    now = utcnow()
    for journey, version, node in waits:
        heard = _heard(session, journey, batch, live, node.event or "", node.properties, None)
        if not heard:
            continue
        waiting = session.execute(select(Enrolment.id, Enrolment.profile_id, Enrolment.arrived_at).where(
            Enrolment.journey_id == journey.id, Enrolment.version == version, Enrolment.node == node.id,
            Enrolment.state == ACTIVE, Enrolment.signal.is_(None), Enrolment.profile_id.in_(sorted(heard))))
        ids = [enrolment_id for enrolment_id, profile_id, arrived_at in waiting if arrived_at <= heard[profile_id]]
        if ids:
            # the conditions again in the UPDATE: a step that moved one of them on meanwhile (it held the row; this
            # waited for it) leaves it out, instead of this marking the node they are at now
            session.execute(update(Enrolment).where(
                _among(session, ids), Enrolment.version == version, Enrolment.node == node.id,
                Enrolment.state == ACTIVE, Enrolment.signal.is_(None))
                .values(signal=schemas.HAPPENED, due_at=now).execution_options(synchronize_session=False))


# -- exit criteria: leaving wherever they are ------------------------------------------------------------------------
def _with_exits(session: Session, kind: str) -> list[tuple[Journey, schemas.Definition]]:
    """Live and paused journeys whose running version has this exit criterion (``goal`` or ``segment``)."""
    found = []
    for journey in session.scalars(select(Journey).where(Journey.status.in_(("live", "paused")),
                                                         Journey.is_template.is_(False)).order_by(Journey.id)):
        definition = graph_of(session, journey.id, journey.version).definition
        if (kind == "goal" and definition.exit_on_goal and definition.goal is not None) or (
                kind == "segment" and definition.exit_segment_id is not None):
            found.append((journey, definition))
    return found


def _leave(session: Session, journey: Journey, moments: Mapping[int, datetime], state: str, reason: str,
           now: datetime, *, within: timedelta | None = None) -> None:
    """The active walks of these customers that began at or before the moment given for each (and, ``within``, no
    longer before it than that) end here, at the node each is at: a walk begun after a customer left the exit
    segment is not ended by that leaving, nor one whose goal window had closed."""
    if not moments:
        return
    walks = session.execute(select(Enrolment.id, Enrolment.profile_id, Enrolment.entered_at).where(
        Enrolment.journey_id == journey.id, Enrolment.state == ACTIVE,
        Enrolment.profile_id.in_(sorted(moments))))
    ids = [walk_id for walk_id, profile_id, entered in walks
           if entered <= moments[profile_id] and (within is None or moments[profile_id] <= entered + within)]
    if not ids:
        return
    # still active in the UPDATE: a step that ended or moved the walk meanwhile keeps what it did; the steps are
    # recorded for the walks this ended only
    ended = list(session.scalars(update(Enrolment).where(_among(session, ids), Enrolment.state == ACTIVE)
                                 .values(state=state, left_at=now, exit_reason=reason)
                                 .returning(Enrolment.id).execution_options(synchronize_session=False)))
    if ended:
        _record_steps(session, ended, None, state, now)


def _goal_events(session: Session) -> list[Any] | None:
    names = {definition.goal.event for _, definition in _with_exits(session, "goal") if definition.goal}
    return [Event.event.in_(sorted(names))] if names else None


@events.subscribe("journeys.goal_exits", stream=Event, wanted=_goal_events, batch=5_000)
def _leave_on_goal(session: Session, batch: list[Event]) -> None:
    """Customers who reached a journey's goal (an event after they entered) leave it — done, reason
    ``goal_reached`` — when the journey says so, wherever they are in it."""
    exits = [(j, d) for j, d in _with_exits(session, "goal") if d.goal and d.goal.event in {e.event for e in batch}]
    if not exits:
        return
    live = cdp_service.live_profile_ids(session, {e.profile_id for e in batch if e.profile_id is not None})
    now = utcnow()
    for journey, definition in exits:
        assert definition.goal is not None
        heard = _heard(session, journey, batch, live, definition.goal.event, definition.goal.properties, None)
        _leave(session, journey, heard, "completed", "goal_reached", now,
               within=timedelta(days=definition.goal.within_days))


def _exit_segments(session: Session) -> list[Any] | None:
    ids = {definition.exit_segment_id for _, definition in _with_exits(session, "segment")}
    return [SegmentChange.segment_id.in_(sorted(i for i in ids if i)), SegmentChange.change == "left"] \
        if ids else None


@events.subscribe("journeys.segment_exits", stream=SegmentChange, wanted=_exit_segments, batch=5_000)
def _leave_on_segment(session: Session, batch: list[SegmentChange]) -> None:
    """Customers who left a journey's exit segment leave the journey (reason ``left_segment``)."""
    left: dict[int, dict[int, datetime]] = {}  # segment → customer → when they left (the latest)
    for change in batch:
        if change.change == "left":
            moments = left.setdefault(change.segment_id, {})
            moments[change.profile_id] = max(moments.get(change.profile_id, change.at), change.at)
    now = utcnow()
    for journey, definition in _with_exits(session, "segment"):
        leaving = left.get(definition.exit_segment_id or 0)
        if leaving:
            _leave(session, journey, leaving, "exited", "left_segment", now)


@jobs.poller
def timed_entries(database: Database, now: datetime | None = None) -> bool:
    """Enrol for the live journeys whose timed trigger is due (a schedule: the segment's members then; a date:
    the customers whose profile date it is), each journey in a transaction that also sets its next run, so a crash
    enrols nobody twice (and the entry rules keep anyone from walking twice at once). Runs missed while the
    workers were down or the journey paused are made up once: a date trigger takes every day since its last run
    up to the last day whose time has come (at most ``CATCH_UP_DAYS``), a schedule enrols once. Two workers never
    run one journey's trigger together (an advisory lock, not a row lock: the engine's steps, which share the
    journey's row, go on meanwhile); a journey whose run fails holds back no other. Says whether it enrolled."""
    now = now or utcnow()
    with database.unit_of_work(reader=True) as session:
        due = list(session.scalars(select(Journey.id).where(Journey.status == "live", Journey.next_entry_at <= now)
                                   .order_by(Journey.next_entry_at).limit(TIMED_BATCH)))
    ran = False
    for journey_id in due:
        try:
            with database.unit_of_work(writer=True) as session:
                ran = _run_timed_trigger(session, journey_id, now) or ran
        except Exception:  # one journey's fault holds back no other
            log.exception("journey %s: its timed trigger failed", journey_id)
    return ran


def _run_timed_trigger(session: Session, journey_id: int, now: datetime) -> bool:
    if session.get_bind().dialect.name == "postgresql" and not session.scalar(
            select(func.pg_try_advisory_xact_lock(TIMED_LOCK, journey_id))):
        return False  # another worker runs it
    journey = session.get(Journey, journey_id, populate_existing=True)
    if journey is None or journey.status != "live" or journey.next_entry_at is None or journey.next_entry_at > now:
        return False  # run by another worker meanwhile, or paused
    trigger = graph_of(session, journey.id, journey.version).definition.trigger
    timezone = org_timezone(session, journey.org_id)
    if trigger.type == "schedule" and trigger.segment_id is not None:
        enrol(session, journey, select(SegmentMember.profile_id).where(
            SegmentMember.segment_id == trigger.segment_id), now=now)
    elif trigger.type == "date":
        first, last = dates_due(trigger, journey.next_entry_at, now, timezone)
        first = max(first, last - timedelta(days=CATCH_UP_DAYS - 1))
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        if days:
            enrol(session, journey, dated_customers(journey.org_id, trigger, days,
                                                    session.get_bind().dialect.name), now=now)
    journey.next_entry_at = next_entry(trigger, now, timezone)
    return True


# -- the engine -----------------------------------------------------------------------------------------------------
@jobs.poller
def advance_journeys(database: Database, now: datetime | None = None) -> bool:
    """One round: every (journey, version, node) with customers due gets one step of up to ``STEP_BATCH`` of
    them, each in its own transaction. Says whether anyone moved."""
    now = now or utcnow()
    with database.unit_of_work(reader=True) as session:
        due = _due_nodes(session, now)
        if due:  # a million enrolled or moved a moment ago are the table's old shape to the planner until autovacuum
            # comes round (never, where it is off): each step's claim and history would be planned for a handful
            refresh_statistics(session, ["journey_enrolments", "journey_steps"])
    moved = 0
    deadline = time.monotonic() + ROUND_SECONDS
    while due:
        # one step per node in turn, the busiest nodes again until the round's time is up: a journey of a million
        # does not hold back the others (of any organisation), and the due nodes are found once per round
        busy = []
        for group in due:
            try:
                with database.unit_of_work(writer=True) as session:
                    done = step(session, group[0], group[1], group[2], now=now)
            except Exception:  # one journey's fault stops neither the round nor the others
                log.exception("journey %s, version %s, node %s: a step failed", *group)
                continue
            moved += done
            if done == STEP_BATCH:
                busy.append(group)
        due = busy if time.monotonic() < deadline else []
    return moved > 0


def _due_nodes(session: Session, now: datetime) -> list[tuple[int, int, str]]:
    """The (journey, version, node) of live journeys where someone is due: each node of each version asked once,
    by the index of the active enrolments (journey, version, node, due time), in one statement — not a count of
    every customer waiting somewhere (a million of them, half a second a round)."""
    candidates = []
    running = select(Journey.id, Journey.version).where(Journey.status == "live", Journey.is_template.is_(False))
    for journey_id, current in session.execute(running.order_by(Journey.id)):
        for version in range(1, current + 1):
            candidates += [(journey_id, version, node) for node in graph_of(session, journey_id, version).nodes]
    if not candidates:
        return []
    # a UNION of one-row SELECTs rather than VALUES: SQLite names no columns of a VALUES list
    nodes = union_all(*(select(literal(journey_id, BigInteger).label("journey_id"),
                               literal(version, Integer).label("version"), literal(node, String).label("node"))
                        for journey_id, version, node in candidates)).subquery("candidates")
    someone = select(Enrolment.id).where(Enrolment.journey_id == nodes.c.journey_id,
                                         Enrolment.version == nodes.c.version, Enrolment.node == nodes.c.node,
                                         Enrolment.state == ACTIVE, Enrolment.due_at <= now).exists()
    return [(journey_id, version, node) for journey_id, version, node in session.execute(
        select(nodes.c.journey_id, nodes.c.version, nodes.c.node).where(someone))]


def step(session: Session, journey_id: int, version: int, node_id: str, *, now: datetime) -> int:
    """Apply one node to the customers due at it (up to ``STEP_BATCH``) and move them on; how many moved."""
    journey = session.get(Journey, journey_id)
    if journey is None or _lock(session, journey_id, share=True) != "live":
        return 0
    claim = select(Enrolment.id).where(Enrolment.journey_id == journey_id, Enrolment.version == version,
                                       Enrolment.node == node_id, Enrolment.state == ACTIVE,
                                       Enrolment.due_at <= now).order_by(Enrolment.due_at).limit(STEP_BATCH)
    if session.get_bind().dialect.name == "postgresql":
        claim = claim.with_for_update(skip_locked=True)
    ids = list(session.scalars(claim))
    if not ids:
        return 0
    graph = graph_of(session, journey_id, version)
    ids = _still_theirs(session, journey, version, ids, node_id, now)
    if ids:
        _apply(session, journey, graph, version, ids, node_id, now)
    return len(ids)


def _apply(session: Session, journey: Journey, graph: Graph, version: int, ids: list[int], node_id: str,
           now: datetime, hops: int = 0, trail: Trail = ()) -> None:
    """Apply the node to ``ids`` (walks at it, due now) and move them on; into the next node at once when it too
    acts at once (``_move``). ``trail``: the steps they took on the way here in this transaction, not yet written."""
    node = graph.nodes.get(node_id)
    if node is None:  # cannot happen with a published version; leave rather than loop
        _finish(session, journey, version, ids, node_id, "exited", "node_missing", now, trail=trail)
    elif node.type == "exit":
        _finish(session, journey, version, ids, node_id, "completed", None, now, trail=trail)
    elif node.type == "split":
        left = ids
        for branch in node.branches:
            if not left:
                break
            if branch.condition is None:  # publishing refuses it; never taken
                continue
            try:
                clause = compile_condition(session, journey.org_id, org_timezone(session, journey.org_id),
                                           branch.condition, reader=None,
                                           happening_units=journey_units(session, journey), now=now)
            except ValidationFailed:  # a custom field it asks about was deleted since: that branch takes nobody
                continue
            taken = list(session.scalars(select(Enrolment.id).join(Profile, Profile.id == Enrolment.profile_id)
                                         .where(_among(session, left), clause)))
            if taken:
                _move(session, journey, graph, version, taken, node_id, f"branch:{branch.name}",
                      graph.next(node_id, branch.name), now, hops, trail)
                chosen = set(taken)
                left = [i for i in left if i not in chosen]
        if left:
            _move(session, journey, graph, version, left, node_id, f"branch:{schemas.ELSE}",
                  graph.next(node_id, schemas.ELSE), now, hops, trail)
    elif node.type == "random_split":
        walks = [(walk_id, profile_id) for walk_id, profile_id in session.execute(
            select(Enrolment.id, Enrolment.profile_id).where(_among(session, ids)).order_by(Enrolment.id))]
        for group, taken in share_out(journey.id, node, walks).items():
            if taken:
                _move(session, journey, graph, version, taken, node_id, f"branch:{group}", graph.next(node_id, group),
                      now, hops, trail)
    elif node.type == "wait_for_event":
        # due: either the event arrived (the consumer below marked them and made them due) or the time is up
        happened = set(session.scalars(select(Enrolment.id).where(_among(session, ids),
                                                                  Enrolment.signal == schemas.HAPPENED)))
        for way, taken in ((schemas.HAPPENED, [i for i in ids if i in happened]),
                           (schemas.TIMED_OUT, [i for i in ids if i not in happened])):
            if taken:
                _move(session, journey, graph, version, taken, node_id, f"branch:{way}", graph.next(node_id, way),
                      now, hops, trail)
    else:
        if node.type == "send":
            _send(session, journey, node, ids, now)
        elif node.type == "tag":
            _tag(session, journey, node, ids, now)
        elif node.type == "field" and node.field is not None:
            set_field(session, journey.org_id, node.field, node.value,
                      select(Enrolment.profile_id).where(_among(session, ids)), now,
                      units=journey_units(session, journey))
        elif node.type == "segment":
            _segment(session, journey, node, ids)
        elif node.type == "lead":
            _lead(session, journey, node, ids, now)
        elif node.type == "task":
            _task(session, journey, node, ids, now)
        _move(session, journey, graph, version, ids, node_id, "passed", graph.next(node_id), now, hops, trail)


def _still_theirs(session: Session, journey: Journey, version: int, ids: list[int], node_id: str,
                  now: datetime) -> list[int]:
    """Of ``ids``, the customers the journey may still act on. One merged into another record leaves (reason
    ``merged``: the record they live on walks on, or enters as the rules allow); one now of a unit outside the
    journey's (moved to another dealer) leaves too (``left_scope``): a dealer's journey stops at its customers."""
    units = journey_units(session, journey)
    gone = select(Enrolment.id, case((Profile.merged_into_id.is_not(None), literal("merged")),
                                     else_=literal("left_scope")).label("reason")) \
        .join(Profile, Profile.id == Enrolment.profile_id).where(_among(session, ids))
    leaving: Any = Profile.merged_into_id.is_not(None)
    if units is not None:
        leaving = leaving | Profile.unit_id.not_in(units)
    by_reason: dict[str, list[int]] = {}
    for enrolment_id, reason in session.execute(gone.where(leaving)):
        by_reason.setdefault(reason, []).append(enrolment_id)
    for reason, left in by_reason.items():
        _finish(session, journey, version, left, node_id, "exited", reason, now)
    out = {i for left in by_reason.values() for i in left}
    return [i for i in ids if i not in out] if out else ids


def share_out(journey_id: int, node: schemas.RandomSplitNode, walks: list[tuple[int, int]]) -> dict[str, list[int]]:
    """The walks (enrolment id, customer id) shared out among the node's groups in their proportions, by enrolment
    id. Each draw is a hash of the journey, the node and the customer — uniform, independent between splits, the
    same if a step is done again, and the same when the customer enters again (a held-out customer stays held
    out: the control group is not contaminated by re-entry)."""
    bounds, total = [], 0
    for group in node.groups:
        total += group.percent
        bounds.append((total, group.name))
    shared: dict[str, list[int]] = {group.name: [] for group in node.groups}
    for enrolment_id, profile_id in walks:
        digest = hashlib.blake2b(f"{journey_id}:{node.id}:{profile_id}".encode(), digest_size=8).digest()
        draw = int.from_bytes(digest, "big") / 2**64 * (total or 1)
        name = next((name for bound, name in bounds if draw < bound), bounds[-1][1])
        shared[name].append(enrolment_id)
    return shared


def _among(session: Session, ids: list[int]) -> Any:
    """``Enrolment.id`` is one of ``ids``: on PostgreSQL one array parameter (``= ANY``), not an IN list of five
    thousand parameters each statement of a step would bind, send and parse again."""
    if session.get_bind().dialect.name == "postgresql":
        return Enrolment.id == any_(literal(ids, type_=ARRAY(BigInteger)))
    return Enrolment.id.in_(ids)


def _record_steps(session: Session, ids: list[int], node_id: str | None, outcome: str, now: datetime,
                  trail: Trail = ()) -> None:
    """A step for each of ``ids`` at ``node_id`` (None: the node each one is at), after the steps of ``trail``
    (the nodes they passed on the way here in this transaction): all in one statement, in the order taken."""
    columns = ["org_id", "journey_id", "version", "enrolment_id", "profile_id", "node", "outcome", "at"]
    at = literal(now, type_=JourneyStep.at.type)
    if not trail:
        rows = select(Enrolment.org_id, Enrolment.journey_id, Enrolment.version, Enrolment.id, Enrolment.profile_id,
                      Enrolment.node if node_id is None else literal(node_id), literal(outcome), at) \
            .where(_among(session, ids))
        session.execute(insert(JourneyStep).from_select(columns, rows))
        return
    # the walk's steps joined to its enrolments: the enrolments read once, not once per node passed
    taken = union_all(*(select(literal(order, Integer).label("taken"), literal(node, String).label("node"),
                               literal(way, String).label("outcome"))
                        for order, (node, way) in enumerate([*trail, (node_id, outcome)]))).subquery("walked")
    rows = select(Enrolment.org_id, Enrolment.journey_id, Enrolment.version, Enrolment.id, Enrolment.profile_id,
                  func.coalesce(taken.c.node, Enrolment.node), taken.c.outcome, at) \
        .select_from(Enrolment).join(taken, true()).where(_among(session, ids)) \
        .order_by(taken.c.taken, Enrolment.id)  # ids in the order taken: a history reads by (at, id)
    session.execute(insert(JourneyStep).from_select(columns, rows))


def _move(session: Session, journey: Journey, graph: Graph, version: int, ids: list[int], node_id: str,
          outcome: str, target: str | None, now: datetime, hops: int, trail: Trail = ()) -> None:
    """``ids`` passed ``node_id`` and go to ``target``: where it acts at once (a send, a split…), it acts on them
    now, in this transaction — each walk's row is written once where it stops (a wait, the exit), not once per node
    on the way, and not claimed again a round later; the steps of the way are written there too, in one go."""
    trail = (*trail, (node_id, outcome))
    if target is None:  # a way left unconnected (publishing refuses it): the path ends here
        _record_steps(session, ids, *trail[-1], now, trail[:-1])
        _finish(session, journey, version, ids, node_id, "completed", None, now, record=False)
        return
    arriving = graph.nodes[target]
    if arriving.type == "exit":  # nothing to wait for there: the walk ends now, not a round later
        _finish(session, journey, version, ids, target, "completed", None, now, at=target, trail=trail)
        return
    if arriving.type in AT_ONCE and hops < MAX_HOPS:
        _apply(session, journey, graph, version, ids, target, now, hops + 1, trail)
        return
    _record_steps(session, ids, *trail[-1], now, trail[:-1])
    timezone = org_timezone(session, journey.org_id) if arriving.type == "wait_until" else None
    session.execute(update(Enrolment).where(_among(session, ids))
                    .values(node=target, due_at=graph.arrival(target, now, timezone or DEFAULT_TIMEZONE),
                            arrived_at=now, signal=None)
                    .execution_options(synchronize_session=False))
    if arriving.type == "wait_until" and arriving.field is not None:  # each customer's own date
        arrive_by_dates(session, journey, arriving, ids, now)


def _finish(session: Session, journey: Journey, version: int, ids: list[int], node_id: str, state: str,
            reason: str | None, now: datetime, *, record: bool = True, at: str | None = None,
            trail: Trail = ()) -> None:
    """End the walks of ``ids`` (``at``: the exit node they arrive at; ``trail``: the steps they took on the way,
    not yet written)."""
    if record:
        _record_steps(session, ids, node_id, state, now, trail)
    values: dict[str, Any] = {"state": state, "left_at": now, "exit_reason": reason}
    if at is not None:
        values["node"] = at
    session.execute(update(Enrolment).where(_among(session, ids)).values(**values)
                    .execution_options(synchronize_session=False))


def _tag(session: Session, journey: Journey, node: schemas.TagNode, ids: list[int], now: datetime) -> None:
    """The node's tag put on (taken off) every customer in ``ids``, in one statement; a tag deleted or bound to a
    rule since publishing is left alone (the customers go on)."""
    tag = session.get(Tag, node.tag_id) if node.tag_id is not None else None
    if tag is None or tag.org_id != journey.org_id or tag.segment_id is not None or tag.rule is not None:
        return
    customers = select(Enrolment.profile_id).where(_among(session, ids))
    if node.remove:
        session.execute(delete(ProfileTag).where(ProfileTag.tag_id == tag.id, ProfileTag.profile_id.in_(customers),
                                                 ProfileTag.origin != "rule"))
        return
    rows = select(literal(tag.id, BigInteger), Enrolment.profile_id, literal(journey.org_id, BigInteger),
                  literal("journey"), literal(now, type_=ProfileTag.added_at.type)).where(_among(session, ids))
    session.execute(dialect_insert(session)(ProfileTag).from_select(
        ["tag_id", "profile_id", "org_id", "origin", "added_at"], rows).on_conflict_do_nothing())


def _segment(session: Session, journey: Journey, node: schemas.SegmentNode, ids: list[int]) -> None:
    """The customers in ``ids`` added to the node's static segment (taken out with ``remove``), as the platform and
    as a change by hand is (the segment's entries and leavings recorded, its triggers told); a segment deleted or
    made dynamic since publishing is left alone (the customers go on)."""
    segment = session.get(Segment, node.segment_id) if node.segment_id is not None else None
    if segment is None or segment.org_id != journey.org_id or segment.kind != "static":
        return
    customers = list(session.scalars(select(Enrolment.profile_id).where(_among(session, ids))))
    segment_service.change_members(session, system_principal(session, journey.org_id), segment.id, customers,
                                   remove=node.remove)


def _lead(session: Session, journey: Journey, node: schemas.LeadNode, ids: list[int], now: datetime) -> None:
    """An inquiry of every customer in ``ids``, recorded by the platform as the lead rules record theirs
    (``record_inquiries``: a few statements for the batch): a new lead routed by the organisation's routing rules,
    or the customer's open lead asked again. The note names the journey, so a salesperson knows where it came
    from."""
    units = journey_units(session, journey)
    query = select(Profile).join(Enrolment, Enrolment.profile_id == Profile.id).where(_among(session, ids))
    if units is not None:  # moved to another dealer since the step began: not this journey's any more
        query = query.where(Profile.unit_id.in_(units))
    note = f"{journey.name}: {node.note}" if node.note else journey.name
    inquiries = [Inquiry(profile, "journey", None, node.model, note, now) for profile in session.scalars(query)]
    # a dealer's journey joins only its own dealers' open leads: another dealer's lead of the same person is
    # that dealer's business (a new lead is made instead)
    record_inquiries(session, system_principal(session, journey.org_id), inquiries, within_units=units)


def _task(session: Session, journey: Journey, node: schemas.TaskNode, ids: list[int], now: datetime) -> None:
    """A follow-up task for every customer in ``ids``, in one INSERT … SELECT, all at the customer's own dealer:
    their salesperson does it (their owner while an active user, else the owner of their newest open lead at that
    dealer, on that lead), due ``due_days`` from now; with neither, it waits unassigned at the dealer for its manager
    to hand out. One task per customer and node however often the step runs (the step is one transaction)."""
    units = journey_units(session, journey)
    newest = aliased(Lead)  # not the joined lead itself, which the subquery would otherwise correlate to
    lead_id = select(newest.id).where(newest.profile_id == Enrolment.profile_id, newest.unit_id == Profile.unit_id,
                                      newest.status.in_(OPEN_STATUSES)).order_by(newest.id.desc()).limit(1) \
        .scalar_subquery()
    active_owner = select(User.id).where(User.id == Profile.owner_id, User.is_active.is_(True)).scalar_subquery()
    rows = select(literal(journey.org_id, BigInteger), Profile.unit_id, func.coalesce(active_owner, Lead.owner_id),
                  Enrolment.profile_id, Lead.id, literal(node.kind), literal(node.subject or journey.name[:200]),
                  literal(node.note), literal(""),
                  literal(now + timedelta(days=node.due_days), type_=Activity.due_at.type),
                  literal(now, type_=Activity.created_at.type), literal(now, type_=Activity.updated_at.type)) \
        .select_from(Enrolment).join(Profile, Profile.id == Enrolment.profile_id) \
        .outerjoin(Lead, Lead.id == lead_id).where(_among(session, ids))
    if units is not None:  # moved to another dealer since the step began: not this journey's any more
        rows = rows.where(Profile.unit_id.in_(units))
    session.execute(insert(Activity).from_select(
        ["org_id", "unit_id", "owner_id", "profile_id", "lead_id", "kind", "subject", "note", "outcome", "due_at",
         "created_at", "updated_at"], rows))


def _send(session: Session, journey: Journey, node: schemas.SendNode, ids: list[int], now: datetime) -> None:
    """The node's message to every customer in ``ids``: one INSERT … SELECT, communication control applied (those
    it stops get a skipped message with the reason), one message per enrolment and node however often it runs."""
    template = session.get(Template, node.template_id) if node.template_id is not None else None
    if template is None or template.is_archived:
        return  # archived since publishing: the customers go on without it (their step says passed)
    keyed = select(Enrolment.profile_id, (literal("j:") + cast(Enrolment.id, String) + literal(f":{node.id}"))
                   .label("send_key")).where(_among(session, ids)).subquery("keyed")
    # the customers named, not a SELECT of them: communication control reads each one's consent and caps by index
    # rather than the organisation's whole week of messages (control.controlled_audience)
    customers = list(session.scalars(select(Enrolment.profile_id).where(_among(session, ids))))
    make_message_rows(session, org_id=journey.org_id, sender_unit_id=journey.unit_id, channel=template.channel,
                      purpose=template.purpose, template_id=template.id, template_version=template.version,
                      audience=customers, now=now, keyed=keyed, journey_id=journey.id)
