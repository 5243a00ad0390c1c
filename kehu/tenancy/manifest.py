"""The tenancy domain: organisations, units, users, roles, API keys, the audit trail and the jobs page."""

from __future__ import annotations

from kehu.core.domains import Domain, NavEntry

DOMAIN = Domain(
    name="tenancy",
    models="kehu.tenancy.models",
    services=("kehu.tenancy.service",),
    entities=("units", "users", "roles", "api_keys", "audit", "jobs"),
    permissions=("pii.read", "settings.manage"),
    routers=("kehu.tenancy.api:router",),
    pages=("kehu.tenancy.ui:register",),
    navigation=(
        NavEntry("nav.units", "account_tree", "/admin/units", "units.update", "admin", 10),
        NavEntry("nav.users", "badge", "/admin/users", "users.update", "admin", 20),
        NavEntry("nav.roles", "admin_panel_settings", "/admin/roles", "roles", "admin", 30),
        NavEntry("nav.api_keys", "key", "/admin/api-keys", "api_keys", "admin", 40),
        NavEntry("nav.audit", "history", "/admin/audit", "audit", "admin", 100),
        NavEntry("nav.jobs", "pending_actions", "/admin/jobs", "jobs.read@unit", "admin", 110),
    ),
)
