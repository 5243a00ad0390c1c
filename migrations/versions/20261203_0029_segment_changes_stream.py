"""Segment membership changes readable as a stream in transaction order (core/events.py), as the customers' events

Revision ID: 0029_segment_changes_stream
Revises: 0028_domain_events
Create Date: 2026-12-03 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0029_segment_changes_stream'
down_revision: str | None = '0028_domain_events'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a nullable column and a default for new rows only, so the rows kept are not rewritten (as events in 0028)
    with op.batch_alter_table('segment_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('txid', sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE segment_changes ALTER COLUMN txid SET DEFAULT (pg_current_xact_id()::text::bigint)')
    else:
        with op.batch_alter_table('segment_changes', schema=None) as batch_op:
            batch_op.alter_column('txid', server_default=sa.text('0'))
        op.execute('UPDATE segment_changes SET txid = 0')
    op.create_index('ix_segment_changes_txid_id', 'segment_changes', ['txid', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_segment_changes_txid_id', table_name='segment_changes')
    with op.batch_alter_table('segment_changes', schema=None) as batch_op:
        batch_op.drop_column('txid')
