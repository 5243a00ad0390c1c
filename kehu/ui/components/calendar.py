"""What the campaign calendar (活动日历) shows, whichever domain it comes from: broadcasts (channels) and journeys,
each domain giving its own through its manifest's ``calendar_entries``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CalendarEntry:
    """One thing on the calendar: on the day of ``at`` (in the organisation's time zone), or — ``running`` — over the
    whole range shown (a journey that runs every day), said once above the days."""

    at: datetime
    name: str
    link: str  # the page it opens
    caption: str  # what and when, e.g. "10:00 · 短信"
    status: str  # in the reader's words
    colour: str  # a Quasar colour name
    running: bool = False
