"""The quick paths of normalisation give exactly what the full libraries give."""

from __future__ import annotations

from datetime import date, timedelta

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypinyin import Style, lazy_pinyin

from kehu.cdp import normalise


def reference_phone(text: str) -> str | None:
    try:
        parsed = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def ours(text: str) -> str | None:
    try:
        return normalise.phone(text)
    except normalise.InvalidValue:
        return None


@settings(max_examples=3000, deadline=None)
@given(digits=st.from_regex(r"1[0-9]{10}", fullmatch=True),
       form=st.sampled_from(["{d}", "+86{d}", "86{d}", "+86 {a} {b} {c}", "{a}-{b}-{c}", "({a}) {b}{c}", "{w}"]))
def test_mainland_mobiles_match_libphonenumber(digits: str, form: str) -> None:
    full_width = digits.translate(str.maketrans("0123456789", "０１２３４５６７８９"))  # a Chinese input method's
    text = form.format(d=digits, a=digits[:3], b=digits[3:7], c=digits[7:], w=full_width)
    assert ours(text) == reference_phone(text)


def test_birthdays_up_to_today_are_taken_and_later_ones_refused() -> None:
    today = date.today()
    recent = today - timedelta(days=300)
    for text, expected in (("1990-02-03", date(1990, 2, 3)), ("1990/2/3", date(1990, 2, 3)),
                           ("1990年2月3日", date(1990, 2, 3)), (today.isoformat(), today),
                           (recent.isoformat(), recent)):
        assert normalise.birthday(text) == expected
    for text in ((today + timedelta(days=1)).isoformat(), "1899-12-31", "2999-01-01"):
        with pytest.raises(normalise.InvalidValue) as refused:
            normalise.birthday(text)
        assert refused.value.code == "date_out_of_range"


def test_carrier_prefixes_and_foreign_numbers_take_the_full_check() -> None:
    assert ours("17993006709") == reference_phone("17993006709")
    assert ours("+1 650 253 0000") == "+16502530000"
    assert ours("12345") is None


def test_names_read_character_by_character_like_pypinyin() -> None:
    for name in ("张伟", "王秀英", "欧阳娜娜", "李 娜", "Zhang Wei"):
        assert normalise.pinyin(name) == "".join(lazy_pinyin(name, style=Style.NORMAL)).lower().replace(" ", "")


def test_the_pinyin_of_a_long_name_fits_its_column() -> None:
    """A name of 100 characters (what a profile keeps) spells up to 600 letters of pinyin; the column holds 200
    (PostgreSQL refused the row and with it the import's part)."""
    assert normalise.pinyin("王" * 100) == "wang" * 50
    assert len(normalise.pinyin("Wolfeschlegelsteinhausen" * 10)) == 200


@pytest.mark.parametrize("written", ["2027-01-15", "2027/01/15", "2027/1/15", "2027.1.15", "2027年1月15日",
                                     "２０２７－０１－１５", "20270115", " 2027 年 1 月 15 日 "])
def test_a_calendar_date_is_read_as_people_write_it(written: str) -> None:
    assert normalise.day(written) == date(2027, 1, 15)


@pytest.mark.parametrize("written", ["2027/13/45", "15/01/2027", "next week", "2027-02-30", ""])
def test_what_is_not_a_day_is_refused_with_its_reason(written: str) -> None:
    with pytest.raises(normalise.InvalidValue) as refused:
        normalise.day(written)
    assert refused.value.code == "date_invalid"


def test_a_calendar_date_may_lie_far_ahead_unlike_a_birthday() -> None:
    assert normalise.day("2099-12-31") == date(2099, 12, 31)
