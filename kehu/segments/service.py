"""Segments: who matches a condition (within the asking principal's scope), saved segments and their members."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from kehu.cdp import exports, timeline
from kehu.cdp import service as cdp_service
from kehu.cdp.manifest import PROFILE_CHANGED
from kehu.cdp.models import Event, Export, Profile
from kehu.core import audit, events, jobs
from kehu.core.db import Database, dialect_insert, utcnow
from kehu.core.errors import Conflict, ValidationFailed, invalid
from kehu.core.i18n import t
from kehu.core.pagination import OffsetPage, Page, keyset_page, offset_page
from kehu.core.settings import get_settings
from kehu.segments import schemas, tags
from kehu.segments.conditions import compile_condition, follows_time, segments_in, time_crossings
from kehu.segments.manifest import MEMBERS_CHANGED
from kehu.segments.models import Segment, SegmentChange, SegmentMember
from kehu.tenancy.access import (
    Principal,
    Ref,
    check_references,
    get_scoped,
    home_unit,
    is_root_path,
    org_timezone,
    require_row,
    scope,
    scoped_once,
    units_under,
)
from kehu.tenancy.models import BusinessUnit


def matching(session: Session, principal: Principal, condition: Any, *, now: datetime | None = None) -> Any:
    """The SELECT of the live profiles the principal may read that meet ``condition`` (one statement), with
    relative dates counted back from ``now`` (the present unless given)."""
    principal.require("profiles", "read")
    clause = compile_condition(session, principal.org_id, principal.timezone, condition, reader=principal, now=now)
    return select(Profile).where(scope(principal, Profile), Profile.merged_into_id.is_(None), clause)


# -- exports of a segment's members ---------------------------------------------------------------------------
def members_filter(session: Session, principal: Principal, segment_id: Any) -> Any:
    """The ``segment_id`` filter of exports: the requester must be able to read the segment."""
    segment = get_segment(session, principal, int(segment_id))
    return Profile.id.in_(select(SegmentMember.profile_id).where(SegmentMember.segment_id == segment.id))


def export_segment(session: Session, principal: Principal, segment_id: int, *, format: str) -> Export:
    """The members as a file, through the customers' export: the requester's export scope and masking apply,
    and the request, the file and its download are audited."""
    get_segment(session, principal, segment_id)
    return exports.request_export(session, principal, format=format,
                                  filters=exports.ExportFilters(extra={"segment_id": segment_id}))


# -- entering and leaving, on the customer's timeline ---------------------------------------------------------
def _timeline_changes(session: Session, principal: Principal, profile: Profile,
                      params: dict[str, Any]) -> list[timeline.TimelineItem]:
    """The customer's entries into and exits from the segments the reader may see."""
    if not principal.can("segments", "read"):
        return []
    query, scoped = scoped_once("segment_timeline", principal, Segment, lambda in_scope: (
        select(SegmentChange, Segment.name).join(Segment, Segment.id == SegmentChange.segment_id)
        .where(SegmentChange.profile_id == bindparam("profile_id"), SegmentChange.org_id == bindparam("org_id"),
               in_scope, timeline.before(SegmentChange.at, SegmentChange.id))
        .order_by(SegmentChange.at.desc(), SegmentChange.id.desc()).limit(bindparam("rows"))))
    rows = session.execute(query, {**params, **scoped})
    return [timeline.TimelineItem("segment", change.id, change.at, (change, name)) for change, name in rows]


def _timeline_item(principal: Principal, row: tuple[SegmentChange, str]) -> dict[str, Any]:
    change, name = row
    return {"action": change.change, "entity": "segments", "entity_id": change.segment_id, "summary": name}


def _timeline_title(item: Any, locale: str | None) -> str:
    return t(f"timeline.segment_{item.action}", locale, name=item.summary or "")


TIMELINE_STREAM = timeline.TimelineStream("segment", 2, _timeline_changes, _timeline_item, _timeline_title, {
    "entered": ("filter_alt", "text-positive"), "left": ("filter_alt_off", "text-grey-6")})


# -- saved segments ------------------------------------------------------------------------------------
REFRESH_JOB = "segments.refresh"
LIVE_MEMBERS = "segments.live_members"  # the consumer of the customers' events that keeps dynamic segments live
LIVE_MEMBERS_BATCH = 2_000
LIVE_EDITS = "segments.live_edits"  # the same for records changed by hand or through the API (domain events)


