"""Exports of customers: the file holds exactly what the requester may export (a dealer never another
dealer's customers), personal data masked without pii.read, the list's filters applied, every step audited,
and an export belongs to whoever asked for it (an API key's export runs with the key's rights)."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook
from sqlalchemy import select

from kehu.core.audit import AuditRecord
from tests.cdp.test_customer_access import seed
from tests.cdp.test_imports import run_jobs
from tests.factories.tenancy import make_user


def export(client, headers, database, settings, **body):  # type: ignore[no-untyped-def]
    asked = client.post("/api/v1/customers/exports", headers=headers, json=body)
    assert asked.status_code == 202, asked.text
    assert asked.json()["status"] == "queued"
    run_jobs(database, settings)
    done = client.get(f"/api/v1/exports/{asked.json()['id']}", headers=headers).json()
    assert done["status"] == "done", done
    return done, client.get(f"/api/v1/exports/{done['id']}/download", headers=headers)


def csv_rows(response) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_a_dealer_manager_exports_their_dealers_customers_only(client, tree, login, session, clean_database,
                                                               settings):
    mine, colleague, other, north = seed(session, tree)
    manager = login("a.manager@example.com")
    done, file = export(client, manager, clean_database, settings, format="csv")
    assert file.status_code == 200 and file.headers["content-type"].startswith("text/csv")
    assert file.headers["content-disposition"].endswith(f'{done["filename"]}"')
    rows = csv_rows(file)
    assert {int(r["客户ID"]) for r in rows} == {mine.id, colleague.id} and done["row_count"] == 2
    assert not {other.id, north.id} & {int(r["客户ID"]) for r in rows}
    assert "王五" not in file.content.decode("utf-8-sig") and "赵六" not in file.content.decode("utf-8-sig")
    by_name = {r["姓名"]: r for r in rows}
    assert by_name["张三"]["手机号"] == "+8613811112222"  # a dealer manager holds pii.read
    assert by_name["张三"]["所属单位"] == "上海浦东店" and by_name["张三"]["负责人"] == "张销售"
    actions = list(session.scalars(select(AuditRecord.action).where(AuditRecord.entity == "profiles",
                                                                    AuditRecord.action.in_(
                                                                        ["export", "export_ready", "download"]))))
    assert sorted(actions) == ["download", "export", "export_ready"]


def test_marketing_exports_everyone_masked_to_xlsx_with_filters(client, tree, login, session, clean_database,
                                                                settings):
    seed(session, tree)
    make_user(session, tree.system, tree.hq, "hq_marketing", email="mkt@example.com", name="市场部")
    session.commit()
    marketing = login("mkt@example.com")
    done, file = export(client, marketing, clean_database, settings, format="xlsx")
    sheet = load_workbook(io.BytesIO(file.content), read_only=True).worksheets[0]
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert header[:4] == ["客户ID", "姓名", "手机号", "邮箱"] and len(rows) == 4 == done["row_count"]
    wang = next(r for r in rows if r[1] == "王五")
    assert wang[2] == "+86138****4444" and wang[3] == "***@example.com"  # ww: two letters would be half of it
    _, filtered = export(client, marketing, clean_database, settings, format="csv", q="王五")
    assert [r["姓名"] for r in csv_rows(filtered)] == ["王五"]
    _, by_unit = export(client, marketing, clean_database, settings, unit_id=tree.north.id)
    assert [r["姓名"] for r in csv_rows(by_unit)] == ["赵六"]


def test_exports_are_refused_hidden_and_checked(client, tree, login, session, clean_database, settings):
    seed(session, tree)
    sales = login("a.sales@example.com")
    refused = client.post("/api/v1/customers/exports", headers=sales, json={})
    assert refused.status_code == 403
    manager = login("a.manager@example.com")
    bad = client.post("/api/v1/customers/exports", headers=manager, json={"format": "pdf", "stage": "planet"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"body.format", "body.stage"}
    asked = client.post("/api/v1/customers/exports", headers=manager, json={}).json()
    early = client.get(f"/api/v1/exports/{asked['id']}/download", headers=manager)
    assert early.status_code == 409
    run_jobs(clean_database, settings)
    # Someone else's export does not exist for you, even in your region.
    for stranger in ("east@example.com", "admin@example.com", "boss@other.example.com"):
        assert client.get(f"/api/v1/exports/{asked['id']}/download", headers=login(stranger)).status_code == 404
    assert [e["id"] for e in client.get("/api/v1/exports", headers=login("east@example.com")).json()] == []


def test_an_api_keys_export_runs_with_the_keys_rights(client, tree, login, session, clean_database, settings):
    mine, colleague, _, _ = seed(session, tree)
    admin = login("admin@example.com")
    created = client.post("/api/v1/api-keys", headers=admin,
                          json={"name": "浦东店 DMS", "role": "dealer_manager", "unit_id": tree.dealer_a.id})
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["key"]}
    done, file = export(client, key, clean_database, settings, format="csv")
    assert {int(r["客户ID"]) for r in csv_rows(file)} == {mine.id, colleague.id}
    assert client.get(f"/api/v1/exports/{done['id']}", headers=admin).status_code == 404
