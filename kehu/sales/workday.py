"""A person's working day, for their home page: what needs doing now (leads waiting for a first contact, tasks
overdue, today's appointments), how their pipeline and month stand, and — for whoever leads others — the same
per salesperson of their dealer or per unit below them. Everything within the reader's scope: a salesperson
sees their own, a dealer manager their dealer, a region its dealers, headquarters the network."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from kehu.cdp.models import Profile
from kehu.cdp.views import CustomerView
from kehu.core.db import utcnow
from kehu.core.timeutil import zone
from kehu.sales import pipelines
from kehu.sales.models import OPEN_STATUSES, Activity, Lead, Opportunity, Pipeline, PipelineStage
from kehu.sales.reports import roll_up
from kehu.tenancy.access import OWN, Principal, scope, units_under
from kehu.tenancy.models import BusinessUnit, User

SHOWN = 8  # rows of each list on the home page; the counts say how many there are in all


@dataclass
class Day:
    """The figures of one reader's home page (``None`` where their role does not reach that domain)."""

    now: datetime
    waiting: list[dict[str, Any]] | None = None  # leads not yet contacted, soonest due first
    waiting_count: int = 0
    waiting_late: int = 0
    overdue: list[dict[str, Any]] | None = None  # planned activities past their time
    overdue_count: int = 0
    today: list[dict[str, Any]] | None = None  # activities still ahead today (test drives, visits, calls)
    pipeline: list[dict[str, Any]] | None = None  # open deals by stage of the default pipeline
    month: dict[str, Any] | None = None  # won this month so far, and last month to the same day
    people: list[dict[str, Any]] | None = None  # a dealer's salespeople side by side
    units: list[dict[str, Any]] | None = None  # the units right below a region or headquarters, compared
    scope_kind: str = "own"  # own | dealer | region | network


