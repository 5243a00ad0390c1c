"""Hostile input refused before any handler sees it: NUL characters, integers past int64 and dates at the
calendar's edge, JSON nested too deep, in query strings, bodies and typed parameters."""

from __future__ import annotations

import re
import types
import typing
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from kehu.core.http import problem, read_body, replaying

# -- hostile input, refused before any handler sees it ---------------------------------------------------------
# PostgreSQL refuses NUL in text (SQLite stores it), BIGINT holds int64 and Python's int holds anything: without
# these checks the same request answered 500 on one database and stored a NUL on the other.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_JSON_DEPTH = 255  # no request of ours nests anywhere near it; Python's parser recurses up to ~1000
NUL_MESSAGE = "must not contain the NUL character (U+0000)"
RANGE_MESSAGE = f"must be a whole number from {INT64_MIN} to {INT64_MAX}"
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)


def _nul(field_name: str) -> dict[str, str]:
    return {"field": field_name, "message": NUL_MESSAGE, "code": "nul_character"}


def _out_of_range(field_name: str) -> dict[str, str]:
    return {"field": field_name, "message": RANGE_MESSAGE, "code": "out_of_range"}


def json_input_errors(value: Any, prefix: str = "body", *, int64: bool = True, limit: int = 20) -> list[dict[str, str]]:
    """Where parsed JSON holds a NUL in a string (or a key), nests deeper than MAX_JSON_DEPTH or, with
    ``int64``, a number past int64 (an integral float too: validation would take 1e19 for an int), as
    ``body.a.0.b`` paths (FastAPI's way of naming body fields); at most ``limit`` of them."""
    errors: list[dict[str, str]] = []
    stack: list[tuple[str, Any, int]] = [(prefix, value, 0)]
    while stack and len(errors) < limit:
        path, node, depth = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                errors.append(_nul(path))
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int):
            if int64 and not INT64_MIN <= node <= INT64_MAX:
                errors.append(_out_of_range(path))
        elif isinstance(node, float):  # orjson reads an integer past 64 bits as a float: ±2**63 itself is out
            if int64 and not -(2.0**63) < node < 2.0**63:
                errors.append(_out_of_range(path))
        elif depth >= MAX_JSON_DEPTH:
            return [{"field": prefix, "message": f"nested deeper than {MAX_JSON_DEPTH} levels", "code": "too_deep"}]
        elif isinstance(node, dict):
            for key, item in reversed(node.items()):
                name = f"{path}.{key}"
                if "\x00" in key:
                    errors.append(_nul(name.replace("\x00", "\\u0000")))
                    continue
                stack.append((name, item, depth + 1))
        elif isinstance(node, list):
            stack.extend((f"{path}.{i}", item, depth + 1) for i, item in reversed(list(enumerate(node))))
    return errors




def _refuse_input(scope: Scope, errors: list[dict[str, str]], status: int = 422) -> JSONResponse:
    if status == 400:
        return problem(None, 400, "malformed-json", "Malformed JSON",
                       f"The request body is not valid JSON: {errors[0]['message']}", errors=errors,
                       instance=scope["path"])
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(None, 422, "validation-failed", "Validation failed", detail, errors=errors, instance=scope["path"])


def _query_errors(query: str, prefix: str) -> list[dict[str, str]]:
    return [_nul(f"{prefix}.{name.replace(chr(0), '')}")
            for name, value in parse_qsl(query, keep_blank_values=True, errors="replace")
            if "\x00" in name or "\x00" in value]


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("", "application/json") or media.endswith("+json")


