"""Business rules of tenancy: organisations, units, users, roles, API keys, sign-in, reassign, audit, jobs.

Over 800 lines: to split next are sign-in and its throttling (authenticate, login_throttles) into
tenancy/sign_in.py, and jobs/audit listings; they share the principal and the scope filter with the rest.
"""

from __future__ import annotations

import functools
import typing
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, lazyload

from kehu.core import audit, jobs
from kehu.core.audit import AuditRecord, changed, snapshot
from kehu.core.db import owned_models, utcnow
from kehu.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
    invalid,
)
from kehu.core.jobs import Job
from kehu.core.pagination import OffsetPage, Page, keyset_page, offset_page
from kehu.core.passwords import check_new_password
from kehu.core.security import (
    api_key_matches,
    burn_password_check,
    generate_api_key,
    hash_password,
    needs_rehash,
    parse_api_key_prefix,
    verify_password,
)
from kehu.core.timeutil import aware, zone
from kehu.tenancy import schemas
from kehu.tenancy.access import (
    OWNED_ENTITIES,
    PRIVILEGES,
    Place,
    Principal,
    Ref,
    check_references,
    entities,
    get_scoped,
    is_root_path,
    merge_privileges,
    permissions,
    rank,
    require_row,
    scope,
    units_under,
)
from kehu.tenancy.masking import masked
from kehu.tenancy.models import (
    ApiKey,
    BusinessUnit,
    LoginAttempt,
    LoginThrottle,
    Organization,
    Role,
    User,
    user_roles,
)
from kehu.tenancy.roles import system_roles

KIND_RANK = {"hq": 0, "region": 1, "dealer": 2, "team": 3}
REASSIGN_JOB = "tenancy.reassign"


# -- organisations ----------------------------------------------------------------------------------
def create_organization(session: Session, *, name: str, slug: str, timezone: str = "Asia/Shanghai",
                        hq_name: str | None = None, locale: str = "zh") -> Organization:
    """A new tenant with its headquarters unit and the system roles. Platform-level: no principal."""
    zone(timezone)
    if session.scalar(select(Organization.id).where(Organization.slug == slug)) is not None:
        raise Conflict(f"An organisation with slug {slug!r} exists.", errors=[FieldError("slug", "taken", "unique")])
    org = Organization(name=name, slug=slug, timezone=timezone, default_locale=locale)
    session.add(org)
    session.flush()
    hq = BusinessUnit(org_id=org.id, name=hq_name or name, code="HQ", kind="hq", depth=0)
    session.add(hq)
    session.flush()
    hq.path = f"/{hq.id}/"
    for code, spec in system_roles().items():
        session.add(Role(org_id=org.id, code=code, name_zh=spec["zh"], name_en=spec["en"],
                         description=spec["description"],
                         privileges=dict(typing.cast(dict[str, str], spec["privileges"])), is_system=True))
    session.flush()
    audit.record(session, None, org_id=org.id, unit_id=hq.id, action="create", entity="organizations",
                 entity_id=org.id, after=snapshot(org), summary=f"Organisation {name} created")
    return org


def get_organization_by_slug(session: Session, slug: str) -> Organization:
    org = session.scalar(select(Organization).where(Organization.slug == slug))
    if org is None:
        raise NotFound(f"No organisation with slug {slug!r}.")
    return org


def root_unit(session: Session, org_id: int) -> BusinessUnit:
    unit = session.scalar(select(BusinessUnit).where(BusinessUnit.org_id == org_id, BusinessUnit.parent_id.is_(None)))
    if unit is None:
        raise NotFound("The organisation has no headquarters unit.")
    return unit


def system_principal(session: Session, org_id: int) -> Principal:
    hq = root_unit(session, org_id)
    return Principal.system(org_id, hq.id, hq.path)


# -- business units ---------------------------------------------------------------------------------
def list_units(session: Session, principal: Principal) -> list[BusinessUnit]:
    principal.require("units", "read")
    stmt = select(BusinessUnit).where(scope(principal, BusinessUnit, "read")).order_by(BusinessUnit.path)
    return list(session.scalars(stmt))


def get_unit(session: Session, principal: Principal, unit_id: int) -> BusinessUnit:
    return get_scoped(session, principal, BusinessUnit, unit_id)


def _placed_at(session: Session, principal: Principal, unit_id: int, field: str, entity: str, privilege: str,
               owner_id: int | None = None) -> BusinessUnit:
    """A unit given for a row of ``entity``: the organisation's (else unknown) and one the principal may
    ``privilege`` rows at (else out of scope)."""
    unit: BusinessUnit = check_references(session, principal, place=Place(
        entity, privilege, unit_id, owner_id, unit_field=field, owner_at_unit=False))[field]
    return unit


def _check_kind(parent: BusinessUnit, kind: str, field: str = "kind") -> None:
    if kind == "hq":
        raise invalid(field, "there is exactly one headquarters unit, the root of the tree")
    if KIND_RANK[kind] < KIND_RANK[parent.kind]:
        raise invalid(field, f"a {kind} cannot sit under a {parent.kind}")


