"""Bulk writes (COPY on PostgreSQL, multi-row INSERT on SQLite) keep every value exactly: tabs, newlines,
backslashes, Chinese, JSON, NULLs, time zones; replays are skipped, not doubled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select

from kehu.cdp.models import Event
from kehu.core.db import COPY_THRESHOLD, insert_ignoring_conflicts, insert_returning_ids
from kehu.tenancy.models import Organization

TRICKY = "tab\there, line\nbreak, back\\slash, \\N, 中文，“引号”, emoji 🚗"


def event(n: int) -> dict:  # type: ignore[type-arg]
    ts = datetime(2026, 1, 1, 8, 0, tzinfo=timezone(timedelta(hours=8))) + timedelta(minutes=n)
    return {"org_id": 1, "source_id": 1, "message_id": f"m-{n}\t{TRICKY}"[:100], "type": "track",
            "event": TRICKY[:200], "ts": ts, "received_at": ts, "identity_id": 1, "profile_id": 1,
            "properties": {"text": TRICKY, "n": n, "nested": {"list": [1, None, "\\\\"]}, "none": None},
            "context": {}}


def test_bulk_appends_keep_every_value_and_skip_replays(session):
    rows = [event(n) for n in range(COPY_THRESHOLD + 50)]
    assert insert_ignoring_conflicts(session, Event, rows, ["source_id", "message_id"]) == len(rows)
    assert insert_ignoring_conflicts(session, Event, rows[:COPY_THRESHOLD + 10], ["source_id", "message_id"]) == 0
    session.commit()
    stored = {e.message_id: e for e in session.scalars(select(Event))}
    assert len(stored) == len(rows)
    for row in rows[:3] + rows[-3:]:
        got = stored[row["message_id"]]
        assert got.event == TRICKY and got.properties == row["properties"]
        assert got.ts == row["ts"].astimezone(UTC)


def test_inserted_rows_get_their_ids_in_order(session):
    rows = [{"name": f"组织 {n}\t{TRICKY}"[:100], "slug": f"org-{n}", "timezone": "Asia/Shanghai",
             "default_locale": "zh"} for n in range(5)]
    ids = insert_returning_ids(session, Organization.__table__, rows)
    session.commit()
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert [session.get(Organization, i).slug for i in ids] == [r["slug"] for r in rows]
