"""Probabilistic matching of customer records (the fuzzy half of One ID): which live profiles of an
organisation are probably one person although they share no identity.

A Fellegi–Sunter model, as Splink fits one, computed in DuckDB over a columnar copy of the profiles:

1. **Read** (``records``): the live profiles' matching fields into DuckDB with derived keys — names by parts
   (pinyin of characters, so traditional forms and homophones agree), sound keys, nicknames, initials; house
   number and street; postcode district and area; birth year and month-day.
2. **Block** (``blocking``): candidate pairs are the records agreeing on at least one of many cheap rules, each
   pair once; each rule's comparisons are counted first against a ceiling (``TooManyComparisons``).
3. **Compare** (``comparisons``): each pair gets a level per comparison (name, birthday, mobile, e-mail, city,
   address, postcode; -1 when a side lacks the field).
4. **Learn** and **score** (``model``): u from random pairs, m and the prior by EM; weights with term
   frequencies (two 王伟 say less than two 欧阳修, two Londoners less than two people of Truro).

Pure computation: nothing here writes to kehu's database (``kehu.cdp.dedupe`` stores and acts on the result).
Every entry point takes ``comparisons`` and ``rules``: an organisation's are ``matching_of(session, org_id)``
(its settings, ``config``; custom fields are columns cf_<key> of the records: ``load_records(attributes=
attributes_of(comparisons, rules))``). ``load_records(ids=…, table=…)`` reads one or a few records,
``compare_sql(pairs, left=, right=)`` compares them with stored ones, and ``MatchModel.to_dict/from_dict`` keeps
a fitted model to score them without fitting again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy.orm import Session

from kehu.cdp.matching.blocking import DEFAULT_RULES, Plan, Rule, TooManyComparisons, candidates_sql, key_codes, plan
from kehu.cdp.matching.comparisons import COMPARISONS, DEFAULT_COMPARISONS, Comparison, compare_sql
from kehu.cdp.matching.config import attributes_of, matching_of
from kehu.cdp.matching.model import MatchModel, fit, make_tf_tables, score, teaching_rules
from kehu.cdp.matching.records import export_records, load_records

ScoredPair = tuple[int, int, float, dict[str, int]]  # (lower id, higher id, probability, levels)
# The rules as kehu's defaults use them (name, keys of its tightest variant, {}): for benchmarks and documentation.
BLOCKING_RULES: list[tuple[str, tuple[str, ...], dict[str, int]]] = [
    (rule.name, rule.variants[-1], {}) for rule in DEFAULT_RULES]


@dataclass
class MatchResult:
    model: MatchModel
    pairs: list[tuple[int, int, float, dict[str, int]]]  # (lower id, higher id, probability, levels)
    candidate_pairs: int
    seconds: dict[str, float]
    blocking: list[dict[str, Any]] = field(default_factory=list)  # per rule: keys, pairs counted, pairs added
    plan: Plan | None = None  # the rules as the run chose them (stored with the model for live matching)


def _ceiling(max_pairs_per_record: int | None) -> int:
    if max_pairs_per_record is not None:
        return max_pairs_per_record
    from kehu.core.settings import get_settings

    return get_settings().dedupe_max_pairs_per_record


def plan_records(con: duckdb.DuckDBPyConnection, records: int, *, max_pairs_per_record: int | None = None,
                 rules: tuple[Rule, ...] = DEFAULT_RULES, table: str = "records") -> Plan:
    """Count each blocking rule's comparisons on the ``records`` table (or on its keys' codes, ``key_codes``);
    raises TooManyComparisons over the ceiling (KEHU_DEDUPE_MAX_PAIRS_PER_RECORD)."""
    return plan(con, records, max_pairs_per_record=_ceiling(max_pairs_per_record), rules=rules, table=table)


def candidates(con: duckdb.DuckDBPyConnection, chosen: Plan,
               comparisons: tuple[Comparison, ...] = DEFAULT_COMPARISONS, keys: str = "records") -> int:
    """The table ``pairs`` (a, b, rule, bits, g_…): every candidate pair once (blocked on the table ``keys``: the
    records, or their keys' codes), compared; its row count."""
    con.execute("CREATE OR REPLACE TEMP TABLE cand AS " + candidates_sql(chosen.chosen, keys))
    con.execute("CREATE OR REPLACE TABLE pairs AS " + compare_sql(
        "cand", comparisons=comparisons, extra=", p.rule, p.bits"))
    con.execute("DROP TABLE cand")
    return con.execute("SELECT count(*) FROM pairs").fetchone()[0]  # type: ignore[index]


def match_records(con: duckdb.DuckDBPyConnection, records: int, *, threshold: float,
                  max_pairs_per_record: int | None = None, comparisons: tuple[Comparison, ...] = DEFAULT_COMPARISONS,
                  rules: tuple[Rule, ...] = DEFAULT_RULES) -> MatchResult:
    """Block, compare, fit and score the ``records`` table of ``con``."""
    seconds: dict[str, float] = {}
    mark = time.perf_counter()
    codes = key_codes(con, rules)
    chosen = plan_records(con, records, max_pairs_per_record=max_pairs_per_record, rules=rules, table=codes)
    seconds["plan"] = time.perf_counter() - mark
    mark = time.perf_counter()
    candidate_pairs = candidates(con, chosen, comparisons, keys=codes)
    con.execute(f"DROP TABLE {codes}")
    seconds["compare"] = time.perf_counter() - mark
    mark = time.perf_counter()
    model = fit(con, records, chosen, comparisons)
    seconds["fit"] = time.perf_counter() - mark
    mark = time.perf_counter()
    make_tf_tables(con, comparisons)
    pairs = score(con, model, threshold, comparisons)
    seconds["score"] = time.perf_counter() - mark
    added = dict(con.execute("SELECT rule, count(*) FROM pairs GROUP BY rule").fetchall())
    blocking = [{**row, "added": int(added.get(index, 0))} for index, row in enumerate(chosen.as_list())]
    return MatchResult(model=model, pairs=pairs, candidate_pairs=candidate_pairs, seconds=seconds, blocking=blocking,
                       plan=chosen)


def find_matches(session: Session, org_id: int, *, threshold: float, workdir: Path | None = None,
                 threads: int | None = None, max_pairs_per_record: int | None = None,
                 comparisons: tuple[Comparison, ...] = DEFAULT_COMPARISONS,
                 rules: tuple[Rule, ...] = DEFAULT_RULES) -> MatchResult:
    """Fit the model on the organisation's live profiles and return the pairs scoring ``threshold`` or more."""
    started = time.perf_counter()
    con = duckdb.connect(config={"threads": threads} if threads else {})
    try:
        records = load_records(session, org_id, con, workdir=workdir, attributes=attributes_of(comparisons, rules))
        read = time.perf_counter() - started
        result = match_records(con, records, threshold=threshold, max_pairs_per_record=max_pairs_per_record,
                               comparisons=comparisons, rules=rules)
    finally:
        con.close()
    result.seconds = {"read": read, **result.seconds, "total": time.perf_counter() - started}
    return result


def check_plan(session: Session, org_id: int, *, max_pairs_per_record: int | None = None,
               rules: tuple[Rule, ...] = DEFAULT_RULES) -> Plan:
    """Read the records and count each rule's comparisons (what a run would compare), without running it."""
    con = duckdb.connect()
    try:
        records = load_records(session, org_id, con, attributes=attributes_of((), rules))
        return plan_records(con, records, max_pairs_per_record=max_pairs_per_record, rules=rules)
    finally:
        con.close()


def match_new(con: duckdb.DuckDBPyConnection, model: MatchModel, chosen: Plan, *, threshold: float,
              new: str = "new_records", stored: str = "records",
              comparisons: tuple[Comparison, ...] = DEFAULT_COMPARISONS) -> list[ScoredPair]:
    """Incremental matching: the records of table ``new`` (read with ``load_records(ids=…, table=new)``) against
    ``stored`` (the organisation's records, the new ones among them), under the rules a full run chose and its
    fitted model (``MatchModel.from_dict`` of the stored one): the pairs at ``threshold`` or more, as (lower id,
    higher id, probability, levels) — the pairs a full run would score the same way."""
    joins = [f"SELECT least(l.id, r.id) AS a, greatest(l.id, r.id) AS b FROM {new} l JOIN {stored} r ON "
             + " AND ".join(f"l.{k} = r.{k}" for k in keys) + " AND l.id <> r.id"
             for _, keys, n in chosen.chosen if n]
    if not joins:
        return []
    con.execute(f"CREATE OR REPLACE TEMP TABLE new_cand AS SELECT DISTINCT a, b FROM ({' UNION ALL '.join(joins)})")
    con.execute("CREATE OR REPLACE TEMP TABLE new_pairs AS " + compare_sql("new_cand", left=stored, right=stored,
                                                                            comparisons=comparisons))
    make_tf_tables(con, comparisons, stored)
    found = score(con, model, threshold, comparisons, pairs="new_pairs", table=stored)
    con.execute("DROP TABLE new_cand; DROP TABLE new_pairs")
    return found


def clusters(pairs: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Connected components of the matched pairs: record id → the smallest id of its cluster."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: root(x) for x in parent}


__all__ = ["BLOCKING_RULES", "COMPARISONS", "DEFAULT_COMPARISONS", "DEFAULT_RULES", "Comparison", "MatchModel",
           "MatchResult", "Plan", "Rule", "TooManyComparisons", "attributes_of", "candidates", "check_plan",
           "clusters", "compare_sql", "export_records", "find_matches", "fit", "load_records", "match_new",
           "match_records", "matching_of", "plan_records", "score", "teaching_rules"]
