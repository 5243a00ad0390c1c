"""The journeys API: drafts and their problems, publishing (a new version), pause / resume / stop, enrolling
customers by hand, the enrolled customers, per-node counts and the results against the goal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status

from kehu.core.errors import invalid
from kehu.journeys import approval, schemas, service, simulation, templates
from kehu.journeys import results as journey_results
from kehu.journeys.calendar import calendar as journey_calendar_of
from kehu.tenancy.deps import Cursor, Limit, PrincipalDep, SessionDep
from kehu.tenancy.schemas import Page

router = APIRouter(prefix="/api/v1", tags=["journeys"])
Status = Literal["draft", "live", "paused", "stopped"]
State = Literal["active", "completed", "exited"]


@router.get("/journeys", response_model=Page[schemas.JourneyOut])
def list_journeys(session: SessionDep, principal: PrincipalDep, status_: Annotated[Status | None, Query(
        alias="status")] = None, limit: Limit = 50, cursor: Cursor = None) -> Any:
    page = service.list_journeys(session, principal, status=status_, limit=limit, cursor=cursor)
    return {"items": [service.journey_out(j) for j in page.items], "next_cursor": page.next_cursor}


@router.post("/journeys", response_model=schemas.JourneyOut, status_code=status.HTTP_201_CREATED)
def create_journey(data: schemas.JourneyCreate, session: SessionDep, principal: PrincipalDep) -> Any:
    """A draft in your unit (or ``unit_id``); without a definition it starts as an entry leading to an exit."""
    return service.journey_out(service.create_journey(session, principal, data))


@router.get("/journeys/calendar", response_model=list[schemas.CalendarItem])
def journey_calendar(session: SessionDep, principal: PrincipalDep, start: datetime, end: datetime,
                     unit_id: int | None = None) -> Any:
    """The campaign calendar's journeys between ``start`` and ``end`` (at most 93 days): those running (since when),
    started or stopped then, and the runs their timed triggers will make; of your units or of one unit and those
    below it. Broadcasts: ``GET /broadcasts/calendar``."""
    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))  # a time without a zone: UTC
    if end <= start or end - start > timedelta(days=93):
        raise invalid("end", "after start, and at most 93 days after it")
    return journey_calendar_of(session, principal, start=start, end=end, unit_id=unit_id)


@router.get("/journeys/templates", response_model=list[schemas.OfferedTemplate])
def offered_templates(session: SessionDep, principal: PrincipalDep, unit_id: int | None = None) -> Any:
    """HQ's templates for dealers offered to your unit (or ``unit_id``): live templates of that unit and the units
    above it, with what each leaves open."""
    return templates.offered_templates(session, principal, unit_id)


@router.post("/journeys/templates/{template_id}/instances", response_model=schemas.JourneyOut,
             status_code=status.HTTP_201_CREATED)
def instantiate(template_id: int, data: schemas.InstanceCreate, session: SessionDep, principal: PrincipalDep) -> Any:
    """Your journey made of a template offered to your unit (or ``unit_id``): a draft to adjust where the template
    is open, then publish. Saving a change to a locked part answers 422, each change at its place."""
    return service.journey_out(templates.instantiate(session, principal, template_id, data))


@router.get("/journeys/templates/{template_id}/results", response_model=schemas.TemplateResults)
def template_results(template_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    """Every journey made of the template (of your scope) side by side: customers entered, inside, finished, and
    conversion to the template's goal."""
    return templates.instance_results(session, principal, template_id)


