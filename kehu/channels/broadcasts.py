"""Broadcasts (群发): a template sent to a segment's customers, now or at a set time, after an approval where a unit
above asks for one. draft → submitted → (approved) scheduled | rejected (with the reviewer's comment) → sending ⇄
paused → sent; anything not yet sent may be cancelled.

When a broadcast is due, one job makes its messages in one statement — the audience (the segment's members within
the broadcast's unit: a dealer's broadcast reaches only that dealer's customers), communication control applied,
one row per customer by a unique key, so a job that runs again adds nobody twice — and the dispatcher sends them.
Pausing holds the messages not yet claimed; resuming releases them; nothing already sent is sent again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Integer, and_, case, func, literal, or_, select, true, update
from sqlalchemy.orm import Session, aliased

from kehu.cdp.models import Profile
from kehu.channels import control, schemas, templates
from kehu.channels.dispatch import account_for
from kehu.channels.models import Broadcast, Message, Template
from kehu.core import audit, jobs
from kehu.core.db import Database, affected, dialect_insert, refresh_statistics, utcnow
from kehu.core.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from kehu.core.pagination import Page, keyset_page
from kehu.segments.models import Segment, SegmentMember
from kehu.tenancy.access import (
    Place,
    Principal,
    Ref,
    check_references,
    home_unit,
    is_root_path,
    org_timezone,
    require_row,
    scope,
    units_under,
)
from kehu.tenancy.models import BusinessUnit

BROADCAST_JOB = "channels.broadcast"
EDITABLE = ("draft", "rejected")
OPEN = ("draft", "submitted", "rejected", "scheduled", "sending", "paused")
APPROVE = "messages.approve"


def visible_broadcasts(principal: Principal) -> Any:
    """Broadcasts the reader sees: those its roles reach, and those of the units above it (HQ's campaigns reach
    a dealer's customers too: the dealer sees them on its calendar, and their report for its own customers)."""
    principal.require("messages", "read")
    above = [int(part) for part in principal.unit_path.strip("/").split("/") if part][:-1]
    return or_(scope(principal, Broadcast), and_(Broadcast.org_id == principal.org_id,
                                                 Broadcast.unit_id.in_(above),
                                                 Broadcast.status.not_in(("draft", "rejected"))))


def get_broadcast(session: Session, principal: Principal, broadcast_id: int) -> Broadcast:
    broadcast = session.scalar(select(Broadcast).where(Broadcast.id == broadcast_id, visible_broadcasts(principal)))
    if broadcast is None:
        raise NotFound(f"No broadcast with id {broadcast_id}.")
    return broadcast


def list_broadcasts(session: Session, principal: Principal, *, status: str | None = None, limit: int = 50,
                    cursor: str | None = None) -> Page[Any]:
    query = select(Broadcast).where(visible_broadcasts(principal))
    if status:
        query = query.where(Broadcast.status == status)
    return keyset_page(session, query, id_column=Broadcast.id, limit=limit, cursor=cursor)


def calendar(session: Session, principal: Principal, *, start: datetime, end: datetime,
             unit_id: int | None = None) -> list[Broadcast]:
    """The broadcasts that reach customers between ``start`` and ``end`` (UTC): scheduled, sending, sent or
    waiting for approval then — when they go (their time, or when they started), drafts at their planned time —
    the campaign calendar (活动日历) of the reader's units, or of one unit and those below it."""
    when = func.coalesce(Broadcast.started_at, Broadcast.scheduled_at, Broadcast.submitted_at, Broadcast.created_at)
    query = select(Broadcast).where(visible_broadcasts(principal), when >= start, when < end,
                                    Broadcast.status != "cancelled")
    if unit_id is not None:
        found = check_references(session, principal, {"unit_id": Ref(BusinessUnit, unit_id, None)})
        query = query.where(Broadcast.unit_id.in_(units_under(session, principal.org_id, found["unit_id"].path)))
    return list(session.scalars(query.order_by(when, Broadcast.id).limit(1000)))


def _references(session: Session, principal: Principal, *, template_id: int | None, segment_id: int | None,
                unit_id: int | None, owner_id: int | None, privilege: str) -> Any:
    refs: dict[str, Ref] = {}
    if template_id is not None:
        refs["template_id"] = Ref(Template, template_id, "read", Template.is_archived.is_(False),
                                  reach=templates.inherited)
    if segment_id is not None:
        refs["segment_id"] = Ref(Segment, segment_id, "read")
    return check_references(session, principal, refs, place=Place("messages", privilege, unit_id, owner_id,
                                                                   owner_at_unit=False))


def create_broadcast(session: Session, principal: Principal, data: schemas.BroadcastCreate) -> Broadcast:
    unit_id = data.unit_id if data.unit_id is not None else home_unit(session, principal)
    found = _references(session, principal, template_id=data.template_id, segment_id=data.segment_id,
                        unit_id=unit_id, owner_id=principal.user_id, privilege="create")
    template: Template = found["template_id"]
    assert unit_id is not None
    broadcast = Broadcast(org_id=principal.org_id, unit_id=unit_id, owner_id=principal.user_id, name=data.name,
                          template_id=template.id, segment_id=data.segment_id, channel=template.channel,
                          purpose=template.purpose, status="draft", scheduled_at=data.scheduled_at)
    session.add(broadcast)
    session.flush()
    audit.record(session, principal, action="create", entity="broadcasts", entity_id=broadcast.id,
                 unit_id=broadcast.unit_id, after=_state(broadcast), summary=f"Broadcast {broadcast.name} drafted")
    return broadcast


def _state(broadcast: Broadcast) -> dict[str, Any]:
    return {"name": broadcast.name, "template_id": broadcast.template_id, "segment_id": broadcast.segment_id,
            "status": broadcast.status, "scheduled_at": broadcast.scheduled_at,
            "template_version": broadcast.template_version}


def update_broadcast(session: Session, principal: Principal, broadcast_id: int,
                     data: schemas.BroadcastUpdate) -> Broadcast:
    broadcast = get_broadcast(session, principal, broadcast_id)
    require_row(session, principal, "messages", "update", unit_id=broadcast.unit_id, owner_id=broadcast.owner_id)
    if broadcast.status not in EDITABLE:
        raise Conflict(f"A {broadcast.status} broadcast cannot be changed; cancel it or wait for a rejection.")
    before = _state(broadcast)
    found = _references(session, principal, template_id=data.template_id, segment_id=data.segment_id,
                        unit_id=broadcast.unit_id, owner_id=broadcast.owner_id, privilege="update")
    if data.name is not None:
        broadcast.name = data.name
    if data.template_id is not None:
        template: Template = found["template_id"]
        broadcast.template_id, broadcast.channel, broadcast.purpose = template.id, template.channel, template.purpose
    if data.segment_id is not None:
        broadcast.segment_id = data.segment_id
    if "scheduled_at" in data.model_fields_set:
        broadcast.scheduled_at = data.scheduled_at
    session.flush()
    audit.record(session, principal, action="update", entity="broadcasts", entity_id=broadcast.id,
                 unit_id=broadcast.unit_id, before=before, after=_state(broadcast),
                 summary=f"Broadcast {broadcast.name} changed")
    return broadcast


def _move(session: Session, principal: Principal, broadcast: Broadcast, status: str, summary: str,
          **fields: Any) -> Broadcast:
    before = _state(broadcast)
    broadcast.status = status
    for name, value in fields.items():
        setattr(broadcast, name, value)
    session.flush()
    audit.record(session, principal, action=status, entity="broadcasts", entity_id=broadcast.id,
                 unit_id=broadcast.unit_id, before=before, after=_state(broadcast), summary=summary)
    return broadcast


def submit(session: Session, principal: Principal, broadcast_id: int) -> Broadcast:
    """Hand a draft over: to a reviewer where a unit above asks to approve this unit's broadcasts, else straight
    to the schedule. The template's version is pinned now: later edits of the template do not change it."""
    broadcast = get_broadcast(session, principal, broadcast_id)
    require_row(session, principal, "messages", "update", unit_id=broadcast.unit_id, owner_id=broadcast.owner_id)
    if broadcast.status not in EDITABLE:
        raise Conflict(f"Only a draft or a rejected broadcast is submitted; this one is {broadcast.status}.")
    template = session.get(Template, broadcast.template_id)
    assert template is not None
    if template.is_archived:
        raise ValidationFailed("template_id: the template is archived",
                               errors=[FieldError("template_id", "the template is archived", "archived")])
    if broadcast.scheduled_at is not None and broadcast.scheduled_at < utcnow() - timedelta(minutes=1):
        raise ValidationFailed("scheduled_at: in the past",
                               errors=[FieldError("scheduled_at", "the time is past; choose a later one or none",
                                                  "past")])
    rules = control.rules_for(session, principal.org_id, broadcast.unit_id)
    now = utcnow()
    if rules.approval_required:
        return _move(session, principal, broadcast, "submitted", f"Broadcast {broadcast.name} submitted",
                     template_version=template.version, submitted_by_id=principal.user_id, submitted_at=now,
                     review_comment="")
    return _move(session, principal, broadcast, "scheduled", f"Broadcast {broadcast.name} scheduled",
                 template_version=template.version, submitted_by_id=principal.user_id, submitted_at=now)


def review(session: Session, principal: Principal, broadcast_id: int, data: schemas.Review) -> Broadcast:
    """Approve (it is scheduled) or reject (back to its author with the comment). The reviewer needs the
    approval permission, must see the broadcast, and is not its author (four eyes)."""
    broadcast = get_broadcast(session, principal, broadcast_id)
    principal.require_permission(APPROVE)
    if broadcast.status != "submitted":
        raise Conflict(f"Only a submitted broadcast is reviewed; this one is {broadcast.status}.")
    if principal.user_id is not None and principal.user_id in (broadcast.owner_id, broadcast.submitted_by_id):
        raise Forbidden("A broadcast is approved by someone other than its author.")
    if not data.approve and not data.comment.strip():
        raise ValidationFailed("comment: say why it is rejected",
                               errors=[FieldError("comment", "say why it is rejected", "required")])
    now = utcnow()
    if data.approve:
        return _move(session, principal, broadcast, "scheduled", f"Broadcast {broadcast.name} approved",
                     reviewed_by_id=principal.user_id, reviewed_at=now, review_comment=data.comment)
    return _move(session, principal, broadcast, "rejected", f"Broadcast {broadcast.name} rejected",
                 reviewed_by_id=principal.user_id, reviewed_at=now, review_comment=data.comment)


def pause(session: Session, principal: Principal, broadcast_id: int) -> Broadcast:
    """Hold what has not gone yet (messages a dispatcher holds right now still finish)."""
    broadcast = get_broadcast(session, principal, broadcast_id)
    require_row(session, principal, "messages", "update", unit_id=broadcast.unit_id, owner_id=broadcast.owner_id)
    if broadcast.status not in ("sending", "scheduled"):
        raise Conflict(f"Only a scheduled or sending broadcast is paused; this one is {broadcast.status}.")
    session.execute(update(Message).where(Message.broadcast_id == broadcast.id, Message.status == "queued")
                    .values(status="paused").execution_options(synchronize_session=False))
    return _move(session, principal, broadcast, "paused", f"Broadcast {broadcast.name} paused")


def resume(session: Session, principal: Principal, broadcast_id: int) -> Broadcast:
    broadcast = get_broadcast(session, principal, broadcast_id)
    require_row(session, principal, "messages", "update", unit_id=broadcast.unit_id, owner_id=broadcast.owner_id)
    if broadcast.status != "paused":
        raise Conflict(f"Only a paused broadcast is resumed; this one is {broadcast.status}.")
    session.execute(update(Message).where(Message.broadcast_id == broadcast.id, Message.status == "paused")
                    .values(status="queued").execution_options(synchronize_session=False))
    # back to where it was: sending once its messages exist, otherwise waiting for its time
    status = "sending" if broadcast.started_at is not None else "scheduled"
    return _move(session, principal, broadcast, status, f"Broadcast {broadcast.name} resumed")


def cancel(session: Session, principal: Principal, broadcast_id: int) -> Broadcast:
    broadcast = get_broadcast(session, principal, broadcast_id)
    require_row(session, principal, "messages", "update", unit_id=broadcast.unit_id, owner_id=broadcast.owner_id)
    if broadcast.status not in OPEN:
        raise Conflict(f"A {broadcast.status} broadcast cannot be cancelled.")
    session.execute(update(Message).where(Message.broadcast_id == broadcast.id,
                                          Message.status.in_(("queued", "paused")))
                    .values(status="cancelled").execution_options(synchronize_session=False))
    return _move(session, principal, broadcast, "cancelled", f"Broadcast {broadcast.name} cancelled",
                 finished_at=utcnow())


def delete_broadcast(session: Session, principal: Principal, broadcast_id: int) -> None:
    broadcast = get_broadcast(session, principal, broadcast_id)
    require_row(session, principal, "messages", "delete", unit_id=broadcast.unit_id, owner_id=broadcast.owner_id)
    if broadcast.status not in EDITABLE:
        raise Conflict("Only a draft or a rejected broadcast is deleted; cancel the others.")
    audit.record(session, principal, action="delete", entity="broadcasts", entity_id=broadcast.id,
                 unit_id=broadcast.unit_id, before=_state(broadcast), summary=f"Broadcast {broadcast.name} deleted")
    session.delete(broadcast)
    session.flush()


# -- making the messages --------------------------------------------------------------------------------------------
def make_message_rows(session: Session, *, org_id: int, sender_unit_id: int, channel: str, purpose: str,
                      template_id: int | None, template_version: int | None, audience: Any, now: datetime,
                      send_key: str | None = None, keyed: Any = None, broadcast_id: int | None = None,
                      journey_id: int | None = None) -> None:
    """One INSERT … SELECT of a send's messages to the customers ``audience`` (a SELECT of profile ids, or the
    ids) names, communication control applied — those it stops get a skipped message with the reason — and due
    when the quiet hours allow. The send's key is ``send_key`` for all, or each customer's own from ``keyed`` (a
    subquery of profile_id and send_key: a journey's, one per enrolment); a key and customer already made are left
    alone, so running it again adds nobody twice. Broadcasts and journeys both send through it."""
    # what communication control reads, grown since the planner last looked (a journey's steps add a million
    # messages inside a few minutes; with statistics of an empty table each step's caps read every row made so
    # far: 23 minutes for a million customers instead of one)
    refresh_statistics(session, ["consents", "messages", "suppressions"])
    timezone = org_timezone(session, org_id)
    rules = control.rules_for(session, org_id, sender_unit_id)
    endpoint = None
    if channel == "webhook":  # every message goes to the account's endpoint (the outbox: its own)
        account = account_for(session, org_id, sender_unit_id, "webhook")
        endpoint = account.config.get("url") or ("outbox" if account.provider == "outbox" else None)
    controlled = control.controlled_audience(session, org_id=org_id, timezone=timezone, audience=audience,
                                             channel=channel, purpose=purpose, rules=rules, now=now,
                                             endpoint=endpoint).subquery("audience")
    due = now if purpose == "transactional" else rules.next_opening(now, timezone)
    columns = ["org_id", "unit_id", "profile_id", "send_key", "broadcast_id", "journey_id", "sender_unit_id",
               "channel", "purpose", "template_id", "template_version", "address", "locale", "status", "skip_reason",
               "created_at", "due_at", "attempts"]
    rows = select(
        literal(org_id), controlled.c.unit_id, controlled.c.profile_id,
        keyed.c.send_key if keyed is not None else literal(send_key), literal(broadcast_id, BigInteger),
        literal(journey_id, BigInteger), literal(sender_unit_id), literal(channel), literal(purpose),
        literal(template_id, BigInteger), literal(template_version, Integer), controlled.c.address, literal("zh"),
        case((controlled.c.skip_reason.is_(None), literal("queued")), else_=literal("skipped")),
        controlled.c.skip_reason, literal(now, type_=Message.created_at.type), literal(due, type_=Message.due_at.type),
        literal(0)).select_from(controlled)
    if keyed is not None:
        rows = rows.join(keyed, keyed.c.profile_id == controlled.c.profile_id)
    rows = rows.where(true())  # SQLite reads ON CONFLICT after a SELECT only behind a WHERE
    session.execute(dialect_insert(session)(Message).from_select(columns, rows).on_conflict_do_nothing())


def make_messages(session: Session, broadcast: Broadcast, *, now: datetime | None = None) -> int:
    """One INSERT … SELECT of the broadcast's messages, communication control applied; returns how many the
    broadcast has. Running it again makes none (the unique key of send and customer)."""
    now = now or utcnow()
    unit = session.get(BusinessUnit, broadcast.unit_id)
    assert unit is not None
    # a segment filled a moment ago is still empty to the planner until autovacuum comes round: the plan for a
    # million customers would be one made for a handful (make_message_rows sees to the tables of its rules)
    refresh_statistics(session, ["segment_members"])
    members = select(SegmentMember.profile_id).where(SegmentMember.segment_id == broadcast.segment_id)
    if not is_root_path(unit.path):
        members = members.join(Profile, Profile.id == SegmentMember.profile_id).where(
            Profile.unit_id.in_(units_under(session, broadcast.org_id, unit.path)))
    make_message_rows(session, org_id=broadcast.org_id, sender_unit_id=broadcast.unit_id, channel=broadcast.channel,
                      purpose=broadcast.purpose, template_id=broadcast.template_id,
                      template_version=broadcast.template_version, audience=members, now=now,
                      send_key=f"broadcast:{broadcast.id}", broadcast_id=broadcast.id)
    return session.scalar(select(func.count()).select_from(Message).where(Message.broadcast_id == broadcast.id)) or 0


@jobs.job_handler(BROADCAST_JOB)
def _run_broadcast(ctx: jobs.JobContext) -> dict[str, Any]:
    """Make a due broadcast's messages (all in one commit: a worker that dies before it leaves nothing, and the
    job runs again; one that dies after finds them made)."""
    broadcast = ctx.session.get(Broadcast, ctx.job.payload["broadcast_id"])
    if broadcast is None or broadcast.status not in ("sending", "paused"):
        return {"skipped": "the broadcast is gone or was cancelled"}
    broadcast.audience = make_messages(ctx.session, broadcast)
    if broadcast.status == "paused":  # paused while its messages were being made: hold them too
        ctx.session.execute(update(Message).where(Message.broadcast_id == broadcast.id, Message.status == "queued")
                            .values(status="paused").execution_options(synchronize_session=False))
    audit.record(ctx.session, None, org_id=broadcast.org_id, action="start", entity="broadcasts",
                 entity_id=broadcast.id, unit_id=broadcast.unit_id, after={"audience": broadcast.audience},
                 summary=f"Broadcast {broadcast.name}: {broadcast.audience} messages made")
    return {"audience": broadcast.audience}


@jobs.poller
def start_due_broadcasts(database: Database, limit: int = 10) -> bool:
    """Scheduled broadcasts whose time has come get their job (once: the update that moves one to ``sending``
    finds it still scheduled only in one worker); sending ones whose messages are all settled are sent."""
    now = utcnow()
    did = False
    with database.unit_of_work() as session:
        due = session.execute(select(Broadcast.id, Broadcast.org_id, Broadcast.unit_id).where(
            Broadcast.status == "scheduled", (Broadcast.scheduled_at.is_(None)) | (Broadcast.scheduled_at <= now))
            .order_by(Broadcast.id).limit(limit)).all()
        for broadcast_id, org_id, unit_id in due:
            moved = affected(session.execute(update(Broadcast).where(Broadcast.id == broadcast_id,
                                                                     Broadcast.status == "scheduled")
                                             .values(status="sending", started_at=now)
                                             .execution_options(synchronize_session=False)))
            if moved:
                job = jobs.enqueue(session, kind=BROADCAST_JOB, org_id=org_id, unit_id=unit_id,
                                   payload={"broadcast_id": broadcast_id})
                session.execute(update(Broadcast).where(Broadcast.id == broadcast_id).values(job_id=job.id)
                                .execution_options(synchronize_session=False))
                did = True
        unsettled = select(Message.id).where(Message.broadcast_id == Broadcast.id,
                                             Message.status.in_(("queued", "sending", "paused"))).exists()
        job_done = select(jobs.Job.id).where(jobs.Job.id == Broadcast.job_id,
                                             jobs.Job.status == jobs.SUCCEEDED).exists()
        made = or_(job_done, Broadcast.job_id.is_(None))  # no job: its messages were made by whoever started it
        finished = affected(session.execute(update(Broadcast).where(Broadcast.status == "sending", made, ~unsettled)
                                            .values(status="sent", finished_at=now)
                                            .execution_options(synchronize_session=False)))
        did = did or bool(finished)
    return did


# -- what became of it ----------------------------------------------------------------------------------------------
def report(session: Session, principal: Principal, broadcast_id: int) -> schemas.Report:
    """Counts of the broadcast's messages the reader may see (HQ: also per dealer), and sends, opens and clicks
    by hour."""
    broadcast = get_broadcast(session, principal, broadcast_id)
    return messages_report(session, principal, and_(Message.broadcast_id == broadcast.id),
                           by_unit=is_root_path(principal.unit_path) or principal.depth("messages") == "org")


def template_report(session: Session, principal: Principal, template_id: int) -> schemas.Report:
    """What a template's messages did (every broadcast, test and journey step that used it), as for a broadcast:
    the messages to customers the reader may see."""
    template = templates.get_template(session, principal, template_id)
    return messages_report(session, principal, and_(Message.template_id == template.id),
                           by_unit=is_root_path(principal.unit_path) or principal.depth("messages") == "org")


def messages_report(session: Session, principal: Principal, where: Any, *, by_unit: bool = False,
                    timezone: str | None = None) -> schemas.Report:
    visible = and_(where, scope(principal, Message))
    out = schemas.Report()
    now = utcnow()
    for status, reason, held, count in session.execute(
            select(Message.status, Message.skip_reason, (Message.due_at > now).label("held"), func.count())
            .where(visible).group_by(Message.status, Message.skip_reason, "held")):
        out.total += count
        if status == "skipped":
            out.skipped[reason or "unknown"] = out.skipped.get(reason or "unknown", 0) + count
        elif status in ("queued", "paused"):
            if held and status == "queued":
                out.held += count
            else:
                out.queued += count
        elif status in ("sent", "delivered"):
            out.sent += count
        elif hasattr(out, status) and isinstance(getattr(out, status), int):
            setattr(out, status, getattr(out, status) + count)
    counts = session.execute(select(func.count(Message.delivered_at), func.count(Message.opened_at),
                                    func.count(Message.clicked_at), func.count(Message.unsubscribed_at))
                             .where(visible)).one()
    out.delivered, out.opened, out.clicked, out.unsubscribed = (int(c or 0) for c in counts)
    out.by_hour = _by_hour(session, visible)
    if by_unit:
        # a team's customers count for the unit it belongs to (a dealer's sales and service teams: the dealer)
        team, shown = aliased(BusinessUnit), aliased(BusinessUnit)
        shown_id = case((team.kind == "team", team.parent_id), else_=team.id)
        rows = session.execute(
            select(shown.id, shown.name, func.count(Message.sent_at), func.count(Message.opened_at),
                   func.count(Message.clicked_at), func.count().filter(Message.status == "skipped"))
            .select_from(Message).join(team, team.id == Message.unit_id).join(shown, shown.id == shown_id)
            .where(visible).group_by(shown.id, shown.name).order_by(func.count(Message.sent_at).desc()).limit(50))
        out.by_unit = [{"unit_id": u, "name": n, "sent": s, "opened": o, "clicked": c, "skipped": k}
                       for u, n, s, o, c, k in rows]
    return out


def _by_hour(session: Session, visible: Any) -> list[dict[str, Any]]:
    """Sent, opened and clicked per hour (UTC hours; pages show them in the organisation's zone)."""
    hours: dict[str, dict[str, Any]] = {}
    for column, name in ((Message.sent_at, "sent"), (Message.opened_at, "opened"), (Message.clicked_at, "clicked")):
        if session.get_bind().dialect.name == "postgresql":
            bucket = func.to_char(func.date_trunc("hour", column), "YYYY-MM-DD\"T\"HH24:00:00")
        else:
            bucket = func.strftime("%Y-%m-%dT%H:00:00", column)
        for hour, count in session.execute(select(bucket, func.count()).where(visible, column.is_not(None))
                                           .group_by(bucket).order_by(bucket).limit(24 * 31)):
            hours.setdefault(hour, {"hour": hour, "sent": 0, "opened": 0, "clicked": 0})[name] = count
    if not hours:
        return []
    # every hour from the first to the last, quiet ones as zeros: a chart's gaps are part of its story
    first, last = (datetime.fromisoformat(h) for h in (min(hours), max(hours)))
    span = min(int((last - first).total_seconds() // 3600), 24 * 31 - 1)
    every = ((first + timedelta(hours=n)).strftime("%Y-%m-%dT%H:00:00") for n in range(span + 1))
    return [hours.get(h) or {"hour": h, "sent": 0, "opened": 0, "clicked": 0} for h in every]
