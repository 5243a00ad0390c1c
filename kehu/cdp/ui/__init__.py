"""The CDP's pages, one module per page or group of pages: the customer list (customers.py), Customer 360
(customer.py), possible duplicates (duplicates.py), data sources (sources.py), imports (imports.py), and the
product, custom-field and identity-rule settings (settings.py); what they share is in common.py.

Other domains' parts of these pages come from their manifests (``shell.extensions``, kehu/core/domains.py), so
the CDP shows them without depending on those domains: panels in the Customer 360's side column (segments,
leads, opportunities), actions on customers picked in the list (put them in a segment), and what a reader may do
about a person the group already knows (a new customer's mobile or e-mail in use: sales offers an inquiry)."""

from __future__ import annotations

from kehu.cdp.ui import duplicates
from kehu.cdp.ui.customer import customer_page
from kehu.cdp.ui.customers import customers_page
from kehu.cdp.ui.imports import import_page
from kehu.cdp.ui.settings import custom_fields_page, products_page
from kehu.cdp.ui.sources import sources_page
from kehu.ui.shell import page


def register() -> None:
    page("/admin/custom-fields")(custom_fields_page)
    page("/admin/products")(products_page)
    page("/customers/import")(import_page)
    duplicates.register()  # before /customers/{profile_id}, which would take "duplicates" for an id
    page("/customers")(customers_page)
    page("/customers/{profile_id}")(customer_page)
    page("/admin/sources")(sources_page)
