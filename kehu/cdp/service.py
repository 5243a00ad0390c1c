"""Business rules of customer data: sources, profiles (list, search, 360), manual merge and unmerge.

Over 600 lines: the customer's reads and writes share their scope checks here; the Customer 360's reads (the
statements built once) are what to move out next."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import uuid4

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session, defer

from kehu.cdp import commerce, fields, identity, normalise, relations, schemas, search, writer
from kehu.cdp import timeline as history
from kehu.cdp.manifest import PROFILE_CHANGED
from kehu.cdp.models import (
    HAPPENING,
    Account,
    AccountMember,
    Event,
    Identity,
    IngestBatch,
    Merge,
    Order,
    OrderLine,
    Profile,
    Source,
    Vehicle,
)
from kehu.cdp.views import CustomerView
from kehu.core import audit, domains, events
from kehu.core.audit import changed, snapshot
from kehu.core.db import Database, EveryRow, month_of, utcnow
from kehu.core.errors import Conflict, FieldError, NotFound, Unauthorized, ValidationFailed, invalid
from kehu.core.i18n import t
from kehu.core.jobs import poller
from kehu.core.pagination import OffsetPage, Page, keyset_after, keyset_page, offset_page, page_of
from kehu.core.security import digest_api_key, generate_api_key
from kehu.tenancy import service as tenancy_service
from kehu.tenancy.access import Place, Principal, Ref, check_references, get_scoped, require_row, scope, scoped_once
from kehu.tenancy.models import BusinessUnit

WRITE_KEY_PREFIX = "wk_"


# -- sources ---------------------------------------------------------------------------------------
def create_source(session: Session, principal: Principal, *, data: schemas.SourceCreate) -> tuple[Source, str]:
    unit_id = data.unit_id if data.unit_id is not None else principal.unit_id
    unit = check_references(session, principal, place=Place("sources", "create", unit_id, principal.user_id,
                                                            owner_at_unit=False))["unit_id"]
    new = generate_api_key()
    write_key = WRITE_KEY_PREFIX + new.key.removeprefix("kehu_")
    source = Source(org_id=principal.org_id, unit_id=unit.id, created_by_id=principal.user_id, name=data.name,
                    kind=data.kind, write_key_prefix=new.prefix, write_key_digest=digest_api_key(write_key))
    session.add(source)
    session.flush()
    audit.record(session, principal, action="create", entity="sources", entity_id=source.id, unit_id=unit.id,
                 after=snapshot(source), summary=f"Source {source.name} created")
    return source, write_key


def list_sources(session: Session, principal: Principal) -> list[Source]:
    principal.require("sources", "read")
    return list(session.scalars(select(Source).where(scope(principal, Source)).order_by(Source.id)))


def source_for_write_key(session: Session, write_key: str) -> Source:
    source = session.scalar(select(Source).where(Source.write_key_digest == digest_api_key(write_key)))
    if source is None or not source.is_active:
        raise Unauthorized("The write key is not valid for any active source.")
    return source


def set_source_active(session: Session, principal: Principal, source_id: int, active: bool) -> Source:
    source = get_scoped(session, principal, Source, source_id)
    require_row(session, principal, "sources", "update", unit_id=source.unit_id, owner_id=source.created_by_id)
    source.is_active = active
    session.flush()
    audit.record(session, principal, action="update", entity="sources", entity_id=source.id,
                 unit_id=source.unit_id, after={"is_active": active},
                 summary=f"Source {source.name} {'enabled' if active else 'disabled'}")
    return source


# -- profiles --------------------------------------------------------------------------------------
def _live() -> Any:
    return Profile.merged_into_id.is_(None)


def search_filter(principal: Principal, q: str) -> Any:
    """Name, pinyin, mobile in any format or its last digits, e-mail, or any identity value (VIN, openid, user
    id…), each from its own index (kehu.cdp.search); without pii.read only by what the reader is shown. No scope:
    callers add the customer scope (``profile_filters``) or search among rows already scoped (a reader's leads,
    whose customers they see through them)."""
    return search.matches(principal.org_id, q, personal=principal.has("pii.read"))


PROFILE_SORTS = {"name": Profile.name, "last_seen_at": Profile.last_seen_at, "created_at": Profile.created_at,
                 "city": Profile.city, "lifecycle_stage": Profile.lifecycle_stage}


def profile_filters(principal: Principal, q: str | None, unit_id: int | None, stage: str | None) -> list[Any]:
    filters: list[Any] = [scope(principal, Profile, "read"), _live()]
    if q:
        filters.append(search_filter(principal, q))
    if unit_id is not None:
        sub = select(BusinessUnit.path).where(BusinessUnit.id == unit_id).scalar_subquery()
        filters.append(Profile.unit_id.in_(select(BusinessUnit.id).where(BusinessUnit.path.startswith(sub))))
    if stage:
        filters.append(Profile.lifecycle_stage == stage)
    return filters


def list_profiles(session: Session, principal: Principal, *, q: str | None = None, unit_id: int | None = None,
                  stage: str | None = None, limit: int = 50, cursor: str | None = None) -> Page[Profile]:
    principal.require("profiles", "read")
    return _listed(session, principal, q, unit_id=unit_id, stage=stage, limit=limit, cursor=cursor)


def _listed(session: Session, principal: Principal, q: str | None, *, unit_id: int | None, stage: str | None,
            limit: int, cursor: str | None) -> Page[Profile]:
    """A page of the customer list, or of the search box's matches, from a statement built once per kind of
    search (``search.terms``), scope form, filters present and page (first or next), its values bound: building
    it, and its cache key, had cost half of a search's CPU in the server and a fifth of a page's."""
    shape, values = search.terms(q, personal=principal.has("pii.read")) if q else ((), {})
    after = keyset_after(cursor, Profile.id)
    filters: list[Any] = []
    if unit_id is not None:  # the unit and the units below it
        under = select(BusinessUnit.path).where(BusinessUnit.id == bindparam("filter_unit_id")).scalar_subquery()
        filters.append(Profile.unit_id.in_(select(BusinessUnit.id).where(BusinessUnit.path.startswith(under))))
    if stage is not None:
        filters.append(Profile.lifecycle_stage == bindparam("filter_stage"))
    if after is not None:
        filters.append(Profile.id < bindparam("after_id"))
    key = ("customer_list", shape, unit_id is not None, stage is not None, after is not None)
    query, scoped = scoped_once(key, principal, Profile, lambda in_scope: (
        select(Profile).options(defer(Profile.trait_times))  # when and whence each trait was set: never listed
        .where(in_scope, _live(), *([search.condition(shape)] if shape else []), *filters)
        .order_by(Profile.id.desc()).limit(bindparam("rows"))))
    rows = list(session.scalars(query, {**values, **scoped, "search_org_id": principal.org_id, "rows": limit + 1,
                                        "after_id": after, "filter_unit_id": unit_id, "filter_stage": stage}))
    return page_of(rows, limit=limit, id_column=Profile.id)


def page_profiles(session: Session, principal: Principal, *, q: str | None = None, unit_id: int | None = None,
                  stage: str | None = None, sort: str = "last_seen_at", descending: bool = True, page: int = 1,
                  per_page: int = 20) -> OffsetPage[Profile]:
    principal.require("profiles", "read")
    column = PROFILE_SORTS.get(sort, Profile.last_seen_at)
    order = [column.desc().nulls_last() if descending else column.asc().nulls_last(), Profile.id.desc()]
    # trait_times (when and whence each trait was set) is read by ingestion, never by a list: left unread
    stmt = select(Profile).options(defer(Profile.trait_times)).where(*profile_filters(principal, q, unit_id, stage))
    return offset_page(session, stmt, order_by=order, page=page, per_page=per_page)


# A reader may see one customer outside their customer scope through a row of their own about that customer:
# a dealer that recorded an inquiry of a person the group already knows works its lead with the customer's
# record (the group shares the customer; lists, searches, segments and exports keep the scope filter).
# Domains above say so in their manifests' ``read_through`` (sales: a lead they may read).
def _reads_through(session: Session, principal: Principal, profile_id: int) -> bool:
    return any(grant(session, principal, profile_id) for grant in domains.contributed("read_through"))


def _follow(session: Session, profile_id: int, *where: Any) -> Profile | None:
    """The profile by id, or the one it was merged into (an id merged away leads to where it lives on)."""
    profile = session.scalar(select(Profile).where(Profile.id == profile_id, *where))
    hops = 0
    while profile is not None and profile.merged_into_id is not None and hops < 20:
        profile = session.scalar(select(Profile).where(Profile.id == profile.merged_into_id, *where))
        hops += 1
    return profile


def live_profile_ids(session: Session, profile_ids: set[int]) -> dict[int, int]:
    """Each profile's live record, for many at once: itself, or the one it was merged into (following chains of
    merges a step per statement, not a query per profile)."""
    live = {profile_id: profile_id for profile_id in profile_ids}
    pending = set(profile_ids)
    for _ in range(20):  # merges chain rarely more than once or twice
        merged: dict[int, int] = {profile_id: into for profile_id, into in session.execute(
            select(Profile.id, Profile.merged_into_id).where(Profile.id.in_(pending),
                                                              Profile.merged_into_id.is_not(None))) if into is not None}
        if not merged:
            break
        for start, now in live.items():
            if now in merged:
                live[start] = merged[now]
        pending = set(merged.values())
    return live


def get_profile(session: Session, principal: Principal, profile_id: int) -> Profile:
    """A live profile in scope, or one the reader reaches through a row of theirs (the domains' ``read_through``).
    An id that was merged away leads to the profile it lives on in."""
    query, readable = scoped_once("profile_in_scope", principal, Profile, lambda in_scope: select(Profile).where(
        Profile.id == bindparam("profile_id"), in_scope))
    profile = session.scalar(query, {"profile_id": profile_id, **readable})
    if profile is not None and profile.merged_into_id is not None:  # an id merged away: where it lives on
        profile = _follow(session, profile_id, scope(principal, Profile, "read"))
    if profile is None:
        reached = _follow(session, profile_id, Profile.org_id == principal.org_id)
        if reached is not None and reached.merged_into_id is None and _reads_through(session, principal, reached.id):
            profile = reached
    if profile is None or profile.merged_into_id is not None:
        raise NotFound(f"No customer with id {profile_id}.")
    return profile


def can_read_profile(session: Session, principal: Principal, profile_id: int) -> bool:
    """Whether ``get_profile`` would answer the reader (in scope, or reached through a row of theirs)."""
    try:
        get_profile(session, principal, profile_id)
    except NotFound:
        return False
    return True


def customer_ref(ids: int | list[int] | None, privilege: str = "read", where: Any = None) -> Ref:
    """Customer ids a write names, for check_references: read as ``get_profile`` reads them (in scope, or reached
    through a row of the reader's), changed only within scope."""
    return Ref(Profile, ids, privilege, where, reach=can_read_profile if privilege == "read" else None)


def in_use(session: Session, principal: Principal, field: str, holder_id: int, *, hint: str,
           hidden_hint: str | None = None) -> Conflict:
    """409 ``in_use``: the value of ``field`` (a mobile, an e-mail, a VIN) belongs to another customer. The
    answer names that customer (``existing_id``) only when the caller may read them: an id — or a "belongs to
    customer N" — for a customer of another dealer would confirm who holds a number the caller merely typed
    (an existence oracle across the group). ``hint`` says what to do instead (the catalogue's words; for a
    mobile or e-mail: record an inquiry, which makes the caller's own lead and shows them the customer);
    ``hidden_hint`` replaces it when the holder is out of the caller's sight."""
    readable = can_read_profile(session, principal, holder_id)
    locale = principal.locale
    words = t(f"customers.in_use.{field}", locale)
    extra: dict[str, Any] = {"hint": t(hint if readable or hidden_hint is None else hidden_hint, locale)}
    if readable:
        extra["existing_id"] = holder_id
    return Conflict(words, errors=[FieldError(field, words, "in_use")], extra=extra)


def _standard_values(data: dict[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    for key, value in data.items():
        if value is None:
            values[key] = None
            continue
        try:
            if key == "mobile":
                value = normalise.phone(value)
            elif key == "email":
                value = normalise.email(value)
            elif key == "name":
                value = normalise.name(value) or None
            elif key == "address":
                value = normalise.address(value) or None
            elif key == "postcode":
                value = normalise.postcode(value) or None
            elif key == "birthday" and isinstance(value, date) and value > date.today():
                raise normalise.InvalidValue("date_out_of_range", value=value)
        except normalise.InvalidValue as error:
            errors.append(FieldError(key, str(error)))
            continue
        values[key] = value
    return values, errors


def create_profile(session: Session, principal: Principal, *, data: schemas.ProfileCreate) -> Profile:
    """A customer entered by hand (call centre, showroom). Their phone/e-mail become identities; a phone
    that already belongs to a customer is a conflict naming that customer, not a silent duplicate."""
    unit_id = data.unit_id if data.unit_id is not None else principal.unit_id
    owner_id = data.owner_id if data.owner_id is not None else (principal.user_id if principal.depth(
        "profiles", "create") == "own" else None)
    check_references(session, principal, place=Place("profiles", "create", unit_id, owner_id,
                                                     owner_at_unit=data.owner_id is not None))
    values, errors = _standard_values(data.model_dump(exclude={"unit_id", "owner_id", "attributes"}))
    attributes, problems = fields.clean_attributes(fields.definitions(session, principal.org_id), data.attributes)
    errors += [FieldError(f"attributes.{key}", str(error), error.code) for key, error in problems]
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)
    pairs = [(k, values[k]) for k in ("mobile", "email") if values.get(k)]
    for kind, value in pairs:
        existing = session.scalar(select(Identity.profile_id).where(Identity.org_id == principal.org_id,
                                                                    Identity.kind == kind, Identity.value == value))
        if existing is not None:
            raise in_use(session, principal, kind, existing, hint="customers.in_use_hint")
    now = utcnow()
    given = {"org_id": principal.org_id, "unit_id": unit_id, "owner_id": owner_id, "attributes": attributes,
             "trait_times": {k: {"ts": now.isoformat(), "src": None} for k, v in values.items() if v},
             "first_seen_at": now, "last_seen_at": now, "source": "manual", **values,
             "name_pinyin": normalise.pinyin(values.get("name"))}
    session.flush()
    [profile_id] = writer.write_profiles(session, {key: [value] for key, value in given.items()}, now=now)
    writer.write_identities(session, principal.org_id, profile_ids=[profile_id] * len(pairs),
                            kinds=[kind for kind, _ in pairs], values=[value for _, value in pairs],
                            source_ids=EveryRow(None), first_seen=EveryRow(now))
    profile = session.get_one(Profile, profile_id)
    audit.record(session, principal, action="create", entity="profiles", entity_id=profile.id, unit_id=unit_id,
                 after={"name": profile.name, "unit_id": unit_id, "owner_id": owner_id},
                 summary=f"Customer {profile.name or profile.id} created")
    events.publish(session, PROFILE_CHANGED, org_id=profile.org_id, entity="profiles", entity_id=profile.id,
                   profile_id=profile.id, what="created")
    return profile


def update_profile(session: Session, principal: Principal, profile_id: int, *,
                   data: schemas.ProfileUpdate) -> Profile:
    profile = get_profile(session, principal, profile_id)
    require_row(session, principal, "profiles", "update", unit_id=profile.unit_id, owner_id=profile.owner_id)
    changes = data.model_dump(exclude_unset=True)
    attributes = changes.pop("attributes", None)
    values, errors = _standard_values(changes)
    if attributes:
        attributes, problems = fields.clean_attributes(fields.definitions(session, profile.org_id), attributes)
        errors += [FieldError(f"attributes.{key}", str(error), error.code) for key, error in problems]
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)
    before = snapshot(profile)
    stamp = utcnow()
    traits = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in values.items() if v is not None}
    if attributes:
        traits.update(attributes)
    identity.apply_traits(profile, traits, ts=stamp, source_id=None)
    for key, value in values.items():
        if value is None:
            setattr(profile, key, None)
    for kind in ("mobile", "email"):
        value = values.get(kind)
        if value:
            owner = session.scalar(select(Identity.profile_id).where(
                Identity.org_id == profile.org_id, Identity.kind == kind, Identity.value == value))
            if owner is None:
                writer.write_identities(session, profile.org_id, profile_ids=[profile.id], kinds=[kind],
                                        values=[value], source_ids=[None], first_seen=[stamp])
            elif owner != profile.id:
                raise in_use(session, principal, kind, owner, hint="customers.in_use_merge_hint",
                             hidden_hint="customers.in_use_hint")
    session.flush()
    old, new = changed(before, snapshot(profile))
    for key in ("trait_times", "name_pinyin"):
        old.pop(key, None)
        new.pop(key, None)
    audit.record(session, principal, action="update", entity="profiles", entity_id=profile.id,
                 unit_id=profile.unit_id, before=old, after=new,
                 summary=f"Customer {profile.name or profile.id} updated")
    events.publish(session, PROFILE_CHANGED, org_id=profile.org_id, entity="profiles", entity_id=profile.id,
                   profile_id=profile.id, what="updated")
    return profile


def assign_profiles(session: Session, principal: Principal, *, profile_ids: list[int], owner_id: int) -> int:
    """Give customers to a salesperson (their unit follows). One UPDATE over the rows the principal may
    assign; ids outside that scope are refused as not found, so nothing is half-done."""
    found = check_references(session, principal, {"profile_ids": Ref(Profile, profile_ids, "assign", _live())},
                             place=Place("profiles", "assign", None, owner_id))
    owner = found["owner_id"]
    allowed = {p.id for p in found["profile_ids"]}
    session.execute(update(Profile).where(Profile.id.in_(allowed))
                    .values(owner_id=owner.id, unit_id=owner.unit_id, updated_at=utcnow())
                    .execution_options(synchronize_session=False))
    audit.record(session, principal, action="assign", entity="profiles", unit_id=owner.unit_id,
                 after={"owner_id": owner.id, "count": len(allowed), "ids": sorted(allowed)[:1000]},
                 summary=f"{len(allowed)} customers assigned to {owner.name}")
    events.publish_many(session, PROFILE_CHANGED, [
        {"org_id": principal.org_id, "entity": "profiles", "entity_id": i, "profile_id": i,
         "payload": {"what": "assigned"}} for i in sorted(allowed)])  # their unit moved: other segments' now
    return len(allowed)


# The Customer 360's reads of one profile's rows, built once with the profile as a parameter: building a statement
# and its cache key each time cost as much as running it, and a 360 makes a dozen.
_IDENTITIES_OF = (select(Identity).where(Identity.profile_id == bindparam("profile_id"))
                  .order_by(Identity.kind, Identity.first_seen_at))
_MERGES_OF = (select(Merge).where(Merge.org_id == bindparam("org_id"),
                                  or_(Merge.winner_id == bindparam("profile_id"),
                                      Merge.loser_id == bindparam("profile_id")))
              .order_by(Merge.id.desc()))
_VEHICLES_OF = (select(Vehicle).where(Vehicle.profile_id == bindparam("profile_id"))
                .order_by(Vehicle.purchased_at.desc()))


def identities_of(session: Session, profile: Profile) -> list[Identity]:
    return list(session.scalars(_IDENTITIES_OF, {"profile_id": profile.id}))


def merges_of(session: Session, profile: Profile) -> list[Merge]:
    return list(session.scalars(_MERGES_OF, {"org_id": profile.org_id, "profile_id": profile.id}))


def timeline(session: Session, principal: Principal, profile: Profile, *, limit: int = 50,
             cursor: str | None = None) -> Page[Event]:
    # what kehu recorded itself (a lead's status, a deal won) shows in the lead's and the deal's own history, where
    # the reader's scope on them applies: not here, where another dealer's deal would show
    stmt = select(Event).where(Event.org_id == principal.org_id, Event.profile_id == profile.id,
                               Event.type != HAPPENING)
    return keyset_page(session, stmt, id_column=Event.id, sort_column=Event.ts, limit=limit, cursor=cursor,
                       descending=True)


def timeline_page(session: Session, principal: Principal, profile_id: int | Profile, *, limit: int = 50,
                  cursor: str | None = None, view: CustomerView | None = None) -> schemas.TimelinePage:
    """The interleaved timeline of events and changes, for the API and the Customer 360 page (which passes the
    profile it has read already)."""
    profile = profile_id if isinstance(profile_id, Profile) else get_profile(session, principal, profile_id)
    view = view or CustomerView.of(session, principal)
    page = history.timeline(session, principal, profile, limit=limit, cursor=cursor)
    items = []
    for item in page.items:
        if item.kind == history.EVENT:
            event = item.row
            items.append(schemas.TimelineItemOut(kind="event", id=item.id, ts=item.ts, type=event.type,
                                                 event=event.event, source_id=event.source_id,
                                                 properties=view.properties(event.properties or {})))
        elif item.kind in history.streams():
            items.append(schemas.TimelineItemOut(kind=item.kind, id=item.id, ts=item.ts,
                                                 **history.streams()[item.kind].present(principal, item.row)))
        else:
            change = item.row
            items.append(schemas.TimelineItemOut(
                kind="change", id=item.id, ts=item.ts, action=change.action, entity=change.entity,
                entity_id=change.entity_id, actor=change.actor_display, summary=history.change_summary(view, change),
                changes=history.change_details(view, change)))
    return schemas.TimelinePage(items=items, next_cursor=page.next_cursor)


def customer_360(session: Session, principal: Principal, profile_id: int, *, include: set[str],
                 limit: int = 50, cursor: str | None = None) -> schemas.Customer360:
    profile = get_profile(session, principal, profile_id)
    view = CustomerView.of(session, principal)
    result = schemas.Customer360(profile=view.profile(profile))
    if "identities" in include:
        result.identities = [view.identity(i) for i in identities_of(session, profile)]
    if "merges" in include:
        result.merges = [schemas.MergeOut.model_validate(m) for m in merges_of(session, profile)]
    if "consents" in include:
        result.consents = [schemas.ConsentOut(**vars(c)) for c in relations.current_consents(session, profile)]
    if "accounts" in include:
        result.accounts = [view.account(a) for a in relations.accounts_of(session, profile)]
    if "orders" in include:
        result.orders = orders_of(session, principal, profile)
    if "vehicles" in include:
        result.vehicles = [view.vehicle(v) for v in session.scalars(_VEHICLES_OF, {"profile_id": profile.id})]
    if "timeline" in include:
        page_ = timeline_page(session, principal, profile, limit=limit, cursor=cursor, view=view)
        result.timeline, result.timeline_next_cursor = page_.items, page_.next_cursor
    if "events" in include:
        page = timeline(session, principal, profile, limit=limit, cursor=cursor)
        result.events = [schemas.EventOut(id=e.id, type=e.type, event=e.event, ts=e.ts, source_id=e.source_id,
                                          properties=view.properties(e.properties or {}),
                                          context=view.properties(e.context or {}))
                         for e in page.items]
        result.events_next_cursor = page.next_cursor
    return result


def order_out(order: Order, lines: list[OrderLine]) -> schemas.OrderOut:
    return schemas.OrderOut(
        id=order.id, external_id=order.external_id, status=order.status, ordered_at=order.ordered_at,
        total=order.total, currency=order.currency, profile_id=order.profile_id, unit_id=order.unit_id,
        owner_id=order.owner_id, lines=[schemas.OrderLineOut(sku=line.sku, name=line.name, quantity=line.quantity,
                                                             unit_price=line.unit_price) for line in lines])


def orders_of(session: Session, principal: Principal, profile: Profile) -> list[schemas.OrderOut]:
    """The customer's orders the viewer may read, with their lines (two queries, not one per order)."""
    if not principal.can("orders"):
        return []
    query, readable = scoped_once("orders_of_profile", principal, Order, lambda in_scope: select(Order).where(
        Order.profile_id == bindparam("profile_id"), in_scope).order_by(Order.ordered_at.desc()))
    orders = list(session.scalars(query, {"profile_id": profile.id, **readable}))
    lines: dict[int, list[OrderLine]] = {o.id: [] for o in orders}
    if orders:
        for line in session.scalars(select(OrderLine).where(OrderLine.order_id.in_(list(lines)))
                                    .order_by(OrderLine.id)):
            lines[line.order_id].append(line)
    return [order_out(o, lines[o.id]) for o in orders]


def create_order(session: Session, principal: Principal, *, data: schemas.OrderCreate) -> schemas.OrderOut:
    unit_id = data.unit_id if data.unit_id is not None else principal.unit_id
    owner_id = data.owner_id if data.owner_id is not None else principal.user_id
    check_references(session, principal, {"profile_id": customer_ref(data.profile_id)},
                     place=Place("orders", "create", unit_id, owner_id, owner_at_unit=data.owner_id is not None))
    profile = get_profile(session, principal, data.profile_id)
    order = commerce.create_order(session, principal, profile, external_id=data.external_id,
                                  ordered_at=data.ordered_at or utcnow(), unit_id=unit_id,  # type: ignore[arg-type]
                                  owner_id=owner_id, status=data.status,
                                  lines=[line.model_dump() for line in data.lines])
    return order_out(order, list(session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))))


