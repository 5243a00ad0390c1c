"""Journeys: an enrolment knows when it came to its node and whether the event it waits for arrived

Revision ID: 0032_journey_waits
Revises: 0031_journeys
Create Date: 2026-12-04 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kehu.core.db

revision: str = '0032_journey_waits'
down_revision: str | None = '0031_journeys'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('journey_enrolments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('arrived_at', kehu.core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('signal', sa.String(length=20), nullable=True))
    # those inside already: the node they are at is taken as reached when its time started (a wait's end less its
    # length is unknown here; their entry is the earliest it can have been)
    op.execute("UPDATE journey_enrolments SET arrived_at = entered_at")
    with op.batch_alter_table('journey_enrolments', schema=None) as batch_op:
        batch_op.alter_column('arrived_at', existing_type=kehu.core.db.UTCDateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('journey_enrolments', schema=None) as batch_op:
        batch_op.drop_column('signal')
        batch_op.drop_column('arrived_at')
