"""Opportunities (商机): deals worked through a pipeline's stages (销售线索 → 机会建立 → 方案提供 → 方案评估 →
商务谈判 → 合同签定 → 项目实施 by default), won or lost with a reason, every move kept with the time spent in
the stage before it. A lead converts into one in a single step (customer, company, opportunity).

Over 600 lines: an opportunity's moves, its conversion from a lead and its board share the stage rules; the board's
queries (counts and sums per stage) are what to move out next."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select
from sqlalchemy.orm import Session

from kehu.cdp import service as cdp_service
from kehu.cdp import timeline
from kehu.cdp.models import Account, AccountMember, Product, Profile
from kehu.core import audit, events
from kehu.core.db import utcnow
from kehu.core.errors import Conflict, FieldError, ValidationFailed, invalid
from kehu.core.i18n import t
from kehu.core.pagination import OffsetPage, offset_page
from kehu.sales import schemas, service
from kehu.sales.manifest import OPPORTUNITY_LOST, OPPORTUNITY_WON
from kehu.sales.models import (
    OPEN_STATUSES,
    Lead,
    Opportunity,
    OpportunityChange,
    OpportunityContact,
    OpportunityLine,
    OpportunityMember,
    Pipeline,
    PipelineStage,
)
from kehu.sales.pipelines import get_pipeline, stages_of
from kehu.tenancy.access import Principal, Ref, check_references, get_scoped, require_row, scope, scoped_once
from kehu.tenancy.models import User

SORTS = {"expected_close_on": Opportunity.expected_close_on, "amount": Opportunity.amount,
         "created_at": Opportunity.created_at, "stage_entered_at": Opportunity.stage_entered_at,
         "probability": Opportunity.probability, "title": Opportunity.title}


def _now() -> datetime:
    return utcnow()


# -- reading ---------------------------------------------------------------------------------------------------
def get_opportunity(session: Session, principal: Principal, opportunity_id: int) -> Opportunity:
    return get_scoped(session, principal, Opportunity, opportunity_id)


def weighted(opportunity: Opportunity) -> Decimal:
    if opportunity.status == "lost":
        return Decimal("0.00")
    return (Decimal(opportunity.amount) * opportunity.probability / 100).quantize(Decimal("0.01"))


def opportunity_out(session: Session, opportunity: Opportunity,
                    stages: dict[int, PipelineStage] | None = None) -> dict[str, Any]:
    """The API's fields of a deal; a list passes ``stages`` (``all_stages``) to spare a query per row."""
    stage = (stages or {}).get(opportunity.stage_id) or session.get(PipelineStage, opportunity.stage_id)
    return {**{c.key: getattr(opportunity, c.key) for c in Opportunity.__table__.columns},
            "stage_key": stage.key if stage else None, "weighted_amount": weighted(opportunity)}


def all_stages(session: Session, org_id: int) -> dict[int, PipelineStage]:
    """Every stage of the organisation's pipelines by id (names on lists and cards)."""
    return {s.id: s for s in session.scalars(select(PipelineStage).where(PipelineStage.org_id == org_id))}


def people_named(session: Session, principal: Principal, profile_ids: list[int]) -> dict[int, str]:
    """Names of the customers on deals the reader sees (cards, rows, contacts): whoever works a deal sees
    who it is for, even when the customer's record sits elsewhere."""
    ids = sorted(set(profile_ids))
    if not ids:
        return {}
    return {pid: name or f"#{pid}" for pid, name in session.execute(select(Profile.id, Profile.name).where(
        Profile.org_id == principal.org_id, Profile.id.in_(ids)))}


def detail(session: Session, principal: Principal, opportunity_id: int) -> dict[str, Any]:
    """The opportunity with its products, contacts and team."""
    opportunity = get_opportunity(session, principal, opportunity_id)
    return {**opportunity_out(session, opportunity),
            "products": list(session.scalars(select(OpportunityLine).where(
                OpportunityLine.opportunity_id == opportunity.id).order_by(OpportunityLine.id))),
            "contacts": [{"profile_id": c.profile_id, "role": c.role} for c in session.scalars(
                select(OpportunityContact).where(OpportunityContact.opportunity_id == opportunity.id)
                .order_by(OpportunityContact.id))],
            "members": [{"user_id": m.user_id, "role": m.role} for m in session.scalars(
                select(OpportunityMember).where(OpportunityMember.opportunity_id == opportunity.id)
                .order_by(OpportunityMember.id))]}


