"""Blocking that does not lose pairs: on a small corrupted set made by the demo generator's own corruption
(kehu.demo.customers: similar characters, pinyin in either order, traditional characters; a second record often
without birthday, at another dealer's city, with another mobile), the share of true pairs the blocking rules
compare at all. A rule change that loses true pairs fails here. And the ceiling: a run that would compare too many
pairs tightens its rules first, and says so when it cannot."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from typing import Any

import duckdb
import pytest

from kehu.cdp import matching
from kehu.cdp.matching import blocking
from kehu.cdp.matching.blocking import candidates_sql
from kehu.demo.customers import _person, noisy_name
from tests.cdp.matching_helpers import load_rows

CITIES = ["上海", "杭州", "北京", "广州", "深圳", "南京", "苏州", "成都", "武汉", "西安", "重庆", "天津"]
# What the default rules reach on these sets (measured); a change may raise these, never lower them.
CHINESE_RECALL_FLOOR = 0.99


def chinese_set(people: int = 3000, seed: int = 3) -> tuple[list[dict[str, Any]], list[str]]:
    rng = random.Random(seed)
    rows, persons = [], []
    for number in range(people):
        raw = _person(rng)
        home = rng.choice(CITIES)
        copies = rng.choice((2, 2, 2, 3, 4)) if rng.random() < 0.25 else 1
        for variant in range(copies):
            missing = variant > 0 and rng.random() < 0.5
            rows.append({"name": str(raw["name"]) if variant == 0 else noisy_name(rng, str(raw["name"])),
                         "birthday": None if missing else str(raw["birthday"]),
                         "city": home if variant == 0 or rng.random() < 0.5 else rng.choice(CITIES),
                         "mobile": str(raw["mobile"]) if variant == 0 else
                         (f"139{rng.randrange(10**8):08d}" if rng.random() < 0.6 else None)})
            persons.append(f"p{number}")
    return rows, persons


def true_pairs(persons: list[str]) -> set[tuple[int, int]]:
    by_person: dict[str, list[int]] = defaultdict(list)
    for index, person in enumerate(persons, 1):
        by_person[person].append(index)
    return {pair for ids in by_person.values() for pair in itertools.combinations(sorted(ids), 2)}


def blocking_recall(rows: list[dict[str, Any]], persons: list[str], **kwargs: Any) -> tuple[float, int]:
    con = duckdb.connect()
    records = load_rows(con, rows)
    plan = matching.plan_records(con, records, **kwargs)
    matching.candidates(con, plan)
    found = set(con.execute("SELECT a, b FROM pairs").fetchall())
    con.close()
    truth = true_pairs(persons)
    return len(truth & found) / len(truth), len(found)


def test_blocking_reaches_the_true_pairs_of_chinese_records() -> None:
    rows, persons = chinese_set()
    recall, compared = blocking_recall(rows, persons, max_pairs_per_record=50)
    assert recall >= CHINESE_RECALL_FLOOR, recall
    assert compared <= 50 * len(rows)


def test_each_pair_is_compared_once_and_the_ceiling_tightens_rules() -> None:
    rows, _ = chinese_set(people=3000)
    con = duckdb.connect()
    records = load_rows(con, rows)
    loose = matching.plan_records(con, records, max_pairs_per_record=50)
    tight = matching.plan_records(con, records, max_pairs_per_record=4)
    assert tight.pairs <= tight.ceiling < loose.pairs
    assert any(row["tightened"] for row in tight.as_list())
    matching.candidates(con, loose)
    assert con.execute("SELECT count(*) - count(DISTINCT (a, b)) FROM pairs").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM pairs WHERE a >= b").fetchone()[0] == 0
    con.close()


def test_a_run_over_the_ceiling_does_not_start() -> None:
    # everyone born on one day, in one city, with one name: no rule can keep the comparisons down
    rows = [{"name": "张伟", "birthday": "1985-03-12", "city": "上海"} for _ in range(3000)]
    con = duckdb.connect()
    records = load_rows(con, rows)
    with pytest.raises(matching.TooManyComparisons) as raised:
        matching.match_records(con, records, threshold=0.9, max_pairs_per_record=50)
    assert raised.value.status == 422 and raised.value.extra["pairs"] > raised.value.extra["ceiling"]
    con.close()


def test_incremental_matching_proposes_the_pairs_of_a_full_run() -> None:
    """A few records compared with the stored ones, with the stored model and rules, give the pairs a full run
    gives for them."""
    rows, _ = chinese_set(people=800, seed=11)
    con = duckdb.connect()
    records = load_rows(con, rows)
    full = matching.match_records(con, records, threshold=0.5, max_pairs_per_record=50)
    plan = matching.plan_records(con, records, max_pairs_per_record=50)
    newest = list(range(records - 40, records + 1))
    con.execute(f"CREATE TABLE new_records AS SELECT * FROM records WHERE id IN ({', '.join(map(str, newest))})")
    model = matching.MatchModel.from_dict(full.model.to_dict())
    found = matching.match_new(con, model, plan, threshold=0.5)
    expected = {(a, b): p for a, b, p, _ in full.pairs if a in newest or b in newest}
    assert {(a, b) for a, b, *_ in found} == set(expected) and expected
    assert all(abs(p - expected[(a, b)]) < 1e-9 for a, b, p, _ in found)
    con.close()


def test_a_chinese_twin_written_another_way_at_another_dealer_is_a_match() -> None:
    """张伟 (a common name) at a dealer in 上海 and 張偉 in traditional characters, born the same day, at a dealer
    in 成都: most namesakes of a common name are written alike, one written another way is rare among random
    pairs, so the pair is a match (it scored 0.67 when both ways of agreeing weighed by the name's frequency alone,
    and EM, counting the names' gender twice, learned that near birthdays were common among one person's records).
    Two namesakes written alike born the same day in other cities are less likely one person than the twin."""
    rows, _ = chinese_set(people=6000, seed=7)
    first = len(rows) + 1
    rows += [{"name": "张伟", "birthday": "1983-05-17", "city": "上海", "gender": "male"},
             {"name": "張偉", "birthday": "1983-05-17", "city": "成都"},
             {"name": "李娜", "birthday": "1979-11-02", "city": "杭州", "gender": "female"},
             {"name": "李娜", "birthday": "1979-11-02", "city": "重庆", "gender": "female"}]
    con = duckdb.connect()
    records = load_rows(con, rows)
    result = matching.match_records(con, records, threshold=0.0, max_pairs_per_record=50)
    con.close()
    scored = {(a, b): p for a, b, p, _ in result.pairs}
    twin, namesakes = scored[(first, first + 1)], scored[(first + 2, first + 3)]
    assert twin >= 0.9 and twin > namesakes, (twin, namesakes)
    m = result.model.m
    assert m["birthday"][5] > 0.9 and m["birthday"][4] < 0.02, m["birthday"]


def test_a_rule_on_the_city_fixes_the_address_too() -> None:
    """The city and a postcode's district say one place: among pairs blocked on one city the address teaches
    nothing about one person's records."""
    rule = matching.Rule("name_city", (("name_key", "city"),))
    assert rule.fixes(("name_key", "city")) == {"name", "city", "address"}
    assert matching.Rule("pc", (("pc",),)).fixes(("pc",)) == {"address", "city"}


