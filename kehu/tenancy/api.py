"""/api/v1 routes for sign-in, units, users, roles, API keys, reassign, audit and jobs. Thin: parse, call, map."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request, Response, status

from kehu.core.security import create_access_token
from kehu.tenancy import schemas, service
from kehu.tenancy.access import DEPTHS, PRIVILEGES, entities, permissions
from kehu.tenancy.deps import Cursor, Limit, PrincipalDep, SessionDep, SettingsDep, reads_only

router = APIRouter(prefix="/api/v1")


# -- sign-in -----------------------------------------------------------------------------------------
@router.post("/auth/token", response_model=schemas.Token, tags=["auth"])
def issue_token(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(description="The user's e-mail")],
    password: Annotated[str, Form()],
) -> schemas.Token:
    """OAuth2 password grant: exchange e-mail and password for a bearer access token."""
    ip = request.client.host if request.client else ""
    policy = service.LoginPolicy.of(settings)
    try:
        user = service.authenticate(session, email=username, password=password, ip=ip, policy=policy)
    except Exception:
        session.commit()  # keep the failed attempt and its audit: throttling depends on it
        raise
    token = create_access_token(request.app.state.secret_key, user_id=user.id, org_id=user.org_id,
                                token_version=user.token_version, minutes=settings.access_token_minutes)
    return schemas.Token(access_token=token, expires_in=settings.access_token_minutes * 60)


@router.get("/me", tags=["auth"])
@reads_only
def me(principal: PrincipalDep) -> dict[str, Any]:
    return {
        "user_id": principal.user_id, "api_key_id": principal.api_key_id, "org_id": principal.org_id,
        "unit_id": principal.unit_id, "display": principal.display, "roles": list(principal.role_codes),
        "locale": principal.locale, "timezone": principal.timezone,
    }


# -- business units ------------------------------------------------------------------------------------
@router.get("/units", response_model=list[schemas.UnitOut], tags=["units"])
def list_units(session: SessionDep, principal: PrincipalDep) -> Any:
    """Every unit the caller may read, in tree order (parents before children)."""
    return service.list_units(session, principal)


@router.get("/units/tree", tags=["units"])
def units_tree(session: SessionDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    return service.unit_tree(service.list_units(session, principal))


@router.post("/units", response_model=schemas.UnitOut, status_code=status.HTTP_201_CREATED, tags=["units"])
def create_unit(data: schemas.UnitCreate, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.create_unit(session, principal, data=data)


@router.get("/units/{unit_id}", response_model=schemas.UnitOut, tags=["units"])
def get_unit(unit_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.get_unit(session, principal, unit_id)


@router.patch("/units/{unit_id}", response_model=schemas.UnitOut, tags=["units"])
def update_unit(unit_id: int, data: schemas.UnitUpdate, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.update_unit(session, principal, unit_id, data=data)


# -- users ---------------------------------------------------------------------------------------------
@router.get("/users", response_model=schemas.Page[schemas.UserOut], tags=["users"])
def list_users(
    session: SessionDep, principal: PrincipalDep, limit: Limit = 50, cursor: Cursor = None,
    unit_id: int | None = None, q: str | None = None, active: bool | None = None, role: str | None = None,
) -> Any:
    page = service.list_users(session, principal, unit_id=unit_id, q=q, active=active, role=role,
                              limit=limit, cursor=cursor)
    return {"items": [service.user_out(principal, u) for u in page.items], "next_cursor": page.next_cursor}


@router.post("/users", response_model=schemas.UserOut, status_code=status.HTTP_201_CREATED, tags=["users"])
def create_user(data: schemas.UserCreate, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.user_out(principal, service.create_user(session, principal, data=data))


@router.get("/users/{user_id}", response_model=schemas.UserOut, tags=["users"])
def get_user(user_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.user_out(principal, service.get_user(session, principal, user_id))


@router.patch("/users/{user_id}", response_model=schemas.UserOut, tags=["users"])
def update_user(user_id: int, data: schemas.UserUpdate, session: SessionDep, principal: PrincipalDep,
                settings: SettingsDep) -> Any:
    """Your own password changes only with ``current_password``; an administrator sets another user's without."""
    user = service.update_user(session, principal, user_id, data=data, policy=service.LoginPolicy.of(settings))
    return service.user_out(principal, user)


