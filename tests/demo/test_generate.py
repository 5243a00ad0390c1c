"""`kehu generate`: bulk customers that look like the real thing to every page and query — owned by the
dealers' consultants, valid identities, events in order, orders with lines — deterministic, repeatable
only with a new seed, visible only within scope like any other customer; deliberate duplicates come with
the ground truth to score identity resolution."""

from __future__ import annotations

import csv
import io
from collections import defaultdict

import pytest
from sqlalchemy import func, select

from kehu.cdp import normalise, service
from kehu.cdp.models import Event, Identity, Order, OrderLine, Profile, Vehicle
from kehu.core.errors import Conflict
from kehu.demo.generate import generate, noisy_name
from kehu.demo.seed import seed_demo
from kehu.sales import opportunities
from kehu.sales import schemas as sales_schemas
from kehu.sales import service as sales_service
from kehu.sales.models import Lead, Opportunity, OpportunityChange
from kehu.sales.service import leads_from_events
from kehu.tenancy import service as tenancy_service


def count(session, model) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def demo_org(session) -> int:  # type: ignore[no-untyped-def]
    seed_demo(session)
    session.commit()
    return tenancy_service.get_organization_by_slug(session, "demo").id


def test_generated_customers_are_whole_and_scoped(clean_database, session, demo_org):
    made = generate(clean_database, demo_org, customers=300, events_per_customer=12, seed=3, duplicate_share=0)
    assert (made.customers, made.profiles, count(session, Profile)) == (300, 300, 300)
    assert made.events == count(session, Event) and 300 * 6 < made.events < 300 * 20
    assert made.orders == count(session, Order) == count(session, OrderLine) > 0
    assert made.vehicles == count(session, Vehicle) > 0
    milestones = dict(session.execute(select(Event.event, func.count()).where(
        Event.event.in_(["order_placed", "vehicle_delivered"])).group_by(Event.event)).all())
    assert milestones == {"order_placed": made.orders, "vehicle_delivered": made.vehicles}
    openids = list(session.scalars(select(Identity.value).where(Identity.kind == "wechat_openid")))
    assert 100 < len(openids) < 200 and all(len(o) == 28 and o.startswith("o") for o in openids)
    assert all(p.address.startswith(p.city) and len(p.postcode) == 6 for p in session.scalars(select(Profile)))
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
        generate(clean_database, demo_org, customers=10, seed=3)
    again = generate(clean_database, demo_org, customers=10, events_per_customer=5, seed=4, duplicate_share=0)
    assert again.customers == 10 and count(session, Profile) == 310


def test_generated_leads_and_deals_follow_each_persons_events(clean_database, session, demo_org):
    """A person who booked a test drive has a lead made at that moment, placed at their dealer with its
    consultant; those who went on to buy converted it into a deal won at the order; the lead rules do not
    read the generated history again; a salesperson's pipeline holds their own deals only."""
    sales_service.save_rule(session, tenancy_service.system_principal(session, demo_org),
                            sales_schemas.LeadRuleIn(event="test_drive_booked", source="web"))  # as the demo has
    session.commit()
    before = count(session, Lead)
    made = generate(clean_database, demo_org, customers=400, events_per_customer=12, seed=5, duplicate_share=0)
    session.expire_all()
    leads = list(session.scalars(select(Lead).where(Lead.source_event == "test_drive_booked",
                                                    Lead.first_inquiry_at.is_not(None)).order_by(Lead.id)))[before:]
    assert 200 < len(leads) < 400
    bookings = {(p, ts) for p, ts in session.execute(select(Event.profile_id, Event.ts).where(
        Event.event == "test_drive_booked"))}
    assert all((lead.profile_id, lead.first_inquiry_at) in bookings for lead in leads)
    profiles = {p.id: p for p in session.scalars(select(Profile))}
    assert all(lead.unit_id == profiles[lead.profile_id].unit_id and lead.owner_id == profiles[lead.profile_id]
               .owner_id and lead.assigned_at >= lead.first_inquiry_at for lead in leads)
    deals = {d.lead_id: d for d in session.scalars(select(Opportunity).where(
        Opportunity.lead_id.in_([lead.id for lead in leads])))}
    converted = [lead for lead in leads if lead.status == "converted"]
    assert converted and set(deals) == {lead.id for lead in converted}
    buyers = set(session.scalars(select(Order.profile_id)))
    won = {d.profile_id for d in deals.values() if d.status == "won"}
    assert won == buyers & {lead.profile_id for lead in converted} and won
    assert all(d.closed_at >= d.created_at for d in deals.values() if d.closed_at)
    assert count(session, OpportunityChange) >= len(deals) and made.customers == 400
    # the lead rules start after the generated events: nothing is made twice
    leads_from_events(clean_database)
    assert count(session, Lead) == before + len(leads)
    owner = next(d.owner_id for d in deals.values() if d.owner_id)
    salesperson = tenancy_service.principal_for_user(session, owner)
    board = opportunities.page_opportunities(session, salesperson, per_page=200)
    assert board.items and {d.owner_id for d in board.items} == {owner}