def create_unit(session: Session, principal: Principal, *, data: schemas.UnitCreate) -> BusinessUnit:
    parent = _placed_at(session, principal, data.parent_id, "parent_id", "units", "create")
    _check_kind(parent, data.kind)
    _ensure_code_free(session, principal.org_id, data.code)
    unit = BusinessUnit(org_id=principal.org_id, parent_id=parent.id, name=data.name, code=data.code,
                        kind=data.kind, province=data.province, city=data.city, depth=parent.depth + 1)
    session.add(unit)
    session.flush()
    unit.path = f"{parent.path}{unit.id}/"
    session.flush()
    audit.record(session, principal, action="create", entity="units", entity_id=unit.id, unit_id=unit.id,
                 after=snapshot(unit), summary=f"Unit {unit.name} ({unit.code}) created")
    return unit


def _ensure_code_free(session: Session, org_id: int, code: str) -> None:
    if session.scalar(select(BusinessUnit.id).where(BusinessUnit.org_id == org_id, BusinessUnit.code == code)):
        raise Conflict(f"A unit with code {code!r} exists.", errors=[FieldError("code", "already used", "unique")])


def update_unit(session: Session, principal: Principal, unit_id: int, *, data: schemas.UnitUpdate) -> BusinessUnit:
    unit = get_unit(session, principal, unit_id)
    require_row(session, principal, "units", "update", unit_id=unit.id)
    before = snapshot(unit)
    changes = data.model_dump(exclude_unset=True)
    if "parent_id" in changes and changes["parent_id"] != unit.parent_id:
        _move_unit(session, principal, unit, changes.pop("parent_id"))
    else:
        changes.pop("parent_id", None)
    if changes.get("is_active") is False and unit.is_active:
        if unit.parent_id is None:
            raise invalid("is_active", "the headquarters unit cannot be deactivated")
        active_users = session.scalar(
            select(func.count()).select_from(User).join(BusinessUnit, User.unit_id == BusinessUnit.id)
            .where(User.is_active, BusinessUnit.path.startswith(unit.path, autoescape=True))
        )
        if active_users:
            raise Conflict(f"{active_users} active users still work in this unit or below; move or deactivate "
                           "them first.", errors=[FieldError("is_active", "unit has active users", "in_use")])
    for key, value in changes.items():
        setattr(unit, key, value)
    session.flush()
    old, new = changed(before, snapshot(unit))
    audit.record(session, principal, action="update", entity="units", entity_id=unit.id, unit_id=unit.id,
                 before=old, after=new, summary=f"Unit {unit.name} updated")
    return unit


def _move_unit(session: Session, principal: Principal, unit: BusinessUnit, parent_id: int | None) -> None:
    if unit.parent_id is None or parent_id is None:
        raise invalid("parent_id", "the headquarters unit stays the root of the tree")
    parent = _placed_at(session, principal, parent_id, "parent_id", "units", "update")
    if parent.path.startswith(unit.path):
        raise invalid("parent_id", "a unit cannot move under itself or its own sub-units")
    _check_kind(parent, unit.kind, "parent_id")
    old_path, new_path = unit.path, f"{parent.path}{unit.id}/"
    shift = parent.depth + 1 - unit.depth
    # The whole subtree in one statement: rewrite the path prefix and shift the depth.
    session.execute(
        update(BusinessUnit)
        .where(BusinessUnit.org_id == unit.org_id, BusinessUnit.path.startswith(old_path, autoescape=True))
        .values(path=new_path + func.substr(BusinessUnit.path, len(old_path) + 1),
                depth=BusinessUnit.depth + shift)
        .execution_options(synchronize_session=False)
    )
    unit.parent_id = parent.id
    session.flush()
    session.expire_all()


def unit_tree(units: list[BusinessUnit]) -> list[dict[str, Any]]:
    """Nested nodes for a tree view, from a path-ordered list (parents outside the list become roots)."""
    nodes: dict[int, dict[str, Any]] = {}
    roots: list[dict[str, Any]] = []
    for unit in units:
        node = {"id": unit.id, "label": unit.name, "code": unit.code, "kind": unit.kind,
                "active": unit.is_active, "children": []}
        nodes[unit.id] = node
        parent = nodes.get(unit.parent_id) if unit.parent_id else None
        (parent["children"] if parent else roots).append(node)

    def order(siblings: list[dict[str, Any]]) -> None:  # regions before teams, then by code
        siblings.sort(key=lambda n: (KIND_RANK[n["kind"]], n["code"]))
        for sibling in siblings:
            order(sibling["children"])

    order(roots)
    return roots


# -- roles -----------------------------------------------------------------------------------------
def list_roles(session: Session, principal: Principal) -> list[Role]:
    principal.require("roles", "read")
    return list(session.scalars(select(Role).where(scope(principal, Role)).order_by(Role.is_system.desc(), Role.id)))


def get_role(session: Session, principal: Principal, role_id: int) -> Role:
    return get_scoped(session, principal, Role, role_id)


def _validate_privileges(privileges: dict[str, str]) -> dict[str, str]:
    errors = []
    for key in privileges:
        entity, _, privilege = key.rpartition(".")
        if key in permissions() or (entity in entities() and privilege in PRIVILEGES):
            continue
        errors.append(FieldError(f"privileges.{key}", "unknown entity, privilege or permission", "unknown"))
    if errors:
        raise ValidationFailed("Unknown privileges: " + ", ".join(e.field for e in errors), errors=errors)
    return {k: v for k, v in privileges.items() if v != "none"}


def _check_can_grant(principal: Principal, privileges: dict[str, str]) -> None:
    """Nobody hands out more than they hold (a dealer manager cannot mint an administrator)."""
    if principal.is_system:
        return
    too_wide = [k for k, d in privileges.items() if rank(d) > rank(principal.privileges.get(k, "none"))]
    if too_wide:
        raise Forbidden("You cannot grant privileges wider than your own: " + ", ".join(sorted(too_wide)[:10]))


