"""Import files are stored uncompressed (PostgreSQL STORAGE EXTERNAL: a part's slice reads its own chunks);
profiles lose the pinyin index no query used (each import and new visitor paid a write into it)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0024'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('profiles', schema=None) as batch_op:
        batch_op.drop_index('ix_profiles_org_pinyin')
    if op.get_bind().dialect.name == 'postgresql':
        # Files stored from now on; existing ones keep their compressed form until rewritten (still readable).
        op.execute('ALTER TABLE imports ALTER COLUMN content SET STORAGE EXTERNAL')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE imports ALTER COLUMN content SET STORAGE EXTENDED')
    with op.batch_alter_table('profiles', schema=None) as batch_op:
        batch_op.create_index('ix_profiles_org_pinyin', ['org_id', 'name_pinyin'], unique=False)
