"""Hostile or out-of-range input answers a problem (422 naming the field), never a 500, on SQLite as on
PostgreSQL; an unexpected error answers problem+json 500 and keeps the connection; unknown API routes and wrong
methods answer problem+json, not the UI's HTML page (issue 19, item 8)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI

from kehu.app import create_app
from kehu.segments.schemas import MAX_CONDITION_DEPTH
from tests.factories.cdp import basic, make_source

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

BIG = 2**63  # one past the largest id a BIGINT column holds


def _problem(response, status: int = 422) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    return response.json()


def _fields(response) -> set[str]:  # type: ignore[no-untyped-def]
    return {e["field"] for e in _problem(response)["errors"]}


# -- NUL -------------------------------------------------------------------------------------------------
def test_nul_in_a_query_string_is_422_naming_the_parameter(client, tree, login):
    response = client.get("/api/v1/customers?q=ab%00cd", headers=login("admin@example.com"))
    assert "query.q" in _fields(response)


def test_nul_in_a_json_string_is_422_naming_the_field(client, tree, login):
    response = client.post("/api/v1/units", headers=login("admin@example.com"), json={
        "parent_id": tree.hq.id, "name": "东区\x00", "code": "NUL1", "kind": "region"})
    assert "body.name" in _fields(response)
    nested = client.post("/api/v1/segments/preview", headers=login("admin@example.com"), json={
        "condition": {"type": "all", "conditions": [{"type": "field", "field": "city", "op": "eq",
                                                      "value": "上海\x00"}]}})
    assert "body.condition.conditions.0.value" in _fields(nested)


def test_nul_in_an_ingested_call_is_refused_naming_the_field(client, tree, session):
    _source, key = make_source(session, tree.principal(session, tree.admin))
    session.commit()
    response = client.post("/v1/track", headers=basic(key),
                           json={"userId": "u1", "event": "Viewed\x00", "properties": {"a": "b"}})
    assert "body.event" in _fields(response)


def test_nul_in_a_sign_in_form_is_422(client, tree):
    response = client.post("/api/v1/auth/token", data={"username": "admin@example.com\x00", "password": "x"})
    assert "body.username" in _fields(response)


# -- integers past int64 -----------------------------------------------------------------------------------
def test_an_id_past_int64_in_the_path_is_422(client, tree, login):
    headers = login("admin@example.com")
    assert "path.profile_id" in _fields(client.get(f"/api/v1/customers/{BIG}", headers=headers))
    assert "path.unit_id" in _fields(client.patch(f"/api/v1/units/{BIG}", headers=headers, json={"name": "x"}))


def test_an_id_that_is_no_number_is_422_not_500(client, tree, login):  # found by the fuzzer
    response = client.get("/api/v1/customers/5%1C%C2%85/timeline", headers=login("admin@example.com"))
    assert "path.profile_id" in _fields(response)


def test_an_id_past_int64_in_the_query_and_page_number_is_422(client, tree, login):
    headers = login("admin@example.com")
    assert "query.unit_id" in _fields(client.get(f"/api/v1/customers?unit_id={BIG}", headers=headers))
    assert "query.page" in _fields(client.get(f"/api/v1/leads?page={BIG}", headers=headers))
    last = client.get(f"/api/v1/leads?page={BIG - 1}", headers=headers)  # found by the fuzzer: OFFSET overflowed
    assert last.status_code == 200 and last.json()["items"] == [], last.text


def test_an_id_past_int64_in_a_body_is_422(client, tree, login):
    headers = login("admin@example.com")
    response = client.post("/api/v1/units", headers=headers,
                           json={"parent_id": BIG, "name": "x", "code": "BIG1", "kind": "region"})
    assert "body.parent_id" in _fields(response)
    response = client.post("/api/v1/customers/assign", headers=headers,
                           json={"profile_ids": [1, -BIG - 1], "owner_id": tree.a_sales.id})
    assert "body.profile_ids.1" in _fields(response)


def test_a_forged_cursor_is_422(client, tree, login):
    import base64
    import json

    headers = login("admin@example.com")
    for values in ([None, BIG], ["x", {"a": 1}], [1, "1; drop"]):
        cursor = base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")
        assert "cursor" in _fields(client.get(f"/api/v1/customers?cursor={cursor}", headers=headers))


# -- dates out of range --------------------------------------------------------------------------------------
@pytest.mark.parametrize("rule", [
    {"type": "field", "field": "birthday", "op": "before", "value": "9999-12-31"},
    {"type": "field", "field": "created_at", "op": "eq", "value": "9999-12-31"},
    {"type": "field", "field": "created_at", "op": "after", "value": "0001-01-01"},
    {"type": "event", "event": "Test Drive", "window": {"from": "9999-12-31", "to": "9999-12-31"}},
])
def test_dates_at_the_end_of_the_calendar_are_422(client, tree, login, rule):
    response = client.post("/api/v1/segments/preview", headers=login("admin@example.com"),
                           json={"condition": {"type": "all", "conditions": [rule]}})
    fields = _fields(response)
    assert any(f.startswith(("condition.conditions.0", "body.condition.all.conditions.0")) for f in fields), fields


# -- deep nesting ----------------------------------------------------------------------------------------------
def _nested(depth: int) -> str:
    """``depth`` levels of condition (not … not rule) as JSON text: the test client's encoder would recurse."""
    rule = '{"type": "field", "field": "city", "op": "eq", "value": "上海"}'
    return '{"type": "not", "condition": ' * (depth - 1) + rule + "}" * (depth - 1)


def _post(client, path: str, headers: dict, body: str):  # type: ignore[no-untyped-def]
    return client.post(path, headers={**headers, "Content-Type": "application/json"}, content=body.encode())