def western_set(people: int = 3000, seed: int = 5) -> tuple[list[dict[str, Any]], list[str]]:
    """Another company's file (kehu.demo.western): typos, OCR and phonetic errors, swapped and missing parts,
    nicknames, initials, swapped day and month, mistyped years, moves, abbreviated streets, postcode typos."""
    from kehu.demo import western

    rows, persons = [], []
    for r in western.records(customers=people, seed=seed):
        rows.append({"name": r.name, "birthday": r.birthday, "city": r.city, "address": r.address,
                     "postcode": r.postcode, "mobile": r.mobile, "email": r.email, "gender": r.gender})
        persons.append(r.person)
    return rows, persons


WESTERN_RECALL_FLOOR = 0.94


def test_blocking_reaches_the_true_pairs_of_western_records() -> None:
    rows, persons = western_set()
    recall, compared = blocking_recall(rows, persons, max_pairs_per_record=50)
    assert recall >= WESTERN_RECALL_FLOOR, recall
    assert compared <= 50 * len(rows)


def test_rules_tightened_at_scale_still_teach_the_name_and_the_birthday() -> None:
    """Past some size every rule is tightened by the birthday, so no candidate pair leaves the name or the birthday
    free: their m is then taught by random samples of the loosest variants on one field alone (the name's key, the
    birthday), never scored. A tight ceiling does here what a million records do."""
    rows, persons = chinese_set(people=3000, seed=13)
    con = duckdb.connect()
    records = load_rows(con, rows)
    result = matching.match_records(con, records, threshold=0.9, max_pairs_per_record=1)
    assert result.plan is not None
    teaching = {keys for _, keys, _ in matching.teaching_rules(result.plan)}
    assert {("name_key",), ("birthday",)} <= teaching, teaching
    scored = {(a, b) for a, b, *_ in result.pairs}
    assert con.execute("SELECT count(*) FROM pairs").fetchone()[0] == result.candidate_pairs  # samples not scored
    con.close()
    m = result.model.m
    # (untaught, they keep their defaults: 0.8 and 0.6)
    assert m["birthday"][5] > 0.9, m["birthday"]
    assert m["name"][9] + m["name"][8] > 0.9, m["name"]
    truth = true_pairs(persons)
    assert len(scored & truth) / len(scored) > 0.9 and len(scored & truth) / len(truth) > 0.3