def list_orders(session: Session, principal: Principal, *, profile_id: int | None = None, limit: int = 50,
                cursor: str | None = None) -> Page[Any]:
    principal.require("orders", "read")
    stmt = select(Order).where(scope(principal, Order))
    if profile_id is not None:
        stmt = stmt.where(Order.profile_id == profile_id)
    return keyset_page(session, stmt, id_column=Order.id, sort_column=Order.ordered_at, limit=limit,
                       cursor=cursor)


def register_vehicle(session: Session, principal: Principal, profile_id: int, *,
                     data: schemas.VehicleIn) -> Vehicle:
    profile = get_profile(session, principal, profile_id)
    require_row(session, principal, "profiles", "update", unit_id=profile.unit_id, owner_id=profile.owner_id)
    try:
        vin = normalise.identity_value("vin", data.vin)
    except normalise.InvalidValue as error:
        raise invalid("vin", str(error)) from error
    holder = session.scalar(select(Vehicle.profile_id).where(Vehicle.org_id == profile.org_id, Vehicle.vin == vin))
    if holder is not None and holder != profile.id and not can_read_profile(session, principal, holder):
        # a resale moves the car, but only between customers the caller sees: a car of another dealer's customer
        # is neither moved out of their record nor confirmed to be theirs
        raise in_use(session, principal, "vin", holder, hint="vehicles.in_use_hint")
    vehicle = commerce.register_vehicle(session, profile, vin=vin, model=data.model, unit_id=profile.unit_id,
                                        purchased_at=data.purchased_at, plate=data.plate,
                                        model_year=data.model_year)
    audit.record(session, principal, action="register_vehicle", entity="profiles", entity_id=profile.id,
                 unit_id=profile.unit_id, after={"vin": vin, "model": data.model},
                 summary=f"Vehicle {vin} registered to customer {profile.id}")
    return vehicle


