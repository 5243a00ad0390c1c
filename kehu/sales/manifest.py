"""Sales: leads and their rules, routing and scoring, opportunities and pipelines, activities, the sales reports and
the home page."""

from __future__ import annotations

from kehu.core import events
from kehu.core.domains import Domain, NavEntry

LEAD_STATUS_CHANGED = events.declare(
    "sales.lead_status_changed",
    "A lead moved along its life cycle (qualified, converted, disqualified, reopened…): entity_id is the lead, "
    "profile_id its customer; payload: lead_id, from_status, to_status, reason, unit_id.",
    customer_event="lead_status_changed")
OPPORTUNITY_WON = events.declare(
    "sales.opportunity_won",
    "A deal was won: entity_id is the opportunity, profile_id its customer; payload: opportunity_id, amount, "
    "currency, unit_id.",
    customer_event="opportunity_won")
OPPORTUNITY_LOST = events.declare(
    "sales.opportunity_lost",
    "A deal was lost: entity_id is the opportunity, profile_id its customer; payload: opportunity_id, amount, "
    "currency, reason, unit_id.",
    customer_event="opportunity_lost")

DOMAIN = Domain(
    name="sales",
    models="kehu.sales.models",
    services=("kehu.sales.service", "kehu.sales.scoring", "kehu.sales.activities", "kehu.sales.opportunities"),
    events=(LEAD_STATUS_CHANGED, OPPORTUNITY_WON, OPPORTUNITY_LOST),
    entities=("leads", "opportunities", "activities"),
    routers=("kehu.sales.api:router",),
    pages=("kehu.sales.ui:register",),
    navigation=(
        NavEntry("nav.dashboard", "dashboard", "/", None, "work", 10),
        NavEntry("nav.leads", "person_search", "/leads", "leads", "work", 40),
        NavEntry("nav.opportunities", "handshake", "/opportunities", "opportunities", "work", 50),
        NavEntry("nav.sales_reports", "leaderboard", "/sales/reports", "opportunities", "work", 60),
        NavEntry("nav.lead_settings", "alt_route", "/admin/leads", "settings.manage", "admin", 80),
        NavEntry("nav.pipelines", "view_week", "/admin/pipelines", "settings.manage", "admin", 90),
    ),
    customer_panels=("kehu.sales.ui.leads:customer_leads", "kehu.sales.ui.opportunities:customer_opportunities"),
    timeline_streams=("kehu.sales.service:TIMELINE_STREAM", "kehu.sales.activities:TIMELINE_STREAM",
                      "kehu.sales.opportunities:TIMELINE_STREAM"),
    read_through=("kehu.sales.service:reads_through_lead",),
    inquiry_actions=("kehu.sales.ui.leads:offer_inquiry",),
)