def create_segment(session: Session, principal: Principal, data: schemas.SegmentCreate) -> Segment:
    """Save a segment in the creator's unit (a team's: the unit it belongs to; tenancy.access.home_unit), covering
    that unit's customers and those below, and compute its members in a job. The condition is checked now, so a
    bad one never reaches the job."""
    unit_id = home_unit(session, principal)
    require_row(session, principal, "segments", "create", unit_id=unit_id, owner_id=principal.user_id)
    if data.condition is None and data.kind == "dynamic":
        raise invalid("condition", "a dynamic segment needs a condition", "required")
    if data.condition is not None:
        compile_condition(session, principal.org_id, principal.timezone, data.condition, reader=principal)
    if session.scalar(select(Segment.id).where(Segment.org_id == principal.org_id, Segment.name == data.name)):
        raise Conflict(f"A segment named {data.name!r} exists already.")
    segment = Segment(org_id=principal.org_id, unit_id=unit_id, owner_id=principal.user_id,
                      name=data.name, description=data.description, kind=data.kind,
                      condition=data.condition.model_dump(mode="json", by_alias=True) if data.condition else None)
    session.add(segment)
    session.flush()
    if data.profile_ids:
        _add_chosen(session, principal, segment, data.profile_ids)
    audit.record(session, principal, action="create", entity="segments", entity_id=segment.id,
                 unit_id=segment.unit_id, after={"name": segment.name, "kind": segment.kind,
                                                 "condition": segment.condition},
                 summary=f"Segment {segment.name} created")
    if segment.condition is not None:
        _enqueue_refresh(session, principal, segment)
    else:
        segment.status, segment.refreshed_at = "ready", utcnow()
    return segment


def update_segment(session: Session, principal: Principal, segment_id: int, data: schemas.SegmentUpdate) -> Segment:
    """Rename, describe or (a dynamic segment) redefine. A new condition is checked as at creation — and for
    cycles through other segments, which only an edit can make — and starts a refresh."""
    segment = get_segment(session, principal, segment_id)
    require_row(session, principal, "segments", "update", unit_id=segment.unit_id, owner_id=segment.owner_id)
    before = {"name": segment.name, "description": segment.description, "condition": segment.condition}
    if data.name is not None and data.name != segment.name:
        if session.scalar(select(Segment.id).where(Segment.org_id == principal.org_id, Segment.name == data.name)):
            raise Conflict(f"A segment named {data.name!r} exists already.")
        segment.name = data.name
    if data.description is not None:
        segment.description = data.description
    new_condition = data.condition.model_dump(mode="json", by_alias=True) if data.condition else None
    redefined = new_condition is not None and new_condition != segment.condition
    if redefined:
        if segment.kind != "dynamic":
            raise Conflict("A static segment keeps the members it was made with; its condition does not change.")
        compile_condition(session, principal.org_id, principal.timezone, data.condition, reader=principal,
                          segment_id=segment.id)
        segment.condition = new_condition
    after = {"name": segment.name, "description": segment.description, "condition": segment.condition}
    if after == before:
        return segment
    audit.record(session, principal, action="update", entity="segments", entity_id=segment.id,
                 unit_id=segment.unit_id, before=before, after=after, summary=f"Segment {segment.name} changed")
    if redefined and not (segment.status in ("queued", "refreshing") and _refresh_pending(session, segment)):
        _enqueue_refresh(session, principal, segment)  # a refresh already waiting will read the new condition
    session.flush()
    return segment


def _add_chosen(session: Session, principal: Principal, segment: Segment, profile_ids: list[int]) -> int:
    """Hand-picked customers into a static segment, each one the principal may read; returns how many joined
    (those already in stay as they are)."""
    wanted = sorted(set(profile_ids))
    live = Profile.merged_into_id.is_(None)
    check_references(session, principal, {"profile_ids": cdp_service.customer_ref(wanted, "read", live)})
    present = set(session.scalars(select(SegmentMember.profile_id).where(
        SegmentMember.segment_id == segment.id, SegmentMember.profile_id.in_(wanted))))
    new = [p for p in wanted if p not in present]
    now = utcnow()
    if new:
        session.execute(insert(SegmentMember), [{"segment_id": segment.id, "profile_id": p, "org_id": segment.org_id,
                                                 "added_in": segment.refreshes, "leaving": False, "added_at": now}
                                                for p in new])
        session.execute(insert(SegmentChange), [{"org_id": segment.org_id, "segment_id": segment.id, "profile_id": p,
                                                 "change": "entered", "refresh": segment.refreshes, "at": now}
                                                for p in new])
    _add_to_count(session, segment, len(new))
    _members_changed(session, segment, len(new), 0)
    return len(new)