def _filtered(session: Session, principal: Principal, *, status: str | None, pipeline_id: int | None,
              stage_key: str | None, unit_id: int | None, owner_id: int | None, q: str | None,
              close_from: date | None, close_to: date | None) -> Any:
    principal.require("opportunities", "read")
    query = select(Opportunity).where(scope(principal, Opportunity))
    if status:
        if status not in ("open", "won", "lost"):
            raise invalid("status", "open, won or lost", "unknown")
        query = query.where(Opportunity.status == status)
    if pipeline_id is not None:
        query = query.where(Opportunity.pipeline_id == get_pipeline(session, principal, pipeline_id).id)
    if stage_key:
        query = query.where(Opportunity.stage_id.in_(select(PipelineStage.id).where(
            PipelineStage.org_id == principal.org_id, PipelineStage.key == stage_key)))
    if unit_id is not None:
        query = query.where(Opportunity.unit_id.in_(service.unit_and_below(session, principal, unit_id)))
    if owner_id is not None:
        query = query.where(Opportunity.owner_id == owner_id)
    if close_from is not None:
        query = query.where(Opportunity.expected_close_on >= close_from)
    if close_to is not None:
        query = query.where(Opportunity.expected_close_on <= close_to)
    if q:
        text = q.strip()
        query = query.where(or_(Opportunity.title.contains(text, autoescape=True),
                                Opportunity.profile_id.in_(select(Profile.id).where(  # among the reader's deals
                                    cdp_service.search_filter(principal, text), Profile.merged_into_id.is_(None)))))
    return query


def page_opportunities(session: Session, principal: Principal, *, status: str | None = None,
                       pipeline_id: int | None = None, stage_key: str | None = None, unit_id: int | None = None,
                       owner_id: int | None = None, q: str | None = None, close_from: date | None = None,
                       close_to: date | None = None, sort: str = "expected_close_on", descending: bool = False,
                       page: int = 1, per_page: int = 20) -> OffsetPage[Opportunity]:
    """The opportunities the reader may see, filtered and sorted as a list view asks."""
    if sort not in SORTS:
        raise invalid("sort", f"one of {', '.join(SORTS)}", "unknown")
    query = _filtered(session, principal, status=status, pipeline_id=pipeline_id, stage_key=stage_key,
                      unit_id=unit_id, owner_id=owner_id, q=q, close_from=close_from, close_to=close_to)
    column = SORTS[sort]
    order = [column.desc() if descending else column.asc()]
    if sort == "expected_close_on":  # deals without a date last, whichever way
        order.insert(0, Opportunity.expected_close_on.is_(None))
    return offset_page(session, query, order_by=[*order, Opportunity.id.desc()], page=page, per_page=per_page)


def board(session: Session, principal: Principal, *, pipeline_id: int | None = None, unit_id: int | None = None,
          owner_id: int | None = None, q: str | None = None, per_stage: int = 50) -> dict[str, Any]:
    """The kanban: each stage of the pipeline with how many open deals it holds, their amount and weighted
    amount, and the first ``per_stage`` of them (closing soonest first); the won stage holds the deals won
    (latest first). Lost deals are not on the board (the list shows them)."""
    pipeline = get_pipeline(session, principal, pipeline_id)
    stages = stages_of(session, pipeline.id)
    base = _filtered(session, principal, status=None, pipeline_id=pipeline.id, stage_key=None, unit_id=unit_id,
                     owner_id=owner_id, q=q, close_from=None, close_to=None).subquery()
    totals = {row.stage_id: row for row in session.execute(
        select(base.c.stage_id, base.c.status, func.count().label("count"), func.sum(base.c.amount).label("amount"),
               func.sum(base.c.amount * base.c.probability / 100).label("weighted"))
        .group_by(base.c.stage_id, base.c.status)) if row.status == "open" or row.status == "won"}
    columns = []
    for stage in stages:
        status = "won" if stage.is_won else "open"
        query = _filtered(session, principal, status=status, pipeline_id=pipeline.id, stage_key=None,
                          unit_id=unit_id, owner_id=owner_id, q=q, close_from=None, close_to=None).where(
            Opportunity.stage_id == stage.id)
        if stage.is_won:  # the won column: the latest wins first
            cards = list(session.scalars(query.order_by(Opportunity.closed_at.desc(), Opportunity.id.desc())
                                         .limit(per_stage)))
        else:
            cards = list(session.scalars(query.order_by(Opportunity.expected_close_on.is_(None),
                                                        Opportunity.expected_close_on, Opportunity.id)
                                         .limit(per_stage)))
        row = totals.get(stage.id)
        columns.append({"stage": stage, "count": row.count if row else 0,
                        "amount": Decimal(row.amount or 0) if row else Decimal(0),
                        "weighted": Decimal(row.weighted or 0).quantize(Decimal("0.01")) if row else Decimal(0),
                        "cards": cards})
    return {"pipeline": pipeline, "columns": columns}