def record_consent(session: Session, principal: Principal, profile_id: int, *,
                   data: schemas.ConsentCreate) -> Any:
    profile = get_profile(session, principal, profile_id)
    require_row(session, principal, "profiles", "update", unit_id=profile.unit_id, owner_id=profile.owner_id)
    return relations.record_consent(session, principal, profile, channel=data.channel, purpose=data.purpose,
                                    granted=data.granted, evidence=data.evidence, ts=data.ts)


def list_accounts(session: Session, principal: Principal, *, q: str | None = None, limit: int = 50,
                  cursor: str | None = None) -> Page[Any]:
    principal.require("accounts", "read")
    stmt = select(Account).where(scope(principal, Account))
    if q:
        stmt = stmt.where(or_(Account.name.like(f"%{q.strip()}%"), Account.external_id == q.strip()))
    return keyset_page(session, stmt, id_column=Account.id, limit=limit, cursor=cursor)


def create_account(session: Session, principal: Principal, *, name: str, kind: str, unit_id: int,
                   owner_id: int | None) -> Account:
    """A company or household entered by hand (a lead's employer, a fleet buyer); its external id is made up,
    since no source sent it."""
    require_row(session, principal, "accounts", "create", unit_id=unit_id, owner_id=owner_id)
    account = Account(org_id=principal.org_id, unit_id=unit_id, owner_id=owner_id, external_id=f"kehu:{uuid4().hex}",
                      kind=kind, name=name.strip(), traits={})
    session.add(account)
    session.flush()
    audit.record(session, principal, action="create", entity="accounts", entity_id=account.id, unit_id=unit_id,
                 after={"name": account.name, "kind": kind}, summary=f"Account {account.name}")
    return account