class InputGuardMiddleware:
    """Refuses, with 422 naming the field, a NUL in the path, a query string, a form or a JSON body, and an
    integer past int64 in a JSON body; a JSON body nested deeper than MAX_JSON_DEPTH, or not JSON at all (a lone
    surrogate, NaN), is refused before Python's parser can recurse on it or pass it on. Bodies are read under
    ``bodies_under`` only: the Segment-spec ingestion (bodies may be compressed, properties are the sender's)
    checks its own with ``json_input_errors``. Inside the body limit."""

    def __init__(self, app: ASGIApp, bodies_under: tuple[str, ...] = ("/api/",)) -> None:
        self.app = app
        self.bodies_under = bodies_under  # the UI's own traffic (NiceGUI's uploads, socket.io) is not ours to read

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        errors = [_nul("path")] if "\x00" in scope["path"] else []
        errors += _query_errors(scope.get("query_string", b"").decode("latin-1"), "query")
        if errors:
            await _refuse_input(scope, errors)(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        form = content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"
        if (scope["method"] in ("GET", "HEAD", "OPTIONS") or not scope["path"].startswith(self.bodies_under)
                or headers.get(b"content-encoding") or not (form or _is_json(content_type))):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        status, errors = 422, []
        if form:
            errors = _query_errors(body.decode("latin-1"), "body")
        elif body.strip():
            try:
                errors = json_input_errors(orjson.loads(body))
            except orjson.JSONDecodeError as exc:
                if "depth" in str(exc).lower() or "recursion" in str(exc).lower():
                    errors = [{"field": "body", "message": f"nested deeper than {MAX_JSON_DEPTH} levels",
                               "code": "too_deep"}]
                else:
                    status, errors = 400, [{"field": "body", "message": str(exc), "code": "json_invalid"}]
        if errors:
            await _refuse_input(scope, errors, status)(scope, receive, send)
            return
        await self.app(scope, replaying(body, receive), send)


def _holds(annotation: Any, kinds: tuple[type, ...]) -> bool:
    if annotation in kinds:
        return True
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) in (typing.Union, list, set, tuple):
        return any(_holds(arg, kinds) for arg in typing.get_args(annotation))
    return False


def _typed_params(route: APIRoute) -> list[tuple[str, str, str]]:
    """(location, name, "int" | "date") of the route's path and query parameters that take an integer or a
    date, found once per route."""
    cached = getattr(route, "_kehu_typed_params", None)
    if cached is None:
        cached, dependants = [], [route.dependant]
        while dependants:
            dependant = dependants.pop()
            for location, fields in (("path", dependant.path_params), ("query", dependant.query_params)):
                for field in fields:
                    if _holds(field.field_info.annotation, (int,)):
                        cached.append((location, field.alias, "int"))
                    elif _holds(field.field_info.annotation, (date, datetime)):
                        cached.append((location, field.alias, "date"))
            dependants.extend(dependant.dependencies)
        route._kehu_typed_params = cached  # type: ignore[attr-defined]
    return cached


# Dates a parameter may name: a day's neighbours and time zones exist for all of them (9999-12-31 has no next
# day; 0001-01-01 at +08:00 no UTC start), so a report "until 9999-12-31" cannot overflow.
DATE_MESSAGE = "must be a date from 0002-01-01 to 9998-12-31"
_YEAR = re.compile(r"([+-]?[0-9]+)-", re.ASCII)


def _out_of_range_value(kind: str, value: str) -> bool:
    if kind == "int":
        number = value.strip(" \t")
        return bool(_INTEGER.fullmatch(number)) and (len(number.lstrip("+-")) > 19
                                                     or not INT64_MIN <= int(number) <= INT64_MAX)
    year = _YEAR.match(value.strip(" \t"))
    return year is not None and not 2 <= int(year.group(1)[:6]) <= 9998


async def bounded_parameters(request: Request) -> None:
    """App-wide dependency: an integer path or query parameter (an id, a page number) past int64, or a date
    parameter at the calendar's edge, is refused with 422 naming it, as if its type said so, rather than reach
    the database (OverflowError on SQLite, "out of range" on PostgreSQL) or date arithmetic: a 500 either way.
    What is not a number or a date at all is left to the parameter's own validation."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    errors = []
    for location, name, kind in _typed_params(route):
        raw = [request.path_params.get(name)] if location == "path" else request.query_params.getlist(name)
        for value in raw:
            if value is not None and _out_of_range_value(kind, value):
                errors.append({"loc": (location, name), "msg": RANGE_MESSAGE if kind == "int" else DATE_MESSAGE,
                               "type": "out_of_range"})
    if errors:
        raise RequestValidationError(errors)
