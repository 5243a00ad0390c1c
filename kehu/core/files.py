"""Files kehu writes for people to open in a spreadsheet (CSV, XLSX). Every cell passes through ``safe_cell``,
so nothing a customer, a source or an uploaded file put in a field opens as a live formula (CSV or formula
injection, OWASP; ASVS 1.2.10): a text cell beginning
with ``=``, ``+``, ``-``, ``@``, a tab, a carriage return, a line feed or NUL (after control characters are
dropped, even behind spaces) is written with a leading ``'``, which spreadsheets read as "this is text".

Two choices, on purpose:
- Values that are typed (numbers, dates, booleans) are written as what they are: a negative amount stays a number
  a spreadsheet can add up. Only text is escaped, and text that is nothing but a number (``-5``, ``+8613812345678``,
  a masked ``+86138****5678``) is left alone: no formula made of digits alone can do harm, and escaping them would
  garble every mobile in an export.
- CSV fields are quoted (all but numbers), so a ``;`` inside a cell cannot start a new cell (and a formula) in
  the locales whose spreadsheets split on semicolons; the file starts with a BOM so that Excel reads UTF-8.

Writers elsewhere in kehu use ``CsvSheet`` / ``XlsxSheet``; a test fails on any other ``csv.writer`` or
``Workbook`` in the package (the one exception is a working file DuckDB reads, never a person).
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any, Protocol, TextIO

FORMULA_STARTS = frozenset("=+-@\t\r\n\0")
# A number, or a masked mobile (+86138****5678): without letters no formula can call a function, name a cell
# or reach another program, so these are left as they are.
_BARE_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?|\+\d{2,}\*{4}\d{4}")
# Control characters (XML 1.0 cannot hold them: openpyxl refuses a cell with one, failing a whole export).
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def safe_cell(value: Any) -> Any:
    """A cell value that a spreadsheet shows as it is and never runs."""
    if value is None:
        return ""
    if not isinstance(value, str) or not value:
        return value
    value = _NOT_XML.sub("", value)  # first, so that a control character cannot hide what follows it
    starts = value[:1] in FORMULA_STARTS or value.lstrip()[:1] in FORMULA_STARTS
    if starts and not _BARE_NUMBER.fullmatch(value):
        return "'" + value
    return value


class Sheet(Protocol):
    def write(self, row: list[Any]) -> None: ...

    def content(self) -> bytes: ...


class CsvSheet:
    """A CSV file in memory (UTF-8 with BOM), every cell made safe."""

    extension, media_type = "csv", "text/csv"

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, quoting=csv.QUOTE_NONNUMERIC)

    def write(self, row: list[Any]) -> None:
        self._writer.writerow([safe_cell(value) for value in row])

    def content(self) -> bytes:
        return self._buffer.getvalue().encode("utf-8-sig")


class CsvStream:
    """Rows written as CSV to ``out`` as they come (a file of any size, e.g. a generated customer file), every
    cell made safe."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out)

    def write(self, row: list[Any]) -> None:
        self._writer.writerow([safe_cell(value) for value in row])


class XlsxSheet:
    """A one-sheet Excel workbook (write-only, so a million rows do not sit in memory as cell objects). Text
    cells are strings: after ``safe_cell`` none begins with ``=``, the only thing openpyxl writes as a formula."""

    extension, media_type = "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    def __init__(self, title: str) -> None:
        from openpyxl import Workbook

        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet(title[:31])

    def write(self, row: list[Any]) -> None:
        self._sheet.append([safe_cell(value) for value in row])

    def content(self) -> bytes:
        buffer = io.BytesIO()
        self._book.save(buffer)
        return buffer.getvalue()


def sheet(format: str, title: str) -> CsvSheet | XlsxSheet:
    """A sheet of ``format`` (``csv`` or ``xlsx``)."""
    return XlsxSheet(title) if format == "xlsx" else CsvSheet()