def history(session: Session, principal: Principal, opportunity_id: int) -> list[dict[str, Any]]:
    """The moves of an opportunity, newest first, each with how long it stayed in the stage it entered
    (until the next move, or until now while it is still there and open)."""
    opportunity = get_opportunity(session, principal, opportunity_id)
    changes = list(session.scalars(select(OpportunityChange).where(
        OpportunityChange.opportunity_id == opportunity.id).order_by(OpportunityChange.at, OpportunityChange.id)))
    # a stay ends at the next move or at losing; a lost deal stays nowhere until it is reopened
    entries = [c for c in changes if c.kind in ("created", "stage", "won", "reopened", "lost")]
    stays: dict[int, int] = {}
    for entry, following in zip(entries, [*entries[1:], None], strict=True):
        if entry.kind == "lost":
            continue
        if following is not None:
            stays[entry.id] = int((following.at - entry.at).total_seconds())
        elif opportunity.status == "open":
            stays[entry.id] = int((_now() - entry.at).total_seconds())
    out = [{**{c.key: getattr(change, c.key) for c in OpportunityChange.__table__.columns},
            "seconds_in_stage": stays.get(change.id)} for change in changes]
    return list(reversed(out))


def opportunities_of(session: Session, principal: Principal, profile_id: int) -> list[Opportunity]:
    """A customer's opportunities the reader may see (the Customer 360): theirs, or where they are a contact."""
    profile = cdp_service.get_profile(session, principal, profile_id)
    if not principal.can("opportunities"):
        return []
    return list(session.scalars(select(Opportunity).where(
        scope(principal, Opportunity), or_(Opportunity.profile_id == profile.id, Opportunity.id.in_(
            select(OpportunityContact.opportunity_id).where(OpportunityContact.profile_id == profile.id))))
        .order_by(Opportunity.id.desc())))


# -- writing ---------------------------------------------------------------------------------------------------
def _change(session: Session, opportunity: Opportunity, kind: str, actor: Principal | None, *, at: datetime,
            from_stage_id: int | None = None, reason: str = "") -> None:
    session.add(OpportunityChange(
        org_id=opportunity.org_id, opportunity_id=opportunity.id, kind=kind, from_stage_id=from_stage_id,
        to_stage_id=opportunity.stage_id, status=opportunity.status, amount=opportunity.amount,
        probability=opportunity.probability, unit_id=opportunity.unit_id, owner_id=opportunity.owner_id,
        reason=reason[:500], actor_id=actor.user_id if actor else None,
        actor=(actor.display if actor else "system")[:100], at=at))
    if kind == "won":
        events.publish(session, OPPORTUNITY_WON, **_happening(opportunity))
    elif kind == "lost":
        events.publish(session, OPPORTUNITY_LOST, **_happening(opportunity), reason=reason[:200])


def _happening(opportunity: Opportunity) -> dict[str, Any]:
    """What a won or lost deal's domain event says (and the customer's event made of it)."""
    return {"org_id": opportunity.org_id, "entity": Opportunity.__tablename__, "entity_id": opportunity.id,
            "profile_id": opportunity.profile_id, "opportunity_id": opportunity.id,
            "amount": float(opportunity.amount), "currency": opportunity.currency, "unit_id": opportunity.unit_id}


