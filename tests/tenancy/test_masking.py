"""脱敏 by the kind of value: what a reader without pii.read is shown of each kind of personal data. A mask
keeps at most a short tail of text and hides yes/no, dates, numbers and options whole; it never shows a value
whole, whatever its length, and never tells how long the value is."""

from __future__ import annotations

import pytest

from kehu.tenancy.masking import (
    BIRTHDAY,
    BOOLEAN,
    DATE,
    EMAIL,
    MOBILE,
    MULTI_OPTION,
    NUMBER,
    OPTION,
    TEXT,
    mask_value,
)


def test_mobiles_keep_their_prefix_and_last_four_e_mails_their_first_letter_and_domain():
    assert mask_value(MOBILE, "+8613812345678") == "+86138****5678"
    assert mask_value(MOBILE, "13812345678") == "138****5678"
    assert mask_value(EMAIL, "zhang.wei@example.com") == "z***@example.com"
    assert mask_value(EMAIL, "zw@example.com") == "***@example.com"  # two letters would be half the name
    assert mask_value(BIRTHDAY, "1990-03-07") == "1990-**-**"


@pytest.mark.parametrize("kind, value", [
    (BOOLEAN, True), (BOOLEAN, False), (BOOLEAN, "T"), (BOOLEAN, "F"),
    (DATE, "2026-06-24"), (NUMBER, 478920.28), (NUMBER, "478920.28"), (NUMBER, 7),
    (OPTION, "gold"), (MULTI_OPTION, ["golf", "fishing"]),
])
def test_yes_no_dates_numbers_and_options_are_hidden_whole(kind, value):  # type: ignore[no-untyped-def]
    # before: True → "T***", False → "F****", a date → "202****6-24", a number → "478****0.28"
    assert mask_value(kind, value) == "***"


@pytest.mark.parametrize("value, shown", [
    ("沪A12345", "***5"),  # a 7-character plate came out whole
    ("沪AD12345", "***45"),  # a new-energy plate
    ("110101199003071234", "***1234"),  # an ID card: no region, no birth date
    ("LSVAU2180N2183294", "***3294"),  # a VIN
    ("上海市浦东新区张江路88号", "***88号"),
    ("王五", "***"), ("A", "***"),
])
def test_text_keeps_at_most_a_short_tail(value, shown):  # type: ignore[no-untyped-def]
    assert mask_value(TEXT, value) == shown


def test_no_text_comes_out_whole_nor_tells_its_length():
    for length in range(1, 60):
        value = "".join(chr(0x4E00 + (i * 7) % 500) for i in range(length))
        masked = mask_value(TEXT, value)
        assert value not in masked and masked.startswith("***") and len(masked) - 3 <= min(4, length // 4)
    assert mask_value(TEXT, "x" * 9)[:3] == mask_value(TEXT, "x" * 40)[:3] == "***"


def test_blank_values_stay_blank_and_unknown_kinds_are_refused():
    assert mask_value(TEXT, None) is None and mask_value(DATE, "") == ""
    with pytest.raises(ValueError):
        mask_value("password", "secret")
