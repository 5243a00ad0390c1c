"""What happened to a customer in kehu itself (a lead qualified, a deal won) joins the customer's own events, so
segments, journeys' conditions and the lead rules ask about it as about anything the customer did ("won a deal in
the last 30 days"). One consumer does it for every domain: a kind of domain event declared with a
``customer_event`` name (core/events.py) becomes an event of that name on the customer, its payload the
event's properties.

Such an event is written as the domain event's consumer reads it (within seconds, by the worker), with type
``kehu`` and source 0 (no source sends it; the domain event's id makes it unique, so it is never written twice).
It sits on the customer's oldest identity so that it follows merges and unmerges as the customer's other events
do (a customer with no identity at all keeps it where it is: identity 0). The Customer 360's timeline leaves these
out: it shows the lead's or deal's own history, from which they came."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kehu.cdp.models import HAPPENING, Event, Identity
from kehu.cdp.service import live_profile_ids
from kehu.core import events
from kehu.core.db import dialect_insert, utcnow

HAPPENINGS_CONSUMER = "cdp.customer_happenings"


# from the start: a happening published before the first worker ran (a fresh install) is not skipped
@events.subscribe(HAPPENINGS_CONSUMER, selects=lambda kind: kind.customer_event is not None, from_start=True)
def _to_customer_events(session: Session, happened: list[events.DomainEvent]) -> None:
    mine = [event for event in happened if event.profile_id is not None]
    if not mine:
        return
    live = live_profile_ids(session, {event.profile_id for event in mine if event.profile_id is not None})
    oldest = dict(session.execute(select(Identity.profile_id, func.min(Identity.id))
                                  .where(Identity.profile_id.in_(set(live.values())))
                                  .group_by(Identity.profile_id)).all())
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for event in mine:
        assert event.profile_id is not None
        profile_id = live.get(event.profile_id, event.profile_id)
        name = events.declared()[event.kind].customer_event
        rows.append({"org_id": event.org_id, "source_id": 0, "message_id": f"domain-event:{event.id}",
                     "type": HAPPENING, "event": name, "ts": event.at, "received_at": now,
                     "identity_id": oldest.get(profile_id, 0), "profile_id": profile_id,
                     "properties": dict(event.payload or {}),
                     "context": {"kind": event.kind, "entity": event.entity, "entity_id": event.entity_id}})
    session.execute(dialect_insert(session)(Event).on_conflict_do_nothing(
        index_elements=["source_id", "message_id"]), rows)

