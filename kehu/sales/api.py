"""HTTP door of sales: leads, their history, assignment, rules and service levels."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from kehu.core.pagination import OffsetPage
from kehu.sales import activities, opportunities, pipelines, reports, schemas, scoring, service, workday
from kehu.tenancy.deps import PrincipalDep, SessionDep

router = APIRouter(prefix="/api/v1", tags=["leads"])


@router.get("/leads")
def list_leads(session: SessionDep, principal: PrincipalDep,
               status_: Annotated[str | None, Query(alias="status", description="a status, or open")] = None,
               unit_id: int | None = None, owner_id: int | None = None, overdue: bool = False,
               unassigned: bool = False, q: str | None = None, page: Annotated[int, Query(ge=1)] = 1,
               per_page: Annotated[int, Query(ge=1, le=200)] = 50) -> Any:
    """The leads you may see, newest inquiry first: a work queue by status, unit (and the units below it),
    owner, overdue first contacts or unassigned, or the customer's name / mobile (``q``)."""
    result: OffsetPage[Any] = service.page_leads(session, principal, status=status_, unit_id=unit_id,
                                                 owner_id=owner_id, overdue=overdue, unassigned=unassigned, q=q,
                                                 page=page, per_page=per_page)
    return {"items": [schemas.LeadOut(**service.lead_out(lead)) for lead in result.items], "total": result.total,
            "total_is_exact": not result.more, "page": page, "per_page": per_page}


@router.get("/leads/summary")
def lead_summary(session: SessionDep, principal: PrincipalDep) -> dict[str, int]:
    """How many leads per status in your scope, and how many open ones are overdue or unassigned."""
    return service.counts(session, principal)


@router.post("/leads", response_model=schemas.LeadCreated, status_code=status.HTTP_201_CREATED)
def create_lead(data: schemas.LeadCreate, session: SessionDep, principal: PrincipalDep, response: Response) -> Any:
    """Record an inquiry. The customer is found by One ID or made; an open lead of the same customer that
    you may read is updated (answer 200, ``created`` false) rather than duplicated; otherwise a new lead is
    routed (201) — kept as your own, at your unit, when it would go where you may not read it (another
    dealer's customer). This is how a dealer takes up a customer the group already knows."""
    lead, created = service.create_lead(session, principal, data)
    if not created:
        response.status_code = status.HTTP_200_OK
    return schemas.LeadCreated(**service.lead_out(lead, created=created))


