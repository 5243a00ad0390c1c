"""Working hours on first-contact levels: the service-level clock stops while a unit is closed

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-23 18:59:29.237796
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from sqlalchemy.dialects import postgresql

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('lead_slas', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opens_at', sa.Time(), nullable=True))
        batch_op.add_column(sa.Column('closes_at', sa.Time(), nullable=True))
        batch_op.add_column(sa.Column(
            'open_days', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
            nullable=False, server_default=sa.text("'[0, 1, 2, 3, 4, 5, 6]'")))


def downgrade() -> None:
    with op.batch_alter_table('lead_slas', schema=None) as batch_op:
        batch_op.drop_column('open_days')
        batch_op.drop_column('closes_at')
        batch_op.drop_column('opens_at')

