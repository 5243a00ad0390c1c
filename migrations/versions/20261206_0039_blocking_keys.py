"""Live duplicate matching: the stored blocking keys of every live profile (one row per key it blocks on)

Revision ID: 0039_blocking_keys
Revises: 0038_matching_settings
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0039_blocking_keys'
down_revision: str | None = '0038_matching_settings'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'blocking_keys',
        sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False,
                  nullable=False),
        sa.Column('key', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('profile_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False,
                  nullable=False),
        sa.PrimaryKeyConstraint('org_id', 'key', 'profile_id', name=op.f('pk_blocking_keys')),
    )
    op.create_index('ix_blocking_keys_profile', 'blocking_keys', ['profile_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_blocking_keys_profile', table_name='blocking_keys')
    op.drop_table('blocking_keys')