def create_role(session: Session, principal: Principal, *, data: schemas.RoleCreate) -> Role:
    principal.require("roles", "create")
    privileges = _validate_privileges(dict(data.privileges))
    _check_can_grant(principal, privileges)
    if session.scalar(select(Role.id).where(Role.org_id == principal.org_id, Role.code == data.code)):
        raise Conflict(f"A role with code {data.code!r} exists.", errors=[FieldError("code", "already used", "unique")])
    role = Role(org_id=principal.org_id, code=data.code, name_zh=data.name_zh, name_en=data.name_en,
                description=data.description, privileges=privileges, is_system=False)
    session.add(role)
    session.flush()
    audit.record(session, principal, action="create", entity="roles", entity_id=role.id, after=snapshot(role),
                 summary=f"Role {role.code} created")
    return role


def update_role(session: Session, principal: Principal, role_id: int, *, data: schemas.RoleUpdate) -> Role:
    role = get_role(session, principal, role_id)
    principal.require("roles", "update")
    if role.code == "org_admin":
        raise Forbidden("The administrator role cannot be changed; it keeps the organisation manageable.")
    before = snapshot(role)
    changes = data.model_dump(exclude_unset=True)
    if "privileges" in changes:
        changes["privileges"] = _validate_privileges(changes["privileges"])
        _check_can_grant(principal, changes["privileges"])
    for key, value in changes.items():
        setattr(role, key, value)
    session.flush()
    old, new = changed(before, snapshot(role))
    audit.record(session, principal, action="update", entity="roles", entity_id=role.id, before=old, after=new,
                 summary=f"Role {role.code} updated")
    return role


def delete_role(session: Session, principal: Principal, role_id: int) -> None:
    role = get_role(session, principal, role_id)
    principal.require("roles", "delete")
    if role.is_system:
        raise Conflict("System roles cannot be deleted; edit their privileges instead.")
    holders = session.scalar(select(func.count()).select_from(User).where(User.roles.any(Role.id == role.id)))
    keys = session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.role_id == role.id,
                                                                         ApiKey.revoked_at.is_(None)))
    if holders or keys:
        raise Conflict(f"The role is held by {holders} users and {keys} API keys.")
    audit.record(session, principal, action="delete", entity="roles", entity_id=role.id, before=snapshot(role),
                 summary=f"Role {role.code} deleted")
    session.delete(role)
    session.flush()


def _roles_by_code(session: Session, principal: Principal, codes: list[str], field: str = "roles") -> list[Role]:
    roles = list(session.scalars(select(Role).where(Role.org_id == principal.org_id, Role.code.in_(codes))))
    missing = sorted(set(codes) - {r.code for r in roles})
    if missing:
        raise invalid(field, f"unknown roles: {', '.join(missing)}", "unknown")
    return roles


# -- users -----------------------------------------------------------------------------------------
USER_SORTS = {"name": User.name, "email": User.email, "created_at": User.created_at,
              "last_login_at": User.last_login_at}


def _user_filters(principal: Principal, *, unit_id: int | None, q: str | None, active: bool | None,
                  role: str | None, include_subunits: bool = True) -> list[Any]:
    filters: list[Any] = [scope(principal, User, "read")]
    if unit_id is not None:
        if include_subunits:
            sub = select(BusinessUnit.path).where(BusinessUnit.id == unit_id).scalar_subquery()
            filters.append(User.unit_id.in_(select(BusinessUnit.id).where(BusinessUnit.path.startswith(sub))))
        else:
            filters.append(User.unit_id == unit_id)
    if q:
        like = f"%{q.strip().lower()}%"
        # Without pii.read an e-mail is shown masked, so it is no search key either: a substring match would
        # spell out a hidden address letter by letter.
        filters.append(or_(func.lower(User.name).like(like), User.email.like(like)) if principal.has("pii.read")
                       else func.lower(User.name).like(like))
    if active is not None:
        filters.append(User.is_active.is_(active))
    if role:
        filters.append(User.roles.any(Role.code == role))
    return filters


def list_users(session: Session, principal: Principal, *, unit_id: int | None = None, q: str | None = None,
               active: bool | None = None, role: str | None = None, limit: int = 50,
               cursor: str | None = None) -> Page[User]:
    principal.require("users", "read")
    stmt = select(User).where(*_user_filters(principal, unit_id=unit_id, q=q, active=active, role=role))
    return keyset_page(session, stmt, id_column=User.id, limit=limit, cursor=cursor, descending=False)


def page_users(session: Session, principal: Principal, *, unit_id: int | None = None, q: str | None = None,
               active: bool | None = None, role: str | None = None, sort: str = "name", descending: bool = False,
               page: int = 1, per_page: int = 20) -> OffsetPage[User]:
    principal.require("users", "read")
    column = USER_SORTS.get(sort, User.name)
    if column is User.email and not principal.has("pii.read"):
        column = User.name  # the order of hidden addresses would tell them apart
    stmt = select(User).where(*_user_filters(principal, unit_id=unit_id, q=q, active=active, role=role))
    order = [column.desc() if descending else column.asc(), User.id]
    return offset_page(session, stmt, order_by=order, page=page, per_page=per_page)


def get_user(session: Session, principal: Principal, user_id: int) -> User:
    return get_scoped(session, principal, User, user_id)


