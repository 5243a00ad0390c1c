"""The OpenAPI document as the API really answers: every error is problem+json (one ``Problem`` schema) under
the status codes an operation can answer, integers bounded as the input guard bounds them, and fields a
response leaves out when empty (``response_model_exclude_none``) not required. Done once, here, for every
operation, so a new router is described the same way the day it is written."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from kehu.core.http import PROBLEM, SEGMENT_PATHS
from kehu.core.input_guard import INT64_MAX, INT64_MIN

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details. ``errors`` names each field at fault (``body.name``, "
                   "``query.limit``, ``path.profile_id``); some problems add members of their own (``limit_bytes``, "
                   "``retry_after``; ``code`` and ``message`` under /v1, as Segment's libraries read them).",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldProblem"}},
    },
    "additionalProperties": True,
}
FIELD_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "FieldProblem",
    "type": "object",
    "required": ["field", "message"],
    "properties": {"field": {"type": "string"}, "message": {"type": "string"}, "code": {"type": "string"}},
}
REASONS = {
    400: "Bad request: malformed JSON, an unknown value in a parameter, a request the rules do not allow",
    401: "Authentication required, or the credentials are not valid",
    403: "The caller's roles do not allow this",
    404: "No such record in the caller's scope",
    409: "Conflicts with the current state (a duplicate, a record in use)",
    413: "The request body is larger than the limit",
    415: "The body's content coding is not supported",
    422: "Validation failed: the fields at fault are in ``errors``",
    429: "Too many requests: try again after ``Retry-After`` seconds",
    503: "The database does not answer",
}
WRITES = {"post", "put", "patch", "delete"}


def _statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer, by what it takes: every operation validates its input
    (400, 422); a caller is authenticated and authorised (401, 403); an id (in the path, a ``…_id`` query
    parameter or a body) names a record the caller may not see (404); a write can conflict (409); a body can be
    too large (413)."""
    if path == "/healthz":
        return {503}
    if path == "/metrics":
        return set()
    statuses = {400, 422}
    if path.startswith(SEGMENT_PATHS):  # a source's write key; compressed bodies
        return statuses | {401, 403, 404, 413, 415}
    if operation.get("security"):
        statuses |= {401, 403}
    names_a_record = any(p.get("in") == "query" and p.get("name", "").endswith("_id")
                         for p in operation.get("parameters", []))
    if "{" in path or method in WRITES or names_a_record:
        statuses |= {404}
    if method in WRITES:
        statuses |= {409, 413}
    if path == "/api/v1/auth/token":
        statuses |= {401, 403, 429}
    return statuses


def _bound_integers(node: Any) -> None:
    """Every integer the API takes or gives is a BIGINT: say so (the input guard refuses anything past it)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") == "integer":
                if "minimum" not in item and "exclusiveMinimum" not in item:
                    item["minimum"] = INT64_MIN
                if "maximum" not in item and "exclusiveMaximum" not in item:
                    item["maximum"] = INT64_MAX
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _nullable(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "null" or any(option.get("type") == "null" for option in prop.get("anyOf", []))


def _sparse(schemas: dict[str, Any], node: Any, made: dict[str, str]) -> Any:
    """A copy of ``node`` in which objects do not require their nullable properties (a response serialized
    without its None values leaves them out); referenced components are copied under ``<name>Sparse``."""
    if isinstance(node, list):
        return [_sparse(schemas, item, made) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        if name not in made:
            made[name] = f"{name}Sparse"
            schemas[made[name]] = _sparse(schemas, copy.deepcopy(schemas[name]), made)
        return {**node, "$ref": f"#/components/schemas/{made[name]}"}
    out = {key: _sparse(schemas, value, made) for key, value in node.items()}
    if isinstance(out.get("properties"), dict) and "required" in out:
        out["required"] = [n for n in out["required"] if not _nullable(out["properties"].get(n, {}))]
        if not out["required"]:
            del out["required"]
    return out


def _api_routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    """Every operation's route with its full path (FastAPI ≥ 0.16x keeps included routers as branches)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: included routes are copied onto the app
        return [(route.path_format, route) for route in app.routes if isinstance(route, APIRoute)]
    return [(context.path_format or "", context.original_route) for context in iter_route_contexts(app.routes)
            if isinstance(context.original_route, APIRoute)]


def describe(document: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"], schemas["FieldProblem"] = PROBLEM_SCHEMA, FIELD_PROBLEM_SCHEMA
    problem_content = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    sparse_routes = {(path, method.lower()) for path, route in _api_routes(app)
                     if route.response_model_exclude_none for method in route.methods or ()}
    made: dict[str, str] = {}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in sorted(_statuses(path, method, operation)):
                response = responses.setdefault(str(status), {"description": REASONS[status]})
                if str(status) == "422":
                    response["description"] = REASONS[422]
                response["content"] = problem_content
            operation["responses"] = responses = dict(sorted(responses.items()))
            if (path, method) in sparse_routes:
                for response in responses.values():
                    for media in response.get("content", {}).values():
                        if "schema" in media and media is not problem_content[PROBLEM]:
                            media["schema"] = _sparse(schemas, media["schema"], made)
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    _bound_integers(document)
    return document


def install_openapi(app: FastAPI) -> None:
    generate = app.openapi

    described: list[int] = []

    def openapi() -> dict[str, Any]:
        document = generate()  # FastAPI's, made anew when routes were added since
        if id(document) not in described:
            described[:] = [id(describe(document, app))]
        return document

    app.openapi = openapi  # type: ignore[method-assign]
