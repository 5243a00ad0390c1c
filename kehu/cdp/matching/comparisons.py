"""What is compared between two records, level by level: each comparison's levels from the strongest agreement
down to 0 ("different"), and -1 when either record lacks the field (no evidence either way). The SQL sees the
two records of a pair as ``l`` and ``r`` (rows of the ``records`` table, see ``records.derive``), and the pair's
``values`` by their names: a costly similarity that several levels read is computed once per pair (DuckDB does
not share a repeated expression inside AND and OR, and computed the name parts' Jaro–Winkler up to five times).

The labels of each level are the catalogue keys ``dedupe.level.<comparison>.<level>`` (zh and en): the review
queue and the model's chart show them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Comparison:
    name: str
    unknown: str  # SQL: true when a record lacks the field
    levels: tuple[tuple[int, str], ...]  # (level, SQL condition), strongest first; none met: level 0
    default_m: dict[int, float]  # how often one person's records reach each level, where the data cannot teach it
    # Term frequency: at these levels a common value (王伟, London) says less than a rare one; the column whose
    # value's share among the records replaces the level's average u.
    tf_column: str | None = None
    tf_levels: tuple[int, ...] = ()
    fields: tuple[str, ...] = field(default=())  # the records' keys it reads (a blocking rule on them fixes it)
    # Values that name one person (an ID or membership number): random pairs agreeing on it are mostly the same
    # person, so its u is taken among the other pairs (see model.fit)
    identifier: bool = False
    # Values of a pair computed once before the levels, in order: (name, SQL over l., r. and the values named before
    # it); the levels read them by name. Names are the comparison's own (``<comparison>_…``).
    values: tuple[tuple[str, str], ...] = ()

    @property
    def top(self) -> int:
        return self.levels[0][0]

    def level_sql(self) -> str:
        branches = " ".join(f"WHEN {condition} THEN {level}" for level, condition in self.levels)
        return f"CASE WHEN {self.unknown} THEN -1 {branches} ELSE 0 END"


def _aligned(both: Callable[[str, str], str]) -> str:
    """Both name parts agree by ``both(i, j)`` (part i of l with part j of r), in the order written or swapped."""
    return f"(({both('1', '1')} AND {both('2', '2')}) OR ({both('1', '2')} AND {both('2', '1')}))"


def _similar(i: str, j: str) -> str:
    """Name part i of l and part j of r by Jaro–Winkler: the pair's value name_jw<i><j> (see NAME.values)."""
    return f"name_jw{i}{j}"


def _near(i: str, j: str, at: float = 0.9) -> str:
    # (the similarity counts only where the lengths allow a typo or two)
    return (f"(l.p{i} = r.p{j} OR (CASE WHEN abs(length(l.p{i}) - length(r.p{j})) <= 2 "
            f"THEN {_similar(i, j)} >= {at} END))")


def _alike(i: str, j: str) -> str:
    return f"(l.p{i} = r.p{j} OR l.s{i} = r.s{j} OR l.c{i} = r.c{j} OR {_similar(i, j)} >= 0.85)"


def _initial(i: str, j: str) -> str:
    """Part i of one record is the initial of part j of the other (D. / David)."""
    return (f"((length(l.p{i}) = 1 AND length(r.p{j}) > 1 AND l.p{i} = left(r.p{j}, 1)) "
            f"OR (length(r.p{j}) = 1 AND length(l.p{i}) > 1 AND r.p{j} = left(l.p{i}, 1)))")


def _one_missing() -> str:
    """One record has a single name part, and the other has it as one of its two (given or family missing)."""
    single = "({a}.p2 IS NULL AND {b}.p2 IS NOT NULL AND ({a}.p1 = {b}.p1 OR {a}.p1 = {b}.p2 " \
             "OR {a}.s1 = {b}.s1 OR {a}.s1 = {b}.s2 OR {a}.c1 = {b}.c1 OR {a}.c1 = {b}.c2))"
    return f"({single.format(a='l', b='r')} OR {single.format(a='r', b='l')})"