def _fields(opportunity: Opportunity) -> dict[str, Any]:
    return {"stage_id": opportunity.stage_id, "status": opportunity.status, "amount": str(opportunity.amount),
            "probability": opportunity.probability, "unit_id": opportunity.unit_id, "owner_id": opportunity.owner_id,
            "expected_close_on": opportunity.expected_close_on.isoformat() if opportunity.expected_close_on else None}


def _stage(session: Session, pipeline: Pipeline, key: str | None) -> PipelineStage:
    stages = stages_of(session, pipeline.id)
    if key is None:
        return stages[0]
    for stage in stages:
        if stage.key == key:
            return stage
    raise invalid("stage_key", f"not a stage of this pipeline ({', '.join(s.key for s in stages)})", "unknown")


ACCOUNT_FIELDS = ("account_id", "distributor_account_id", "partner_account_id")


def _check_accounts(session: Session, principal: Principal, values: dict[str, Any]) -> None:
    check_references(session, principal, {name: Ref(Account, values.get(name)) for name in ACCOUNT_FIELDS})


def _lines(session: Session, principal: Principal, items: list[schemas.OpportunityLineIn]) -> list[OpportunityLine]:
    """Order lines from the catalogue (name and list price unless given)."""
    found = check_references(session, principal, {f"products.{n}.product_id": Ref(Product, item.product_id, None)
                                                  for n, item in enumerate(items)})
    lines = []
    for n, item in enumerate(items):
        product = found[f"products.{n}.product_id"]
        price = item.unit_price if item.unit_price is not None else (product.price if product else None)
        lines.append(OpportunityLine(product_id=item.product_id, name=item.name or (product.name if product else ""),
                                     quantity=item.quantity, unit_price=price or Decimal("0")))
    return lines


def _contacts(session: Session, principal: Principal, items: list[schemas.ContactIn]) -> list[OpportunityContact]:
    check_references(session, principal, {f"contacts.{n}.profile_id": cdp_service.customer_ref(item.profile_id)
                                          for n, item in enumerate(items)})
    return [OpportunityContact(profile_id=i.profile_id, role=i.role) for i in items]


def _members(session: Session, principal: Principal, items: list[schemas.MemberIn]) -> list[OpportunityMember]:
    active = User.is_active.is_(True)
    check_references(session, principal, {f"members.{n}.user_id": Ref(User, item.user_id, None, active)
                                          for n, item in enumerate(items)})
    if len({i.user_id for i in items}) != len(items):
        raise invalid("members", "a colleague is on the team once", "duplicate")
    return [OpportunityMember(user_id=i.user_id, role=i.role) for i in items]


def _replace_children(session: Session, opportunity: Opportunity, model: Any, rows: list[Any]) -> None:
    session.execute(delete(model).where(model.opportunity_id == opportunity.id))
    for row in rows:
        row.opportunity_id = opportunity.id
        session.add(row)


def _missing_for(session: Session, opportunity: Opportunity, stage: PipelineStage) -> list[FieldError]:
    """What ``stage`` asks of a deal entering it that this one lacks."""
    missing = []
    for field in stage.required_fields or []:
        if field == "amount":
            absent = not opportunity.amount
        elif field in ("products", "contacts"):
            model = OpportunityLine if field == "products" else OpportunityContact
            absent = not session.scalar(select(func.count()).select_from(model).where(
                model.opportunity_id == opportunity.id))
        else:
            absent = not getattr(opportunity, field)
        if absent:
            missing.append(FieldError(field, f"required from stage {stage.key}", "required_by_stage"))
    return missing


def _require_for(session: Session, opportunity: Opportunity, stage: PipelineStage) -> None:
    missing = _missing_for(session, opportunity, stage)
    if missing:
        fields = {"zh": "、".join(t(f"pipeline.field.{e.field}", "zh") for e in missing),
                  "en": ", ".join(t(f"pipeline.field.{e.field}", "en").lower() for e in missing)}
        raise ValidationFailed(f"Stage {stage.key} needs {', '.join(e.field for e in missing)} filled in first.",
                               errors=missing, message=("opp.stage_needs", {
                                   "stage": {"zh": stage.name_zh, "en": stage.name_en}, "fields": fields}))


