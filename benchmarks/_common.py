"""Shared bits of the benchmarks: a fresh database, machine facts, a kehu server in a subprocess."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, make_url, text

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/kehu_bench"


def fresh_database(url: str | None, scratch: str | None = None) -> str:
    """Drop and create the benchmark database (PostgreSQL) or start a new SQLite file. ``scratch`` names a
    database of its own on the default server (``kehu_bench_<scratch>``) for a benchmark that makes its own
    data, so the generated million that ``--reuse`` benchmarks measure on survives it (``kehu bench all``)."""
    if url is None and scratch and not os.environ.get("KEHU_BENCH_DATABASE_URL"):
        url = make_url(DEFAULT_URL).set(database=f"kehu_bench_{scratch}").render_as_string(hide_password=False)
    url = url or os.environ.get("KEHU_BENCH_DATABASE_URL") or DEFAULT_URL
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database or "bench.db").unlink(missing_ok=True)
        return url
    from kehu.core.db import recreate_database

    return recreate_database(url)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def default_size(url: str, *, postgres: int, sqlite: int) -> int:
    """Benchmarks run at full size on PostgreSQL and at a smaller one on SQLite (one writer, one laptop)."""
    return sqlite if is_sqlite(url) else postgres


def machine(url: str) -> dict[str, object]:
    engine = create_engine(url)
    with engine.connect() as connection:
        version = connection.execute(text(
            "SELECT version()" if engine.dialect.name == "postgresql" else "SELECT sqlite_version()")).scalar()
    engine.dispose()
    return {"cores": os.cpu_count(), "python": platform.python_version(), "database": engine.dialect.name,
            "database_version": str(version).split(" on ")[0]}


def cpu_seconds(pids: list[int] | None = None) -> float | None:
    """CPU time (user + system) used so far by the processes ``pids`` or, without pids, by the local
    PostgreSQL server's processes (Linux /proc; None where it cannot be read). Read before and after a
    timed step, it says where the step's time went: our Python or the database."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in ([proc / str(p) for p in pids] if pids is not None else proc.iterdir()):
        try:
            if pids is None and not (entry / "cmdline").read_bytes().startswith(b"postgres"):
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def wait_until_idle(pids: list[int], *, busy_below: float = 0.5, timeout: float = 120) -> None:
    """Wait until the processes ``pids`` have done starting: a `kehu worker` spends seconds importing its
    code on a slow machine (a whole core), then only polls for jobs — at the benchmarks' 0.05 s poll, with
    every domain's pollers, about 30 % of a core. Without /proc, a fixed few seconds."""
    if cpu_seconds(pids) is None:
        time.sleep(3)
        return
    deadline = time.monotonic() + timeout
    before = cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(pids)
        if now is not None and before is not None and now - before < busy_below * 0.5 * len(pids):
            return
        before = now
    raise RuntimeError(f"processes {pids} were still busy after {timeout} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def kehu_process(url: str, *args: str, workdir: Path, env: dict[str, str] | None = None,
                 wait_for: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m kehu ARGS` against ``url``; waits for ``wait_for`` (a URL) to answer 200."""
    environment = {**os.environ, "KEHU_DATABASE_URL": url, "KEHU_DATA_DIR": str(workdir),
                   "KEHU_LOG_LEVEL": "WARNING", **(env or {})}
    log = open(workdir / f"{args[0]}-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", "kehu", *args], env=environment, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        if wait_for:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    if httpx.get(wait_for, timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                raise RuntimeError(f"kehu {args[0]} did not start; see {log.name}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def demo_data(url: str | None, size: int | None, *, reuse: bool, postgres: int, sqlite: int,
              seed: int, dealers: int | None = None) -> tuple[str, int, dict[str, int | None]]:
    """The demo group with ``size`` generated customers (the database, the organisation, the data's size):
    made now in a fresh database, or — ``reuse`` — found where an earlier run left it (generating a million
    customers takes a quarter of an hour). Settled either way, as autovacuum would leave it. ``dealers``: grow
    the network to that many dealers (with their staff) before the customers are spread over it."""
    import kehu.models  # noqa: F401 - every table registered
    from kehu.core.db import Database, migrate
    from kehu.demo.generate import generate
    from kehu.demo.seed import seed_demo
    from kehu.tenancy.models import Organization

    if reuse:
        found = url or os.environ.get("KEHU_BENCH_DATABASE_URL") or DEFAULT_URL
        database = Database(found)
        try:
            migrate(database)  # data generated before newer tables existed gets them
            with database.unit_of_work() as session:
                org_id = session.query(Organization.id).filter_by(slug="demo").scalar()
                counts = {name: session.execute(text(f"SELECT count(*) FROM {name}")).scalar() or 0
                          for name in ("profiles", "events")}
        except Exception:  # no such database or no tables yet: generate below
            org_id, counts = None, {}
        if org_id and counts.get("profiles"):
            settle(database)
            database.dispose()
            return found, org_id, {"customers": None, **counts}
        database.dispose()
    url = fresh_database(url)
    database = Database(url)
    migrate(database)
    with database.unit_of_work() as session:
        seed_demo(session)
        org_id = session.query(Organization.id).filter_by(slug="demo").scalar()
        if dealers:
            from kehu.demo.network import grow_network

            grow_network(session, org_id, dealers=dealers)
    made = generate(database, org_id, customers=size or default_size(url, postgres=postgres, sqlite=sqlite),
                    seed=seed)
    settle(database)
    database.dispose()
    return url, org_id, {"customers": made.customers, "profiles": made.profiles, "events": made.events}


def settle(database: object) -> None:
    """VACUUM ANALYZE after a bulk load, as autovacuum would do before long: statistics for the planner, and
    the visibility map that lets index-only scans skip the table (a fresh load makes them read every row)."""
    if database.is_sqlite:  # type: ignore[attr-defined]
        return
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:  # type: ignore[attr-defined]
        connection.exec_driver_sql("VACUUM ANALYZE")


def percentiles(values: list[float], counted_as: str = "count") -> dict[str, float]:
    """p50, p95, p99 and the worst of ``values`` (seconds, two decimals), and how many there were."""
    values = sorted(values)
    if not values:
        return {}

    def at(share: float) -> float:
        return values[min(len(values) - 1, int(share * len(values)))]

    return {"p50": round(at(0.5), 2), "p95": round(at(0.95), 2), "p99": round(at(0.99), 2),
            "max": round(values[-1], 2), counted_as: len(values)}
