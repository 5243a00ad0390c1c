"""Incremental matching, the DuckDB half: the stored keys of records (what ``kehu.cdp.dedupe_live`` keeps in the
table ``blocking_keys``) and the scoring of a few touched records against the candidates those keys find.

A record's keys, each a 63-bit number (an MD5's lower half):

- one per blocking rule of the plan whose key columns all have a value: the hash of the rule's key names and their
  values. Two records share it exactly when the rule would compare them (a hash collision only adds a candidate:
  ``match_touched`` blocks again on the values themselves);
- one per term-frequency column with a value (the hash of the column and the value) and one more for the column
  (its total): counted, they give the value's share among the records, as ``model.make_tf_tables`` computes it over
  all of them;
- its fingerprint: the hash of the record's id and every field it is matched on (a record touched but unchanged
  needs no new comparison).

Pure computation, as the rest of ``kehu.cdp.matching``: nothing here reads or writes kehu's database."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from kehu.cdp.matching.comparisons import DEFAULT_COMPARISONS, Comparison, compare_sql
from kehu.cdp.matching.model import MatchModel, score

Blocking = list[tuple[str, tuple[str, ...]]]  # the plan as stored: (rule, its chosen keys)
SEP = "chr(31)"
# the records' fields that are not matched on (a record moved to another dealer is not compared again)
NOT_MATCHED = ("unit_id",)


def _hash(text: str) -> str:
    return f"(md5_number_lower({text}) & 9223372036854775807)::BIGINT"


def blocking_of(chosen: Sequence[tuple[object, tuple[str, ...], int]]) -> Blocking:
    """A plan's chosen rules as they are stored with the fitted model: every rule, even one that made no pair on
    the data of the full run (new records may meet under it)."""
    return [(getattr(rule, "name", str(rule)), tuple(keys)) for rule, keys, _ in chosen]


def _variants(blocking: Blocking) -> list[tuple[str, ...]]:
    """The distinct key tuples (two rules on the same keys make the same blocks: one key)."""
    seen: list[tuple[str, ...]] = []
    for _, keys in blocking:
        if keys and keys not in seen:
            seen.append(keys)
    return seen


def rule_keys_sql(blocking: Blocking, table: str = "records") -> str:
    """(id, key): each record's key under each rule whose key columns all have a value."""
    selects = []
    for keys in _variants(blocking):
        text = " || ".join([f"'b|{','.join(keys)}'", *(f"{SEP} || {k}::VARCHAR" for k in keys)])
        selects.append(f"SELECT id, {_hash(text)} AS key FROM {table} "
                       f"WHERE {' AND '.join(f'{k} IS NOT NULL' for k in keys)}")
    return " UNION ALL ".join(selects) or "SELECT NULL::BIGINT AS id, NULL::BIGINT AS key WHERE false"


def tf_columns(comparisons: tuple[Comparison, ...] = DEFAULT_COMPARISONS) -> list[str]:
    return sorted({c.tf_column for c in comparisons if c.tf_column})


def tf_total_key(con: duckdb.DuckDBPyConnection, column: str) -> int:
    """The key every record with a value of ``column`` holds once: their count is the column's total."""
    return int(con.execute(f"SELECT {_hash(repr('T|' + column))}").fetchone()[0])  # type: ignore[index]


def tf_keys_sql(comparisons: tuple[Comparison, ...], table: str = "records", *, totals: bool = True) -> str:
    """(id, key, col, v): each record's term-frequency keys (its value's, and with ``totals`` the column's)."""
    selects = []
    for column in tf_columns(comparisons):
        selects.append(f"SELECT id, {_hash(f'{column!r} || {SEP} || {column}::VARCHAR')} AS key, '{column}' AS col, "
                       f"{column}::VARCHAR AS v FROM {table} WHERE {column} IS NOT NULL")
        if totals:
            selects.append(f"SELECT id, {_hash(repr('T|' + column))} AS key, '{column}' AS col, NULL::VARCHAR AS v "
                           f"FROM {table} WHERE {column} IS NOT NULL")
    return " UNION ALL ".join(selects) or ("SELECT NULL::BIGINT AS id, NULL::BIGINT AS key, NULL::VARCHAR AS col, "
                                           "NULL::VARCHAR AS v WHERE false")


