"""A worker's transaction that reads and then writes is not refused because another process wrote meanwhile
(SQLite): the e2e server's inbox poller logged "database is locked" beside a page's own writes."""

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from kehu.core.db import Database


@pytest.fixture
def two_writers(tmp_path: Path) -> tuple[Database, str]:
    path = tmp_path / "w.db"
    database = Database(f"sqlite:///{path}")
    with database.unit_of_work() as session:
        session.execute(text("CREATE TABLE t (n INTEGER)"))
        session.execute(text("INSERT INTO t VALUES (1)"))
    return database, str(path)


def _read_then_write(database: Database, path: str, *, writer: bool) -> None:
    with database.unit_of_work(writer=writer) as session:
        session.execute(text("SAVEPOINT s"))  # a nested transaction, as drain_inbox's batches are
        assert session.execute(text("SELECT count(*) FROM t")).scalar_one() >= 1
        other = sqlite3.connect(path, timeout=0.5)  # another process writes now, if it can
        try:
            other.execute("INSERT INTO t VALUES (2)")
            other.commit()
        except sqlite3.OperationalError:
            pass  # the writer holds the lock: the other process waits its turn
        finally:
            other.close()
        session.execute(text("INSERT INTO t VALUES (3)"))
        session.execute(text("RELEASE SAVEPOINT s"))


def test_a_writer_transaction_keeps_its_write_after_another_process_wrote(two_writers: tuple[Database, str]) -> None:
    database, path = two_writers
    _read_then_write(database, path, writer=True)
    with database.unit_of_work() as session:
        assert session.execute(text("SELECT count(*) FROM t WHERE n = 3")).scalar_one() == 1
    database.dispose()


def test_without_the_write_lock_the_same_transaction_is_refused(two_writers: tuple[Database, str]) -> None:
    """What the poller ran into: the snapshot read before another process's write cannot write."""
    database, path = two_writers
    with pytest.raises(OperationalError, match="locked"):
        _read_then_write(database, path, writer=False)
    database.dispose()


def test_an_idle_worker_takes_no_write_lock(clean_database: Database) -> None:
    """With nothing in the inbox, the worker's tick only looks: a page's long write (another process holding
    SQLite's one write lock) does not make the idle worker wait for the lock, or fail after the busy timeout."""
    import time

    from kehu.cdp.service import drain_inbox

    if not clean_database.is_sqlite:
        pytest.skip("PostgreSQL has no database-wide write lock")
    holder = sqlite3.connect(clean_database.url.split("///", 1)[1], timeout=0.5)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process is writing, for as long as it likes
        started = time.monotonic()
        assert drain_inbox(clean_database) is False
        assert time.monotonic() - started < 2
    finally:
        holder.rollback()
        holder.close()