def _day_bounds(principal: Principal, now: datetime) -> tuple[datetime, datetime, datetime, datetime]:
    """Today's end, this month's start, last month's start and its same moment, in UTC."""
    tz = zone(principal.timezone)
    local = now.astimezone(tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    month = start.replace(day=1)
    previous = (month - timedelta(days=1)).replace(day=1)
    # the same point of last month (31 March looks back to 28/29 February's end)
    same_day = min(local.day, (month - timedelta(days=1)).day)
    previous_same = previous.replace(day=same_day, hour=local.hour, minute=local.minute, second=local.second)
    return ((start + timedelta(days=1)).astimezone(UTC), month.astimezone(UTC), previous.astimezone(UTC),
            previous_same.astimezone(UTC))


def _scope_kind(session: Session, principal: Principal) -> str:
    """own | dealer | region | network, kept with the principal (a change to its unit makes the principal anew)."""
    if principal.depth("leads", "read") == OWN and principal.depth("opportunities", "read") in (OWN, "none"):
        return "own"
    kind = principal.memo.get("scope_kind")
    if kind is None:
        unit = session.get(BusinessUnit, principal.unit_id) if principal.unit_id is not None else None
        kind = principal.memo["scope_kind"] = ("network" if unit is None or unit.parent_id is None
                                               else "region" if unit.kind == "region" else "dealer")
    return kind


def my_day(session: Session, principal: Principal, *, now: datetime | None = None) -> Day:
    """Under load each statement waits its turn for the server's interpreter and the database: a list's count
    comes with its first rows (a window over the same rows), the customers' names of every list in one lookup."""
    now = now or utcnow()
    today_end, month_start, previous_start, previous_same = _day_bounds(principal, now)
    day = Day(now=now, scope_kind=_scope_kind(session, principal))
    leads: list[Lead] = []
    overdue: list[Activity] = []
    today: list[Activity] = []
    if principal.can("leads"):
        waiting = and_(scope(principal, Lead), Lead.org_id == principal.org_id, Lead.status.in_(OPEN_STATUSES),
                       Lead.first_contacted_at.is_(None), Lead.first_contact_due_at.is_not(None))
        first_waiting = session.execute(
            select(Lead, func.count().over(), func.count(case((Lead.first_contact_due_at < now, 1))).over())
            .where(waiting).order_by(Lead.first_contact_due_at, Lead.id).limit(SHOWN)).all()
        leads = [lead for lead, _, _ in first_waiting]
        day.waiting_count, day.waiting_late = (first_waiting[0][1], first_waiting[0][2]) if first_waiting else (0, 0)
    if principal.can("activities"):
        planned = and_(scope(principal, Activity), Activity.org_id == principal.org_id, Activity.done_at.is_(None),
                       Activity.due_at.is_not(None))
        first_overdue = session.execute(select(Activity, func.count().over()).where(planned, Activity.due_at < now)
                                        .order_by(Activity.due_at.desc()).limit(SHOWN)).all()
        overdue = [activity for activity, _ in first_overdue]
        day.overdue_count = first_overdue[0][1] if first_overdue else 0
        # still ahead today; what is past its time is overdue, listed once, there
        today = list(session.scalars(select(Activity).where(planned, Activity.due_at >= now,
                                                            Activity.due_at < today_end)
                                     .order_by(Activity.due_at).limit(20)))
    if principal.can("leads") or principal.can("activities"):
        names = _customer_names(session, CustomerView.of(session, principal),
                                [*(lead.profile_id for lead in leads), *(a.profile_id for a in [*overdue, *today])])
        if principal.can("leads"):
            day.waiting = [{"id": lead.id, "customer": names.get(lead.profile_id), "model": lead.model_interest,
                            "status": lead.status, "due_at": lead.first_contact_due_at,
                            "late": lead.first_contact_due_at is not None and lead.first_contact_due_at < now}
                           for lead in leads]
        if principal.can("activities"):
            day.overdue = [_activity(a, names) for a in overdue]
            day.today = [_activity(a, names) for a in today]
    if principal.can("opportunities"):
        day.pipeline = _pipeline(session, principal)
        won = and_(scope(principal, Opportunity), Opportunity.org_id == principal.org_id,
                   Opportunity.status == "won")
        # this month so far and last month to the same point, in one statement
        this = and_(Opportunity.closed_at >= month_start, Opportunity.closed_at <= now)
        last = and_(Opportunity.closed_at >= previous_start, Opportunity.closed_at <= previous_same)
        won_count, won_amount, last_count, last_amount = session.execute(select(
            func.count(case((this, 1))), func.sum(case((this, Opportunity.amount))),
            func.count(case((last, 1))), func.sum(case((last, Opportunity.amount)))).where(won, or_(this, last))).one()
        day.month = {"won_count": won_count, "won": Decimal(won_amount or 0), "last_count": last_count,
                     "last": Decimal(last_amount or 0)}
    if day.scope_kind == "dealer" and principal.can("leads") and principal.can("users"):
        day.people = _people(session, principal, now, month_start)
    elif day.scope_kind in ("region", "network") and principal.can("opportunities"):
        day.units = _units_compared(session, principal, now, month_start)
    return day


def _customer_names(session: Session, view: CustomerView, profile_ids: Iterable[int]) -> dict[int, str | None]:
    wanted = set(profile_ids)
    if not wanted:
        return {}
    people = session.scalars(select(Profile).where(Profile.id.in_(wanted)))
    return {p.id: view.profile(p).name for p in people}


def _activity(activity: Activity, names: dict[int, str | None]) -> dict[str, Any]:
    return {"id": activity.id, "kind": activity.kind, "subject": activity.subject, "due_at": activity.due_at,
            "customer": names.get(activity.profile_id), "profile_id": activity.profile_id,
            "lead_id": activity.lead_id}


def _pipeline(session: Session, principal: Principal) -> list[dict[str, Any]]:
    """Open deals of the default pipeline by stage, in stage order: how many, their amount and its weighted
    value (amount × the stage's probability). The default pipeline is found in the same statement; one is made
    (``pipelines.default_pipeline``) only when there is none yet."""
    default = (select(Pipeline.id).where(Pipeline.org_id == principal.org_id, Pipeline.is_default.is_(True))
               .limit(1).scalar_subquery())

    def read(pipeline_id: Any) -> list[Any]:
        return list(session.execute(
            select(PipelineStage.key, PipelineStage.name_zh, PipelineStage.name_en, PipelineStage.probability,
                   func.count(Opportunity.id), func.sum(Opportunity.amount))
            .outerjoin(Opportunity, and_(Opportunity.stage_id == PipelineStage.id, Opportunity.status == "open",
                                         scope(principal, Opportunity)))
            .where(PipelineStage.pipeline_id == pipeline_id, PipelineStage.is_won.is_(False))
            .group_by(PipelineStage.id, PipelineStage.key, PipelineStage.name_zh, PipelineStage.name_en,
                      PipelineStage.probability, PipelineStage.position)
            .order_by(PipelineStage.position)).all())

    rows = read(default) or read(pipelines.default_pipeline(session, principal.org_id).id)
    return [{"key": key, "name_zh": zh, "name_en": en, "count": count, "amount": Decimal(amount or 0),
             "weighted": Decimal(amount or 0) * probability / 100}
            for key, zh, en, probability, count, amount in rows]


def _people(session: Session, principal: Principal, now: datetime, month_start: datetime) -> list[dict[str, Any]]:
    """Each active salesperson of the reader's part of the tree (everyone, even with nothing open: an empty row is
    news to a manager too): open leads, those past their first-contact time, open deals and their amount, won this
    month — one statement, each figure grouped by owner and joined to the staff."""
    leads = (select(Lead.owner_id, func.count().label("open_leads"), func.count(case((and_(
        Lead.first_contacted_at.is_(None), Lead.first_contact_due_at < now), 1))).label("late_leads"))
        .where(scope(principal, Lead), Lead.org_id == principal.org_id, Lead.status.in_(OPEN_STATUSES))
        .group_by(Lead.owner_id).subquery())
    is_open = Opportunity.status == "open"
    won = and_(Opportunity.status == "won", Opportunity.closed_at >= month_start, Opportunity.closed_at <= now)
    deals = (select(Opportunity.owner_id, func.count(case((is_open, 1))).label("open_deals"),
                    func.sum(case((is_open, Opportunity.amount))).label("pipeline"),
                    func.count(case((won, 1))).label("won_count"),
                    func.sum(case((won, Opportunity.amount))).label("won"))
             .where(scope(principal, Opportunity), Opportunity.org_id == principal.org_id, or_(is_open, won))
             .group_by(Opportunity.owner_id).subquery())
    rows = session.execute(
        select(User.id, User.name, leads.c.open_leads, leads.c.late_leads, deals.c.open_deals, deals.c.pipeline,
               deals.c.won_count, deals.c.won)
        .outerjoin(leads, leads.c.owner_id == User.id).outerjoin(deals, deals.c.owner_id == User.id)
        .where(scope(principal, User), User.is_active.is_(True), User.org_id == principal.org_id)).all()
    people = [{"user_id": user_id, "name": name, "open_leads": open_leads or 0, "late_leads": late_leads or 0,
               "open_deals": open_deals or 0, "pipeline": Decimal(pipeline or 0), "won_count": won_count or 0,
               "won": Decimal(won_amount or 0)}
              for user_id, name, open_leads, late_leads, open_deals, pipeline, won_count, won_amount in rows]
    return sorted(people, key=lambda p: (-p["won"], -p["pipeline"], p["name"]))


def _units_compared(session: Session, principal: Principal, now: datetime,
                    month_start: datetime) -> list[dict[str, Any]]:
    """The units right below the reader's (a region's dealers, headquarters' regions): open pipeline, won this
    month, leads waiting past their first-contact time — each the sum of its subtree."""
    root = session.get(BusinessUnit, principal.unit_id) if principal.unit_id is not None else session.scalar(
        select(BusinessUnit).where(BusinessUnit.org_id == principal.org_id, BusinessUnit.parent_id.is_(None)))
    if root is None:
        return []
    within = units_under(session, root.org_id, root.path)
    own: dict[int, dict[str, Any]] = {}

    def add(rows: Any, *names: str) -> None:
        for unit_id, *values in rows:
            figures = own.setdefault(unit_id, {})
            for name, value in zip(names, values, strict=True):
                figures[name] = figures.get(name, 0) + (value or 0)

    add(session.execute(select(Opportunity.unit_id, func.count(), func.sum(Opportunity.amount))
                        .where(scope(principal, Opportunity), Opportunity.org_id == principal.org_id,
                               Opportunity.status == "open", Opportunity.unit_id.in_(within))
                        .group_by(Opportunity.unit_id)), "open_deals", "pipeline")
    add(session.execute(select(Opportunity.unit_id, func.count(), func.sum(Opportunity.amount))
                        .where(scope(principal, Opportunity), Opportunity.org_id == principal.org_id,
                               Opportunity.status == "won", Opportunity.closed_at >= month_start,
                               Opportunity.closed_at <= now, Opportunity.unit_id.in_(within))
                        .group_by(Opportunity.unit_id)), "won_count", "won")
    if principal.can("leads"):
        add(session.execute(select(Lead.unit_id, func.count(), func.count(case((and_(
            Lead.first_contacted_at.is_(None), Lead.first_contact_due_at < now), 1))))
            .where(scope(principal, Lead), Lead.org_id == principal.org_id, Lead.status.in_(OPEN_STATUSES),
                   Lead.unit_id.in_(within)).group_by(Lead.unit_id)), "open_leads", "late_leads")
    rows = [r for r in roll_up(session, root, own) if r.parent_id == root.id]
    keys = ("open_deals", "pipeline", "won_count", "won", "open_leads", "late_leads")
    compared = [{"unit_id": r.unit_id, "name": r.name, "kind": r.kind,
                 **{k: Decimal(r.total.get(k, 0)) if k in ("pipeline", "won") else int(r.total.get(k, 0))
                    for k in keys}} for r in rows]
    return sorted(compared, key=lambda u: (-u["won"], -u["pipeline"], u["name"]))
