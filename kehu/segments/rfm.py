"""RFM (recency, frequency, monetary value) over orders: scores 1–5 per customer, the classic eight classes
(重要价值客户 …), stored as scores and as rule tags, with their distribution. Computed by a job in set
statements: one INSERT … SELECT over the orders, one per tag."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import and_, case, delete, func, literal, select
from sqlalchemy.orm import Session

from kehu.cdp.models import Order, Profile
from kehu.core import audit, jobs
from kehu.core.db import dialect_insert, utcnow
from kehu.core.errors import invalid
from kehu.core.i18n import t
from kehu.segments.models import ProfileTag, RfmModel, RfmScore, Tag, TagGroup
from kehu.tenancy.access import Principal, scope
from kehu.tenancy.models import Organization

RFM_JOB = "segments.rfm"
DEFAULTS = {"recency_days": [30, 90, 180, 365], "frequency": [1, 2, 3, 5],
            "monetary": [10_000, 100_000, 200_000, 400_000], "statuses": ["placed", "paid", "delivered"]}
# (recent, frequent, valuable) → class; "high" is a score of 3 or more.
CLASSES = {
    (True, True, True): "important_value", (True, False, True): "important_development",
    (False, True, True): "important_retention", (False, False, True): "important_recovery",
    (True, True, False): "general_value", (True, False, False): "general_development",
    (False, True, False): "general_retention", (False, False, False): "general_recovery",
}
HIGH = 3


def get_model(session: Session, principal: Principal) -> RfmModel:
    principal.require("segments", "read")
    return _model_of(session, principal.org_id)


def _model_of(session: Session, org_id: int) -> RfmModel:
    """The organisation's bounds, made from the defaults on first use."""
    model = session.scalar(select(RfmModel).where(RfmModel.org_id == org_id))
    if model is None:
        model = RfmModel(org_id=org_id, **{k: list(v) for k, v in DEFAULTS.items()}, status="ready")
        session.add(model)
        session.flush()
    return model


def update_model(session: Session, principal: Principal, data: dict[str, Any]) -> RfmModel:
    """New bounds (each four ascending numbers) and counted statuses; the next computation uses them."""
    principal.require_permission("settings.manage")
    model = get_model(session, principal)
    for key in ("recency_days", "frequency", "monetary"):
        bounds = data.get(key, getattr(model, key))
        numbers = isinstance(bounds, list) and len(bounds) == 4 and all(
            isinstance(b, int | float) and not isinstance(b, bool) and b >= 0 for b in bounds)
        if not numbers or not all(a < b for a, b in pairwise(bounds)):
            raise invalid(key, "four ascending numbers, 0 or more", "not_bounds")
    statuses = data.get("statuses", model.statuses)
    if not statuses or not set(statuses) <= {"placed", "paid", "delivered", "cancelled", "refunded"}:
        raise invalid("statuses", "order statuses among placed, paid, delivered, cancelled, refunded", "not_option")
    before = {k: getattr(model, k) for k in DEFAULTS}
    model.recency_days, model.frequency = list(data.get("recency_days", model.recency_days)), \
        list(data.get("frequency", model.frequency))
    model.monetary, model.statuses = list(data.get("monetary", model.monetary)), list(statuses)
    session.flush()
    audit.record(session, principal, action="update", entity="rfm_models", entity_id=model.id, before=before,
                 after={k: getattr(model, k) for k in DEFAULTS}, summary="RFM bounds changed")
    return model


def request_run(session: Session, principal: Principal) -> RfmModel:
    principal.require("segments", "create")
    model = get_model(session, principal)
    job = jobs.enqueue(session, kind=RFM_JOB, org_id=principal.org_id, unit_id=principal.unit_id,
                       created_by_id=principal.user_id, created_by_api_key_id=principal.api_key_id,
                       payload={"org_id": principal.org_id})
    model.status, model.job_id = "queued", job.id
    session.flush()
    return model


def _score(column: Any, bounds: list[Any]) -> Any:
    """1–5 from four ascending lower bounds: at least the last scores 5, below the first scores 1."""
    return case(*((column >= b, 5 - i) for i, b in enumerate(reversed(bounds))), else_=1)