def _add_to_count(session: Session, segment: Segment, change: int) -> None:
    """The segment's member count moved by ``change`` in SQL: two changes at once (two journeys, a hand edit) each
    count (a read-modify-write of the ORM would lose one)."""
    if change:
        session.execute(update(Segment).where(Segment.id == segment.id)
                        .values(member_count=Segment.member_count + change)
                        .execution_options(synchronize_session=False))
        session.refresh(segment, ["member_count"])


def change_members(session: Session, principal: Principal, segment_id: int, profile_ids: list[int], *,
                   remove: bool = False) -> int:
    """Add hand-picked customers to a static segment, or take them out (recorded as having left); returns
    how many changed. A dynamic segment's members are its condition's."""
    segment = get_segment(session, principal, segment_id)
    require_row(session, principal, "segments", "update", unit_id=segment.unit_id, owner_id=segment.owner_id)
    if segment.kind != "static":
        raise Conflict("A dynamic segment's members follow its condition; pick customers for a static one.")
    if not remove:
        changed = _add_chosen(session, principal, segment, profile_ids)
    else:
        wanted = sorted(set(profile_ids))
        # one who left the principal's scope can still be taken out; another organisation's id is unknown
        check_references(session, principal, {"profile_ids": Ref(Profile, wanted, None)})
        leaving = list(session.scalars(select(SegmentMember.profile_id).where(
            SegmentMember.segment_id == segment.id, SegmentMember.profile_id.in_(wanted),
            SegmentMember.profile_id.in_(select(Profile.id).where(scope(principal, Profile))))))
        if leaving:
            now = utcnow()
            session.execute(insert(SegmentChange), [{"org_id": segment.org_id, "segment_id": segment.id,
                                                     "profile_id": p, "change": "left", "refresh": segment.refreshes,
                                                     "at": now} for p in leaving])
            session.execute(delete(SegmentMember).where(SegmentMember.segment_id == segment.id,
                                                        SegmentMember.profile_id.in_(leaving)))
        _add_to_count(session, segment, -len(leaving))
        changed = len(leaving)
        _members_changed(session, segment, 0, changed)
    audit.record(session, principal, action="remove_members" if remove else "add_members", entity="segments",
                 entity_id=segment.id, unit_id=segment.unit_id,
                 after={"profile_ids": sorted(set(profile_ids))[:100], "changed": changed},
                 summary=f"Segment {segment.name}: {changed} customer(s) {'taken out' if remove else 'added'}")
    session.flush()
    return changed


def _enqueue_refresh(session: Session, principal: Principal | None, segment: Segment) -> None:
    """A refresh job for the segment, run with the asker's rights (or as the platform, for the schedule)."""
    job = jobs.enqueue(session, kind=REFRESH_JOB, org_id=segment.org_id, unit_id=segment.unit_id,
                       created_by_id=principal.user_id if principal else None,
                       created_by_api_key_id=principal.api_key_id if principal else None,
                       payload={"segment_id": segment.id})
    segment.status, segment.job_id = "queued", job.id
    session.flush()


def get_segment(session: Session, principal: Principal, segment_id: int) -> Segment:
    return get_scoped(session, principal, Segment, segment_id)


def list_segments(session: Session, principal: Principal, *, limit: int = 50, cursor: str | None = None) -> Page[Any]:
    principal.require("segments", "read")
    return keyset_page(session, select(Segment).where(scope(principal, Segment)), id_column=Segment.id,
                       limit=limit, cursor=cursor)


def changeable_static_segments(session: Session, principal: Principal, *, limit: int = 500) -> list[Segment]:
    """The static segments the principal may add customers to or take them out of, by name."""
    if not principal.can("segments", "update"):
        return []
    return list(session.scalars(select(Segment).where(scope(principal, Segment, "update"), Segment.kind == "static")
                                .order_by(Segment.name, Segment.id).limit(limit)))


