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


def test_the_busiest_reads_reach_the_thread_pool_once(client, login, tree, clean_database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The customer list (and search) and the Customer 360 make their principal in the same trip to the thread pool
    as their answer: each trip wakes a thread and hands the interpreter to it and back."""
    if clean_database.is_sqlite:
        pytest.skip("SQLite's sessions are opened and closed in the thread pool too")
    import anyio.to_thread

    sales = login("a.sales@example.com")
    made = client.post("/api/v1/customers", headers=sales, json={"name": "林小姐", "mobile": "13900139123"})
    assert made.status_code == 201, made.text
    trips: list[object] = []
    real = anyio.to_thread.run_sync

    async def counted(function, *args, **kwargs):  # type: ignore[no-untyped-def]
        trips.append(function)
        return await real(function, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    for url in ("/api/v1/customers", "/api/v1/customers?q=林", f"/api/v1/customers/{made.json()['id']}"
                "?include=identities,timeline"):
        trips.clear()
        answered = client.get(url, headers=sales)
        assert answered.status_code == 200, answered.text
        assert len(trips) == 1, (url, trips)
    trips.clear()
    assert client.get("/api/v1/customers", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    assert trips == []  # a token that is no token is refused on the event loop
