"""events by (org_id, event, ts) carry profile_id on PostgreSQL, so segment conditions on events are
answered from the index alone (SQLite has no INCLUDE; its index stays as it was)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23 14:55:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_events_org_event_ts", table_name="events")
    op.create_index("ix_events_org_event_ts", "events", ["org_id", "event", "ts"], postgresql_include=["profile_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_events_org_event_ts", table_name="events")
    op.create_index("ix_events_org_event_ts", "events", ["org_id", "event", "ts"])