def request_refresh(session: Session, principal: Principal, segment_id: int) -> Segment:
    segment = get_segment(session, principal, segment_id)
    require_row(session, principal, "segments", "update", unit_id=segment.unit_id, owner_id=segment.owner_id)
    if segment.kind != "dynamic":
        raise Conflict("A static segment keeps the members it was made with; it is not refreshed.")
    if segment.status in ("queued", "refreshing") and _refresh_pending(session, segment):
        raise Conflict("This segment is being refreshed already.")
    _enqueue_refresh(session, principal, segment)
    return segment


def _refresh_pending(session: Session, segment: Segment) -> bool:
    """Whether the segment's refresh job may still run (a job that failed for good leaves the segment free)."""
    job = session.get(jobs.Job, segment.job_id) if segment.job_id else None
    return job is not None and job.status in (jobs.QUEUED, jobs.RUNNING)


def delete_segment(session: Session, principal: Principal, segment_id: int) -> None:
    segment = get_segment(session, principal, segment_id)
    require_row(session, principal, "segments", "delete", unit_id=segment.unit_id, owner_id=segment.owner_id)
    users = [name for name, condition in session.execute(select(Segment.name, Segment.condition).where(
        Segment.org_id == segment.org_id, Segment.id != segment.id, Segment.condition.is_not(None)))
        if segment.id in segments_in(condition)]
    if users:  # they would fail at their next refresh
        raise Conflict(f"Segments {', '.join(sorted(users))} are defined with this one; change them first.")
    session.execute(delete(SegmentChange).where(SegmentChange.segment_id == segment.id))
    session.execute(delete(SegmentMember).where(SegmentMember.segment_id == segment.id))
    audit.record(session, principal, action="delete", entity="segments", entity_id=segment.id,
                 unit_id=segment.unit_id, before={"name": segment.name, "members": segment.member_count},
                 summary=f"Segment {segment.name} deleted")
    session.delete(segment)
    session.flush()


def members(session: Session, principal: Principal, segment_id: int, *, limit: int = 50,
            cursor: str | None = None) -> Page[Any]:
    """The segment's customers that the reader may see (a dealer reading an HQ segment sees its own)."""
    return keyset_page(session, _visible_members(session, principal, segment_id), id_column=Profile.id,
                       limit=limit, cursor=cursor)


def _visible_members(session: Session, principal: Principal, segment_id: int) -> Any:
    segment = get_segment(session, principal, segment_id)
    principal.require("profiles", "read")
    return select(Profile).join(SegmentMember, SegmentMember.profile_id == Profile.id).where(
        SegmentMember.segment_id == segment.id, scope(principal, Profile))


def segments_of(session: Session, principal: Principal, profile_id: int) -> list[schemas.SegmentBrief]:
    """The segments a customer belongs to, among those the reader may see (the Customer 360's tags)."""
    profile = cdp_service.get_profile(session, principal, profile_id)
    if not principal.can("segments", "read"):
        return []
    rows = session.execute(select(Segment, SegmentMember.added_at).join(
        SegmentMember, SegmentMember.segment_id == Segment.id).where(
        SegmentMember.profile_id == profile.id, scope(principal, Segment)).order_by(Segment.name))
    return [schemas.SegmentBrief(id=s.id, name=s.name, kind=s.kind, added_at=added) for s, added in rows]


def page_members(session: Session, principal: Principal, segment_id: int, *, page: int = 1,
                 per_page: int = 20) -> OffsetPage[Profile]:
    """Numbered pages of the members the reader may see, most recently seen first (the detail page's table)."""
    return offset_page(session, _visible_members(session, principal, segment_id),
                       order_by=[Profile.last_seen_at.desc().nulls_last(), Profile.id.desc()],
                       page=page, per_page=per_page)


def changes(session: Session, principal: Principal, segment_id: int, *, limit: int = 50,
            cursor: str | None = None) -> Page[Any]:
    """Who entered and who left, newest refresh first, limited to customers the reader may see."""
    segment = get_segment(session, principal, segment_id)
    principal.require("profiles", "read")
    query = select(SegmentChange).where(SegmentChange.segment_id == segment.id, SegmentChange.profile_id.in_(
        select(Profile.id).where(scope(principal, Profile))))
    return keyset_page(session, query, id_column=SegmentChange.id, limit=limit, cursor=cursor)


