"""CSV import of profiles (DESIGN.md §6): ≥ 20,000 rows/s with validation and identity resolution, reported
against two COPY baselines measured in the same run:

- ``copy_file``: the raw file into a table of text columns (what the database can swallow unparsed);
- ``copy_output``: exactly the rows the import wrote (profiles, identities, events), copied into empty twins
  of those tables with the same indexes. No import that stores these rows
  can beat it, so ``ratio_to_output`` says how much of the time is kehu's own work."""

from __future__ import annotations

import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_seconds, default_size, fresh_database, is_sqlite, kehu_process, machine, wait_until_idle

TARGET_ROWS_PER_S = 20_000


def make_csv(rows: int, seed: int = 7) -> bytes:
    from kehu.demo.customers import _person

    rng = random.Random(seed)
    out = io.StringIO()
    out.write("姓名,手机,邮箱,性别,生日,城市\n")
    for _ in range(rows):
        p = _person(rng)
        out.write(f"{p['name']},{p['mobile']},{p['email'] or ''},{'男' if p['gender'] == 'male' else '女'},"
                  f"{p['birthday']},上海\n")
    return out.getvalue().encode()


def copy_rate(url: str, content: bytes) -> float | None:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    if engine.dialect.name != "postgresql":  # SQLite has no COPY: its bulk path, executemany in one transaction
        import csv

        records = [tuple(r) for r in csv.reader(io.StringIO(content.decode()))][1:]
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE IF EXISTS bench_copy")
            connection.exec_driver_sql("CREATE TABLE bench_copy (name text, mobile text, email text, gender text, "
                                       "birthday text, city text)")
        started = time.perf_counter()
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO bench_copy VALUES (?, ?, ?, ?, ?, ?)", records)
        elapsed = time.perf_counter() - started
        engine.dispose()
        return len(records) / elapsed
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (name text, mobile text, "
                       "email text, gender text, birthday text, city text)")
        started = time.perf_counter()
        with cursor.copy("COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            copy.write(content)
        raw.commit()
        elapsed = time.perf_counter() - started
    finally:
        raw.close()
        engine.dispose()
    return (content.count(b"\n") - 1) / elapsed


OUTPUT_TABLES = ("profiles", "identities", "events")


def copy_output_rate(url: str, org_id: int, rows: int) -> float | None:
    """Rows of the file per second when only COPYing what the import wrote, into fresh twin tables."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    if engine.dialect.name != "postgresql":
        return None
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        dumps = {}
        for table in OUTPUT_TABLES:
            buffer = io.BytesIO()
            with cursor.copy(f"COPY (SELECT * FROM {table} WHERE org_id = {org_id}) TO STDOUT") as copy:
                for block in copy:
                    buffer.write(block)
            dumps[table] = buffer.getvalue()
            cursor.execute(f"DROP TABLE IF EXISTS twin_{table}; CREATE TABLE twin_{table} "
                           f"(LIKE {table} INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS)")
        raw.commit()
        started = time.perf_counter()
        for table in OUTPUT_TABLES:
            with cursor.copy(f"COPY twin_{table} FROM STDIN") as copy:
                copy.write(dumps[table])
        raw.commit()
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE twin_events, twin_identities, twin_profiles")
        raw.commit()
    finally:
        raw.close()
        engine.dispose()
    return rows / elapsed


def run(database_url: str | None = None, size: int | None = None, worker_processes: int = 2) -> dict[str, Any]:
    """Upload the file, then time from "start" until the run is done while ``worker_processes`` `kehu worker`
    processes (started and idle beforehand, as in a deployment) take its parts."""
    import kehu.models  # noqa: F401
    from kehu.cdp import imports
    from kehu.cdp.models import ImportRun, Profile
    from kehu.core.db import Database, migrate
    from kehu.core.jobs import Job
    from kehu.tenancy import service as tenancy_service

    url = fresh_database(database_url, scratch="import")
    size = size or default_size(url, postgres=100_000, sqlite=10_000)
    if is_sqlite(url):  # one writer
        worker_processes = 1
    database = Database(url)
    migrate(database)
    content = make_csv(size)
    with database.unit_of_work() as session:
        org = tenancy_service.create_organization(session, name="Bench", slug="bench")
        system = tenancy_service.system_principal(session, org.id)
        run_id = imports.upload(session, system, filename="bench.csv", content=content).id
    workdir = Path(tempfile.mkdtemp(prefix="kehu-bench-"))
    workers = [kehu_process(url, "worker", workdir=workdir, env={"KEHU_JOB_POLL_SECONDS": "0.05"})
               for _ in range(worker_processes)]
    worker_pids = [worker.__enter__().pid for worker in workers]
    try:
        wait_until_idle(worker_pids)  # the workers have started and are polling
        cpu_before = cpu_seconds(worker_pids), cpu_seconds()
        started = time.perf_counter()
        with database.unit_of_work() as session:
            imports.start(session, tenancy_service.system_principal(session, org.id), run_id)
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            with database.sessionmaker() as session:
                job_status = session.scalar(select(Job.status).join(ImportRun, ImportRun.job_id == Job.id)
                                            .where(ImportRun.id == run_id))
            if job_status in ("succeeded", "failed"):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        cpu_after = cpu_seconds(worker_pids), cpu_seconds()
    finally:
        for worker in workers:
            worker.__exit__(None, None, None)
    with database.sessionmaker() as session:
        done = session.get(ImportRun, run_id)
        accepted, rejected, status = done.accepted_rows, done.rejected_rows, done.status
        profiles = session.scalar(select(func.count()).select_from(Profile))
        parts = session.scalar(select(func.count()).select_from(Job).where(Job.parent_id == done.job_id))
    rate = size / elapsed
    baseline = copy_rate(url, content)
    floor = copy_output_rate(url, org.id, size)
    database.dispose()
    return {
        "target": "CSV import of profiles",
        "data_size": {"rows": size, "bytes": len(content), "parts": parts, "worker_processes": worker_processes},
        "kehu": {"rows_per_s": round(rate), "status": status, "accepted": accepted, "rejected": rejected,
                 "profiles": profiles, "seconds": round(elapsed, 2),
                 # where the time went: CPU µs per row in the workers (Python) and in the database server
                 "cpu_us_per_row": {name: round((after - before) / size * 1e6, 1)
                                    for name, before, after in zip(("workers", "database"), cpu_before, cpu_after,
                                                                   strict=True)
                                    if before is not None and after is not None}},
        "baseline": {"copy_file_rows_per_s": round(baseline) if baseline else None,
                     "copy_output_rows_per_s": round(floor) if floor else None},
        "ratio": round(rate / baseline, 3) if baseline else None,
        "ratio_to_output": round(rate / floor, 3) if floor else None,
        "pass": bool(rate >= TARGET_ROWS_PER_S and accepted + rejected == size and status == "done"),
        "criteria": f">= {TARGET_ROWS_PER_S} rows/s with validation and One ID; every row accepted or reported",
        "machine": machine(url),
    }


if __name__ == "__main__":
    print(json.dumps(run(*(sys.argv[1:2] or [None])), ensure_ascii=False, indent=2))
