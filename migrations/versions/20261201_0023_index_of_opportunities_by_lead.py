"""Opportunities get an index on their lead (the foreign key's own: removing a lead scanned every deal)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01 07:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0023'
down_revision: str | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.create_index('ix_opportunities_lead', ['lead_id'], unique=False,
                              postgresql_where=sa.text('lead_id IS NOT NULL'),
                              sqlite_where=sa.text('lead_id IS NOT NULL'))


def downgrade() -> None:
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.drop_index('ix_opportunities_lead', postgresql_where=sa.text('lead_id IS NOT NULL'),
                            sqlite_where=sa.text('lead_id IS NOT NULL'))
