"""Journeys: a timed trigger's next run (a schedule, a date on the profile)

Revision ID: 0033_journey_timed_triggers
Revises: 0032_journey_waits
Create Date: 2026-12-05 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kehu.core.db

revision: str = '0033_journey_timed_triggers'
down_revision: str | None = '0032_journey_waits'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('journeys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_entry_at', kehu.core.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('journeys', schema=None) as batch_op:
        batch_op.drop_column('next_entry_at')
