"""HTTP door of segments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Response, UploadFile, status

from kehu.cdp import exports
from kehu.cdp.schemas import ExportOut, ProfileOut
from kehu.cdp.views import CustomerView
from kehu.segments import lists, rfm, schemas, service, tags
from kehu.segments import preview as previews
from kehu.tenancy.deps import Cursor, Limit, PrincipalDep, SessionDep
from kehu.tenancy.schemas import Page

router = APIRouter(prefix="/api/v1", tags=["segments"])


@router.post("/segments/preview", response_model=schemas.PreviewOut)
def preview(request: schemas.PreviewRequest, session: SessionDep, principal: PrincipalDep) -> Any:
    """Count (and a sample of) the customers in your scope who meet a condition — the segment builder's
    live preview. The condition language is described by this request's schema; a condition naming an unknown
    field, an operator that does not fit the field, or a value of the wrong type is answered 422 with the
    JSON path of each problem."""
    return previews.preview(session, principal, request)


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


@router.patch("/segments/{segment_id}", response_model=schemas.SegmentOut)
def update_segment(segment_id: int, data: schemas.SegmentUpdate, session: SessionDep, principal: PrincipalDep) -> Any:
    """Rename, describe, or give a dynamic segment a new condition (which starts a refresh; a condition that
    would make segments refer to each other in a cycle is refused with the path of the reference)."""
    return service.update_segment(session, principal, segment_id, data)


@router.post("/segments/{segment_id}/refresh", response_model=schemas.SegmentOut,
             status_code=status.HTTP_202_ACCEPTED)
def refresh_segment(segment_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.request_refresh(session, principal, segment_id)


@router.delete("/segments/{segment_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_segment(segment_id: int, session: SessionDep, principal: PrincipalDep) -> Response:
    service.delete_segment(session, principal, segment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/segments/{segment_id}/members")
def add_members(segment_id: int, data: schemas.CustomerSelection, session: SessionDep, principal: PrincipalDep) -> Any:
    """Add hand-picked customers (those you may read) to a static segment; those already in stay as they are."""
    return {"added": service.change_members(session, principal, segment_id, data.profile_ids)}


@router.post("/segments/{segment_id}/members/remove")
def remove_members(segment_id: int, data: schemas.CustomerSelection, session: SessionDep,
                   principal: PrincipalDep) -> Any:
    """Take customers out of a static segment (recorded as having left)."""
    return {"removed": service.change_members(session, principal, segment_id, data.profile_ids, remove=True)}


@router.post("/segments/{segment_id}/members/upload", response_model=schemas.ListUploadOut)
def upload_members(segment_id: int, session: SessionDep, principal: PrincipalDep,
                   file: Annotated[UploadFile, File(description="CSV (UTF-8 or GBK) or XLSX, first row = headers")],
                   match_by: Annotated[str, Form(description="customer_id, or an identity kind: mobile, email, "
                                                             "wechat_openid, vin …")] = "mobile",
                   column: Annotated[str | None, Form(description="the column holding the values (found by its "
                                                                  "name when left out)")] = None) -> Any:
    """Add the customers a list names to a static segment (up to 200,000 rows). Every row is accounted for:
    added, already a member, or rejected with its row number and reason."""
    return lists.add_from_file(session, principal, segment_id, filename=file.filename or "list.csv",
                               content=file.file.read(), match_by=match_by, column=column or None)


@router.get("/segments/{segment_id}/members", response_model=Page[ProfileOut])
def segment_members(segment_id: int, session: SessionDep, principal: PrincipalDep, limit: Limit = 50,
                    cursor: Cursor = None) -> Any:
    """The members you may see, with cursor paging (a dealer reading a group-wide segment sees its own)."""
    page = service.members(session, principal, segment_id, limit=limit, cursor=cursor)
    view = CustomerView.of(session, principal)
    return {"items": [view.profile(p) for p in page.items],
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


# -- tags -----------------------------------------------------------------------------------------------------
@router.get("/tag-groups", response_model=list[schemas.TagGroupOut], tags=["tags"])
def list_tag_groups(session: SessionDep, principal: PrincipalDep) -> Any:
    return tags.list_groups(session, principal)


@router.post("/tag-groups", response_model=schemas.TagGroupOut, status_code=status.HTTP_201_CREATED, tags=["tags"])
def create_tag_group(data: schemas.TagGroupCreate, session: SessionDep, principal: PrincipalDep) -> Any:
    return tags.create_group(session, principal, data.name)


@router.get("/tags", response_model=list[schemas.TagOut], tags=["tags"])
def list_tags(session: SessionDep, principal: PrincipalDep) -> Any:
    return [_tag_out(tag, count) for tag, count in tags.list_tags(session, principal)]


@router.post("/tags", response_model=schemas.TagOut, status_code=status.HTTP_201_CREATED, tags=["tags"])
def create_tag(data: schemas.TagCreate, session: SessionDep, principal: PrincipalDep) -> Any:
    """A tag to put on customers by hand, or (with ``segment_id``) one that is on exactly a segment's members."""
    tag = tags.create_tag(session, principal, data)
    [(_, carriers)] = tags.list_tags(session, principal, tag_id=tag.id)
    return _tag_out(tag, carriers)