def _one_off(a: str, b: str, guard: str = "true", chars: tuple[str, str] | None = None) -> str:
    """One character mistyped, missing, extra or two swapped (the costly distance only where lengths and
    ``guard`` allow; where the lengths differ no swap can be the difference, and Levenshtein's distance is a
    quarter of the cost of Damerau's). ``chars``: columns of each side's characters in order (records.derive),
    equal where two characters are swapped."""
    # (CASE, not AND: DuckDB computes every operand of AND on every row, the costly distance too)
    swap = f" AND {chars[0]} = {chars[1]}" if chars else ""
    return (f"(CASE WHEN abs(length({a}) - length({b})) > 1 OR NOT ({guard}) THEN false "
            f"WHEN length({a}) = length({b}) THEN (CASE WHEN hamming({a}, {b}) <= 1 THEN true "
            f"WHEN hamming({a}, {b}) = 2{swap} THEN damerau_levenshtein({a}, {b}) <= 1 ELSE false END) "
            f"ELSE levenshtein({a}, {b}) <= 1 END)")


one_off = _one_off  # for the organisation's own comparisons (matching.config)


def _one_part(i: str, j: str) -> str:
    return f"(l.p{i} = r.p{j} AND length(l.p{i}) > 1)"


# Two names written in characters are alike by their sound exactly (homophones, traditional forms) or not at all:
# how close two readings are spelt (张建华 jianhua, 张建平 jianping) says nothing of a typing error, which only
# someone typing letters makes.
_SPELT = "NOT coalesce(l.cjk AND r.cjk, false)"
# Levels 7 to 5 compare both parts of two names written in letters
_BOTH_PARTS = f"l.p2 IS NOT NULL AND r.p2 IS NOT NULL AND {_SPELT}"
# (two name keys alike are level 9 or 8, whatever the parts' similarities)
_SIMILARITY_NEEDED = f"{_BOTH_PARTS} AND l.name_key <> r.name_key"

NAME = Comparison(
    "name", "l.p1 IS NULL OR r.p1 IS NULL", (
        (9, "l.name_lower = r.name_lower"),
        # characters ↔ pinyin, traditional ↔ simplified, homophones, parts in either order
        (8, "l.name_key = r.name_key"),
        (7, f"{_BOTH_PARTS} AND {_aligned(lambda i, j: _near(i, j, 0.92))}"),
        # sounds alike, nickname
        (6, f"{_BOTH_PARTS} AND {_aligned(_alike)}"),
        # (the initial first: it is cheap and rarely true)
        (5, f"{_BOTH_PARTS} AND (({_initial('2', '2')} AND {_alike('1', '1')}) OR ({_initial('1', '1')} AND "
            f"{_alike('2', '2')}) OR ({_initial('2', '1')} AND {_alike('1', '2')}) OR ({_initial('1', '2')} AND "
            f"{_alike('2', '1')}))"),
        (4, _one_missing()),
        (3, f"CASE WHEN {_SPELT} AND abs(length(l.name_key) - length(r.name_key)) <= 3 "
            "THEN jaro_winkler_similarity(l.name_key, r.name_key) >= 0.88 END"),
        (2, f"({_one_part('1', '1')} OR {_one_part('2', '2')} OR {_one_part('1', '2')} OR {_one_part('2', '1')})"),
    ),
    default_m={9: 0.3, 8: 0.3, 7: 0.12, 6: 0.08, 5: 0.04, 4: 0.04, 3: 0.04, 2: 0.05, 0: 0.03},
    tf_column="name_key", tf_levels=(9, 8), fields=("name",),
    # Each part's similarity once, and only where a level 7 to 5 reads it (a pair of another name key whose parts
    # differ); the second part of an alignment only where the first is alike or an initial (else neither alignment
    # nor level 5 holds, whatever it is). Where a value is left NULL the levels reading it are met or failed already.
    values=(
        ("name_jw11", f"CASE WHEN {_SIMILARITY_NEEDED} AND l.p1 <> r.p1 THEN jaro_winkler_similarity(l.p1, r.p1) END"),
        ("name_jw12", f"CASE WHEN {_SIMILARITY_NEEDED} AND l.p1 <> r.p2 THEN jaro_winkler_similarity(l.p1, r.p2) END"),
        ("name_jw22", f"CASE WHEN {_SIMILARITY_NEEDED} AND l.p2 <> r.p2 AND ({_alike('1', '1')} OR "
                      f"{_initial('1', '1')}) THEN jaro_winkler_similarity(l.p2, r.p2) END"),
        ("name_jw21", f"CASE WHEN {_SIMILARITY_NEEDED} AND l.p2 <> r.p1 AND ({_alike('1', '2')} OR "
                      f"{_initial('1', '2')}) THEN jaro_winkler_similarity(l.p2, r.p1) END"),
    ))

