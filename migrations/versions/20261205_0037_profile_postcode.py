"""Profiles: a postcode beside the address (imports, the API, the Customer 360, exports, messages, matching)

Revision ID: 0037_profile_postcode
Revises: 0036_segment_time_followed
Create Date: 2026-12-06 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0037_profile_postcode'
down_revision: str | None = '0036_segment_time_followed'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # nullable and without a default: PostgreSQL adds it without rewriting the table
    with op.batch_alter_table('profiles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('postcode', sa.String(length=16), nullable=True))


def downgrade() -> None:
    # a plain DROP COLUMN (SQLite 3.35+): a batch would copy profiles into a new table without the expression
    # index it cannot reflect (ix_profiles_org_mobile_tail), which the downgrade of 0025 then fails to drop
    op.drop_column('profiles', 'postcode')
