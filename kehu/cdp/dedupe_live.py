"""Duplicates found as customers arrive (issue 24): a new or changed customer — through /v1 (ingestion), an
import, the API or the UI — is compared with its candidates within seconds, and a likely twin joins the review
queue, instead of waiting for the next full run. The full run stays: it fits the model (the first one turns live
matching on) and rebuilds the stored keys.

How: every live profile's keys under its organisation's plan are stored (``blocking_keys``: an inverted index of
the blocks, see ``kehu.cdp.matching.live``). Two consumers follow what touches customers — the customers' own
events (each call through a source and each imported row writes one) and the domain events of records changed by
hand or through the API, merged or unmerged — and hand each batch's touched customers to ``follow``, which in the
consumer's transaction (exactly once with its cursor): reads them into DuckDB, skips those whose matching fields
did not change (their fingerprint is stored), writes the others' keys, looks up the customers sharing a key with
them (blocks larger than ``LIVE_BLOCK_LIMIT`` are left to the full run), reads those, scores every pair a rule
makes with the stored model and term frequencies counted from the stored keys, and queues the pairs at the review
threshold (auto-merging as the full run does). Pairs of a changed customer it no longer finds leave the queue, and
a customer merged away takes its keys and its open pairs with it. A batch is a few statements, whatever its size.

The same pairs as a full run: the rules, the comparisons, the model and the term frequencies are those a full run
would use on the same data (``tests/cdp/test_dedupe_live.py`` fails when they drift)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import delete, func, or_, select, tuple_
from sqlalchemy.orm import Session

from kehu.cdp import matching
from kehu.cdp.manifest import MERGE_UNDONE, PROFILE_CHANGED, PROFILE_MERGED
from kehu.cdp.matching import live
from kehu.cdp.matching.records import export_records, load_file
from kehu.cdp.models import BlockingKey, DedupeSettings, DuplicateCandidate, Event, Profile
from kehu.core import events
from kehu.core import settings as kehu_settings
from kehu.core.db import EveryRow, copy_columns, utcnow

LIVE_EVENTS = "cdp.dedupe_live_events"  # the consumer of customers' events (ingestion, imports)
LIVE_EDITS = "cdp.dedupe_live_edits"  # the consumer of records changed by hand or through the API, merged, unmerged
LIVE_BATCH = 5_000
CHUNK = 10_000  # ids or keys per statement (SQLite takes at most 32,766 parameters)
WRITE_CHUNK = 100_000  # keys per COPY when a full run rebuilds them
BLOCK_SHARE = 20  # a block of more than max_pairs_per_record × this many customers is left to the full run


def _matching_of(session: Session, org_id: int) -> tuple[tuple[matching.Comparison, ...], tuple[matching.Rule, ...]]:
    """The organisation's comparisons and blocking rules, as its matching settings say."""
    return matching.matching_of(session, org_id)


def attributes(comparisons: tuple[matching.Comparison, ...], blocking: live.Blocking) -> tuple[str, ...]:
    """The custom fields the comparisons and the stored plan's rules read (the records' cf_ columns)."""
    return matching.attributes_of(comparisons, [matching.Rule(name, (keys,)) for name, keys in blocking])


def block_limit() -> int:
    return BLOCK_SHARE * kehu_settings.get_settings().dedupe_max_pairs_per_record


