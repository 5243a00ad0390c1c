"""The Fellegi–Sunter model: u (how often two random records agree at each level) from random pairs, or counted
over all records for a level of equality on one column; m (how often two records of one person do) and the prior
by expectation maximisation over the candidate pairs' patterns; a pair's match weight = the prior's log-odds +
Σ log2(m/u) of its levels (+ term-frequency adjustments), its probability 1 / (1 + 2^-weight).

EM runs over the distinct patterns (levels + the blocking rules a pair meets) with their counts, read once out of
DuckDB, not over the pairs. The E-step weighs every comparison with the population's u, so a pair's posterior is
what it would be among all pairs; the M-step learns each comparison's m only from pairs of blocking rules that
leave it free (among a rule's pairs the matches agree on its own keys by construction)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import duckdb

from kehu.cdp.matching.blocking import KEY_COMPARISONS, Plan, Rule, on_sql
from kehu.cdp.matching.comparisons import COMPARISONS, DEFAULT_COMPARISONS, Comparison, compare_sql

TF_FLOOR = 1e-6
TF_BUCKETS = 4  # EM weighs term frequencies in buckets of a quarter power of two
RANDOM_SAMPLE_RECORDS = 1500  # ~1.1 M random pairs for u (as Splink's default of 1 M)
# Equality on one column (a level) and a record lacking a column (a comparison's unknown): see exact_u
_EQUAL = re.compile(r"l\.(\w+) = r\.\1")
_LACKS = re.compile(r"[lr]\.(\w+) IS NULL")
EM_ITERATIONS = 100
# No level is impossible for one person: a typo can break any field, and one such pair must not be ruled out.
M_FLOOR = 1e-4
EM_MIN_PAIRS = 10
# Among records of one person, names and birthdays rarely differ outright. Without a bound, EM on data where a
# town or a postcode district is shared by many namesakes (48 surnames, 24 given names a gender) settles on "same
# place" as its class and learns that most matches have other birthdays; the bound keeps it on people.
DIFFERENT_CAP = {"name": 0.2, "birthday": 0.2}  # a rule with fewer candidate pairs teaches nothing reliable
# An identifier's u (Comparison.identifier) is its agreement among pairs of different people: among random pairs
# less the share that are one person (prior × m). Bounded below: at most one in a hundred of the pairs that agree
# on it by chance are taken for different people (a value keyed twice, a shared membership card), so an agreeing
# identifier alone makes a pair 99 % likely and strong evidence against (another birthday and name) still counts.
IDENTIFIER_SHARE = 0.01
# Teaching at scale: past some size every rule is tightened by the birthday (and the city), so no candidate pair
# leaves the name or the birthday free and EM learns their m from the few matches among neighbours, or not at all
# (at a million Chinese records it settled on 400 "matches" sharing a family name). A rule tightened past a loosest
# variant on one field alone (the name's key, the birthday) then teaches from a random sample of that variant's
# pairs, as Splink's EM sessions blocked on the name and on the date of birth do: about this many pairs per record
# in all, never scored.
TEACHING_PAIRS_PER_RECORD = 1.0


@dataclass
class MatchModel:
    """The fitted parameters: m and u per comparison level, the prior, and how the fit went. ``to_dict`` /
    ``from_dict`` keep it (DedupeSettings.model) so one new record can be scored without fitting again."""

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
        return math.log2(max(self.m[comparison].get(level, M_FLOOR), 1e-6) /
                         max(self.u[comparison].get(level, 1e-9), 1e-9))

    def to_dict(self) -> dict[str, Any]:
        return {"prior": self.prior, "records": self.records, "trained_on": self.trained_on, "trained": self.trained,
                "levels": {c: {str(level): {"m": self.m[c].get(level, 0.0), "u": self.u[c].get(level, 0.0),
                                            "weight": round(self.weight(c, level), 3)}
                               for level in sorted({*self.m[c], *self.u[c]}, reverse=True)}
                           for c in self.m}}

    as_dict = to_dict

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatchModel:
        levels = data["levels"]
        return cls(m={c: {int(k): v["m"] for k, v in lv.items()} for c, lv in levels.items()},
                   u={c: {int(k): v["u"] for k, v in lv.items()} for c, lv in levels.items()},
                   prior=data["prior"], records=data["records"], trained_on=data.get("trained_on", {}),
                   trained=data.get("trained", []))


def _equality_level(c: Comparison) -> tuple[int, str, list[str]] | None:
    """The strongest level of ``c`` when it is equality on one column, with the columns a record needs to be
    compared (the others: None). Being the strongest, no other level takes its pairs: its u is exactly the share of
    known pairs sharing a value."""
    level, condition = c.levels[0]
    equal = _EQUAL.fullmatch(condition.strip())
    terms = [term.strip() for term in c.unknown.split(" OR ")]
    lacks = [_LACKS.fullmatch(term) for term in terms]
    if not equal or not all(lacks):
        return None
    needed = sorted({m.group(1) for m in lacks if m})
    if set(terms) != {f"{side}.{k} IS NULL" for side in "lr" for k in needed}:
        return None  # a condition on one side only, or on both records at once (not a record's own)
    return level, equal.group(1), needed


def exact_u(con: duckdb.DuckDBPyConnection, comparisons: tuple[Comparison, ...] = DEFAULT_COMPARISONS,
            table: str = "records") -> dict[str, tuple[int, float]]:
    """For each comparison whose strongest level is equality on one column, that level's u over all records, not a
    sample: Σ over values n·(n−1) / (N·(N−1)), N the records it can compare (one aggregate). A sample of 1,500
    records meets two records sharing a rare value a handful of times at most, and at 1,000,000 records the names'
    u and with them the F1 went by the draw."""
    found: dict[str, tuple[int, float]] = {}
    for c in comparisons:
        equality = _equality_level(c)
        if equality is None:
            continue
        level, column, needed = equality
        known = " AND ".join(f"{k} IS NOT NULL" for k in needed) or "true"
        agree, records = con.execute(
            f"SELECT coalesce(sum(CASE WHEN v IS NOT NULL THEN n * (n - 1) END), 0), coalesce(sum(n), 0) FROM "
            f"(SELECT {column} AS v, count(*)::HUGEINT AS n FROM {table} WHERE {known} GROUP BY 1)").fetchone() \
            or (0, 0)
        if records >= 2:  # no two records alike: as if one pair were (rare, not impossible, as the sample's floor)
            found[c.name] = (level, max(float(agree), 2.0) / (float(records) * (float(records) - 1)))
    return found


def estimate_u(con: duckdb.DuckDBPyConnection, records: int, comparisons: tuple[Comparison, ...] = DEFAULT_COMPARISONS,
               table: str = "records") -> dict[str, dict[int, float]]:
    """How often two random records agree at each level (almost all random pairs are different people): the
    levels of equality on one column over all records (``exact_u``), the others from random pairs."""
    sample = min(records, RANDOM_SAMPLE_RECORDS)
    con.execute(f"CREATE OR REPLACE TEMP TABLE sampled AS SELECT * FROM {table} USING SAMPLE reservoir({sample} ROWS) "
                "REPEATABLE (42)")
    con.execute("CREATE OR REPLACE TEMP TABLE sampled_pairs AS " + compare_sql(
        "(SELECT l.id AS a, r.id AS b FROM sampled l JOIN sampled r ON l.id < r.id)", left="sampled", right="sampled",
        comparisons=comparisons))
    rows = con.execute(" UNION ALL ".join(f"SELECT '{c.name}', g_{c.name}, count(*) FROM sampled_pairs "
                                          f"GROUP BY g_{c.name}" for c in comparisons)).fetchall()
    con.execute("DROP TABLE sampled_pairs; DROP TABLE sampled")
    counts: dict[str, dict[int, int]] = {c.name: {} for c in comparisons}
    for name, level, n in rows:
        if level >= 0:
            counts[name][int(level)] = n
    exact = exact_u(con, comparisons, table)
    u = {}
    for c in comparisons:
        known = sum(counts[c.name].values())
        floor = 1 / max(known * 10, 1_000)  # a level no random pair reached is rare, not impossible
        agree = {level: max(counts[c.name].get(level, 0) / known if known else floor, floor) for level, _ in c.levels}
        if c.name in exact:
            level, share = exact[c.name]
            agree[level] = share
        different = counts[c.name].get(0, 0) / known if known else 1 - sum(agree.values())
        u[c.name] = {**agree, 0: max(different, floor)}
    return u


def _weight_terms(comparisons: tuple[Comparison, ...], m: dict[str, dict[int, float]],
                  u: dict[str, dict[int, float]]) -> list[str]:
    parts = []
    for c in comparisons:
        branches = " ".join(
            f"WHEN {level} THEN {math.log2(max(m[c.name].get(level, M_FLOOR), 1e-6) / max(u[c.name][level], 1e-9))!r}"
            for level in sorted(u[c.name], reverse=True))
        parts.append(f"(CASE g_{c.name} {branches} ELSE 0 END)")
    return parts


def teaching_rules(plan: Plan) -> list[tuple[Rule, tuple[str, ...], int]]:
    """The loosest variants on one field alone of the rules a run tightened (one per field), with their pairs
    (see TEACHING_PAIRS_PER_RECORD)."""
    found: list[tuple[Rule, tuple[str, ...], int]] = []
    seen: set[str] = set()
    for rule, keys, _ in plan.chosen:
        loosest = rule.variants[0]
        fields = {KEY_COMPARISONS.get(k, k) for k in loosest}
        pairs = plan.counts.get(rule.name, {}).get(loosest, 0)
        if keys != loosest and len(fields) == 1 and not fields & seen and pairs:
            seen |= fields
            found.append((rule, loosest, pairs))
    return found


def _teaching_pairs(con: duckdb.DuckDBPyConnection, records: int, plan: Plan, comparisons: tuple[Comparison, ...],
                    table: str) -> list[tuple[Rule, tuple[str, ...], float]]:
    """The table ``teaching`` (a, b, sample, g_…): for each of ``teaching_rules``, the pairs of the records of a
    random share (hash of the id) with every record agreeing on its keys; each sample with the weight of one of its
    pairs (the inverse of the chance that a pair is drawn)."""
    rules = teaching_rules(plan)
    budget = max(TEACHING_PAIRS_PER_RECORD * records / max(len(rules), 1), 1_000)
    selects, samples = [], []
    for index, (rule, keys, pairs) in enumerate(rules):
        share = math.ceil(2 * pairs / budget)  # one record in ``share`` draws its pairs
        drawn = 1 - (1 - 1 / share) ** 2 if share > 1 else 1.0
        where = f"hash(l.id) % {share} = 0" if share > 1 else "l.id < r.id"
        selects.append(f"SELECT DISTINCT least(l.id, r.id) AS a, greatest(l.id, r.id) AS b, {index}::TINYINT AS "
                       f"sample FROM {table} l JOIN {table} r ON {on_sql(keys)} AND l.id <> r.id WHERE {where}")
        samples.append((rule, keys, 1 / drawn))
    sql = " UNION ALL ".join(selects) or \
        "SELECT NULL::BIGINT AS a, NULL::BIGINT AS b, NULL::TINYINT AS sample WHERE false"
    con.execute("CREATE OR REPLACE TEMP TABLE teaching AS " + compare_sql(f"({sql})", left=table, right=table,
                                                                         comparisons=comparisons, extra=", p.sample"))
    return samples


def fit(con: duckdb.DuckDBPyConnection, records: int, plan: Plan,
        comparisons: tuple[Comparison, ...] = DEFAULT_COMPARISONS, table: str = "records") -> MatchModel:
    """u from random pairs; m and the prior by EM over the patterns of the table ``pairs`` (and of the teaching
    samples: see TEACHING_PAIRS_PER_RECORD)."""
    u = estimate_u(con, records, comparisons, table)
    measured = {c.name: dict(u[c.name]) for c in comparisons if c.identifier}
    names = [c.name for c in comparisons]
    possible = max(records * (records - 1) / 2, 1)
    trained_on = dict(con.execute("SELECT rule, count(*) FROM pairs GROUP BY rule").fetchall())
    trained_on = {rule.name: int(trained_on.get(index, 0)) for index, (rule, _, _) in enumerate(plan.chosen)}
    # per comparison, the bits of the rules that leave it free (and made enough pairs to teach)
    teach = {c.name: sum(1 << index for index, (rule, keys, _) in enumerate(plan.chosen)
                         if trained_on[rule.name] >= EM_MIN_PAIRS and c.name not in rule.fixes(keys))
             for c in comparisons}
    # The E-step weighs a pair as scoring will, with term frequencies: two records of 王伟 are less likely one
    # person than two of 欧阳修, and without them EM takes the common names' namesakes for matches. A value's
    # share goes in buckets (quarter powers of two) so that patterns stay few.
    make_tf_tables(con, comparisons, table)
    with_tf = [c for c in comparisons if c.tf_column and c.tf_levels]
    # each record's bucket of its values' shares, once: the pairs join it by id (joining every pair with its record
    # and the records' values with their shares took a fifth of a million records' fit)
    share_sql = "".join(f", round(log2(greatest(coalesce(tf_{c.name}.share, {TF_FLOOR!r}), {TF_FLOOR!r})) "
                        f"* {TF_BUCKETS}) AS tf_{c.name}" for c in with_tf)
    joins = " ".join(f"LEFT JOIN tf_{c.name} ON tf_{c.name}.v = l.{c.tf_column}" for c in with_tf)
    con.execute(f"CREATE OR REPLACE TEMP TABLE tf_buckets AS SELECT l.id{share_sql} FROM {table} l {joins}")
    buckets = [f"CASE WHEN g_{c.name} IN ({', '.join(map(str, c.tf_levels))}) THEN t.tf_{c.name} END AS tf_{c.name}"
               for c in with_tf]
    samples = _teaching_pairs(con, records, plan, comparisons, table)
    taught_by = [{c.name for c in comparisons if c.name not in rule.fixes(keys)} for rule, keys, _ in samples]
    levels = ", ".join("g_" + n for n in names)
    rows = con.execute(
        f"SELECT {levels}, bits, -1 AS sample, {''.join(b + ', ' for b in buckets)}count(*) FROM pairs p "
        f"JOIN tf_buckets t ON t.id = p.a GROUP BY ALL UNION ALL "
        f"SELECT {levels}, 0 AS bits, sample, {''.join(b + ', ' for b in buckets)}count(*) FROM teaching p "
        f"JOIN tf_buckets t ON t.id = p.a GROUP BY ALL").fetchall()
    con.execute("DROP TABLE teaching; DROP TABLE tf_buckets")
    agreeing = {c.name: set(c.tf_levels) for c in with_tf}
    # per pattern: its count (a teaching sample's as many as it stands for; they count no match towards the prior),
    # its known (comparison, level)s, the ones it teaches (a rule leaving it free), and its term-frequency shares
    patterns = []
    for row in rows:
        found, bits, sample = row[:len(names)], row[len(names)], row[len(names) + 1]
        shares, n = row[len(names) + 2:-1], row[-1]
        known = [(c, int(level)) for c, level in zip(names, found, strict=True) if level >= 0]
        tf = {c.name: 2 ** (share / TF_BUCKETS) for c, share in zip(with_tf, shares, strict=True) if share is not None}
        if sample < 0:
            patterns.append((float(n), True, known, [(c, level) for c, level in known if bits & teach[c]], tf))
        else:
            patterns.append((float(n) * samples[sample][2], False, known,
                             [(c, level) for c, level in known if c in taught_by[sample]], tf))
    m = {c.name: dict(c.default_m) for c in comparisons}
    prior = min(0.1 * records / possible, 0.5)  # a start: one record in ten has a twin
    taught: set[str] = set()
    for _ in range(EM_ITERATIONS):
        for n, among_all in measured.items():  # see IDENTIFIER_SHARE
            u[n] = {level: v if level == 0 else max((v - prior * m[n].get(level, 0.0)) / (1 - prior),
                                                    IDENTIFIER_SHARE * prior * m[n].get(level, M_FLOOR), 1e-12)
                    for level, v in among_all.items()}
        odds = prior / (1 - prior)
        ratios = {n: {level: max(m[n].get(level, M_FLOOR), 1e-6) / max(u[n][level], 1e-9) for level in u[n]}
                  for n in names}
        matched: dict[str, dict[int, float]] = {n: {} for n in names}
        expected = 0.0
        adjust = {n: sum(u[n].get(level, 0.0) for level in levels) for n, levels in agreeing.items()}
        for count, counted, known, teaches, tf in patterns:
            ratio = odds
            for c, level in known:
                ratio *= ratios[c].get(level, 1.0)
            for c, share in tf.items():  # see weight_sql
                ratio *= adjust[c] / share
            posterior = count * (ratio / (1 + ratio) if ratio < 1e300 else 1.0)
            expected += posterior if counted else 0.0
            for c, level in teaches:
                matched[c][level] = matched[c].get(level, 0.0) + posterior
        change = 0.0
        for n in names:
            mass = sum(matched[n].values())
            if mass <= 1e-9:
                continue
            taught.add(n)
            new = {level: max(matched[n].get(level, 0.0) / mass, M_FLOOR) for level in u[n]}
            cap = DIFFERENT_CAP.get(n)
            if cap is not None and new.get(0, 0.0) > cap:  # see DIFFERENT_CAP
                rest = sum(v for level, v in new.items() if level != 0)
                new = {level: cap if level == 0 else v * (1 - cap) / max(rest, 1e-12) for level, v in new.items()}
            change = max(change, *(abs(new[level] - m[n].get(level, 0.0)) for level in new))
            m[n] = new
        new_prior = min(max(expected / possible, 1e-12), 0.5)
        change = max(change, abs(new_prior - prior) / prior)
        prior = new_prior
        if change < 1e-5:
            break
    return MatchModel(m=m, u=u, prior=prior, records=records, trained_on=trained_on,
                      trained=[n for n in names if n in taught])


def make_tf_tables(con: duckdb.DuckDBPyConnection, comparisons: tuple[Comparison, ...] = DEFAULT_COMPARISONS,
                   table: str = "records") -> None:
    """Each term-frequency column's values with their share among the records that have one."""
    for c in comparisons:
        if c.tf_column:
            col = c.tf_column
            con.execute(f"CREATE OR REPLACE TEMP TABLE tf_{c.name} AS SELECT {col} AS v, count(*) / "
                        f"(SELECT count(*) FROM {table} WHERE {col} IS NOT NULL)::DOUBLE AS share "
                        f"FROM {table} WHERE {col} IS NOT NULL GROUP BY 1")


