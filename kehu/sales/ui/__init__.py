"""The sales pages, one module per page or group of pages: the home page (home.py), leads (leads.py) and their
settings (lead_settings.py), opportunities (opportunities.py: the board and list; opportunity.py: one deal),
the sales reports (reports.py) and the pipelines (pipelines.py)."""

from __future__ import annotations

from kehu.ui.shell import page


def register() -> None:
    from kehu.sales.ui import home, opportunities
    from kehu.sales.ui.lead_settings import settings_page
    from kehu.sales.ui.leads import leads_page

    page("/")(home.home_page)
    page("/leads")(leads_page)
    page("/leads/{lead_id}")(leads_page)
    page("/admin/leads")(settings_page)
    opportunities.register()
