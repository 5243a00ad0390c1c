"""Sales reports over the business-unit tree: the forecast (weighted pipeline by month), the funnel with
conversion rates and cycle times, and first-contact service levels of leads. Each is one grouped query by
unit within the reader's scope, rolled up dealer → region → HQ in Python over the (few hundred) units, so a
region's figure is always the sum of its dealers' and its own."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from kehu.core.db import month_of, seconds_between, shifted, utcnow
from kehu.core.errors import invalid
from kehu.core.timeutil import zone
from kehu.sales import pipelines
from kehu.sales.models import OPEN_STATUSES, Lead, Opportunity, OpportunityChange, PipelineStage
from kehu.tenancy.access import OWN, Principal, scope, units_under
from kehu.tenancy.models import BusinessUnit


@dataclass
class UnitFigures:
    """One unit's figures: ``own`` for rows placed at the unit itself, ``total`` for its whole subtree."""

    unit_id: int
    parent_id: int | None
    name: str
    kind: str
    depth: int
    path: str
    own: dict[str, Any] = field(default_factory=dict)
    total: dict[str, Any] = field(default_factory=dict)


def _add(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, dict):
            _add(into.setdefault(key, {}), value)
        else:
            into[key] = into.get(key, 0) + value


def _root(session: Session, principal: Principal, unit_id: int | None, model: Any) -> BusinessUnit:
    """The unit a report starts from: the one asked for (within the reader's part of the tree) or the reader's
    own. A reader who sees only their own rows (a salesperson) starts where those rows are: their deals and
    leads sit on the dealer while they work in one of its teams, and a report rooted at the team was all zero."""
    home = _reader_home(session, principal, model)
    if unit_id is None:
        unit = home
    else:
        unit = session.get(BusinessUnit, unit_id)
        if unit is None or unit.org_id != principal.org_id or not (
                principal.is_system or unit.path.startswith(principal.unit_path)
                or (home is not None and unit.path.startswith(home.path))):
            raise invalid("unit_id", "no such unit within your part of the organisation", "unknown")
    if unit is None:
        raise invalid("unit_id", "no unit to report on", "unknown")
    return unit


def _reader_home(session: Session, principal: Principal, model: Any) -> BusinessUnit | None:
    """The reader's unit, or for a reader of their own rows only the lowest unit holding all of them and theirs."""
    if principal.unit_id is None:
        return session.scalar(select(BusinessUnit).where(BusinessUnit.org_id == principal.org_id,
                                                         BusinessUnit.parent_id.is_(None)))
    unit = session.get(BusinessUnit, principal.unit_id)
    if unit is None or principal.depth(model.__tablename__, "read") != OWN:
        return unit
    paths = [unit.path, *session.scalars(select(BusinessUnit.path).where(BusinessUnit.id.in_(
        select(model.unit_id).where(scope(principal, model), model.org_id == principal.org_id).distinct())))]
    # the deepest unit all of them lie under: the path steps they share ("/1/2/" and "/1/23/" share unit 1 only)
    common = os.path.commonpath(paths).rsplit("/", 1)[-1]
    return session.get(BusinessUnit, int(common)) if common else unit


def roll_up(session: Session, root: BusinessUnit, own: dict[int, dict[str, Any]]) -> list[UnitFigures]:
    """The root's units in tree order with their own figures and their subtree's totals."""
    units = list(session.scalars(select(BusinessUnit).where(BusinessUnit.org_id == root.org_id,
                                                            BusinessUnit.path.startswith(root.path, autoescape=True))
                                 .order_by(BusinessUnit.path)))
    nodes = {u.id: UnitFigures(u.id, u.parent_id, u.name, u.kind, u.depth - root.depth, u.path) for u in units}
    for unit_id, figures in own.items():
        if unit_id in nodes:
            _add(nodes[unit_id].own, figures)
    for node in sorted(nodes.values(), key=lambda n: -n.depth):
        _add(node.total, node.own)
        if node.parent_id in nodes and node.unit_id != root.id:
            _add(nodes[node.parent_id].total, node.total)  # type: ignore[index]
    return [nodes[u.id] for u in units]


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _offset_hours(principal: Principal, at: datetime) -> float:
    offset = at.astimezone(zone(principal.timezone)).utcoffset()
    return offset.total_seconds() / 3600 if offset else 0.0


