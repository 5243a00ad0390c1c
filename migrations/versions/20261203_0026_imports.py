"""Every importable column stored: the customer's address as a standard field; the values an import leaves out of
accepted rows (a wrong birthday, an e-mail beside a good mobile) kept as warnings

Revision ID: 0026_imports
Revises: 0025_load
Create Date: 2026-12-03 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0026_imports'
down_revision: str | None = '0025_load'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('profiles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sa.String(length=255), nullable=True))
    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('warnings', sa.Integer(), server_default='0', nullable=False))
    op.create_table('import_warnings',
    sa.Column('import_id', BIG_ID, nullable=False),
    sa.Column('row_number', sa.Integer(), nullable=False),
    sa.Column('column', sa.Text(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('problem', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['import_id'], ['imports.id'], name=op.f('fk_import_warnings_import_id_imports'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_warnings'))
    )
    with op.batch_alter_table('import_warnings', schema=None) as batch_op:
        batch_op.create_index('ix_import_warnings_import_row', ['import_id', 'row_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('import_warnings', schema=None) as batch_op:
        batch_op.drop_index('ix_import_warnings_import_row')
    op.drop_table('import_warnings')
    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.drop_column('warnings')
    # a plain DROP COLUMN (SQLite 3.35+): a batch would copy profiles into a new table without the expression
    # indexes it cannot reflect (ix_profiles_org_mobile_tail), which the downgrade of 0025 then fails to drop
    op.drop_column('profiles', 'address')
