"""What a template knows of each customer, read for a whole batch of customers at once (a handful of queries per
batch, never per message): their fields, custom fields, latest order and vehicle, dealer and salesperson, which
of the template's dynamic blocks they meet, and the organisation's content library."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.cdp.models import Order, Profile, Vehicle
from kehu.channels.models import ContentItem
from kehu.segments.conditions import compile_condition
from kehu.segments.schemas import condition_adapter
from kehu.tenancy.models import BusinessUnit, User

PROFILE_FIELDS = ("name", "gender", "birthday", "mobile", "email", "province", "city", "address", "postcode",
                  "lifecycle_stage", "source")


def library(session: Session, org_id: int) -> tuple[dict[str, str], dict[str, str]]:
    """The content library's snippets and images, by name."""
    snippets: dict[str, str] = {}
    images: dict[str, str] = {}
    for item in session.scalars(select(ContentItem).where(ContentItem.org_id == org_id)):
        (images if item.kind == "image" else snippets)[item.name] = item.body
    return snippets, images


def _latest(rows: Collection[Any], key: str, when: str) -> dict[int, Any]:
    latest: dict[int, Any] = {}
    for row in rows:
        owner = getattr(row, key)
        if owner not in latest or (getattr(row, when) or datetime.min) > (getattr(latest[owner], when) or datetime.min):
            latest[owner] = row
    return latest


def contexts(session: Session, org_id: int, timezone: str, profile_ids: Collection[int], *,
             blocks: dict[str, Any] | None = None, now: datetime | None = None) -> dict[int, dict[str, Any]]:
    """The template context of each customer in ``profile_ids`` (those of other organisations are left out)."""
    ids = sorted(set(profile_ids))
    if not ids:
        return {}
    profiles = list(session.scalars(select(Profile).where(Profile.org_id == org_id, Profile.id.in_(ids))))
    units = {u.id: u for u in session.scalars(select(BusinessUnit).where(
        BusinessUnit.org_id == org_id, BusinessUnit.id.in_({p.unit_id for p in profiles})))}
    owners = {u.id: u for u in session.scalars(select(User).where(
        User.org_id == org_id, User.id.in_({p.owner_id for p in profiles if p.owner_id})))}
    orders = _latest(list(session.scalars(select(Order).where(Order.org_id == org_id, Order.profile_id.in_(ids),
                                                              Order.status != "cancelled"))),
                     "profile_id", "ordered_at")
    vehicles = _latest(list(session.scalars(select(Vehicle).where(Vehicle.org_id == org_id,
                                                                  Vehicle.profile_id.in_(ids)))),
                       "profile_id", "created_at")
    shown: dict[str, set[int]] = {}
    for name, condition in (blocks or {}).items():
        clause = compile_condition(session, org_id, timezone, condition_adapter.validate_python(condition),
                                   reader=None, now=now, path=f"blocks.{name}")
        shown[name] = set(session.scalars(select(Profile.id).where(Profile.id.in_(ids), clause)))
    snippets, images = library(session, org_id)

    def snippet(name: str) -> Markup:
        return Markup(snippets.get(name, ""))

    def image(name: str) -> str:
        return images.get(name, "")

    result: dict[int, dict[str, Any]] = {}
    for profile in profiles:
        fields = {name: getattr(profile, name) for name in PROFILE_FIELDS}
        order = orders.get(profile.id)
        vehicle = vehicles.get(profile.id)
        unit = units.get(profile.unit_id)
        owner = owners.get(profile.owner_id) if profile.owner_id else None
        result[profile.id] = {
            **fields,
            "profile": fields,
            "fields": dict(profile.attributes or {}),
            "order": {"number": order.external_id, "total": order.total, "currency": order.currency,
                      "date": order.ordered_at, "status": order.status} if order else {},
            "vehicle": {"vin": vehicle.vin, "model": vehicle.model, "model_year": vehicle.model_year,
                        "plate": vehicle.plate, "purchased_at": vehicle.purchased_at} if vehicle else {},
            "dealer": {"name": unit.name, "city": unit.city, "province": unit.province} if unit else {},
            "salesperson": {"name": owner.name, "phone": owner.phone, "email": owner.email} if owner else {},
            "show": {name: profile.id in members for name, members in shown.items()},
            "snippet": snippet,
            "image": image,
        }
    return result


def language(profile_context: dict[str, Any], default: str) -> str:
    """The customer's language: their ``language`` custom field or trait when it says zh or en, else ``default``."""
    spoken = str(profile_context.get("fields", {}).get("language") or "").lower()
    if spoken.startswith("en"):
        return "en"
    if spoken.startswith("zh"):
        return "zh"
    return default