def _covered(session: Session, segment: Segment, now: datetime) -> tuple[Any, ...]:
    """The SQL conditions a profile meets to be a member at ``now``: the segment's condition, within its unit's
    tree."""
    assert segment.condition is not None
    unit_path = session.scalar(select(BusinessUnit.path).where(BusinessUnit.id == segment.unit_id)) or "/"
    timezone = org_timezone(session, segment.org_id)
    condition = schemas.condition_adapter.validate_python(segment.condition)
    # the units by id, and none at all for the top unit: see Principal.unit_tree for why
    units = None if is_root_path(unit_path) else units_under(session, segment.org_id, unit_path)
    clause = compile_condition(session, segment.org_id, timezone or "Asia/Shanghai", condition, reader=None,
                               segment_id=segment.id, happening_units=units, now=now)
    return (Profile.org_id == segment.org_id, Profile.merged_into_id.is_(None), clause,
            *(() if units is None else (Profile.unit_id.in_(units),)))


def refresh_members(session: Session, segment: Segment, *, now: datetime | None = None) -> tuple[int, int]:
    """Bring a segment's members in line with its condition (as of ``now``, the present unless given); returns
    (entered, left).

    Set statements only, and none that rewrites the members who stay: newcomers are inserted (skipping
    those present) with this refresh's number; members the condition no longer finds are marked, recorded
    as having left and removed. Unchanged members cost one index probe each, not a row update."""
    number = segment.refreshes + 1
    now = now or utcnow()
    covered = _covered(session, segment, now)
    member = SegmentMember
    found = select(literal(segment.id), Profile.id, literal(segment.org_id), literal(number), literal(False),
                   literal(now, type_=member.added_at.type)).where(*covered)
    session.execute(dialect_insert(session)(member).from_select(
        ["segment_id", "profile_id", "org_id", "added_in", "leaving", "added_at"], found).on_conflict_do_nothing())
    steps = [("entered", member.added_in == number)]
    if segment.kind == "dynamic":  # a static segment only ever gains: its hand-picked customers stay
        still_found = select(Profile.id).where(Profile.id == member.profile_id, *covered).exists()
        session.execute(update(member).where(member.segment_id == segment.id, ~still_found)
                        .values(leaving=True).execution_options(synchronize_session=False))
        steps.append(("left", member.leaving.is_(True)))
    for change, where in steps:
        session.execute(insert(SegmentChange).from_select(
            ["org_id", "segment_id", "profile_id", "change", "refresh", "at"],
            select(member.org_id, member.segment_id, member.profile_id, literal(change), literal(number),
                   literal(now, type_=SegmentChange.at.type)).where(member.segment_id == segment.id, where)))
    entered = session.scalar(select(func.count()).select_from(member).where(
        member.segment_id == segment.id, member.added_in == number)) or 0
    left = session.execute(delete(member).where(member.segment_id == segment.id, member.leaving.is_(True))
                           .execution_options(synchronize_session=False)).rowcount
    segment.refreshes = number
    segment.member_count = session.scalar(select(func.count()).select_from(member).where(
        member.segment_id == segment.id)) or 0
    segment.refreshed_at, segment.status, segment.error = now, "ready", None
    segment.time_followed_at = now if segment.kind == "dynamic" and follows_time(segment.condition) else None
    session.flush()
    tags.sync_rule_tags(session, segment.id)
    _members_changed(session, segment, entered, left)
    return entered, left


def follow_customers(session: Session, segment: Segment, profile_ids: set[int], *,
                     now: datetime | None = None) -> tuple[int, int]:
    """The segment's membership of these customers only, brought in line with its condition now (returns
    entered, left): what one of their events or changes did, within seconds instead of at the next refresh.
    The same rules as a refresh — its changes recorded (``segment_changes``, the stream journeys read), its
    rule tags following — for a handful of customers: a few statements whatever the segment's size."""
    if not profile_ids:
        return 0, 0
    now = now or utcnow()
    ids = sorted(profile_ids)
    member = SegmentMember
    matching = set(session.scalars(select(Profile.id).where(*_covered(session, segment, now), Profile.id.in_(ids))))
    present = set(session.scalars(select(member.profile_id).where(member.segment_id == segment.id,
                                                                  member.profile_id.in_(ids))))
    entering = sorted(matching - present)
    leaving = sorted(present - matching) if segment.kind == "dynamic" else []
    if entering:
        session.execute(dialect_insert(session)(member).values([
            {"segment_id": segment.id, "profile_id": i, "org_id": segment.org_id, "added_in": segment.refreshes,
             "leaving": False, "added_at": now} for i in entering]).on_conflict_do_nothing())
    if leaving:
        session.execute(delete(member).where(member.segment_id == segment.id, member.profile_id.in_(leaving))
                        .execution_options(synchronize_session=False))
    changes = [("entered", i) for i in entering] + [("left", i) for i in leaving]
    if changes:
        session.execute(insert(SegmentChange), [
            {"org_id": segment.org_id, "segment_id": segment.id, "profile_id": i, "change": change,
             "refresh": segment.refreshes, "at": now} for change, i in changes])
        segment.member_count = max(0, segment.member_count + len(entering) - len(leaving))
        tags.follow_rule_tags(session, segment.id, entering=entering, leaving=leaving)
        _members_changed(session, segment, len(entering), len(leaving))
    return len(entering), len(leaving)


