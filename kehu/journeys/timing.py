"""When a journey's waits end: a wait until a time of day in the organisation's time zone — on weekdays, on a
date, or on a date of the customer's profile (a birthday each year, a service due date), some days before or after
it — over the clock's changes; which profile fields such a wait may name; and what of a node's timing, changed by a
new version, makes the customers at it start over."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, func, select, update
from sqlalchemy.orm import Session

from kehu.cdp.models import Profile
from kehu.cdp.views import PersonalData
from kehu.core.errors import FieldError
from kehu.journeys import schemas
from kehu.journeys.models import Enrolment, Journey
from kehu.tenancy.access import org_timezone

TIMED = ("wait", "wait_for_event")  # nodes that hold a customer for a duration


def wait_until(node: schemas.WaitUntilNode, now: datetime, timezone: str, on: date | None = None) -> datetime:
    """The first moment at or after ``now`` that the node waits for, in UTC: its time of day in ``timezone`` on its
    date (``now`` when that has passed), on the customer's date ``on`` (a profile date field: ``offset_days`` from
    it, its next anniversary if ``yearly``; ``now`` without one or when it has passed) or on the next of its
    weekdays (any day if none)."""
    zone = ZoneInfo(timezone)
    hour, minute = (int(part) for part in node.time.split(":"))
    local_now = now.astimezone(zone)

    def at(day: date) -> datetime:
        # a time the clock skips (spring forward) is read with the offset before the change: the moment after it
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).astimezone(UTC)

    if node.field is not None:
        if on is None:
            return now
        if not node.yearly:
            return max(at(on + timedelta(days=node.offset_days)), now)
        for year in range(local_now.year - 1, local_now.year + 2):  # the anniversary whose moment is next
            moment = at(_anniversary(on, year) + timedelta(days=node.offset_days))
            if moment >= now:
                return moment
        return now
    if node.date is not None:
        return max(at(node.date), now)
    for ahead in range(8):
        day = local_now.date() + timedelta(days=ahead)
        if (not node.weekdays or day.isoweekday() in node.weekdays) and at(day) >= now:
            return at(day)
    return now  # cannot happen: a week holds every weekday


def next_entry(trigger: schemas.Trigger, after: datetime, timezone: str) -> datetime | None:
    """When a timed trigger (``schedule``, ``date``) next enrols, strictly after ``after``: its time of day in
    ``timezone`` on its date (None once that has passed: it ran), or on the next of its weekdays (every day for a
    date trigger, or a schedule without weekdays). None for other triggers."""
    if trigger.type not in schemas.TIMED_TRIGGERS or trigger.time is None:
        return None
    zone = ZoneInfo(timezone)
    hour, minute = (int(part) for part in trigger.time.split(":"))

    def at(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).astimezone(UTC)

    if trigger.date is not None:
        moment = at(trigger.date)
        return moment if moment > after else None
    today = after.astimezone(zone).date()
    for ahead in range(9):
        day = today + timedelta(days=ahead)
        if (not trigger.weekdays or day.isoweekday() in trigger.weekdays) and at(day) > after:
            return at(day)
    return None  # cannot happen: nine days hold every weekday


def dates_due(trigger: schemas.Trigger, due: datetime, now: datetime, timezone: str) -> tuple[date, date]:
    """The local days a date trigger's run at ``now`` covers: from the day of the run that was due (``due``) to the
    last day whose time has come by ``now`` — not today before its time (today's run comes then, and would
    enrol today's customers a second time)."""
    zone = ZoneInfo(timezone)
    hour, minute = (int(part) for part in (trigger.time or "00:00").split(":"))
    today = now.astimezone(zone).date()
    todays = datetime(today.year, today.month, today.day, hour, minute, tzinfo=zone).astimezone(UTC)
    return due.astimezone(zone).date(), today if todays <= now else today - timedelta(days=1)


def dated_customers(org_id: int, trigger: schemas.Trigger, days: list[date], dialect: str) -> Any:
    """A SELECT of the organisation's customers a date trigger enrols on ``days`` (local days): those whose profile
    date, ``offset_days`` later, is one of them — its anniversary each year if ``yearly`` (a 29 February on the
    28th in other years). One scan comparing the date's ISO text (``MM-DD``, or the whole date), which reads the
    same in both databases, whether the date is a column or a JSON attribute."""
    offset = timedelta(days=trigger.offset_days or 0)
    targets = [day - offset for day in days]
    field = trigger.field or "birthday"
    if field != "birthday":
        text: Any = Profile.attributes[field.removeprefix("attributes.")].as_string()  # ISO text already
    elif dialect == "postgresql":  # its ISO spelling whatever the server's DateStyle
        text = func.to_char(Profile.birthday, "YYYY-MM-DD")
    else:
        text = cast(Profile.birthday, String)  # SQLite keeps a date as its ISO text
    if trigger.yearly:
        wanted = {target.strftime("%m-%d") for target in targets}
        wanted |= {"02-29" for target in targets if (target.month, target.day) == (2, 28)
                   and not calendar.isleap(target.year)}
        picked = func.substr(text, 6, 5).in_(sorted(wanted))
    else:
        picked = func.substr(text, 1, 10).in_(sorted(target.isoformat() for target in targets))
    return select(Profile.id).where(Profile.org_id == org_id, Profile.merged_into_id.is_(None), picked)


def _anniversary(day: date, year: int) -> date:
    """``day``'s anniversary in ``year`` (29 February: the 28th in other years)."""
    try:
        return day.replace(year=year)
    except ValueError:
        return day.replace(year=year, day=28)


def profile_dates(session: Session, field: str, profile_ids: list[int]) -> dict[int, date | None]:
    """A date field of these customers' profiles: ``birthday`` or ``attributes.<key>`` (stored as ISO text)."""
    if not profile_ids:
        return {}
    if field == "birthday":
        return dict(session.execute(select(Profile.id, Profile.birthday).where(Profile.id.in_(profile_ids))).all())
    key = field.removeprefix("attributes.")
    found: dict[int, date | None] = {}
    for profile_id, value in session.execute(select(Profile.id, Profile.attributes[key].as_string())
                                             .where(Profile.id.in_(profile_ids))):
        try:
            found[profile_id] = date.fromisoformat(value[:10]) if value else None
        except ValueError:  # not a date after all: as if there were none
            found[profile_id] = None
    return found


def arrive_by_dates(session: Session, journey: Journey, node: schemas.WaitUntilNode, ids: list[int],
                    now: datetime) -> None:
    """Each of the walks ``ids``, at a wait until a profile's date, due at its customer's moment (one UPDATE by
    primary key for them all)."""
    if not ids or node.field is None:
        return
    walks = dict(session.execute(select(Enrolment.id, Enrolment.profile_id).where(Enrolment.id.in_(ids))).all())
    dates = profile_dates(session, node.field, sorted(set(walks.values())))
    timezone = org_timezone(session, journey.org_id)
    session.execute(update(Enrolment), [{"id": walk_id, "due_at": wait_until(node, now, timezone,
                                                                             dates.get(profile_id))}
                                        for walk_id, profile_id in walks.items()])


def date_field_problems(session: Session, org_id: int, field: str, at: str) -> list[FieldError]:
    """A wait's profile date must be a date field of the customers. One of personal data (a birthday) may be used
    by a marketer who sees it masked: the walks' due times there are hidden from such readers
    (results.enrolments_out), as the value is."""
    personal = PersonalData.of(session, org_id)
    kind: str | None
    if field == "birthday":
        kind = "date"
    elif field.startswith("attributes."):
        defined = personal.defined.get(field.removeprefix("attributes."))
        kind = defined.type if defined is not None else None
    else:
        kind = None
    if kind != "date":
        return [FieldError(at, f"{field!r} is no date field of the customers", "date_field")]
    return []


def timing_of(node: Any) -> tuple[Any, ...]:
    """What decides when a node acts on a customer: a node whose kind or timing changed starts over for those at it."""
    if node.type in TIMED:
        return (node.type, node.seconds, *waited_for(node))
    if node.type == "wait_until":
        return (node.type, node.time, tuple(node.weekdays), node.date, node.field, node.offset_days, node.yearly)
    return (node.type,)


def waited_for(node: Any) -> tuple[Any, ...]:
    """The event a wait for an event waits for (nothing for other nodes)."""
    return (node.event, sorted(node.properties.items())) if node.type == "wait_for_event" else ()