@router.post("/journeys/{journey_id}/rebase", response_model=schemas.JourneyOut)
def rebase(journey_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    """Your journey takes its template's latest version (your settings of the parts still open are kept); publish
    it to run it."""
    return service.journey_out(templates.rebase(session, principal, journey_id))


@router.post("/journeys/import", response_model=schemas.JourneyOut, status_code=status.HTTP_201_CREATED)
def import_journey(data: schemas.JourneyImport, session: SessionDep, principal: PrincipalDep) -> Any:
    """A new draft from a file ``GET /journeys/{id}/export`` gave (rename it in ``name`` to keep both)."""
    return service.journey_out(service.import_journey(session, principal, data))


@router.post("/journeys/{journey_id}/test-run", response_model=schemas.TestRunOut)
def test_run(journey_id: int, data: schemas.TestRun, session: SessionDep, principal: PrincipalDep) -> Any:
    """Walk one customer you may read through the journey as drawn, on a simulated clock, writing nothing: the
    path they would take, when each node would act and each message as they would receive it. ``happened``: the
    waits for an event where the event comes at once (the others time out)."""
    return simulation.test_run(session, principal, journey_id, data)


@router.get("/journeys/{journey_id}/export", response_model=schemas.JourneyExport)
def export_journey(journey_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.export_journey(session, principal, journey_id)


@router.get("/journeys/{journey_id}", response_model=schemas.JourneyOut)
def get_journey(journey_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.journey_out(service.get_journey(session, principal, journey_id))


@router.patch("/journeys/{journey_id}", response_model=schemas.JourneyOut)
def update_journey(journey_id: int, data: schemas.JourneyUpdate, session: SessionDep,
                   principal: PrincipalDep) -> Any:
    """Edit the draft (saved as it is, problems and all); a live journey runs its published version meanwhile."""
    return service.journey_out(service.update_journey(session, principal, journey_id, data))


@router.delete("/journeys/{journey_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_journey(journey_id: int, session: SessionDep, principal: PrincipalDep) -> Response:
    service.delete_journey(session, principal, journey_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/journeys/{journey_id}/problems", response_model=list[schemas.ProblemOut])
def journey_problems(journey_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    """What keeps the draft from going live, each at its place (``definition.nodes[2].template_id``)."""
    return [p.as_dict() for p in service.problems(session, principal, service.get_journey(session, principal,
                                                                                           journey_id))]


@router.post("/journeys/{journey_id}/publish", response_model=schemas.JourneyOut)
def publish(journey_id: int, session: SessionDep, principal: PrincipalDep,
            data: schemas.Publish | None = None) -> Any:
    """The draft becomes the next version and runs (422 with every problem otherwise) — or, where a unit above asks
    to approve this unit's messages, waits for approval (``review_status`` ``submitted``)."""
    return service.journey_out(service.publish_version(session, principal, journey_id, data or schemas.Publish()))


@router.post("/journeys/{journey_id}/review", response_model=schemas.JourneyOut)
def review(journey_id: int, data: schemas.Review, session: SessionDep, principal: PrincipalDep) -> Any:
    """Approve a submitted journey (it goes live as the next version) or reject it with a comment; needs
    ``messages.approve``, and someone other than its author."""
    return service.journey_out(approval.review(session, principal, journey_id, data))


@router.post("/journeys/{journey_id}/withdraw", response_model=schemas.JourneyOut)
def withdraw(journey_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    """Take a submitted journey back, to edit it."""
    return service.journey_out(approval.withdraw(session, principal, journey_id))


@router.post("/journeys/{journey_id}/pause", response_model=schemas.JourneyOut)
def pause(journey_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.journey_out(service.pause(session, principal, journey_id))


@router.post("/journeys/{journey_id}/resume", response_model=schemas.JourneyOut)
def resume(journey_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.journey_out(service.resume(session, principal, journey_id))


@router.post("/journeys/{journey_id}/stop", response_model=schemas.JourneyOut)
def stop(journey_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    """Everyone inside leaves (``journey_stopped``); nobody enters any more."""
    return service.journey_out(service.stop(session, principal, journey_id))


@router.post("/journeys/{journey_id}/enrolments", response_model=schemas.Enrolled)
def enrol(journey_id: int, data: schemas.EnrolRequest, session: SessionDep, principal: PrincipalDep) -> Any:
    """Enrol customers (``profile_ids``) or a segment's members now; the journey's entry rules decide who enters."""
    return {"enrolled": service.enrol_by_hand(session, principal, journey_id, data)}


@router.get("/journeys/{journey_id}/enrolments", response_model=Page[schemas.EnrolmentOut])
def list_enrolments(journey_id: int, session: SessionDep, principal: PrincipalDep,
                    state: State | None = None, node: Annotated[str | None, Query(max_length=30)] = None,
                    limit: Limit = 50, cursor: Cursor = None) -> Any:
    page = journey_results.list_enrolments(session, principal, journey_id, state=state, node=node, limit=limit,
                                   cursor=cursor)
    return {"items": journey_results.enrolments_out(session, principal, list(page.items)),
            "next_cursor": page.next_cursor}


@router.get("/journeys/{journey_id}/report", response_model=schemas.JourneyReport)
def report(journey_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return journey_results.report(session, principal, journey_id)


@router.get("/journeys/{journey_id}/results", response_model=schemas.JourneyResults)
def results(journey_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    """Conversion to the goal, overall and per random split group against the control group (uplift, its 95 %
    interval, p-value, winner)."""
    return journey_results.results(session, principal, journey_id)