def _write_back(session: Session, opportunity: Opportunity) -> None:
    """The customer's life-cycle stage moves forward with their deals (opportunity; customer when won)."""
    if opportunity.profile_id is None:
        return
    profile = session.get(Profile, opportunity.profile_id)
    if profile is None:
        return
    stage = "customer" if opportunity.status == "won" else "opportunity"
    current = profile.lifecycle_stage
    order = service.STAGE_ORDER
    if current not in order or order.index(current) < order.index(stage):
        profile.lifecycle_stage = stage


def _apply(session: Session, principal: Principal, opportunity: Opportunity,
           data: schemas.OpportunityFields) -> None:
    values = data.model_dump(exclude_unset=True)
    _check_accounts(session, principal, values)
    for field in ("title", "description", "probability", "expected_close_on", "sales_method", "source", "influence",
                  "competitors", "account_id", "distributor_account_id", "partner_account_id"):
        if field in values and (values[field] is not None or field in ("expected_close_on", "influence",
                                                                       "account_id", "distributor_account_id",
                                                                       "partner_account_id")):
            setattr(opportunity, field, values[field])
    if data.products is not None:
        lines = _lines(session, principal, data.products)
        _replace_children(session, opportunity, OpportunityLine, lines)
        if data.amount is None:
            opportunity.amount = sum((Decimal(x.unit_price) * x.quantity for x in lines), Decimal("0"))
    if data.amount is not None:
        opportunity.amount = data.amount
    if data.contacts is not None:
        _replace_children(session, opportunity, OpportunityContact, _contacts(session, principal, data.contacts))
    if data.members is not None:
        _replace_children(session, opportunity, OpportunityMember, _members(session, principal, data.members))
    if opportunity.profile_id is None and opportunity.account_id is None:
        raise invalid("account_id", "a deal is for a customer or a company", "required")
    session.flush()


def create_opportunity(session: Session, principal: Principal, data: schemas.OpportunityCreate, *,
                       lead: Lead | None = None, at: datetime | None = None) -> Opportunity:
    """A new deal at the first stage of its pipeline (or the one named), owned by the creator unless placed
    elsewhere; the stage's required fields are checked as for any move."""
    principal.require("opportunities", "create")
    check_references(session, principal, {"profile_id": cdp_service.customer_ref(data.profile_id)})
    profile = cdp_service.get_profile(session, principal, data.profile_id) if data.profile_id is not None else None
    pipeline = get_pipeline(session, principal, data.pipeline_id)
    stage = _stage(session, pipeline, data.stage_key)
    if data.unit_id is None and data.owner_id is None:
        unit_id, owner_id = principal.unit_id, principal.user_id
        if lead is not None:
            unit_id, owner_id = lead.unit_id, lead.owner_id or principal.user_id
        if unit_id is None:
            raise invalid("unit_id", "say where the deal belongs", "required")
        require_row(session, principal, "opportunities", "create", unit_id=unit_id, owner_id=owner_id)
    else:
        unit_id, owner_id = service.placement(session, principal, data.unit_id, data.owner_id,
                                              entity="opportunities", privilege="create")
    now = at or _now()
    opportunity = Opportunity(org_id=principal.org_id, unit_id=unit_id, owner_id=owner_id, title=data.title,
                              profile_id=profile.id if profile else None, lead_id=lead.id if lead else None,
                              pipeline_id=pipeline.id, stage_id=stage.id, status="won" if stage.is_won else "open",
                              probability=stage.probability, amount=Decimal("0"), competitors=[],
                              stage_entered_at=now, closed_at=now if stage.is_won else None,
                              created_by_id=principal.user_id, source=lead.source if lead else "manual")
    session.add(opportunity)
    session.flush()
    _apply(session, principal, opportunity, data)
    _require_for(session, opportunity, stage)
    _change(session, opportunity, "created", principal, at=now, reason=f"lead:{lead.id}" if lead else "")
    if opportunity.status == "won":  # recorded won from the start (a sale entered after the fact)
        events.publish(session, OPPORTUNITY_WON, **_happening(opportunity))
    _write_back(session, opportunity)
    audit.record(session, principal, action="create", entity="opportunities", entity_id=opportunity.id,
                 unit_id=opportunity.unit_id, after=_fields(opportunity),
                 summary=f"Opportunity {opportunity.id}: {opportunity.title}")
    session.flush()
    return opportunity