@router.delete("/tags/{tag_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["tags"])
def delete_tag(tag_id: int, session: SessionDep, principal: PrincipalDep) -> Response:
    tags.delete_tag(session, principal, tag_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/tags/{tag_id}/customers", tags=["tags"])
def tag_customers(tag_id: int, data: schemas.CustomerSelection, session: SessionDep, principal: PrincipalDep) -> Any:
    """Put the tag on customers you may update (those already tagged stay as they are)."""
    return {"tagged": tags.tag_customers(session, principal, tag_id, data.profile_ids)}


@router.post("/tags/{tag_id}/customers/remove", tags=["tags"])
def untag_customers(tag_id: int, data: schemas.CustomerSelection, session: SessionDep, principal: PrincipalDep) -> Any:
    return {"untagged": tags.tag_customers(session, principal, tag_id, data.profile_ids, remove=True)}


@router.post("/tags/{tag_id}/customers/upload", response_model=schemas.ListUploadOut, tags=["tags"])
def tag_from_list(tag_id: int, session: SessionDep, principal: PrincipalDep,
                  file: Annotated[UploadFile, File(description="CSV (UTF-8 or GBK) or XLSX, first row = headers")],
                  match_by: Annotated[str, Form(description="customer_id, or an identity kind")] = "mobile",
                  column: Annotated[str | None, Form(description="the column holding the values")] = None) -> Any:
    """Put a tag on the customers a list names (those you may update). Every row is accounted for: tagged,
    already tagged, or rejected with its row number and reason."""
    return lists.tag_from_file(session, principal, tag_id, filename=file.filename or "list.csv",
                               content=file.file.read(), match_by=match_by, column=column or None)


@router.get("/customers/{profile_id}/tags", response_model=list[schemas.CustomerTagOut], tags=["customers"])
def customer_tags(profile_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    carried = tags.tags_of(session, principal, profile_id)
    return [schemas.CustomerTagOut(id=tag.id, name=tag.name, colour=tag.colour, origin=mark.origin,
                                   added_at=mark.added_at) for tag, mark in carried]


def _tag_out(tag: Any, count: int) -> schemas.TagOut:
    return schemas.TagOut(id=tag.id, name=tag.name, group_id=tag.group_id, colour=tag.colour,
                          segment_id=tag.segment_id, customers=count)


# -- RFM ------------------------------------------------------------------------------------------------------
@router.get("/rfm", response_model=schemas.RfmModelOut, tags=["rfm"])
def get_rfm(session: SessionDep, principal: PrincipalDep) -> Any:
    return rfm.get_model(session, principal)


@router.put("/rfm", response_model=schemas.RfmModelOut, tags=["rfm"])
def update_rfm(data: schemas.RfmModelIn, session: SessionDep, principal: PrincipalDep) -> Any:
    return rfm.update_model(session, principal, data.model_dump(exclude_none=True))


@router.post("/rfm/run", response_model=schemas.RfmModelOut, status_code=status.HTTP_202_ACCEPTED, tags=["rfm"])
def run_rfm(session: SessionDep, principal: PrincipalDep) -> Any:
    """Score every customer with orders (a job): scores, classes and the RFM tags are replaced together."""
    return rfm.request_run(session, principal)


@router.get("/rfm/distribution", response_model=schemas.RfmDistributionOut, tags=["rfm"])
def rfm_distribution(session: SessionDep, principal: PrincipalDep) -> Any:
    return rfm.distribution(session, principal)
