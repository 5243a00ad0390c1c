"""Probabilistic dedupe: per-organisation thresholds and last run, and the duplicate candidates (疑似重复) it proposes

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01 06:14:24.873963
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kehu.core.db
from sqlalchemy.dialects import postgresql

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('duplicate_candidates',
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('profile_a_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('profile_b_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('probability', sa.Double(), nullable=False),
    sa.Column('levels', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('found_at', kehu.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', kehu.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('merge_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_duplicate_candidates')),
    sa.UniqueConstraint('org_id', 'profile_a_id', 'profile_b_id', name=op.f('uq_duplicate_candidates_org_id_profile_a_id_profile_b_id'))
    )
    with op.batch_alter_table('duplicate_candidates', schema=None) as batch_op:
        batch_op.create_index('ix_duplicate_candidates_b', ['profile_b_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_duplicate_candidates_profile_a_id'), ['profile_a_id'], unique=False)
        batch_op.create_index('ix_duplicate_candidates_queue', ['org_id', 'status', 'probability'], unique=False)

    op.create_table('dedupe_settings',
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('review_threshold', sa.Double(), nullable=False),
    sa.Column('auto_merge_threshold', sa.Double(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('job_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('last_run_at', kehu.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('figures', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('model', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', kehu.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', kehu.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_dedupe_settings_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dedupe_settings')),
    sa.UniqueConstraint('org_id', name=op.f('uq_dedupe_settings_org_id'))
    )


def downgrade() -> None:
    op.drop_table('dedupe_settings')
    with op.batch_alter_table('duplicate_candidates', schema=None) as batch_op:
        batch_op.drop_index('ix_duplicate_candidates_queue')
        batch_op.drop_index(batch_op.f('ix_duplicate_candidates_profile_a_id'))
        batch_op.drop_index('ix_duplicate_candidates_b')

    op.drop_table('duplicate_candidates')