def get_account(session: Session, principal: Principal, account_id: int) -> tuple[Account, list[Profile]]:
    account = get_scoped(session, principal, Account, account_id)
    members = list(session.scalars(select(Profile).where(
        scope(principal, Profile), _live(),
        Profile.id.in_(select(AccountMember.profile_id).where(AccountMember.account_id == account.id)))
        .order_by(Profile.id)))
    return account, members


# -- merge / unmerge by hand -------------------------------------------------------------------------
def merge_by_hand(session: Session, principal: Principal, *, data: schemas.MergeRequest) -> Merge:
    if data.winner_id == data.loser_id:
        raise invalid("loser_id", "must differ from winner_id")
    check_references(session, principal, {"winner_id": Ref(Profile, data.winner_id, "update"),
                                          "loser_id": Ref(Profile, data.loser_id, "update")})
    winner = get_profile(session, principal, data.winner_id)
    loser = get_profile(session, principal, data.loser_id)
    if winner.id == loser.id:
        raise Conflict("These two ids are already the same customer.")
    for profile in (winner, loser):
        require_row(session, principal, "profiles", "update", unit_id=profile.unit_id, owner_id=profile.owner_id)
    from kehu.cdp.dedupe import checked_choices

    checked_choices(session, principal.org_id, data.fields)
    return identity.merge_profiles(session, winner, loser, reason="manual",
                                   detail=data.reason or f"merged by {principal.display}", actor=principal,
                                   kept=True, choices=data.fields)


