"""Reading the records to match: the organisation's live profiles out of kehu's database (COPY on PostgreSQL)
into a DuckDB table ``records``, with the keys that comparisons and blocking rules use, derived in one pass.

Names are split into two parts as written: first and last (a Western given and family name, or "Wei Zhang"),
a Chinese name in characters into its family character and given name — both in pinyin, so characters,
traditional characters, homophones and pinyin in either order agree. Each part gets a sound key and its formal
name (nicknames); the pair of parts a key in either order (``name_key``), sound keys and initials likewise.
Addresses give their house number and street (street types abbreviated one way), postcodes their district and
area, birthdays their year and month-day."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.cdp import normalise
from kehu.cdp.matching.names import canonical, sound_key
from kehu.cdp.models import Profile

CJK_RANGE = "\\x{3400}-\\x{9fff}"  # Chinese characters (RE2)
CJK = f"[{CJK_RANGE}]"
COLUMNS = {"id": "BIGINT", "unit_id": "BIGINT", "name": "VARCHAR", "name_pinyin": "VARCHAR", "birthday": "DATE",
           "mobile": "VARCHAR", "email": "VARCHAR", "city": "VARCHAR", "address": "VARCHAR", "postcode": "VARCHAR",
           "gender": "VARCHAR"}
ATTRIBUTE_COLUMN = "cf_"  # a custom field's column: cf_<key> (see matching.config)
# Street types as people shorten them (the long form and the short one become the short one)
STREET_TYPES = (("road", "rd"), ("street", "st"), ("avenue", "ave"), ("lane", "ln"), ("close", "cl"),
                ("drive", "dr"), ("way", "wy"), ("crescent", "cres"), ("gardens", "gdns"), ("place", "pl"),
                ("terrace", "terr"), ("grove", "gr"), ("court", "ct"), ("square", "sq"), ("parade", "pde"))


def _query(org_id: int, ids: Iterable[int] | None = None, attributes: Sequence[str] = ()) -> Any:
    """A Select of the columns of COLUMNS, then the custom fields ``attributes`` (their values as text)."""
    query = select(Profile.id, Profile.unit_id, Profile.name, Profile.name_pinyin, Profile.birthday, Profile.mobile,
                   Profile.email, Profile.city, Profile.address, Profile.postcode, Profile.gender,
                   *(Profile.attributes[key].as_string().label(ATTRIBUTE_COLUMN + key) for key in attributes)).where(
        Profile.org_id == org_id, Profile.merged_into_id.is_(None)).order_by(Profile.id)
    if ids is not None:
        query = query.where(Profile.id.in_(list(ids)))
    return query


def export_records(session: Session, org_id: int, path: Path, *, ids: Iterable[int] | None = None,
                   attributes: Sequence[str] = ()) -> None:
    """Write the organisation's live profiles' matching fields (or only ``ids``), and the custom fields
    ``attributes``, to a CSV file (COPY on PostgreSQL)."""
    query = _query(org_id, ids, attributes)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        compiled = query.compile(connection, compile_kwargs={"literal_binds": True})
        driver = connection.connection.driver_connection
        assert driver is not None  # a live connection: psycopg's own
        with path.open("wb") as out, driver.cursor() as cursor, \
                cursor.copy(f"COPY ({compiled}) TO STDOUT (FORMAT csv)") as copy:
            for chunk in copy:
                out.write(chunk)
        return
    with path.open("w", newline="", encoding="utf-8") as out:
        # A working file for DuckDB, never opened by a person: the values go as they are (not kehu.core.files).
        writer = csv.writer(out)
        for row in session.execute(query).yield_per(20_000):
            writer.writerow(["" if value is None else value for value in row])


def _street_sql(column: str) -> tuple[str, list[str]]:
    """An address in lower case without a flat's number, and the steps (CTEs over ``t``, the text so far) that
    write its street types one way. A type's pattern runs only where the text contains its long or short form
    (a substring search): it cannot match elsewhere, and sixteen expressions a record were most of the reading."""
    text = f"regexp_replace(lower({column}), '^\\s*(flat|apartment|apt|unit)\\s*[0-9a-z]*\\s*,?\\s*', '')"
    steps = [f"SELECT * REPLACE (CASE WHEN contains(t, '{long}') OR contains(t, '{short}') "
             f"THEN regexp_replace(t, '\\b({long}|{short})\\b\\.?', '{short}', 'g') ELSE t END AS t)"
             for long, short in STREET_TYPES]
    return text, steps


def derive(con: duckdb.DuckDBPyConnection, raw: str = "raw", table: str = "records") -> int:
    """Make ``table`` (the matching keys) out of ``raw`` (the columns of COLUMNS, and custom fields as columns
    cf_<key>: lower case, without spaces and punctuation, so 110101 1990-0101 23x and 11010119900101023X agree);
    its row count."""
    attributes = [c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE {raw})").fetchall()
                  if c.startswith(ATTRIBUTE_COLUMN)]
    custom = "".join(f",\n               nullif(regexp_replace(lower(trim({c})), '[\\s\\-_./,，·]', '', 'g'), '') "
                     f"AS {c}" for c in attributes)
    # The family name's pinyin for Chinese names: distinct first characters are a few thousand at most.
    con.execute("CREATE OR REPLACE TEMP TABLE family (c VARCHAR, py VARCHAR)")
    firsts = [c for (c,) in con.execute(f"SELECT DISTINCT substr(name, 1, 1) FROM {raw} WHERE name IS NOT NULL "
                                        f"AND regexp_matches(name, '^{CJK}')").fetchall() if c]
    if firsts:
        con.executemany("INSERT INTO family VALUES (?, ?)", [(c, normalise.pinyin(c) or "") for c in firsts])
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE named AS
        WITH split AS (
            SELECT raw.*, nullif(trim(raw.name), '') AS shown,
                   regexp_matches(raw.name, '^{CJK}') AS cjk,
                   list_filter(string_split(regexp_replace(lower(strip_accents(coalesce(raw.name, ''))),
                                                           '[^a-z ]', '', 'g'), ' '), lambda x: x <> '') AS tokens
            FROM {raw} raw
        )
        SELECT split.* EXCLUDE (tokens, name_pinyin),
               CASE WHEN cjk THEN family.py ELSE tokens[1] END AS p1,
               CASE WHEN cjk THEN nullif(CASE WHEN starts_with(name_pinyin, family.py)
                                              THEN substr(name_pinyin, length(family.py) + 1) END, '')
                    WHEN len(tokens) >= 2 THEN tokens[-1] END AS p2
        FROM split LEFT JOIN family ON cjk AND family.c = substr(split.name, 1, 1)
    """)
    parts = [p for (p,) in con.execute("SELECT p1 FROM named WHERE p1 IS NOT NULL UNION "
                                       "SELECT p2 FROM named WHERE p2 IS NOT NULL").fetchall()]
    # Distinct name parts (tens of thousands where typos abound): keys made in Python, handed to DuckDB as one file
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "parts.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)  # a working file for DuckDB, read by no person
            writer.writerows((p, sound_key(p) or "", canonical(p) or "") for p in parts)
        con.execute(f"CREATE OR REPLACE TEMP TABLE parts AS SELECT * FROM read_csv('{path}', header=false, "
                    "columns={'p': 'VARCHAR', 'sound': 'VARCHAR', 'canon': 'VARCHAR'}, nullstr='', quote='\"', "
                    "escape='\"', delim=',', auto_detect=false)")
    street, types = _street_sql("n.address")
    typed = ", ".join(f"street{index} AS ({step} FROM street{index - 1})" for index, step in enumerate(types, 1))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE unsorted AS
        WITH street0 AS (
            SELECT n.*, a.sound AS s1, b.sound AS s2, a.canon AS c1, b.canon AS c2,
                   nullif(regexp_replace(upper(n.postcode), '[^0-9A-Z]', '', 'g'), '') AS pc, {street} AS t
            FROM named n LEFT JOIN parts a ON a.p = n.p1 LEFT JOIN parts b ON b.p = n.p2
        ), {typed}, keyed AS (
            SELECT * EXCLUDE (t), nullif(trim(regexp_replace(t, '\\s+', ' ', 'g')), '') AS addr_text
            FROM street{len(types)}
        ), derived AS (
        SELECT id, unit_id, shown AS name, lower(shown) AS name_lower, cjk, p1, p2, s1, s2, c1, c2,
               CASE WHEN p2 IS NOT NULL THEN least(p1 || p2, p2 || p1) ELSE p1 END AS name_key,
               CASE WHEN s2 IS NOT NULL THEN least(s1 || '.' || s2, s2 || '.' || s1) ELSE s1 END AS sound_key,
               CASE WHEN p2 IS NOT NULL THEN least(left(p1, 1), left(p2, 1)) || greatest(left(p1, 1), left(p2, 1))
                    END AS initials,
               -- both parts' first three and last three letters, in either order: a typo elsewhere keeps them
               CASE WHEN length(p1) > 1 AND length(p2) > 1
                    THEN least(left(p1, 3) || '.' || left(p2, 3), left(p2, 3) || '.' || left(p1, 3)) END AS name_pre,
               CASE WHEN length(p1) > 1 AND length(p2) > 1
                    THEN least(right(p1, 3) || '.' || right(p2, 3), right(p2, 3) || '.' || right(p1, 3)) END
                   AS name_suf,
               CASE WHEN cjk THEN p1 WHEN p2 IS NOT NULL THEN p2 END AS fam,
               birthday, year(birthday) AS byear, strftime(birthday, '%m%d') AS bmd,
               strftime(birthday, '%Y%m%d') AS bstr,
               nullif(regexp_replace(mobile, '[^0-9]', '', 'g'), '') AS mobile,
               nullif(lower(trim(email)), '') AS email,
               nullif(lower(trim(city)), '') AS city,
               nullif(lower(trim(gender)), '') AS gender,
               nullif(regexp_replace(addr_text, '[^0-9a-z{CJK_RANGE}]', '', 'g'), '') AS addr,
               nullif(regexp_replace(address, '\\s', '', 'g'), '') AS address,  -- as written, for other tools
               nullif(regexp_extract(addr_text, '([0-9]+)[^0-9]*$', 1), '') AS house,
               nullif(regexp_replace(addr_text, '[^a-z{CJK_RANGE}]', '', 'g'), '') AS street,
               pc,
               -- a postcode with letters (LS7 4QH), read by the comparisons of every pair: tested once per record
               regexp_matches(pc, '[A-Z]') AS pc_alpha,
               CASE WHEN pc_alpha AND length(pc) > 3 THEN left(pc, length(pc) - 3)
                    WHEN length(pc) >= 5 THEN left(pc, 4) END AS pc_district,
               CASE WHEN regexp_matches(pc, '^[A-Z]') THEN regexp_extract(pc, '^[A-Z]+')
                    WHEN length(pc) >= 5 THEN left(pc, 2) END AS pc_area{custom}
        FROM keyed)
        SELECT * FROM derived
    """)
    # Each street's and birthday's characters in order (a swap of two keeps them): most strings two characters
    # apart are not one swap apart, and this spares the costly distance that says so (人民路 / 解放路). Sorted once
    # per distinct value (a million records have some 30,000 of each; sorting each record's took 1.1–1.4 s) and
    # joined back; streets (letters) and birthdays (digits) never share a value.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE sorted_chars AS
        SELECT v, {_chars('v')} AS chars
        FROM (SELECT street AS v FROM unsorted WHERE street IS NOT NULL
              UNION SELECT bstr FROM unsorted WHERE bstr IS NOT NULL)
    """)
    con.execute(f"""
        CREATE OR REPLACE TABLE {table} AS
        SELECT d.*, s.chars AS street_chars, b.chars AS bstr_chars
        FROM unsorted d LEFT JOIN sorted_chars s ON s.v = d.street LEFT JOIN sorted_chars b ON b.v = d.bstr
    """)
    con.execute("DROP TABLE named; DROP TABLE parts; DROP TABLE family; DROP TABLE unsorted; DROP TABLE sorted_chars")
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]


