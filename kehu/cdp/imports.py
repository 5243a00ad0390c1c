"""Import of profiles and of orders from CSV (UTF-8 or GBK) and XLSX: suggested column mapping from Chinese
or English headers, a preview, then a resumable job. Every rejected row is kept with its number and reason;
accepted rows go through the same One ID resolution as live data, so importing the same file twice adds
nothing.

An order file has one row per order line; rows sharing an order number make one order, and an order is
accepted or rejected as a whole (half an order would be a wrong order).

Over 800 lines: reading files, mapping, preview, the resumable job, rejected rows and warnings share the
run's row reader; to split next are the reports (rejections, warnings and their files) into import_reports.py.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import itertools
import operator
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from kehu.cdp import normalise
from kehu.cdp.fields import coerce, definitions
from kehu.cdp.identity import IDENTITY_TRAITS, LIFECYCLE_STAGES, process_messages
from kehu.cdp.identity_rules import DEFAULT_RULES
from kehu.cdp.imported import ImportedColumns, ImportedRow, columns_hold, store_imported
from kehu.cdp.models import ImportRejection, ImportRun, ImportWarning, Order, Source
from kehu.cdp.views import CustomerView, file_view
from kehu.core import audit, files, jobs
from kehu.core.db import commit_without_waiting_for_disk, lost_a_race, one_of, refresh_statistics, utcnow
from kehu.core.errors import Conflict, FieldError, PayloadTooLarge, ValidationFailed, invalid
from kehu.core.files import CsvSheet
from kehu.core.i18n import t
from kehu.core.pagination import Page, keyset_page
from kehu.tenancy.access import (
    Place,
    Principal,
    check_references,
    get_scoped,
    org_timezone,
    require_row,
    scope,
    writable_units,
)
from kehu.tenancy.masking import MASK

IMPORT_JOB = "cdp.import_profiles"
IMPORT_PART_JOB = "cdp.import_part"
KINDS = ("profiles", "orders")
CHUNK_ROWS = 5000  # rows per transaction: each chunk pays ~50 ms of lookups and bookkeeping
MAX_FILE_BYTES = 100 * 1024 * 1024
UPLOAD_REQUEST_BYTES = MAX_FILE_BYTES + 1024 * 1024  # the file and the form around it
# Tables a chunk looks up by many values at once (by id or by a unique key per row needs no statistics)
STATISTICS_TABLES = ["identities"]
STANDARD_FIELDS = ("name", "mobile", "email", "gender", "birthday", "province", "city", "address", "postcode",
                   "lifecycle_stage")
IDENTITY_KINDS = tuple(r.kind for r in DEFAULT_RULES if r.kind not in ("anonymous_id", "mobile", "email"))
# Columns of an order file: the order (from its first row), each row's line, and who the customer is.
ORDER_FIELDS = ("order_no", "ordered_at", "status", "total", "currency", "dealer", "sku", "product", "quantity",
                "unit_price")
ORDER_CUSTOMER_FIELDS = ("name", "mobile", "email")
ORDER_STATUSES = {"placed": "placed", "已下单": "placed", "下单": "placed", "待付款": "placed",
                  "paid": "paid", "已付款": "paid", "已支付": "paid", "delivered": "delivered", "已交付": "delivered",
                  "已交车": "delivered", "cancelled": "cancelled", "canceled": "cancelled", "已取消": "cancelled",
                  "取消": "cancelled", "refunded": "refunded", "已退款": "refunded", "退款": "refunded"}

# Header spellings people use, by field; compared after lower-casing and dropping spaces, _ and -.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": ("name", "fullname", "customername", "姓名", "客户姓名", "名字", "客户名称"),
    "mobile": ("mobile", "phone", "mobilephone", "phonenumber", "cellphone", "tel", "手机", "手机号", "手机号码",
               "电话", "联系电话", "联系方式"),
    "email": ("email", "mail", "emailaddress", "邮箱", "电子邮箱", "邮件", "电子邮件"),
    "gender": ("gender", "sex", "性别"),
    "birthday": ("birthday", "birthdate", "dateofbirth", "dob", "生日", "出生日期", "出生年月日"),
    "province": ("province", "state", "省", "省份"),
    "city": ("city", "城市", "市"),
    "address": ("address", "streetaddress", "street", "addr", "地址", "详细地址", "联系地址", "家庭地址", "住址",
                "通讯地址", "通信地址"),
    "postcode": ("postcode", "postalcode", "zip", "zipcode", "postcodezip", "plz", "邮编", "邮政编码", "邮码",
                 "郵遞區號", "郵政編碼"),
    "lifecycle_stage": ("stage", "lifecyclestage", "阶段", "生命周期阶段", "客户阶段"),
    "identity:vin": ("vin", "vincode", "车架号", "vin码", "车辆识别代号"),
    "identity:dealer_customer_no": ("dealercustomerno", "customerno", "经销商客户号", "客户编号", "客户号"),
    "identity:user_id": ("userid", "memberid", "会员id", "会员号", "会员编号"),
    "identity:wechat_openid": ("openid", "wechatopenid", "微信openid"),
    "identity:wechat_unionid": ("unionid", "wechatunionid", "微信unionid"),
    "order_no": ("orderno", "ordernumber", "orderid", "order", "订单号", "订单编号", "订单号码", "单号"),
    "ordered_at": ("orderedat", "orderdate", "ordertime", "date", "下单日期", "下单时间", "订单日期", "订单时间",
                   "日期"),
    "status": ("status", "orderstatus", "状态", "订单状态"),
    "total": ("total", "ordertotal", "amount", "totalamount", "订单金额", "总金额", "金额", "合计"),
    "currency": ("currency", "币种", "货币"),
    "dealer": ("dealer", "dealercode", "unit", "unitcode", "经销商", "经销商代码", "经销商编码", "门店", "门店代码"),
    "sku": ("sku", "productcode", "productid", "itemcode", "产品编码", "商品编码", "物料号", "车型代码"),
    "product": ("product", "productname", "item", "itemname", "model", "产品", "产品名称", "商品", "商品名称",
                "车型"),
    "quantity": ("quantity", "qty", "count", "数量"),
    "unit_price": ("unitprice", "price", "单价", "价格", "售价"),
}
_FOLD = re.compile(r"[\s_\-]+")


def _fold(header: str) -> str:
    return _FOLD.sub("", header.strip().lower())


def suggest_mapping(headers: list[str], defined: dict[str, Any] | None = None, kind: str = "profiles"
                    ) -> dict[str, str]:
    """header → target ("name", "identity:vin", "attribute:<key>"); a header naming a custom field (by key or
    label) maps to it; other unknown headers of a profile file become attributes of their own name (of an
    order file, they are ignored)."""
    targets = set(valid_targets(kind))
    by_spelling = {spelling: target for target, spellings in SYNONYMS.items() if target in targets
                   for spelling in spellings}
    for key, field in (defined or {}).items() if kind == "profiles" else ():
        for spelling in (key, field.label_zh, field.label_en):
            by_spelling.setdefault(_fold(spelling), f"attribute:{key}")
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for header in headers:
        target = by_spelling.get(_fold(header))
        if target and target not in used:
            mapping[header] = target
            used.add(target)
        else:
            mapping[header] = f"attribute:{header.strip()}" if header.strip() and kind == "profiles" else ""
    return mapping


def valid_targets(kind: str = "profiles") -> list[str]:
    identities = [f"identity:{k}" for k in IDENTITY_KINDS]
    if kind == "orders":
        return [*ORDER_FIELDS, *ORDER_CUSTOMER_FIELDS, *identities]
    return [*STANDARD_FIELDS, *identities]


def check_mapping(headers: list[str], mapping: dict[str, str], kind: str = "profiles") -> dict[str, str]:
    errors: list[FieldError] = []
    targets = set(valid_targets(kind))
    attributes_allowed = kind == "profiles"
    seen: dict[str, str] = {}
    for header, target in mapping.items():
        if header not in headers:
            errors.append(FieldError(f"mapping.{header}", "no such column in the file", "unknown"))
        elif target and target not in targets and not (attributes_allowed and target.startswith("attribute:")
                                                       and len(target) > 10):
            errors.append(FieldError(f"mapping.{header}", f"unknown target {target!r}", "unknown"))
        elif target and not target.startswith("attribute:") and target in seen:
            errors.append(FieldError(f"mapping.{header}", f"{target} is already mapped from {seen[target]!r}",
                                     "duplicate"))
        elif target:
            seen[target] = header
    if not any(t in ("mobile", "email") or t.startswith("identity:") for t in seen):
        errors.append(FieldError("mapping", "map at least one identifying column (mobile, e-mail, VIN, …)",
                                 "no_identity"))
    for required in ("order_no", "ordered_at") if kind == "orders" else ():
        if required not in seen:
            errors.append(FieldError("mapping", f"map a column to {required}", "required"))
    if errors:
        raise ValidationFailed("The column mapping has problems.", errors=errors)
    return {h: mapping.get(h, "") for h in headers}


# -- reading files ---------------------------------------------------------------------------------------
@dataclass
class Table:
    headers: list[str]
    encoding: str


def _decode(content: bytes) -> tuple[str, str]:
    for encoding in ("utf-8-sig", "gb18030"):  # GB18030 is a superset of GBK/GB2312 (Excel's Chinese CSVs)
        try:
            return content.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise invalid("file", "the file is neither UTF-8 nor GBK/GB18030 text", "encoding")


def _is_xlsx(filename: str) -> bool:
    return filename.lower().endswith((".xlsx", ".xlsm"))


def rows(content: bytes, filename: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number as a spreadsheet shows it, {header: text}) for every non-empty data row."""
    if _is_xlsx(filename):
        yield from _xlsx_rows(content)
        return
    text, _ = _decode(content)
    reader = csv.reader(io.StringIO(text, newline=""))
    headers = [h.strip() for h in next(reader, [])]
    yield from _records(reader, headers, 2)