@router.post("/reassignments", response_model=schemas.JobOut, status_code=status.HTTP_202_ACCEPTED, tags=["users"])
def reassign(data: schemas.ReassignRequest, session: SessionDep, principal: PrincipalDep) -> Any:
    """Move every record one user owns to another (staff turnover). Runs as a job; follow it at /jobs/{id}."""
    return service.request_reassign(session, principal, data=data)


# -- roles ---------------------------------------------------------------------------------------------
@router.get("/roles/catalogue", tags=["roles"])
def role_catalogue(principal: PrincipalDep) -> dict[str, Any]:
    """What a role can grant: entities × privileges at a depth, and plain permissions."""
    return {"entities": entities(), "privileges": PRIVILEGES, "depths": DEPTHS, "permissions": permissions()}


@router.get("/roles", response_model=list[schemas.RoleOut], tags=["roles"])
def list_roles(session: SessionDep, principal: PrincipalDep) -> Any:
    return service.list_roles(session, principal)


@router.post("/roles", response_model=schemas.RoleOut, status_code=status.HTTP_201_CREATED, tags=["roles"])
def create_role(data: schemas.RoleCreate, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.create_role(session, principal, data=data)


@router.get("/roles/{role_id}", response_model=schemas.RoleOut, tags=["roles"])
def get_role(role_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.get_role(session, principal, role_id)


@router.patch("/roles/{role_id}", response_model=schemas.RoleOut, tags=["roles"])
def update_role(role_id: int, data: schemas.RoleUpdate, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.update_role(session, principal, role_id, data=data)


@router.delete("/roles/{role_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["roles"])
def delete_role(role_id: int, session: SessionDep, principal: PrincipalDep) -> Response:
    service.delete_role(session, principal, role_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- API keys ------------------------------------------------------------------------------------------
@router.get("/api-keys", response_model=list[schemas.ApiKeyOut], tags=["api keys"])
def list_api_keys(session: SessionDep, principal: PrincipalDep) -> Any:
    return service.list_api_keys(session, principal)


@router.post("/api-keys", response_model=schemas.ApiKeyCreated, status_code=status.HTTP_201_CREATED,
             tags=["api keys"])
def create_api_key(data: schemas.ApiKeyCreate, session: SessionDep, principal: PrincipalDep) -> Any:
    """The response carries the key itself, once. Only a digest is stored."""
    row, key = service.create_api_key(session, principal, data=data)
    return {**schemas.ApiKeyOut.model_validate(row).model_dump(), "key": key}


@router.delete("/api-keys/{key_id}", response_model=schemas.ApiKeyOut, tags=["api keys"])
def revoke_api_key(key_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.revoke_api_key(session, principal, key_id)


# -- audit log and jobs ----------------------------------------------------------------------------------
@router.get("/audit", response_model=schemas.Page[schemas.AuditOut], tags=["audit"])
def list_audit(
    session: SessionDep, principal: PrincipalDep, limit: Limit = 50, cursor: Cursor = None,
    user_id: int | None = None, entity: str | None = None, entity_id: int | None = None,
    action: str | None = None, since: datetime | None = None, until: datetime | None = None,
) -> Any:
    return service.list_audit(session, principal, user_id=user_id, entity=entity, entity_id=entity_id,
                              action=action, since=since, until=until, limit=limit, cursor=cursor)


JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


@router.get("/jobs", response_model=schemas.Page[schemas.JobOut], tags=["jobs"])
def list_jobs(session: SessionDep, principal: PrincipalDep, limit: Limit = 50, cursor: Cursor = None,
              status_: Annotated[JobStatus | None, Query(alias="status")] = None, kind: str | None = None) -> Any:
    return service.list_jobs(session, principal, status=status_, kind=kind, limit=limit, cursor=cursor)


@router.get("/jobs/{job_id}", response_model=schemas.JobOut, tags=["jobs"])
def get_job(job_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.get_job(session, principal, job_id)


@router.post("/jobs/{job_id}/retry", response_model=schemas.JobOut, tags=["jobs"])
def retry_job(job_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.retry_job(session, principal, job_id)


@router.post("/jobs/{job_id}/cancel", response_model=schemas.JobOut, tags=["jobs"])
def cancel_job(job_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.cancel_job(session, principal, job_id)
