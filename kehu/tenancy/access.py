"""Who is acting (Principal) and what they may touch: privileges × depth, the one ``scope()`` filter. How personal
data looks without ``pii.read`` is ``kehu.tenancy.masking``.

Modelled on Dynamics 365 business units: a role grants, per entity, each privilege at a depth
none < own < unit < unit_tree < org. A user may hold several roles; the widest grant wins.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import BigInteger, ColumnElement, and_, any_, false, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from kehu.core import domains
from kehu.core.db import PerDialect, built_once, parameter
from kehu.core.errors import FieldError, Forbidden, NotFound, ValidationFailed
from kehu.core.i18n import t
from kehu.tenancy.models import BusinessUnit, Organization, User

DEFAULT_TIMEZONE = "Asia/Shanghai"  # an organisation's until it says otherwise

Row = TypeVar("Row")  # a mapped model's instance

NONE, OWN, UNIT, UNIT_TREE, ORG = "none", "own", "unit", "unit_tree", "org"
DEPTHS = (NONE, OWN, UNIT, UNIT_TREE, ORG)
_RANK = {d: i for i, d in enumerate(DEPTHS)}

PRIVILEGES = ("read", "create", "update", "delete", "assign", "share", "export")



def entities() -> tuple[str, ...]:
    """Every entity type a role can grant on: each domain declares its own in its manifest; those of domains
    still to come are listed too, so roles are complete from day one and an admin configures them once."""
    return domains.role_vocabulary()[0]


def permissions() -> tuple[str, ...]:
    """Permissions that are not about rows (granted when their value is anything but "none"), as the domains
    declare them (``pii.read``, ``messages.approve``)."""
    return domains.role_vocabulary()[1]

# Entities whose rows have an owner (moved by a bulk reassign).
OWNED_ENTITIES = ("profiles", "accounts", "orders", "leads", "opportunities", "activities", "cases")


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
    timezone: str = DEFAULT_TIMEZONE
    is_system: bool = False
    # The ids of the principal's unit and every unit under it, read when the principal is made: scope filters
    # name them, because PostgreSQL cannot estimate "unit_id IN (units whose path starts …)" and plans a
    # million-row segment refresh as nested loops (9 s instead of 1 s). None: not read (a subquery is used).
    unit_tree: tuple[int, ...] | None = None
    # What requests work out from the principal and what its fingerprint covers (the organisation's custom fields:
    # changing one touches the organisation), kept with it while the process keeps the principal.
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

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


def org_timezone(session: Session, org_id: int) -> str:
    """The organisation's time zone (its times are shown and its local rules — quiet hours, "today", a journey's
    wait until 10:00 — read in it)."""
    return session.scalar(select(Organization.timezone).where(Organization.id == org_id)) or DEFAULT_TIMEZONE


def units_under(session: Session, org_id: int, path: str) -> tuple[int, ...]:
    """The ids of the unit at ``path`` and of every unit under it."""
    return tuple(session.scalars(select(BusinessUnit.id).where(
        BusinessUnit.org_id == org_id, BusinessUnit.path.startswith(path, autoescape=True)).order_by(BusinessUnit.id)))


def is_root_path(path: str) -> bool:
    """Whether a unit path is an organisation's top unit ("/1/"): its tree is the whole organisation."""
    return path.count("/") == 2


# How a scope filter is written (its "form"), apart from the principal's values in it: scope() writes the values
# in, bound_scope() leaves them as parameters, so that a statement built once serves every principal of one form;
# both are BoundScope.clause().
_NO_ROWS, _ORG, _UNIT_TREE, _UNIT_TREE_BY_PATH, _UNIT, _OWN, _UNIT_PATHS = (
    "none", "org", "unit_tree", "unit_tree_by_path", "unit", "own", "unit_paths")


def _scope_form(principal: Principal, model: Any, privilege: str) -> str:
    """Which rows of ``model`` the principal may ``privilege``, as the form of their filter."""
    depth = principal.depth(model.__entity__, privilege)
    if depth == NONE:
        return _NO_ROWS
    if depth == ORG:
        return _ORG
    has_unit, has_owner = bool(model.__scope_unit__), bool(model.__scope_owner__)
    if depth == UNIT_TREE and has_unit:
        if model is BusinessUnit:
            return _UNIT_PATHS
        if is_root_path(principal.unit_path):
            return _ORG  # the top unit's tree is the organisation
        return _UNIT_TREE if principal.unit_tree is not None else _UNIT_TREE_BY_PATH
    # A principal that is nobody (an API key has no user) owns nothing, and one placed at no unit has no unit's
    # rows: written as "owner_id = NULL" the filter read every ownerless customer of every dealer.
    if depth in (UNIT_TREE, UNIT) and has_unit:
        return _UNIT if principal.unit_id is not None else _NO_ROWS
    if depth == OWN and has_owner:
        return _OWN if principal.user_id is not None else _NO_ROWS
    if depth == OWN and has_unit and model is BusinessUnit:
        return _UNIT if principal.unit_id is not None else _NO_ROWS  # "own" unit = the one the user is in
    # An org-wide entity (roles) granted below org depth: readable, it has no unit to narrow by.
    return _ORG if not has_unit and not has_owner else _NO_ROWS