def compute(session: Session, org_id: int) -> dict[str, int]:
    """Replace the organisation's scores and RFM tags; returns the count per class."""
    model = _model_of(session, org_id)
    now = utcnow()
    orders = select(Order.profile_id, func.max(Order.ordered_at).label("last"), func.count().label("n"),
                    func.sum(Order.total).label("total")).join(Profile, Profile.id == Order.profile_id).where(
        Order.org_id == org_id, Order.status.in_(model.statuses), Profile.merged_into_id.is_(None)
    ).group_by(Order.profile_id).subquery()
    # recency as "last order on or after now − bound", so no date arithmetic differs between the databases
    r = case(*((orders.c.last >= now - timedelta(days=d), 5 - i) for i, d in enumerate(model.recency_days)),
             else_=1)
    f = _score(orders.c.n, model.frequency)
    m = _score(orders.c.total, model.monetary)
    scored = select(orders.c.profile_id, orders.c.last, orders.c.n, orders.c.total, r.label("r"), f.label("f"),
                    m.label("m")).subquery()
    klass = case(*((and_(scored.c.r >= HIGH if recent else scored.c.r < HIGH,
                         scored.c.f >= HIGH if frequent else scored.c.f < HIGH,
                         scored.c.m >= HIGH if valuable else scored.c.m < HIGH), name)
                   for (recent, frequent, valuable), name in CLASSES.items()))
    session.execute(delete(RfmScore).where(RfmScore.org_id == org_id))
    session.execute(dialect_insert(session)(RfmScore).from_select(
        ["profile_id", "org_id", "last_ordered_at", "orders", "total", "r", "f", "m", "rfm_class", "computed_at"],
        select(scored.c.profile_id, literal(org_id), scored.c.last, scored.c.n, scored.c.total, scored.c.r,
               scored.c.f, scored.c.m, klass, literal(now, type_=RfmScore.computed_at.type))))
    _sync_tags(session, org_id, now)
    model.status, model.computed_at = "ready", now
    session.flush()
    return dict(session.execute(select(RfmScore.rfm_class, func.count()).where(RfmScore.org_id == org_id)
                                .group_by(RfmScore.rfm_class)).all())


def _sync_tags(session: Session, org_id: int, now: Any) -> None:
    """One rule tag per class, in a group "RFM", on exactly the customers of that class."""
    locale = session.scalar(select(Organization.default_locale).where(Organization.id == org_id)) or "zh"
    group = session.scalar(select(TagGroup).where(TagGroup.org_id == org_id, TagGroup.name == "RFM"))
    if group is None:
        group = TagGroup(org_id=org_id, name="RFM")
        session.add(group)
        session.flush()
    colours = {"important": "negative", "general": "grey"}
    for name in CLASSES.values():
        rule = f"rfm:{name}"
        tag = session.scalar(select(Tag).where(Tag.org_id == org_id, Tag.rule == rule))
        if tag is None:
            label = t(f"rfm.class.{name}", locale)
            taken = session.scalar(select(Tag.id).where(Tag.org_id == org_id, Tag.name == label))
            tag = Tag(org_id=org_id, group_id=group.id, name=label if not taken else f"{label} (RFM)", rule=rule,
                      colour=colours[name.split("_")[0]])
            session.add(tag)
            session.flush()
        session.execute(delete(ProfileTag).where(ProfileTag.tag_id == tag.id))
        session.execute(dialect_insert(session)(ProfileTag).from_select(
            ["tag_id", "profile_id", "org_id", "origin", "added_at"],
            select(literal(tag.id), RfmScore.profile_id, literal(org_id), literal("rule"),
                   literal(now, type_=ProfileTag.added_at.type)).where(RfmScore.org_id == org_id,
                                                                       RfmScore.rfm_class == name)))


def distribution(session: Session, principal: Principal) -> dict[str, Any]:
    """Customers per class and per R/F/M score, among the customers the reader may see."""
    principal.require("segments", "read")
    visible = select(Profile.id).where(scope(principal, Profile))
    base = select(RfmScore).where(RfmScore.org_id == principal.org_id, RfmScore.profile_id.in_(visible)).subquery()
    classes = dict(session.execute(select(base.c.rfm_class, func.count()).group_by(base.c.rfm_class)).all())
    scores = {axis: dict(session.execute(select(base.c[axis], func.count()).group_by(base.c[axis])).all())
              for axis in ("r", "f", "m")}
    return {"classes": {name: classes.get(name, 0) for name in CLASSES.values()},
            "scores": {axis: {str(s): scores[axis].get(s, 0) for s in range(1, 6)} for axis in scores}}


@jobs.job_handler(RFM_JOB)
def _run(ctx: jobs.JobContext) -> dict[str, Any]:
    counts = compute(ctx.session, ctx.job.payload["org_id"])
    audit.record(ctx.session, ctx.principal, org_id=ctx.job.payload["org_id"], action="compute", entity="rfm_models",
                 after=counts, summary=f"RFM computed: {sum(counts.values())} customers scored")
    return counts
