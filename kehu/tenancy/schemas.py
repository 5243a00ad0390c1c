"""Request and response shapes of the tenancy API (unknown fields are refused, not ignored)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from kehu.core.schemas import Input, omissible

T = TypeVar("T")
UnitKind = Literal["hq", "region", "dealer", "team"]
Depth = Literal["none", "own", "unit", "unit_tree", "org"]


class Strict(Input):
    """Request bodies (see kehu.core.schemas.Input)."""


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class UnitCreate(Strict):
    parent_id: int
    name: str = Field(min_length=1, max_length=200)
    code: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.\-]+$")
    kind: UnitKind
    province: str | None = Field(default=None, max_length=60)
    city: str | None = Field(default=None, max_length=60)


class UnitUpdate(Strict):
    name: str = omissible(min_length=1, max_length=200)
    parent_id: int = omissible()
    province: str | None = Field(default=None, max_length=60)
    city: str | None = Field(default=None, max_length=60)
    is_active: bool = omissible()


class UnitOut(Out):
    id: int
    parent_id: int | None
    name: str
    code: str
    kind: str
    path: str
    depth: int
    province: str | None
    city: str | None
    is_active: bool


class UserCreate(Strict):
    email: EmailStr
    name: str = Field(min_length=1, max_length=100)
    # Length and the list of common passwords are checked by the service (kehu.core.passwords), for every way in.
    password: str = Field(max_length=200, description="At least 10 characters, not a common password.")
    unit_id: int
    roles: list[str] = Field(min_length=1)
    phone: str | None = Field(default=None, max_length=32)
    locale: Literal["zh", "en"] = "zh"

    @field_validator("email")
    @classmethod
    def lower(cls, v: str) -> str:
        return v.lower()


class UserUpdate(Strict):
    name: str = omissible(min_length=1, max_length=100)
    unit_id: int = omissible()
    roles: list[str] = omissible(min_length=1)
    phone: str | None = Field(default=None, max_length=32)
    locale: Literal["zh", "en"] = omissible()
    is_active: bool = omissible()
    password: str = omissible(max_length=200,
                              description="A new password: at least 10 characters, not a common password.")
    current_password: str | None = Field(default=None, max_length=200,
                                         description="Your present password; needed to change your own password.")


class UserOut(BaseModel):
    id: int
    email: str | None
    name: str
    phone: str | None
    unit_id: int
    unit_name: str
    roles: list[str]
    locale: str
    is_active: bool
    last_login_at: datetime | None
    created_at: datetime


class RoleCreate(Strict):
    code: str = Field(min_length=2, max_length=60, pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)
    privileges: dict[str, Depth] = Field(default_factory=dict)


class RoleUpdate(Strict):
    name_zh: str = omissible(min_length=1, max_length=100)
    name_en: str = omissible(min_length=1, max_length=100)
    description: str = omissible(max_length=500)
    privileges: dict[str, Depth] = omissible()


class RoleOut(Out):
    id: int
    code: str
    name_zh: str
    name_en: str
    description: str
    privileges: dict[str, str]
    is_system: bool


class ApiKeyCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    role: str
    unit_id: int | None = None
    expires_at: datetime | None = None


class ApiKeyOut(Out):
    id: int
    name: str
    prefix: str
    unit_id: int
    role_id: int
    created_by_id: int | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret key. Shown once; store it now.")


class ReassignRequest(Strict):
    from_user_id: int
    to_user_id: int
    deactivate_from_user: bool = False


class AuditOut(Out):
    id: int
    ts: datetime
    actor_user_id: int | None
    actor_api_key_id: int | None
    actor_display: str
    action: str
    entity: str
    entity_id: int | None
    unit_id: int | None
    summary: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class JobOut(Out):
    id: int
    kind: str
    status: str
    progress: int
    message: str
    attempts: int
    max_attempts: int
    error: str | None
    payload: dict[str, Any]
    result: dict[str, Any] | None
    run_at: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    created_by_id: int | None


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")
