"""Jobs in parts (an import cut for several workers); profiles lose the mobile and e-mail indexes (identities
find people by them); identities lose their foreign key to profiles (as events have none)

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-23 21:57:04.314511
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_index('ix_jobs_parent', ['parent_id', 'status'], unique=False)

    with op.batch_alter_table('profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_profiles_org_email'))
        batch_op.drop_index(batch_op.f('ix_profiles_org_mobile'))

    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_identities_profile_id_profiles'), type_='foreignkey')



def downgrade() -> None:
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_identities_profile_id_profiles'), 'profiles', ['profile_id'], ['id'])

    with op.batch_alter_table('profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_profiles_org_mobile'), ['org_id', 'mobile'], unique=False)
        batch_op.create_index(batch_op.f('ix_profiles_org_email'), ['org_id', 'email'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_parent')
        batch_op.drop_column('parent_id')

