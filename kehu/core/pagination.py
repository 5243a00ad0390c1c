"""Keyset (cursor) pagination for the API and offset pages with totals for UI tables."""

from __future__ import annotations

import base64
import contextlib
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from kehu.core.errors import invalid

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


# Numbered pages count their rows only this far: past it a table says "10,000+" rather than count a million rows
# for every page it shows (a customer list of a million profiles counted each one: 0.3 s a page, seconds under
# load). Nobody pages to the 501st page of twenty; they search or filter.
COUNT_CAP = 10_000


@dataclass
class OffsetPage(Generic[T]):
    items: list[T]
    total: int  # exact up to COUNT_CAP; COUNT_CAP + 1 means "more than COUNT_CAP"

    @property
    def more(self) -> bool:
        """Whether there are more rows than the count went up to."""
        return self.total > COUNT_CAP


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int = 2) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, json.JSONDecodeError) as exc:
        raise invalid("cursor", "not a cursor returned by this API") from exc
    if not isinstance(values, list) or len(values) != size:
        raise invalid("cursor", "not a cursor returned by this API")
    return values


def keyset_page(
    session: Session,
    stmt: Select[Any],
    *,
    id_column: InstrumentedAttribute[Any],
    limit: int,
    cursor: str | None = None,
    sort_column: InstrumentedAttribute[Any] | None = None,
    descending: bool = True,
) -> Page[Any]:
    """One page of ``stmt`` ordered by (sort_column, id); the cursor carries the last row's pair."""
    sort_column = sort_column if sort_column is not None else id_column
    if cursor:
        last_sort, last_id = decode_cursor(cursor)
        last_id = _coerce(id_column, last_id)
        if sort_column is id_column:
            stmt = stmt.where(id_column < last_id if descending else id_column > last_id)
        else:
            last_sort = _coerce(sort_column, last_sort)
            if descending:
                stmt = stmt.where(or_(sort_column < last_sort, and_(sort_column == last_sort, id_column < last_id)))
            else:
                stmt = stmt.where(or_(sort_column > last_sort, and_(sort_column == last_sort, id_column > last_id)))
    order = (sort_column.desc(), id_column.desc()) if descending else (sort_column.asc(), id_column.asc())
    return page_of(list(session.scalars(stmt.order_by(*order).limit(limit + 1))), limit=limit, id_column=id_column,
                   sort_column=sort_column)


def keyset_after(cursor: str | None, id_column: InstrumentedAttribute[Any]) -> Any:
    """The last id of the page before, from a cursor of a page ordered by ``id_column`` alone (None: the first
    page): for a statement built once, which binds it (``id < :after``) and reads ``limit + 1`` rows for
    ``page_of``."""
    if not cursor:
        return None
    return _coerce(id_column, decode_cursor(cursor)[1])


def page_of(rows: list[Any], *, limit: int, id_column: InstrumentedAttribute[Any],
            sort_column: InstrumentedAttribute[Any] | None = None) -> Page[Any]:
    """A page of the ``limit + 1`` rows read (the one more says there is a next page), with its cursor."""
    sort_column = sort_column if sort_column is not None else id_column
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        sort_value = getattr(last, sort_column.key)
        next_cursor = encode_cursor([sort_value.isoformat() if hasattr(sort_value, "isoformat") else sort_value,
                                     getattr(last, id_column.key)])
    return Page(rows, next_cursor)


def _coerce(column: InstrumentedAttribute[Any], value: Any) -> Any:
    """A cursor's value as the column's type, or 422: a forged cursor (an id past BIGINT, an object, text for a
    number) would otherwise reach the database and fail there, as a 500."""
    from datetime import datetime
    from decimal import Decimal

    python_type = None
    with contextlib.suppress(NotImplementedError):
        python_type = column.type.python_type
    forged = invalid("cursor", "not a cursor returned by this API")
    if python_type is datetime:
        if not isinstance(value, str):
            raise forged
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            raise forged from exc
    if python_type is int and (isinstance(value, bool) or not isinstance(value, int)
                               or not -(2**63) <= value < 2**63):
        raise forged
    if python_type is str and (not isinstance(value, str) or "\x00" in value):
        raise forged
    if python_type in (float, Decimal) and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise forged
    if isinstance(value, dict | list):
        raise forged
    return value


def offset_page(
    session: Session,
    stmt: Select[Any],
    *,
    order_by: list[Any],
    page: int,
    per_page: int,
) -> OffsetPage[Any]:
    """A numbered page with the total, for UI tables that show “1–20 of 1,234” (or “of 10,000+”: the count
    stops past COUNT_CAP)."""
    counted = stmt.order_by(None).limit(COUNT_CAP + 1).subquery()
    total = session.scalar(select(func.count()).select_from(counted)) or 0
    offset = max(page - 1, 0) * per_page
    if offset >= 2**63:  # past any last page: the database's OFFSET is a BIGINT (page 2**63 - 1 answered 500)
        return OffsetPage([], total)
    rows = list(session.scalars(stmt.order_by(*order_by).offset(offset).limit(per_page)))
    return OffsetPage(rows, total)
