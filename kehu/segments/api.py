"""HTTP door of segments."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from kehu.cdp import exports, fields
from kehu.cdp import service as cdp_service
from kehu.cdp.schemas import ExportOut, ProfileOut
from kehu.segments import schemas, service
from kehu.tenancy.deps import Cursor, Limit, PrincipalDep, SessionDep
from kehu.tenancy.schemas import Page

router = APIRouter(prefix="/api/v1", tags=["segments"])


@router.post("/segments/preview", response_model=schemas.PreviewOut)
def preview(request: schemas.PreviewRequest, session: SessionDep, principal: PrincipalDep) -> Any:
    """Count (and a sample of) the customers in your scope who meet a condition — the segment builder's
    live preview. The condition language is described by this request's schema; a condition naming an unknown
    field, an operator that does not fit the field, or a value of the wrong type is answered 422 with the
    JSON path of each problem."""
    return service.preview(session, principal, request)


@router.get("/segments", response_model=Page[schemas.SegmentOut])
def list_segments(session: SessionDep, principal: PrincipalDep, limit: Limit = 50, cursor: Cursor = None) -> Any:
    return service.list_segments(session, principal, limit=limit, cursor=cursor)


@router.post("/segments", response_model=schemas.SegmentOut, status_code=status.HTTP_201_CREATED)
def create_segment(data: schemas.SegmentCreate, session: SessionDep, principal: PrincipalDep) -> Any:
    """Save a segment; its members are computed by a job (``status`` goes queued → ready)."""
    return service.create_segment(session, principal, data)


@router.get("/segments/{segment_id}", response_model=schemas.SegmentOut)
def get_segment(segment_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.get_segment(session, principal, segment_id)


@router.post("/segments/{segment_id}/refresh", response_model=schemas.SegmentOut,
             status_code=status.HTTP_202_ACCEPTED)
def refresh_segment(segment_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.request_refresh(session, principal, segment_id)


@router.delete("/segments/{segment_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_segment(segment_id: int, session: SessionDep, principal: PrincipalDep) -> Response:
    service.delete_segment(session, principal, segment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/segments/{segment_id}/members", response_model=Page[ProfileOut])
def segment_members(segment_id: int, session: SessionDep, principal: PrincipalDep, limit: Limit = 50,
                    cursor: Cursor = None) -> Any:
    """The members you may see, with cursor paging (a dealer reading a group-wide segment sees its own)."""
    page = service.members(session, principal, segment_id, limit=limit, cursor=cursor)
    defined = fields.definitions(session, principal.org_id)
    return {"items": [cdp_service.profile_out(principal, p, defined) for p in page.items],
            "next_cursor": page.next_cursor}


@router.get("/segments/{segment_id}/changes", response_model=Page[schemas.SegmentChangeOut])
def segment_changes(segment_id: int, session: SessionDep, principal: PrincipalDep, limit: Limit = 50,
                    cursor: Cursor = None) -> Any:
    """Who entered and who left at each refresh."""
    return service.changes(session, principal, segment_id, limit=limit, cursor=cursor)


@router.get("/customers/{profile_id}/segments", response_model=list[schemas.SegmentBrief], tags=["customers"])
def customer_segments(profile_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    """The segments this customer is in (those you may see), with when they joined."""
    return service.segments_of(session, principal, profile_id)


@router.post("/segments/{segment_id}/exports", response_model=ExportOut, status_code=status.HTTP_202_ACCEPTED)
def export_segment(segment_id: int, data: schemas.SegmentExportRequest, session: SessionDep,
                   principal: PrincipalDep) -> Any:
    """Export the members you may export to CSV or XLSX, as a job (PII masked without pii.read). Poll
    ``GET /exports/{id}``, then download from ``/exports/{id}/download``."""
    row = service.export_segment(session, principal, segment_id, format=data.format)
    return exports.export_state(session, row)