def _tf_adjustment(model: MatchModel, c: Comparison) -> tuple[float, str]:
    """The term-frequency adjustment of ``c`` at its agreeing levels: at most log2(Σu / TF_FLOOR) (a value's share is
    floored at TF_FLOOR), and its SQL over the pair's value ``tf_<name>.share``.

    A level's u for this value: the value's share (how often a random record has it) times the level's part of the
    agreeing levels (two 王伟 written alike are common, 王伟 and 王偉 are not): the adjustment
    log2(u / (share · u / Σu)) = log2(Σu / share) for every level that agrees on the value."""
    agreeing = max(sum(model.u[c.name].get(level, 0.0) for level in c.tf_levels), 1e-9)
    sql = f"log2({agreeing!r} / greatest(coalesce(tf_{c.name}.share, {TF_FLOOR!r}), {TF_FLOOR!r}))"
    return max(math.log2(agreeing / TF_FLOOR), 0.0), sql


def weight_sql(model: MatchModel, comparisons: tuple[Comparison, ...] = DEFAULT_COMPARISONS) -> tuple[str, str]:
    """The match weight of a row of pairs (columns g_<name>) as SQL, and the joins its term frequencies need
    (the left record ``l`` joined by id = a)."""
    parts = [repr(math.log2(model.prior / (1 - model.prior))), *_weight_terms(comparisons, model.m, model.u)]
    joins = []
    for c in comparisons:
        if c.tf_column and c.tf_levels:
            joins.append(f"LEFT JOIN tf_{c.name} ON tf_{c.name}.v = l.{c.tf_column}")
            _, adjustment = _tf_adjustment(model, c)
            parts.append(f"(CASE WHEN g_{c.name} IN ({', '.join(map(str, c.tf_levels))}) THEN {adjustment} ELSE 0 END)")
    return " + ".join(parts), " ".join(joins)