def _writable(session: Session, principal: Principal, opportunity_id: int, privilege: str = "update") -> Opportunity:
    opportunity = get_opportunity(session, principal, opportunity_id)
    require_row(session, principal, "opportunities", privilege, unit_id=opportunity.unit_id,
                owner_id=opportunity.owner_id)
    return opportunity


def update_opportunity(session: Session, principal: Principal, opportunity_id: int,
                       data: schemas.OpportunityFields) -> Opportunity:
    """Change what is known of the deal; the current stage's required fields must stay filled. A change of
    amount, probability or close date is kept in the history (the forecast moved)."""
    opportunity = _writable(session, principal, opportunity_id)
    before = _fields(opportunity)
    _apply(session, principal, opportunity, data)
    stage = session.get(PipelineStage, opportunity.stage_id)
    assert stage is not None
    if opportunity.status == "open":
        _require_for(session, opportunity, stage)
    after = _fields(opportunity)
    if any(before[k] != after[k] for k in ("amount", "probability", "expected_close_on")):
        _change(session, opportunity, "updated", principal, at=_now(), from_stage_id=opportunity.stage_id)
    audit.record(session, principal, action="update", entity="opportunities", entity_id=opportunity.id,
                 unit_id=opportunity.unit_id, before=before, after=after,
                 summary=f"Opportunity {opportunity.id} updated")
    session.flush()
    return opportunity


def _enter(session: Session, principal: Principal, opportunity: Opportunity, stage: PipelineStage, *,
           kind: str, reason: str) -> None:
    now = _now()
    before = opportunity.stage_id
    opportunity.stage_id, opportunity.stage_entered_at, opportunity.probability = stage.id, now, stage.probability
    if stage.is_won:
        opportunity.status, opportunity.closed_at, opportunity.close_reason = "won", now, None
        kind = "won"
    session.flush()
    _change(session, opportunity, kind, principal, at=now, from_stage_id=before, reason=reason)
    _write_back(session, opportunity)


def move_stage(session: Session, principal: Principal, opportunity_id: int, data: schemas.StageMove) -> Opportunity:
    """Move an open deal to another stage of its pipeline (forward or back), if it has what that stage asks;
    the won stage closes it as won. A closed deal is reopened first."""
    opportunity = _writable(session, principal, opportunity_id)
    if opportunity.status != "open":
        raise Conflict(f"The opportunity is {opportunity.status}; reopen it before moving it.",
                       errors=[FieldError("stage_key", f"the opportunity is {opportunity.status}", "closed")])
    pipeline = session.get(Pipeline, opportunity.pipeline_id)
    assert pipeline is not None
    stage = _stage(session, pipeline, data.stage_key)
    if stage.id == opportunity.stage_id:
        return opportunity
    _require_for(session, opportunity, stage)
    before = _fields(opportunity)
    _enter(session, principal, opportunity, stage, kind="stage", reason=data.note)
    audit.record(session, principal, action="stage", entity="opportunities", entity_id=opportunity.id,
                 unit_id=opportunity.unit_id, before=before, after=_fields(opportunity),
                 summary=f"Opportunity {opportunity.id} → {stage.key}")
    return opportunity


def close(session: Session, principal: Principal, opportunity_id: int, data: schemas.Close) -> Opportunity:
    """Won (into the won stage, with what it asks) or lost (with the reason; it stays at the stage where it
    was lost, which the funnel counts)."""
    opportunity = _writable(session, principal, opportunity_id)
    if opportunity.status != "open":
        raise Conflict(f"The opportunity is already {opportunity.status}.",
                       errors=[FieldError("outcome", f"already {opportunity.status}", "closed")])
    if data.outcome == "lost" and data.reason is None:
        raise invalid("reason", "say why the deal was lost", "required")
    before = _fields(opportunity)
    if data.outcome == "won":
        won = session.scalar(select(PipelineStage).where(PipelineStage.pipeline_id == opportunity.pipeline_id,
                                                         PipelineStage.is_won.is_(True)))
        assert won is not None
        _require_for(session, opportunity, won)
        _enter(session, principal, opportunity, won, kind="won", reason=data.note)
    else:
        now = _now()
        opportunity.status, opportunity.closed_at, opportunity.probability = "lost", now, 0
        opportunity.close_reason, opportunity.close_note = data.reason, data.note
        session.flush()
        _change(session, opportunity, "lost", principal, at=now, from_stage_id=opportunity.stage_id,
                reason=data.reason or "")
    audit.record(session, principal, action=data.outcome, entity="opportunities", entity_id=opportunity.id,
                 unit_id=opportunity.unit_id, before=before, after=_fields(opportunity),
                 summary=f"Opportunity {opportunity.id} {data.outcome}")
    return opportunity