def test_duplicates_come_with_their_ground_truth(clean_database, session, demo_org):
    truth = io.StringIO()
    made = generate(clean_database, demo_org, customers=400, events_per_customer=6, seed=5, duplicate_share=0.25,
                    truth=truth)
    rows = list(csv.DictReader(io.StringIO(truth.getvalue())))
    assert len(rows) == made.profiles == count(session, Profile) > made.customers
    people: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        people[row["person"]].append(int(row["profile_id"]))
    assert len(people) == made.customers == 400
    sizes = [len(ids) for ids in people.values()]
    assert max(sizes) <= 4 and 60 <= sum(1 for n in sizes if n > 1) <= 140  # about a quarter, 2–4 records each
    names = {p.id: p.name for p in session.scalars(select(Profile))}
    spelled_differently = sum(1 for ids in people.values() if len({names[i] for i in ids}) > 1)
    assert spelled_differently > 20
    # Duplicates share no identity: they are what exact matching cannot find.
    owners = defaultdict(set)
    for profile_id, kind, value in session.execute(select(Identity.profile_id, Identity.kind, Identity.value)):
        owners[(kind, value)].add(profile_id)
    assert all(len(ids) == 1 for ids in owners.values())


def test_noisy_names_are_the_kinds_of_spelling_people_meet():
    import random

    rng = random.Random(1)
    seen = {noisy_name(rng, "张伟") for _ in range(200)}
    assert {"张伟", "张玮", "Zhang Wei", "Wei Zhang", "張偉"} <= seen


def test_the_network_grows_to_hundreds_of_dealers_in_real_cities(clean_database, session, demo_org):
    from kehu.demo.network import grow_network
    from kehu.tenancy.models import BusinessUnit, User

    assert grow_network(session, demo_org, dealers=60) == 48  # the demo has 12
    assert grow_network(session, demo_org, dealers=60) == 0
    session.commit()
    dealers = list(session.scalars(select(BusinessUnit).where(BusinessUnit.kind == "dealer")))
    assert len(dealers) == 60 and len({d.province for d in dealers}) >= 20
    assert len({d.code for d in dealers}) == 60 and all(d.city and d.name.endswith("4S店") for d in dealers)
    regions = {u.code for u in session.scalars(select(BusinessUnit).where(BusinessUnit.kind == "region"))}
    assert regions == {"EAST", "SOUTH", "NORTH", "CENTRAL", "WEST"}
    hangzhou = next(d for d in dealers if d.code == "HANGZHOU001")
    staff = list(session.scalars(select(User).join(BusinessUnit, User.unit_id == BusinessUnit.id)
                                 .where(BusinessUnit.path.startswith(hangzhou.path))))
    assert {r.code for u in staff for r in u.roles} == {"dealer_manager", "dealer_sales", "service_advisor"}
    made = generate(clean_database, demo_org, customers=200, events_per_customer=4, seed=8, duplicate_share=0)
    spread = session.scalar(select(func.count(func.distinct(Profile.unit_id))))
    assert made.customers == 200 and spread > 40  # customers spread over the grown network


def test_chunks_are_written_by_several_processes(clean_database, session, demo_org, monkeypatch):
    from kehu.demo import generate as generator

    if clean_database.is_sqlite:
        pytest.skip("SQLite has one writer; the generator uses one process there")
    monkeypatch.setattr(generator, "CHUNK", 40)
    truth = io.StringIO()
    made = generate(clean_database, demo_org, customers=120, events_per_customer=5, seed=31, processes=2,
                    truth=truth, duplicate_share=0.2)
    assert made.customers == 120 and made.profiles == count(session, Profile) > 120
    assert made.events == count(session, Event)
    people = {row["person"] for row in csv.DictReader(io.StringIO(truth.getvalue()))}
    assert people == {f"31-{n}" for n in range(120)}  # every chunk, each person once


def test_a_big_load_builds_the_events_indexes_afterwards_even_after_a_killed_one(clean_database, session,
                                                                                   demo_org):
    if clean_database.is_sqlite:
        pytest.skip("SQLite keeps its indexes up during the load")
    with clean_database.engine.begin() as connection:  # what a load killed midway leaves behind
        connection.exec_driver_sql("DROP INDEX ix_events_org_event_ts")
    generate(clean_database, demo_org, customers=60, events_per_customer=5, seed=12, duplicate_share=0)
    with clean_database.engine.connect() as connection:
        present = set(connection.exec_driver_sql(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'events'").scalars())
    assert {"pk_events", "ix_events_org_event_ts", "ix_events_org_profile_ts",
            "uq_events_source_id_message_id"} <= present
    assert count(session, Event) > 60 * 3
