"""Custom fields: an organisation's own customer attributes with a type, zh/en labels, options and a PII
flag. Defined keys are validated wherever attributes arrive (API, import, ingestion); keys nobody defined
stay free-form, as Segment traits are."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kehu.cdp import normalise
from kehu.cdp.models import CustomField
from kehu.core import audit
from kehu.core.audit import snapshot
from kehu.core.db import utcnow
from kehu.core.errors import Conflict, FieldError, NotFound, ValidationFailed, invalid
from kehu.tenancy.access import Principal
from kehu.tenancy.masking import is_masked
from kehu.tenancy.models import Organization

TYPES = ("text", "number", "date", "boolean", "option", "multi_option")
RESERVED = {"name", "gender", "birthday", "mobile", "phone", "email", "province", "city", "source",
            "lifecycle_stage", "consent", "address", "postcode", "firstName", "lastName"}
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
TRUE = {"true", "1", "yes", "y", "是", "有", "t"}
FALSE = {"false", "0", "no", "n", "否", "无", "f"}


def definitions(session: Session, org_id: int) -> dict[str, CustomField]:
    return {f.key: f for f in session.scalars(select(CustomField).where(CustomField.org_id == org_id)
                                              .order_by(CustomField.id))}


def coerce(field: CustomField, value: Any) -> Any:
    """The value in the field's type, or InvalidValue saying why not."""
    if value is None or value == "":
        return None
    if field.is_pii and is_masked(value):  # a masked export imported again must not overwrite the real value
        raise normalise.InvalidValue("masked", value=value)
    if field.type == "text":
        text = str(value).strip()
        if len(text) > 1000:
            raise normalise.InvalidValue("too_long", kind=field.key, limit=1000)
        return text
    if field.type == "number":
        try:
            number = float(str(value).replace(",", "").strip())
        except ValueError:
            raise normalise.InvalidValue("not_number", value=value) from None
        return int(number) if number.is_integer() else number
    if field.type == "date":
        # any day: a custom date is an expiry, a next service, a purchase, not a birthday held to a life's span
        return normalise.day(value).isoformat()
    if field.type == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE:
            return True
        if text in FALSE:
            return False
        raise normalise.InvalidValue("not_boolean", value=value)
    allowed = {o["value"] for o in field.options}
    labels = {label: o["value"] for o in field.options for label in (o.get("zh"), o.get("en")) if label}
    if field.type == "option":
        chosen = labels.get(str(value).strip(), str(value).strip())
        if chosen not in allowed:
            raise normalise.InvalidValue("not_option", value=value, allowed=", ".join(sorted(allowed)))
        return chosen
    items = value if isinstance(value, list) else [v for v in re.split(r"[,，;；|]", str(value)) if v.strip()]
    chosen_all = [labels.get(str(v).strip(), str(v).strip()) for v in items]
    wrong = [v for v in chosen_all if v not in allowed]
    if wrong:
        raise normalise.InvalidValue("not_option", value=", ".join(map(str, wrong)), allowed=", ".join(sorted(allowed)))
    return sorted(set(chosen_all))


def clean_attributes(defined: dict[str, CustomField], attributes: dict[str, Any]
                     ) -> tuple[dict[str, Any], list[tuple[str, normalise.InvalidValue]]]:
    """Defined keys coerced to their type; the rest kept as given. Problems are returned, not raised."""
    clean: dict[str, Any] = {}
    problems: list[tuple[str, normalise.InvalidValue]] = []
    for key, value in attributes.items():
        field = defined.get(key)
        if field is None:
            clean[key] = value
            continue
        try:
            clean[key] = coerce(field, value)
        except normalise.InvalidValue as error:
            problems.append((key, error))
    return clean, problems


# -- managing definitions ------------------------------------------------------------------------------
def _check(data: dict[str, Any]) -> None:
    errors = []
    if data.get("type") in ("option", "multi_option"):
        values = [o.get("value") for o in data.get("options") or []]
        if not values:
            errors.append(FieldError("options", "an option field needs options", "required"))
        elif len(set(values)) != len(values):
            errors.append(FieldError("options", "option values must be unique", "duplicate"))
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)


def _touch_organization(session: Session, org_id: int) -> None:
    """A field added or changed touches its organisation: principals carry the fields' masking rules (views.
    CustomerView.of) and are made again when their organisation changed, in this process and every other."""
    session.execute(update(Organization).where(Organization.id == org_id).values(updated_at=utcnow()))


def create_field(session: Session, principal: Principal, data: dict[str, Any]) -> CustomField:
    principal.require_permission("settings.manage")
    key = data["key"]
    if not _KEY.match(key) or key in RESERVED:
        raise invalid("key", "lower-case letters, digits and _, starting with a letter, not a standard field name")
    if data["type"] not in TYPES:
        raise invalid("type", f"one of {', '.join(TYPES)}")
    _check(data)
    if session.scalar(select(CustomField.id).where(CustomField.org_id == principal.org_id, CustomField.key == key)):
        raise Conflict(f"A field {key!r} exists.", errors=[FieldError("key", "already used", "unique")])
    field = CustomField(org_id=principal.org_id, **data)
    session.add(field)
    session.flush()
    _touch_organization(session, principal.org_id)
    audit.record(session, principal, action="create", entity="custom_fields", entity_id=field.id,
                 after=snapshot(field), summary=f"Custom field {key} created")
    return field


def update_field(session: Session, principal: Principal, field_id: int, changes: dict[str, Any]) -> CustomField:
    principal.require_permission("settings.manage")
    field = session.scalar(select(CustomField).where(CustomField.id == field_id,
                                                     CustomField.org_id == principal.org_id))
    if field is None:
        raise NotFound(f"No custom field with id {field_id}.")
    _check({"type": field.type, "options": changes.get("options", field.options)})
    before = snapshot(field)
    for key, value in changes.items():
        setattr(field, key, value)
    session.flush()
    _touch_organization(session, principal.org_id)
    audit.record(session, principal, action="update", entity="custom_fields", entity_id=field.id, before=before,
                 after=snapshot(field), summary=f"Custom field {field.key} updated")
    return field


def list_fields(session: Session, principal: Principal) -> list[CustomField]:
    principal.require("profiles", "read")
    return list(definitions(session, principal.org_id).values())
