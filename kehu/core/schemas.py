"""Pieces of request schemas every domain shares."""

from __future__ import annotations

from typing import Any

from pydantic import Field


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omissible(**kwargs: Any) -> Any:
    """A PATCH field that may be left out (the record keeps its value) but not sent as null. Declare it with
    its plain type (``name: str = omissible(max_length=100)``): null then fails validation, 422 naming the
    field, as the OpenAPI document says (no ``null`` in its type), instead of reaching a NOT NULL column and
    answering 500. A field that null empties is declared ``X | None = None`` as usual."""
    return Field(default=None, json_schema_extra=_no_default, **kwargs)
