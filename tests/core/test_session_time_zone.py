"""kehu's PostgreSQL sessions run in UTC, whatever the server's default zone: times are stored in UTC, SQL that
turns a timestamp into a day or a month without naming a zone reads it in UTC, and psycopg hands timestamps back in
``timezone.utc`` (under a named zone it converts every one through zoneinfo: half the CPU of reading a page of
customers)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from kehu.core.db import Database


@pytest.fixture
def own_database(database_url: str):  # type: ignore[no-untyped-def]
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite keeps no time zone")
    made = Database(database_url, pool_size=1)
    yield made
    made.dispose()


def test_a_session_runs_in_utc_and_reads_times_in_utc(own_database):  # type: ignore[no-untyped-def]
    with own_database.engine.connect() as connection:
        assert connection.execute(text("SHOW TimeZone")).scalar() == "UTC"
        # a late evening in Shanghai is the same day's afternoon in UTC, not the next day
        day = connection.execute(text("SELECT date_trunc('day', TIMESTAMPTZ '2026-03-01 23:30+08')::text")).scalar()
        assert day == "2026-03-01 00:00:00+00"
        read = connection.exec_driver_sql("SELECT TIMESTAMPTZ '2026-03-01 23:30+08'").scalar()
    assert read == datetime(2026, 3, 1, 15, 30, tzinfo=UTC)
    assert read.tzinfo is UTC  # as psycopg made it: no zoneinfo conversion on the way
