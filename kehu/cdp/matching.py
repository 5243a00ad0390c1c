"""Probabilistic matching of customer records (the fuzzy half of One ID): which live profiles of an
organisation are probably one person although they share no identity.

A Fellegi–Sunter model, as Splink fits one, computed in DuckDB over a columnar copy of the profiles:

1. **Read** the live profiles' matching fields out of the database (COPY on PostgreSQL) into DuckDB, with a
   name key that the ways a Chinese name gets written agree on: characters, homophones, traditional
   characters, pinyin in either order (张伟, 張偉, "Zhang Wei" and "Wei Zhang" all become ``weizhang``).
2. **Block**: candidate pairs are the records agreeing on at least one blocking rule (name key + birthday,
   name key + city, mobile, e-mail, birthday + city), each pair once.
3. **Compare**: each pair gets a level per comparison (name exact / same key / similar key / different,
   birthday exact / near / different, …; unknown when either side lacks the field).
4. **Learn**: u (how often non-matches agree) from random record pairs; m (how often matches agree) and
   the prior by expectation maximisation, each comparison's m taught only by the blocking rules that leave
   it free — run over the few hundred distinct comparison patterns with their counts, not over millions of
   pairs (see ``fit``).
5. **Score**: each pair's match weight is the prior's log-odds plus the sum of log2(m/u) of its levels, with
   a term-frequency adjustment for the name (two 王伟 are weaker evidence than two 欧阳修); probability =
   1 / (1 + 2^-weight).

Pure computation: nothing here writes to kehu's database (``kehu.cdp.dedupe`` stores and acts on the result).
"""

from __future__ import annotations

import csv
import math
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.cdp import normalise
from kehu.cdp.models import Profile

# Each comparison: its levels from the strongest agreement down; -1 is "unknown" (a side lacks the field) and
# counts as no evidence either way. The SQL sees the pair as l.* and r.*.
COMPARISONS: dict[str, tuple[str, list[tuple[int, str]]]] = {
    "name": ("l.name_key IS NULL OR r.name_key IS NULL", [
        (3, "l.name = r.name"),
        (2, "l.name_key = r.name_key"),
        (1, "jaro_winkler_similarity(l.name_key, r.name_key) >= 0.9"),
    ]),
    "birthday": ("l.birthday IS NULL OR r.birthday IS NULL", [
        (2, "l.birthday = r.birthday"),
        # a mistyped day or month, or the two swapped: near, not the same
        (1, "year(l.birthday) = year(r.birthday) AND (month(l.birthday) = month(r.birthday) "
            "OR day(l.birthday) = day(r.birthday) OR (month(l.birthday) = day(r.birthday) "
            "AND day(l.birthday) = month(r.birthday)))"),
    ]),
    "mobile": ("l.mobile IS NULL OR r.mobile IS NULL", [
        (2, "l.mobile = r.mobile"),
        (1, "levenshtein(l.mobile, r.mobile) <= 1"),
    ]),
    # Only the whole e-mail address: a local part shaped like the name (zhangwei.88@) says no more than the name.
    "email": ("l.email IS NULL OR r.email IS NULL", [(2, "l.email = r.email")]),
    "city": ("l.city IS NULL OR r.city IS NULL", [(1, "l.city = r.city")]),
    # Only the whole address: two addresses in one city look alike by their common prefix (city, district,
    # a main road), and a similarity level would count the city a second time.
    "address": ("l.address IS NULL OR r.address IS NULL", [(2, "l.address = r.address")]),
}
# Blocking rules: equal columns, and the comparison levels that say a pair meets the rule (so the pairs a
# rule would make are found again among the scored pairs, whichever rule made them first).
BLOCKING_RULES: list[tuple[str, tuple[str, ...], dict[str, int]]] = [
    ("name_birthday", ("name_key", "birthday"), {"name": 2, "birthday": 2}),
    ("name_city", ("name_key", "city"), {"name": 2, "city": 1}),
    ("mobile", ("mobile",), {"mobile": 2}),
    ("email", ("email",), {"email": 2}),
    ("birthday_city", ("birthday", "city"), {"birthday": 2, "city": 1}),
]
# Where EM has nothing to learn from (a tiny organisation), these stand in: matches mostly agree.
DEFAULT_M = {"name": {3: 0.55, 2: 0.35, 1: 0.05, 0: 0.05}, "birthday": {2: 0.9, 1: 0.05, 0: 0.05},
             "mobile": {2: 0.5, 1: 0.05, 0: 0.45}, "email": {2: 0.5, 0: 0.5}, "city": {1: 0.8, 0: 0.2},
             "address": {2: 0.3, 0: 0.7}}
