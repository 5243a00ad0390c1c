"""Sales for the demo group: routing by the dealers' cities, a rule that turns website test-drive bookings
into leads, and leads for the demo customers who booked one, at the stages their later history implies."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.cdp.models import Event, Profile
from kehu.core.db import utcnow
from kehu.demo.customers import MODELS
from kehu.sales import opportunities, pipelines, schemas, scoring, service
from kehu.sales.models import Lead, Opportunity, OpportunityChange
from kehu.tenancy import service as tenancy_service
from kehu.tenancy.models import BusinessUnit


def by_city_dealers(by_city: dict[str, list[BusinessUnit]]) -> list[BusinessUnit]:
    return [d for here in by_city.values() for d in here]


def seed_sales(session: Session, org_id: int, *, seed: int = 2026) -> int:
    """Returns the number of leads made."""
    rng = random.Random(seed)
    system = tenancy_service.system_principal(session, org_id)
    dealers = session.scalars(select(BusinessUnit).where(BusinessUnit.org_id == org_id,
                                                         BusinessUnit.kind == "dealer").order_by(BusinessUnit.code))
    by_city: dict[str, list[BusinessUnit]] = {}
    for dealer in dealers:
        if dealer.city:
            by_city.setdefault(dealer.city, []).append(dealer)
    for n, (city, here) in enumerate(sorted(by_city.items())):
        # one dealer in the city takes its leads; where there are several, the rule names the first and the
        # national call centre's leads for that city go there (a city split by district is a later refinement)
        service.save_routing(session, system, schemas.RoutingRuleIn(
            name=f"{city} → {here[0].name}", priority=100 + n, cities=[city], unit_id=here[0].id))
    regions = session.scalars(select(BusinessUnit).where(BusinessUnit.org_id == org_id,
                                                         BusinessUnit.kind == "region").order_by(BusinessUnit.code))
    for n, region in enumerate(regions):  # the rest of a region's provinces: shared among its dealers
        provinces = sorted({d.province for d in by_city_dealers(by_city) if d.province and d.parent_id == region.id})
        if provinces:
            service.save_routing(session, system, schemas.RoutingRuleIn(
                name=f"{region.name}（其他城市）", priority=500 + n, provinces=provinces, unit_id=region.id,
                method="least_loaded"))
    service.save_rule(session, system, schemas.LeadRuleIn(event="test_drive_booked", source="web"))
    first_booking: dict[int, tuple[object, str | None]] = {}
    for profile_id, ts, properties in session.execute(select(Event.profile_id, Event.ts, Event.properties).where(
            Event.org_id == org_id, Event.event == "test_drive_booked").order_by(Event.ts)):
        first_booking.setdefault(profile_id, (ts, (properties or {}).get("model")))
    made = 0
    deals: list[tuple[Lead, str]] = []
    for profile_id, (ts, model) in sorted(first_booking.items()):
        profile = session.get(Profile, profile_id)
        if profile is None or profile.merged_into_id is not None:
            continue
        lead, _ = service.record_inquiry(session, system, profile, source="web", source_event="test_drive_booked",
                                         model=model, note="", at=ts)  # type: ignore[arg-type]
        made += 1
        stage = profile.lifecycle_stage
        if stage in ("customer", "owner"):
            path = ["sql"]
            deals.append((lead, "won"))
        elif stage == "opportunity":
            path = ["sal", "sql"]
            deals.append((lead, rng.choice(["open", "open", "open", "lost"])))
        else:
            path = rng.choice([[], ["mql"], ["mql", "sal"], ["disqualified"]])
        if path or rng.random() < 0.3:  # the rest of the fresh inquiries nobody has called yet: overdue
            service.mark_contacted(session, system, lead.id)
            if lead.assigned_at is not None:  # called back within hours, now and then a day or two late
                lead.first_contacted_at = min(utcnow(), lead.assigned_at + timedelta(hours=rng.expovariate(1 / 10)))
        for status in path:
            service.change_status(session, system, lead.id, schemas.StatusChange(
                status=status, reason="no_response" if status == "disqualified" else None))
    seed_opportunities(session, org_id, deals, rng)
    for rule in (
        schemas.ScoreRuleIn(name="浏览车型详情", event="车型详情", points=5, half_life_days=14, max_points=30),
        schemas.ScoreRuleIn(name="预约试驾", event="test_drive_booked", points=40, half_life_days=60),
        schemas.ScoreRuleIn(name="到店", event="showroom_visit", points=20, half_life_days=60),
        schemas.ScoreRuleIn.model_validate({"name": "短信营销授权", "kind": "condition", "points": 5, "condition": {
            "type": "consent", "channel": "sms", "purpose": "marketing"}}),
    ):
        scoring.save_rule(session, system, rule)
    scoring.set_threshold(session, system, 60)
    scoring.compute(session, org_id)
    return made


LOST = ("price", "competitor", "no_budget", "timing")


def seed_opportunities(session: Session, org_id: int, deals: list[tuple[Lead, str]], rng: random.Random) -> None:
    """Convert the leads of customers who bought (won deals) or are negotiating (open deals across the stages,
    a quarter of them lost), then spread their history over the weeks after the inquiry, so the board, the
    forecast by month and the cycle times have something true-looking to show."""
    system = tenancy_service.system_principal(session, org_id)
    prices = dict(MODELS)
    now = utcnow()
    today = now.date()
    open_keys = [s.key for s in pipelines.stages_of(session, pipelines.default_pipeline(session, org_id).id)
                 if not s.is_won][1:]
    for lead, outcome in deals:
        price = prices.get(lead.model_interest or "", 199_900)
        quantity = 1 if rng.random() < 0.9 else rng.randint(2, 5)  # now and then a small fleet
        close_on = today + timedelta(days=rng.randint(-10, 150))
        _lead, deal = opportunities.convert_lead(session, system, lead.id, schemas.LeadConversion(
            expected_close_on=close_on, products=[schemas.OpportunityLineIn(
                name=lead.model_interest or "ID.4", quantity=quantity, unit_price=Decimal(price))]))
        if outcome == "won":
            opportunities.close(session, system, deal.id, schemas.Close(outcome="won"))
        else:
            for key in open_keys[:rng.randint(0, len(open_keys))]:
                opportunities.move_stage(session, system, deal.id, schemas.StageMove(stage_key=key))
            if outcome == "lost":
                opportunities.close(session, system, deal.id, schemas.Close(outcome="lost", reason=rng.choice(LOST)))
        # the history as it might have happened: opened a day or three after the inquiry, a week or two a stage
        changes = list(session.scalars(select(OpportunityChange).where(OpportunityChange.opportunity_id == deal.id)
                                       .order_by(OpportunityChange.id)))
        at = min(lead.first_inquiry_at + timedelta(days=rng.uniform(1, 3)), now - timedelta(days=len(changes) * 2))
        for change in changes:
            change.at = min(at, now)
            at += timedelta(days=rng.uniform(3, 15))
        opportunity = session.get(Opportunity, deal.id)
        assert opportunity is not None
        opportunity.created_at = changes[0].at
        opportunity.stage_entered_at = next(c.at for c in reversed(changes) if c.kind != "lost")
        if opportunity.status != "open":
            opportunity.closed_at = changes[-1].at
            if opportunity.status == "won":
                opportunity.expected_close_on = changes[-1].at.date()
    session.flush()