def spans_units(principal: Principal, model: Any, units: int, privilege: str = "read") -> bool:
    """Whether the principal's scope on ``model`` reaches the rows of at least ``units`` units: the organisation,
    or a tree of that many units (a region), not one dealer's or one person's rows."""
    form = _scope_form(principal, model, privilege)
    return form in (_ORG, _UNIT_TREE_BY_PATH) or (form == _UNIT_TREE and len(principal.unit_tree or ()) >= units)


def scope(principal: Principal, model: Any, privilege: str = "read") -> ColumnElement[bool]:
    """The SQL filter for the rows of ``model`` that ``principal`` may ``privilege``.

    Every list, search, export and segment query applies it. Models declare ``__entity__`` and which
    columns place a row in the tree (``__scope_unit__``) and give it an owner (``__scope_owner__``).
    """
    return bound_scope(principal, model, privilege).clause(inline=True)


@dataclass(frozen=True)
class BoundScope:
    """``scope()`` with the principal's values left as parameters: ``clause()`` is the filter of a statement built
    once for every principal of its ``form`` (a handful of statements, not one per user); ``params`` go with it
    when it runs."""

    model: Any
    form: str
    params: dict[str, Any]

    def clause(self, *, inline: bool = False) -> ColumnElement[bool]:
        """The filter, its values as the named parameters ``params`` go to; ``inline``: with the values in it
        (``scope()``: a statement built for one principal)."""
        model, form = self.model, self.form

        def value(name: str, **kw: Any) -> Any:
            return parameter(name, self.params if inline else None, **kw)

        if form == _NO_ROWS:
            return false()
        org_clause: ColumnElement[bool] = model.org_id == value("scope_org_id")
        if form == _ORG:
            return org_clause
        # unit paths are digits and slashes: nothing in them for LIKE to escape
        if form == _UNIT_PATHS:
            return and_(org_clause, BusinessUnit.path.startswith(value("scope_unit_path")))
        if form == _UNIT_TREE:
            # On PostgreSQL the subtree's ids go as one array parameter (unit_id = ANY(:ids)): a region's 480 ids
            # written into the text made each of a Customer 360's statements 13 KB, rendered and parsed anew on
            # every request (43 ms of the server's CPU for one 360, against 13 for a consultant's).
            unit_col = getattr(model, model.__scope_unit__)
            return and_(org_clause, PerDialect(unit_col == any_(value("scope_unit_ids", type_=ARRAY(BigInteger))),
                                               unit_col.in_(value("scope_unit_ids", expanding=True))))
        if form == _UNIT_TREE_BY_PATH:
            return and_(org_clause, getattr(model, model.__scope_unit__).in_(select(BusinessUnit.id).where(
                BusinessUnit.org_id == value("scope_org_id"),
                BusinessUnit.path.startswith(value("scope_unit_path")))))
        if form == _UNIT:
            return and_(org_clause, getattr(model, model.__scope_unit__) == value("scope_unit_id"))
        return and_(org_clause, getattr(model, model.__scope_owner__) == value("scope_user_id"))


def bound_scope(principal: Principal, model: Any, privilege: str = "read") -> BoundScope:
    """The principal's scope on ``model`` for a statement built once: ``clause()`` lets through the rows that
    ``scope()`` does."""
    form = _scope_form(principal, model, privilege)
    values: dict[str, Any] = {"scope_org_id": principal.org_id}
    if form == _UNIT_TREE:
        values["scope_unit_ids"] = list(principal.unit_tree or ())
    elif form in (_UNIT_TREE_BY_PATH, _UNIT_PATHS):
        values["scope_unit_path"] = principal.unit_path
    elif form == _UNIT:
        values["scope_unit_id"] = principal.unit_id
    elif form == _OWN:
        values["scope_user_id"] = principal.user_id
    return BoundScope(model, form, values)


