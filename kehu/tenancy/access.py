"""Who is acting (Principal) and what they may touch: privileges × depth, the one ``scope()`` filter. How personal
data looks without ``pii.read`` is ``kehu.tenancy.masking``.

Modelled on Dynamics 365 business units: a role grants, per entity, each privilege at a depth
none < own < unit < unit_tree < org. A user may hold several roles; the widest grant wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, false, select
from sqlalchemy.orm import Session

from kehu.core.errors import Forbidden, NotFound
from kehu.tenancy.models import BusinessUnit

NONE, OWN, UNIT, UNIT_TREE, ORG = "none", "own", "unit", "unit_tree", "org"
DEPTHS = (NONE, OWN, UNIT, UNIT_TREE, ORG)
_RANK = {d: i for i, d in enumerate(DEPTHS)}

PRIVILEGES = ("read", "create", "update", "delete", "assign", "share", "export")

# Every entity type a role can grant on. Domains that do not exist yet are listed so roles are complete
# from day one and an admin configures them once.
ENTITIES = (
    "units", "users", "roles", "api_keys", "audit", "jobs", "sources", "imports",
    "profiles", "accounts", "orders", "leads", "opportunities", "activities",
    "segments", "journeys", "messages", "cases", "loyalty", "reports",
)
# Entities whose rows have an owner (moved by a bulk reassign).
OWNED_ENTITIES = ("profiles", "accounts", "orders", "leads", "opportunities", "activities", "cases")
# Permissions that are not about rows (granted when their value is anything but "none").
PERMISSIONS = ("pii.read", "settings.manage")


def rank(depth: str) -> int:
    return _RANK.get(depth, 0)


def widest(a: str, b: str) -> str:
    return a if _RANK.get(a, 0) >= _RANK.get(b, 0) else b


def merge_privileges(grants: Iterable[Mapping[str, str]]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for grant in grants:
        for key, depth in grant.items():
            merged[key] = widest(merged.get(key, NONE), depth)
    return merged


@dataclass(frozen=True)
class Principal:
    """The acting user or API key, with its organisation, unit and merged privileges."""

    org_id: int
    unit_id: int | None
    unit_path: str
    user_id: int | None = None
    api_key_id: int | None = None
    display: str = ""
    privileges: Mapping[str, str] = field(default_factory=dict)
    role_codes: tuple[str, ...] = ()
    locale: str = "zh"
    timezone: str = "Asia/Shanghai"
    is_system: bool = False
    # The ids of the principal's unit and every unit under it, read when the principal is made: scope filters
    # name them, because PostgreSQL cannot estimate "unit_id IN (units whose path starts …)" and plans a
    # million-row segment refresh as nested loops (9 s instead of 1 s). None: not read (a subquery is used).
    unit_tree: tuple[int, ...] | None = None

    def depth(self, entity: str, privilege: str = "read") -> str:
        if self.is_system:
            return ORG
        return self.privileges.get(f"{entity}.{privilege}", NONE)

    def can(self, entity: str, privilege: str = "read") -> bool:
        return self.depth(entity, privilege) != NONE

    def has(self, permission: str) -> bool:
        return self.is_system or self.privileges.get(permission, NONE) != NONE

    def require(self, entity: str, privilege: str = "read") -> str:
        """The depth granted, or Forbidden when there is none."""
        depth = self.depth(entity, privilege)
        if depth == NONE:
            raise Forbidden(f"Your roles do not allow {privilege} on {entity}.")
        return depth

    def require_permission(self, permission: str) -> None:
        if not self.has(permission):
            raise Forbidden(f"Your roles do not grant {permission}.")

    @classmethod
    def system(cls, org_id: int, unit_id: int | None = None, unit_path: str = "/") -> Principal:
        """The platform itself (CLI, demo seeding, migrations): everything within one organisation."""
        return cls(org_id=org_id, unit_id=unit_id, unit_path=unit_path, display="system", is_system=True)


def units_under(session: Session, org_id: int, path: str) -> tuple[int, ...]:
    """The ids of the unit at ``path`` and of every unit under it."""
    return tuple(session.scalars(select(BusinessUnit.id).where(
        BusinessUnit.org_id == org_id, BusinessUnit.path.startswith(path, autoescape=True)).order_by(BusinessUnit.id)))


def is_root_path(path: str) -> bool:
    """Whether a unit path is an organisation's top unit ("/1/"): its tree is the whole organisation."""
    return path.count("/") == 2


