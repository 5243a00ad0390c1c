"""Every write of the API refuses another organisation's ids (issue 19, item 2).

The walk reads the application's own OpenAPI document: every POST / PUT / PATCH / DELETE, every path, query and
body field that names a foreign id (``…_id``, ``…_ids``, nested in lines, contacts and conditions too). For each such
field it sends a request filled with our organisation's ids except that one, which gets the id of the same kind
of record of a second, fully populated organisation. The answer must be a 4xx naming that field (404 for an id in
the path), never 2xx or 5xx, and nothing of the second organisation may change. A new endpoint with an id field
the walk cannot fill fails it, so it has to be taught the kind — and the endpoint is covered from its first day.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from kehu.core.db import Base
from kehu.tenancy import service as tenancy_service
from tests.factories.records import one_of_each

# Which record a field names, by its name ("rule_id" by its path: three kinds of rule share the name).
FIELD_KINDS = {
    "unit_id": "unit", "parent_id": "unit", "owner_id": "user", "user_id": "user", "from_user_id": "user",
    "to_user_id": "user", "profile_id": "profile", "profile_ids": "profile", "winner_id": "profile",
    "loser_id": "other_profile", "account_id": "account", "distributor_account_id": "account",
    "partner_account_id": "account", "product_id": "product", "pipeline_id": "pipeline", "lead_id": "lead",
    "lead_ids": "lead", "segment_id": "segment", "exit_segment_id": "segment", "tag_id": "tag", "group_id": "tag_group",
    "role_id": "role",
    "key_id": "api_key", "job_id": "job", "source_id": "source", "merge_id": "merge", "import_id": "import",
    "field_id": "field", "candidate_id": "candidate", "opportunity_id": "opportunity", "activity_id": "activity",
    "export_id": "export", "template_id": "template", "broadcast_id": "broadcast", "item_id": "content_item",
    "suppression_id": "suppression", "message_ids": "message", "journey_id": "journey",
}
PATH_KINDS = {"/api/v1/lead-rules/": "lead_rule", "/api/v1/routing-rules/": "routing_rule",
              "/api/v1/score-rules/": "score_rule"}
# Bodies that the schema alone does not make valid (a rule of the service, not of the shape).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/v1/leads"): {"profile_id": "$profile"},
    ("post", "/api/v1/leads/{lead_id}/assign"): {"owner_id": "$user"},
    ("post", "/api/v1/leads/assign"): {"owner_id": "$user"},
    ("post", "/api/v1/opportunities"): {"profile_id": "$profile"},
    ("post", "/api/v1/opportunities/{opportunity_id}/assign"): {"owner_id": "$user"},
    ("post", "/api/v1/activities"): {"profile_id": "$profile"},
    ("post", "/api/v1/customers/merges"): {"winner_id": "$profile", "loser_id": "$other_profile"},
    ("post", "/api/v1/segments"): {"kind": "static"},
    ("post", "/api/v1/journeys/{journey_id}/enrolments"): {"profile_ids": ["$profile"]},
    ("post", "/api/v1/score-rules"): {"kind": "condition", "condition": {"type": "unit", "unit_id": "$unit"}},
    ("put", "/api/v1/score-rules/{rule_id}"): {"kind": "condition", "condition": {"type": "unit", "unit_id": "$unit"}},
    ("put", "/api/v1/pipelines/{pipeline_id}"): {"stages": [
        {"key": "lead", "name_zh": "线索", "name_en": "Lead", "probability": 10},
        {"key": "won", "name_zh": "赢单", "name_en": "Won", "probability": 100, "is_won": True}]},
}
# Path ids that need a record of a particular sort (a condition is changed only on a dynamic segment).
PATH_RECORDS = {("patch", "/api/v1/segments/{segment_id}"): {"segment_id": "dynamic_segment"}}
WRITES = ("post", "put", "patch", "delete")
SKIPPED = {"/api/v1/auth/token"}  # signs in: names no record


def _is_id(name: str) -> bool:
    return name.endswith("_id") or name.endswith("_ids")


class Schemas:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.components = doc.get("components", {}).get("schemas", {})

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def id_fields(self, schema: dict[str, Any], path: tuple[Any, ...] = (), seen: frozenset[str] = frozenset()
                  ) -> Iterator[tuple[tuple[Any, ...], str]]:
        """(path, name) of every id field under ``schema``; a path step is a property name, ``[]`` (an array's
        item) or ``("|", n)`` (the n-th alternative). Recursive schemas (conditions) are entered once per path."""
        ref = schema.get("$ref")
        if ref is not None:
            if ref in seen:
                return
            seen = seen | {ref}
        schema = self.resolve(schema)
        for key in ("anyOf", "oneOf"):
            for n, option in enumerate(schema.get(key, [])):
                yield from self.id_fields(option, (*path, ("|", key, n)), seen)
        for part in schema.get("allOf", []):
            yield from self.id_fields(part, path, seen)
        if "items" in schema:
            yield from self.id_fields(schema["items"], (*path, "[]"), seen)
        for name, sub in schema.get("properties", {}).items():
            if _is_id(name) and self._integers(sub):
                yield (*path, name), name
            else:
                yield from self.id_fields(sub, (*path, name), seen)

    def _integers(self, schema: dict[str, Any]) -> bool:
        schema = self.resolve(schema)
        if schema.get("type") == "integer":
            return True
        if schema.get("type") == "array":
            return self._integers(schema.get("items", {}))
        return any(self._integers(o) for o in schema.get("anyOf", []) + schema.get("oneOf", []))

    def minimal(self, schema: dict[str, Any], ids: dict[str, int], name: str = "",
                stack: frozenset[str] = frozenset()) -> Any:
        """The smallest valid-looking value of ``schema``; id fields get ``ids`` of their kind. Of alternatives
        the first that does not contain itself (a condition: a field rule, not "all of" conditions)."""
        if "$ref" in schema:
            stack = stack | {schema["$ref"]}
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return schema["enum"][0]
        if "default" in schema and not _is_id(name):
            return schema["default"]
        options = [o for o in schema.get("anyOf", []) + schema.get("oneOf", []) if o.get("type") != "null"]
        if options:
            plain = [o for o in options if not self._recursive(o)]
            return self.minimal((plain or options)[0], ids, name, stack)
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            required = schema.get("required", [])
            return {p: self.minimal(s, ids, p, stack) for p, s in schema.get("properties", {}).items()
                    if p in required}
        if kind == "array":
            count = schema.get("minItems", 0)
            return [self.minimal(schema.get("items", {}), ids, name.removesuffix("s"), stack) for _ in range(count)]
        if kind == "integer":
            if _is_id(name) and name in FIELD_KINDS:
                return ids[FIELD_KINDS[name]]
            return max(schema.get("minimum", 1), 1)
        if kind == "number":
            return max(schema.get("minimum", 1), 1)
        if kind == "boolean":
            return True
        formats = {"date": "2026-01-01", "date-time": "2026-01-01T00:00:00Z", "time": "09:00:00",
                   "email": "walk@example.com"}
        return formats.get(schema.get("format", ""), "x" * max(schema.get("minLength", 1), 1))

    def _recursive(self, schema: dict[str, Any]) -> bool:
        ref = schema.get("$ref")
        return ref is not None and ref in json.dumps(self.resolve(schema))

    def put(self, body: Any, schema: dict[str, Any], path: tuple[Any, ...], value: Any, ids: dict[str, int]) -> Any:
        """``body`` with ``value`` at ``path`` (containers on the way made from their schemas)."""
        schema = self.resolve(schema)
        if not path:
            return value
        step, rest = path[0], path[1:]
        if isinstance(step, tuple):  # an alternative: the value takes its shape
            option = self.resolve(schema[step[1]][step[2]])
            fits = isinstance(body, dict) and all(  # the body is of this shape, its constants (a type) included
                k in option.get("properties", {}) and self.resolve(option["properties"][k]).get("const", v) == v
                for k, v in body.items())
            base = body if fits else self.minimal(option, ids)
            return self.put(base, option, rest, value, ids)
        if step == "[]":
            items = schema.get("items", {})
            first = self.put(self.minimal(items, ids), items, rest, value, ids)
            return [first]
        body = dict(body or {})
        sub = schema.get("properties", {}).get(step, {})
        if rest:
            current = body.get(step)
            # an object left out of the minimal body (it has a default) is made whole before a field is set in it
            body[step] = self.put(current if current is not None else self.minimal(sub, ids), sub, rest, value, ids)
        else:
            body[step] = value
        return body


def _filled(value: Any, ids: dict[str, int]) -> Any:
    """A body template with the names of records (``"$unit"``) replaced by their ids."""
    if isinstance(value, dict):
        return {k: _filled(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, ids) for v in value]
    return ids[value[1:]] if isinstance(value, str) and value.startswith("$") else value


def _kind(path: str, name: str) -> str | None:
    for prefix, kind in PATH_KINDS.items():
        if name == "rule_id" and path.startswith(prefix):
            return kind
    return FIELD_KINDS.get(name)


def _snapshot(session, org_id: int) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Every row of the organisation: tables with org_id by it, the others through a foreign key to one that has."""
    session.expire_all()
    owned = {t.name for t in Base.metadata.sorted_tables if "org_id" in t.c}
    rows: dict[str, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        if table.name in owned:
            query = select(table).where(table.c.org_id == org_id)
        elif table.name == "organizations":
            query = select(table).where(table.c.id == org_id)
        else:
            links = [fk for fk in table.foreign_keys if fk.column.table.name in owned]
            if not links:
                continue
            parent = links[0]
            query = select(table).where(parent.parent.in_(
                select(parent.column).where(parent.column.table.c.org_id == org_id)))
        rows[table.name] = sorted(json.dumps(list(r), default=str) for r in session.execute(query).all())
    return rows


def _names_field(response, name: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return False
    return any(e.get("field", "").removeprefix("body.").split(".")[-1] in (name,) or
               e.get("field", "").endswith(name) for e in errors)


@pytest.fixture
def two_organisations(session, tree):  # type: ignore[no-untyped-def]
    ours = one_of_each(session, tree.system)
    other = tenancy_service.system_principal(session, tree.other_org_admin.org_id)
    theirs = one_of_each(session, other)
    session.commit()
    return ours, theirs, other.org_id


def test_no_write_accepts_another_organisations_id(app, client, tree, login, session, two_organisations):
    ours, theirs, their_org = two_organisations
    headers = login("admin@example.com")
    doc = app.openapi()
    schemas = Schemas(doc)
    before = _snapshot(session, their_org)
    unknown: list[str] = []
    wrong: list[str] = []
    probes = 0
    for path, operations in doc["paths"].items():
        if path in SKIPPED:
            continue
        for method, operation in operations.items():
            if method not in WRITES:
                continue
            params = operation.get("parameters", [])
            fields: list[tuple[str, tuple[Any, ...], str]] = [
                (p["in"], (p["name"],), p["name"]) for p in params
                if p["in"] in ("path", "query") and _is_id(p["name"])]
            content = operation.get("requestBody", {}).get("content", {})
            media, body_schema = next(iter(content.items()), (None, {"schema": {}}))
            body_schema = body_schema.get("schema", {})
            seen: dict[tuple[Any, ...], tuple[Any, ...]] = {}
            for field_path, _name in schemas.id_fields(body_schema):
                key = tuple(s for s in field_path if not isinstance(s, tuple) and s != "[]")[-2:]
                if key not in seen or len(field_path) < len(seen[key]):
                    seen[key] = field_path
            fields += [("body", p, p[-1]) for p in seen.values()]
            for where, _field_path, name in fields:
                if _kind(path, name) is None:
                    unknown.append(f"{method.upper()} {path}: {where} field {name}")
            if any(_kind(path, name) is None for _w, _p, name in fields):
                continue
            for where, field_path, name in fields:
                probes += 1
                answer = _send(client, headers, schemas, method, path, params, media, body_schema, ours, theirs,
                               (where, field_path, name))
                what = f"{method.upper()} {path} {where} {'.'.join(map(str, field_path))}"
                if not 400 <= answer.status_code < 500 or answer.status_code in (401, 405):
                    wrong.append(f"{what}: {answer.status_code} {answer.text[:300]}")
                elif where == "path" and answer.status_code != 404:
                    wrong.append(f"{what}: {answer.status_code} (expected 404) {answer.text[:300]}")
                elif where != "path" and not (answer.status_code == 422 and _names_field(answer, name)):
                    wrong.append(f"{what}: {answer.status_code} does not name {name}: {answer.text[:300]}")
                elif where != "path" and "out_of_scope" in {e["code"] for e in answer.json()["errors"]}:
                    wrong.append(f"{what}: another organisation's id is told apart from an unknown one")
    assert not unknown, ("Write endpoints name ids the walk cannot fill; add their kind to FIELD_KINDS "
                         "(and a record of that kind to tests/factories/records.py):\n" + "\n".join(unknown))
    assert not wrong, f"{len(wrong)} of {probes} foreign ids were not refused:\n" + "\n".join(wrong)
    assert probes > 80  # the walk saw the API (a broken walker passes nothing)
    assert _snapshot(session, their_org) == before  # nothing of the other organisation changed


def _send(client, headers, schemas: Schemas, method: str, path: str, params: list[dict[str, Any]],  # type: ignore[no-untyped-def]
          media: str | None, body_schema: dict[str, Any], ours: dict[str, int], theirs: dict[str, int],
          target: tuple[str, tuple[Any, ...], str]) -> Any:
    where, field_path, name = target
    kind = _kind(path, name)
    assert kind is not None
    foreign = theirs[kind]
    url = path
    query: dict[str, Any] = {}
    for p in params:
        if p["in"] == "path":
            own = PATH_RECORDS.get((method, path), {}).get(p["name"]) or _kind(path, p["name"]) or ""
            value = foreign if (where == "path" and p["name"] == name) else ours.get(own, 1)
            if p["name"] == "kind":
                value = "mobile"
            url = url.replace("{" + p["name"] + "}", str(value))
        elif p["in"] == "query" and (p.get("required") or (where == "query" and p["name"] == name)):
            query[p["name"]] = foreign if (where == "query" and p["name"] == name) else schemas.minimal(
                p.get("schema", {}), ours, p["name"])
    if media == "multipart/form-data":
        return client.request(method.upper(), url, headers=headers, params=query,
                              files={"file": ("list.csv", "手机\n13900000000\n".encode(), "text/csv")})
    body = None
    if media is not None:
        body = schemas.minimal(body_schema, ours)
        body.update(_filled(BODIES.get((method, path), {}), ours))
        if where == "body":
            value = [foreign] if name.endswith("_ids") else foreign
            body = schemas.put(body, body_schema, field_path, value, ours)
    return client.request(method.upper(), url, headers=headers, params=query,
                          **({"json": body} if media is not None else {}))
