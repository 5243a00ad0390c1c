"""Bulk writes (COPY, or arrays for a small batch, on PostgreSQL; multi-row INSERT on SQLite) keep every value
exactly: tabs, newlines, backslashes, Chinese, JSON, NULLs, time zones; replays are skipped, not doubled."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select

from kehu.cdp.models import Event
from kehu.core.db import COPY_THRESHOLD, copy_rows, insert_ignoring_conflicts, insert_returning_ids, refresh_statistics
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


def test_small_batches_keep_every_value_and_skip_replays_too(session):
    """Below the COPY threshold (a /v1/batch call of 100 events): one INSERT from arrays on PostgreSQL."""
    rows = [event(n) for n in range(100)]
    rows[1] = {**rows[1], "properties": {}, "context": {"kehu_notes": ["a \"quoted\" note", "{braces}"]}}
    assert insert_ignoring_conflicts(session, Event, rows, ["source_id", "message_id"]) == 100
    assert insert_ignoring_conflicts(session, Event, [*rows[:10], event(500)], ["source_id", "message_id"]) == 1
    session.commit()
    stored = {e.message_id: e for e in session.scalars(select(Event))}
    assert len(stored) == 101
    for row in rows[:3] + rows[-3:]:
        got = stored[row["message_id"]]
        assert (got.event, got.properties, got.context) == (TRICKY, row["properties"], row["context"])
        assert got.ts == row["ts"].astimezone(UTC)


def test_inserted_rows_get_their_ids_in_order(session):
    rows = [{"name": f"组织 {n}\t{TRICKY}"[:100], "slug": f"org-{n}", "timezone": "Asia/Shanghai",
             "default_locale": "zh"} for n in range(5)]
    ids = insert_returning_ids(session, Organization.__table__, rows)
    session.commit()
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert [session.get(Organization, i).slug for i in ids] == [r["slug"] for r in rows]


def test_appends_of_new_rows_keep_values_and_each_distinct_time(session):
    rows = [event(n) for n in range(COPY_THRESHOLD + 5)]
    rows[1]["ts"] = rows[0]["ts"]  # equal times written twice, then a different one: each row keeps its own
    assert copy_rows(session, Event, rows) == len(rows)
    session.commit()
    stored = {e.message_id: e for e in session.scalars(select(Event))}
    assert [stored[r["message_id"]].ts for r in rows[:4]] == [r["ts"].astimezone(UTC) for r in rows[:4]]
    assert stored[rows[-1]["message_id"]].properties == rows[-1]["properties"]


def test_statistics_refreshed_once_a_table_outgrows_them(session):
    if session.get_bind().dialect.name != "postgresql":
        assert refresh_statistics(session, ["events"]) == []  # SQLite has nothing to refresh
        return
    # autovacuum would analyse the grown table on its own sooner or later: keep it out of this test
    session.connection().exec_driver_sql("ALTER TABLE events SET (autovacuum_enabled = false)")
    session.commit()
    try:
        session.connection().exec_driver_sql("ANALYZE events")
        assert refresh_statistics(session, ["events"]) == []  # analysed and unchanged
        copy_rows(session, Event, [event(n) for n in range(COPY_THRESHOLD + 1000)])
        session.commit()
        for _ in range(50):  # the server publishes a backend's counts when it is next idle
            session.connection().exec_driver_sql("SELECT pg_stat_force_next_flush()")
            session.commit()
            if session.connection().exec_driver_sql("SELECT n_mod_since_analyze FROM pg_stat_user_tables "
                                                    "WHERE relname = 'events'").scalar() > 1000:
                break
            session.commit()
            time.sleep(0.1)
        assert refresh_statistics(session, ["events", "no_such_table"]) == ["events"]
        session.commit()
        assert refresh_statistics(session, ["events"]) == []  # the planner now knows
    finally:
        session.rollback()
        session.connection().exec_driver_sql("ALTER TABLE events RESET (autovacuum_enabled)")
        session.commit()


def test_statistics_taken_of_an_empty_table_are_refreshed_as_soon_as_rows_arrive(session):
    """Two workers start an import at once: the first part analyses the empty table, the other's rows land a
    moment later. The next part must not plan its lookups for an empty table (a nested loop over every row
    per lookup) while the server's change counters still say nothing happened."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.connection().exec_driver_sql("ALTER TABLE events SET (autovacuum_enabled = false)")
    session.commit()
    try:
        session.connection().exec_driver_sql("ANALYZE events")
        session.commit()
        assert refresh_statistics(session, ["events"]) == []  # empty, and known to be
        copy_rows(session, Event, [event(n) for n in range(COPY_THRESHOLD)])
        session.commit()
        # at once: no waiting for the counters to be published
        assert refresh_statistics(session, ["events"]) == ["events"]
        assert session.connection().exec_driver_sql(
            "SELECT reltuples FROM pg_class WHERE relname = 'events'").scalar() == COPY_THRESHOLD
        assert refresh_statistics(session, ["events"]) == []
    finally:
        session.rollback()
        session.connection().exec_driver_sql("ALTER TABLE events RESET (autovacuum_enabled)")
        session.commit()