def fingerprint_sql(con: duckdb.DuckDBPyConnection, table: str = "records") -> str:
    """(id, key): each record's fingerprint (its id and every field it is matched on)."""
    columns = ", ".join(name for name, *_ in con.execute(f"DESCRIBE {table}").fetchall() if name not in NOT_MATCHED)
    return f"SELECT id, {_hash(f'struct_pack({columns})::VARCHAR')} AS key FROM {table}"


def all_keys_sql(con: duckdb.DuckDBPyConnection, blocking: Blocking, comparisons: tuple[Comparison, ...],
                 table: str = "records") -> str:
    """(id, key): every key the records of ``table`` hold, each once."""
    return (f"SELECT DISTINCT id, key FROM ({rule_keys_sql(blocking, table)} UNION ALL "
            f"SELECT id, key FROM ({tf_keys_sql(comparisons, table)}) UNION ALL {fingerprint_sql(con, table)})")


def make_tf_from_counts(con: duckdb.DuckDBPyConnection, comparisons: tuple[Comparison, ...],
                        counts: dict[int, int], table: str = "records") -> None:
    """The tables ``tf_<comparison>`` (v, share) that ``score`` joins, for the values of ``table``'s records, from
    the stored keys' counts (``counts``: key → records holding it, the column totals among them)."""
    con.execute("CREATE OR REPLACE TEMP TABLE tf_counts (key BIGINT, n BIGINT)")
    if counts:
        con.executemany("INSERT INTO tf_counts VALUES (?, ?)", list(counts.items()))
    for c in comparisons:
        if not c.tf_column:
            continue
        total = counts.get(tf_total_key(con, c.tf_column), 0)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE tf_{c.name} AS
            SELECT DISTINCT k.v, n.n / greatest({total}, 1)::DOUBLE AS share
            FROM ({tf_keys_sql(comparisons, table, totals=False)}) k JOIN tf_counts n ON n.key = k.key
            WHERE k.col = '{c.tf_column}'""")
    con.execute("DROP TABLE tf_counts")


def match_touched(con: duckdb.DuckDBPyConnection, model: MatchModel, blocking: Blocking, *, threshold: float,
                  touched: str = "touched", table: str = "records",
                  comparisons: tuple[Comparison, ...] = DEFAULT_COMPARISONS) -> list[tuple[int, int, float,
                                                                                        dict[str, int]]]:
    """The pairs of a record of ``touched`` (ids) with any record of ``table`` (the touched ones and their candidates)
    meeting a rule of ``blocking``, scored by ``model`` with the term-frequency tables made: those at ``threshold``
    or more, as (lower id, higher id, probability, levels) — what a full run under the same plan and model finds
    for them."""
    joins = [f"SELECT least(l.id, r.id) AS a, greatest(l.id, r.id) AS b FROM {touched} t "
             f"JOIN {table} l ON l.id = t.id JOIN {table} r ON "
             + " AND ".join(f"l.{k} = r.{k}" for k in keys) + " AND l.id <> r.id"
             for keys in _variants(blocking)]
    if not joins:
        return []
    con.execute(f"CREATE OR REPLACE TEMP TABLE live_cand AS SELECT DISTINCT a, b FROM ({' UNION ALL '.join(joins)})")
    con.execute("CREATE OR REPLACE TEMP TABLE live_pairs AS " + compare_sql("live_cand", left=table, right=table,
                                                                             comparisons=comparisons))
    found = score(con, model, threshold, comparisons, pairs="live_pairs", table=table)
    con.execute("DROP TABLE live_cand; DROP TABLE live_pairs")
    return found


__all__ = ["Blocking", "all_keys_sql", "blocking_of", "fingerprint_sql", "make_tf_from_counts", "match_touched",
           "rule_keys_sql", "tf_columns", "tf_keys_sql", "tf_total_key"]