def _dynamic_segments_exist(session: Session) -> list[Any] | None:
    """What live membership wants of the customers' events: every one, while any dynamic segment is ready."""
    found = session.scalar(select(Segment.id).where(Segment.kind == "dynamic", Segment.condition.is_not(None),
                                                    Segment.status == "ready").limit(1))
    return [] if found is not None else None


@events.subscribe(LIVE_MEMBERS, stream=Event, wanted=_dynamic_segments_exist, batch=LIVE_MEMBERS_BATCH)
def _members_follow_events(session: Session, batch: list[Event]) -> None:
    """Each batch of customers' events (ingested, imported, or kehu's own happenings) re-decides the dynamic
    segments of the customers it touched, set-based, in the transaction that moves this consumer's cursor: a
    crash repeats nothing and loses nothing. A full refresh holds its segment's row from its start: this waits for
    it to commit and then decides on what it left (skipping would lose a change the refresh's earlier statements
    did not see); a refresh that starts meanwhile waits for this to commit, then sees what it did."""
    _follow(session, [(event.org_id, event.profile_id) for event in batch])


@events.subscribe(LIVE_EDITS, [PROFILE_CHANGED], batch=LIVE_MEMBERS_BATCH)
def _members_follow_edits(session: Session, batch: list[events.DomainEvent]) -> None:
    """Records changed by hand or through the API (a city corrected, a customer reassigned to another dealer, a
    consent recorded at the showroom) re-decide their dynamic segments the same way."""
    _follow(session, [(event.org_id, event.profile_id) for event in batch])


def _follow(session: Session, touched_by: list[tuple[int, int | None]]) -> None:
    by_org: dict[int, set[int]] = {}
    for org_id, profile_id in touched_by:
        if profile_id is not None:
            by_org.setdefault(org_id, set()).add(profile_id)
    for org_id, touched in by_org.items():
        live = set(cdp_service.live_profile_ids(session, touched).values())  # merged-away ids followed
        for segment in session.scalars(select(Segment).where(
                Segment.org_id == org_id, Segment.kind == "dynamic", Segment.condition.is_not(None),
                Segment.status.in_(("ready", "refreshing"))).order_by(Segment.id).with_for_update()):
            try:
                follow_customers(session, segment, live)
            except ValidationFailed:  # a custom field it used was removed since: its next refresh says so
                continue


def _members_changed(session: Session, segment: Segment, entered: int, left: int) -> None:
    if entered or left:
        events.publish(session, MEMBERS_CHANGED, org_id=segment.org_id, entity="segments", entity_id=segment.id,
                       refresh=segment.refreshes, entered=entered, left=left)


@jobs.job_handler(REFRESH_JOB)
def _run_refresh(ctx: jobs.JobContext) -> dict[str, Any]:
    """The whole refresh commits at once: a worker that dies half way leaves the previous members intact and
    the job runs again."""
    # the segment's row held from the start: live membership (follow_customers) waits for this to commit
    segment = ctx.session.get(Segment, ctx.job.payload["segment_id"], with_for_update=True)
    if segment is None:
        return {"skipped": "the segment was deleted"}
    segment.status = "refreshing"
    try:
        entered, left = refresh_members(ctx.session, segment)
    except ValidationFailed as error:  # a custom field it used was removed since: the segment says why
        segment.status, segment.error = "failed", str(error.detail)[:2000]
        return {"failed": segment.error}
    audit.record(ctx.session, ctx.principal, org_id=segment.org_id, action="refresh", entity="segments",
                 entity_id=segment.id, unit_id=segment.unit_id,
                 after={"members": segment.member_count, "entered": entered, "left": left},
                 summary=f"Segment {segment.name}: {segment.member_count} members, {entered} entered, {left} left")
    return {"members": segment.member_count, "entered": entered, "left": left}


