"""Journeys: approval of a version where a unit above asks for it; the journeys.actions permission

Revision ID: 0034_journey_approval
Revises: 0033_journey_timed_triggers
Create Date: 2026-12-05 03:30:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kehu.core.db

revision: str = '0034_journey_approval'
down_revision: str | None = '0033_journey_timed_triggers'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('journeys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review_status', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('review_comment', sa.String(length=500), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('submitted_by_id', kehu.core.db.BigId, nullable=True))
        batch_op.add_column(sa.Column('submitted_at', kehu.core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('submitted_move_people', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('reviewed_by_id', kehu.core.db.BigId, nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', kehu.core.db.UTCDateTime(timezone=True), nullable=True))
    # journeys that act (profile fields, leads, tasks): the administrator and the marketers, in existing
    # organisations as in new ones
    roles = sa.table('roles', sa.column('id', sa.BigInteger()), sa.column('code', sa.String()),
                     sa.column('privileges', kehu.core.db.JsonDoc))
    bind = op.get_bind()
    for role_id, privileges in bind.execute(sa.select(roles.c.id, roles.c.privileges).where(
            roles.c.code.in_(('org_admin', 'hq_marketing', 'dealer_marketing')))).all():
        granted = json.loads(privileges) if isinstance(privileges, str) else dict(privileges or {})
        granted.setdefault('journeys.actions', 'org')
        bind.execute(roles.update().where(roles.c.id == role_id).values(privileges=granted))


def downgrade() -> None:
    with op.batch_alter_table('journeys', schema=None) as batch_op:
        for column in ('reviewed_at', 'reviewed_by_id', 'submitted_move_people', 'submitted_at', 'submitted_by_id',
                       'review_comment', 'review_status'):
            batch_op.drop_column(column)