def unmerge(session: Session, principal: Principal, merge_id: int) -> Profile:
    merge = session.scalar(select(Merge).where(Merge.id == merge_id, Merge.org_id == principal.org_id))
    if merge is None:
        raise NotFound(f"No merge with id {merge_id}.")
    winner = get_profile(session, principal, merge.winner_id)
    require_row(session, principal, "profiles", "update", unit_id=winner.unit_id, owner_id=winner.owner_id)
    return identity.unmerge(session, merge, actor=principal)


def activity_by_month(session: Session, principal: Principal, profile: Profile) -> list[tuple[str, int]]:
    """Events per month for one customer (UTC months), oldest first."""
    month = month_of(Event.ts, session.get_bind().dialect.name)
    rows = session.execute(select(month, func.count()).where(
        Event.org_id == principal.org_id, Event.profile_id == profile.id, Event.type != HAPPENING)
        .group_by(month).order_by(month))
    return [(m, c) for m, c in rows]


def names_for(session: Session, *, user_ids: set[int], unit_ids: set[int]) -> tuple[dict[int, str], dict[int, str]]:
    """Display names of owners and units for a page of customers, in two queries (no query per row)."""
    names = tenancy_service.names_of(session, unit_ids=unit_ids, user_ids=user_ids)
    return names["user"], names["unit"]


