"""Imports every domain's models (its manifest's ``models``) so that the metadata (Alembic, owned_models()) sees
all tables, and the platform's own (audit, jobs, domain events)."""

import kehu.core.audit
import kehu.core.events
import kehu.core.jobs  # noqa: F401 - the platform's tables
from kehu.core.domains import load
from kehu.domains import DOMAINS

for _domain in DOMAINS:
    if _domain.models:
        load(_domain.models)
