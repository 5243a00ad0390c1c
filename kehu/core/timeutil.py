"""Times are stored in UTC and shown in the organisation's time zone."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kehu.core.errors import invalid


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise invalid("timezone", f"unknown time zone {name!r}") from exc


def local(ts: datetime | None, tz_name: str) -> datetime | None:
    return None if ts is None else ts.astimezone(zone(tz_name))


def format_local(ts: datetime | None, tz_name: str, with_seconds: bool = False) -> str:
    value = local(ts, tz_name)
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


def aware(ts: datetime | None, tz_name: str = "UTC") -> datetime | None:
    """A timestamp given without a zone is read in ``tz_name`` (the organisation's zone for people's input)."""
    if ts is None or ts.tzinfo is not None:
        return ts
    return ts.replace(tzinfo=zone(tz_name))


def add_working_hours(start: datetime, hours: float, *, opens: time, closes: time, days: Collection[int],
                      tz_name: str) -> datetime:
    """``start`` plus ``hours`` counted only while open: from ``opens`` to ``closes`` on ``days`` (0 is
    Monday) by the wall clock of ``tz_name``. A start outside the hours counts from the next opening."""
    tz = zone(tz_name)
    at = start.astimezone(tz)
    remaining = timedelta(hours=hours)
    day = at.date()
    for _ in range(800):  # two years without an open day is a misconfiguration, not a reason to loop forever
        if day.weekday() in days:
            begin = max(datetime.combine(day, opens, tz), at)
            end = datetime.combine(day, closes, tz)
            if begin < end:
                if remaining <= end - begin:
                    return (begin + remaining).astimezone(UTC)
                remaining -= end - begin
        day += timedelta(days=1)
    raise ValueError("no working hours on any day")