def user_out(principal: Principal, user: User) -> schemas.UserOut:
    return schemas.UserOut(
        id=user.id, email=masked(principal, User.__pii__["email"], user.email), name=user.name,
        phone=masked(principal, User.__pii__["phone"], user.phone),
        unit_id=user.unit_id, unit_name=user.unit.name, roles=sorted(r.code for r in user.roles),
        locale=user.locale, is_active=user.is_active, last_login_at=user.last_login_at, created_at=user.created_at,
    )


def create_user(session: Session, principal: Principal, *, data: schemas.UserCreate) -> User:
    unit = _placed_at(session, principal, data.unit_id, "unit_id", "users", "create")
    roles = _roles_by_code(session, principal, data.roles)
    _check_can_grant(principal, merge_privileges(r.privileges for r in roles))
    email = data.email.lower()
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("A user with that e-mail exists.", errors=[FieldError("email", "already used", "unique")])
    check_new_password(data.password, email=email)
    user = User(org_id=principal.org_id, unit_id=unit.id, email=email, name=data.name, phone=data.phone,
                password_hash=hash_password(data.password), locale=data.locale, roles=roles)
    session.add(user)
    session.flush()
    audit.record(session, principal, action="create", entity="users", entity_id=user.id, unit_id=unit.id,
                 after={**snapshot(user), "roles": sorted(r.code for r in roles)},
                 summary=f"User {user.name} created")
    return user


def update_user(session: Session, principal: Principal, user_id: int, *, data: schemas.UserUpdate,
                policy: LoginPolicy | None = None) -> User:
    user = get_user(session, principal, user_id)
    is_self = user.id == principal.user_id
    changes = data.model_dump(exclude_unset=True)
    current_password = changes.pop("current_password", None)
    if is_self and "password" in changes:  # before anything changes
        _check_current_password(session, user, current_password, policy or LoginPolicy())
    self_service = {"name", "phone", "locale", "password"}
    if not (is_self and set(changes) <= self_service):
        require_row(session, principal, "users", "update", unit_id=user.unit_id, owner_id=user.id)
    before = {**snapshot(user), "roles": sorted(r.code for r in user.roles)}
    if "unit_id" in changes:
        unit = _placed_at(session, principal, changes.pop("unit_id"), "unit_id", "users", "update")
        user.unit_id = unit.id
    if "roles" in changes:
        roles = _roles_by_code(session, principal, changes.pop("roles"))
        _check_can_grant(principal, merge_privileges(r.privileges for r in roles))
        if is_self and "org_admin" in before["roles"] and "org_admin" not in {r.code for r in roles}:
            raise Conflict("You cannot remove your own administrator role; ask another administrator.")
        user.roles = roles
        user.token_version += 1
    if "password" in changes:
        new_password = changes.pop("password") or ""
        check_new_password(new_password, email=user.email)
        user.password_hash = hash_password(new_password)
        user.token_version += 1  # signs out every other session
    if changes.get("is_active") is False and user.is_active:
        if is_self:
            raise Conflict("You cannot deactivate yourself.")
        user.token_version += 1
    for key, value in changes.items():
        setattr(user, key, value)
    session.flush()
    session.refresh(user)
    old, new = changed(before, {**snapshot(user), "roles": sorted(r.code for r in user.roles)})
    old.pop("token_version", None)
    new.pop("token_version", None)
    audit.record(session, principal, action="update", entity="users", entity_id=user.id, unit_id=user.unit_id,
                 before=old, after=new, summary=f"User {user.name} updated")
    return user


def _check_current_password(session: Session, user: User, current: str | None, policy: LoginPolicy) -> None:
    """Your own password changes only with the present one (a stolen session or an unlocked screen must not be
    enough to take the account over); an administrator setting another user's does not need it. Wrong guesses
    count as failed sign-ins of the account, so this is no way around the sign-in throttle."""
    if not current:
        raise invalid("current_password", "your present password is needed to change it", "required")
    now = utcnow()
    key = _throttle_keys(user.email, "")
    wait, _rows = _wait_left(session, [key[0][0]], now)
    if wait:
        raise TooManyRequests(f"Too many wrong passwords; try again in {wait} seconds.", extra={"retry_after": wait})
    if not verify_password(user.password_hash, current):
        # counted in a transaction of its own: the request's is rolled back with the error
        with Session(session.get_bind()) as own, own.begin():
            _count_failure(own, key, policy, now)
            _audit_sign_in(own, own.get(User, user.id), action="login_failed",
                           summary="Wrong present password given to change it")
        raise invalid("current_password", "does not match your present password", "incorrect")


# -- sign-in and principals ------------------------------------------------------------------------
@dataclass(frozen=True)
class LoginPolicy:
    free_failures: int = 5  # per account
    free_failures_per_address: int = 20
    max_wait_seconds: int = 900
    window_minutes: int = 15

    @classmethod
    def of(cls, settings: Any) -> LoginPolicy:
        return cls(settings.login_free_failures, settings.login_free_failures_per_address,
                   settings.login_max_wait_seconds, settings.login_window_minutes)


def _throttle_keys(email: str, ip: str) -> list[tuple[str, int]]:
    return [(f"account:{email}"[:300], 0)] + ([(f"address:{ip}"[:300], 1)] if ip else [])


