"""`kehu generate`: bulk customers that look like the real thing to every page and query — owned by the
dealers' consultants, valid identities, events in order, orders with lines — deterministic, repeatable
only with a new seed, and visible only within scope like any other customer."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from kehu.cdp import normalise, service
from kehu.cdp.models import Event, Identity, Order, OrderLine, Profile, Vehicle
from kehu.core.errors import Conflict
from kehu.demo.generate import generate
from kehu.demo.seed import seed_demo
from kehu.tenancy import service as tenancy_service


def count(session, model) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).select_from(model))


def test_generated_customers_are_whole_and_scoped(clean_database, session):
    seed_demo(session)
    session.commit()
    org_id = tenancy_service.get_organization_by_slug(session, "demo").id
    made = generate(clean_database, org_id, customers=300, events_per_customer=12, seed=3)
    assert (made.customers, count(session, Profile)) == (300, 300)
    assert made.events == count(session, Event) and 300 * 6 < made.events < 300 * 20
    assert made.orders == count(session, Order) == count(session, OrderLine) > 0
    assert made.vehicles == count(session, Vehicle) > 0
    mobiles = list(session.scalars(select(Identity.value).where(Identity.kind == "mobile")))
    assert len(mobiles) == len(set(mobiles)) == 300
    assert all(normalise.phone(m) == m for m in mobiles)
    # Every event points at its profile through one of the profile's own identities.
    stray = session.scalar(select(func.count()).select_from(Event).join(Identity, Identity.id == Event.identity_id)
                           .where(Identity.profile_id != Event.profile_id))
    assert stray == 0
    first, last = session.execute(select(func.min(Profile.first_seen_at), func.max(Profile.last_seen_at))).one()
    assert (last - first).days > 300  # three years of history, not a burst
    # Owned by the dealers' consultants, so a salesperson sees theirs and nobody else's.
    sales = tenancy_service.principal_for_user(session, session.scalar(
        select(Profile.owner_id).where(Profile.owner_id.is_not(None)).limit(1)))
    mine = service.list_profiles(session, sales, limit=500).items
    assert mine and all(p.owner_id == sales.user_id for p in mine)
    with pytest.raises(Conflict):
        generate(clean_database, org_id, customers=10, seed=3)
    again = generate(clean_database, org_id, customers=10, events_per_customer=5, seed=4)
    assert again.customers == 10 and count(session, Profile) == 310
