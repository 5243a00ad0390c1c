"""Another organisation sees none of ours: sources, custom fields, One ID rules, imports, orders, accounts."""

from __future__ import annotations

from tests.factories.cdp import basic, call, process


def test_another_organisation_sees_and_changes_nothing_of_ours(client, tree, login, web_source, clean_database):
    admin, boss = login("admin@example.com"), login("boss@other.example.com")
    source, key = web_source
    client.post("/api/v1/custom-fields", headers=admin, json={
        "key": "budget", "label_zh": "预算", "label_en": "Budget", "type": "number"})
    client.put("/api/v1/identity-rules/mobile", headers=admin, json={"priority": 40, "max_per_profile": 1})
    client.post("/v1/batch", headers=basic(key), json={"batch": [
        call("track", userId="u1", event="Order Completed", properties={"order_id": "SO-1", "total": 10}),
        call("group", userId="u1", groupId="co-1", traits={"name": "我们的客户公司"})]})
    process(clean_database)
    client.post("/api/v1/imports", headers=admin, files={"file": ("a.csv", "手机\n13511112222\n".encode(), "text/csv")})

    assert client.get("/api/v1/sources", headers=boss).json() == []
    assert client.patch(f"/api/v1/sources/{source.id}?is_active=false", headers=boss).status_code == 404
    assert client.get("/api/v1/custom-fields", headers=boss).json() == []
    assert {r["kind"]: r["max_per_profile"] for r in client.get("/api/v1/identity-rules", headers=boss).json()}[
        "mobile"] == 3  # our change is ours alone
    assert client.get("/api/v1/imports", headers=boss).json()["items"] == []
    assert client.get("/api/v1/orders", headers=boss).json()["items"] == []
    assert client.get("/api/v1/accounts", headers=boss).json()["items"] == []
    assert client.get("/api/v1/customers?q=u1", headers=boss).json()["items"] == []
    # and a custom field of the same key is theirs to define
    assert client.post("/api/v1/custom-fields", headers=boss, json={
        "key": "budget", "label_zh": "预算", "label_en": "Budget", "type": "text"}).status_code == 201