def _wait_left(session: Session, keys: list[str], now: datetime) -> tuple[int, list[LoginThrottle]]:
    """Seconds before another try may be made (0: now), and the rows that make it wait."""
    rows = list(session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys))))
    waiting = [r for r in rows if r.blocked_until is not None and r.blocked_until > now]
    if not waiting:
        return 0, []
    left = max((r.blocked_until - now).total_seconds() for r in waiting if r.blocked_until)
    return max(1, int(left + 0.999)), waiting


def _count_failure(session: Session, keys: list[tuple[str, int]], policy: LoginPolicy, now: datetime) -> None:
    """One more failure on each key; past the free ones the next try waits 1 s, 2 s, 4 s … up to the cap. Rows are
    locked (PostgreSQL) so two servers counting at once both count."""
    window = timedelta(minutes=policy.window_minutes)
    for key, kind in keys:
        free = policy.free_failures if kind == 0 else policy.free_failures_per_address
        row = session.scalar(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update())
        if row is None:
            try:
                with session.begin_nested():
                    session.add(LoginThrottle(key=key, failures=0, last_failure_at=now))
            except IntegrityError:  # another server made it meanwhile
                pass
            row = session.scalar(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update())
            assert row is not None
        quiet_since = max(row.last_failure_at, row.blocked_until or row.last_failure_at)
        if now - quiet_since > window:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        over = row.failures - free
        if over >= 0:
            row.blocked_until = now + timedelta(seconds=min(policy.max_wait_seconds, 2 ** min(over, 30)))
    session.flush()


def _audit_sign_in(session: Session, user: User | None, *, action: str, summary: str) -> None:
    """Failed and refused sign-ins go to the audit of the account's organisation (an unknown e-mail has none: its
    attempts stay in login_attempts)."""
    if user is None:
        return
    audit.record(session, None, org_id=user.org_id, unit_id=user.unit_id, action=action, entity="users",
                 entity_id=user.id, summary=summary)


def authenticate(session: Session, *, email: str, password: str, ip: str = "",
                 policy: LoginPolicy = LoginPolicy()) -> User:
    """Check a password. Each attempt is recorded (the caller commits even on failure, so the count survives).
    Failures are counted per account and per client address; past the free ones a try must wait, doubling each
    time (429 with ``retry_after``). A try made too soon is refused without looking at the password, and the right
    password after the wait signs in: throttling slows guessing without letting anyone lock a user out."""
    email = (email or "").strip().lower()
    ip = (ip or "")[:64]
    now = utcnow()
    keys = _throttle_keys(email, ip)
    wait, waiting = _wait_left(session, [k for k, _ in keys], now)
    if wait:
        # Noted in the audit once per wait (at its first refused try), so hammering cannot flood the log.
        first = [r for r in waiting if r.last_refused_at is None or r.last_refused_at < r.last_failure_at]
        for row in waiting:
            row.last_refused_at = now
        if first:
            user = session.scalar(select(User).where(User.email == email))
            _audit_sign_in(session, user, action="login_throttled",
                           summary=f"Sign-in refused for {wait} s after repeated failures"
                           + (f" (from {ip})" if ip else ""))
        session.flush()
        raise TooManyRequests(f"Too many failed sign-ins; try again in {wait} seconds.",
                              extra={"retry_after": wait})
    # (its roles are not read: a sign-in needs the password, and each statement more waits its turn under load)
    user = session.scalar(select(User).where(User.email == email).options(lazyload(User.roles)))
    ok = user is not None and user.is_active and verify_password(user.password_hash, password)
    if user is None:
        burn_password_check(password)
    session.add(LoginAttempt(email=email, ip=ip, ts=now, success=ok))
    if not ok or user is None:
        # the wait runs from the answer, not from the request's arrival: checking the password takes a while on a
        # busy server, and a wait spent before the user has even heard of it is no wait
        _count_failure(session, keys, policy, utcnow())
        _audit_sign_in(session, user, action="login_failed", summary="Failed sign-in" + (f" from {ip}" if ip else ""))
        session.flush()
        raise Unauthorized("Incorrect e-mail or password, or the account is deactivated.")
    # The account's count starts again; the address's does not, or a sprayer could clear it with an account of
    # its own between guesses.
    session.execute(update(LoginThrottle).where(LoginThrottle.key == keys[0][0])
                    .values(failures=0, blocked_until=None).execution_options(synchronize_session=False))
    user.last_login_at = now
    if needs_rehash(user.password_hash):  # made with older argon2 parameters: remade with today's
        user.password_hash = hash_password(password)
    audit.record(session, _SigningIn(user.org_id, user.unit_id, user.id, user.name), action="login",
                 entity="users", entity_id=user.id, unit_id=user.unit_id,
                 summary=f"{user.name} signed in" + (f" from {ip}" if ip else ""))
    session.flush()
    return user


@dataclass(frozen=True)
class _SigningIn:
    """Who signs in, as the audit names its actor: a Principal would read the organisation, the unit, the roles and
    the unit's tree first, four statements more on every sign-in for what the record does not keep."""

    org_id: int
    unit_id: int | None
    user_id: int
    display: str
    api_key_id: None = None


def _principal_of(session: Session, user: User) -> Principal:
    org = session.get(Organization, user.org_id)
    return Principal(
        org_id=user.org_id, unit_id=user.unit_id, unit_path=user.unit.path, user_id=user.id,
        display=user.name, privileges=merge_privileges(r.privileges for r in user.roles),
        role_codes=tuple(sorted(r.code for r in user.roles)), locale=user.locale,
        timezone=org.timezone if org else "Asia/Shanghai",
        # the top unit's tree is the whole organisation: scope() needs no list of its ~2,000 units
        unit_tree=None if is_root_path(user.unit.path) else units_under(session, user.org_id, user.unit.path),
    )


