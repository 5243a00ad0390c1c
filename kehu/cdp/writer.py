"""The one writer of new profiles and identities. Everything that brings a person or an identity into kehu goes
through here: the resolver (the streams, identify calls, an import's rows that need resolving), an import's
newcomers written column by column, a customer entered by hand, and the demo generator. What a new row holds
when its writer does not say (no attributes, no trait times, born now) and how identities go into their unique
index are decided once.

Rows are given as columns ({column: each row's value, or EveryRow(value)}): a million-row import writes a
few lists, not a dict per row, and a single customer is a column of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from kehu.cdp.models import Identity, Profile
from kehu.core.db import EveryRow, insert_columns_returning_ids, utcnow

PROFILE_COLUMNS = tuple(c.key for c in Profile.__table__.columns if c.key != "id")


def _not_given(now: datetime) -> dict[str, EveryRow]:
    """What a new profile holds unless its writer says otherwise: the model's defaults ({} attributes, a visitor)
    and NULL, born ``now``."""
    held: dict[str, EveryRow] = {}
    for column in Profile.__table__.columns:
        default = column.default
        if column.key != "id":
            held[column.key] = EveryRow(None if default is None else default.arg(None) if default.is_callable
                                        else default.arg)
    return {**held, "created_at": EveryRow(now), "updated_at": EveryRow(now)}


def write_profiles(session: Session, columns: dict[str, Any], *, now: datetime | None = None) -> list[int]:
    """Insert new profiles and give back their ids in the given order. ``org_id`` is required; a column left
    out holds the model's default (NULL, ``{}`` for attributes and trait times, born ``now``)."""
    if "org_id" not in columns:
        raise ValueError("a profile belongs to an organisation: org_id is required")
    unknown = set(columns).difference(PROFILE_COLUMNS)
    if unknown:
        raise ValueError(f"profiles have no column {sorted(unknown)}")
    laid_out: dict[str, Any] = {**_not_given(now or utcnow()), **columns}
    return insert_columns_returning_ids(session, Profile.__table__, laid_out)


def write_identities(session: Session, org_id: int, *, profile_ids: Sequence[int], kinds: Sequence[str],
                     values: Sequence[str], source_ids: Sequence[int | None] | EveryRow,
                     first_seen: Sequence[datetime] | EveryRow,
                     last_seen: Sequence[datetime] | EveryRow | None = None) -> list[int]:
    """Insert new identities (one per position of the sequences) and give back their ids in the given order.
    They go into the unique index in its own order (kind, then value): neighbouring keys share leaf pages, so
    once the index outgrows the database's cache a batch reads each page once instead of once per identity."""
    count = len(kinds)
    if not count:
        return []
    # keys and picks by C calls, not lambdas: an import sorts millions
    order = sorted(range(count), key=list(zip(kinds, values, strict=True)).__getitem__)

    def sorted_column(column: Sequence[Any] | EveryRow) -> Any:
        return column if isinstance(column, EveryRow) else list(map(column.__getitem__, order))

    first = sorted_column(first_seen)
    ids = insert_columns_returning_ids(session, Identity.__table__, {
        "org_id": EveryRow(org_id), "profile_id": sorted_column(profile_ids), "kind": sorted_column(kinds),
        "value": sorted_column(values), "source_id": sorted_column(source_ids), "first_seen_at": first,
        "last_seen_at": first if last_seen is None else sorted_column(last_seen)})
    given_order: list[int] = [0] * count
    for place, identity_id in zip(order, ids, strict=True):
        given_order[place] = identity_id
    return given_order
