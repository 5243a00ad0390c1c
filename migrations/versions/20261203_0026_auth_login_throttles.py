"""Sign-in throttling per account and per client address, in the database (login_throttles)

Revision ID: 0026_auth
Revises: 0026_imports
Create Date: 2026-12-03 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kehu.core.db

revision: str = '0026_auth'
down_revision: str | None = '0026_imports'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('login_throttles',
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', kehu.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('blocked_until', kehu.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_refused_at', kehu.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_login_throttles'))
    )


def downgrade() -> None:
    op.drop_table('login_throttles')
