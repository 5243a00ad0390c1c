"""HTTP door of segments."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from kehu.segments import schemas, service
from kehu.tenancy.deps import PrincipalDep, SessionDep

router = APIRouter(prefix="/api/v1", tags=["segments"])


@router.post("/segments/preview", response_model=schemas.PreviewOut)
def preview(request: schemas.PreviewRequest, session: SessionDep, principal: PrincipalDep) -> Any:
    """Count (and a sample of) the customers in your scope who meet a condition — the segment builder's
    live preview. The condition language is described by this request's schema; a condition naming an unknown
    field, an operator that does not fit the field, or a value of the wrong type is answered 422 with the
    JSON path of each problem."""
    return service.preview(session, principal, request)