def profile_counts(session: Session, principal: Principal) -> dict[str, int]:
    rows = session.execute(select(Profile.lifecycle_stage, func.count()).where(
        scope(principal, Profile), _live()).group_by(Profile.lifecycle_stage))
    return {stage: count for stage, count in rows}


# -- the worker drains the inbox -----------------------------------------------------------------------
# Inbox batches one transaction takes: small ones are processed together (identity.process_batches), up to
# identity.TOGETHER_MESSAGES calls; more at once would hold profiles' row locks longer.
INBOX_CLAIM = 10


@poller
def drain_inbox(database: Database, batches: int = 20) -> bool:
    """Up to ``batches`` short transactions of up to ``INBOX_CLAIM`` inbox batches each, so concurrent workers
    hold profile row locks only briefly (long transactions over shared profiles deadlock). A batch reads the
    profiles it resolves against and then writes: on SQLite it holds the write lock from the start."""
    with database.unit_of_work(reader=True) as session:  # an idle worker looks first: no write lock every tick
        if session.scalar(select(IngestBatch.id).where(IngestBatch.status == "pending").limit(1)) is None:
            return False
    done = 0
    for _ in range(batches):
        with database.unit_of_work(writer=True) as session:
            if not identity.drain_inbox(session, limit=INBOX_CLAIM):
                break
        done += 1
    return done > 0
