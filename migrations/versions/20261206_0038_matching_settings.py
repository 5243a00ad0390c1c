"""Dedupe: matching settings per organisation (which comparisons take part, custom fields among them, and the
blocking rules; null = the matcher's defaults)

Revision ID: 0038_matching_settings
Revises: 0037_profile_postcode
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0038_matching_settings'
down_revision: str | None = '0037_profile_postcode'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # nullable and without a default: PostgreSQL adds it without rewriting the table; SQLite adds it in place
    op.add_column('dedupe_settings', sa.Column(
        'matching', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))


def downgrade() -> None:
    op.drop_column('dedupe_settings', 'matching')
