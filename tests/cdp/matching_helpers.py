"""Records for matching tests, straight into DuckDB (no kehu database): rows of the columns kehu reads."""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb

from kehu.cdp import normalise
from kehu.cdp.matching import records as matching_records

FIELDS = ("name", "birthday", "mobile", "email", "city", "address", "postcode", "gender")


def load_rows(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> int:
    """``rows`` (dicts of FIELDS, id = position + 1) as the table ``records``, keys derived as kehu derives them."""
    columns = ", ".join(f"{k} {t}" for k, t in matching_records.COLUMNS.items())
    con.execute(f"CREATE OR REPLACE TEMP TABLE raw ({columns})")
    values = []
    for index, row in enumerate(rows, 1):
        name = normalise.name(row["name"]) if row.get("name") else None
        born = row.get("birthday")
        values.append((row.get("id", index), 1, name, normalise.pinyin(name), born if isinstance(born, date) or born
                       is None else date.fromisoformat(born), row.get("mobile"), row.get("email"), row.get("city"),
                       row.get("address"), row.get("postcode"), row.get("gender")))
    con.executemany(f"INSERT INTO raw VALUES ({', '.join('?' * len(matching_records.COLUMNS))})", values)
    return matching_records.derive(con, "raw", "records")
