"""Which pairs of records are compared at all (blocking): a pair is a candidate when it agrees exactly on the
keys of at least one rule. Many cheap rules, each on one field or on a phonetic or prefix key, so that a
duplicate with a typo here and a missing field there still meets its twin under some rule; each pair once.

Before a run each rule's comparisons are counted (one SQL count per rule and variant: the sum over its blocks of
n·(n−1)/2) against a ceiling of ``max_pairs_per_record`` × records. A rule has variants from loosest to
tightest (name key alone; name key + birth year; + city…): every rule starts at its tightest, and rules are
loosened in order while the run stays under the ceiling. If even the tightest variants exceed it, the run does not
start (``TooManyComparisons``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from kehu.core.errors import KehuError

# Which comparison each key of the records stands for: a rule on a key fixes that comparison among its pairs
KEY_COMPARISONS = {"mobile": "mobile", "email": "email", "name_key": "name", "sound_key": "name",
                   "initials": "name", "fam": "name", "name_pre": "name", "name_suf": "name",
                   "s1": "name", "s2": "name", "gender": "gender", "p1": "name", "p2": "name", "birthday": "birthday",
                   "byear": "birthday", "bmd": "birthday", "city": "city", "pc": "address",
                   "pc_district": "address", "pc_area": "address", "house": "address", "street": "address",
                   "addr": "address"}

# The city and the address (its postcode's district) say one place: pairs blocked on one city are in one postcode
# district too, and taught the address's m that one person's records were at one place (0.6 where it is 0.5).
SAME_PLACE = {"city": ("address",), "address": ("city",)}

# A rule is loosened only while it makes at most 1/RULE_SHARE of the ceiling's pairs. At a fifth, 1.57 M Western
# records compared 40.0 M pairs, 14.5 M of them met only by the whole name's key alone and 8.0 M only by the names'
# prefixes in a postcode area, for 1,288 and 424 pairs scored as matches that no other rule met; at a tenth, 20.7 M
# pairs and 0.09 % fewer matches (F1 0.933 → 0.932), in two thirds of the time.
RULE_SHARE = 10


class TooManyComparisons(KehuError):
    """A run would compare more pairs than the ceiling allows, even with every blocking rule at its tightest."""

    status, slug, title = 422, "too-many-comparisons", "Too many comparisons"


@dataclass(frozen=True)
class Rule:
    name: str
    variants: tuple[tuple[str, ...], ...]  # equal keys, loosest first

    def fixes(self, keys: tuple[str, ...]) -> set[str]:
        # a custom field's column (cf_<key>) is its comparison's name too (see matching.config)
        fixed = {KEY_COMPARISONS.get(k, k) for k in keys if k in KEY_COMPARISONS or k.startswith("cf_")}
        return fixed | {also for c in fixed for also in SAME_PLACE.get(c, ())}


# In the order they are loosened (the most telling first).
_RULES: tuple[Rule, ...] = (
    Rule("mobile", (("mobile",),)),
    Rule("email", (("email",),)),
    Rule("name_year", (("name_key",), ("name_key", "byear"), ("name_key", "byear", "city"))),
    Rule("birthday", (("birthday",), ("birthday", "initials"), ("birthday", "initials", "city"))),
    Rule("sound_year", (("sound_key", "byear"), ("sound_key", "bmd"), ("sound_key", "birthday"))),
    Rule("postcode_house", (("pc", "house"), ("pc", "house", "initials"))),
    # not the postcode alone: a flood of neighbours taught the model that one street is one person
    Rule("postcode_initials", (("pc", "initials"), ("pc", "initials", "gender"))),
    Rule("street_house", (("street", "house", "pc_area"), ("street", "house", "city"),
                          ("street", "house", "city", "initials"))),
    Rule("sound_birth_day", (("sound_key", "bmd"), ("sound_key", "birthday"))),
    Rule("sound_district", (("sound_key", "pc_district"), ("sound_key", "pc"))),
    Rule("name_city", (("name_key", "city"), ("name_key", "city", "byear"))),
    Rule("family_birth_day", (("fam", "bmd"), ("fam", "bmd", "initials"))),
    Rule("initials_birthday_city", (("initials", "bmd", "city"), ("initials", "bmd", "city", "pc_district"))),
    Rule("given_street", (("p1", "street", "pc_area"), ("p1", "street", "city"))),
    # one name part as written (the other may carry the typo: its initial stays) and the birth year
    Rule("first_part_year", (("p1", "byear", "initials", "city"), ("p1", "byear", "initials", "pc_district"))),
    Rule("last_part_year", (("p2", "byear", "initials"), ("p2", "byear", "initials", "city"))),
    Rule("first_part_district", (("p1", "pc"), ("p1", "pc", "gender"))),
    Rule("last_part_district", (("p2", "pc_district"), ("p2", "pc_district", "gender"))),
    # both parts' first or last three letters (a typo in the middle, a letter lost at the other end)
    Rule("name_prefixes", (("name_pre", "pc_area"), ("name_pre", "byear"), ("name_pre", "city"))),
    Rule("name_suffixes", (("name_suf", "pc_area"), ("name_suf", "byear"), ("name_suf", "city"))),
    # one part's sound key where the other part is lost or mangled (loose variants of these added hundreds of
    # thousands of pairs for a few hundred true ones at 157,000 records: not worth comparing)
    Rule("last_sound_area", (("s2", "pc_district"), ("s2", "pc"))),
    Rule("first_sound_area", (("s1", "pc"),)),
)


def _with_birthday(rule: Rule) -> Rule:
    """Every rule's tightest variant takes the birthday too (unless it has it or its month-day): on data where a
    rule's keys are common (48 given names in a city's postcode district) it still fits under the ceiling."""
    last = rule.variants[-1]
    if {"birthday", "bmd", "mobile", "email"} & set(last):
        return rule
    return Rule(rule.name, (*rule.variants, (*last, "birthday")))


with_birthday = _with_birthday  # for the organisation's own rules (matching.config)
DEFAULT_RULES: tuple[Rule, ...] = tuple(_with_birthday(rule) for rule in _RULES)


@dataclass
class Plan:
    """The rules as a run will use them: each rule's chosen keys and the comparisons they add (counted)."""

    records: int
    ceiling: int  # most candidate pairs allowed
    chosen: list[tuple[Rule, tuple[str, ...], int]]  # rule, its keys, the pairs it makes (before de-duplication)
    counts: dict[str, dict[tuple[str, ...], int]]  # the variants counted (those the plan needed)

    @property
    def pairs(self) -> int:
        return sum(n for *_, n in self.chosen)

    def as_list(self) -> list[dict[str, Any]]:
        return [{"rule": rule.name, "keys": list(keys), "pairs": n, "tightened": keys != rule.variants[0]}
                for rule, keys, n in self.chosen]