def _chars(column: str) -> str:
    return f"array_to_string(list_sort(string_split({column}, '')), '')"


def load_file(con: duckdb.DuckDBPyConnection, path: Path, *, table: str = "records",
              attributes: Sequence[str] = ()) -> int:
    columns = {**COLUMNS, **{ATTRIBUTE_COLUMN + key: "VARCHAR" for key in attributes}}
    con.execute(f"CREATE OR REPLACE TEMP TABLE raw AS SELECT * FROM read_csv('{path}', header=false, "
                f"columns={columns!r}, nullstr='', quote='\"', escape='\"', delim=',', auto_detect=false)")
    count = derive(con, "raw", table)
    con.execute("DROP TABLE raw")
    return count


def load_records(session: Session, org_id: int, con: duckdb.DuckDBPyConnection, *, workdir: Path | None = None,
                 ids: Iterable[int] | None = None, table: str = "records", attributes: Sequence[str] = ()) -> int:
    """The organisation's live profiles (or only ``ids``: one new record to compare with the stored ones) as the
    table ``table`` of ``con``, matching keys made, with the custom fields ``attributes`` (keys: see
    ``config.attributes_of`` for those a run's comparisons and rules read) as columns cf_<key>; their count."""
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        path = Path(scratch) / "records.csv"
        export_records(session, org_id, path, ids=ids, attributes=attributes)
        return load_file(con, path, table=table, attributes=attributes)
