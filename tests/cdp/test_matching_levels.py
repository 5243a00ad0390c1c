"""Each comparison level on hand-made pairs, Chinese and Western: what two records of one person written down
differently agree on, level by level (kehu.cdp.matching.comparisons)."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from kehu.cdp import matching
from kehu.cdp.matching.names import canonical, sound_key
from tests.cdp.matching_helpers import load_rows


def _level(comparison: str, left: dict[str, Any], right: dict[str, Any]) -> int:
    con = duckdb.connect()
    load_rows(con, [left, right])
    found = con.execute(f"SELECT g_{comparison} FROM ({matching.compare_sql('(SELECT 1 AS a, 2 AS b)')})").fetchone()
    con.close()
    return int(found[0])


@pytest.mark.parametrize(("left", "right", "level"), [
    ("张伟", "张伟", 9), ("张伟", "張偉", 8), ("张伟", "Wei Zhang", 8), ("张伟", "Zhang Wei", 8), ("刘洋", "刘阳", 8),
    ("David Smith", "David Smith", 9), ("David Smith", "Smith David", 8), ("David Smith", "Davdi Smith", 7),
    ("Jonathan Whitfield", "Jonathon Whitfeild", 7), ("Catherine Phillips", "Katherine Filips", 6),
    ("William Jones", "Bill Jones", 6), ("Margaret Hughes", "Peggy Hughes", 6), ("David Smith", "D. Smith", 5),
    ("Smith David", "D Smith", 5), ("David Smith", "Smith", 4), ("David Smith", "David", 4),
    ("David Smith", "Peter Smith", 2), ("David Smith", "Peter Brown", 0), ("张伟", "李娜", 0),
    ("David Smith", None, -1),
])
def test_name_levels(left: str, right: str | None, level: int) -> None:
    assert _level("name", {"name": left}, {"name": right}) == level


@pytest.mark.parametrize(("right", "level"), [
    ("1985-03-12", 5), ("1985-03-13", 4), ("1985-03-21", 4), ("1985-12-03", 3), ("1958-03-12", 4), ("1979-03-12", 2),
    ("1985-03-25", 1), ("1990-07-01", 0), (None, -1)])
def test_birthday_levels(right: str | None, level: int) -> None:
    assert _level("birthday", {"birthday": "1985-03-12"}, {"birthday": right}) == level


@pytest.mark.parametrize(("left", "right", "level"), [
    ("12 Station Road", "12 Station Rd", 6), ("12 Station Road", "12 station rd.", 6),
    ("Flat 3, 12 Station Road", "12 Station Road", 6), ("12 Station Road", "12 Staton Road", 5),
    ("12 Station Road", "14 Station Road", 2), ("12 Station Road", "3 Mill Lane", 0),
    ("上海高新区人民路12号", "上海高新区人民路12号", 6), ("上海高新区人民路12号", "上海高新区人民路21号", 2),
    ("12 Station Road", None, -1)])
def test_address_levels(left: str, right: str | None, level: int) -> None:
    assert _level("address", {"address": left}, {"address": right}) == level


@pytest.mark.parametrize(("left", "right", "level"), [
    ("LS7 4QH", "LS74QH", 4), ("LS7 4QH", "LS7 4QJ", 3), ("LS7 4QH", "LS7 2AB", 1), ("LS7 4QH", "LS12 1AB", 0),
    ("LS7 4QH", "M1 1AA", 0), ("200001", "200001", 4), ("200001", "200002", 1), ("200101", "200199", 1),
    ("LS7 4QH", None, -1)])
def test_postcode_levels(left: str, right: str | None, level: int) -> None:
    """The postcode is part of the address comparison (two records on one street share both); all-digit postcodes
    one digit apart are neighbouring districts, not a typo."""
    assert _level("address", {"postcode": left}, {"postcode": right}) == level


@pytest.mark.parametrize(("left", "right", "level"), [
    (("12 Station Road", "LS7 4QH"), ("12 Station Rd", "LS7 4QH"), 6),
    (("12 Station Road", "LS7 4QH"), ("12 Station Road", "M1 9ZZ"), 2),  # the same street name in another town
    (("12 Station Road", "LS7 4QH"), ("12 Statoin Road", "LS7 4QJ"), 5),
    (("12 Station Road", "LS7 4QH"), ("40 Station Road", "LS7 4QH"), 4),
    (("12 Station Road", "LS7 4QH"), (None, "LS7 4QH"), 4)])
def test_address_and_postcode_together(left: tuple[str, str], right: tuple[str | None, str], level: int) -> None:
    assert _level("address", {"address": left[0], "postcode": left[1]},
                  {"address": right[0], "postcode": right[1]}) == level


@pytest.mark.parametrize(("comparison", "left", "right", "level"), [
    ("city", "London", "london", 2), ("city", "Manchester", "Manchestre", 1), ("city", "上海", "杭州", 0),
    ("gender", "male", "male", 1), ("gender", "male", "female", 0),
    ("mobile", "+8613812340001", "+86 138 1234 0001", 2), ("mobile", "+8613812340001", "+8613812340007", 1),
    ("mobile", "+8613812340001", "+8618600000002", 0), ("email", "wei@example.com", "wei@example.com", 2),
    ("email", "wei@example.com", "wei@exmaple.com", 1), ("email", "wei@example.com", "li@example.com", 0),
])
def test_city_mobile_email_levels(comparison: str, left: str, right: str, level: int) -> None:
    assert _level(comparison, {comparison: left}, {comparison: right}) == level


@pytest.mark.parametrize(("left", "right", "level"), [
    # two names in characters are alike by sound exactly or not at all: jianhua / jianping are other names
    ("张建华", "张建平", 2), ("李晓东", "李晓冬", 8), ("王志强", "王志刚", 2),
    # letters typed: a typo in the pinyin is a typo
    ("Zhang Jianhua", "Zhang Jianhau", 7), ("张建华", "Zhang Jianhau", 7)])
def test_chinese_names_are_fuzzy_only_where_typed_in_letters(left: str, right: str, level: int) -> None:
    assert _level("name", {"name": left}, {"name": right}) == level


@pytest.mark.parametrize(("left", "right", "level"), [
    (("张伟", "male"), ("張偉", "male"), -1),  # the names say the gender already
    (("David Smith", "male"), ("David Smith", "male"), -1),
    (("张伟", "male"), ("张丽", "female"), 0), (("D. Smith", "male"), ("David Smith", "male"), 1)])
def test_the_gender_counts_only_where_the_names_differ(left: tuple[str, str], right: tuple[str, str],
                                                       level: int) -> None:
    assert _level("gender", {"name": left[0], "gender": left[1]}, {"name": right[0], "gender": right[1]}) == level


def test_sound_keys_and_nicknames() -> None:
    for a, b in (("phillips", "filips"), ("stephenson", "stevenson"), ("mcdonald", "macdonald"), ("walker", "walka"),
                 ("knight", "night"), ("cox", "cocks")):
        assert sound_key(a) == sound_key(b), (a, b)
    assert sound_key("jones") != sound_key("smith")
    assert canonical("bill") == "william" and canonical("peggy") == "margaret" and canonical("david") == "david"


def test_the_city_counts_only_where_a_postcode_is_missing() -> None:
    assert _level("city", {"city": "Leeds", "postcode": "LS7 4QH"}, {"city": "Leeds", "postcode": "LS7 4QH"}) == -1
    assert _level("city", {"city": "Leeds", "postcode": "LS7 4QH"}, {"city": "Leeds"}) == 2


def test_every_level_has_a_label_in_both_languages() -> None:
    import json
    from pathlib import Path

    import kehu.cdp

    for lang in ("en", "zh"):
        catalogue = json.loads((Path(kehu.cdp.__file__).parent / "locales" / f"{lang}.json").read_text("utf-8"))
        for c in matching.DEFAULT_COMPARISONS:
            for level in [*(lv for lv, _ in c.levels), 0]:
                assert catalogue.get(f"dedupe.level.{c.name}.{level}"), (lang, c.name, level)
