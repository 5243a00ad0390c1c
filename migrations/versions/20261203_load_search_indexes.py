"""Customer search from indexes: each name's characters and pairs of characters (GIN, PostgreSQL), the pinyin in
byte order (text_pattern_ops) and the mobile's last four digits

Revision ID: 0025_load
Revises: 0024
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0025_load'
down_revision: str | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A name's keys in its GIN index: every character (a search for one, 张) and every pair of adjacent characters
# (a search for 张伟 needs its one pair, 张伟华 its two), lower-cased. pg_trgm would not do:
# LIKE '%张伟%' yields no trigram. PL/pgSQL over string_to_array: ~2.5 µs a name, where a SQL function with a
# set-returning subquery cost ~20 µs on every profile written.
NAME_GRAMS = """
CREATE FUNCTION kehu_name_grams(value text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    lowered text := lower(value);
    grams text[] := string_to_array(lowered, NULL);
BEGIN
    FOR i IN 1 .. char_length(lowered) - 1 LOOP
        grams := grams || substr(lowered, i, 2);
    END LOOP;
    RETURN grams;
END
$$
"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    with op.batch_alter_table('profiles', schema=None) as batch_op:
        batch_op.create_index('ix_profiles_org_pinyin', ['org_id', 'name_pinyin'], unique=False,
                              postgresql_ops={'name_pinyin': 'text_pattern_ops'})
        batch_op.create_index('ix_profiles_org_mobile_tail', ['org_id', sa.text('substr(mobile, length(mobile) - 3)')],
                              unique=False)
    if postgres:
        op.execute(NAME_GRAMS)
        op.execute('CREATE INDEX ix_profiles_name_grams ON profiles USING gin (kehu_name_grams(name))')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX ix_profiles_name_grams')
        op.execute('DROP FUNCTION kehu_name_grams(text)')
    with op.batch_alter_table('profiles', schema=None) as batch_op:
        batch_op.drop_index('ix_profiles_org_mobile_tail')
        batch_op.drop_index('ix_profiles_org_pinyin')
