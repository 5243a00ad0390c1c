"""The domains kehu is made of, lower first (a domain builds on those before it: DESIGN.md §2). The app mounts
their routers, the shell their pages and navigation, the worker their services and Alembic their tables, all
from this list (kehu/core/domains.py); the role editor offers the entities and permissions the domains declare
here and below (``kehu.core.domains.role_vocabulary`` reads this module by name: the tenancy layer, below every
domain, cannot import it). A new domain is its folder with a ``manifest.py`` and one line here."""

from __future__ import annotations

from kehu.cdp.manifest import DOMAIN as CDP
from kehu.channels.manifest import DOMAIN as CHANNELS
from kehu.core.domains import Domain, NavEntry
from kehu.journeys.manifest import DOMAIN as JOURNEYS
from kehu.sales.manifest import DOMAIN as SALES
from kehu.segments.manifest import DOMAIN as SEGMENTS
from kehu.tenancy.manifest import DOMAIN as TENANCY

DOMAINS: list[Domain] = [TENANCY, CDP, SEGMENTS, SALES, CHANNELS, JOURNEYS]

# Domains still to come: a page at their place in the navigation says what will be there (nothing fake), and
# their entities are in the roles from day one, so an administrator sets a role up once.
COMING: list[tuple[NavEntry, str]] = [
    (NavEntry("nav.cases", "support_agent", "/cases", "cases", "work", 70), "coming.cases"),
    (NavEntry("nav.loyalty", "card_membership", "/loyalty", "loyalty", "marketing", 30), "coming.loyalty"),
    (NavEntry("nav.analytics", "insights", "/analytics", "reports", "marketing", 40), "coming.analytics"),
]
COMING_ENTITIES = ("cases", "loyalty", "reports")