def _chunks(values: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _load(session: Session, org_id: int, con: duckdb.DuckDBPyConnection, ids: Iterable[int], table: str,
          fields: tuple[str, ...]) -> int:
    """The live profiles among ``ids`` as the table ``table`` of ``con``, keys made, with the custom ``fields``
    (read in chunks of ids)."""
    with tempfile.TemporaryDirectory() as scratch:
        for number, chunk in enumerate(_chunks(sorted(ids))):
            export_records(session, org_id, Path(scratch) / f"part-{number:05d}.csv", ids=chunk, attributes=fields)
        if not any(Path(scratch).iterdir()):
            export_records(session, org_id, Path(scratch) / "part-00000.csv", ids=[], attributes=fields)
        return load_file(con, Path(scratch) / "part-*.csv", table=table, attributes=fields)


def _stream(con: duckdb.DuckDBPyConnection, query: str, size: int = WRITE_CHUNK) -> Iterator[list[tuple[Any, ...]]]:
    result = con.execute(query)
    while rows := result.fetchmany(size):
        yield rows


def _insert_keys(session: Session, org_id: int, rows: list[tuple[int, int]]) -> None:
    """(profile_id, key) rows that are not stored (COPY on PostgreSQL)."""
    if rows:
        copy_columns(session, BlockingKey.__table__, {"org_id": EveryRow(org_id), "key": [k for _, k in rows],
                                                      "profile_id": [p for p, _ in rows]})


def _delete_keys(session: Session, org_id: int, rows: list[tuple[int, int]]) -> None:
    """Stored (profile_id, key) rows that are no longer a profile's keys."""
    for chunk in _chunks(rows, 2_000 if session.get_bind().dialect.name == "sqlite" else CHUNK):
        session.execute(delete(BlockingKey).where(BlockingKey.org_id == org_id, tuple_(
            BlockingKey.profile_id, BlockingKey.key).in_(chunk)).execution_options(synchronize_session=False))


def _drop(session: Session, org_id: int, profile_ids: Iterable[int]) -> None:
    """The profiles' stored keys and their open pairs go (merged away: no longer a customer to match)."""
    for chunk in _chunks(profile_ids):
        session.execute(delete(BlockingKey).where(BlockingKey.profile_id.in_(chunk))
                        .execution_options(synchronize_session=False))
        session.execute(delete(DuplicateCandidate).where(
            DuplicateCandidate.org_id == org_id, DuplicateCandidate.status == "open",
            or_(DuplicateCandidate.profile_a_id.in_(chunk), DuplicateCandidate.profile_b_id.in_(chunk)))
            .execution_options(synchronize_session=False))


def _stored(session: Session, org_id: int, keys: Iterable[int]) -> list[tuple[int, int]]:
    """The stored (profile_id, key) rows of these keys."""
    found: list[tuple[int, int]] = []
    for chunk in _chunks(set(keys)):
        found += session.execute(select(BlockingKey.profile_id, BlockingKey.key).where(
            BlockingKey.org_id == org_id, BlockingKey.key.in_(chunk))).all()
    return found


def _counts(session: Session, org_id: int, keys: Iterable[int], *, among: set[int] | None = None) -> dict[int, int]:
    """How many profiles (of ``among``, or all) hold each of these keys (an index-only count)."""
    found: dict[int, int] = {}
    if among is not None:
        for chunk in _chunks(among):
            for key, n in session.execute(select(BlockingKey.key, func.count()).where(
                    BlockingKey.org_id == org_id, BlockingKey.key.in_(list(keys)), BlockingKey.profile_id.in_(chunk))
                    .group_by(BlockingKey.key)).all():
                found[key] = found.get(key, 0) + n
        return found
    for chunk in _chunks(set(keys)):
        found.update(session.execute(select(BlockingKey.key, func.count()).where(
            BlockingKey.org_id == org_id, BlockingKey.key.in_(chunk)).group_by(BlockingKey.key)).all())
    return found


def plan_stored(model: dict[str, Any]) -> live.Blocking | None:
    """The plan a full run stored with its model (None: a model fitted before live matching, or none yet)."""
    blocking = model.get("blocking") if model else None
    return [(name, tuple(keys)) for name, keys in blocking] if blocking else None


# -- a full run: the stored keys made anew --------------------------------------------------------------------
def rebuild_keys(session: Session, org_id: int, con: duckdb.DuckDBPyConnection, blocking: live.Blocking,
                 comparisons: tuple[matching.Comparison, ...], *, table: str = "records") -> dict[str, int]:
    """The organisation's stored keys made those of the full run's records (``table`` of ``con``: every live
    profile) under its new plan: the difference is written (a first run writes them all; a run on data that
    changed little, a little). Returns the counts."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE new_keys AS {live.all_keys_sql(con, blocking, comparisons, table)}")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "old_keys.csv"
        _export_keys(session, org_id, path)
        con.execute(f"CREATE OR REPLACE TEMP TABLE old_keys AS SELECT * FROM read_csv('{path}', header=false, "
                    "columns={'id': 'BIGINT', 'key': 'BIGINT'}, delim=',', auto_detect=false)")
    gone = added = 0
    for rows in _stream(con, "SELECT id, key FROM old_keys EXCEPT SELECT id, key FROM new_keys"):
        _delete_keys(session, org_id, rows)
        gone += len(rows)
    added_sql = "SELECT id, key FROM new_keys EXCEPT SELECT id, key FROM old_keys"
    if session.get_bind().dialect.name == "postgresql":
        added = _copy_sorted(session, org_id, con, added_sql)
    else:
        for rows in _stream(con, added_sql):
            _insert_keys(session, org_id, rows)
            added += len(rows)
    total = con.execute("SELECT count(*) FROM new_keys").fetchone()[0]  # type: ignore[index]
    con.execute("DROP TABLE new_keys; DROP TABLE old_keys")
    return {"keys": int(total), "keys_added": added, "keys_removed": gone}


def _copy_sorted(session: Session, org_id: int, con: duckdb.DuckDBPyConnection, query: str) -> int:
    """The (id, key) rows of ``query`` into the stored keys by one COPY of a file DuckDB writes, in the order of
    the keys (the primary key's index then grows at its ends instead of splitting pages all over): no row passes
    through Python. Returns how many."""
    driver = session.connection().connection.driver_connection
    assert driver is not None  # a live connection: psycopg's own
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "keys.csv"
        con.execute(f"COPY (SELECT {int(org_id)} AS org_id, key, id FROM ({query}) ORDER BY key) TO '{path}' "
                    "(FORMAT csv, HEADER false)")
        with path.open("rb") as rows, driver.cursor() as cursor:
            with cursor.copy("COPY blocking_keys (org_id, key, profile_id) FROM STDIN (FORMAT csv)") as copy:
                while chunk := rows.read(1 << 20):
                    copy.write(chunk)
            return int(cursor.rowcount)


def tf_totals(con: duckdb.DuckDBPyConnection, comparisons: tuple[matching.Comparison, ...],
              table: str = "records") -> dict[str, int]:
    """Each term-frequency column's count of records with a value (kept with the model, followed by each batch)."""
    return {column: int(con.execute(f"SELECT count({column}) FROM {table}").fetchone()[0])  # type: ignore[index]
            for column in live.tf_columns(comparisons)}


def _export_keys(session: Session, org_id: int, path: Path) -> None:
    """The organisation's stored (profile_id, key) rows to a file of two numbers a line (COPY on PostgreSQL)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        assert driver is not None  # a live connection: psycopg's own
        with path.open("wb") as out, driver.cursor() as cursor, cursor.copy(
                f"COPY (SELECT profile_id, key FROM blocking_keys WHERE org_id = {int(org_id)}) TO STDOUT "
                "(FORMAT csv)") as copy:
            for chunk in copy:
                out.write(chunk)
        return
    query = select(BlockingKey.profile_id, BlockingKey.key).where(BlockingKey.org_id == org_id)
    with path.open("w", encoding="ascii") as out:
        for rows in session.execute(query).yield_per(WRITE_CHUNK).partitions():
            out.write("".join(f"{profile_id},{key}\n" for profile_id, key in rows))


# -- live: a batch of touched customers -----------------------------------------------------------------------
def follow(session: Session, org_id: int, touched: Iterable[int], *, force: bool = False) -> dict[str, Any]:
    """Match the customers ``touched`` (created, changed, merged or unmerged since the last batch) against their
    candidates under the organisation's stored plan and model, and queue the pairs at the review threshold. Does
    nothing before a full run has fitted a model with its plan. ``force``: match them even where their fingerprint
    says they did not change (a full run catching up with what changed while it ran). Returns the counts."""
    from kehu.cdp import dedupe

    ids = set(touched)
    if not ids:
        return {}
    # the settings' row held: a full run storing a new model and its keys waits for this batch, and the other
    # consumer's batch for this organisation waits too (one writer of an organisation's keys at a time)
    found = session.scalar(select(DedupeSettings).where(DedupeSettings.org_id == org_id).with_for_update())
    blocking = plan_stored(found.model) if found is not None else None
    if found is None or blocking is None:
        return {}
    model = matching.MatchModel.from_dict(found.model)
    comparisons, _ = _matching_of(session, org_id)
    if {c.name for c in comparisons} != set(model.m):  # the settings changed since the model was fitted
        return {"touched": len(ids), "model_out_of_date": True}
    fields = attributes(comparisons, blocking)
    now = utcnow()
    live_ids: set[int] = set()
    for chunk in _chunks(sorted(ids)):
        live_ids.update(session.scalars(select(Profile.id).where(Profile.org_id == org_id, Profile.id.in_(chunk),
                                                                 Profile.merged_into_id.is_(None))))
    gone = ids - live_ids
    counts: dict[str, Any] = {"touched": len(ids), "gone": len(gone), "changed": 0, "candidates": 0, "pairs": 0}
    clock = time.perf_counter()
    con = duckdb.connect()
    try:
        _load(session, org_id, con, live_ids, "touched_records", fields)
        keys_sql = live.all_keys_sql(con, blocking, comparisons, "touched_records")
        con.execute(f"CREATE TEMP TABLE touched_keys AS {keys_sql}")
        fingerprints = dict(con.execute(live.fingerprint_sql(con, "touched_records")).fetchall())
        unchanged = set() if force else {pid for pid, key in _stored(session, org_id, fingerprints.values())
                                         if fingerprints.get(pid) == key}
        changed = sorted(set(fingerprints) - unchanged)
        counts["changed"] = len(changed)
        if not changed and not gone:
            return counts
        con.execute("CREATE TEMP TABLE touched (id BIGINT)")
        if changed:
            con.executemany("INSERT INTO touched VALUES (?)", [(i,) for i in changed])
        # the columns' totals of term frequencies follow (kept with the model: no count of every record)
        total_keys = {live.tf_total_key(con, column): column for column in live.tf_columns(comparisons)}
        totals = dict(found.model.get("tf_totals") or {})
        for key, n in _counts(session, org_id, total_keys, among=set(changed) | gone).items():
            totals[total_keys[key]] = totals.get(total_keys[key], 0) - n
        for key, n in con.execute(f"SELECT key, count(*) FROM touched_keys WHERE id IN (SELECT id FROM touched) "
                                  f"AND key IN ({', '.join(map(str, total_keys)) or 'NULL'}) GROUP BY key").fetchall():
            totals[total_keys[key]] = totals.get(total_keys[key], 0) + n
        found.model = {**found.model, "tf_totals": totals}
        if gone:
            _drop(session, org_id, gone)
        if not changed:
            return counts
        # their keys: the old ones go, the new ones are written (before looking: a block counts its new members)
        for chunk in _chunks(changed):
            session.execute(delete(BlockingKey).where(BlockingKey.profile_id.in_(chunk))
                            .execution_options(synchronize_session=False))
        _insert_keys(session, org_id, con.execute(
            "SELECT id, key FROM touched_keys WHERE id IN (SELECT id FROM touched)").fetchall())
        counts["seconds_keys"] = round(time.perf_counter() - clock, 3)
        # their candidates: who shares a key of a rule with them, in blocks the full run's plan would allow
        rule_keys = [k for (k,) in con.execute(
            f"SELECT DISTINCT key FROM ({live.rule_keys_sql(blocking, 'touched_records')}) "
            "WHERE id IN (SELECT id FROM touched)").fetchall()]
        sizes = _counts(session, org_id, rule_keys)
        limit = block_limit()
        counts["blocks_left_to_full_run"] = sum(1 for n in sizes.values() if n > limit)
        members = _stored(session, org_id, [k for k, n in sizes.items() if n <= limit])
        others = {pid for pid, _ in members} - live_ids
        counts["candidates"] = len(others)
        _load(session, org_id, con, others, "other_records", fields)
        con.execute("CREATE OR REPLACE TEMP TABLE records AS SELECT * FROM touched_records UNION ALL "
                    "SELECT * FROM other_records WHERE id NOT IN (SELECT id FROM touched_records)")
        tf_keys = [k for (k,) in con.execute(
            f"SELECT DISTINCT key FROM ({live.tf_keys_sql(comparisons, 'records', totals=False)})").fetchall()]
        tf_counts = {**_counts(session, org_id, tf_keys),
                     **{key: totals.get(column, 0) for key, column in total_keys.items()}}
        counts["seconds_candidates"] = round(time.perf_counter() - clock, 3)
        live.make_tf_from_counts(con, comparisons, tf_counts, "records")
        pairs = live.match_touched(con, model, blocking, threshold=found.review_threshold, comparisons=comparisons)
        counts["seconds_scored"] = round(time.perf_counter() - clock, 3)
    finally:
        con.close()
    counts["pairs"] = len(pairs)
    dedupe.store_candidates(session, org_id, pairs, found_at=now, replace=False)
    # a changed customer's open pairs that are no longer found leave the queue (as a full run drops them)
    for chunk in _chunks(changed):
        session.execute(delete(DuplicateCandidate).where(
            DuplicateCandidate.org_id == org_id, DuplicateCandidate.status == "open",
            DuplicateCandidate.found_at < now,
            or_(DuplicateCandidate.profile_a_id.in_(chunk), DuplicateCandidate.profile_b_id.in_(chunk)))
            .execution_options(synchronize_session=False))
    if found.auto_merge_threshold is not None:
        sure = [(a, b) for a, b, p, _ in pairs if p >= found.auto_merge_threshold]
        counts["merged"] = dedupe.merge_found(session, org_id, sure, actor=None) if sure else 0
    return counts


def _follow_all(session: Session, touched_by: Iterable[tuple[int, int | None]]) -> None:
    by_org: dict[int, set[int]] = {}
    for org_id, profile_id in touched_by:
        if profile_id is not None:
            by_org.setdefault(org_id, set()).add(profile_id)
    for org_id in sorted(by_org):  # in one order: two consumers never wait for each other's organisations
        follow(session, org_id, by_org[org_id])


def _orgs_matching_live(session: Session) -> list[Any] | None:
    """What live matching wants of the customers' events: those that can change who a customer is (identify calls —
    imported rows are such calls —, aliases, and any call carrying traits in its context) of organisations a full
    run has fitted a model for (none: the cursor moves past everything, nothing to follow). A page view of a known
    customer changes none of the fields matched on."""
    orgs = list(session.scalars(select(DedupeSettings.org_id).where(DedupeSettings.last_run_at.is_not(None))))
    if not orgs:
        return None
    with_traits = (Event.context.op("?")("traits") if session.get_bind().dialect.name == "postgresql"
                   else func.json_type(Event.context, "$.traits").is_not(None))
    return [Event.org_id.in_(orgs), or_(Event.type.in_(("identify", "alias")), with_traits)]


@events.subscribe(LIVE_EVENTS, stream=Event, wanted=_orgs_matching_live, batch=LIVE_BATCH)
def _match_arrivals(session: Session, batch: list[Event]) -> None:
    """Each batch of customers' events (calls through a source, imported rows): their customers are matched."""
    _follow_all(session, ((event.org_id, event.profile_id) for event in batch))


@events.subscribe(LIVE_EDITS, [PROFILE_CHANGED, PROFILE_MERGED, MERGE_UNDONE], batch=LIVE_BATCH)
def _match_edits(session: Session, batch: list[events.DomainEvent]) -> None:
    """Records created or changed by hand or through the API are matched; a merge drops the record folded (and
    matches the one kept, which may have taken its values); an undone merge matches both again."""
    touched: list[tuple[int, int | None]] = []
    for event in batch:
        touched.append((event.org_id, event.profile_id))
        for other in ("loser_id", "restored_id"):
            if isinstance(event.payload.get(other), int):
                touched.append((event.org_id, event.payload[other]))
    _follow_all(session, touched)