# -- the schedule ---------------------------------------------------------------------------------------------
@jobs.poller
def enqueue_due_refreshes(database: Database, limit: int = 20) -> bool:
    """Dynamic segments not computed for ``segment_refresh_minutes`` get a refresh job (as the platform: a
    segment covers its unit whoever made it), and so do segments left waiting on a job that failed for good.
    Several workers may look at once; each due segment is queued once, by the worker whose update finds it
    still due (the update waits for the other's commit and then sees the new job)."""
    due_before = utcnow() - timedelta(minutes=get_settings().segment_refresh_minutes)
    dead_jobs = select(jobs.Job.id).where(jobs.Job.status.in_((jobs.FAILED, jobs.CANCELLED)))
    due = or_(and_(Segment.status.in_(("ready", "failed")), Segment.refreshed_at < due_before),
              and_(Segment.status.in_(("queued", "refreshing")), Segment.job_id.in_(dead_jobs)))
    with database.unit_of_work() as session:
        candidates = session.execute(select(Segment.id, Segment.job_id).where(
            Segment.kind == "dynamic", Segment.condition.is_not(None), due).order_by(
            Segment.refreshed_at.nulls_first()).limit(limit)).all()
        queued = 0
        for segment_id, job_id in candidates:
            claimed = session.execute(update(Segment).where(
                Segment.id == segment_id, Segment.job_id.is_(None) if job_id is None else Segment.job_id == job_id,
                due).values(status="queued").execution_options(synchronize_session=False)).rowcount
            if claimed:
                segment = session.get(Segment, segment_id)
                assert segment is not None
                _enqueue_refresh(session, None, segment)
                queued += 1
    return queued > 0


# -- time passing ---------------------------------------------------------------------------------------------
TIME_CHUNK = 5000  # customers asked again per statement


def follow_time(session: Session, segment: Segment, now: datetime) -> tuple[int, int]:
    """A dynamic segment whose condition counts days back from now ("no showroom visit in 90 days", "ordered
    within the last 30 days", "birthday more than …"), brought in line with the passing of time since it was
    last followed: only the customers near its boundaries — whose visit, order or date crossed "N days back"
    meanwhile — are asked again, as their events would have them, set-based (returns entered, left). The full
    refresh stays the safety net and finds nothing to correct."""
    since = segment.time_followed_at
    if since is None or since >= now or segment.condition is None:
        return 0, 0
    condition = schemas.condition_adapter.validate_python(segment.condition)
    crossing = time_crossings(session, segment.org_id, org_timezone(session, segment.org_id) or "Asia/Shanghai",
                              condition, since=since, now=now, segment_id=segment.id)
    entered = left = 0
    if crossing is not None:
        near = sorted(set(session.scalars(select(crossing.subquery().c[0]))))
        for start in range(0, len(near), TIME_CHUNK):
            chunk = set(cdp_service.live_profile_ids(session, set(near[start:start + TIME_CHUNK])).values())
            came, went = follow_customers(session, segment, chunk, now=now)
            entered, left = entered + came, left + went
    segment.time_followed_at = now
    return entered, left


@jobs.poller
def follow_time_passing(database: Database, *, now: datetime | None = None) -> bool:
    """Segments whose time was last followed ``segment_time_seconds`` ago are followed up to now, one per
    transaction; a segment another worker holds (following it, refreshing it, or its customers' events) is
    passed by this time round."""
    now = now or utcnow()
    due_before = now - timedelta(seconds=get_settings().segment_time_seconds)
    followed = 0
    while followed < 20:
        with database.unit_of_work() as session:
            segment = session.scalars(select(Segment).where(
                Segment.kind == "dynamic", Segment.status == "ready", Segment.time_followed_at < due_before)
                .order_by(Segment.time_followed_at).limit(1).with_for_update(skip_locked=True)).first()
            if segment is None:
                break
            try:
                follow_time(session, segment, now)
            except ValidationFailed:  # a custom field it used was removed since: its next refresh says so
                segment.time_followed_at = None
            followed += 1
    return followed > 0