def _weight_bound_sql(model: MatchModel, comparisons: tuple[Comparison, ...]) -> str:
    """The most a row of pairs can weigh: its weight without term frequencies plus each one's largest adjustment
    (no join needed)."""
    parts = [repr(math.log2(model.prior / (1 - model.prior))), *_weight_terms(comparisons, model.m, model.u)]
    for c in comparisons:
        if c.tf_column and c.tf_levels:
            most, _ = _tf_adjustment(model, c)
            parts.append(f"(CASE WHEN g_{c.name} IN ({', '.join(map(str, c.tf_levels))}) THEN {most!r} ELSE 0 END)")
    return " + ".join(parts)


def score(con: duckdb.DuckDBPyConnection, model: MatchModel, threshold: float,
          comparisons: tuple[Comparison, ...] = DEFAULT_COMPARISONS, pairs: str = "pairs",
          table: str = "records") -> list[tuple[int, int, float, dict[str, int]]]:
    """The pairs of ``pairs`` (a, b, g_…) at ``threshold`` or more: (a, b, probability, levels). Only the pairs whose
    weight could reach it are joined with their term frequencies (most candidate pairs are far below it: at a
    million records the join was most of the time)."""
    names = [c.name for c in comparisons]
    weight, joins = weight_sql(model, comparisons)
    # (a margin: the bound and the weight are sums of the same terms in another order)
    least = math.log2(threshold / (1 - threshold)) - 1e-6 if 0 < threshold < 1 else -math.inf
    near = f"WHERE {_weight_bound_sql(model, comparisons)} >= {least!r}" if least > -math.inf else ""
    rows = con.execute(f"""
        WITH w AS (SELECT p.*, {weight} AS weight FROM (SELECT * FROM {pairs} {near}) p
                   JOIN {table} l ON l.id = p.a {joins})
        SELECT a, b, 1 / (1 + pow(2, -weight)) AS probability, {', '.join('g_' + n for n in names)}
        FROM w WHERE 1 / (1 + pow(2, -weight)) >= {threshold!r} ORDER BY a, b
    """).fetchall()
    return [(int(a), int(b), float(p), {n: int(v) for n, v in zip(names, rest, strict=True)})
            for a, b, p, *rest in rows]


__all__ = ["COMPARISONS", "MatchModel", "estimate_u", "exact_u", "fit", "make_tf_tables", "score", "weight_sql"]
