"""Bad input gets a clear RFC 9457 problem and changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from kehu.tenancy.models import BusinessUnit


def count_units(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(BusinessUnit))


def test_malformed_json_is_400_with_the_body_at_fault(client, tree, login, session):
    before = count_units(session)
    response = client.post("/api/v1/units", headers={**login("admin@example.com"), "Content-Type": "application/json"},
                           content=b'{"parent_id": 1, "name": ')
    assert response.status_code == 400
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert body["title"] == "Malformed JSON" and body["errors"][0]["field"] == "body"
    assert count_units(session) == before


def test_unknown_and_wrong_fields_are_named(client, tree, login, session):
    before = count_units(session)
    response = client.post("/api/v1/units", headers=login("admin@example.com"), json={
        "parent_id": tree.hq.id, "name": "x", "code": "bad code!", "kind": "planet", "colour": "red"})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"body.code", "body.kind", "body.colour"} <= fields
    assert count_units(session) == before


def test_oversized_body_is_413_before_anything_runs(client, tree, login, settings, session):
    before = count_units(session)
    big = "x" * (settings.max_body_bytes + 10)
    response = client.post("/api/v1/units", headers=login("admin@example.com"),
                           json={"parent_id": tree.hq.id, "name": big, "code": "BIG", "kind": "region"})
    assert response.status_code == 413
    assert response.json()["limit_bytes"] == settings.max_body_bytes
    assert count_units(session) == before


def test_streamed_oversized_body_without_length_is_refused(client, tree, login, settings):
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b"x" * 65536

    response = client.post("/api/v1/units", headers={**login("admin@example.com"), "Content-Type": "application/json"},
                           content=chunks())
    assert response.status_code == 413


def test_unknown_route_and_wrong_method_are_problems(client):
    assert client.get("/api/v1/nothing-here").json()["status"] == 404
    response = client.delete("/healthz")
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("application/problem+json")


def test_invalid_query_parameters_are_422_with_the_field(client, tree, login):
    response = client.get("/api/v1/users?limit=100000", headers=login("admin@example.com"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.limit"
    response = client.get("/api/v1/users?cursor=%%%garbage", headers=login("admin@example.com"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "cursor"