def on_sql(keys: tuple[str, ...], left: str = "l", right: str = "r") -> str:
    """The join condition of two records agreeing on ``keys`` (a rule's variant)."""
    return " AND ".join(f"{left}.{k} = {right}.{k}" for k in keys)


def count(con: duckdb.DuckDBPyConnection, keys: tuple[str, ...], table: str = "records") -> int:
    """The pairs a rule on ``keys`` makes: per block of equal keys n·(n−1)/2, summed (one SQL, no join)."""
    columns = ", ".join(keys)
    found = con.execute(f"SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM (SELECT count(*)::HUGEINT AS n FROM {table} "
                        f"WHERE {' AND '.join(f'{k} IS NOT NULL' for k in keys)} GROUP BY {columns})").fetchone()
    return int(found[0]) if found else 0


def plan(con: duckdb.DuckDBPyConnection, records: int, *, max_pairs_per_record: int,
         rules: tuple[Rule, ...] = DEFAULT_RULES, table: str = "records") -> Plan:
    """Take each rule at its tightest, then loosen rules in order while the sum stays under the ceiling; raises
    TooManyComparisons when even the tightest variants exceed it.

    Only the variants the loosening needs are counted (each count is a grouping of every record): the loosest, and
    where it does not fit the others from the tightest up, skipping a variant whose keys are among those of one that
    did not fit (it makes at least as many pairs, so it cannot fit either); a variant tighter than one that fits is
    never counted. The choice is the one counting every variant gives. The loosest is always counted: a tightened
    rule's teaches the model (``model.teaching_rules``)."""
    ceiling = max(max_pairs_per_record * records, 1_000)
    counts: dict[str, dict[tuple[str, ...], int]] = {rule.name: {} for rule in rules}

    by_keys: dict[tuple[str, ...], int] = {}  # two rules may share a variant (a grouping of every record each)

    def counted(rule: Rule, keys: tuple[str, ...]) -> int:
        if keys not in counts[rule.name]:
            if keys not in by_keys:
                by_keys[keys] = count(con, keys, table)
            counts[rule.name][keys] = by_keys[keys]
        return counts[rule.name][keys]

    chosen_index = {rule.name: len(rule.variants) - 1 for rule in rules}
    total = sum(counted(rule, rule.variants[-1]) for rule in rules)
    if total > ceiling:
        worst = max(rules, key=lambda r: counts[r.name][r.variants[-1]])
        raise TooManyComparisons(
            detail=f"Blocking would compare {total:,} pairs of {records:,} records, over the ceiling of "
                   f"{ceiling:,} ({max_pairs_per_record} per record; KEHU_DEDUPE_MAX_PAIRS_PER_RECORD); the rule "
                   f"{worst.name} alone makes {counts[worst.name][worst.variants[-1]]:,}.",
            message=("dedupe.too_many", {"pairs": f"{total:,}", "ceiling": f"{ceiling:,}", "rule": worst.name}),
            extra={"records": records, "pairs": total, "ceiling": ceiling,
                   "rules": {r.name: counts[r.name][r.variants[-1]] for r in rules}})
    for rule in rules:  # loosen, most telling rules first; no rule takes more than its share of the ceiling
        current = counts[rule.name][rule.variants[-1]]
        room = min(ceiling - total + current, ceiling // RULE_SHARE)  # the most pairs a variant may make
        if len(rule.variants) > 1 and counted(rule, rule.variants[0]) <= room:
            chosen_index[rule.name] = 0  # the loosest fits: no tighter one is needed (a small organisation)
        elif len(rule.variants) > 2:
            too_many = [set(rule.variants[0])]  # keys of the variants that did not fit
            for index in range(len(rule.variants) - 2, 0, -1):  # from the tightest up to the loosest that fits
                keys = rule.variants[index]
                if any(set(keys) <= failed for failed in too_many):
                    continue
                if counted(rule, keys) <= room:
                    chosen_index[rule.name] = index  # a looser one may fit still
                else:
                    too_many.append(set(keys))
        total += counts[rule.name][rule.variants[chosen_index[rule.name]]] - current
    chosen = [(rule, rule.variants[chosen_index[rule.name]], counts[rule.name][rule.variants[chosen_index[rule.name]]])
              for rule in rules]
    return Plan(records=records, ceiling=ceiling, chosen=chosen, counts=counts)


def key_codes(con: duckdb.DuckDBPyConnection, rules: tuple[Rule, ...] = DEFAULT_RULES, table: str = "records",
              codes: str = "record_keys") -> str:
    """The table ``codes``: each record's id and every key of ``rules`` as an integer (its hash; a number or a date
    as it is), for counting the rules' pairs and joining on them: a grouping or a join on integers, not on text (at
    1.57 M records the 22 rules' self-joins and their grouping: 26.7 -> 20.0 CPU seconds). A key whose distinct
    values' hashes clash (two values, one hash: DuckDB's hash of text is not collision-free) keeps its text, so two
    records agree on a code exactly where they agree on the key. Returns ``codes``."""
    keys = sorted({k for rule in rules for variant in rule.variants for k in variant})
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall())
    texts = [k for k in keys if types[k] not in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "DATE")]
    clashing: set[str] = set()
    if texts:
        clashing = {k for (k,) in con.execute(" UNION ALL ".join(
            f"SELECT '{k}' FROM (SELECT 1 FROM {table} WHERE {k} IS NOT NULL GROUP BY hash({k}) "
            f"HAVING min({k}) <> max({k}) LIMIT 1)" for k in texts)).fetchall()}
    columns = ", ".join(f"CASE WHEN {k} IS NOT NULL THEN hash({k}) END AS {k}" if k in texts and k not in clashing
                        else k for k in keys)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {codes} AS SELECT id, {columns} FROM {table}")
    return codes


def candidates_sql(chosen: list[tuple[Rule, tuple[str, ...], int]], table: str = "records") -> str:
    """Every pair meeting a chosen rule, once, with the first rule that made it (its index) and the bits of all the
    rules it meets (rule i: 1 << i; for teaching the model). One grouping of every rule's pairs: a third of the time
    of each rule skipping the pairs of the rules before it (a condition growing with every rule); the grouping ORs
    each rule's bit, so no pair's keys are tested again rule by rule afterwards."""
    # BIGINT: up to 40 rules of an organisation's own (matching.config.MAX_RULES)
    selects = [f"SELECT l.id AS a, r.id AS b, {index}::TINYINT AS rule, {1 << index}::BIGINT AS bit FROM {table} l "
               f"JOIN {table} r ON {on_sql(keys)} AND l.id < r.id" for index, (_, keys, n) in enumerate(chosen) if n]
    if not selects:
        return "SELECT NULL::BIGINT AS a, NULL::BIGINT AS b, NULL::TINYINT AS rule, NULL::BIGINT AS bits WHERE false"
    return f"SELECT a, b, min(rule) AS rule, bit_or(bit) AS bits FROM ({' UNION ALL '.join(selects)}) GROUP BY a, b"
