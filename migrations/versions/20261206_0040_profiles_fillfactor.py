"""Profiles keep a tenth of each page free (fillfactor 90), so the update every event makes (last seen) stays on its
page: a HOT update, which writes none of the table's indexes (the name's grams among them). Full pages, as a bulk
load leaves them, made nine updates in ten move their row and write every index.

Revision ID: 0040_profiles_fillfactor
Revises: 0039_blocking_keys
Create Date: 2026-12-06 21:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0040_profiles_fillfactor'
down_revision: str | None = '0039_blocking_keys'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':  # SQLite has no fill factor: it rewrites a row where it lies
        op.execute('ALTER TABLE profiles SET (fillfactor = 90)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE profiles RESET (fillfactor)')
