"""Reader sessions (unit_of_work's ``reader``, the sessions of routes that only read): their repeated lookups are
prepared on PostgreSQL, nobody else's are; what a reader route writes on the way is still committed."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from kehu.core.db import READER_PREPARE_THRESHOLD, Database
from kehu.tenancy.models import ApiKey, BusinessUnit, User


def _prepared(session, table: str) -> int:  # type: ignore[no-untyped-def]
    """Statements prepared on this session's connection that read ``table``."""
    return session.execute(text("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE :pattern"),
                           {"pattern": f"%FROM {table} %"}).scalar_one()


def test_a_readers_repeated_lookups_are_prepared_and_nobody_elses(clean_database: Database, tree) -> None:
    if clean_database.is_sqlite:
        pytest.skip("prepared statements are PostgreSQL's")
    with clean_database.unit_of_work(reader=True) as session:
        for _ in range(READER_PREPARE_THRESHOLD + 2):
            assert session.scalar(select(BusinessUnit.name).where(BusinessUnit.id == tree.dealer_a.id))
        assert _prepared(session, "business_units") == 1
    # The same connection (the pool hands back the last one) in a session that writes: planned afresh each time,
    # as an import's lookups over a growing table must be.
    with clean_database.unit_of_work() as session:
        for _ in range(READER_PREPARE_THRESHOLD + 2):
            assert session.scalar(select(User.email).where(User.id == tree.a_sales.id))
        assert _prepared(session, "users") == 0
        assert session.connection().connection.driver_connection.prepare_threshold is None


def test_what_a_reading_route_writes_on_the_way_is_kept(client, login, session, tree) -> None:  # type: ignore[no-untyped-def]
    """GET /me only reads, without a transaction; an API key's first use is still recorded."""
    admin = login("admin@example.com")
    created = client.post("/api/v1/api-keys", headers=admin, json={"name": "数据仓库同步", "role": "hq_analyst"})
    assert created.status_code == 201, created.text
    assert client.get("/api/v1/me", headers={"X-API-Key": created.json()["key"]}).status_code == 200
    session.expire_all()
    assert session.get(ApiKey, created.json()["id"]).last_used_at is not None  # type: ignore[union-attr]


def test_a_reading_route_that_fails_leaves_the_next_request_whole(client, login, tree) -> None:  # type: ignore[no-untyped-def]
    sales = login("a.sales@example.com")
    assert client.get("/api/v1/customers/987654321", headers=sales).status_code == 404
    assert client.get("/api/v1/customers?cursor=not-a-cursor", headers=sales).status_code == 422
    for _ in range(3):
        assert client.get("/api/v1/me", headers=sales).status_code == 200
        assert client.get("/api/v1/customers", headers=sales).status_code == 200
