"""compare_sql computes each pair's levels as the comparisons spell them: the records' columns read once, the name
parts' similarities once per pair and only where a level reads them (kehu.cdp.matching.comparisons). Checked on
every pair of a corrupted Western sample and of Chinese names, against the levels written out in full."""

from __future__ import annotations

import re
from collections import Counter

import duckdb

from kehu.cdp.matching import DEFAULT_COMPARISONS, compare_sql
from kehu.cdp.matching.comparisons import NAME, Comparison
from kehu.demo import western
from tests.cdp.matching_helpers import load_rows

CHINESE = ("张伟", "張偉", "Zhang Wei", "Wei Zhang", "王伟", "王偉", "刘洋", "刘阳", "欧阳修", "张建华", "张建平",
           "李娜", "D. Smith", "David", "Smith", "Smith David", "Davdi Smith", "Bill Jones", "William Jones", "Jones")


def _written_out(comparison: Comparison) -> str:
    """The comparison's level with every similarity the levels read computed where it is read (as before the values
    were shared): name_jw<i><j> is the Jaro–Winkler similarity of part i of l and part j of r, on every pair."""
    spelt = re.sub(r"name_jw(\d)(\d)", lambda m: f"jaro_winkler_similarity(l.p{m[1]}, r.p{m[2]})",
                   comparison.level_sql())
    return f"({spelt})::TINYINT AS g_{comparison.name}"


def _rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for record in western.records(customers=300, seed=5):
        rows.append({"name": record.name, "birthday": record.birthday, "mobile": record.mobile, "email": record.email,
                     "city": record.city, "address": record.address, "postcode": record.postcode,
                     "gender": record.gender})
    rows += [{"name": name} for name in (*CHINESE, None)]
    return rows


def test_levels_as_written_out_on_every_pair() -> None:
    con = duckdb.connect()
    records = load_rows(con, _rows())
    con.execute("CREATE TABLE p AS SELECT l.id AS a, r.id AS b FROM records l JOIN records r ON l.id < r.id")
    names = ", ".join(f"g_{c.name}" for c in DEFAULT_COMPARISONS)
    found = con.execute(f"SELECT a, b, {names} FROM ({compare_sql('p')}) ORDER BY a, b").fetchall()
    expected = con.execute(
        f"SELECT p.a, p.b, {', '.join(_written_out(c) for c in DEFAULT_COMPARISONS)} FROM p "
        "JOIN records l ON l.id = p.a JOIN records r ON r.id = p.b ORDER BY p.a, p.b").fetchall()
    assert len(found) == records * (records - 1) // 2
    assert found == expected
    # the sample reaches every level of the name (a level no pair reached would not have been checked)
    index = [c.name for c in DEFAULT_COMPARISONS].index("name") + 2
    reached = Counter(row[index] for row in found)
    assert {level for level, _ in NAME.levels} | {0, -1} <= set(reached), reached
