"""The profile fields a journey's field node may set, how a value is checked against the field, and the one
statement that sets it for a step's customers.

A journey writes the life-cycle stage or a custom field that holds no personal data (a journey's value is in its
definition for every marketer who reads it to see). The value is checked when the journey is saved and again when
the step runs, against the field as it is then: a field deleted, made personal or given another type since skips
the node (the customers go on)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import String, cast, func, literal, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from kehu.cdp import fields, normalise
from kehu.cdp.identity import LIFECYCLE_STAGES
from kehu.cdp.manifest import PROFILE_CHANGED
from kehu.cdp.models import Profile
from kehu.core import events
from kehu.core.errors import FieldError

STAGE = "lifecycle_stage"
PLATFORMS = frozenset({"lead_status"})  # attributes the platform keeps (where the customer's latest lead stands)


def settable(session: Session, org_id: int) -> dict[str, Any]:
    """The fields a journey may set, by name (``lifecycle_stage``, ``attributes.<key>``): None for the stage, the
    custom field's definition otherwise."""
    return {STAGE: None, **{f"attributes.{key}": field for key, field in fields.definitions(session, org_id).items()
                            if not field.is_pii and key not in PLATFORMS}}


def checked_value(session: Session, org_id: int, name: str, value: Any) -> tuple[Any, FieldError | None]:
    """The value as the field stores it, or the problem with it (``field``: no such field a journey may set;
    ``value``: not a value of the field)."""
    field = settable(session, org_id).get(name, False)
    if field is False:
        return None, FieldError("field", f"{name!r} is no field a journey may set", "field")
    if value is None:
        return (None, FieldError("value", "every customer has a life-cycle stage: choose one", "value")) \
            if name == STAGE else (None, None)
    if name == STAGE:
        if value not in LIFECYCLE_STAGES:
            return None, FieldError("value", f"a life-cycle stage is one of {', '.join(LIFECYCLE_STAGES)}", "value")
        return value, None
    try:
        return fields.coerce(field, value), None
    except normalise.InvalidValue as error:
        return None, FieldError("value", str(error), "value")


def _patched(session: Session, column: Any, key: str, value: Any, *, remove: bool) -> Any:
    """``column`` (a JSON document) with ``key`` set to ``value`` (taken out with ``remove``), in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        if remove:
            return column.op("-")(literal(key, String))
        return column.op("||")(cast(literal(orjson.dumps({key: value}).decode(), String), JSONB))
    if remove:
        return func.json_remove(column, f'$."{key}"')
    return func.json_set(column, f'$."{key}"', func.json(orjson.dumps(value).decode()))


def set_field(session: Session, org_id: int, name: str, value: Any, customers: Any, now: datetime, *,
              units: tuple[int, ...] | None = None) -> int:
    """Set field ``name`` to ``value`` (None: clear it) for ``customers`` (a SELECT of profile ids) in one UPDATE,
    stamped as a change by hand is (its trait time now, so an older call arriving late does not undo it), and tell
    the live segments; how many changed. Nothing if the value no longer fits the field."""
    stored, problem = checked_value(session, org_id, name, value)
    if problem is not None:
        return 0
    stamp = {"ts": now.isoformat(), "src": None}
    key = STAGE if name == STAGE else name.removeprefix("attributes.")
    values: dict[str, Any] = {"updated_at": now,
                              "trait_times": _patched(session, Profile.trait_times, key, stamp, remove=False)}
    if name == STAGE:
        values[STAGE] = stored
    else:
        values["attributes"] = _patched(session, Profile.attributes, key, stored, remove=stored is None)
    statement = update(Profile).where(Profile.org_id == org_id, Profile.id.in_(customers))
    if units is not None:  # a customer moved to another dealer meanwhile is not this journey's to change
        statement = statement.where(Profile.unit_id.in_(units))
    changed = list(session.scalars(statement.values(**values).returning(Profile.id)
                                   .execution_options(synchronize_session=False)))
    events.publish_many(session, PROFILE_CHANGED, [
        {"org_id": org_id, "entity": "profiles", "entity_id": i, "profile_id": i, "payload": {"what": "updated"}}
        for i in sorted(changed)])  # live segments re-read them
    return len(changed)

