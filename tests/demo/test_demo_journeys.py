"""The demo's journeys: HQ's template offered to every dealer, a dealer's own made of it with nothing to fix before
it is published, a birthday greeting drafted — and nobody enrolled, so the demo's outbox stays as seeded."""

from __future__ import annotations

from sqlalchemy import func, select

from kehu.demo.channels import seed_channels
from kehu.demo.journeys import TEMPLATE, seed_journeys
from kehu.demo.seed import seed_demo
from kehu.journeys import service, templates
from kehu.journeys.models import Enrolment, Journey
from kehu.tenancy import service as tenancy_service
from kehu.tenancy.models import User


def test_the_demo_offers_hqs_template_and_a_dealers_journey_is_ready_to_publish(clean_database, session):
    org_id = seed_demo(session).org.id
    seed_channels(session, org_id)
    assert seed_journeys(session, org_id) == 3
    session.commit()
    journeys = {j.name: j for j in session.scalars(select(Journey))}
    template = journeys[TEMPLATE]
    assert (template.is_template, template.status, template.version) == (True, "live", 1)
    dealer_user = session.scalar(select(User).where(User.email == "sh001.marketing@demo.kehu.dev"))
    dealer = tenancy_service.principal_for_user(session, dealer_user.id)
    assert [t.name for t in templates.offered_templates(session, dealer)] == [TEMPLATE]
    own = journeys["浦东店试驾关怀"]
    assert (own.template_id, own.status, own.unit_id) == (template.id, "draft", dealer.unit_id)
    assert service.problems(session, dealer, own) == []
    assert journeys["生日祝福"].status == "draft"
    assert session.scalar(select(func.count()).select_from(Enrolment)) == 0