def _value_rows(reader: Iterator[list[str]], first: int) -> Iterator[tuple[int, list[str]]]:
    """Numbered rows of a CSV reader (the first numbered ``first``) as their values, empty ones skipped."""
    for number, values in enumerate(reader, start=first):
        if any(v.strip() for v in values):
            yield number, values


def _records(reader: Iterator[list[str]], headers: list[str], first: int) -> Iterator[tuple[int, dict[str, str]]]:
    """Numbered rows of a CSV reader (the first numbered ``first``) as {header: text}, empty ones skipped."""
    named = [(i, h) for i, h in enumerate(headers) if h]
    width = len(headers)
    plain = len(named) == width  # every column named: the row's values zip with the headers
    for number, values in _value_rows(reader, first):
        if plain and len(values) >= width:
            yield number, dict(zip(headers, map(str.strip, values), strict=False))  # extra values: unnamed
        else:
            yield number, _named_values(values, named)


def _named_values(values: list[str], named: list[tuple[int, str]]) -> dict[str, str]:
    return {h: (values[i].strip() if i < len(values) else "") for i, h in named}


def part_rows(raw: bytes, encoding: str, headers: list[str], first: int) -> list[tuple[int, dict[str, str]]]:
    """The rows of one part of a CSV file (its bytes as ``csv_parts`` cut them)."""
    return list(_records(_csv_reader(raw, encoding), headers, first))


def part_values(raw: bytes, encoding: str, first: int) -> list[tuple[int, list[str]]]:
    """``part_rows`` as each row's list of values, in the order of the file's columns (what an import reads:
    a dict per row would cost more than the parsing)."""
    return list(_value_rows(_csv_reader(raw, encoding), first))


def _csv_reader(raw: bytes, encoding: str) -> Iterator[list[str]]:
    return csv.reader(io.StringIO(raw.decode("utf-8" if encoding == "utf-8-sig" else encoding), newline=""))


def csv_parts(content: bytes, encoding: str, rows_per_part: int) -> tuple[list[str], list[tuple[int, int, int]]]:
    """A CSV file cut into parts of ``rows_per_part`` rows that workers can read apart: its header row and,
    per part, (number of the part's first row, first byte, end byte). Cuts fall between records, never
    inside a quoted field that spans lines."""
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    consumed = 3 if encoding == "utf-8-sig" and content.startswith(b"\xef\xbb\xbf") else 0
    if b'"' not in content and content.count(b"\r") == content.count(b"\r\n"):
        return _unquoted_parts(content, codec, consumed, rows_per_part)
    return _parsed_parts(content, encoding, codec, consumed, rows_per_part)


def _parsed_parts(content: bytes, encoding: str, codec: str, consumed: int, rows_per_part: int
                  ) -> tuple[list[str], list[tuple[int, int, int]]]:
    """csv_parts by parsing the file: quoted fields may hold newlines."""

    def lines() -> Iterator[str]:
        nonlocal consumed
        for line in io.StringIO(content.decode(encoding), newline=""):
            consumed += len(line.encode(codec))
            yield line

    reader = csv.reader(lines())  # it reads no further than the record it returns
    headers = [h.strip() for h in next(reader, [])]
    parts: list[tuple[int, int, int]] = []
    before, first, start, in_part = consumed, 2, consumed, 0
    for number, values in enumerate(reader, start=2):
        if in_part == 0:
            first, start = number, before
        if any(v.strip() for v in values):
            in_part += 1
        before = consumed
        if in_part >= rows_per_part:
            parts.append((first, start, before))
            in_part = 0
    if in_part:
        parts.append((first, start, before))
    return headers, parts


