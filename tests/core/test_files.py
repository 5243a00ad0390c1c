"""Files people open in a spreadsheet: every cell through ``safe_cell`` (OWASP CSV injection), and no writer of
such files anywhere in kehu but ``kehu.core.files``."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook

from kehu.core.files import CsvSheet, XlsxSheet, safe_cell

PACKAGE = Path(__file__).resolve().parents[2] / "kehu"


@pytest.mark.parametrize("value", ['=HYPERLINK("http://x","y")', "+SUM(1)", "-1+2", "@SUM(1)", "\t=1", "\r=1",
                                   "\n=1", " =1", "\u3000=1", "\x01=1", "\x00@x", "-", "+", "=", "-a"])
def test_text_that_a_spreadsheet_would_run_is_written_as_text(value):  # type: ignore[no-untyped-def]
    safe = safe_cell(value)
    assert safe.startswith("'") and safe.lstrip("'") == value.replace("\x01", "").replace("\x00", "")


@pytest.mark.parametrize("value", ["张伟", "a=1", "", "-5", "+8613812345678", "-1500.50", "+86138****5678", 7, -7.5,
                                   date(2026, 1, 2), True])
def test_everything_else_is_written_as_it_is(value):  # type: ignore[no-untyped-def]
    assert safe_cell(value) == value
    assert safe_cell(None) == ""


def test_both_sheets_read_back_as_text_and_numbers():
    rows = [["name", "amount"], ["=1+1", -1500.5], ["ok", 3]]
    text = CsvSheet()
    book = XlsxSheet("客户")
    for row in rows:
        text.write(row)
        book.write(row)
    assert list(csv.reader(io.StringIO(text.content().decode("utf-8-sig")))) == [
        ["name", "amount"], ["'=1+1", "-1500.5"], ["ok", "3"]]
    sheet = load_workbook(io.BytesIO(book.content())).worksheets[0]
    cells = [[(c.value, c.data_type) for c in row] for row in sheet.iter_rows()]
    assert cells[1] == [("'=1+1", "s"), (-1500.5, "n")] and cells[2] == [("ok", "s"), (3, "n")]


def test_no_spreadsheet_is_written_anywhere_else():
    """Every CSV or workbook kehu hands to a person goes through kehu.core.files; a new writer elsewhere would
    bypass the escaping. (matching/records.py writes a working file for DuckDB, read by no person.)"""
    writers = re.compile(r"csv\.writer\(|DictWriter\(|Workbook\(|xlsxwriter")
    allowed = {PACKAGE / "core" / "files.py", PACKAGE / "cdp" / "matching" / "records.py"}
    found = [f"{path.relative_to(PACKAGE)}:{n}" for path in PACKAGE.rglob("*.py") if path not in allowed
             for n, line in enumerate(path.read_text("utf-8").splitlines(), 1) if writers.search(line)]
    assert found == []
