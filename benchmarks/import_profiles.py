"""CSV import of profiles (DESIGN.md §6): ≥ 20,000 rows/s with validation and identity resolution, reported
against two COPY baselines measured in the same run:

- ``copy_file``: the raw file into a table of text columns (what the database can swallow unparsed);
- ``copy_output``: exactly the rows the import wrote (profiles, identities, events), copied into empty twins
  of those tables with the same indexes and the identities' foreign key. No import that stores these rows
  can beat it, so ``ratio_to_output`` says how much of the time is kehu's own work."""

from __future__ import annotations

import io
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import default_size, fresh_database, machine

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
        cursor.execute("ALTER TABLE twin_identities ADD FOREIGN KEY (profile_id) REFERENCES twin_profiles (id)")
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


def run(database_url: str | None = None, size: int | None = None) -> dict[str, Any]:
    import kehu.models  # noqa: F401
    from kehu.app import make_worker
    from kehu.cdp import imports
    from kehu.cdp.models import ImportRun, Profile
    from kehu.core.db import Database, migrate
    from kehu.core.settings import Settings
    from kehu.tenancy import service as tenancy_service

    url = fresh_database(database_url)
    size = size or default_size(url, postgres=50_000, sqlite=10_000)
    database = Database(url)
    migrate(database)
    content = make_csv(size)
    with database.unit_of_work() as session:
        org = tenancy_service.create_organization(session, name="Bench", slug="bench")
        system = tenancy_service.system_principal(session, org.id)
        started = time.perf_counter()
        run_row = imports.upload(session, system, filename="bench.csv", content=content)
        imports.start(session, system, run_row.id)
        run_id = run_row.id
    worker = make_worker(database, Settings(database_url=url))
    while worker.run_once():
        pass
    elapsed = time.perf_counter() - started
    with database.sessionmaker() as session:
        done = session.get(ImportRun, run_id)
        accepted, rejected = done.accepted_rows, done.rejected_rows
        profiles = session.scalar(select(func.count()).select_from(Profile))
    rate = size / elapsed
    baseline = copy_rate(url, content)
    floor = copy_output_rate(url, org.id, size)
    database.dispose()
    return {
        "target": "CSV import of profiles",
        "data_size": {"rows": size, "bytes": len(content)},
        "kehu": {"rows_per_s": round(rate), "accepted": accepted, "rejected": rejected, "profiles": profiles,
                 "seconds": round(elapsed, 1)},
        "baseline": {"copy_file_rows_per_s": round(baseline) if baseline else None,
                     "copy_output_rows_per_s": round(floor) if floor else None},
        "ratio": round(rate / baseline, 3) if baseline else None,
        "ratio_to_output": round(rate / floor, 3) if floor else None,
        "pass": bool(rate >= TARGET_ROWS_PER_S and accepted + rejected == size),
        "criteria": f">= {TARGET_ROWS_PER_S} rows/s with validation and One ID; every row accepted or reported",
        "machine": machine(url),
    }


if __name__ == "__main__":
    print(json.dumps(run(*(sys.argv[1:2] or [None])), ensure_ascii=False, indent=2))
