"""A web server's statements plan without PostgreSQL's parallel workers (Settings.server_parallel_workers): under
many users every core is busy, and a parallel plan spends three processes' CPU on one request. Other processes of
the same database keep the database's own setting."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from kehu.app import create_app
from kehu.core.db import Database


def _planned_with(database: Database) -> str:
    with database.engine.connect() as connection:
        return str(connection.execute(text("SHOW max_parallel_workers_per_gather")).scalar())


@pytest.fixture
def own_database(database_url: str):  # type: ignore[no-untyped-def]
    if not database_url.startswith("postgresql"):
        pytest.skip("parallel query is PostgreSQL's")
    made = Database(database_url, pool_size=2)
    yield made
    made.dispose()


def test_a_servers_connections_plan_without_parallel_workers(settings, own_database):  # type: ignore[no-untyped-def]
    untouched = Database(own_database.url, pool_size=1)
    create_app(settings, database=own_database, with_ui=False)
    assert _planned_with(own_database) == "0"
    assert _planned_with(untouched) != "0"  # a worker's, or anyone else's: the database's own setting
    untouched.dispose()


def test_the_limit_is_a_setting(settings, own_database):  # type: ignore[no-untyped-def]
    create_app(settings.model_copy(update={"server_parallel_workers": 1}), database=own_database, with_ui=False)
    assert _planned_with(own_database) == "1"
    keeps = Database(own_database.url, pool_size=1)
    create_app(settings.model_copy(update={"server_parallel_workers": -1}), database=keeps, with_ui=False)
    assert _planned_with(keeps) != "0"
    keeps.dispose()


def test_a_connection_opened_before_follows_too(settings, own_database):  # type: ignore[no-untyped-def]
    """``kehu serve`` checks the schema (a connection kept in the pool) before it makes the app."""
    assert _planned_with(own_database) != "0"
    create_app(settings, database=own_database, with_ui=False)
    assert [_planned_with(own_database) for _ in range(3)] == ["0", "0", "0"]
    create_app(settings.model_copy(update={"server_parallel_workers": -1}), database=own_database, with_ui=False)
    assert _planned_with(own_database) != "0"