def test_a_pairs_rules_are_every_rule_whose_keys_it_shares() -> None:
    """The rules a candidate pair meets come from grouping the rules' pairs (each rule's bit OR'ed): they are the
    rules whose keys the pair's records share, as testing each rule on the pair says, and its rule is the first."""
    rows, _ = chinese_set(people=1500)
    con = duckdb.connect()
    records = load_rows(con, rows)
    plan = matching.plan_records(con, records, max_pairs_per_record=50)
    # the candidates as grouped, before any comparison: the bits come with them
    con.execute("CREATE TEMP TABLE cand AS " + candidates_sql(plan.chosen))
    tested = " + ".join(f"(CASE WHEN coalesce({' AND '.join(f'l.{k} = r.{k}' for k in keys)}, false) "
                        f"THEN {1 << index} ELSE 0 END)" for index, (_, keys, _) in enumerate(plan.chosen))
    found = con.execute(f"SELECT p.bits, ({tested})::BIGINT AS tested, p.rule FROM cand p "
                        "JOIN records l ON l.id = p.a JOIN records r ON r.id = p.b").fetchall()
    assert found and all(bits == tested for bits, tested, _ in found)
    assert all(bits & (1 << rule) and bits & ((1 << rule) - 1) == 0 for bits, _, rule in found)
    assert len({bits for bits, _, _ in found if bits & (bits - 1)}) > 1  # pairs meeting several rules too
    con.close()


def _plan_counting_every_variant(con: duckdb.DuckDBPyConnection, records: int,
                                 max_pairs_per_record: int) -> list[tuple[str, ...]]:
    """The rules' keys as loosening chooses them with every variant of every rule counted (the plan's definition)."""
    ceiling = max(max_pairs_per_record * records, 1_000)
    counts = {rule.name: [blocking.count(con, keys) for keys in rule.variants] for rule in blocking.DEFAULT_RULES}
    chosen = {rule.name: len(rule.variants) - 1 for rule in blocking.DEFAULT_RULES}
    total = sum(n[-1] for n in counts.values())
    for rule in blocking.DEFAULT_RULES:
        for index in range(len(rule.variants) - 1):
            n, current = counts[rule.name][index], counts[rule.name][-1]
            if total - current + n <= ceiling and n <= ceiling // blocking.RULE_SHARE:
                total += n - current
                chosen[rule.name] = index
                break
    return [rule.variants[chosen[rule.name]] for rule in blocking.DEFAULT_RULES]


def test_the_plan_counts_only_the_variants_it_needs() -> None:
    """A rule's variants are counted only as far as loosening needs (where the loosest fits, no other but the
    tightest), and the plan is the one counting every variant gives, generous ceiling or tight."""
    rows, _ = chinese_set(people=1500)
    con = duckdb.connect()
    records = load_rows(con, rows)
    for per_record in (50, 4, 2, 1):  # (at one per record a third of the rules are tightened)
        plan = matching.plan_records(con, records, max_pairs_per_record=per_record)
        assert [keys for _, keys, _ in plan.chosen] == _plan_counting_every_variant(con, records, per_record)
        for rule, keys, n in plan.chosen:
            counted = plan.counts[rule.name]
            assert counted[keys] == n == blocking.count(con, keys)
            assert rule.variants[0] in counted and rule.variants[-1] in counted
            chosen = rule.variants.index(keys)
            if chosen == 0:
                assert set(counted) == {rule.variants[0], rule.variants[-1]}, rule.name
    loose = matching.plan_records(con, records, max_pairs_per_record=50)
    assert sum(map(len, loose.counts.values())) < sum(len(rule.variants) for rule in blocking.DEFAULT_RULES)
    con.close()
