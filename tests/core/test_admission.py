"""A crowd larger than the database pool is served in turn: API requests are admitted no faster than the server
has connections for them, so a request never holds a connection while it waits for a thread that waits for one."""

from __future__ import annotations

import asyncio

import anyio.to_thread
import httpx
from fastapi.testclient import TestClient

from kehu.app import create_app
from kehu.core.db import Database

THREADS = 2
CROWD = 40


def test_a_crowd_larger_than_the_pool_is_served_in_turn(settings, clean_database, tree):  # type: ignore[no-untyped-def]
    database = Database(clean_database.url, pool_size=THREADS)  # 2 + 4 spare connections for 40 people
    # a request that waits for a connection fails after 5 s instead of the pool's 30 (it used to: all of them)
    database.engine.pool._timeout = 5  # type: ignore[attr-defined]
    app = create_app(settings.model_copy(update={"threads": THREADS}), database, with_ui=False,
                     embedded_worker=False)
    with TestClient(app) as client:
        token = client.post("/api/v1/auth/token", data={"username": "east@example.com",
                                                        "password": "correct-horse-1"}).json()["access_token"]

    async def crowd() -> list[int]:
        # what the server's lifespan sets: as many worker threads as settings.threads
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kehu", timeout=60) as http:
            answers = await asyncio.gather(*(http.get("/api/v1/customers", headers={
                "Authorization": f"Bearer {token}"}) for _ in range(CROWD)))
        return [a.status_code for a in answers]

    try:
        assert asyncio.run(crowd()) == [200] * CROWD
    finally:
        database.dispose()
