"""Segments: the moment up to which a condition counting days back from now was followed as time passed

Revision ID: 0036_segment_time_followed
Revises: 0035_journey_templates
Create Date: 2026-12-05 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kehu.core.db

revision: str = '0036_segment_time_followed'
down_revision: str | None = '0035_journey_templates'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # empty until a segment's next refresh, which fills it where its condition counts days back
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_followed_at', kehu.core.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.drop_column('time_followed_at')