def _unit_tree_ids(principal: Principal) -> Any:
    if principal.unit_tree is not None:
        return principal.unit_tree
    return select(BusinessUnit.id).where(
        BusinessUnit.org_id == principal.org_id,
        BusinessUnit.path.startswith(principal.unit_path, autoescape=True),
    )


def scope(principal: Principal, model: Any, privilege: str = "read") -> ColumnElement[bool]:
    """The SQL filter for the rows of ``model`` that ``principal`` may ``privilege``.

    Every list, search, export and segment query applies it. Models declare ``__entity__`` and which
    columns place a row in the tree (``__scope_unit__``) and give it an owner (``__scope_owner__``).
    """
    depth = principal.depth(model.__entity__, privilege)
    if depth == NONE:
        return false()
    org_clause = model.org_id == principal.org_id
    if depth == ORG:
        return org_clause
    unit_col = getattr(model, model.__scope_unit__) if model.__scope_unit__ else None
    owner_col = getattr(model, model.__scope_owner__) if model.__scope_owner__ else None
    if depth == UNIT_TREE and unit_col is not None:
        if model is BusinessUnit:
            return and_(org_clause, BusinessUnit.path.startswith(principal.unit_path, autoescape=True))
        if is_root_path(principal.unit_path):
            return org_clause  # the top unit's tree is the organisation
        return and_(org_clause, unit_col.in_(_unit_tree_ids(principal)))
    if depth in (UNIT_TREE, UNIT) and unit_col is not None:
        return and_(org_clause, unit_col == principal.unit_id)
    if depth == OWN and owner_col is not None:
        return and_(org_clause, owner_col == principal.user_id)
    if depth == OWN and unit_col is not None and model is BusinessUnit:
        return and_(org_clause, unit_col == principal.unit_id)  # "own" unit = the one the user is in
    # An org-wide entity (roles) granted below org depth: readable, it has no unit to narrow by.
    return org_clause if unit_col is None and owner_col is None else false()


def within_depth(session: Session, principal: Principal, depth: str, *, unit_id: int | None,
                 owner_id: int | None = None) -> bool:
    """Whether a row placed at ``unit_id`` / owned by ``owner_id`` falls inside ``depth`` (for writes)."""
    if principal.is_system or depth == ORG:
        return True
    if depth == NONE:
        return False
    if depth == OWN:
        return owner_id is not None and owner_id == principal.user_id
    if depth == UNIT:
        return unit_id is not None and unit_id == principal.unit_id
    if unit_id is None:
        return False
    path = session.scalar(
        select(BusinessUnit.path).where(BusinessUnit.id == unit_id, BusinessUnit.org_id == principal.org_id)
    )
    return path is not None and path.startswith(principal.unit_path)


def require_row(session: Session, principal: Principal, entity: str, privilege: str, *,
                unit_id: int | None, owner_id: int | None = None) -> None:
    """Forbidden unless the principal may ``privilege`` a row at that unit/owner."""
    depth = principal.require(entity, privilege)
    if not within_depth(session, principal, depth, unit_id=unit_id, owner_id=owner_id):
        raise Forbidden(f"That {entity} record is outside what your roles allow you to {privilege}.")


def writable_units(session: Session, principal: Principal, entity: str, privilege: str) -> list[BusinessUnit]:
    """The units at which ``principal`` may ``privilege`` rows of ``entity`` (e.g. the dealers an import may
    place orders at)."""
    depth = principal.depth(entity, privilege)
    query = select(BusinessUnit).where(BusinessUnit.org_id == principal.org_id)
    if depth == NONE:
        return []
    if depth == UNIT_TREE:
        query = query.where(BusinessUnit.path.startswith(principal.unit_path, autoescape=True))
    elif depth != ORG:
        query = query.where(BusinessUnit.id == principal.unit_id)
    return list(session.scalars(query.order_by(BusinessUnit.path)))


def get_scoped(session: Session, principal: Principal, model: Any, row_id: int, privilege: str = "read") -> Any:
    """One row by id within scope; NotFound otherwise (never 403, so existence does not leak)."""
    row = session.scalar(select(model).where(model.id == row_id, scope(principal, model, privilege)))
    if row is None:
        raise NotFound(f"No {model.__entity__} record with id {row_id}.")
    return row

