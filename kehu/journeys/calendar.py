"""Journeys on the campaign calendar (活动日历), beside the broadcasts: which journeys run over a range of days, when
each started or stopped, and when a timed trigger will enrol (a schedule's runs, a date trigger's daily run) — from
now on, since what already ran is in the journey's report."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kehu.core.db import utcnow
from kehu.journeys import schemas
from kehu.journeys.models import Journey
from kehu.journeys.service import graph_of, parse
from kehu.journeys.timing import next_entry
from kehu.tenancy.access import Principal, Ref, check_references, org_timezone, scope, units_under
from kehu.tenancy.models import BusinessUnit

MOST_RUNS = 100  # a timed trigger's runs shown per journey (a daily one over a quarter: 93)


def calendar(session: Session, principal: Principal, *, start: datetime, end: datetime,
             unit_id: int | None = None) -> list[schemas.CalendarItem]:
    """The journeys of the reader's units (or of one unit and those below it) between ``start`` and ``end`` (UTC)."""
    principal.require("journeys", "read")
    query = select(Journey).where(scope(principal, Journey), Journey.is_template.is_(False), or_(  # templates: no runs
        Journey.status.in_(("live", "paused")) & (Journey.started_at < end),
        (Journey.status == "stopped") & (Journey.stopped_at >= start) & (Journey.started_at < end),
        Journey.status == "draft"))
    if unit_id is not None:
        found = check_references(session, principal, {"unit_id": Ref(BusinessUnit, unit_id, None)})
        query = query.where(Journey.unit_id.in_(units_under(session, principal.org_id, found["unit_id"].path)))
    timezone = org_timezone(session, principal.org_id)
    now = utcnow()
    items: list[schemas.CalendarItem] = []
    for journey in session.scalars(query.order_by(Journey.started_at, Journey.id).limit(500)):
        def item(kind: str, at: datetime, journey: Journey = journey) -> schemas.CalendarItem:
            return schemas.CalendarItem(journey_id=journey.id, name=journey.name, status=journey.status,
                                        unit_id=journey.unit_id, kind=kind, at=at)  # type: ignore[arg-type]

        if journey.status == "draft":
            trigger = parse(journey.draft or {}).trigger
            planned = next_entry(trigger, now, timezone) if trigger.type == "schedule" and trigger.date else None
            if planned is not None and start <= planned < end:
                items.append(item("planned", planned))
            continue
        if journey.started_at is None:  # cannot happen: a journey that ran started
            continue
        items.append(item("running", journey.started_at))
        if start <= journey.started_at < end:
            items.append(item("started", journey.started_at))
        if journey.stopped_at is not None and start <= journey.stopped_at < end:
            items.append(item("stopped", journey.stopped_at))
        if journey.status == "live" and journey.next_entry_at is not None:
            trigger = graph_of(session, journey.id, journey.version).definition.trigger
            run: datetime | None = journey.next_entry_at
            for _ in range(MOST_RUNS):
                if run is None or run >= end:
                    break
                if run >= start:
                    items.append(item("run", run))
                run = next_entry(trigger, run, timezone)
    return items
