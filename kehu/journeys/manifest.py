"""Journeys: the marketing-automation paths customers walk (who enters, what they receive, how long they wait,
which way they go) and the engine that walks them, in sets."""

from __future__ import annotations

from kehu.core.domains import Domain, NavEntry

DOMAIN = Domain(
    name="journeys",
    models="kehu.journeys.models",
    services=("kehu.journeys.service", "kehu.journeys.engine", "kehu.journeys.results", "kehu.journeys.timing"),
    entities=("journeys",),
    # journeys that act on customers and for sales (set profile fields, record leads, give salespeople tasks)
    permissions=("journeys.actions",),
    routers=("kehu.journeys.api:router",),
    pages=("kehu.journeys.ui:register",),
    customer_panels=("kehu.journeys.ui.customer:customer_journeys",),
    calendar_entries=("kehu.journeys.ui.calendar:calendar_entries",),
    navigation=(NavEntry("nav.journeys", "alt_route", "/journeys", "journeys", "marketing", 20),),
)
