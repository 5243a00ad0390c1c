"""Test harness: a real database per test worker (SQLite file, or PostgreSQL with KEHU_TEST_DATABASE_URL),
migrated with Alembic once, emptied after every test. Nothing of our own database is faked."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.orm import Session

import kehu.models  # noqa: F401
from kehu.app import create_app
from kehu.core.db import Base, Database, migrate, recreate_database
from kehu.core.security import use_fast_password_hashing
from kehu.core.settings import Settings
from tests.factories.tenancy import OrgTree, build_org_tree

with warnings.catch_warnings():  # Starlette nudges towards httpx2; the test client works as it is
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

use_fast_password_hashing()
# The tests make and drop an app after another (and start servers of their own): a frozen app's cycles would never
# be freed (kehu.app: freeze_startup_objects). tests/core/test_startup_objects.py turns it on where it tests it.
os.environ.setdefault("KEHU_FREEZE_STARTUP_OBJECTS", "false")


def _worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _postgres_url(base_url: str) -> str:
    """A database of our own per xdist worker, created fresh on the server behind ``base_url``."""
    url = make_url(base_url)
    return recreate_database(url.set(database=f"{url.database}_kehu_{_worker_id()}").render_as_string(
        hide_password=False))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    base = os.environ.get("KEHU_TEST_DATABASE_URL")
    if base:
        return _postgres_url(base)
    path: Path = tmp_path_factory.mktemp("db") / f"kehu-{_worker_id()}.db"
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    migrate(db)
    yield db
    db.dispose()


def _empty_all_tables(database: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with database.engine.begin() as connection:
        if database.is_sqlite:
            for name in tables:
                connection.execute(text(f'DELETE FROM "{name}"'))
        else:
            connection.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in tables) + " RESTART IDENTITY CASCADE"))


@pytest.fixture
def clean_database(database: Database) -> Iterator[Database]:
    yield database
    _empty_all_tables(database)


@pytest.fixture
def session(clean_database: Database) -> Iterator[Session]:
    with clean_database.sessionmaker() as s:
        yield s


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, secret_key="test-secret-" + "x" * 40,
                    login_free_failures=3, embedded_worker=False, job_backoff_seconds=0.0, job_lease_seconds=5,
                    api_docs="open", metrics="open")  # tests read the schema; production settings guard both


@pytest.fixture
def app(settings: Settings, clean_database: Database):  # type: ignore[no-untyped-def]
    return create_app(settings, clean_database, with_ui=False, embedded_worker=False)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def tree(session: Session) -> OrgTree:
    """示范汽车集团 in miniature: HQ → East (dealers A, B) and North (dealer C), with staff."""
    tree = build_org_tree(session)
    session.commit()
    return tree


@pytest.fixture
def login(client: TestClient):  # type: ignore[no-untyped-def]
    """Sign in through the real token endpoint and return Authorization headers."""

    def _login(email: str, password: str = "correct-horse-1") -> dict[str, str]:
        response = client.post("/api/v1/auth/token", data={"username": email, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return _login
