"""u, the chance that two random records agree at a level: where the level is equality on one column (the name
written alike, the same birthday, mobile, e-mail) it is counted over all records, exactly, not from a sample of
1,500 (at 1,000,000 records the sample met a few namesakes, and the names' weights, with the F1, went by the draw)."""

from __future__ import annotations

import itertools

import duckdb

from kehu.cdp.matching import DEFAULT_COMPARISONS, model
from tests.cdp.matching_helpers import load_rows
from tests.cdp.test_blocking_recall import chinese_set


def _share_agreeing(values: list[object]) -> float:
    """Among the pairs of records that have the field, the share that agree on it (every pair, counted)."""
    pairs = list(itertools.combinations(values, 2))
    return sum(a == b for a, b in pairs) / len(pairs)


def test_u_of_an_equality_level_is_its_exact_share_of_all_pairs() -> None:
    rows, _ = chinese_set(people=1500)  # more records than the random sample takes
    assert len(rows) > model.RANDOM_SAMPLE_RECORDS
    con = duckdb.connect()
    records = load_rows(con, rows)
    u = model.estimate_u(con, records)
    names = [v for (v,) in con.execute("SELECT name_lower FROM records WHERE p1 IS NOT NULL").fetchall()]
    birthdays = [v for (v,) in con.execute("SELECT birthday FROM records WHERE birthday IS NOT NULL").fetchall()]
    mobiles = [v for (v,) in con.execute("SELECT mobile FROM records WHERE mobile IS NOT NULL").fetchall()]
    assert abs(u["name"][9] - _share_agreeing(names)) < 1e-12
    assert abs(u["birthday"][5] - _share_agreeing(birthdays)) < 1e-12
    # no two records here share a mobile: as if one pair did (rare, not impossible), not the floor of a sample's
    # unseen level (1 / 10 × its pairs, a thousand times more)
    assert _share_agreeing(mobiles) == 0
    assert u["mobile"][2] == 1 / (len(mobiles) * (len(mobiles) - 1) / 2)
    con.close()


def test_only_a_strongest_level_of_equality_on_one_column_is_counted() -> None:
    """The levels below the strongest share their pairs with it (two names alike by their key are not at level 8
    when written alike), and a comparison whose unknown depends on both records (the gender where the names agree,
    the city where both have a postcode) is not a record's own: these stay sampled."""
    levels = {c.name: model._equality_level(c) for c in DEFAULT_COMPARISONS}
    assert levels["name"] == (9, "name_lower", ["p1"])
    assert levels["birthday"] == (5, "birthday", ["birthday"])
    assert levels["mobile"] == (2, "mobile", ["mobile"]) and levels["email"] == (2, "email", ["email"])
    assert levels["gender"] is None and levels["city"] is None and levels["address"] is None
