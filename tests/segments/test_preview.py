"""The condition language, end to end: customers arrive through /v1 and the worker, a marketer asks the
preview API who matches. Both databases; scope applies; every mistake comes back with its JSON path."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.segments.conftest import NOW


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


def test_first_and_last_times_of_events(people, client, login):  # type: ignore[no-untyped-def]
    admin = login("admin@example.com")
    drove = {"type": "event_time", "event": "test_drive_booked"}
    assert names(client, admin, {**drove, "which": "last", "op": "within_last_days", "value": 7}) == ["刘洋", "张伟"]
    assert names(client, admin, {**drove, "which": "last", "op": "more_than_days_ago", "value": 7}) == ["李娜"]
    assert names(client, admin, {**drove, "which": "first", "op": "within_last_days", "value": 7}) == ["刘洋"]
    month_ago = (NOW - timedelta(days=30)).date().isoformat()
    assert names(client, admin, {**drove, "which": "first", "op": "before", "value": month_ago}) == ["李娜"]
    assert names(client, admin, {**drove, "which": "first", "op": "after", "value": month_ago}) == ["刘洋", "张伟"]
    # those who never did it meet no time rule; "not" of one includes them
    assert names(client, admin, {"type": "not", "condition": {**drove, "op": "within_last_days", "value": 7}}) == \
        ["李娜", "王芳", "陈静"]
    bad = client.post("/api/v1/segments/preview", headers=admin, json={"condition": {
        **drove, "op": "before", "value": "last spring"}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "condition.value"


def test_accounts(people, client, login, session, clean_database):  # type: ignore[no-untyped-def]
    from kehu.cdp.models import Account
    from tests.factories.cdp import basic, call, make_source, process

    _, key = make_source(session, people.system, "企业客户导入", people.hq.id)
    session.commit()
    response = client.post("/v1/batch", headers=basic(key), json={"batch": [
        call("group", userId="zw", groupId="acme", traits={"name": "艾克美", "kind": "company"}),
        call("group", userId="wf", groupId="wang-home", traits={"name": "王家", "kind": "household"}),
        call("group", userId="cj", groupId="acme", traits={"name": "艾克美", "kind": "company"})]})
    assert response.status_code == 200, response.text
    process(clean_database)
    admin = login("admin@example.com")
    acme = session.scalar(select(Account.id).where(Account.external_id == "acme"))
    assert names(client, admin, {"type": "account", "account_id": acme}) == ["张伟", "陈静"]
    assert names(client, admin, {"type": "account", "kind": "household"}) == ["王芳"]
    assert names(client, admin, {"type": "account"}) == ["张伟", "王芳", "陈静"]
    assert names(client, admin, {"type": "account", "op": "not_member"}) == ["刘洋", "李娜"]
    unknown = client.post("/api/v1/segments/preview", headers=admin, json={"condition": {
        "type": "account", "account_id": 987654}})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["code"] == "unknown_account"


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


def test_every_kind_of_mistake_is_named(people, client, login):  # type: ignore[no-untyped-def]
    """One condition with every mistake the compiler knows; each is reported at its path, all at once."""
    admin = login("admin@example.com")
    drove = {"type": "event", "event": "test_drive_booked"}
    mistakes = {
        "unknown_field": field("favourite_colour", "eq", "red"),
        "wrong_operator": field("city", "gt", 3),
        "not_number": field("attributes.budget", "gte", "lots"),
        "not_date": field("birthday", "before", "yesterday"),
        "not_days": field("last_seen_at", "within_last_days", -3),
        "not_list": field("city", "in", "上海"),
        "not_pair": field("attributes.budget", "between", [1]),
        "not_text": field("city", "eq", {"a": 1}),
        "not_option": field("lifecycle_stage", "eq", "vip"),
        "invalid": {**drove, "op": "did_not", "count": {"op": "gte", "value": 2}},
        "not_count": {"type": "orders", "measure": "count", "op": "gte", "value": 1.5},
        "unknown_unit": {"type": "unit", "unit_id": 999999},
        "unknown_segment": {"type": "segment", "segment_id": 999999},
        "unknown_tag": {"type": "tag", "tag_id": 999999},
        "unknown_account": {"type": "account", "account_id": 999999},
    }
    response = client.post("/api/v1/segments/preview", headers=admin, json={"condition": {
        "type": "any", "conditions": list(mistakes.values())}})
    assert response.status_code == 422
    found = {e["code"]: e["field"] for e in response.json()["errors"]}
    for i, code in enumerate(mistakes):
        assert found.get(code, "").startswith(f"condition.conditions.{i}."), (code, found)
    # a cycle is the last: only a saved segment can refer back to itself (tested with the saved segments)


def test_the_condition_language_is_published_in_openapi(client):  # type: ignore[no-untyped-def]
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    condition = schemas["PreviewRequest"]["properties"]["condition"]
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in condition["oneOf"]} == {
        "AllOf", "AnyOf", "Not", "FieldRule", "IdentityRule", "EventRule", "EventTimeRule", "OrderRule",
        "ConsentRule", "UnitRule", "SegmentRule", "TagRule", "AccountRule"}
    assert "within_last_days" in schemas["FieldRule"]["properties"]["op"]["enum"]
