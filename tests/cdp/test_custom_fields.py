"""Custom fields: defined per organisation, validated by type in the API, ingestion and import, PII masked."""

from __future__ import annotations

from sqlalchemy import select

from kehu.cdp.models import Profile
from tests.factories.cdp import basic, call, process

INTENT = {"key": "intended_model", "label_zh": "意向车型", "label_en": "Intended model", "type": "option",
          "options": [{"value": "id4", "zh": "ID.4", "en": "ID.4"}, {"value": "id6", "zh": "ID.6", "en": "ID.6"}]}
BUDGET = {"key": "budget", "label_zh": "预算（万元）", "label_en": "Budget (10k CNY)", "type": "number"}
ID_CARD = {"key": "id_card_no", "label_zh": "身份证号", "label_en": "ID card no.", "type": "text", "is_pii": True}


def define(client, headers, *specs):  # type: ignore[no-untyped-def]
    for spec in specs:
        response = client.post("/api/v1/custom-fields", headers=headers, json=spec)
        assert response.status_code == 201, response.text


def test_defining_fields_needs_settings_permission_and_valid_shapes(client, tree, login):
    admin = login("admin@example.com")
    define(client, admin, INTENT)
    assert client.post("/api/v1/custom-fields", headers=admin, json=INTENT).status_code == 409
    assert client.post("/api/v1/custom-fields", headers=admin, json={**BUDGET, "key": "mobile"}).status_code == 422
    no_options = client.post("/api/v1/custom-fields", headers=admin, json={**INTENT, "key": "x", "options": []})
    assert no_options.status_code == 422 and no_options.json()["errors"][0]["field"] == "options"
    assert client.post("/api/v1/custom-fields", headers=login("a.manager@example.com"), json=BUDGET).status_code == 403
    listed = client.get("/api/v1/custom-fields", headers=login("a.sales@example.com")).json()
    assert [f["key"] for f in listed] == ["intended_model"]


def test_api_validates_defined_attributes_and_masks_pii(client, tree, login, session):
    admin = login("admin@example.com")
    define(client, admin, INTENT, BUDGET, ID_CARD)
    bad = client.post("/api/v1/customers", headers=admin, json={
        "name": "测试", "attributes": {"intended_model": "Golf", "budget": "很多", "hobby": "钓鱼"}})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"attributes.intended_model", "attributes.budget"}
    ok = client.post("/api/v1/customers", headers=admin, json={
        "name": "钱先生", "attributes": {"intended_model": "ID.6", "budget": "25", "id_card_no": "110101199003071234",
                                        "hobby": "钓鱼"}})
    assert ok.status_code == 201, ok.text
    assert ok.json()["attributes"] == {"intended_model": "id6", "budget": 25, "id_card_no": "110101199003071234",
                                       "hobby": "钓鱼"}
    from kehu.tenancy import schemas as ts
    from kehu.tenancy import service as tenancy

    tenancy.create_user(session, tree.system, data=ts.UserCreate(
        email="analyst@example.com", name="分析", password="correct-horse-1", unit_id=tree.hq.id,
        roles=["hq_analyst"]))
    session.commit()
    seen = client.get(f"/api/v1/customers/{ok.json()['id']}", headers=login("analyst@example.com")).json()
    assert seen["profile"]["attributes"]["id_card_no"] == "***1234"  # a short tail, never the birth date
    assert seen["profile"]["attributes"]["budget"] == 25


def test_ingested_traits_are_coerced_and_bad_values_noted(client, tree, login, web_source, session, clean_database):
    define(client, login("admin@example.com"), INTENT, BUDGET)
    _, key = web_source
    client.post("/v1/batch", headers=basic(key), json={"batch": [
        call("identify", userId="u1", traits={"intended_model": "ID.4", "budget": "30"}),
        call("identify", userId="u1", traits={"budget": "a lot", "intended_model": "Golf"}),
    ]})
    process(clean_database)
    profile = session.scalars(select(Profile)).one()
    assert profile.attributes == {"intended_model": "id4", "budget": 30}


def test_import_maps_headers_to_custom_fields_by_label_and_leaves_bad_values_out(client, tree, login, clean_database,
                                                                                 settings):
    from kehu.app import make_worker

    admin = login("admin@example.com")
    define(client, admin, INTENT)
    content = "姓名,手机,意向车型\n甲,13511110001,ID.4\n乙,13511110002,高尔夫\n".encode()
    run = client.post("/api/v1/imports", headers=admin, files={"file": ("a.csv", content, "text/csv")}).json()
    assert run["mapping"]["意向车型"] == "attribute:intended_model"
    client.post(f"/api/v1/imports/{run['id']}/start", headers=admin)
    worker = make_worker(clean_database, settings)
    while worker.run_once():
        pass
    done = client.get(f"/api/v1/imports/{run['id']}", headers=admin).json()
    assert (done["accepted_rows"], done["rejected_rows"], done["warnings"]) == (2, 0, 1)
    warnings = client.get(f"/api/v1/imports/{run['id']}/warnings?lang=zh", headers=admin).json()["items"]
    assert [(w["row_number"], w["column"], w["value"]) for w in warnings] == [(3, "意向车型", "高尔夫")]
    assert warnings[0]["reason"].startswith("不在可选项中：高尔夫")
