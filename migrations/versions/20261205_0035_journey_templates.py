"""Journeys: HQ's templates for dealers (a journey offered to the units below, with locked and open parts) and the
journeys each dealer made of one

Revision ID: 0035_journey_templates
Revises: 0034_journey_approval
Create Date: 2026-12-05 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kehu.core.db

revision: str = '0035_journey_templates'
down_revision: str | None = '0034_journey_approval'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('journeys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_template', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('template_id', kehu.core.db.BigId, nullable=True))
        batch_op.add_column(sa.Column('template_version', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_journeys_template_id_journeys'), 'journeys', ['template_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_index(batch_op.f('ix_journeys_template'), ['template_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('journeys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_journeys_template'))
        batch_op.drop_constraint(batch_op.f('fk_journeys_template_id_journeys'), type_='foreignkey')
        batch_op.drop_column('template_version')
        batch_op.drop_column('template_id')
        batch_op.drop_column('is_template')