@pytest.mark.parametrize("depth", [MAX_CONDITION_DEPTH + 1, 65, 120])
def test_a_condition_nested_too_deep_is_422_with_the_limit(client, tree, login, depth):
    headers = login("admin@example.com")
    for path, body in (("/api/v1/segments/preview", '{"condition": ' + _nested(depth) + "}"),
                       ("/api/v1/segments", '{"name": "deep", "condition": ' + _nested(depth) + "}")):
        problem = _problem(_post(client, path, headers, body))
        assert problem["errors"][0]["field"] == "body.condition", problem
        assert str(MAX_CONDITION_DEPTH) in problem["errors"][0]["message"]


@pytest.mark.parametrize("depth", [300, 3000])
def test_a_body_nested_past_any_reason_is_422(client, tree, login, depth):
    response = _post(client, "/api/v1/segments/preview", login("admin@example.com"),
                     '{"condition": ' + _nested(depth) + "}")
    assert _fields(response) == {"body"}


def test_a_condition_at_the_depth_limit_is_answered(client, tree, login):
    response = _post(client, "/api/v1/segments/preview", login("admin@example.com"),
                     '{"condition": ' + _nested(MAX_CONDITION_DEPTH) + "}")
    assert response.status_code == 200, response.text


# -- PATCH with null ------------------------------------------------------------------------------------------
def test_null_for_a_required_field_in_patch_is_422(client, tree, login):
    headers = login("admin@example.com")
    response = client.patch(f"/api/v1/units/{tree.dealer_a.id}", headers=headers, json={"name": None})
    assert "body.name" in _fields(response)
    response = client.patch(f"/api/v1/users/{tree.a_sales.id}", headers=headers, json={"name": None})
    assert "body.name" in _fields(response)
    created = client.post("/api/v1/segments", headers=headers, json={"name": "s", "kind": "static"})
    assert created.status_code == 201, created.text
    response = client.patch(f"/api/v1/segments/{created.json()['id']}", headers=headers, json={"name": None})
    assert "body.name" in _fields(response)


# -- routes and methods under the API ---------------------------------------------------------------------------
def test_unknown_api_routes_and_wrong_methods_are_problems_beside_the_ui(settings, clean_database):
    app = create_app(settings, clean_database, with_ui=True, embedded_worker=False)  # NiceGUI mounted at /
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/api/v1/nothing-here", "/api/v1/customers/1/nothing", "/v1/nothing", "/api/v2/x"):
            response = client.get(path)
            assert _problem(response, 404)["instance"] == path
            assert len(response.content) < 1000
        assert client.get("/no-such-page").headers["content-type"].startswith("text/html")
        response = client.delete("/api/v1/me")
        _problem(response, 405)
        assert response.headers["allow"] == "GET"
        response = client.get("/v1/batch")
        _problem(response, 405)
        assert "POST" in response.headers["allow"]


# -- the last resort ------------------------------------------------------------------------------------------
def test_an_unexpected_error_is_problem_500_and_does_not_reach_the_server(app: FastAPI):
    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("the secret inner workings")

    app.router.routes.insert(0, app.router.routes.pop())  # before the API's 404 fallback

    # raise_server_exceptions=True: an exception that escapes the app (and makes uvicorn drop the keep-alive
    # connection) would be raised here
    with TestClient(app, raise_server_exceptions=True) as c:
        response = c.get("/api/v1/boom")
    body = _problem(response, 500)
    assert body["type"].endswith("/internal-error") and "secret" not in response.text


# -- found by the fuzzer --------------------------------------------------------------------------------------
def test_a_second_pipeline_of_the_same_name_is_422_not_a_unique_violation(client, tree, login):
    headers = login("admin@example.com")
    body = {"name": "大客户", "stages": [
        {"key": "lead", "name_zh": "线索", "name_en": "Lead", "probability": 10},
        {"key": "won", "name_zh": "赢单", "name_en": "Won", "probability": 100, "is_won": True}]}
    assert client.post("/api/v1/pipelines", headers=headers, json=body).status_code == 201
    assert "name" in _fields(client.post("/api/v1/pipelines", headers=headers, json=body))


def test_report_dates_at_the_calendar_edge_are_422(client, tree, login):
    headers = login("admin@example.com")
    for path in ("/api/v1/reports/forecast?start=9999-12-31", "/api/v1/reports/funnel?until=9999-12-31",
                 "/api/v1/reports/lead-service-levels?since=0001-01-01",
                 "/api/v1/audit?until=9999-12-31T23:59:59-12:00"):
        fields = _fields(client.get(path, headers=headers))
        assert fields & {"query.start", "query.until", "query.since"}, (path, fields)


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+08:00", "9999-12-31"])
def test_body_dates_at_the_calendar_edge_are_422(client, tree, login, when):
    headers = login("admin@example.com")
    created = client.post("/api/v1/customers", headers=headers, json={"name": "王先生", "unit_id": tree.dealer_a.id})
    response = client.post("/api/v1/activities", headers=headers,
                           json={"kind": "call", "profile_id": created.json()["id"], "due_at": when})
    assert "body.due_at" in _fields(response)


def test_an_activity_time_without_a_zone_is_the_organisations(client, tree, login):
    headers = login("admin@example.com")
    created = client.post("/api/v1/customers", headers=headers, json={"name": "王先生", "unit_id": tree.dealer_a.id})
    response = client.post("/api/v1/activities", headers=headers,
                           json={"kind": "call", "profile_id": created.json()["id"], "due_at": "2030-01-02T09:00:00"})
    assert response.status_code == 201, response.text
    due = datetime.fromisoformat(response.json()["due_at"])
    assert due == datetime(2030, 1, 2, 1, tzinfo=UTC)  # 09:00 in Shanghai
