"""Pieces of request schemas every domain shares."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omissible(**kwargs: Any) -> Any:
    """A PATCH field that may be left out (the record keeps its value) but not sent as null. Declare it with
    its plain type (``name: str = omissible(max_length=100)``): null then fails validation, 422 naming the
    field, as the OpenAPI document says (no ``null`` in its type), instead of reaching a NOT NULL column and
    answering 500. A field that null empties is declared ``X | None = None`` as usual."""
    return Field(default=None, json_schema_extra=_no_default, **kwargs)


# Dates and times a request may carry: every day from here has a next and a previous day, and a UTC moment in
# every time zone (9999-12-31 has no next day; 0001-01-01 at +08:00 no UTC start: arithmetic or the UTC
# conversion on the way to the database overflowed, a 500).
FIRST_DAY, LAST_DAY = date(2, 1, 1), date(9998, 12, 31)
DATE_RANGE_MESSAGE = f"must be a date from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}"


class Input(BaseModel):
    """The base of every request body: unknown fields are refused, text is stripped, and no date or time
    lies at the edge of the calendar (422 naming the field)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _within_the_calendar(cls, value: Any) -> Any:
        day = value.date() if isinstance(value, datetime) else value
        if isinstance(day, date) and not FIRST_DAY <= day <= LAST_DAY:
            raise ValueError(DATE_RANGE_MESSAGE)
        return value