BIRTHDAY = Comparison(
    "birthday", "l.birthday IS NULL OR r.birthday IS NULL", (
        (5, "l.birthday = r.birthday"),
        # one digit mistyped, or two swapped (the costly distance only where two digits differ)
        (4, "CASE WHEN hamming(l.bstr, r.bstr) <= 1 THEN true WHEN hamming(l.bstr, r.bstr) = 2 "
            "AND l.bstr_chars = r.bstr_chars THEN damerau_levenshtein(l.bstr, r.bstr) <= 1 ELSE false END"),
        (3, "l.byear = r.byear AND month(l.birthday) = day(r.birthday) AND day(l.birthday) = month(r.birthday)"),
        (2, "l.bmd = r.bmd"),  # the year mistyped
        (1, "l.byear = r.byear AND month(l.birthday) = month(r.birthday)"),
    ),
    default_m={5: 0.8, 4: 0.06, 3: 0.03, 2: 0.04, 1: 0.02, 0: 0.05}, fields=("birthday",))

STREET_CHARS = ("l.street_chars", "r.street_chars")
# The address and the postcode are one comparison: two records on one street share both, and counting them apart
# (with the city) made neighbours look like one person.
ADDRESS = Comparison(
    "address", "(l.addr IS NULL AND l.pc IS NULL) OR (r.addr IS NULL AND r.pc IS NULL)", (
        (6, "l.addr = r.addr AND coalesce(l.pc = r.pc, true)"),
        # (the same street name and number in another town is not the same address)
        # (streets by edit distance, not Jaro-Winkler: two Chinese addresses of one city share a long prefix)
        (5, f"(l.addr = r.addr OR (l.house = r.house AND {_one_off('l.street', 'r.street', chars=STREET_CHARS)})) "
            f"AND coalesce(l.pc = r.pc OR (l.pc_alpha AND {_one_off('l.pc', 'r.pc')}), true)"),
        (4, "l.pc = r.pc"),  # a neighbour, or the address written another way
        # a typo in a postcode with letters (LS7 4QH); all-digit postcodes one digit apart are neighbouring
        # districts of one city (200001, 200002), which the city says already
        (3, f"l.pc_alpha AND {_one_off('l.pc', 'r.pc')}"),
        (2, _one_off("l.street", "r.street", chars=STREET_CHARS)),  # the same street, another number
        (1, "l.pc_district = r.pc_district"),  # the same town or district (the city is not counted again)
    ),
    default_m={6: 0.4, 5: 0.1, 4: 0.1, 3: 0.05, 2: 0.05, 1: 0.1, 0: 0.2}, fields=("address", "postcode"))

# The city only where a postcode is missing: two postcodes say the place already, and counting both made EM take
# "same place" for "same person" (a town's namesakes)
CITY = Comparison(
    "city", "l.city IS NULL OR r.city IS NULL OR (l.pc IS NOT NULL AND r.pc IS NOT NULL)", (
        (2, "l.city = r.city"),
        (1, "abs(length(l.city) - length(r.city)) <= 2 AND jaro_winkler_similarity(l.city, r.city) >= 0.9"),
    ),
    default_m={2: 0.75, 1: 0.05, 0: 0.2}, tf_column="city", tf_levels=(2,), fields=("city",))

