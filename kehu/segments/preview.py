"""The segment builder's preview: how many customers in the reader's scope meet a condition, and some of them —
counted exactly, or estimated from a sample of pages where that is sound."""

from __future__ import annotations

import math
import time
from typing import Any

from sqlalchemy import BigInteger, func, inspect, literal, literal_column, select, tablesample, type_coerce
from sqlalchemy import text as sa_text
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.orm import Session
from sqlalchemy.sql import util as sql_util

from kehu.cdp.models import Profile
from kehu.cdp.views import CustomerView
from kehu.segments import schemas
from kehu.segments.service import matching
from kehu.tenancy.access import Principal, spans_units

# A preview of a condition met by many of a large database's customers counts them in a random sample of pages
# (TABLESAMPLE SYSTEM, PostgreSQL): ~40,000 customers read instead of every one. At a million customers an exact
# count took 0.3-0.8 s of the database's CPU (three times that with parallel workers), a sampled one 30-70 ms
# (150-340 ms with an event condition); under fifty users the previews were a third of the database's work. The sample
# takes whole pages, and customers who match often sit together (imported together, created the same week), so
# the estimate and its margin are those of a sample of pages, not of customers drawn one by one. A condition with
# few matches in the sample, or whose estimate would be looser than ESTIMATE_MAX_MARGIN, a small table and SQLite
# are counted exactly, as is any preview asked for ``exact``. Saved segments always are.
ESTIMATE_FROM_PROFILES = 200_000
ESTIMATE_SAMPLE_PROFILES = 40_000
ESTIMATE_MIN_MATCHES = 400
ESTIMATE_MAX_MARGIN = 0.1  # of the estimate, at 95 %
ESTIMATE_SCOPE_UNITS = 10  # a scope of fewer units (a dealer and its teams) is counted exactly
ESTIMATE_SEED = 20_260_101  # the same pages every time: an edit changes the estimate, asking again does not
_PAGE: Any = literal_column("((sampled_profiles.ctid::text::point)[0])::bigint")  # the heap page a sampled row is on


def preview(session: Session, principal: Principal, request: schemas.PreviewRequest) -> schemas.PreviewOut:
    """How many match, and the newest of them: what the builder shows while one edits."""
    principal.require("segments", "read")
    started = time.perf_counter()
    query = matching(session, principal, request.condition)
    out = None if request.exact else _estimated(session, principal, query, request.sample)
    if out is None:
        count = session.scalar(query.with_only_columns(func.count(Profile.id)).order_by(None)) or 0
        # Newest customers first: walking the primary key backwards stops at the sample's size, where ordering
        # by last contact would sort every match (half a million at a million profiles) for twenty rows.
        rows = list(session.scalars(query.order_by(Profile.id.desc()).limit(request.sample))) \
            if request.sample and count else []
        out = schemas.PreviewOut(count=count, sample=_sample_out(session, principal, rows), milliseconds=0)
    out.milliseconds = round((time.perf_counter() - started) * 1000)
    return out


def _estimated(session: Session, principal: Principal, query: Any, sample: int) -> schemas.PreviewOut | None:
    """The preview from a random sample of the customers' pages, or None where it would not be sound.

    ``query``'s own subqueries must not read ``profiles`` unaliased unless they are about the outer customer: the
    sample replaces every bare ``profiles`` in it (a subquery of other customers uses ``aliased(Profile)``)."""
    if session.get_bind().dialect.name != "postgresql" or not spans_units(principal, Profile, ESTIMATE_SCOPE_UNITS):
        return None  # one dealer's or one person's customers: counted exactly through their index, and cheaply
    rows = session.scalar(sa_text("SELECT reltuples FROM pg_class WHERE oid = 'profiles'::regclass")) or 0
    if rows < ESTIMATE_FROM_PROFILES:  # (the last ANALYZE's count: only to tell a large table)
        return None
    share = min(1.0, ESTIMATE_SAMPLE_PROFILES / rows)  # of the pages, each taken or not at random
    pages = tablesample(inspect(Profile).local_table, func.system(100 * share), name="sampled_profiles",
                        seed=literal(ESTIMATE_SEED))
    # each sampled page's matches, with its newest ones
    newest = type_coerce(func.array_agg(aggregate_order_by(Profile.id, Profile.id.desc())), ARRAY(BigInteger))
    matched = session.execute(sql_util.ClauseAdapter(pages).traverse(
        query.with_only_columns(_PAGE, func.count(), newest[1:max(sample, 1)]).group_by(_PAGE).order_by(None))).all()
    found = sum(count for _, count, _ in matched)
    if found < ESTIMATE_MIN_MATCHES:
        return None
    # Horvitz-Thompson over pages each taken with probability ``share``: unbiased whatever the pages hold (dead rows
    # of an UPDATE of everyone, half the customers deleted, matches in lumps), its variance from the pages' counts
    count = found / share
    margin = max(1.96 * math.sqrt((1 - share) * sum(n * n for _, n, _ in matched)) / share, 1.0)
    if margin > ESTIMATE_MAX_MARGIN * count:
        return None  # too loose to show: the matches sit on few pages
    places = max(0, len(str(round(margin))) - 2)  # as many digits as the margin leaves meaningful
    ids = sorted((i for _, _, some in matched for i in some or ()), reverse=True)[:sample]
    by_id = {p.id: p for p in session.scalars(select(Profile).where(Profile.id.in_(ids)))} if ids else {}
    return schemas.PreviewOut(count=int(round(count, -places)), estimated=True,
                              margin=int(round(margin, -places)),
                              sample=_sample_out(session, principal, [by_id[i] for i in ids if i in by_id]),
                              milliseconds=0)


def _sample_out(session: Session, principal: Principal, rows: list[Profile]) -> list[schemas.SampleProfile]:
    if not rows:
        return []
    view = CustomerView.of(session, principal)
    return [schemas.SampleProfile(id=p.id, name=p.name, mobile=view.profile(p).mobile, city=p.city,
                                  lifecycle_stage=p.lifecycle_stage, unit_id=p.unit_id, last_seen_at=p.last_seen_at)
            for p in rows]
