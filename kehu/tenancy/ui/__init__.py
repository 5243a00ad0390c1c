"""Admin pages, one module per page: business units (units.py), users (users.py), roles (roles.py), API keys
(api_keys.py), the audit log (audit.py) and background jobs (jobs.py); the options they share are here."""

from __future__ import annotations

from kehu.tenancy import service
from kehu.tenancy.access import Principal
from kehu.ui.shell import locale, page, tr, unit_of_work

KIND_ICONS = {"hq": "apartment", "region": "public", "dealer": "storefront", "team": "groups_2"}


def register() -> None:
    from kehu.tenancy.ui.api_keys import api_keys_page
    from kehu.tenancy.ui.audit import audit_page
    from kehu.tenancy.ui.jobs import jobs_page
    from kehu.tenancy.ui.roles import roles_page
    from kehu.tenancy.ui.units import units_page
    from kehu.tenancy.ui.users import users_page

    page("/admin/units")(units_page)
    page("/admin/users")(users_page)
    page("/admin/roles")(roles_page)
    page("/admin/api-keys")(api_keys_page)
    page("/admin/audit")(audit_page)
    page("/admin/jobs")(jobs_page)


def _kind_options() -> dict[str, str]:
    return {k: tr(f"unit.kind.{k}") for k in ("region", "dealer", "team")}


def _unit_options(principal: Principal) -> dict[int, str]:
    if not principal.can("units"):
        return {}
    with unit_of_work() as session:
        return {u.id: ("　" * u.depth) + u.name for u in service.list_units(session, principal)}


def _role_options(principal: Principal) -> dict[str, str]:
    if not principal.can("roles"):
        return {}
    with unit_of_work() as session:
        return {r.code: r.name(locale()) for r in service.list_roles(session, principal)}