MOBILE = Comparison(
    "mobile", "l.mobile IS NULL OR r.mobile IS NULL", (
        (2, "l.mobile = r.mobile"),
        (1, "length(l.mobile) = length(r.mobile) AND hamming(l.mobile, r.mobile) <= 1"),  # one digit mistyped
    ),
    default_m={2: 0.5, 1: 0.05, 0: 0.45}, fields=("mobile",))

EMAIL = Comparison(
    "email", "l.email IS NULL OR r.email IS NULL", (
        (2, "l.email = r.email"),
        # the typo in the name or in the domain, not both
        (1, _one_off("l.email", "r.email", "(split_part(l.email, '@', 2) = split_part(r.email, '@', 2) "
                                            "OR split_part(l.email, '@', 1) = split_part(r.email, '@', 1))")),
    ),
    default_m={2: 0.5, 1: 0.05, 0: 0.45}, fields=("email",))

# Not where the names agree: a given name says the gender already (two 王伟 are both men, two Davids too), and
# counting it again made every namesake look twice as much like one person.
GENDER = Comparison("gender", "l.gender IS NULL OR r.gender IS NULL OR l.name_key = r.name_key",
                    ((1, "l.gender = r.gender"),),
                    default_m={1: 0.97, 0: 0.03}, fields=("gender",))

DEFAULT_COMPARISONS: tuple[Comparison, ...] = (NAME, BIRTHDAY, MOBILE, EMAIL, CITY, ADDRESS, GENDER)
COMPARISONS: dict[str, Comparison] = {c.name: c for c in DEFAULT_COMPARISONS}


# A column of one record of the pair in a comparison's SQL
_COLUMN = re.compile(r"\b([lr])\.([A-Za-z_]\w*)")


def _flat(sql: str) -> str:
    """``sql`` reading the record's columns as the pair's own (l.p1 → l_p1): see compare_sql."""
    return _COLUMN.sub(r"\1_\2", sql)


def levels_sql(comparisons: tuple[Comparison, ...] = DEFAULT_COMPARISONS) -> str:
    """Each comparison's level as a column ``g_<name>``, over a row of the pair's columns (l_<column>, r_<column>)
    and values (``compare_sql``)."""
    return ", ".join(f"({_flat(c.level_sql())})::TINYINT AS g_{c.name}" for c in comparisons)


def compare_sql(pairs: str, *, left: str = "records", right: str = "records",
                comparisons: tuple[Comparison, ...] = DEFAULT_COMPARISONS, extra: str = "") -> str:
    """A SELECT of ``pairs`` (a table or subquery with columns ``a``, ``b``: ids of ``left`` and ``right``) with
    each comparison's level; ``extra``: more columns of ``pairs`` (", p.rule"). ``left`` and ``right`` may differ:
    one new record (a table of one row) against the stored ones.

    The records are joined once and the columns the comparisons read taken as the pair's (l_p1, r_p1); each
    comparison's ``values`` are computed over them in a projection of their own, so every level reads a value
    computed once."""
    sql = [s for c in comparisons for s in (c.unknown, *(cond for _, cond in c.levels), *(v for _, v in c.values))]
    columns = sorted({(side, column) for text in sql for side, column in _COLUMN.findall(text)})
    read = "".join(f", {side}.{column} AS {side}_{column}" for side, column in columns)
    query = (f"SELECT p.a, p.b{extra}{read} FROM {pairs} p "
             f"JOIN {left} l ON l.id = p.a JOIN {right} r ON r.id = p.b")
    for name, value in (v for c in comparisons for v in c.values):
        query = f"SELECT *, {_flat(value)} AS {name} FROM ({query})"
    kept = re.sub(r"\bp\.", "", extra)  # the extra columns of pairs, by their names
    levels = levels_sql(comparisons)
    return f"SELECT a, b{kept}{', ' + levels if levels else ''} FROM ({query})"
