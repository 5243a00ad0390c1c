"""The condition language, end to end: customers arrive through /v1 and the worker, a marketer asks the
preview API who matches. Both databases; scope applies; every mistake comes back with its JSON path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kehu.cdp import fields
from tests.factories.cdp import basic, call, make_source, process

NOW = datetime.now(UTC)


def ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


@pytest.fixture
def people(client, tree, session, clean_database):  # type: ignore[no-untyped-def]
    """Five customers at three dealers with the histories the rules below ask about."""
    fields.create_field(session, tree.system, {"key": "budget", "label_zh": "预算", "label_en": "Budget",
                                               "type": "number"})
    fields.create_field(session, tree.system, {"key": "interests", "label_zh": "兴趣", "label_en": "Interests",
                                               "type": "multi_option", "options": [
                                                   {"value": "suv", "zh": "SUV", "en": "SUV"},
                                                   {"value": "ev", "zh": "电动", "en": "EV"}]})
    keys = {}
    for unit in (tree.dealer_a, tree.dealer_b, tree.dealer_c):
        _, keys[unit.code] = make_source(session, tree.system, f"{unit.name}展厅", unit.id)
    session.commit()

    def send(dealer: str, *calls):  # type: ignore[no-untyped-def]
        response = client.post("/v1/batch", headers=basic(keys[dealer]), json={"batch": list(calls)})
        assert response.status_code == 200 and not response.json()["rejected"], response.text

    # 张伟 (A): Shanghai, budget 300k, two recent ID.4 test drives, big spender, SMS consent, WeChat.
    send("SH001",
         call("identify", userId="zw", timestamp=ago(60), traits={
             "name": "张伟", "phone": "13800000001", "city": "上海", "lifecycle_stage": "customer",
             "birthday": "1985-06-01", "budget": 300000, "interests": ["suv", "ev"], "wechat_openid": "o-zw",
             "consent": {"sms": {"marketing": True}}}),
         call("track", userId="zw", event="test_drive_booked", timestamp=ago(10), properties={"model": "ID.4"}),
         call("track", userId="zw", event="test_drive_booked", timestamp=ago(3), properties={"model": "ID.4"}),
         call("track", userId="zw", event="Order Completed", timestamp=ago(2),
              properties={"order_id": "SO-1", "total": 250000, "products": [{"sku": "ID4", "price": 250000}]}))
    # 李娜 (A): Shanghai, one old ID.6 test drive, consent granted then withdrawn.
    send("SH001",
         call("identify", userId="ln", timestamp=ago(400), traits={
             "name": "李娜", "phone": "13800000002", "city": "上海", "lifecycle_stage": "lead",
             "birthday": "1992-02-10", "budget": 150000, "interests": ["ev"],
             "consent": {"sms": {"marketing": True}}}),
         call("track", userId="ln", event="test_drive_booked", timestamp=ago(200), properties={"model": "ID.6"}),
         call("identify", userId="ln", timestamp=ago(5), traits={"consent": {"sms": {"marketing": False}}}))
    # 王芳 (B): Hangzhou, no budget, three small orders long ago.
    send("HZ001",
         call("identify", userId="wf", timestamp=ago(900), traits={
             "name": "王芳", "phone": "13800000003", "city": "杭州", "lifecycle_stage": "owner"}),
         *[call("track", userId="wf", event="Order Completed", timestamp=ago(800 - n),
                properties={"order_id": f"SO-W{n}", "total": 1000, "products": [{"sku": "MAT", "price": 1000}]})
           for n in range(3)])
    # 刘洋 (C): Beijing, one ID.4 test drive today, nothing else.
    send("BJ001",
         call("identify", userId="ly", timestamp=ago(1), traits={
             "name": "刘洋", "phone": "13800000004", "city": "北京", "lifecycle_stage": "prospect"}),
         call("track", userId="ly", event="test_drive_booked", timestamp=ago(0.5), properties={"model": "ID.4"}))
    # 陈静 (C): Beijing, just a name and a mobile.
    send("BJ001", call("identify", userId="cj", timestamp=ago(30), traits={
        "name": "陈静", "phone": "13800000005", "city": "北京", "lifecycle_stage": "prospect"}))
    process(clean_database)
    return tree


def names(client, headers, condition) -> list[str]:  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/segments/preview", headers=headers, json={"condition": condition})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["sample"])
    return sorted(p["name"] for p in body["sample"])


def field(name: str, op: str, value: object = None) -> dict:  # type: ignore[type-arg]
    return {"type": "field", "field": name, "op": op, "value": value}


def test_profile_and_custom_fields(people, client, login):  # type: ignore[no-untyped-def]
    admin = login("admin@example.com")
    assert names(client, admin, field("city", "eq", "上海")) == ["张伟", "李娜"]
    assert names(client, admin, field("lifecycle_stage", "in", ["prospect", "lead"])) == ["刘洋", "李娜", "陈静"]
    assert names(client, admin, field("birthday", "before", "1990-01-01")) == ["张伟"]
    assert names(client, admin, field("attributes.budget", "gte", 200000)) == ["张伟"]
    assert names(client, admin, field("attributes.budget", "is_not_set")) == ["刘洋", "王芳", "陈静"]
    assert names(client, admin, field("attributes.interests", "contains", "ev")) == ["张伟", "李娜"]
    assert names(client, admin, field("last_seen_at", "within_last_days", 7)) == ["刘洋", "张伟", "李娜"]
    assert names(client, admin, field("name", "starts_with", "王")) == ["王芳"]


def test_events_with_counts_windows_and_properties(people, client, login):  # type: ignore[no-untyped-def]
    admin = login("admin@example.com")
    id4 = [{"property": "model", "op": "eq", "value": "ID.4"}]
    drove = {"type": "event", "event": "test_drive_booked"}
    assert names(client, admin, {**drove, "count": {"op": "gte", "value": 2}, "window": {"within_days": 30},
                                 "where": id4}) == ["张伟"]
    assert names(client, admin, {**drove, "where": id4}) == ["刘洋", "张伟"]
    assert names(client, admin, {**drove, "window": {"within_days": 30}}) == ["刘洋", "张伟"]
    assert names(client, admin, {**drove, "op": "did_not"}) == ["王芳", "陈静"]
    # "fewer than two" includes those who never did it at all
    assert names(client, admin, {**drove, "count": {"op": "lt", "value": 2}}) == ["刘洋", "李娜", "王芳", "陈静"]
    assert names(client, admin, {**drove, "count": {"op": "eq", "value": 1}}) == ["刘洋", "李娜"]
    since = (NOW - timedelta(days=250)).date().isoformat()
    assert names(client, admin, {**drove, "window": {"from": since, "to": (NOW - timedelta(days=100)).date()
                                                     .isoformat()}}) == ["李娜"]


def test_orders_consent_identities_units_and_groups(people, client, login):  # type: ignore[no-untyped-def]
    admin = login("admin@example.com")
    orders = {"type": "orders"}
    assert names(client, admin, {**orders, "measure": "total", "op": "gte", "value": 100000}) == ["张伟"]
    assert names(client, admin, {**orders, "measure": "total", "op": "lt", "value": 100000}) == \
        ["刘洋", "李娜", "王芳", "陈静"]
    assert names(client, admin, {**orders, "measure": "count", "op": "eq", "value": 0}) == ["刘洋", "李娜", "陈静"]
    assert names(client, admin, {**orders, "measure": "count", "op": "gte", "value": 3}) == ["王芳"]
    assert names(client, admin, {**orders, "measure": "last_ordered_at", "op": "within_last_days",
                                 "value": 30}) == ["张伟"]
    assert names(client, admin, {**orders, "op": "gte", "value": 1, "sku": "ID4"}) == ["张伟"]
    assert names(client, admin, {"type": "consent", "channel": "sms"}) == ["张伟"]  # 李娜 withdrew
    assert names(client, admin, {"type": "identity", "kind": "wechat_openid"}) == ["张伟"]
    assert names(client, admin, {"type": "unit", "unit_id": people.east.id}) == ["张伟", "李娜", "王芳"]
    nested = {"type": "all", "conditions": [
        {"type": "unit", "unit_id": people.east.id},
        {"type": "any", "conditions": [field("city", "eq", "杭州"),
                                       {"type": "not", "condition": {"type": "consent", "channel": "sms"}}]}]}
    assert names(client, admin, nested) == ["李娜", "王芳"]


def test_a_dealer_counts_only_its_own_customers(people, client, login):  # type: ignore[no-untyped-def]
    everyone = {"type": "field", "field": "mobile", "op": "is_set"}
    admin = client.post("/api/v1/segments/preview", headers=login("admin@example.com"),
                        json={"condition": everyone}).json()
    dealer = client.post("/api/v1/segments/preview", headers=login("a.manager@example.com"),
                         json={"condition": everyone}).json()
    assert admin["count"] == 5 and dealer["count"] == 2
    assert sorted(p["name"] for p in dealer["sample"]) == ["张伟", "李娜"]
    # a consultant has no segments; another organisation sees none of these people
    assert client.post("/api/v1/segments/preview", headers=login("a.sales@example.com"),
                       json={"condition": everyone}).status_code == 403
    other = client.post("/api/v1/segments/preview", headers=login("boss@other.example.com"),
                        json={"condition": everyone}).json()
    assert other["count"] == 0


def test_pii_is_masked_in_the_sample_without_pii_read(people, client, login):  # type: ignore[no-untyped-def]
    body = client.post("/api/v1/segments/preview", headers=login("admin@example.com"),
                       json={"condition": field("city", "eq", "北京")}).json()
    assert {p["mobile"] for p in body["sample"]} == {"+8613800000004", "+8613800000005"}
    # HQ marketing builds segments but may not read PII
    marketer = client.post("/api/v1/users", headers=login("admin@example.com"), json={
        "email": "mkt@example.com", "name": "市场部", "password": "correct-horse-1", "unit_id": people.hq.id,
        "roles": ["hq_marketing"]})
    assert marketer.status_code == 201, marketer.text
    masked = client.post("/api/v1/segments/preview", headers=login("mkt@example.com"),
                         json={"condition": field("city", "eq", "北京")}).json()
    assert masked["count"] == 2 and all("*" in p["mobile"] for p in masked["sample"])


def test_mistakes_come_back_with_their_paths(people, client, login):  # type: ignore[no-untyped-def]
    admin = login("admin@example.com")
    condition = {"type": "all", "conditions": [
        field("favourite_colour", "eq", "red"),
        field("city", "gt", 3),
        field("attributes.budget", "gte", "lots"),
        {"type": "unit", "unit_id": 999999},
        {"type": "any", "conditions": [field("birthday", "before", "yesterday")]},
    ]}
    response = client.post("/api/v1/segments/preview", headers=admin, json={"condition": condition})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problems = {e["field"]: e["code"] for e in response.json()["errors"]}
    assert problems == {
        "condition.conditions.0.field": "unknown_field",
        "condition.conditions.1.op": "wrong_operator",
        "condition.conditions.2.value": "not_number",
        "condition.conditions.3.unit_id": "unknown_unit",
        "condition.conditions.4.conditions.0.value": "not_date",
    }
    # a shape the schema refuses (unknown rule type, missing op) is a 422 too, before any SQL
    bad_shape = client.post("/api/v1/segments/preview", headers=admin,
                            json={"condition": {"type": "magic"}})
    assert bad_shape.status_code == 422
    assert "condition" in bad_shape.text


def test_the_condition_language_is_published_in_openapi(client):  # type: ignore[no-untyped-def]
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    condition = schemas["PreviewRequest"]["properties"]["condition"]
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in condition["oneOf"]} == {
        "AllOf", "AnyOf", "Not", "FieldRule", "IdentityRule", "EventRule", "OrderRule", "ConsentRule", "UnitRule"}
    assert "within_last_days" in schemas["FieldRule"]["properties"]["op"]["enum"]