def _months(start: date, count: int) -> list[str]:
    months, year, month = [], start.year, start.month
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _first_of(month: str) -> date:
    return date(int(month[:4]), int(month[5:]), 1)


# -- forecast ----------------------------------------------------------------------------------------------------
def forecast(session: Session, principal: Principal, *, unit_id: int | None = None, start: date | None = None,
             months: int = 6, pipeline_id: int | None = None) -> dict[str, Any]:
    """The weighted pipeline by expected close month (amount × probability of the open deals), the open
    amount, and what was won in each month, per unit and rolled up; open deals whose close date has passed
    are "overdue" (they need a new date), those without one "undated"."""
    principal.require("opportunities", "read")
    if not 1 <= months <= 24:
        raise invalid("months", "between 1 and 24", "range")
    root = _root(session, principal, unit_id, Opportunity)
    today = datetime.now(zone(principal.timezone)).date()
    first = (start or today).replace(day=1)
    keys = _months(first, months)
    end = _first_of(_months(_first_of(keys[-1]), 2)[1])
    dialect = _dialect(session)
    within = [scope(principal, Opportunity), Opportunity.org_id == principal.org_id,
              Opportunity.unit_id.in_(units_under(session, root.org_id, root.path))]
    if pipeline_id is not None:
        within.append(Opportunity.pipeline_id == pipelines.get_pipeline(session, principal, pipeline_id).id)
    own: dict[int, dict[str, Any]] = {}
    open_month = case((Opportunity.expected_close_on.is_(None), "undated"),
                      (Opportunity.expected_close_on < first, "overdue"),
                      else_=month_of(Opportunity.expected_close_on, dialect))
    for unit, month, count, amount, weighted in session.execute(
            select(Opportunity.unit_id, open_month, func.count(), func.sum(Opportunity.amount),
                   func.sum(Opportunity.amount * Opportunity.probability))
            .where(*within, Opportunity.status == "open",
                   (Opportunity.expected_close_on < end) | Opportunity.expected_close_on.is_(None))
            .group_by(Opportunity.unit_id, open_month)):
        _add(own.setdefault(unit, {}), {month: {"open_count": count, "pipeline": Decimal(amount or 0),
                                                "weighted": Decimal(weighted or 0) / 100}})
    start_utc = datetime.combine(first, datetime.min.time(), zone(principal.timezone)).astimezone(UTC)
    end_utc = datetime.combine(end, datetime.min.time(), zone(principal.timezone)).astimezone(UTC)
    won_month = month_of(shifted(Opportunity.closed_at, _offset_hours(principal, start_utc), dialect), dialect)
    for unit, month, count, amount in session.execute(
            select(Opportunity.unit_id, won_month, func.count(), func.sum(Opportunity.amount))
            .where(*within, Opportunity.status == "won", Opportunity.closed_at >= start_utc,
                   Opportunity.closed_at < end_utc)
            .group_by(Opportunity.unit_id, won_month)):
        _add(own.setdefault(unit, {}), {month: {"won_count": count, "won": Decimal(amount or 0)}})
    rows = roll_up(session, root, own)
    return {"root_id": root.id, "months": keys, "units": rows}


# -- funnel and cycle times ------------------------------------------------------------------------------------------
def _period(principal: Principal, since: date | None, until: date | None) -> tuple[datetime, datetime]:
    tz = zone(principal.timezone)
    today = datetime.now(tz).date()
    until = until or today
    since = since or (until - timedelta(days=365))
    if since > until:
        raise invalid("since", "the period starts before it ends", "range")
    begin = datetime.combine(since, datetime.min.time(), tz).astimezone(UTC)
    finish = datetime.combine(until + timedelta(days=1), datetime.min.time(), tz).astimezone(UTC)
    return begin, finish