@functools.cache
def _fingerprint() -> Any:
    """One row that changes whenever anything a user's principal is made of changes: the user (roles given or
    taken, unit, revocation, language: each bumps updated_at), their roles' privileges, their unit's path, the
    organisation, and the units under theirs (one added, moved, renamed or closed)."""
    unit, under = aliased(BusinessUnit), aliased(BusinessUnit)
    subtree = (under.org_id == User.org_id, under.path.startswith(unit.path))
    return (select(User.token_version, User.is_active, User.updated_at, unit.path, unit.updated_at,
                   Organization.updated_at,
                   # correlate: two levels down SQLAlchemy would otherwise put users into the inner FROM and
                   # read every user's roles
                   select(func.max(Role.updated_at)).where(Role.id.in_(
                       select(user_roles.c.role_id).where(user_roles.c.user_id == User.id).correlate(User)
                   )).scalar_subquery(),
                   select(func.count()).select_from(under).where(*subtree).scalar_subquery(),
                   select(func.max(under.updated_at)).where(*subtree).scalar_subquery())
            .join(unit, unit.id == User.unit_id).join(Organization, Organization.id == User.org_id)
            .where(User.id == bindparam("user_id")))  # built once: building it cost as much as running it


# The fingerprint as PostgreSQL runs it, prepared once per connection. Planning the subqueries afresh (kehu
# prepares nothing else, db.make_engine) and scanning every unit for "path LIKE <a column> || '%'" (a pattern
# PostgreSQL cannot match against an index) cost the database 1.5 ms on every request, more than a consultant's
# page of customers; as a range in byte order (paths hold digits and '/', all below '~') the subtree is read from
# ix_business_units_org_path_prefix: 0.08 ms.
FINGERPRINT_SQL = """
SELECT u.token_version, u.is_active, u.updated_at, unit.path, unit.updated_at AS unit_updated_at,
       o.updated_at AS org_updated_at,
       (SELECT max(r.updated_at) FROM roles r JOIN user_roles ur ON ur.role_id = r.id
         WHERE ur.user_id = u.id) AS roles_updated_at,
       tree.units, tree.units_updated_at
  FROM users u JOIN business_units unit ON unit.id = u.unit_id JOIN organizations o ON o.id = u.org_id
 CROSS JOIN LATERAL (SELECT count(*) AS units, max(b.updated_at) AS units_updated_at FROM business_units b
                      WHERE b.org_id = u.org_id AND b.path ~>=~ unit.path AND b.path ~<~ (unit.path || '~')) tree
 WHERE u.id = %(user_id)s"""


