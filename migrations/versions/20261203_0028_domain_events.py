"""Domain events (an outbox written with the change that caused it), each consumer's cursor, and the customers'
events readable as a stream in transaction order (the lead rules' private cursor table goes)

Revision ID: 0028_domain_events
Revises: 0027_owner_ids
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kehu.core.db

revision: str = '0028_domain_events'
down_revision: str | None = '0027_owner_ids'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    big_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
    # the publishing transaction's id, read by consumers to never skip one that commits late (core/events.py);
    # SQLite has one writer at a time: its ids are in commit order already
    txid_default = sa.text('(pg_current_xact_id()::text::bigint)') if postgres else sa.text('0')
    op.create_table(
        'domain_events',
        sa.Column('id', big_id, autoincrement=True, nullable=False),
        sa.Column('txid', sa.BigInteger(), server_default=txid_default, nullable=False),
        sa.Column('org_id', big_id, nullable=False),
        sa.Column('kind', sa.String(length=80), nullable=False),
        sa.Column('entity', sa.String(length=40), nullable=True),
        sa.Column('entity_id', big_id, nullable=True),
        sa.Column('profile_id', big_id, nullable=True),
        sa.Column('payload', sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), 'postgresql'), nullable=False),
        sa.Column('at', kehu.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_domain_events')),
    )
    op.create_index('ix_domain_events_txid_id', 'domain_events', ['txid', 'id'], unique=False)
    op.create_table(
        'event_cursors',
        sa.Column('consumer', sa.String(length=80), nullable=False),
        sa.Column('txid', sa.BigInteger(), nullable=False),
        sa.Column('event_id', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', kehu.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('consumer', name=op.f('pk_event_cursors')),
    )


    # events: a nullable column and a default for new rows only, so the millions of rows kept are not rewritten
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('txid', sa.BigInteger(), nullable=True))
    if postgres:
        op.execute('ALTER TABLE events ALTER COLUMN txid SET DEFAULT (pg_current_xact_id()::text::bigint)')
    else:
        with op.batch_alter_table('events', schema=None) as batch_op:
            batch_op.alter_column('txid', server_default=sa.text('0'))
        op.execute('UPDATE events SET txid = 0')
    op.create_index('ix_events_txid_id', 'events', ['txid', 'id'], unique=False)
    # the lead rules read the events through an event cursor ('sales.lead_rules'), from where they had got to
    op.execute("INSERT INTO event_cursors (consumer, txid, event_id, updated_at) "
               "SELECT 'sales.lead_rules', 0, coalesce(max(last_event_id), 0), CURRENT_TIMESTAMP FROM lead_cursors "
               "HAVING count(*) > 0")
    op.drop_table('lead_cursors')


def downgrade() -> None:
    op.create_table(
        'lead_cursors',
        sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('last_event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_lead_cursors_org_id_organizations'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('org_id', name=op.f('pk_lead_cursors')),
    )
    op.drop_index('ix_events_txid_id', table_name='events')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('txid')
    op.drop_table('event_cursors')
    op.drop_index('ix_domain_events_txid_id', table_name='domain_events')
    op.drop_table('domain_events')
