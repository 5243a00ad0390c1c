"""The big owned tables' unit_id keep statistics of each unit (PostgreSQL: statistics target 1,000, a most-common-
values list long enough for every dealer of a network of 600 and more; ANALYZE then reads 300,000 rows of each).
With the default (100) PostgreSQL knew the hundred biggest units and took every other unit of a scope for an
average one: a region of 373 units — teams that own no customers among them — was planned as 80 % of the customers
instead of 21 %, so its counts scanned the whole table (a segment preview's exact count 1.5 s instead of 0.65 s)
and its searches walked the primary key.

Revision ID: 0041_unit_statistics
Revises: 0040_profiles_fillfactor
Create Date: 2026-12-07 07:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0041_unit_statistics'
down_revision: str | None = '0040_profiles_fillfactor'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNIT_STATISTICS = 1000
# the owned tables a reader's scope filters by their unit_id that a network fills by the hundred thousand
SCOPED_TABLES = ('profiles', 'leads', 'opportunities', 'orders', 'vehicles')


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':  # SQLite's planner keeps no per-value statistics to widen
        for table in SCOPED_TABLES:
            op.execute(f'ALTER TABLE {table} ALTER COLUMN unit_id SET STATISTICS {UNIT_STATISTICS}')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in SCOPED_TABLES:
            op.execute(f'ALTER TABLE {table} ALTER COLUMN unit_id SET STATISTICS -1')
