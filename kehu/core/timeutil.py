"""Times are stored in UTC and shown in the organisation's time zone."""

from __future__ import annotations

from datetime import datetime
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