NAME_TF_FLOOR = 1e-6
RANDOM_SAMPLE_RECORDS = 1500  # ~1.1 M random pairs for u (as Splink's default of 1 M)
EM_ITERATIONS = 200
# No level is impossible for one person: a typo can break any field, and one such pair must not be ruled out.
M_FLOOR = 1e-4
EM_MIN_PAIRS = 10  # a rule with fewer candidate pairs teaches nothing reliable


@dataclass
class MatchModel:
    """The fitted parameters: m and u per comparison level, the prior, and how the fit went."""

    m: dict[str, dict[int, float]]
    u: dict[str, dict[int, float]]
    prior: float  # probability that two random records are one person
    records: int
    trained_on: dict[str, int] = field(default_factory=dict)  # candidate pairs per blocking rule
    trained: list[str] = field(default_factory=list)  # comparisons whose m the data taught (others: defaults)

    def weight(self, comparison: str, level: int) -> float:
        """log2(m/u) of a level: how much it says for (positive) or against one person."""
        if level < 0:
            return 0.0
        return math.log2(max(self.m[comparison].get(level, 1e-6), 1e-6) /
                         max(self.u[comparison].get(level, 1e-9), 1e-9))

    def as_dict(self) -> dict[str, Any]:
        return {"prior": self.prior, "records": self.records, "trained_on": self.trained_on, "trained": self.trained,
                "levels": {c: {str(level): {"m": round(self.m[c].get(level, 0.0), 6),
                                            "u": round(self.u[c].get(level, 0.0), 8),
                                            "weight": round(self.weight(c, level), 3)}
                               for level in sorted({*self.m[c], *self.u[c]}, reverse=True)}
                           for c in COMPARISONS}}


@dataclass
class MatchResult:
    model: MatchModel
    pairs: list[tuple[int, int, float, dict[str, int]]]  # (lower id, higher id, probability, levels)
    candidate_pairs: int
    seconds: dict[str, float]


# -- reading the records ------------------------------------------------------------------------------------
def export_records(session: Session, org_id: int, path: Path) -> None:
    """Write the organisation's live profiles' matching fields to a CSV file (COPY on PostgreSQL)."""
    query = select(Profile.id, Profile.unit_id, Profile.name, Profile.name_pinyin, Profile.birthday, Profile.mobile,
                   Profile.email, Profile.city, Profile.address, Profile.postcode).where(
        Profile.org_id == org_id, Profile.merged_into_id.is_(None)).order_by(Profile.id)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        compiled = query.compile(connection, compile_kwargs={"literal_binds": True})
        with path.open("wb") as out, connection.connection.driver_connection.cursor() as cursor, \
                cursor.copy(f"COPY ({compiled}) TO STDOUT (FORMAT csv)") as copy:
            for chunk in copy:
                out.write(chunk)
        return
    with path.open("w", newline="", encoding="utf-8") as out:
        # A working file for DuckDB, never opened by a person: the values go as they are (not kehu.core.files).
        writer = csv.writer(out)
        for row in session.execute(query).yield_per(20_000):
            writer.writerow(["" if value is None else value for value in row])


