"""The OpenAPI document says what the API answers: problem+json errors under their status codes on every
operation, integers bounded as the API bounds them, and the Customer 360's fields that are left out when empty
not required (issue 19, item 8)."""

from __future__ import annotations

from typing import Any

from kehu.core.input_guard import INT64_MAX

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _operations(document: dict[str, Any]):  # type: ignore[no-untyped-def]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def test_every_error_response_is_a_problem(client):
    document = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, method, operation in _operations(document):
        responses = operation["responses"]
        errors = {code: r for code, r in responses.items() if code.startswith(("4", "5"))}
        if path != "/metrics":
            assert errors, f"{method} {path} documents no error"
        for code, response in errors.items():
            assert response["content"] == {"application/problem+json": {"schema": PROBLEM_REF}}, (method, path, code)
        if path.startswith("/api/v1/") and path != "/api/v1/auth/token":
            assert {"400", "401", "403", "422"} <= set(responses), (method, path, sorted(responses))
        if "{" in path or method in ("post", "put", "patch", "delete"):
            assert "404" in responses, (method, path)
        if method in ("post", "put", "patch", "delete") and not path.startswith("/v1/"):
            assert "409" in responses, (method, path)
    assert "429" in document["paths"]["/api/v1/auth/token"]["post"]["responses"]
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status"}


def test_every_integer_is_bounded_as_a_bigint(client):
    document = client.get("/openapi.json").json()
    stack: list[Any] = [document]
    unbounded = 0
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "integer" and node.get("maximum", node.get("exclusiveMaximum", INT64_MAX + 1)) \
                    > INT64_MAX:
                unbounded += 1
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    assert unbounded == 0
    profile_id = document["paths"]["/api/v1/customers/{profile_id}"]["get"]["parameters"][0]
    assert profile_id["schema"]["maximum"] == INT64_MAX


def test_the_customer_360_does_not_require_what_it_leaves_out(client, tree, login):
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    response = document["paths"]["/api/v1/customers/{profile_id}"]["get"]["responses"]["200"]
    root = schemas[response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    profile = schemas[root["properties"]["profile"]["$ref"].rsplit("/", 1)[1]]
    assert "birthday" not in profile.get("required", []) and "id" in profile["required"]
    # and it does leave them out
    headers = login("admin@example.com")
    created = client.post("/api/v1/customers", headers=headers, json={"name": "王先生", "unit_id": tree.dealer_a.id})
    body = client.get(f"/api/v1/customers/{created.json()['id']}", headers=headers).json()
    assert "birthday" not in body["profile"]
    # elsewhere an empty field is there as null, as its schema requires
    assert "birthday" in schemas["ProfileOut"]["required"]


def test_a_patch_field_that_cannot_be_emptied_is_not_nullable(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["UnitUpdate"]["properties"]["name"]["type"] == "string"
    assert "default" not in schemas["UnitUpdate"]["properties"]["name"]
    assert {"type": "null"} in schemas["UnitUpdate"]["properties"]["city"]["anyOf"]  # this one null empties