def reopen(session: Session, principal: Principal, opportunity_id: int, stage_key: str | None = None) -> Opportunity:
    """A closed deal back in play: at the stage given, else where it was lost, else the stage before won."""
    opportunity = _writable(session, principal, opportunity_id)
    if opportunity.status == "open":
        return opportunity
    pipeline = session.get(Pipeline, opportunity.pipeline_id)
    assert pipeline is not None
    stages = stages_of(session, pipeline.id)
    current = next(s for s in stages if s.id == opportunity.stage_id)
    if stage_key is not None:
        stage = _stage(session, pipeline, stage_key)
    else:
        stage = stages[max(0, stages.index(current) - 1)] if current.is_won else current
    if stage.is_won:
        raise invalid("stage_key", "a reopened deal goes to an open stage", "won_stage")
    before = _fields(opportunity)
    opportunity.status, opportunity.closed_at, opportunity.close_reason, opportunity.close_note = \
        "open", None, None, ""
    _enter(session, principal, opportunity, stage, kind="reopened", reason="")
    audit.record(session, principal, action="reopen", entity="opportunities", entity_id=opportunity.id,
                 unit_id=opportunity.unit_id, before=before, after=_fields(opportunity),
                 summary=f"Opportunity {opportunity.id} reopened")
    return opportunity


def assign(session: Session, principal: Principal, opportunity_id: int, data: schemas.Assignment) -> Opportunity:
    """Hand a deal to a salesperson (or a unit's next one in turn), by someone who may assign it there."""
    opportunity = _writable(session, principal, opportunity_id, "assign")
    unit_id, owner_id = service.placement(session, principal, data.unit_id, data.owner_id, entity="opportunities")
    if owner_id is None:
        owner_id = service.next_salesperson(session, principal.org_id, unit_id)
    before = _fields(opportunity)
    opportunity.unit_id, opportunity.owner_id = unit_id, owner_id
    session.flush()
    _change(session, opportunity, "assigned", principal, at=_now(), from_stage_id=opportunity.stage_id)
    audit.record(session, principal, action="assign", entity="opportunities", entity_id=opportunity.id,
                 unit_id=unit_id, before=before, after=_fields(opportunity),
                 summary=f"Opportunity {opportunity.id} assigned")
    return opportunity


# -- a lead converted in one step --------------------------------------------------------------------------------------
def conversion_defaults(session: Session, principal: Principal, lead_id: int) -> dict[str, Any]:
    """What the convert dialog starts from: the title the deal gets when none is typed (the customer's name
    and the model asked about) and the list price of that model in the catalogue, if one is named so."""
    lead = service.get_lead(session, principal, lead_id)
    profile = session.get(Profile, lead.profile_id)
    name = (profile.name if profile else None) or t("customers.unnamed", principal.locale)
    price = None
    if lead.model_interest:
        price = session.scalar(select(Product.price).where(
            Product.org_id == principal.org_id, Product.is_active.is_(True), Product.kind == "vehicle_model",
            func.lower(Product.name) == lead.model_interest.strip().lower(), Product.price.is_not(None)).limit(1))
    return {"title": " · ".join(filter(None, [name, lead.model_interest])), "amount": price}