def _load(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    types = {"id": "BIGINT", "unit_id": "BIGINT", "name": "VARCHAR", "name_pinyin": "VARCHAR", "birthday": "DATE",
             "mobile": "VARCHAR", "email": "VARCHAR", "city": "VARCHAR", "address": "VARCHAR",
             "postcode": "VARCHAR"}
    con.execute(f"CREATE TABLE raw AS SELECT * FROM read_csv('{path}', header=false, columns={types!r}, "
                "nullstr='', quote='\"', escape='\"')")
    # The family name's pinyin for Chinese names: distinct first characters are a few thousand at most.
    firsts = [c for (c,) in con.execute("SELECT DISTINCT substr(name, 1, 1) FROM raw WHERE name IS NOT NULL "
                                        "AND strpos(trim(name), ' ') = 0").fetchall() if c]
    con.execute("CREATE TABLE family (c VARCHAR, py VARCHAR)")
    if firsts:
        con.executemany("INSERT INTO family VALUES (?, ?)", [(c, normalise.pinyin(c) or "") for c in firsts])
    con.execute("""
        CREATE TABLE records AS
        WITH named AS (
            SELECT raw.*,
                   CASE WHEN strpos(trim(raw.name), ' ') > 0
                        THEN lower(split_part(trim(raw.name), ' ', 1)) ELSE family.py END AS fam,
                   CASE WHEN strpos(trim(raw.name), ' ') > 0
                        THEN lower(replace(substr(trim(raw.name), strpos(trim(raw.name), ' ') + 1), ' ', ''))
                        WHEN starts_with(raw.name_pinyin, family.py)
                        THEN substr(raw.name_pinyin, length(family.py) + 1) END AS given
            FROM raw LEFT JOIN family ON family.c = substr(raw.name, 1, 1)
        )
        SELECT id, unit_id, nullif(trim(name), '') AS name,
               CASE WHEN fam IS NOT NULL AND given IS NOT NULL AND given <> ''
                    THEN least(fam || given, given || fam) ELSE nullif(name_pinyin, '') END AS name_key,
               birthday,
               nullif(regexp_replace(mobile, '[^0-9]', '', 'g'), '') AS mobile,
               lower(email) AS email,
               nullif(trim(city), '') AS city,
               nullif(regexp_replace(address, '\\s', '', 'g'), '') AS address,
               nullif(upper(regexp_replace(postcode, '\\s', '', 'g')), '') AS postcode
        FROM named
    """)
    return con.execute("SELECT count(*) FROM records").fetchone()[0]


# -- comparing ------------------------------------------------------------------------------------------------
def _level_sql(name: str) -> str:
    unknown, levels = COMPARISONS[name]
    branches = " ".join(f"WHEN {condition} THEN {level}" for level, condition in levels)
    return f"CASE WHEN {unknown} THEN -1 {branches} ELSE 0 END"


def _levels_sql() -> str:
    return ", ".join(f"{_level_sql(name)}::TINYINT AS g_{name}" for name in COMPARISONS)


def _candidates(con: duckdb.DuckDBPyConnection) -> int:
    """Every pair meeting a blocking rule, once (a rule skips the pairs an earlier rule made)."""
    selects = []
    for index, (_, columns, _) in enumerate(BLOCKING_RULES):
        on = " AND ".join(f"l.{c} = r.{c}" for c in columns)
        earlier = " OR ".join("(" + " AND ".join(f"coalesce(l.{c} = r.{c}, false)" for c in cols) + ")"
                              for _, cols, _ in BLOCKING_RULES[:index])
        selects.append(f"SELECT l.id AS a, r.id AS b, {_levels_sql()} FROM records l JOIN records r "
                       f"ON {on} AND l.id < r.id" + (f" WHERE NOT ({earlier})" if earlier else ""))
    con.execute("CREATE TABLE pairs AS " + " UNION ALL ".join(selects))
    return con.execute("SELECT count(*) FROM pairs").fetchone()[0]


def _patterns(con: duckdb.DuckDBPyConnection) -> list[tuple[dict[str, int], int]]:
    names = list(COMPARISONS)
    rows = con.execute(f"SELECT {', '.join('g_' + n for n in names)}, count(*) FROM pairs "
                       f"GROUP BY ALL").fetchall()
    return [({n: int(v) for n, v in zip(names, row[:-1], strict=True)}, int(row[-1])) for row in rows]


# -- learning ------------------------------------------------------------------------------------------------
def _estimate_u(con: duckdb.DuckDBPyConnection, records: int) -> dict[str, dict[int, float]]:
    """How often two random records agree at each level (almost all random pairs are different people)."""
    sample = min(records, RANDOM_SAMPLE_RECORDS)
    con.execute(f"CREATE TABLE sampled AS SELECT * FROM records USING SAMPLE reservoir({sample} ROWS) "
                "REPEATABLE (42)")
    counts = {name: {} for name in COMPARISONS}
    sums = ", ".join(f"{_level_sql(name)} AS g_{name}" for name in COMPARISONS)
    con.execute(f"CREATE TABLE sampled_pairs AS SELECT {sums} FROM sampled l JOIN sampled r ON l.id < r.id")
    rows = con.execute(" UNION ALL ".join(f"SELECT '{n}', g_{n}, count(*) FROM sampled_pairs GROUP BY g_{n}"
                                          for n in COMPARISONS)).fetchall()
    for name, level, count in rows:
        if level >= 0:
            counts[name][int(level)] = count
    u = {}
    for name, (_, levels) in COMPARISONS.items():
        known = sum(counts[name].values())
        floor = 1 / max(known * 10, 1_000)  # a level no random pair reached is rare, not impossible
        agree = {level: max(counts[name].get(level, 0) / known if known else floor, floor) for level, _ in levels}
        different = counts[name].get(0, 0) / known if known else 1 - sum(agree.values())
        u[name] = {**agree, 0: max(different, floor)}
    return u


def _meets(levels: dict[str, int], rule: dict[str, int]) -> bool:
    return all(levels[name] >= at for name, at in rule.items())


def fit(con: duckdb.DuckDBPyConnection, records: int, patterns: list[tuple[dict[str, int], int]]) -> MatchModel:
    """u from random pairs; m and the prior by expectation maximisation over the candidate pairs' patterns.

    The E-step weighs every comparison (blocked ones too) with the population's u, so a pair's posterior is
    what it would be among all pairs: blocking is a function of the levels and selects without biasing it.
    The M-step learns each comparison's m only from the pairs of blocking rules that leave it free (among
    a rule's pairs the matches agree on its own fields by construction), pooled over those rules."""
    u = _estimate_u(con, records)
    possible = max(records * (records - 1) / 2, 1)
    rules = [(name, rule) for name, _, rule in BLOCKING_RULES]
    trained_on = {name: sum(n for levels, n in patterns if _meets(levels, rule)) for name, rule in rules}
    # per pattern: its count, its known levels, and the comparisons it may teach (free in a rule it meets)
    prepared = []
    for levels, n in patterns:
        known = [(c, level) for c, level in levels.items() if level >= 0]
        met = [rule for name, rule in rules if trained_on[name] >= EM_MIN_PAIRS and _meets(levels, rule)]
        teaches = [(c, level, times) for c, level in known if (times := sum(1 for rule in met if c not in rule))]
        prepared.append((n, known, teaches))
    m = {name: dict(DEFAULT_M[name]) for name in COMPARISONS}
    prior = min(0.1 * records / possible, 0.5)  # a start: one record in ten has a twin
    taught: set[str] = set()
    for _ in range(EM_ITERATIONS):
        odds = prior / (1 - prior)
        matched: dict[str, dict[int, float]] = {name: dict.fromkeys(m[name], 0.0) for name in COMPARISONS}
        expected = 0.0
        for n, known, teaches in prepared:
            ratio = odds
            for c, level in known:
                ratio *= m[c].get(level, M_FLOOR) / u[c].get(level, 1e-9)
            posterior = ratio / (1 + ratio)
            expected += n * posterior
            for c, level, times in teaches:
                matched[c][level] = matched[c].get(level, 0.0) + n * posterior * times
        change = 0.0
        for name in COMPARISONS:
            mass = sum(matched[name].values())
            if mass <= 0:
                continue
            taught.add(name)
            new = {level: max(value / mass, M_FLOOR) for level, value in matched[name].items()}
            change = max(change, *(abs(new[level] - m[name].get(level, 0.0)) for level in new))
            m[name] = new
        new_prior = min(max(expected / possible, 1e-12), 0.5)
        change = max(change, abs(new_prior - prior) / prior)
        prior = new_prior
        if change < 1e-5:
            break
    return MatchModel(m=m, u=u, prior=prior, records=records, trained_on=trained_on,
                      trained=[name for name in COMPARISONS if name in taught])


# -- scoring -------------------------------------------------------------------------------------------------
def _weight_sql(model: MatchModel) -> str:
    parts = [f"{math.log2(model.prior / (1 - model.prior))!r}"]
    for name in COMPARISONS:
        branches = " ".join(f"WHEN g_{name} = {level} THEN {model.weight(name, level)!r}"
                            for level in sorted(model.m[name], reverse=True))
        parts.append(f"(CASE {branches} ELSE 0 END)")
    # Term frequency: when the names agree, how common that name is decides how much it says.
    u_same_key = max(model.u["name"].get(2, 1e-9), 1e-9)
    u_exact = max(model.u["name"].get(3, 1e-9), 1e-9)
    parts.append(f"(CASE WHEN g_name = 3 THEN log2({u_exact!r} / greatest(tf.share, {NAME_TF_FLOOR!r})) "
                 f"WHEN g_name = 2 THEN log2({u_same_key!r} / greatest(tf.share, {NAME_TF_FLOOR!r})) ELSE 0 END)")
    return " + ".join(parts)


def score(con: duckdb.DuckDBPyConnection, model: MatchModel, threshold: float) -> list[tuple[int, int, float, dict]]:
    con.execute("CREATE TABLE name_tf AS SELECT name_key, count(*) / (SELECT count(*) FROM records "
                "WHERE name_key IS NOT NULL)::DOUBLE AS share FROM records WHERE name_key IS NOT NULL GROUP BY 1")
    names = list(COMPARISONS)
    rows = con.execute(f"""
        WITH w AS (
            SELECT p.*, {_weight_sql(model)} AS weight
            FROM pairs p JOIN records l ON l.id = p.a LEFT JOIN name_tf tf ON tf.name_key = l.name_key
        )
        SELECT a, b, 1 / (1 + pow(2, -weight)) AS probability, {', '.join('g_' + n for n in names)}
        FROM w WHERE 1 / (1 + pow(2, -weight)) >= {threshold!r} ORDER BY a, b
    """).fetchall()
    return [(int(a), int(b), float(p), {n: int(v) for n, v in zip(names, rest, strict=True)})
            for a, b, p, *rest in rows]


def load_records(session: Session, org_id: int, con: duckdb.DuckDBPyConnection, *,
                 workdir: Path | None = None) -> int:
    """The organisation's live profiles as the table ``records`` of ``con``, matching keys made; their count."""
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        path = Path(scratch) / "records.csv"
        export_records(session, org_id, path)
        return _load(con, path)


def match_records(con: duckdb.DuckDBPyConnection, records: int, *, threshold: float) -> MatchResult:
    """Block, compare, fit and score the ``records`` table of ``con``."""
    seconds: dict[str, float] = {}
    mark = time.perf_counter()
    candidate_pairs = _candidates(con)
    patterns = _patterns(con)
    seconds["compare"] = time.perf_counter() - mark
    mark = time.perf_counter()
    model = fit(con, records, patterns)
    seconds["fit"] = time.perf_counter() - mark
    mark = time.perf_counter()
    pairs = score(con, model, threshold)
    seconds["score"] = time.perf_counter() - mark
    return MatchResult(model=model, pairs=pairs, candidate_pairs=candidate_pairs, seconds=seconds)


def find_matches(session: Session, org_id: int, *, threshold: float, workdir: Path | None = None,
                 threads: int | None = None) -> MatchResult:
    """Fit the model on the organisation's live profiles and return the pairs scoring ``threshold`` or more."""
    started = time.perf_counter()
    con = duckdb.connect(config={"threads": threads} if threads else {})
    try:
        records = load_records(session, org_id, con, workdir=workdir)
        read = time.perf_counter() - started
        result = match_records(con, records, threshold=threshold)
    finally:
        con.close()
    result.seconds = {"read": read, **result.seconds, "total": time.perf_counter() - started}
    return result


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
