"""A person's own records by (owner, id), newest first from the index; units under a path by a byte-order prefix

Revision ID: 0027_owner_ids
Revises: 0026_auth
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0027_owner_ids'
down_revision: str | None = '0026_auth'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNED = ('activities', 'leads', 'opportunities', 'orders', 'profiles')


def upgrade() -> None:
    for table in OWNED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f'ix_{table}_owner_id')
            batch_op.create_index(f'ix_{table}_owner_id', ['owner_id', 'id'], unique=False)
    with op.batch_alter_table('business_units', schema=None) as batch_op:
        batch_op.create_index('ix_business_units_org_path_prefix', ['org_id', 'path'], unique=False,
                              postgresql_ops={'path': 'text_pattern_ops'})


def downgrade() -> None:
    with op.batch_alter_table('business_units', schema=None) as batch_op:
        batch_op.drop_index('ix_business_units_org_path_prefix')
    for table in OWNED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f'ix_{table}_owner_id')
            batch_op.create_index(f'ix_{table}_owner_id', ['owner_id'], unique=False)