def _read_fingerprint(session: Session, user_id: int) -> Any:
    """The user's fingerprint row (None: no such user): ``FINGERPRINT_SQL`` on PostgreSQL, ``_fingerprint`` (the
    same columns) elsewhere."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return session.execute(_fingerprint(), {"user_id": user_id}).one_or_none()
    from psycopg.rows import namedtuple_row

    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor(row_factory=namedtuple_row) as cursor:
        return cursor.execute(FINGERPRINT_SQL, {"user_id": user_id}, prepare=True).fetchone()


# Principals this process made, with the fingerprint they were made from: each request reads the fingerprint (one
# query) and makes the principal again only when it changed. Making one took five queries and, for a region
# manager, a few hundred unit ids: 40 % of the server's time for a page of customers.
_principals: OrderedDict[int, tuple[tuple[Any, ...], Principal]] = OrderedDict()
_PRINCIPALS_KEPT = 20_000


def principal_for_user(session: Session, user_id: int, token_version: int | None = None) -> Principal:
    """The principal of an active user; a token issued before a revocation (version bump) is refused."""
    row = _read_fingerprint(session, user_id)
    if row is None or not row.is_active:
        raise Unauthorized("The account does not exist or is deactivated.")
    if token_version is not None and token_version != row.token_version:
        raise Unauthorized("This sign-in was revoked (password, roles or status changed); sign in again.")
    fingerprint = tuple(row)
    kept = _principals.get(user_id)
    if kept is not None and kept[0] == fingerprint:
        return kept[1]
    user = session.get(User, user_id)
    if user is None:
        raise Unauthorized("The account does not exist or is deactivated.")
    principal = _principal_of(session, user)
    _principals[user_id] = (fingerprint, principal)
    while len(_principals) > _PRINCIPALS_KEPT:
        _principals.popitem(last=False)
    return principal


def principal_for_api_key(session: Session, key: str) -> Principal:
    prefix = parse_api_key_prefix(key)
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix)) if prefix else None
    if row is None or not api_key_matches(key, row.digest):
        raise Unauthorized("The API key is not valid.")
    now = utcnow()
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        raise Unauthorized("The API key was revoked or has expired.")
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        row.last_used_at = now  # at most one write a minute per key, not one per request
    return _api_key_principal(session, row)


def _api_key_principal(session: Session, row: ApiKey) -> Principal:
    org = session.get(Organization, row.org_id)
    return Principal(
        org_id=row.org_id, unit_id=row.unit_id, unit_path=row.unit.path, api_key_id=row.id,
        display=f"API key {row.name}", privileges=dict(row.role.privileges), role_codes=(row.role.code,),
        locale=org.default_locale if org else "zh", timezone=org.timezone if org else "Asia/Shanghai",
        unit_tree=units_under(session, row.org_id, row.unit.path),
    )


def principal_for_job(session: Session, job: Job) -> Principal:
    """Jobs run with the rights of whoever asked for them (or as the platform when nobody did). A key revoked
    or a user deactivated since fails the job rather than running it with rights nobody holds any more."""
    if job.created_by_id is not None:
        return principal_for_user(session, job.created_by_id)
    if job.created_by_api_key_id is not None:
        row = session.get(ApiKey, job.created_by_api_key_id)
        if row is None or row.revoked_at is not None:
            raise Unauthorized("The API key that asked for this job was revoked.")
        return _api_key_principal(session, row)
    return system_principal(session, job.org_id)


# -- API keys --------------------------------------------------------------------------------------
def list_api_keys(session: Session, principal: Principal) -> list[ApiKey]:
    principal.require("api_keys", "read")
    return list(session.scalars(select(ApiKey).where(scope(principal, ApiKey)).order_by(ApiKey.id.desc())))


def create_api_key(session: Session, principal: Principal, *, data: schemas.ApiKeyCreate) -> tuple[ApiKey, str]:
    unit_id = data.unit_id if data.unit_id is not None else principal.unit_id
    unit = _placed_at(session, principal, unit_id, "unit_id", "api_keys", "create",  # type: ignore[arg-type]
                      owner_id=principal.user_id)
    role = _roles_by_code(session, principal, [data.role], "role")[0]
    _check_can_grant(principal, role.privileges)
    if data.expires_at is not None and data.expires_at <= utcnow():
        raise invalid("expires_at", "must be in the future")
    new = generate_api_key()
    row = ApiKey(org_id=principal.org_id, unit_id=unit.id, role_id=role.id, created_by_id=principal.user_id,
                 name=data.name, prefix=new.prefix, digest=new.digest, expires_at=data.expires_at)
    session.add(row)
    session.flush()
    audit.record(session, principal, action="create", entity="api_keys", entity_id=row.id, unit_id=unit.id,
                 after=snapshot(row), summary=f"API key {row.name} created")
    return row, new.key


def revoke_api_key(session: Session, principal: Principal, key_id: int) -> ApiKey:
    row = get_scoped(session, principal, ApiKey, key_id)
    require_row(session, principal, "api_keys", "delete", unit_id=row.unit_id, owner_id=row.created_by_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
        audit.record(session, principal, action="revoke", entity="api_keys", entity_id=row.id, unit_id=row.unit_id,
                     summary=f"API key {row.name} revoked")
    return row


# -- reassign (staff turnover) ---------------------------------------------------------------------
def request_reassign(session: Session, principal: Principal, *, data: schemas.ReassignRequest) -> Job:
    """Queue the bulk move of everything one user owns to another; runs as a resumable, audited job."""
    if data.from_user_id == data.to_user_id:
        raise invalid("to_user_id", "must differ from from_user_id")
    found = check_references(session, principal, {"from_user_id": Ref(User, data.from_user_id),
                                                  "to_user_id": Ref(User, data.to_user_id)})
    source, target = found["from_user_id"], found["to_user_id"]
    if not target.is_active:
        raise invalid("to_user_id", "records cannot go to a deactivated user")
    if not any(principal.can(entity, "assign") for entity in OWNED_ENTITIES):
        raise Forbidden("Your roles do not allow reassigning records.")
    if data.deactivate_from_user:
        require_row(session, principal, "users", "update", unit_id=source.unit_id, owner_id=source.id)
    job = jobs.enqueue(session, kind=REASSIGN_JOB, org_id=principal.org_id, unit_id=principal.unit_id,
                       created_by_api_key_id=principal.api_key_id,
                       created_by_id=principal.user_id, payload=data.model_dump())
    audit.record(session, principal, action="reassign.requested", entity="users", entity_id=source.id,
                 unit_id=source.unit_id, after=data.model_dump(),
                 summary=f"Records of {source.name} to be reassigned to {target.name} (job {job.id})")
    return job


def reassign_model(session: Session, principal: Principal, model: Any, *, source: User, target: User) -> int:
    """Move one table's rows in a single UPDATE, within what the principal may assign."""
    if principal.depth(model.__entity__, "assign") == "none":
        return 0
    result = session.execute(
        update(model)
        .where(model.owner_id == source.id, scope(principal, model, "assign"))
        .values(owner_id=target.id, unit_id=target.unit_id)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@jobs.job_handler(REASSIGN_JOB)
def _run_reassign(ctx: jobs.JobContext) -> dict[str, Any]:
    session, principal = ctx.session, ctx.principal
    payload = schemas.ReassignRequest(**ctx.job.payload)
    source = get_user(session, principal, payload.from_user_id)
    target = get_user(session, principal, payload.to_user_id)
    done: dict[str, int] = dict(ctx.checkpoint.get("moved", {}))
    models = owned_models()
    for index, model in enumerate(models, start=1):
        if model.__tablename__ in done:
            continue  # finished before a restart: resume, do not repeat
        moved = reassign_model(session, principal, model, source=source, target=target)
        done[model.__tablename__] = moved
        if moved:
            audit.record(session, principal, action="reassign", entity=model.__entity__, unit_id=target.unit_id,
                         before={"owner_id": source.id}, after={"owner_id": target.id, "count": moved},
                         summary=f"{moved} {model.__entity__} of {source.name} reassigned to {target.name}")
        ctx.save(progress=int(90 * index / len(models)), message=model.__tablename__, checkpoint={"moved": done})
    if payload.deactivate_from_user and source.is_active:
        update_user(session, principal, source.id, data=schemas.UserUpdate(is_active=False))
    audit.record(session, principal, action="reassign", entity="users", entity_id=source.id,
                 unit_id=source.unit_id, after={"to_user_id": target.id, "moved": done},
                 summary=f"Reassign from {source.name} to {target.name} finished: {sum(done.values())} records")
    return {"moved": done, "total": sum(done.values())}


# -- audit log and jobs ----------------------------------------------------------------------------
def list_audit(session: Session, principal: Principal, *, user_id: int | None = None, entity: str | None = None,
               entity_id: int | None = None, action: str | None = None, since: datetime | None = None,
               until: datetime | None = None, limit: int = 50, cursor: str | None = None) -> Page[AuditRecord]:
    principal.require("audit", "read")
    filters: list[Any] = [scope(principal, AuditRecord)]
    if user_id is not None:
        filters.append(AuditRecord.actor_user_id == user_id)
    if entity:
        filters.append(AuditRecord.entity == entity)
    if entity_id is not None:
        filters.append(AuditRecord.entity_id == entity_id)
    if action:
        filters.append(AuditRecord.action == action)
    if since is not None:
        filters.append(AuditRecord.ts >= aware(since, principal.timezone))
    if until is not None:
        filters.append(AuditRecord.ts < aware(until, principal.timezone))
    stmt = select(AuditRecord).where(and_(*filters))
    return keyset_page(session, stmt, id_column=AuditRecord.id, limit=limit, cursor=cursor, descending=True)


def list_jobs(session: Session, principal: Principal, *, status: str | None = None, kind: str | None = None,
              limit: int = 50, cursor: str | None = None) -> Page[Job]:
    principal.require("jobs", "read")
    filters: list[Any] = [scope(principal, Job)]
    if status:
        if status not in jobs.STATUSES:
            raise invalid("status", f"one of {', '.join(jobs.STATUSES)}")
        filters.append(Job.status == status)
    if kind:
        filters.append(Job.kind == kind)
    return keyset_page(session, select(Job).where(*filters), id_column=Job.id, limit=limit, cursor=cursor)


def get_job(session: Session, principal: Principal, job_id: int) -> Job:
    return get_scoped(session, principal, Job, job_id)


def retry_job(session: Session, principal: Principal, job_id: int) -> Job:
    job = get_job(session, principal, job_id)
    require_row(session, principal, "jobs", "update", unit_id=job.unit_id, owner_id=job.created_by_id)
    jobs.retry(session, job)
    audit.record(session, principal, action="retry", entity="jobs", entity_id=job.id, unit_id=job.unit_id,
                 summary=f"Job {job.id} ({job.kind}) retried")
    return job


def cancel_job(session: Session, principal: Principal, job_id: int) -> Job:
    job = get_job(session, principal, job_id)
    require_row(session, principal, "jobs", "update", unit_id=job.unit_id, owner_id=job.created_by_id)
    jobs.cancel(session, job)
    audit.record(session, principal, action="cancel", entity="jobs", entity_id=job.id, unit_id=job.unit_id,
                 summary=f"Job {job.id} ({job.kind}) cancelled")
    return job


def counts_by_unit_kind(session: Session, principal: Principal) -> dict[str, int]:
    """How many units of each kind the principal can see (dashboard)."""
    rows = session.execute(
        select(BusinessUnit.kind, func.count()).where(scope(principal, BusinessUnit)).group_by(BusinessUnit.kind)
    )
    return {kind: count for kind, count in rows}


def active_user_count(session: Session, principal: Principal) -> int:
    return session.scalar(select(func.count()).select_from(User).where(scope(principal, User), User.is_active)) or 0




def staff_by_top_unit(session: Session, principal: Principal) -> list[tuple[str, int]]:
    """Active staff per region (or per the units right below the viewer's own), largest first."""
    visible = list_units(session, principal)
    if not visible:
        return []
    top_depth = min(u.depth for u in visible)
    groups = [u for u in visible if u.depth == top_depth + 1] or [u for u in visible if u.depth == top_depth]
    group, member_unit = aliased(BusinessUnit), aliased(BusinessUnit)
    stmt = (
        select(group.name, func.count(User.id))
        .select_from(User)
        .join(member_unit, User.unit_id == member_unit.id)
        .join(group, member_unit.path.startswith(group.path))
        .where(group.id.in_([g.id for g in groups]), scope(principal, User), User.is_active)
        .group_by(group.id, group.name)
    )
    counts = {name: count for name, count in session.execute(stmt)}
    return sorted(((g.name, counts.get(g.name, 0)) for g in groups), key=lambda r: -r[1])


def names_of(session: Session, *, unit_ids: set[int], user_ids: set[int]) -> dict[str, dict[int, str]]:
    """Display names of units and people (two queries, however many rows name them)."""
    units = dict(session.execute(select(BusinessUnit.id, BusinessUnit.name).where(
        BusinessUnit.id.in_(unit_ids))).all()) if unit_ids else {}
    users = dict(session.execute(select(User.id, User.name).where(User.id.in_(user_ids))).all()) if user_ids else {}
    return {"unit": units, "user": users}
