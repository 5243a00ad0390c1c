"""The customer data platform: profiles and One ID, events, imports and exports, duplicates, custom fields,
products and orders. Its kinds of domain event are declared here, before the manifest, for its own modules to
publish (they import this module; it imports none of them)."""

from __future__ import annotations

from kehu.core import events
from kehu.core.domains import Domain, NavEntry

PROFILE_MERGED = events.declare(
    "cdp.profile_merged",
    "Two customer records were found to be one person and merged: entity_id is the merge, profile_id the record "
    "kept; payload: loser_id, reason (identity | manual | dedupe).")
MERGE_UNDONE = events.declare(
    "cdp.merge_undone",
    "A merge was undone and the record it folded lives again: entity_id is the merge, profile_id the record kept; "
    "payload: restored_id, reason.")

PROFILE_CHANGED = events.declare(
    "cdp.profile_changed",
    "A customer's record was changed by hand or through the API (not by a call through a source, which is a "
    "customer event of its own): profile_id the customer; payload: what (created | updated | assigned | consent).")

DOMAIN = Domain(
    name="cdp",
    models="kehu.cdp.models",
    services=("kehu.cdp.service", "kehu.cdp.dedupe", "kehu.cdp.dedupe_live", "kehu.cdp.exports", "kehu.cdp.imports",
              "kehu.cdp.happenings"),
    events=(PROFILE_MERGED, MERGE_UNDONE, PROFILE_CHANGED),
    entities=("sources", "imports", "profiles", "accounts", "orders"),
    routers=("kehu.cdp.api:router", "kehu.cdp.api:ingestion"),
    # Segment's limits for a call and a batch (/v1/b: /v1/batch and /v1/b), and room for a file uploaded
    body_limits=(("/v1/b", "kehu.cdp.ingest:MAX_BATCH_BYTES"), ("/v1/import", "kehu.cdp.ingest:MAX_BATCH_BYTES"),
                 ("/v1/", "kehu.cdp.ingest:MAX_MESSAGE_BYTES"),
                 ("/api/v1/imports", "kehu.cdp.imports:UPLOAD_REQUEST_BYTES")),
    pages=("kehu.cdp.ui:register",),
    navigation=(
        NavEntry("nav.customers", "groups", "/customers", "profiles", "work", 20),
        NavEntry("nav.duplicates", "join_inner", "/customers/duplicates", "profiles", "work", 30),
        NavEntry("nav.sources", "input", "/admin/sources", "sources", "admin", 50),
        NavEntry("nav.custom_fields", "tune", "/admin/custom-fields", "settings.manage", "admin", 60),
        NavEntry("nav.products", "inventory_2", "/admin/products", "settings.manage", "admin", 70),
    ),
)