def scoped_once(name: Hashable, principal: Principal, model: Any,
                build: Callable[[ColumnElement[bool]], Any]) -> tuple[Any, dict[str, Any]]:
    """A statement filtered by the principal's scope on ``model``, built once per form (``build`` gets the filter,
    its values as parameters), with the parameters the principal runs it with."""
    bound = bound_scope(principal, model)
    return built_once((name, model, bound.form), lambda: build(bound.clause())), bound.params


def _unit_path(session: Session, principal: Principal, unit_id: int) -> str | None:
    """The path of a unit of the principal's organisation; None for any other id (another organisation's too)."""
    if unit_id == principal.unit_id:
        return principal.unit_path
    if not _is_bigint(unit_id):
        return None
    return session.scalar(
        select(BusinessUnit.path).where(BusinessUnit.id == unit_id, BusinessUnit.org_id == principal.org_id))


def within_depth(session: Session, principal: Principal, depth: str, *, unit_id: int | None,
                 owner_id: int | None = None) -> bool:
    """Whether a row placed at ``unit_id`` / owned by ``owner_id`` falls inside ``depth`` (for writes).

    A unit outside the principal's organisation is outside every depth, org-wide and system included. "Own"
    asks for the principal as owner and a unit they could own a row at: theirs or one above it (a lead sits at
    the dealer, its salesperson in a team under it), never another dealer."""
    if depth == NONE:
        return False
    path = _unit_path(session, principal, unit_id) if unit_id is not None else None
    if unit_id is not None and path is None:
        return False
    if principal.is_system or depth == ORG:
        return True
    if depth == OWN:
        return (owner_id is not None and owner_id == principal.user_id
                and (path is None or principal.unit_path.startswith(path)))
    if depth == UNIT:
        return unit_id is not None and unit_id == principal.unit_id
    return path is not None and path.startswith(principal.unit_path)


def require_row(session: Session, principal: Principal, entity: str, privilege: str, *,
                unit_id: int | None, owner_id: int | None = None) -> None:
    """Forbidden unless the principal may ``privilege`` a row at that unit/owner."""
    depth = principal.require(entity, privilege)
    if not within_depth(session, principal, depth, unit_id=unit_id, owner_id=owner_id):
        raise Forbidden(f"That {entity} record is outside what your roles allow you to {privilege}.")


# -- foreign ids a write names -------------------------------------------------------------------------------
_BIGINT = 2**63 - 1


def _is_bigint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -_BIGINT <= value <= _BIGINT


@dataclass(frozen=True)
class Ref:
    """A foreign id (or a list of them) the caller gave: rows of ``model`` that must be the organisation's and,
    when ``privilege`` is given and the model is scoped (``__entity__``), within the caller's scope for it."""

    model: Any
    id: int | Collection[int] | None
    privilege: str | None = "read"
    where: Any = None  # what the row must also be (an active user); otherwise it is unknown
    # (session, principal, id) -> bool: a row outside the scope filter the caller still reaches (a customer
    # through their own lead, as the domain that owns the row reads it)
    reach: Any = None


@dataclass(frozen=True)
class Place:
    """Where a row of ``entity`` is written (made, moved, handed over): a unit and an owner, as the caller gave
    them or the service defaulted them. Without a unit the owner's is used."""

    entity: str
    privilege: str
    unit_id: int | None
    owner_id: int | None = None
    unit_field: str = "unit_id"
    owner_field: str = "owner_id"
    # the owner holds the row, so works at the unit or under it; False where the "owner" only records who made
    # the row (a source's creator) or was defaulted to the caller
    owner_at_unit: bool = True


@dataclass
class Found:
    """The rows ``check_references`` found, by field; ``unit_id`` / ``owner_id`` of the placement checked."""

    rows: dict[str, Any] = field(default_factory=dict)
    unit_id: int | None = None
    owner_id: int | None = None

    def __getitem__(self, name: str) -> Any:
        return self.rows.get(name)


def _problem(name: str, code: str, ids: list[Any] | None = None) -> FieldError:
    """A fault of one field, in English for the API (pages say it in the reader's words: see check_references)."""
    return FieldError(name, t(f"reference.{code}", "en", ids=", ".join(str(i) for i in (ids or [])[:20])), code)