def convert_lead(session: Session, principal: Principal, lead_id: int,
                 data: schemas.LeadConversion) -> tuple[Lead, Opportunity]:
    """Qualify an open lead at any point of its life cycle: its customer (One ID made them already) joins the
    company named (an existing account, or a new one), and a new opportunity is opened for them at the
    first stage, owned by the lead's salesperson; the lead becomes converted and points the way. All or
    nothing: one unit of work."""
    lead = service.get_lead(session, principal, lead_id)
    require_row(session, principal, "leads", "update", unit_id=lead.unit_id, owner_id=lead.owner_id)
    if lead.status not in OPEN_STATUSES:
        raise Conflict(f"A {lead.status} lead cannot be converted; only an open one.",
                       errors=[FieldError("status", f"the lead is {lead.status}", "transition")])
    profile = session.get(Profile, lead.profile_id)
    assert profile is not None
    account_id = data.account_id
    if account_id is not None:
        _check_accounts(session, principal, {"account_id": account_id})
    elif data.new_account_name:
        account_id = cdp_service.create_account(session, principal, name=data.new_account_name,
                                                kind=data.new_account_kind, unit_id=lead.unit_id,
                                                owner_id=lead.owner_id).id
    if account_id is not None:
        already = session.scalar(select(AccountMember.id).where(AccountMember.account_id == account_id,
                                                                AccountMember.profile_id == profile.id))
        if already is None:
            session.add(AccountMember(account_id=account_id, profile_id=profile.id, role="contact"))
    title = data.title or " · ".join(filter(None, [profile.name or t("customers.unnamed", principal.locale),
                                                   lead.model_interest]))
    opportunity = create_opportunity(session, principal, schemas.OpportunityCreate(
        title=title[:200], profile_id=profile.id, account_id=account_id, pipeline_id=data.pipeline_id,
        amount=data.amount, expected_close_on=data.expected_close_on, products=data.products,
        description=lead.note[:2000] or None), lead=lead)
    service.set_status(session, principal, lead, "converted", reason=f"opportunity:{opportunity.id}",
                       note=data.note)
    return lead, opportunity


# -- on the customer's timeline --------------------------------------------------------------------------------------
TIMELINE_KINDS = ("created", "stage", "won", "lost", "reopened")


def _timeline_changes(session: Session, principal: Principal, profile: Profile,
                      params: dict[str, Any]) -> list[timeline.TimelineItem]:
    if not principal.can("opportunities"):
        return []
    query, scoped = scoped_once("opportunity_timeline", principal, Opportunity, lambda in_scope: (
        select(OpportunityChange, Opportunity.title, PipelineStage.name_zh, PipelineStage.name_en)
        .join(Opportunity, Opportunity.id == OpportunityChange.opportunity_id)
        .outerjoin(PipelineStage, PipelineStage.id == OpportunityChange.to_stage_id)
        .where(Opportunity.profile_id == bindparam("profile_id"), OpportunityChange.org_id == bindparam("org_id"),
               OpportunityChange.kind.in_(TIMELINE_KINDS), in_scope,
               timeline.before(OpportunityChange.at, OpportunityChange.id))
        .order_by(OpportunityChange.at.desc(), OpportunityChange.id.desc()).limit(bindparam("rows"))))
    rows = session.execute(query, {**params, **scoped}).all()
    return [timeline.TimelineItem("opportunity", c.id, c.at, (c, title, zh, en)) for c, title, zh, en in rows]


def _timeline_item(principal: Principal, row: Any) -> dict[str, Any]:
    change, title, zh, en = row
    return {"action": change.kind, "entity": "opportunities", "entity_id": change.opportunity_id,
            "actor": change.actor, "summary": title,
            "changes": {k: v for k, v in (("stage_zh", zh), ("stage_en", en), ("reason", change.reason),
                                          ("amount", str(change.amount))) if v}}


def _timeline_title(item: Any, locale: str | None) -> str:
    """"商机「王先生 · ID.4」进入「方案提供」", "Opportunity … lost: price", … in the reader's words."""
    details = dict(item.changes or {})
    stage = details.get("stage_en" if locale == "en" else "stage_zh", "")
    reason = details.get("reason", "")
    return t(f"timeline.opportunity_{item.action}", locale, title=item.summary or "", stage=stage,
             reason=t(f"opp.lost.{reason}", locale, default=reason))


TIMELINE_STREAM = timeline.TimelineStream("opportunity", 5, _timeline_changes, _timeline_item, _timeline_title, {
    "": ("handshake", "text-deep-purple-6"), "won": ("emoji_events", "text-positive"),
    "lost": ("thumb_down_off_alt", "text-grey-7")})
