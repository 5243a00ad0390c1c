"""Sales for the demo group: routing by the dealers' cities, a rule that turns website test-drive bookings
into leads, and leads for the demo customers who booked one, at the stages their later history implies."""

from __future__ import annotations

import random

from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.cdp.models import Event, Profile
from kehu.sales import schemas, scoring, service
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
    for profile_id, (ts, model) in sorted(first_booking.items()):
        profile = session.get(Profile, profile_id)
        if profile is None or profile.merged_into_id is not None:
            continue
        lead, _ = service.record_inquiry(session, system, profile, source="web", source_event="test_drive_booked",
                                         model=model, note="", at=ts)  # type: ignore[arg-type]
        made += 1
        stage = profile.lifecycle_stage
        if stage in ("customer", "owner"):
            path = ["sql", "converted"]
        elif stage == "opportunity":
            path = ["sal", "sql"]
        else:
            path = rng.choice([[], ["mql"], ["mql", "sal"], ["disqualified"]])
        if path or rng.random() < 0.3:  # the rest of the fresh inquiries nobody has called yet: overdue
            service.mark_contacted(session, system, lead.id)
        for status in path:
            service.change_status(session, system, lead.id, schemas.StatusChange(
                status=status, reason="no_response" if status == "disqualified" else None))
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
