"""The customer's timeline: what they did (events, imports included) interleaved with what was done to their
record (changes, merges, consent, vehicles, orders), newest first, paged by one cursor over both streams.

Each stream is read with its own index-backed range query of at most ``limit + 1`` rows past the cursor and
the two are merged here, so a page costs two short index scans whatever the history's length."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import Session

from kehu.cdp.models import HAPPENING, Event, Order, Profile
from kehu.core import domains
from kehu.core.audit import AuditRecord
from kehu.core.errors import invalid
from kehu.core.pagination import Page, decode_cursor, encode_cursor

if TYPE_CHECKING:
    from kehu.cdp.views import CustomerView
from kehu.tenancy.access import Principal

EVENT, CHANGE = "event", "change"
_RANK = {EVENT: 0, CHANGE: 1}  # at the same instant a change sorts above the event that caused it; streams follow
HIDDEN_FIELDS = {"trait_times", "name_pinyin", "updated_at", "created_at"}


@dataclass
class TimelineItem:
    kind: str
    id: int
    ts: datetime
    row: Any  # Event, AuditRecord, or what another domain's stream reads


@dataclass
class TimelineStream:
    """Another domain's entries on the customer's timeline (segments: entered / left). ``read(session, principal,
    profile, params)`` returns at most ``params["rows"]`` items of the profile that the reader may see, newest
    first, past the cursor: its statement filters with ``before(ts, id)`` and runs with ``params`` (the profile's
    ``org_id`` and ``profile_id``, ``rows``, and the cursor's ``after_ts`` and ``after_id``), built once
    (``built_once``); ``present`` gives the fields of the API's item, ``title`` its line on a page."""

    kind: str
    rank: int
    read: Callable[[Session, Principal, Profile, dict[str, Any]], list[TimelineItem]]
    present: Callable[[Principal, Any], dict[str, Any]]
    title: Callable[[Any, str | None], str]  # (the API's item, locale) → the line a page shows
    icons: dict[str, tuple[str, str]] = field(default_factory=dict)  # action ("" for any) → (icon, colour class)


def streams() -> dict[str, TimelineStream]:
    """The other domains' streams (their manifests' ``timeline_streams``), by kind."""
    return _streams()


@functools.cache
def _streams() -> dict[str, TimelineStream]:
    found: dict[str, TimelineStream] = {stream.kind: stream for stream in domains.contributed("timeline_streams")}
    ranks = [*_RANK.values(), *(stream.rank for stream in found.values())]
    assert len(set(ranks)) == len(ranks), "ranks order the streams: each its own"
    return found


def _rank(kind: str) -> int:
    return _RANK[kind] if kind in _RANK else _streams()[kind].rank


def _parse(cursor: str | None) -> tuple[datetime, int, int] | None:
    if not cursor:
        return None
    values = decode_cursor(cursor, size=3)
    try:
        parsed = datetime.fromisoformat(values[0]), int(values[1]), int(values[2])
    except (TypeError, ValueError) as exc:
        raise invalid("cursor", "not a cursor returned by this API") from exc
    if not all(-(2**63) <= n < 2**63 for n in parsed[1:]):  # a forged id past BIGINT: 422, not the database's 500
        raise invalid("cursor", "not a cursor returned by this API")
    if parsed[0].tzinfo is None:  # every cursor given carries its zone; a naive time would reach the database
        raise invalid("cursor", "not a cursor returned by this API")
    return parsed


# Every stream's read is built once, with the profile and the cursor as parameters (building a statement and its
# cache key each time cost as much as running it). The cursor is bound as (after_ts, after_id): rows before it in
# (ts desc, id desc) order; after_id also says how the cursor's rank orders a stream's rows at after_ts.
_NO_CURSOR = datetime(9999, 1, 1, tzinfo=UTC)
_LAST_ID, _FIRST_ID = 2**63 - 1, -(2**63)


def before(column_ts: Any, column_id: Any) -> Any:
    """The rows of a stream past the cursor (in ``params``' after_ts and after_id)."""
    after_ts: Any = bindparam("after_ts")
    # the range alone is what the (profile, ts) index can start from, deep in a long history; the OR is a filter
    return and_(column_ts <= after_ts,
                or_(column_ts < after_ts, and_(column_ts == after_ts, column_id < bindparam("after_id"))))


def _bounds(rank: int, cursor: tuple[datetime, int, int] | None) -> dict[str, Any]:
    """The (after_ts, after_id) of ``before`` for a stream of ``rank``: rows after the cursor in (ts desc, rank
    desc, id desc) order — at the cursor's instant, all of a lower rank's, none of a higher one's."""
    if cursor is None:
        return {"after_ts": _NO_CURSOR, "after_id": _FIRST_ID}
    ts, cursor_rank, cursor_id = cursor
    return {"after_ts": ts, "after_id": _LAST_ID if rank < cursor_rank else _FIRST_ID if rank > cursor_rank
            else cursor_id}


_EVENTS = (select(Event).where(Event.org_id == bindparam("org_id"), Event.profile_id == bindparam("profile_id"),
                               Event.type != HAPPENING,  # the lead's or deal's own history shows them
                               before(Event.ts, Event.id))
           .order_by(Event.ts.desc(), Event.id.desc()).limit(bindparam("rows")))


def _changes(with_orders: bool) -> Any:
    about_profile = and_(AuditRecord.entity == "profiles", AuditRecord.entity_id == bindparam("profile_id"))
    own_orders = select(Order.id).where(Order.org_id == bindparam("org_id"),
                                        Order.profile_id == bindparam("profile_id"))
    about_orders = and_(AuditRecord.entity == "orders", AuditRecord.entity_id.in_(own_orders))
    return (select(AuditRecord).where(AuditRecord.org_id == bindparam("org_id"),
                                      or_(about_profile, about_orders) if with_orders else about_profile,
                                      before(AuditRecord.ts, AuditRecord.id))
            .order_by(AuditRecord.ts.desc(), AuditRecord.id.desc()).limit(bindparam("rows")))


_CHANGES = {True: _changes(True), False: _changes(False)}  # whether the reader may read orders


def timeline(session: Session, principal: Principal, profile: Profile, *, limit: int = 50,
             cursor: str | None = None) -> Page[TimelineItem]:
    """One page of the profile's timeline (the caller has checked the profile is in scope)."""
    after = _parse(cursor)
    of_profile = {"org_id": principal.org_id, "profile_id": profile.id, "rows": limit + 1}
    events = session.scalars(_EVENTS, {**of_profile, **_bounds(_RANK[EVENT], after)})
    changes = session.scalars(_CHANGES[principal.can("orders")], {**of_profile, **_bounds(_RANK[CHANGE], after)})
    items = [TimelineItem(EVENT, e.id, e.ts, e) for e in events]
    items += [TimelineItem(CHANGE, c.id, c.ts, c) for c in changes]
    for stream in streams().values():
        items += stream.read(session, principal, profile, {**of_profile, **_bounds(stream.rank, after)})
    items.sort(key=lambda i: (i.ts, _rank(i.kind), i.id), reverse=True)
    if len(items) <= limit:
        return Page(items, None)
    items = items[:limit]
    last = items[-1]
    return Page(items, encode_cursor([last.ts.isoformat(), _rank(last.kind), last.id]))


def _personal_kind(view: CustomerView, key: str) -> str | None:
    return view.personal.of_attribute(key) or Profile.__pii__.get(key)


def change_summary(view: CustomerView, record: AuditRecord) -> str:
    """A change's one-line summary, with the personal values it quotes ("Vehicle LSV… registered") masked as
    its fields are."""
    summary = record.summary or ""
    if view.sees_all:
        return summary
    for values in (record.before or {}, record.after or {}):
        for key, value in values.items():
            kind = _personal_kind(view, key)
            if kind and isinstance(value, str) and value and value in summary:
                summary = summary.replace(value, str(view.value(kind, value)))
    return summary


def change_details(view: CustomerView, record: AuditRecord) -> dict[str, Any]:
    """What a change set, field by field, with personal data masked (by its kind) for viewers without
    ``pii.read``."""
    after = record.after or {}
    out: dict[str, Any] = {}
    for key, value in after.items():
        if key in HIDDEN_FIELDS or isinstance(value, dict | list):
            continue
        text = "" if value is None else str(value)
        kind = _personal_kind(view, key)
        out[key] = view.value(kind, text) if kind else text[:200]
    return out