def funnel(session: Session, principal: Principal, *, pipeline_id: int | None = None, unit_id: int | None = None,
           since: date | None = None, until: date | None = None) -> dict[str, Any]:
    """For the deals opened in the period: how many reached each stage (the furthest stage each entered),
    the rate from one stage to the next, won and lost, the win rate, the days from opening to winning, and
    the average days deals stayed in each stage — per unit, rolled up."""
    principal.require("opportunities", "read")
    root = _root(session, principal, unit_id, Opportunity)
    pipeline = pipelines.get_pipeline(session, principal, pipeline_id)
    stages = pipelines.stages_of(session, pipeline.id)
    begin, finish = _period(principal, since, until)
    dialect = _dialect(session)
    cohort = select(Opportunity.id).where(
        scope(principal, Opportunity), Opportunity.org_id == principal.org_id, Opportunity.pipeline_id == pipeline.id,
        Opportunity.unit_id.in_(units_under(session, root.org_id, root.path)),
        Opportunity.created_at >= begin, Opportunity.created_at < finish)
    entered = ("created", "stage", "won", "reopened")
    furthest = (select(Opportunity.id.label("id"), Opportunity.unit_id.label("unit_id"),
                       Opportunity.status.label("status"), func.max(PipelineStage.position).label("position"),
                       func.max(seconds_between(Opportunity.created_at, Opportunity.closed_at, dialect)).label("cycle"))
                .join(OpportunityChange, OpportunityChange.opportunity_id == Opportunity.id)
                .join(PipelineStage, PipelineStage.id == OpportunityChange.to_stage_id)
                .where(Opportunity.id.in_(cohort), OpportunityChange.kind.in_(entered))
                .group_by(Opportunity.id, Opportunity.unit_id, Opportunity.status).subquery())
    own: dict[int, dict[str, Any]] = {}
    for unit, status, position, count, cycle in session.execute(
            select(furthest.c.unit_id, furthest.c.status, furthest.c.position, func.count(),
                   func.sum(case((furthest.c.status == "won", furthest.c.cycle), else_=0)))
            .group_by(furthest.c.unit_id, furthest.c.status, furthest.c.position)):
        figures: dict[str, Any] = {"opened": count, status: count,
                                   "reached": {s.key: count for s in stages if s.position <= position}}
        if status == "won":
            figures["won_seconds"] = float(cycle or 0)
        _add(own.setdefault(unit, {}), figures)
    # a stay in a stage runs to the next move or to losing the deal (time while lost is nobody's stage)
    stays = (select(OpportunityChange.opportunity_id.label("id"), OpportunityChange.to_stage_id.label("stage_id"),
                    OpportunityChange.kind.label("kind"), OpportunityChange.at.label("at"),
                    func.lead(OpportunityChange.at).over(partition_by=OpportunityChange.opportunity_id,
                                                         order_by=(OpportunityChange.at, OpportunityChange.id))
                    .label("left_at"))
             .where(OpportunityChange.opportunity_id.in_(cohort), OpportunityChange.kind.in_((*entered, "lost")))
             .subquery())
    keys = {s.id: s.key for s in stages}
    for unit, stage_id, count, seconds in session.execute(
            select(Opportunity.unit_id, stays.c.stage_id, func.count(),
                   func.sum(seconds_between(stays.c.at, stays.c.left_at, dialect)))
            .join(stays, stays.c.id == Opportunity.id)
            .where(stays.c.left_at.is_not(None), stays.c.kind.in_(("created", "stage", "reopened")))
            .group_by(Opportunity.unit_id, stays.c.stage_id)):
        if stage_id in keys:
            _add(own.setdefault(unit, {}), {"stays": {keys[stage_id]: count},
                                            "stay_seconds": {keys[stage_id]: float(seconds or 0)}})
    return {"root_id": root.id, "pipeline": pipeline, "stages": stages, "since": begin, "until": finish,
            "units": roll_up(session, root, own)}