def _unquoted_parts(content: bytes, codec: str, start: int, rows_per_part: int
                    ) -> tuple[list[str], list[tuple[int, int, int]]]:
    """csv_parts of a file without quotes (most exports): every line is a record, so the cuts are found by
    jumping from newline to newline in the bytes (a newline byte never occurs inside a UTF-8 or GB18030
    character) instead of decoding and parsing the file."""
    end = len(content)
    header_end = content.find(b"\n", start)
    header_end = end if header_end < 0 else header_end + 1
    headers = [h.strip() for h in next(csv.reader([content[start:header_end].decode(codec)]), [])]
    parts: list[tuple[int, int, int]] = []
    position, number = header_end, 2
    while position < end:
        cut, lines = position, 0
        while lines < rows_per_part and cut < end:
            found = content.find(b"\n", cut)
            cut = end if found < 0 else found + 1
            lines += 1
        parts.append((number, position, cut))
        position, number = cut, number + lines
    return headers, parts


def _xlsx_rows(content: bytes) -> Iterator[tuple[int, dict[str, str]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:
        raise invalid("file", f"not a readable .xlsx workbook ({type(exc).__name__})", "format") from exc
    sheet = workbook.worksheets[0]
    headers: list[str] | None = None
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        cells = [_cell_text(v) for v in values]
        if headers is None:
            headers = cells
            continue
        if not any(cells):
            continue
        yield number, {h: (cells[i] if i < len(cells) else "") for i, h in enumerate(headers) if h}
    workbook.close()


def _cell_text(value: Any) -> str:
    """A spreadsheet cell as text: dates as ISO dates, date-times keep their time (order times need it)."""
    if value is None:
        return ""
    if hasattr(value, "hour") and hasattr(value, "date"):
        return value.date().isoformat() if (value.hour, value.minute, value.second) == (0, 0, 0) else \
            value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 13800138000.0 is a mobile number, not a float
    return str(value).strip()


def read_table(content: bytes, filename: str) -> tuple[Table, int]:
    if not filename.lower().endswith((".csv", ".txt", ".xlsx", ".xlsm")):
        raise invalid("file", "upload a .csv or .xlsx file", "format")
    if _is_xlsx(filename):
        from openpyxl import load_workbook

        try:
            sheet = load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
            first = next(sheet.iter_rows(values_only=True), ())
        except Exception as exc:
            raise invalid("file", f"not a readable .xlsx workbook ({type(exc).__name__})", "format") from exc
        headers, encoding = [("" if v is None else str(v)).strip() for v in first], "xlsx"
    else:
        text, encoding = _decode(content)
        headers = [h.strip() for h in next(csv.reader(io.StringIO(text, newline="")), [])]
    if not any(headers):
        raise invalid("file", "the first row must name the columns", "no_header")
    duplicates = sorted({h for h in headers if h and headers.count(h) > 1})
    if duplicates:
        raise invalid("file", f"column names must be unique: {', '.join(duplicates)}", "duplicate_header")
    total = sum(1 for _ in rows(content, filename))
    return Table([h for h in headers if h], encoding), total


# -- validating rows ---------------------------------------------------------------------------------
@dataclass
class Problem:
    column: str
    error: normalise.InvalidValue
    row: int | None = None  # in a record of several rows (an order), the row at fault

    def text(self, locale: str | None) -> str:
        message = self.error.text(locale)
        return f"{self.column}: {message}" if self.column else message


class RowRejected(ValueError):
    """Everything wrong with one row (all of it, so a row needs fixing once)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(self.text("en"))

    def text(self, locale: str | None) -> str:
        return "; ".join(p.text(locale) for p in self.problems)

    def as_json(self) -> list[dict[str, object]]:
        return [{"column": p.column, **p.error.as_dict()} for p in self.problems]


def problems_text(problems: list[dict[str, Any]], locale: str | None) -> str:
    """A stored rejection's problems, in the reader's language."""
    return "; ".join(Problem(p.get("column", ""), _error_of(p)).text(locale) for p in problems)


def _error_of(problem: dict[str, Any]) -> normalise.InvalidValue:
    return normalise.InvalidValue(str(problem.get("code", "")), **dict(problem.get("params") or {}))


Clean = Callable[[str], Any]  # checks a value of a column and gives it as the profile keeps it
_USER_ID = "\0user_id"  # where a row's user id waits among its traits (a call carries it apart)


def _cleaner(target: str, defined: dict[str, Any] | None) -> tuple[str, Clean, bool]:
    """What one mapped column of a profile file becomes: the trait it sets, how its values are checked, and
    whether its values repeat down the column (a few genders, cities, options, thousands of birthdays), so
    each distinct one is checked once."""
    if target == "mobile":
        return "phone", normalise.phone, False
    if target == "email":
        return "email", normalise.email, False
    if target == "name":
        return "name", lambda value: normalise.name(value)[:100], False
    if target == "gender":
        return "gender", normalise.gender, True
    if target == "birthday":
        return "birthday", lambda value: normalise.birthday(value).isoformat(), True
    if target == "lifecycle_stage":
        def stage(value: str) -> str:
            if value not in LIFECYCLE_STAGES:
                raise normalise.InvalidValue("stage_unknown", value=value, allowed=", ".join(LIFECYCLE_STAGES))
            return value
        return "lifecycle_stage", stage, True
    if target in ("province", "city"):
        return target, lambda value: value[:60], True
    if target == "address":
        return "address", normalise.address, False
    if target == "postcode":
        return "postcode", normalise.postcode, True
    key = target.split(":", 1)[1]
    if target.startswith("identity:"):
        return (_USER_ID if key == "user_id" else key), functools.partial(normalise.identity_value, key), False
    field = (defined or {}).get(key)
    if field is not None:
        # a multi-option value is a list, which rows must not share
        return key, functools.partial(coerce, field), field.type in ("date", "boolean", "option")
    return key, str, False


_IDENTIFYING_TRAITS = frozenset(("phone", "email", *IDENTITY_KINDS))


class RowReader:
    """A file's column mapping made once into what each column does, then applied to every row. Rows come as
    lists of values in the order of ``headers`` (the file's header row; by default the mapping's)."""

    def __init__(self, mapping: dict[str, str], defined: dict[str, Any] | None = None,
                 headers: list[str] | None = None) -> None:
        self.headers = list(mapping) if headers is None else headers
        self.position = position = {header: index for index, header in enumerate(self.headers) if header}
        cleaners = {header: _cleaner(target, defined) for header, target in mapping.items() if target}
        # in the file's order, whatever the order of the stored mapping (PostgreSQL's JSONB sorts its keys): a row's
        # problems are named, and its traits applied, column by column as the file has them
        self.columns = sorted((position[header], header, trait, clean)
                              for header, (trait, clean, _) in cleaners.items())
        self.named = [(index, header) for header, index in position.items()]
        # the traits that carry identities, in the order One ID reads them (the call lists its identities)
        puts = {"phone" if t == "mobile" else t.split(":", 1)[-1] for t in mapping.values() if t}
        self.identity_traits = [(trait, kind) for trait, kind in IDENTITY_TRAITS.items() if trait in puts]
        traits = [trait for _, _, trait, _ in self.columns]
        self.by_column = columns_hold([t for t in traits if t != _USER_ID],
                                      [*(["user_id"] if _USER_ID in traits else []),
                                       *(kind for _, kind in self.identity_traits)])
        self.memoised = {trait for trait, _, repeats in cleaners.values() if repeats}

    def row(self, run_id: int, number: int, values: list[str], filename: str, ts: datetime) -> ImportedRow:
        """The row validated and normalised, or RowRejected naming every problem of the row."""
        return self.read_row(run_id, number, values, filename, ts)[0]

    def read_row(self, run_id: int, number: int, values: list[str], filename: str, ts: datetime
                 ) -> tuple[ImportedRow, list[Problem]]:
        """The row validated and normalised without the values that fail (each a warning), or RowRejected when
        no usable identity is left: then every problem of the row is named, so it needs fixing once. A wrong
        birthday or gender, or a wrong e-mail beside a good mobile, must not cost the customer's whole row."""
        traits: dict[str, Any] = {}
        problems: list[Problem] = []
        width = len(values)
        for index, header, trait, clean in self.columns:
            if index >= width or not (value := values[index]) or not (value := value.strip()):
                continue
            try:
                traits[trait] = clean(value)
            except normalise.InvalidValue as error:
                problems.append(Problem(header, error))
        user_id = traits.pop(_USER_ID, None)
        if not user_id and _IDENTIFYING_TRAITS.isdisjoint(traits):
            raise RowRejected(problems or [Problem("", normalise.InvalidValue("no_identity"))])
        identities = [("user_id", user_id)] if user_id else []
        identities += [(kind, traits[trait]) for trait, kind in self.identity_traits if trait in traits]
        return ImportedRow.of(run_id, number, filename, ts, traits, identities), problems

    def cell(self, values: list[str], header: str) -> str:
        """The cell of ``header`` in a row (what a warning quotes)."""
        index = self.position.get(header)
        return values[index].strip() if index is not None and index < len(values) else ""

    def read(self, run_id: int, chunk: list[tuple[int, list[str]]], filename: str, started: datetime
             ) -> ReadChunk:
        """``read_row`` for every (number, values) of ``chunk`` (row n stamped ``started`` + n µs), column by
        column: the rows it accepts as ImportedColumns, the few the columns cannot hold as ImportedRows, the
        rest rejected; the values left out of accepted rows as warnings. Row by row only for a row without an
        identity (whose reasons ``read_row`` then gives) and for files whose mapping the columns cannot hold."""
        numbers = [number for number, _ in chunk]
        # started + n µs by C functions alone (timedelta(0, 0, n)): a Python call per row cost twice as much
        moments = list(map(started.__add__, map(timedelta, itertools.repeat(0), itertools.repeat(0), numbers)))

        def one_by_one(positions: Iterable[int]) -> None:
            for i in positions:
                number, values = chunk[i]
                try:
                    row, problems = self.read_row(run_id, number, values, filename, moments[i])
                except RowRejected as error:
                    rejected.append((number, values, error))
                    continue
                odd.append(row)
                if problems:
                    warned.append((number, values, problems))

        odd: list[ImportedRow] = []
        rejected: list[tuple[int, list[str], RowRejected]] = []
        warned: list[tuple[int, list[str], list[Problem]]] = []
        if not self.by_column:
            one_by_one(range(len(chunk)))
            return ReadChunk(ImportedColumns(run_id, filename, [], [], {}, []), odd, rejected, warned)
        rows = [values for _, values in chunk]
        unread: set[int] = set()  # rows without an identity or with a value the columns cannot hold: read alone
        failed: dict[int, list[Problem]] = {}  # rows' values that fail, in the order of the columns
        traits: dict[str, list[Any]] = {}
        for index, header, trait, clean in self.columns:
            traits[trait] = _clean_column(clean, [values[index] if index < len(values) else "" for values in rows],
                                          unread, trait in self.memoised, failed, header)
        user_ids = traits.pop(_USER_ID, None)
        identifying = [values for trait, values in traits.items() if trait in _IDENTIFYING_TRAITS]
        if user_ids is not None:
            identifying.append(user_ids)
        if len(identifying) == 1:
            unread.update(i for i, value in enumerate(identifying[0]) if value is None)
        else:  # no identity in the row: ``row`` says so
            width = len(identifying)
            unread.update(i for i, values in enumerate(zip(*identifying, strict=True)) if values.count(None) == width)
        one_by_one(sorted(unread))
        warned += [(chunk[i][0], chunk[i][1], problems) for i, problems in sorted(failed.items()) if i not in unread]
        warned.sort(key=operator.itemgetter(0))
        if unread:
            keep = [i for i in range(len(chunk)) if i not in unread]
            numbers, moments = [numbers[i] for i in keep], [moments[i] for i in keep]
            traits = {trait: [values[i] for i in keep] for trait, values in traits.items()}
            user_ids = [user_ids[i] for i in keep] if user_ids is not None else None
        identities = [("user_id", user_ids)] if user_ids is not None else []
        identities += [(kind, traits[trait]) for trait, kind in self.identity_traits]
        return ReadChunk(ImportedColumns(run_id, filename, numbers, moments, traits, identities), odd, rejected,
                         warned)

    def message(self, run_id: int, number: int, row: dict[str, str], filename: str, ts: datetime
                ) -> dict[str, Any]:
        """The identify call of a row given as {header: text}, or RowRejected naming every problem of the row."""
        return self.row(run_id, number, [row.get(h) or "" for h in self.headers], filename, ts).message()

    def as_dict(self, values: list[str]) -> dict[str, str]:
        """A row's values by header (what a rejection keeps)."""
        return _named_values(values, self.named)


class ReadChunk(NamedTuple):
    columns: ImportedColumns
    odd: list[ImportedRow]
    rejected: list[tuple[int, list[str], RowRejected]]  # (number, values, reasons)
    warned: list[tuple[int, list[str], list[Problem]]]  # accepted rows' values left out: (number, values, why)

    @property
    def accepted(self) -> int:
        return len(self.columns.numbers) + len(self.odd)


_UNSEEN = object()


def _clean_column(clean: Clean, cells: list[str], unread: set[int], memoised: bool,
                  failed: dict[int, list[Problem]], header: str) -> list[Any]:
    """A column's values as ``RowReader.read_row`` cleans them, None where a cell is blank or fails (the failure
    added to the row's in ``failed``); a cell that cleans to None, which the columns cannot tell from blank,
    puts its row in ``unread``."""
    out: list[Any] = []
    append = out.append
    done: dict[str, Any] = {}
    for at, cell in enumerate(cells):
        if not cell or not (cell := cell.strip()):
            append(None)
            continue
        value = done.get(cell, _UNSEEN) if memoised else _UNSEEN
        if value is _UNSEEN:
            try:
                value = clean(cell)
            except normalise.InvalidValue as error:
                value = error
            if memoised:
                done[cell] = value
        if value is None:
            unread.add(at)
        elif isinstance(value, normalise.InvalidValue):
            failed.setdefault(at, []).append(Problem(header, value))
            value = None
        append(value)
    return out


def _call(kind: str, message_id: str, event: str, *, user_id: str | None, traits: dict[str, Any],
          properties: dict[str, Any], ts: Any, **extra: Any) -> dict[str, Any]:
    """A validated call as ingestion would have stored it, made from rows of a file."""
    return {"type": kind, "message_id": message_id, "user_id": user_id, "anonymous_id": None, "previous_id": None,
            "group_id": None, "event": event, "traits": traits, "group_traits": {}, "properties": properties,
            "context": {}, "ts": ts.isoformat(), **extra}


def _customer_value(target: str, value: str, traits: dict[str, Any]) -> str | None:
    """Put a customer column of an order row into ``traits``; returns the user id when the column is one."""
    if target == "mobile":
        traits["phone"] = normalise.phone(value)
    elif target == "email":
        traits["email"] = normalise.email(value)
    elif target == "name":
        traits["name"] = normalise.name(value)[:100]
    elif target.startswith("identity:"):
        kind = target.split(":", 1)[1]
        clean = normalise.identity_value(kind, value)
        if kind == "user_id":
            return clean
        traits[kind] = clean
    return None


def _order_line(row: dict[str, str], by_target: dict[str, str]) -> tuple[dict[str, Any] | None, list[Problem]]:
    problems: list[Problem] = []
    line: dict[str, Any] = {}
    for target in ("sku", "product", "quantity", "unit_price"):
        header = by_target.get(target)
        value = (row.get(header) or "").strip() if header else ""
        if not value:
            continue
        try:
            if target == "quantity":
                line["quantity"] = normalise.quantity(value)
            elif target == "unit_price":
                line["price"] = str(normalise.amount(value))
            else:
                line["sku" if target == "sku" else "name"] = value[:100 if target == "sku" else 200]
        except normalise.InvalidValue as error:
            problems.append(Problem(header or target, error))
    if not line.get("sku") and not line.get("name"):
        return None, problems  # a row without a product adds no line (an order may carry only its total)
    return line, problems


def order_to_message(run_id: int, group: list[tuple[int, dict[str, str]]], mapping: dict[str, str],
                     filename: str, *, tz_name: str, dealers: dict[str, int]) -> dict[str, Any]:
    """One `order_placed` call built from the rows of one order (row order as in the file); RowRejected with
    every problem of every row, each problem naming its row, when any row is wrong."""
    by_target = {target: header for header, target in mapping.items() if target}
    first_number, first = group[0]
    problems: list[Problem] = []
    traits: dict[str, Any] = {}
    user_id: str | None = None
    properties: dict[str, Any] = {"order_id": first.get(by_target["order_no"], "").strip()[:100]}
    unit_id: int | None = None
    for target in (*ORDER_CUSTOMER_FIELDS, *(f"identity:{k}" for k in IDENTITY_KINDS)):
        header = by_target.get(target)
        value = (first.get(header) or "").strip() if header else ""
        if value:
            try:
                user_id = _customer_value(target, value, traits) or user_id
            except normalise.InvalidValue as error:
                problems.append(Problem(header or target, error))
    if not user_id and not any(k in traits for k in ("phone", "email", *IDENTITY_KINDS)):
        problems.append(Problem("", normalise.InvalidValue("no_identity")))
    ordered_at = None
    try:
        ordered_at = normalise.moment(first.get(by_target["ordered_at"], ""), tz_name)
    except normalise.InvalidValue as error:
        problems.append(Problem(by_target["ordered_at"], error))
    for target in ("status", "total", "currency", "dealer"):
        header = by_target.get(target)
        value = (first.get(header) or "").strip() if header else ""
        if not value:
            continue
        if target == "status":
            if value.lower() not in ORDER_STATUSES:
                problems.append(Problem(header or target, normalise.InvalidValue(
                    "status_unknown", value=value, allowed=", ".join(dict.fromkeys(ORDER_STATUSES.values())))))
            else:
                properties["status"] = ORDER_STATUSES[value.lower()]
        elif target == "total":
            try:
                properties["total"] = str(normalise.amount(value))
            except normalise.InvalidValue as error:
                problems.append(Problem(header or target, error))
        elif target == "currency":
            if not re.fullmatch(r"[A-Za-z]{3}", value):
                problems.append(Problem(header or target, normalise.InvalidValue("currency_invalid", value=value)))
            properties["currency"] = value.upper()[:3]
        elif target == "dealer":
            if value not in dealers:
                problems.append(Problem(header or target, normalise.InvalidValue("dealer_unknown", value=value)))
            unit_id = dealers.get(value)
    if not properties["order_id"]:
        problems.append(Problem(by_target["order_no"], normalise.InvalidValue("empty", kind=by_target["order_no"])))
    for problem in problems:
        problem.row = first_number
    products = []
    for number, row in group:
        line, line_problems = _order_line(row, by_target)
        for problem in line_problems:
            problem.row = number
        problems += line_problems
        if line:
            products.append(line)
    if problems:
        raise RowRejected(problems)
    properties.update({"products": products, "import_id": run_id, "rows": [n for n, _ in group], "file": filename})
    message_id = f"import-order-{properties['order_id']}"  # the same order imported again is one event
    if len(message_id) > 100:
        message_id = f"import-order-{hashlib.sha1(properties['order_id'].encode()).hexdigest()}"
    return _call("track", message_id, "order_placed", user_id=user_id, traits=traits, properties=properties,
                 ts=ordered_at or utcnow(),
                 unit_id=unit_id)  # the dealer column; only imports set it, Segment calls cannot


def order_groups(run: ImportRun) -> Iterator[list[tuple[int, dict[str, str]]]]:
    """The rows of each order number, ordered by the order's first row (so a checkpoint at a row number says
    which orders are done). A row without an order number is a group of its own (and is rejected)."""
    header = next((h for h, target in run.mapping.items() if target == "order_no"), "")
    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for number, row in rows(run.content, run.filename):
        key = (row.get(header) or "").strip() or f"\0row-{number}"
        groups.setdefault(key, []).append((number, row))
    yield from groups.values()


# -- the service -------------------------------------------------------------------------------------
def _import_source(session: Session, principal: Principal, unit_id: int) -> Source:
    """One source of kind import per unit, created on first use (imported profiles belong to that unit)."""
    from kehu.core.security import digest_api_key, generate_api_key

    source = session.scalar(select(Source).where(Source.org_id == principal.org_id, Source.unit_id == unit_id,
                                                 Source.kind == "import"))
    if source is None:
        new = generate_api_key()  # imports never use the write key; it only has to be unique
        source = Source(org_id=principal.org_id, unit_id=unit_id, created_by_id=principal.user_id, name="导入",
                        kind="import", write_key_prefix=new.prefix, write_key_digest=digest_api_key(new.key))
        session.add(source)
        session.flush()
    return source


def upload(session: Session, principal: Principal, *, filename: str, content: bytes,
           unit_id: int | None = None, kind: str = "profiles") -> ImportRun:
    unit_id = unit_id if unit_id is not None else principal.unit_id
    if kind not in KINDS:
        raise invalid("kind", f"one of {', '.join(KINDS)}", "not_option")
    check_references(session, principal, place=Place("imports", "create", unit_id, principal.user_id,
                                                     owner_at_unit=False))
    principal.require("profiles", "create")
    if kind == "orders":
        require_row(session, principal, "orders", "create", unit_id=unit_id, owner_id=principal.user_id)
    if len(content) > MAX_FILE_BYTES:
        raise PayloadTooLarge(f"Files up to {MAX_FILE_BYTES // (1024 * 1024)} MB can be imported.")
    if not content.strip():
        raise invalid("file", "the file is empty", "empty")
    table, total = read_table(content, filename)
    if total == 0:
        raise invalid("file", "the file has a header but no rows", "empty")
    source = _import_source(session, principal, unit_id)  # type: ignore[arg-type]
    run = ImportRun(org_id=principal.org_id, unit_id=unit_id, created_by_id=principal.user_id,
                    source_id=source.id, kind=kind, filename=filename[:255], content=content,
                    encoding=table.encoding, headers=table.headers, total_rows=total,
                    mapping=suggest_mapping(table.headers, definitions(session, principal.org_id), kind))
    session.add(run)
    session.flush()
    audit.record(session, principal, action="create", entity="imports", entity_id=run.id, unit_id=unit_id,
                 after={"filename": run.filename, "rows": total, "kind": kind},
                 summary=f"File {run.filename} uploaded ({total} rows)")
    return run


def get_run(session: Session, principal: Principal, import_id: int) -> ImportRun:
    return get_scoped(session, principal, ImportRun, import_id)


def list_runs(session: Session, principal: Principal, *, limit: int = 50, cursor: str | None = None) -> Page[Any]:
    principal.require("imports", "read")
    return keyset_page(session, select(ImportRun).where(scope(principal, ImportRun)), id_column=ImportRun.id,
                       limit=limit, cursor=cursor)


def set_mapping(session: Session, principal: Principal, import_id: int, mapping: dict[str, str]) -> ImportRun:
    run = get_run(session, principal, import_id)
    require_row(session, principal, "imports", "update", unit_id=run.unit_id, owner_id=run.created_by_id)
    if run.status != "uploaded":
        raise Conflict(f"The import is {run.status}; its mapping can no longer change.")
    run.mapping = check_mapping(run.headers, mapping, run.kind)
    session.flush()
    return run


@dataclass
class PreviewRow:
    row_number: int
    values: dict[str, str]
    ok: bool
    reason: str  # why the row would be rejected
    warnings: str = ""  # the values of an accepted row that would be left out, and why


def dealer_codes(session: Session, principal: Principal) -> dict[str, int]:
    """Dealer column values an order import may use (unit code or name) → unit id: the units where the
    importer may create orders."""
    found: dict[str, int] = {}
    for unit in writable_units(session, principal, "orders", "create"):
        found.setdefault(unit.code, unit.id)
        found.setdefault(unit.name, unit.id)
    return found


def _preview_orders(session: Session, principal: Principal, run: ImportRun, limit: int,
                    locale: str | None, view: CustomerView) -> list[PreviewRow]:
    out: list[PreviewRow] = []
    shown = functools.partial(view.file_row, run.mapping)
    if not {"order_no", "ordered_at"} <= set(run.mapping.values()):
        return [PreviewRow(n, shown(row), True, "")
                for n, row in itertools.islice(rows(run.content, run.filename), limit)]
    dealers = dealer_codes(session, principal)
    for group in order_groups(run):
        try:
            order_to_message(run.id, group, run.mapping, run.filename, tz_name=principal.timezone, dealers=dealers)
            out += [PreviewRow(n, shown(row), True, "") for n, row in group]
        except RowRejected as error:
            out += [PreviewRow(n, shown(row), False, _reason(view, run, problems, locale or principal.locale))
                    for (n, row), problems in zip(group, _group_problems(error, group), strict=True)]
        if len(out) >= limit:
            break
    return out[:limit]


def _group_problems(error: RowRejected, group: list[tuple[int, dict[str, str]]]) -> list[list[Problem]]:
    """Each row's own problems; a sound row of a rejected order says which rows sank it."""
    faulty = sorted({p.row for p in error.problems if p.row is not None})
    out = []
    for number, _ in group:
        own = [p for p in error.problems if p.row == number]
        out.append(own or [Problem("", normalise.InvalidValue("order_rejected", rows=", ".join(map(str, faulty))),
                                   number)])
    return out


def _reason(view: CustomerView, run: ImportRun, problems: list[Problem], locale: str | None) -> str:
    """Why a row was refused (or values of it left out), in ``locale``, quoting its values as the reader may
    see them."""
    return problems_text(view.file_problems(run.mapping, RowRejected(problems).as_json()), locale)


def preview(session: Session, principal: Principal, import_id: int, limit: int = 10,
            locale: str | None = None) -> list[PreviewRow]:
    run = get_run(session, principal, import_id)
    view = file_view(session, principal, uploaded_by=run.created_by_id)
    if run.kind == "orders":
        return _preview_orders(session, principal, run, limit, locale, view)
    reader = RowReader(run.mapping, definitions(session, run.org_id))
    locale = locale or principal.locale
    out: list[PreviewRow] = []
    for number, row in rows(run.content, run.filename):
        values = [row.get(h) or "" for h in reader.headers]
        try:
            _, problems = reader.read_row(run.id, number, values, run.filename, utcnow())
            out.append(PreviewRow(number, view.file_row(run.mapping, row), True, "",
                                  _reason(view, run, problems, locale) if problems else ""))
        except RowRejected as error:
            out.append(PreviewRow(number, view.file_row(run.mapping, row), False,
                                  _reason(view, run, error.problems, locale)))
        if len(out) >= limit:
            break
    return out


def start(session: Session, principal: Principal, import_id: int) -> ImportRun:
    run = get_run(session, principal, import_id)
    require_row(session, principal, "imports", "update", unit_id=run.unit_id, owner_id=run.created_by_id)
    if run.status != "uploaded":
        raise Conflict(f"The import is already {run.status}.")
    run.mapping = check_mapping(run.headers, run.mapping, run.kind)
    job = jobs.enqueue(session, kind=IMPORT_JOB, org_id=run.org_id, unit_id=run.unit_id,
                       created_by_api_key_id=principal.api_key_id,
                       created_by_id=principal.user_id, payload={"import_id": run.id})
    run.status, run.job_id = "queued", job.id
    session.flush()
    audit.record(session, principal, action="start", entity="imports", entity_id=run.id, unit_id=run.unit_id,
                 after={"job_id": job.id, "mapping": run.mapping}, summary=f"Import of {run.filename} started")
    return run


def rejections(session: Session, principal: Principal, import_id: int) -> list[ImportRejection]:
    run = get_run(session, principal, import_id)
    return list(session.scalars(select(ImportRejection).where(ImportRejection.import_id == run.id)
                                .order_by(ImportRejection.row_number)))


def rejections_csv(session: Session, principal: Principal, import_id: int, locale: str | None = None) -> bytes:
    """The rejected rows as they were, with their row number and reason (in ``locale``): fix them and import
    this file again. Masked as the preview is for readers other than the uploader without pii.read."""
    run = get_run(session, principal, import_id)
    view = file_view(session, principal, uploaded_by=run.created_by_id)
    sheet = CsvSheet()
    sheet.write([t("imports.warning.row_number", locale), t("imports.warning.reason", locale), *run.headers])
    for rejection in rejections(session, principal, import_id):
        reason = problems_text(view.file_problems(run.mapping, rejection.problems), locale) if rejection.problems \
            else (rejection.reason if view.sees_all else MASK)
        row = view.file_row(run.mapping, rejection.row)
        sheet.write([rejection.row_number, reason, *(row.get(h, "") for h in run.headers)])
    return sheet.content()


@dataclass
class ValueWarning:
    """A value of an accepted row that was left out, as a reader may see it."""

    row_number: int
    column: str
    value: str
    reason: str  # what is wrong with the value (the column is named apart)


WARNING_COLUMNS = ("row_number", "column", "value", "reason")


def _warnings(session: Session, principal: Principal, run: ImportRun, locale: str | None,
              chosen: Iterable[ImportWarning]) -> Iterator[ValueWarning]:
    """Stored warnings with their values and reasons masked, as the preview's cells are, for readers other than
    the uploader without pii.read (a column is masked by what it is mapped to), the reasons in ``locale``."""
    view = file_view(session, principal, uploaded_by=run.created_by_id)
    locale = locale or principal.locale
    for warning in chosen:
        value = view.file_row(run.mapping, {warning.column: warning.value})[warning.column]
        (problem,) = view.file_problems(run.mapping, [{"column": warning.column, **warning.problem}])
        yield ValueWarning(warning.row_number, warning.column, value, _error_of(problem).text(locale))


def warnings(session: Session, principal: Principal, import_id: int, *, locale: str | None = None,
             limit: int = 100, cursor: str | None = None) -> Page[ValueWarning]:
    """The values of accepted rows that were not stored, by row number (a page of them)."""
    run = get_run(session, principal, import_id)
    page = keyset_page(session, select(ImportWarning).where(ImportWarning.import_id == run.id),
                       id_column=ImportWarning.id, sort_column=ImportWarning.row_number, descending=False,
                       limit=limit, cursor=cursor)
    return Page(list(_warnings(session, principal, run, locale, page.items)), page.next_cursor)


def warnings_file(session: Session, principal: Principal, import_id: int, locale: str | None = None,
                  format: str = "csv") -> bytes:
    """Every warning of an import (row number, column, value as written, reason in ``locale``) as CSV or XLSX,
    masked as ``warnings`` are."""
    run = get_run(session, principal, import_id)
    locale = locale or principal.locale
    sheet = files.sheet(format, f"import-{run.id}-warnings")
    sheet.write([t(f"imports.warning.{c}", locale, default=c) for c in WARNING_COLUMNS])
    stored = session.scalars(select(ImportWarning).where(ImportWarning.import_id == run.id)
                             .order_by(ImportWarning.row_number, ImportWarning.id).execution_options(yield_per=5000))
    for warning in _warnings(session, principal, run, locale, stored):
        sheet.write([warning.row_number, warning.column, warning.value, warning.reason])
    return sheet.content()


@dataclass
class ChunkOutcome:
    accepted: int = 0
    rejected: int = 0
    profiles_created: int = 0
    warnings: int = 0


def _import_chunk(session: Session, run: ImportRun, source: Source, reader: RowReader,
                  chunk: list[tuple[int, list[str]]], started: datetime) -> ChunkOutcome:
    """Validate rows of a profile file and store them (profiles through One ID, rejections with their
    reasons), in the caller's transaction. Row n is stamped ``started`` + n µs: the file's order decides
    between two rows of one person whichever worker stores which first. Its callers pause the cycle
    collector (``jobs.cyclic_collector_paused``) while they read and store rows."""
    read = reader.read(run.id, chunk, run.filename, started)
    refresh_statistics(session, STATISTICS_TABLES)
    # Message ids are this run's row numbers: new by construction, so no duplicate check.
    stats = store_imported(session, source, read.columns, read.odd, received_at=utcnow()) if read.accepted else None
    session.add_all(ImportRejection(import_id=run.id, row_number=number, reason=str(error)[:2000],
                                    problems=error.as_json(), row=reader.as_dict(values))
                    for number, values, error in read.rejected)
    warnings = [{"import_id": run.id, "row_number": number, "column": problem.column,
                 "value": reader.cell(values, problem.column), "problem": problem.error.as_dict()}
                for number, values, problems in read.warned for problem in problems]
    if warnings:
        session.execute(insert(ImportWarning), warnings)
    return ChunkOutcome(read.accepted, len(read.rejected), stats.profiles_created if stats else 0, len(warnings))


def _count(session: Session, run_id: int, outcome: ChunkOutcome) -> None:
    """Add a chunk's counts to the run in SQL: parts stored side by side by several workers all add theirs."""
    session.execute(update(ImportRun).where(ImportRun.id == run_id).values(
        accepted_rows=ImportRun.accepted_rows + outcome.accepted,
        rejected_rows=ImportRun.rejected_rows + outcome.rejected,
        profiles_created=ImportRun.profiles_created + outcome.profiles_created,
        warnings=ImportRun.warnings + outcome.warnings,
    ).execution_options(synchronize_session=False))


def _progress(session: Session, run_id: int) -> tuple[int, int]:
    done, total = session.execute(select(ImportRun.accepted_rows + ImportRun.rejected_rows, ImportRun.total_rows)
                                  .where(ImportRun.id == run_id)).one()
    return int(99 * done / max(total, 1)), done


@jobs.job_handler(IMPORT_JOB)
def _run_import(ctx: jobs.JobContext) -> dict[str, Any]:
    """A CSV file of profiles is cut into parts, each a job of its own that any worker may take (this one
    takes them too, then waits for the rest); a workbook or an order file is read through here in chunks."""
    session = ctx.session
    run = session.get(ImportRun, ctx.job.payload["import_id"])
    assert run is not None
    source = session.get(Source, run.source_id)
    assert source is not None
    if run.kind == "orders":
        return _run_order_import(ctx, run, source)
    if _is_xlsx(run.filename):
        return _run_workbook_import(ctx, run, source)
    if "parts" not in ctx.checkpoint:
        # a big file in fewer, larger parts (each part pays its lookups and bookkeeping once), still enough
        # of them (about a hundred) for every worker to keep busy to the end
        headers, parts = csv_parts(run.content, run.encoding,
                                   min(max(CHUNK_ROWS, run.total_rows // 50), 4 * CHUNK_ROWS))
        started = utcnow().isoformat()
        for first, start, end in parts:
            jobs.enqueue(session, kind=IMPORT_PART_JOB, org_id=run.org_id, unit_id=run.unit_id,
                         created_by_id=ctx.job.created_by_id, created_by_api_key_id=ctx.job.created_by_api_key_id,
                         parent_id=ctx.job.id, payload={"import_id": run.id, "headers": headers, "first_row": first,
                                                        "start": start, "end": end, "started": started})
        run.status = "running"
        ctx.save(progress=0, checkpoint={"parts": len(parts), "started": started}, message=f"0/{run.total_rows}")

    reported = {"done": -1}

    def report() -> None:  # asked every fraction of a second while other workers store parts: write on change
        progress, done = _progress(session, run.id)
        if done != reported["done"]:
            ctx.save(progress=progress, message=f"{done}/{run.total_rows}")
            reported["done"] = done
        else:
            session.rollback()  # end the read, so the next one sees what the others committed

    failed = ctx.run_parts(between=report)
    if failed:
        raise RuntimeError(f"{len(failed)} of {ctx.checkpoint['parts']} parts of the file failed: "
                           f"{(failed[0].error or '').splitlines()[-1] if failed[0].error else ''}")
    session.refresh(run)
    return _finish(ctx, run)


@jobs.job_handler(IMPORT_PART_JOB)
def _run_import_part(ctx: jobs.JobContext) -> dict[str, Any]:
    if ctx.checkpoint.get("done"):
        return ctx.checkpoint["outcome"]
    with jobs.cyclic_collector_paused():  # millions of small objects, from the first list of values on
        return _import_part(ctx)


def _import_part(ctx: jobs.JobContext) -> dict[str, Any]:
    session, part = ctx.session, ctx.job.payload
    run = session.get(ImportRun, part["import_id"])
    assert run is not None
    source = session.get(Source, run.source_id)
    assert source is not None
    start, end = part["start"], part["end"]
    raw = session.scalar(select(func.substr(ImportRun.content, start + 1, end - start))
                         .where(ImportRun.id == run.id))
    chunk = part_values(bytes(raw or b""), run.encoding, part["first_row"])
    reader = RowReader(run.mapping, definitions(session, run.org_id), part["headers"])
    for attempt in range(1, 6):
        try:
            commit_without_waiting_for_disk(session)
            outcome = _import_chunk(session, run, source, reader, chunk, datetime.fromisoformat(part["started"]))
            _count(session, run.id, outcome)
            result = {"rows": len(chunk), "accepted": outcome.accepted, "rejected": outcome.rejected,
                      "warnings": outcome.warnings}
            ctx.save(progress=100, checkpoint={"done": True, "outcome": result})  # the rows and "done" together
            return result
        except Exception as error:
            # Two parts storing one new person at once: the loser starts its part again and now finds the
            # person where the winner put it (no failed attempt, no back-off).
            if not lost_a_race(error) or attempt == 5:
                raise
            session.rollback()
            run, source = session.get(ImportRun, part["import_id"]), session.get(Source, run.source_id)
    raise AssertionError("unreachable")


def _run_workbook_import(ctx: jobs.JobContext, run: ImportRun, source: Source) -> dict[str, Any]:
    """A workbook has no byte ranges to hand out: its rows are read here, a chunk per transaction, each
    committed with the checkpoint (a crash resumes after the last one)."""
    session = ctx.session
    next_row = int(ctx.checkpoint.get("next_row", 0))
    started = ctx.checkpoint.get("started") or utcnow().isoformat()
    reader = RowReader(run.mapping, definitions(session, run.org_id), run.headers)
    run.status = "running"
    remaining = ((n, [row.get(h, "") for h in run.headers]) for n, row in rows(run.content, run.filename)
                 if n >= next_row)
    while chunk := list(itertools.islice(remaining, CHUNK_ROWS)):
        with jobs.cyclic_collector_paused():
            outcome = _import_chunk(session, run, source, reader, chunk, datetime.fromisoformat(started))
        _count(session, run.id, outcome)
        progress, done = _progress(session, run.id)
        ctx.save(progress=progress, checkpoint={"next_row": chunk[-1][0] + 1, "started": started},
                 message=f"{done}/{run.total_rows}")
    session.refresh(run)
    return _finish(ctx, run)


def _finish(ctx: jobs.JobContext, run: ImportRun) -> dict[str, Any]:
    run.status = "done"
    outcome = {"accepted": run.accepted_rows, "rejected": run.rejected_rows, "profiles_created": run.profiles_created,
               "orders_created": run.orders_created, "warnings": run.warnings}
    audit.record(ctx.session, ctx.principal, org_id=run.org_id, action="finish", entity="imports", entity_id=run.id,
                 unit_id=run.unit_id, after=outcome,
                 summary=f"Import of {run.filename}: {run.accepted_rows} accepted, {run.rejected_rows} rejected, "
                         f"{run.warnings} values left out")
    ctx.session.flush()
    return outcome


def _run_order_import(ctx: jobs.JobContext, run: ImportRun, source: Source) -> dict[str, Any]:
    """Orders in chunks of about CHUNK_ROWS rows; each chunk's orders, counters and checkpoint (the first row
    of the next order) commit together, so a crash resumes after the last whole chunk."""
    session = ctx.session
    next_row = int(ctx.checkpoint.get("next_row", 0))
    # The importer's rights decide the dealers; a job nobody asked for runs as the platform.
    dealers = dealer_codes(session, ctx.principal or Principal.system(run.org_id))
    tz_name = org_timezone(session, run.org_id)
    dialect = session.get_bind().dialect.name
    run.status = "running"
    messages: list[dict[str, Any]] = []
    rejected: list[ImportRejection] = []
    pending_rows = 0

    def flush_chunk(next_first_row: int) -> None:
        nonlocal pending_rows
        numbers = [m["properties"]["order_id"] for m in messages]
        refresh_statistics(session, [*STATISTICS_TABLES, "orders"])
        existing = set(session.scalars(select(Order.external_id).where(
            Order.org_id == run.org_id, one_of(Order.external_id, numbers, dialect)))) if numbers else set()
        stats = process_messages(session, source, messages, received_at=utcnow()) if messages else None
        session.add_all(rejected)
        run.accepted_rows += sum(len(m["properties"]["rows"]) for m in messages)
        run.rejected_rows += len(rejected)
        run.profiles_created += stats.profiles_created if stats else 0
        run.orders_created += len(set(numbers) - existing)
        done = run.accepted_rows + run.rejected_rows
        ctx.save(progress=int(99 * done / max(run.total_rows, 1)), checkpoint={"next_row": next_first_row},
                 message=f"{done}/{run.total_rows}")
        messages.clear()
        rejected.clear()
        pending_rows = 0

    for group in order_groups(run):
        first_row = group[0][0]
        if first_row < next_row:
            continue
        if pending_rows >= CHUNK_ROWS:
            flush_chunk(first_row)
        try:
            messages.append(order_to_message(run.id, group, run.mapping, run.filename, tz_name=tz_name,
                                             dealers=dealers))
        except RowRejected as error:
            for (number, row), problems in zip(group, _group_problems(error, group), strict=True):
                reason = RowRejected(problems)
                rejected.append(ImportRejection(import_id=run.id, row_number=number, reason=str(reason)[:2000],
                                                problems=reason.as_json(), row=row))
        pending_rows += len(group)
    if pending_rows:
        flush_chunk(run.total_rows + 2)
    return _finish(ctx, run)
