"""Lead scoring: every customer's points from the organisation's rules, computed in set statements (one
INSERT … SELECT over a UNION ALL of the rules), copied onto open leads, and inquiries that reach the
threshold promoted to MQL. A lead's score is explained rule by rule."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, insert, literal, select, union_all, update
from sqlalchemy.orm import Session

from kehu.cdp.models import Event, Profile
from kehu.core import audit, jobs
from kehu.core.db import utcnow
from kehu.core.errors import invalid
from kehu.sales import schemas
from kehu.sales.models import Lead, ProfileScore, ScoreRule, ScoringModel
from kehu.sales.service import delete_setting, org_setting, record_change
from kehu.segments import schemas as segment_schemas
from kehu.segments.conditions import compile_condition
from kehu.tenancy.access import Principal, org_timezone

SCORING_JOB = "sales.scoring"
HALF_LIVES = 6  # beyond six half-lives an event counts for nothing (1/64 of its points, rounded away)
PROMOTABLE = ("inquiry", "recycled")


# -- rules -------------------------------------------------------------------------------------------------------
def model_of(session: Session, org_id: int) -> ScoringModel:
    model = session.scalar(select(ScoringModel).where(ScoringModel.org_id == org_id))
    if model is None:
        model = ScoringModel(org_id=org_id, mql_threshold=50)
        session.add(model)
        session.flush()
    return model


def list_rules(session: Session, principal: Principal) -> list[ScoreRule]:
    principal.require("leads", "read")
    return list(session.scalars(select(ScoreRule).where(ScoreRule.org_id == principal.org_id)
                                .order_by(ScoreRule.id)))


def save_rule(session: Session, principal: Principal, data: schemas.ScoreRuleIn, rule_id: int | None = None
              ) -> ScoreRule:
    """Add or change a rule; a condition is checked now (each mistake with its path), not at scoring."""
    principal.require_permission("settings.manage")
    if data.kind == "condition":
        compile_condition(session, principal.org_id, principal.timezone,
                          segment_schemas.condition_adapter.validate_python(data.condition), reader=principal)
    if rule_id is None:
        rule = ScoreRule(org_id=principal.org_id)
        session.add(rule)
    else:
        rule = org_setting(session, principal, ScoreRule, rule_id, "score rule")
    values = data.model_dump(mode="json", by_alias=True)  # the condition as the JSON it is stored as
    for key, value in values.items():
        setattr(rule, key, value)
    session.flush()
    audit.record(session, principal, action="update", entity="score_rules", entity_id=rule.id, after=values,
                 summary=f"Score rule {rule.name}")
    return rule


def delete_rule(session: Session, principal: Principal, rule_id: int) -> None:
    delete_setting(session, principal, ScoreRule, rule_id, "score rule")


def set_threshold(session: Session, principal: Principal, threshold: int) -> ScoringModel:
    principal.require_permission("settings.manage")
    if not 1 <= threshold <= 100_000:
        raise invalid("mql_threshold", "a whole number from 1 to 100000", "range")
    model = model_of(session, principal.org_id)
    model.mql_threshold = threshold
    session.flush()
    return model


# -- the computation -------------------------------------------------------------------------------------------
def _rule_points(session: Session, rule: ScoreRule, org_id: int, timezone: str, now: datetime,
                 profile_id: int | None = None) -> Any:
    """SELECT (profile_id, points) of one rule, for every customer (or one)."""
    if rule.kind == "condition":
        clause = compile_condition(session, org_id, timezone,
                                   segment_schemas.condition_adapter.validate_python(rule.condition), reader=None)
        query = select(Profile.id.label("profile_id"), literal(rule.points).label("points")).where(
            Profile.org_id == org_id, Profile.merged_into_id.is_(None), clause)
        return query.where(Profile.id == profile_id) if profile_id is not None else query
    # each event worth its points while younger than a half-life, half as much in the next, and so on
    span = timedelta(days=rule.half_life_days)
    worth = case(*[(Event.ts >= now - span * (k + 1), rule.points / 2 ** k) for k in range(HALF_LIVES)], else_=0)
    total = func.sum(worth)
    if rule.max_points is not None:
        capped = case((total > rule.max_points, rule.max_points), else_=total) if rule.points >= 0 else \
            case((total < -rule.max_points, -rule.max_points), else_=total)
    else:
        capped = total
    query = select(Event.profile_id.label("profile_id"), capped.label("points")).where(
        Event.org_id == org_id, Event.event == rule.event, Event.ts >= now - span * HALF_LIVES)
    if profile_id is not None:
        query = query.where(Event.profile_id == profile_id)
    return query.group_by(Event.profile_id)


def compute(session: Session, org_id: int, *, now: datetime | None = None) -> dict[str, int]:
    """Every customer's score, then their open leads' scores and MQL promotions. Set statements only."""
    now = now or utcnow()
    timezone = org_timezone(session, org_id)
    rules = list(session.scalars(select(ScoreRule).where(ScoreRule.org_id == org_id, ScoreRule.is_active.is_(True))))
    session.execute(delete(ProfileScore).where(ProfileScore.org_id == org_id))
    scored = 0
    if rules:
        parts = union_all(*[_rule_points(session, r, org_id, timezone, now) for r in rules]).subquery()
        summed = select(parts.c.profile_id, literal(org_id), func.round(func.sum(parts.c.points)),
                        literal(now, type_=ProfileScore.computed_at.type)).group_by(parts.c.profile_id)
        session.execute(insert(ProfileScore).from_select(["profile_id", "org_id", "score", "computed_at"], summed))
        # counted, not taken from the driver's row count (psycopg reports -1 for INSERT … SELECT here)
        scored = session.scalar(select(func.count()).select_from(ProfileScore).where(
            ProfileScore.org_id == org_id)) or 0
    open_leads = (Lead.org_id == org_id, Lead.status.in_(("inquiry", "mql", "sal", "sql", "recycled")))
    session.execute(update(Lead).where(*open_leads).values(score=func.coalesce(
        select(ProfileScore.score).where(ProfileScore.profile_id == Lead.profile_id).scalar_subquery(), 0))
        .execution_options(synchronize_session=False))
    model = model_of(session, org_id)
    promoted = list(session.scalars(select(Lead).where(Lead.org_id == org_id, Lead.status.in_(PROMOTABLE),
                                                       Lead.score >= model.mql_threshold)))
    customers: dict[int, Profile] = {}
    ids = sorted({lead.profile_id for lead in promoted})
    for start in range(0, len(ids), 5000):  # the customers of the promoted leads, read together
        customers.update({p.id: p for p in session.scalars(select(Profile).where(
            Profile.id.in_(ids[start:start + 5000])))})
    for lead in promoted:  # those that cross the line: each gets its history entry and write-back
        before = lead.status
        lead.status, lead.status_changed_at = "mql", now
        record_change(session, lead, "status", None, at=now, from_status=before, to_status="mql",
                      reason=f"score {lead.score}")
        profile = customers.get(lead.profile_id)
        if profile is not None:
            profile.attributes = {**(profile.attributes or {}), "lead_status": "mql"}
    model.computed_at = now
    session.flush()
    return {"profiles": scored, "promoted": len(promoted)}


def explain(session: Session, principal: Principal, lead: Lead) -> list[dict[str, Any]]:
    """Where the customer's points come from now: each rule that gives them any, with its points."""
    now = utcnow()
    out = []
    for rule in session.scalars(select(ScoreRule).where(ScoreRule.org_id == lead.org_id, ScoreRule.is_active.is_(True))
                                .order_by(ScoreRule.id)):
        row = session.execute(_rule_points(session, rule, lead.org_id, principal.timezone, now,
                                           profile_id=lead.profile_id)).first()
        if row is not None and row.points:
            out.append({"rule_id": rule.id, "rule": rule.name, "points": round(float(row.points))})
    return out


def request_run(session: Session, principal: Principal) -> ScoringModel:
    """Rescore every lead of the organisation: a settings manager's decision, as changing the rules is."""
    principal.require_permission("settings.manage")
    model = model_of(session, principal.org_id)
    job = jobs.enqueue(session, kind=SCORING_JOB, org_id=principal.org_id, unit_id=principal.unit_id,
                       created_by_id=principal.user_id, created_by_api_key_id=principal.api_key_id,
                       payload={"org_id": principal.org_id})
    model.job_id = job.id
    session.flush()
    return model


@jobs.job_handler(SCORING_JOB)
def _run(ctx: jobs.JobContext) -> dict[str, Any]:
    """One transaction: a worker that dies half way leaves the previous scores, and the job runs again."""
    return compute(ctx.session, ctx.job.payload["org_id"])