def funnel_rates(figures: dict[str, Any], stages: list[Any]) -> dict[str, Any]:
    """What a funnel row says: per stage how many reached it and the share of the stage before that went on,
    win rate of the closed deals, average days to win and per stage."""
    reached = figures.get("reached", {})
    rates: dict[str, float | None] = {}
    for before, after in pairwise(stages):
        base = reached.get(before.key, 0)
        rates[after.key] = reached.get(after.key, 0) / base if base else None
    won, lost = figures.get("won", 0), figures.get("lost", 0)
    stays, seconds = figures.get("stays", {}), figures.get("stay_seconds", {})
    return {"opened": figures.get("opened", 0), "reached": {s.key: reached.get(s.key, 0) for s in stages},
            "rates": rates, "won": won, "lost": lost, "open": figures.get("open", 0),
            "win_rate": won / (won + lost) if won + lost else None,
            "days_to_win": figures.get("won_seconds", 0) / won / 86400 if won else None,
            "days_in_stage": {k: seconds[k] / stays[k] / 86400 for k in stays if stays[k]}}


# -- first-contact service levels of leads ----------------------------------------------------------------------
def lead_service_levels(session: Session, principal: Principal, *, unit_id: int | None = None,
                        since: date | None = None, until: date | None = None) -> dict[str, Any]:
    """For the leads assigned in the period: contacted in time, contacted late, still waiting past their
    time (both breaches), waiting within it, escalated, and the average hours to the first contact."""
    principal.require("leads", "read")
    root = _root(session, principal, unit_id, Lead)
    begin, finish = _period(principal, since, until)
    now = utcnow()
    dialect = _dialect(session)
    contacted = Lead.first_contacted_at.is_not(None)
    in_time = and_(contacted, Lead.first_contacted_at <= Lead.first_contact_due_at)
    late = and_(contacted, Lead.first_contacted_at > Lead.first_contact_due_at)
    waiting_late = and_(Lead.first_contacted_at.is_(None), Lead.first_contact_due_at < now,
                        Lead.status.in_(OPEN_STATUSES))
    waiting = and_(Lead.first_contacted_at.is_(None), Lead.first_contact_due_at >= now, Lead.status.in_(OPEN_STATUSES))

    def counted(condition: Any) -> Any:
        return func.count(case((condition, 1)))

    own: dict[int, dict[str, Any]] = {}
    for row in session.execute(
            select(Lead.unit_id, func.count(), counted(in_time), counted(late), counted(waiting_late),
                   counted(waiting), counted(Lead.escalated_at.is_not(None)), counted(contacted),
                   func.sum(case((contacted, seconds_between(Lead.assigned_at, Lead.first_contacted_at, dialect)),
                                 else_=0)))
            .where(scope(principal, Lead), Lead.org_id == principal.org_id, Lead.assigned_at >= begin,
                   Lead.assigned_at < finish, Lead.unit_id.in_(units_under(session, root.org_id, root.path)))
            .group_by(Lead.unit_id)):
        unit, assigned, ok, late_n, waiting_late_n, waiting_n, escalated, contacted_n, seconds = row
        own[unit] = {"assigned": assigned, "in_time": ok, "late": late_n, "waiting_late": waiting_late_n,
                     "waiting": waiting_n, "escalated": escalated, "contacted": contacted_n,
                     "contact_seconds": max(0.0, float(seconds or 0))}
    return {"root_id": root.id, "since": begin, "until": finish, "units": roll_up(session, root, own)}


def service_level_rates(figures: dict[str, Any]) -> dict[str, Any]:
    breaches = figures.get("late", 0) + figures.get("waiting_late", 0)
    judged = figures.get("in_time", 0) + breaches
    contacted = figures.get("contacted", 0)
    return {**{k: figures.get(k, 0) for k in ("assigned", "in_time", "late", "waiting_late", "waiting", "escalated")},
            "breaches": breaches, "in_time_rate": figures.get("in_time", 0) / judged if judged else None,
            "hours_to_contact": figures.get("contact_seconds", 0) / contacted / 3600 if contacted else None}


def visible_rows(rows: list[UnitFigures], root_id: int, *, children_only: bool,
                 keep: Callable[[UnitFigures], bool] | None = None) -> list[UnitFigures]:
    """The rows a report shows: the root and its children (or the whole tree), without empty subtrees."""
    shown = [r for r in rows if r.unit_id == root_id or (not children_only or r.parent_id == root_id)]
    return [r for r in shown if r.unit_id == root_id or (keep(r) if keep else bool(r.total))]
