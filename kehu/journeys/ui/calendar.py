"""The journeys' part of the campaign calendar: those running over the range, and the days they start, stop and
enrol (a timed trigger's runs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kehu.core.timeutil import zone
from kehu.journeys.calendar import calendar
from kehu.ui.components.calendar import CalendarEntry
from kehu.ui.shell import tr, unit_of_work

COLOURS = {"running": "positive", "started": "positive", "stopped": "grey-6", "run": "teal-7", "planned": "grey-6"}


def calendar_entries(principal: Any, start: datetime, end: datetime, unit_id: int | None) -> list[CalendarEntry]:
    if not principal.can("journeys"):
        return []
    with unit_of_work() as session:
        items = calendar(session, principal, start=start, end=end, unit_id=unit_id)
    tz = zone(principal.timezone)
    return [CalendarEntry(at=item.at, name=item.name, link=f"/journeys/{item.journey_id}",
                          caption=tr(f"journeys.calendar.{item.kind}", time=f"{item.at.astimezone(tz):%H:%M}",
                                     day=f"{item.at.astimezone(tz):%m-%d}"),
                          status=tr(f"journeys.status.{item.status}"), colour=COLOURS[item.kind],
                          running=item.kind == "running")
            for item in items]
