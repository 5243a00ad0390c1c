"""Segments: who matches a condition, within the asking principal's scope."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kehu.cdp.models import Profile
from kehu.segments import schemas
from kehu.segments.conditions import compile_condition
from kehu.tenancy.access import Principal, masked, scope


def matching(session: Session, principal: Principal, condition: Any) -> Any:
    """The SELECT of the live profiles the principal may read that meet ``condition`` (one statement)."""
    principal.require("profiles", "read")
    clause = compile_condition(session, principal.org_id, principal.timezone, condition)
    return select(Profile).where(scope(principal, Profile), Profile.merged_into_id.is_(None), clause)


def preview(session: Session, principal: Principal, request: schemas.PreviewRequest) -> schemas.PreviewOut:
    """How many match, and the most recently seen of them: what the builder shows while one edits."""
    principal.require("segments", "read")
    started = time.perf_counter()
    query = matching(session, principal, request.condition)
    count = session.scalar(query.with_only_columns(func.count(Profile.id)).order_by(None)) or 0
    sample = []
    if request.sample and count:
        rows = session.scalars(query.order_by(Profile.last_seen_at.desc().nulls_last(), Profile.id.desc())
                               .limit(request.sample))
        sample = [schemas.SampleProfile(id=p.id, name=p.name, mobile=masked(principal, p.mobile), city=p.city,
                                        lifecycle_stage=p.lifecycle_stage, unit_id=p.unit_id,
                                        last_seen_at=p.last_seen_at) for p in rows]
    return schemas.PreviewOut(count=count, sample=sample, milliseconds=round((time.perf_counter() - started) * 1000))