@router.get("/leads/{lead_id}", response_model=schemas.LeadOut)
def get_lead(lead_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.lead_out(service.get_lead(session, principal, lead_id))


@router.get("/leads/{lead_id}/history", response_model=list[schemas.LeadChangeOut])
def lead_history(lead_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    """Everything that happened to the lead, newest first."""
    return service.history(session, principal, lead_id)


@router.post("/leads/{lead_id}/status", response_model=schemas.LeadOut)
def change_status(lead_id: int, data: schemas.StatusChange, session: SessionDep, principal: PrincipalDep) -> Any:
    """Move the lead along inquiry → mql → sal → sql → converted, or disqualify it (with a reason) or recycle
    it; a move the life cycle does not allow is 409 naming the ones it does."""
    return service.lead_out(service.change_status(session, principal, lead_id, data))


@router.post("/leads/{lead_id}/contacted", response_model=schemas.LeadOut)
def contacted(lead_id: int, data: schemas.Contacted, session: SessionDep, principal: PrincipalDep) -> Any:
    """The customer was contacted: the first time stops the first-contact clock."""
    return service.lead_out(service.mark_contacted(session, principal, lead_id, data.note))


@router.post("/leads/{lead_id}/assign", response_model=schemas.LeadOut)
def assign(lead_id: int, data: schemas.Assignment, session: SessionDep, principal: PrincipalDep) -> Any:
    """Reassign to a unit (its next salesperson in turn) or to a salesperson."""
    return service.lead_out(service.assign(session, principal, lead_id, data))


@router.post("/leads/assign")
def bulk_assign(data: schemas.BulkAssignment, session: SessionDep, principal: PrincipalDep) -> dict[str, int]:
    """Reassign several leads at once; if one cannot be, none is."""
    return {"assigned": service.bulk_assign(session, principal, data)}


@router.get("/customers/{profile_id}/leads", response_model=list[schemas.LeadOut], tags=["customers"])
def customer_leads(profile_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return [service.lead_out(lead) for lead in service.leads_of(session, principal, profile_id)]


# -- configuration ------------------------------------------------------------------------------------------------
@router.get("/lead-rules", response_model=list[schemas.LeadRuleOut])
def lead_rules(session: SessionDep, principal: PrincipalDep) -> Any:
    return service.list_rules(session, principal)


@router.put("/lead-rules", response_model=schemas.LeadRuleOut)
def save_lead_rule(data: schemas.LeadRuleIn, session: SessionDep, principal: PrincipalDep) -> Any:
    """Make leads from an event (``test_drive_booked``, ``call_centre_inquiry`` …) from now on."""
    return service.save_rule(session, principal, data)


@router.delete("/lead-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_lead_rule(rule_id: int, session: SessionDep, principal: PrincipalDep) -> Response:
    service.delete_rule(session, principal, rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/routing-rules", response_model=list[schemas.RoutingRuleOut])
def routing_rules(session: SessionDep, principal: PrincipalDep) -> Any:
    return service.list_routing(session, principal)


@router.post("/routing-rules", response_model=schemas.RoutingRuleOut, status_code=status.HTTP_201_CREATED)
def create_routing_rule(data: schemas.RoutingRuleIn, session: SessionDep, principal: PrincipalDep) -> Any:
    """Send new leads matching provinces / cities / models / sources to a unit, where a salesperson is picked
    by round robin or lowest open load. Customers who already belong to a dealer go back to it first."""
    return service.save_routing(session, principal, data)


@router.put("/routing-rules/{rule_id}", response_model=schemas.RoutingRuleOut)
def update_routing_rule(rule_id: int, data: schemas.RoutingRuleIn, session: SessionDep,
                        principal: PrincipalDep) -> Any:
    return service.save_routing(session, principal, data, rule_id)


@router.delete("/routing-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_routing_rule(rule_id: int, session: SessionDep, principal: PrincipalDep) -> Response:
    service.delete_routing(session, principal, rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/lead-sla", response_model=list[schemas.SlaOut])
def list_slas(session: SessionDep, principal: PrincipalDep) -> Any:
    """The organisation's first-contact level (unit empty) and the units' own."""
    return service.list_slas(session, principal)


@router.put("/lead-sla", response_model=schemas.SlaOut)
def set_sla(data: schemas.SlaIn, session: SessionDep, principal: PrincipalDep) -> Any:
    """Hours to the first contact: the organisation's default, or a unit's own; with opening and closing times
    (and open days) the clock runs in working hours only."""
    return service.set_sla(session, principal, data)


# -- scoring ---------------------------------------------------------------------------------------------------------
@router.get("/leads/{lead_id}/score", response_model=schemas.LeadScoreOut)
def lead_score(lead_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    """The lead's score and where its customer's points come from."""
    lead = service.get_lead(session, principal, lead_id)
    return {"score": lead.score, "now": scoring.explain(session, principal, lead)}


@router.get("/score-rules", response_model=list[schemas.ScoreRuleOut])
def score_rules(session: SessionDep, principal: PrincipalDep) -> Any:
    return scoring.list_rules(session, principal)


@router.post("/score-rules", response_model=schemas.ScoreRuleOut, status_code=status.HTTP_201_CREATED)
def create_score_rule(data: schemas.ScoreRuleIn, session: SessionDep, principal: PrincipalDep) -> Any:
    return scoring.save_rule(session, principal, data)


@router.put("/score-rules/{rule_id}", response_model=schemas.ScoreRuleOut)
def update_score_rule(rule_id: int, data: schemas.ScoreRuleIn, session: SessionDep, principal: PrincipalDep) -> Any:
    return scoring.save_rule(session, principal, data, rule_id)


@router.delete("/score-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_score_rule(rule_id: int, session: SessionDep, principal: PrincipalDep) -> Response:
    scoring.delete_rule(session, principal, rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/scoring", response_model=schemas.ScoringOut)
def get_scoring(session: SessionDep, principal: PrincipalDep) -> Any:
    principal.require("leads", "read")
    return scoring.model_of(session, principal.org_id)


@router.put("/scoring", response_model=schemas.ScoringOut)
def set_scoring(data: schemas.ScoringIn, session: SessionDep, principal: PrincipalDep) -> Any:
    """The score at which an open inquiry becomes an MQL (at the next computation)."""
    return scoring.set_threshold(session, principal, data.mql_threshold)


@router.post("/scoring/run", response_model=schemas.ScoringOut, status_code=status.HTTP_202_ACCEPTED)
def run_scoring(session: SessionDep, principal: PrincipalDep) -> Any:
    """Score every customer again (a job), update open leads, promote inquiries past the threshold."""
    return scoring.request_run(session, principal)


# -- activities ------------------------------------------------------------------------------------------------------
@router.post("/activities", response_model=schemas.ActivityOut, status_code=status.HTTP_201_CREATED,
             tags=["activities"])
def log_activity(data: schemas.ActivityIn, session: SessionDep, principal: PrincipalDep) -> Any:
    """Record a call, visit, test drive, quote or message (done now, or at ``done_at``), or plan one with
    ``due_at``. Done on an open lead, a contact is its first contact."""
    return activities.out(activities.log(session, principal, data))


@router.get("/activities", tags=["activities"])
def list_activities(session: SessionDep, principal: PrincipalDep, lead_id: int | None = None,
                    profile_id: int | None = None, mine_open: bool = False,
                    page: Annotated[int, Query(ge=1)] = 1,
                    per_page: Annotated[int, Query(ge=1, le=200)] = 50) -> Any:
    """A lead's or a customer's activities, or your own still to do (``mine_open``: due first)."""
    result = activities.page(session, principal, lead_id=lead_id, profile_id=profile_id, mine_open=mine_open,
                             page_no=page, per_page=per_page)
    return {"items": [schemas.ActivityOut(**activities.out(a)) for a in result.items], "total": result.total,
            "total_is_exact": not result.more}


@router.post("/activities/{activity_id}/done", response_model=schemas.ActivityOut, tags=["activities"])
def complete_activity(activity_id: int, data: schemas.ActivityDone, session: SessionDep,
                      principal: PrincipalDep) -> Any:
    return activities.out(activities.complete(session, principal, activity_id, data.outcome))


# -- opportunities ------------------------------------------------------------------------------------------------
def _opportunity(session: Any, principal: Any, opportunity_id: int) -> Any:
    return opportunities.detail(session, principal, opportunity_id)


@router.post("/leads/{lead_id}/convert", status_code=status.HTTP_201_CREATED, tags=["leads", "opportunities"])
def convert_lead(lead_id: int, data: schemas.LeadConversion, session: SessionDep, principal: PrincipalDep) -> Any:
    """Convert an open lead in one step: its customer joins the company given (an existing account or a new
    one) and a new opportunity opens at the pipeline's first stage, owned by the lead's salesperson."""
    lead, opportunity = opportunities.convert_lead(session, principal, lead_id, data)
    return {"lead": schemas.LeadOut(**service.lead_out(lead)),
            "opportunity": schemas.OpportunityDetail(**_opportunity(session, principal, opportunity.id))}


@router.get("/opportunities", tags=["opportunities"])
def list_opportunities(session: SessionDep, principal: PrincipalDep,
                       status_: Annotated[str | None, Query(alias="status", description="open, won or lost")] = None,
                       pipeline_id: int | None = None, stage: str | None = None, unit_id: int | None = None,
                       owner_id: int | None = None, q: str | None = None, close_from: date | None = None,
                       close_to: date | None = None, sort: str = "expected_close_on", descending: bool = False,
                       page: Annotated[int, Query(ge=1)] = 1,
                       per_page: Annotated[int, Query(ge=1, le=200)] = 50) -> Any:
    """The deals you may see: by status, pipeline, stage (key), unit (and below), owner, expected close
    dates, title or customer (``q``); sorted by expected_close_on, amount, created_at, stage_entered_at,
    probability or title."""
    result = opportunities.page_opportunities(
        session, principal, status=status_, pipeline_id=pipeline_id, stage_key=stage, unit_id=unit_id,
        owner_id=owner_id, q=q, close_from=close_from, close_to=close_to, sort=sort, descending=descending,
        page=page, per_page=per_page)
    keys = opportunities.all_stages(session, principal.org_id)
    return {"items": [schemas.OpportunityOut(**opportunities.opportunity_out(session, o, keys))
                      for o in result.items], "total": result.total, "total_is_exact": not result.more,
            "page": page, "per_page": per_page}


@router.post("/opportunities", response_model=schemas.OpportunityDetail, status_code=status.HTTP_201_CREATED,
             tags=["opportunities"])
def create_opportunity(data: schemas.OpportunityCreate, session: SessionDep, principal: PrincipalDep) -> Any:
    """Open a deal for a customer and/or a company; the stage's required fields must be filled."""
    opportunity = opportunities.create_opportunity(session, principal, data)
    return _opportunity(session, principal, opportunity.id)


@router.get("/opportunities/board", tags=["opportunities"])
def opportunity_board(session: SessionDep, principal: PrincipalDep, pipeline_id: int | None = None,
                      unit_id: int | None = None, owner_id: int | None = None, q: str | None = None,
                      per_stage: Annotated[int, Query(ge=1, le=200)] = 50) -> Any:
    """The kanban: per stage the count, amount and weighted amount of its deals and the first ones."""
    result = opportunities.board(session, principal, pipeline_id=pipeline_id, unit_id=unit_id, owner_id=owner_id,
                                 q=q, per_stage=per_stage)
    keys = opportunities.all_stages(session, principal.org_id)
    return {"pipeline_id": result["pipeline"].id, "columns": [
        {"stage": schemas.StageOut.model_validate(c["stage"]), "count": c["count"], "amount": c["amount"],
         "weighted": c["weighted"],
         "items": [schemas.OpportunityOut(**opportunities.opportunity_out(session, o, keys)) for o in c["cards"]]}
        for c in result["columns"]]}


@router.get("/opportunities/{opportunity_id}", response_model=schemas.OpportunityDetail, tags=["opportunities"])
def get_opportunity(opportunity_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return _opportunity(session, principal, opportunity_id)


@router.patch("/opportunities/{opportunity_id}", response_model=schemas.OpportunityDetail, tags=["opportunities"])
def update_opportunity(opportunity_id: int, data: schemas.OpportunityFields, session: SessionDep,
                       principal: PrincipalDep) -> Any:
    opportunities.update_opportunity(session, principal, opportunity_id, data)
    return _opportunity(session, principal, opportunity_id)


@router.post("/opportunities/{opportunity_id}/stage", response_model=schemas.OpportunityDetail,
             tags=["opportunities"])
def move_opportunity(opportunity_id: int, data: schemas.StageMove, session: SessionDep,
                     principal: PrincipalDep) -> Any:
    """Move to another stage of its pipeline: 422 naming the fields that stage needs, 409 if it is closed."""
    opportunities.move_stage(session, principal, opportunity_id, data)
    return _opportunity(session, principal, opportunity_id)


@router.post("/opportunities/{opportunity_id}/close", response_model=schemas.OpportunityDetail,
             tags=["opportunities"])
def close_opportunity(opportunity_id: int, data: schemas.Close, session: SessionDep, principal: PrincipalDep) -> Any:
    """Won, or lost with the reason."""
    opportunities.close(session, principal, opportunity_id, data)
    return _opportunity(session, principal, opportunity_id)


@router.post("/opportunities/{opportunity_id}/reopen", response_model=schemas.OpportunityDetail,
             tags=["opportunities"])
def reopen_opportunity(opportunity_id: int, session: SessionDep, principal: PrincipalDep,
                       stage: str | None = None) -> Any:
    opportunities.reopen(session, principal, opportunity_id, stage)
    return _opportunity(session, principal, opportunity_id)


@router.post("/opportunities/{opportunity_id}/assign", response_model=schemas.OpportunityDetail,
             tags=["opportunities"])
def assign_opportunity(opportunity_id: int, data: schemas.Assignment, session: SessionDep,
                       principal: PrincipalDep) -> Any:
    opportunities.assign(session, principal, opportunity_id, data)
    return _opportunity(session, principal, opportunity_id)


@router.get("/opportunities/{opportunity_id}/history", response_model=list[schemas.OpportunityChangeOut],
            tags=["opportunities"])
def opportunity_history(opportunity_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    """Every move, newest first, with the seconds the deal stayed in the stage it entered."""
    return opportunities.history(session, principal, opportunity_id)


@router.get("/customers/{profile_id}/opportunities", response_model=list[schemas.OpportunityOut],
            tags=["customers"])
def customer_opportunities(profile_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    keys = opportunities.all_stages(session, principal.org_id)
    return [opportunities.opportunity_out(session, o, keys)
            for o in opportunities.opportunities_of(session, principal, profile_id)]


@router.get("/pipelines", response_model=list[schemas.PipelineOut], tags=["opportunities"])
def list_pipelines(session: SessionDep, principal: PrincipalDep) -> Any:
    return [_pipeline_out(pipeline, stages) for pipeline, stages in pipelines.list_pipelines(session, principal)]


@router.post("/pipelines", response_model=schemas.PipelineOut, status_code=status.HTTP_201_CREATED,
             tags=["opportunities"])
def create_pipeline(data: schemas.PipelineIn, session: SessionDep, principal: PrincipalDep) -> Any:
    pipeline = pipelines.save_pipeline(session, principal, data)
    return _pipeline_out(pipeline, pipelines.stages_of(session, pipeline.id))


@router.put("/pipelines/{pipeline_id}", response_model=schemas.PipelineOut, tags=["opportunities"])
def update_pipeline(pipeline_id: int, data: schemas.PipelineIn, session: SessionDep, principal: PrincipalDep) -> Any:
    """Rename, reorder, add stages; a stage holding deals or in their history cannot be removed (409)."""
    pipeline = pipelines.save_pipeline(session, principal, data, pipeline_id)
    return _pipeline_out(pipeline, pipelines.stages_of(session, pipeline.id))


def _pipeline_out(pipeline: Any, stages: list[Any]) -> dict[str, Any]:
    return {"id": pipeline.id, "name": pipeline.name, "is_default": pipeline.is_default,
            "is_active": pipeline.is_active, "stages": [schemas.StageOut.model_validate(s) for s in stages]}


# -- reports ----------------------------------------------------------------------------------------------------------
def _money(value: Any) -> float:
    return round(float(value or 0), 2)


@router.get("/reports/forecast", tags=["reports"])
def forecast(session: SessionDep, principal: PrincipalDep, unit_id: int | None = None, start: date | None = None,
             months: int = 6, pipeline_id: int | None = None) -> Any:
    """Weighted pipeline (amount × probability of open deals) and open amount by expected close month, and
    the amount won per month, for the unit (yours by default) and every unit below it: ``total`` is the
    subtree's, ``own`` the unit's own deals. Only deals you may see are counted."""
    result = reports.forecast(session, principal, unit_id=unit_id, start=start, months=months,
                              pipeline_id=pipeline_id)

    def figures(values: dict[str, Any]) -> dict[str, Any]:
        return {month: {k: _money(v) if k in ("pipeline", "weighted", "won") else v for k, v in cell.items()}
                for month, cell in values.items()}

    return {"months": result["months"], "units": [
        {"unit_id": r.unit_id, "parent_id": r.parent_id, "name": r.name, "kind": r.kind, "depth": r.depth,
         "total": figures(r.total), "own": figures(r.own)} for r in result["units"]]}


@router.get("/reports/funnel", tags=["reports"])
def funnel(session: SessionDep, principal: PrincipalDep, pipeline_id: int | None = None, unit_id: int | None = None,
           since: date | None = None, until: date | None = None) -> Any:
    """For deals opened in the period (the last year by default): how many reached each stage, the rate from
    stage to stage, won / lost / win rate, days to win and days per stage — per unit, rolled up."""
    result = reports.funnel(session, principal, pipeline_id=pipeline_id, unit_id=unit_id, since=since, until=until)
    return {"pipeline_id": result["pipeline"].id, "stages": [s.key for s in result["stages"]], "units": [
        {"unit_id": r.unit_id, "parent_id": r.parent_id, "name": r.name, "kind": r.kind, "depth": r.depth,
         **reports.funnel_rates(r.total, result["stages"])} for r in result["units"]]}


@router.get("/reports/lead-service-levels", tags=["reports"])
def lead_service_levels(session: SessionDep, principal: PrincipalDep, unit_id: int | None = None,
                        since: date | None = None, until: date | None = None) -> Any:
    """First contacts of the leads assigned in the period, per unit and rolled up: in time, late, still
    waiting past their time (late and waiting_late are the breaches), escalated, hours to first contact."""
    result = reports.lead_service_levels(session, principal, unit_id=unit_id, since=since, until=until)
    return {"units": [{"unit_id": r.unit_id, "parent_id": r.parent_id, "name": r.name, "kind": r.kind,
                       "depth": r.depth, **reports.service_level_rates(r.total)} for r in result["units"]]}


@router.get("/home", tags=["reports"])
def home(session: SessionDep, principal: PrincipalDep) -> Any:
    """The caller's day, as their home page shows it: leads awaiting a first contact (soonest due first, with
    how many there are and how many are late), planned activities overdue and due today, open deals by stage
    of the default pipeline, won this month against the same time last month, and — by role — each
    salesperson of their dealer (``people``) or each unit right below theirs (``units``). A part the caller's
    role does not reach is null."""
    day = workday.my_day(session, principal)

    def plain(value: Any) -> Any:
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return _money(value) if isinstance(value, Decimal) else value

    return {k: plain(v) for k, v in vars(day).items()}