def _resolve(session: Session, principal: Principal, name: str, ref: Ref, errors: list[FieldError]) -> Any:
    single = not isinstance(ref.id, Collection)
    ids: list[Any] = [ref.id] if not isinstance(ref.id, Collection) else list(dict.fromkeys(ref.id))
    model = ref.model
    wanted = [i for i in ids if _is_bigint(i)]
    rows: dict[int, Any] = {}
    if wanted:
        query = select(model).where(model.id.in_(wanted), model.org_id == principal.org_id)
        if ref.where is not None:
            query = query.where(ref.where)
        rows = {row.id: row for row in session.scalars(query)}
    unknown = [i for i in ids if i not in rows]
    if unknown:
        errors.append(_problem(name, "unknown", unknown))
    entity = getattr(model, "__entity__", None)
    if ref.privilege and entity and rows and principal.depth(entity, ref.privilege) != ORG:
        allowed = set(session.scalars(select(model.id).where(model.id.in_(list(rows)),
                                                             scope(principal, model, ref.privilege))))
        outside = [i for i in rows if i not in allowed and not (ref.reach and ref.reach(session, principal, i))]
        if outside:
            errors.append(_problem(name, "out_of_scope", outside))
    return rows.get(ids[0]) if single else [rows[i] for i in ids if i in rows]


def _place(session: Session, principal: Principal, place: Place, found: Found, errors: list[FieldError]) -> None:
    depth = principal.require(place.entity, place.privilege)
    owner = None
    if place.owner_id is not None:
        owner = _resolve(session, principal, place.owner_field,
                         Ref(User, place.owner_id, None, User.is_active.is_(True)), errors)
        if owner is None:
            return
    unit_id = place.unit_id if place.unit_id is not None else (owner.unit_id if owner is not None else None)
    unit = None
    if unit_id is not None:
        unit = _resolve(session, principal, place.unit_field, Ref(BusinessUnit, unit_id, None), errors)
        if unit is None:
            return
    if place.owner_at_unit and unit is not None and owner is not None and not owner.unit.path.startswith(unit.path):
        errors.append(_problem(place.owner_field, "wrong_unit"))
        return
    if not within_depth(session, principal, depth, unit_id=unit_id, owner_id=place.owner_id):
        # the field at fault: the unit, unless "own" reaches it and only the owner is someone else
        at_fault = place.unit_field
        if depth == OWN and place.owner_id != principal.user_id and (
                unit is None or principal.unit_path.startswith(unit.path)):
            at_fault = place.owner_field
        errors.append(_problem(at_fault, "out_of_scope",
                               [place.owner_id if at_fault == place.owner_field else unit_id]))
        return
    found.rows[place.unit_field], found.rows[place.owner_field] = unit, owner
    found.unit_id, found.owner_id = unit_id, place.owner_id


def check_references(session: Session, principal: Principal, refs: Mapping[str, Ref] | None = None, *,
                     place: Place | None = None) -> Found:
    """Every foreign id a write names, checked in one place before anything is written: each must be a row of
    the caller's organisation (code ``unknown`` otherwise: another organisation's id is not told apart from one
    that does not exist) and within the caller's scope for the privilege named (``out_of_scope``). A placement
    (unit and owner of the row written) must also be one the caller's depth for ``entity.privilege`` reaches,
    with the owner working at or under the unit (``wrong_unit``). All faults are answered together: 422."""
    errors: list[FieldError] = []
    found = Found()
    for name, ref in (refs or {}).items():
        if ref.id is not None:
            found.rows[name] = _resolve(session, principal, name, ref, errors)
    if place is not None:
        _place(session, principal, place, found, errors)
    if errors:
        first = errors[0]
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors,
                               message=(f"reference.page.{first.code}", {}))
    return found


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


def home_unit(session: Session, principal: Principal) -> int:
    """Where a record the principal makes for others to reach (a segment, a template, a broadcast) is placed
    unless they say: their unit, or when that is a team, the unit the team belongs to. A team is a group of people,
    not a part of the organisation with customers of its own: HQ marketing works in a team under HQ, and a segment
    placed in the team would cover the team's customers — none."""
    ids = [int(part) for part in principal.unit_path.strip("/").split("/") if part]
    kinds = dict(session.execute(select(BusinessUnit.id, BusinessUnit.kind).where(
        BusinessUnit.org_id == principal.org_id, BusinessUnit.id.in_(ids))).all()) if ids else {}
    for unit_id in reversed(ids):
        if kinds.get(unit_id, "team") != "team":
            return unit_id
    assert principal.unit_id is not None, "a principal that makes records works in a unit"
    return principal.unit_id


def get_scoped(session: Session, principal: Principal, model: type[Row], row_id: int, privilege: str = "read") -> Row:
    """One row by id within scope; NotFound otherwise (never 403, so existence does not leak)."""
    mapped: Any = model
    row = session.scalar(select(mapped).where(mapped.id == row_id, scope(principal, mapped, privilege)))
    if row is None:
        raise NotFound(f"No {mapped.__entity__} record with id {row_id}.")
    found: Row = row
    return found

