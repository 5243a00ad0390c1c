"""Pipelines (销售流程): their stages in order, each with its win probability, forecast category and the fields a
deal needs to enter it; the default pipeline an organisation starts with."""

from __future__ import annotations

from sqlalchemy import func, or_, select, true
from sqlalchemy.orm import Session

from kehu.core import audit
from kehu.core.errors import Conflict, FieldError, invalid
from kehu.core.i18n import t
from kehu.sales import schemas, service
from kehu.sales.models import (
    Opportunity,
    OpportunityChange,
    Pipeline,
    PipelineStage,
)
from kehu.tenancy.access import Principal, Ref, check_references

# The default pipeline (DESIGN §7): key, 中文, English, win probability, fields a deal needs to enter it.
DEFAULT_STAGES: tuple[tuple[str, str, str, int, tuple[str, ...]], ...] = (
    ("lead", "销售线索", "Lead", 10, ()),
    ("qualified", "机会建立", "Qualified", 20, ()),
    ("proposal", "方案提供", "Proposal", 40, ("amount",)),
    ("evaluation", "方案评估", "Evaluation", 60, ("amount",)),
    ("negotiation", "商务谈判", "Negotiation", 75, ("amount", "expected_close_on")),
    ("contract", "合同签定", "Contract", 90, ("amount", "expected_close_on")),
    ("delivery", "项目实施", "Delivery", 100, ("amount",)),
)


# -- pipelines -------------------------------------------------------------------------------------------------
def default_pipeline(session: Session, org_id: int) -> Pipeline:
    """The organisation's default pipeline, made with the seven standard stages the first time it is asked."""
    pipeline = session.scalar(select(Pipeline).where(Pipeline.org_id == org_id, Pipeline.is_default.is_(True)))
    if pipeline is not None:
        return pipeline
    pipeline = Pipeline(org_id=org_id, name=t("pipeline.default", "zh"), is_default=True)
    session.add(pipeline)
    session.flush()
    for position, (key, zh, en, probability, required) in enumerate(DEFAULT_STAGES):
        session.add(PipelineStage(org_id=org_id, pipeline_id=pipeline.id, key=key, name_zh=zh, name_en=en,
                                  position=position, probability=probability,
                                  is_won=position == len(DEFAULT_STAGES) - 1,
                                  required_fields=list(required)))
    session.flush()
    return pipeline


def stages_of(session: Session, pipeline_id: int) -> list[PipelineStage]:
    return list(session.scalars(select(PipelineStage).where(PipelineStage.pipeline_id == pipeline_id)
                                .order_by(PipelineStage.position)))


def stage_name(stage: PipelineStage, locale: str | None) -> str:
    return stage.name_en if locale == "en" else stage.name_zh


def get_pipeline(session: Session, principal: Principal, pipeline_id: int | None) -> Pipeline:
    """A pipeline of the reader's organisation (the default when ``pipeline_id`` is None)."""
    if pipeline_id is None:
        return default_pipeline(session, principal.org_id)
    return check_references(session, principal, {"pipeline_id": Ref(Pipeline, pipeline_id, None)})["pipeline_id"]


def list_pipelines(session: Session, principal: Principal) -> list[tuple[Pipeline, list[PipelineStage]]]:
    principal.require("opportunities", "read")
    default_pipeline(session, principal.org_id)
    pipelines = session.scalars(select(Pipeline).where(Pipeline.org_id == principal.org_id)
                                .order_by(Pipeline.is_default.desc(), Pipeline.name))
    return [(p, stages_of(session, p.id)) for p in pipelines]


def save_pipeline(session: Session, principal: Principal, data: schemas.PipelineIn,
                  pipeline_id: int | None = None) -> Pipeline:
    """Add a pipeline or change one: its stages in the order given, matched by key. A stage that still holds
    opportunities cannot be dropped (move them first); the stage history keeps pointing at the same rows."""
    principal.require_permission("settings.manage")
    # a path id that is not ours: 404
    pipeline = service.org_setting(session, principal, Pipeline, pipeline_id, "pipeline") \
        if pipeline_id is not None else None
    # before the new row is written: its INSERT would hit the unique name first, a 500 instead of this 422
    others = Pipeline.id != pipeline.id if pipeline is not None else true()
    clash = session.scalar(select(Pipeline.id).where(Pipeline.org_id == principal.org_id, Pipeline.name == data.name,
                                                     others))
    if clash is not None:
        raise invalid("name", "another pipeline has this name", "duplicate")
    if pipeline is None:
        pipeline = Pipeline(org_id=principal.org_id, name=data.name)
        session.add(pipeline)
        session.flush()
    existing = {s.key: s for s in stages_of(session, pipeline.id)}
    dropped = [s for key, s in existing.items() if key not in {x.key for x in data.stages}]
    for stage in dropped:
        held = session.scalar(select(func.count()).select_from(Opportunity).where(Opportunity.stage_id == stage.id))
        if held:
            raise Conflict(f"Stage {stage.key} still holds {held} opportunities; move them before removing it.",
                           errors=[FieldError("stages", f"{stage.key} holds {held} opportunities", "in_use")])
        if session.scalar(select(func.count()).select_from(OpportunityChange).where(
                or_(OpportunityChange.to_stage_id == stage.id, OpportunityChange.from_stage_id == stage.id))):
            raise Conflict(f"Stage {stage.key} is in opportunities' history; it can be renamed, not removed.",
                           errors=[FieldError("stages", f"{stage.key} is in the stage history", "in_history")])
        session.delete(stage)
    session.flush()
    for position, item in enumerate(data.stages):
        stage = existing.get(item.key) or PipelineStage(org_id=principal.org_id, pipeline_id=pipeline.id, key=item.key)
        stage.name_zh, stage.name_en, stage.probability = item.name_zh, item.name_en, item.probability
        stage.is_won, stage.required_fields, stage.position = item.is_won, list(item.required_fields), 1000 + position
        session.add(stage)
    session.flush()
    for stage in stages_of(session, pipeline.id):  # two steps: positions stay unique while they move
        stage.position -= 1000
    pipeline.name = data.name
    if data.is_default and not pipeline.is_default:
        for other in session.scalars(select(Pipeline).where(Pipeline.org_id == principal.org_id,
                                                            Pipeline.is_default.is_(True))):
            other.is_default = False
        session.flush()
        pipeline.is_default = True
    session.flush()
    audit.record(session, principal, action="update", entity="pipelines", entity_id=pipeline.id,
                 after=data.model_dump(), summary=f"Pipeline {data.name}")
    return pipeline
