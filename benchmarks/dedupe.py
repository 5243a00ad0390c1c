"""Probabilistic dedupe (DESIGN.md §6): F1 at least Splink's on the same data, at least at Splink's speed.

Two kinds of data (``--param data=chinese|western``):

- **chinese**: the generator's customers (`kehu generate`), a share of them written down again at another
  touchpoint (another spelling of the name, pinyin in either order, traditional characters, an old mobile, fields
  missing) and sharing no identity;
- **western**: another company's customer file (`kehu generate --style western`): Western names, street
  addresses, towns and postcodes, dates of birth, few mobiles or e-mails, and 30 % of people as several records
  corrupted by a FEBRL/GeCo-style model (typos, OCR and phonetic errors, swapped or missing names, nicknames,
  initials, swapped day and month, mistyped years, another address).

kehu runs its own matcher as it runs for a user (``kehu.cdp.matching``: read, block, compare, fit, score). Splink
(DuckDB backend) reads the same profiles on its own and is set up on its own terms, as its documentation's
examples (historical persons, FEBRL) teach for the columns at hand: names split into first name and surname with
its ForenameSurnameComparison (term frequencies on the whole name), its DateOfBirthComparison and
PostcodeComparison, exact city with term frequencies, Levenshtein on the address, exact mobile and its e-mail
comparison; its own blocking rules (name prefixes, surname + date of birth, postcode + name …); the prior from
deterministic rules at a recall of 0.6, u from 10⁷ random pairs, m by EM sessions blocked on the names and on
the date of birth. For Chinese names the parts are the pinyin of the family name and of the given name (so
张伟, 張偉, "Zhang Wei" and "Wei Zhang" meet), e-mails are compared whole (their local part is the name's pinyin),
there is no postcode comparison (the generator's addresses are drawn afresh for every record), the rest as for
Western data.

Both are scored alike: their pairs at or above a probability are clustered (connected components) and compared
with the truth pairwise (precision, recall, F1) at several probabilities; blocking recall is the share of true
pairs a matcher ever compares. Seconds include each matcher's own read of the profiles; the machine's load is
sampled while each runs. Splink is a benchmark-only dependency (`pip install -e '.[bench]'`); without it the
run reports kehu's figures alone."""

from __future__ import annotations

import contextlib
import io
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import default_size, fresh_database, machine, settle

THRESHOLD = 0.9
SWEEP = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999)
SEED = 31
# A rule on the name alone is kept only while it makes fewer comparisons than this (a user reads the count off
# Splink's blocking analysis and drops a rule that would make hundreds of millions).
NAME_ONLY_LIMIT = 30_000_000


def _f1(clusters: dict[int, int], truth: dict[int, str]) -> dict[str, Any]:
    """Pairwise precision, recall and F1 of a clustering (record → cluster) against the truth."""
    from kehu.cdp.resolution_quality import score_clusters

    figures = score_clusters([(clusters.get(record, record), person) for record, person in truth.items()]).as_dict()
    return {key: figures[key] or 0.0 for key in ("precision", "recall", "f1", "found_pairs", "true_pairs")}


@contextlib.contextmanager
def _measured() -> Iterator[dict[str, Any]]:
    """Wall and CPU seconds of the block, and the machine's 1-minute load average sampled every second."""
    out: dict[str, Any] = {"load_before": [round(x, 2) for x in os.getloadavg()]}
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            samples.append(os.getloadavg()[0])

    thread = threading.Thread(target=sample, daemon=True)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        after = resource.getrusage(resource.RUSAGE_SELF)
        out["wall_seconds"] = round(time.perf_counter() - started, 2)
        out["cpu_seconds"] = round(after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime, 2)
        out["load_during"] = {"mean": round(sum(samples) / len(samples), 2) if samples else None,
                              "max": round(max(samples), 2) if samples else None}
        out["load_after"] = [round(x, 2) for x in os.getloadavg()]


def _true_pairs(con: Any, truth: dict[int, str]) -> int:
    """The truth as the table bench_truth(id, person) of ``con`` and the true pairs as bench_true_pairs(a, b)."""
    import pyarrow as pa

    con.register("bench_truth_arrow", pa.table({"id": list(truth), "person": list(truth.values())}))
    con.execute("CREATE OR REPLACE TABLE bench_truth AS SELECT * FROM bench_truth_arrow")
    con.unregister("bench_truth_arrow")
    con.execute("CREATE OR REPLACE TABLE bench_true_pairs AS SELECT l.id AS a, r.id AS b FROM bench_truth l "
                "JOIN bench_truth r ON l.person = r.person AND l.id < r.id")
    return int(con.execute("SELECT count(*) FROM bench_true_pairs").fetchall()[0][0])


def _kehu_blocking_recall(con: Any, truth: dict[int, str]) -> float | None:
    """The share of true pairs among the candidate pairs kehu's matcher compared (its table ``pairs`` (a, b) in
    the DuckDB connection it worked in); None when the matcher keeps them elsewhere."""
    try:
        con.execute("SELECT a, b FROM pairs LIMIT 0")
    except Exception:
        return None
    total = _true_pairs(con, truth)
    found = con.execute("SELECT count(*) FROM bench_true_pairs t JOIN pairs p ON p.a = t.a AND p.b = t.b "
                        "UNION ALL SELECT count(*) FROM bench_true_pairs t JOIN pairs p ON p.a = t.b AND p.b = t.a"
                        ).fetchall()
    return round(sum(n for (n,) in found) / total, 4) if total else None


# -- Splink ----------------------------------------------------------------------------------------------------
def _read_profiles(database: Any, org_id: int, con: Any) -> int:
    """The organisation's live profiles as the DuckDB table ``profiles`` (COPY out of PostgreSQL): Splink's own
    read, the columns a user would export for it."""
    from sqlalchemy import select

    from kehu.cdp.models import Profile

    query = select(Profile.id, Profile.name, Profile.name_pinyin, Profile.birthday, Profile.mobile, Profile.email,
                   Profile.city, Profile.address, Profile.postcode).where(
        Profile.org_id == org_id, Profile.merged_into_id.is_(None))
    types = {"id": "BIGINT", "name": "VARCHAR", "name_pinyin": "VARCHAR", "birthday": "DATE", "mobile": "VARCHAR",
             "email": "VARCHAR", "city": "VARCHAR", "address": "VARCHAR", "postcode": "VARCHAR"}
    with tempfile.TemporaryDirectory() as scratch, database.sessionmaker() as session:
        path = Path(scratch) / "profiles.csv"
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            compiled = query.compile(connection, compile_kwargs={"literal_binds": True})
            with path.open("wb") as out, connection.connection.driver_connection.cursor() as cursor, \
                    cursor.copy(f"COPY ({compiled}) TO STDOUT (FORMAT csv)") as copy:
                for chunk in copy:
                    out.write(chunk)
        else:
            import csv

            with path.open("w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out)
                for row in session.execute(query):
                    writer.writerow(["" if value is None else value for value in row])
        con.execute(f"CREATE TABLE profiles AS SELECT * FROM read_csv('{path}', header=false, "
                    f"columns={types!r}, nullstr='', quote='\"', escape='\"')")
    return int(con.execute("SELECT count(*) FROM profiles").fetchall()[0][0])


def _prepare_western(con: Any) -> None:
    """Names split into a first name and a surname (lower case, letters only), the whole name for term
    frequencies, the date of birth as text, UK postcodes with their space restored, the address tidied."""
    con.execute(r"""
        CREATE TABLE splink_input AS
        WITH cleaned AS (
            SELECT *, trim(regexp_replace(regexp_replace(lower(name), '[^a-z\- ]', '', 'g'), '\s+', ' ', 'g')) AS clean
            FROM profiles
        ),
        named AS (
            SELECT *, CASE WHEN strpos(clean, ' ') > 0 THEN split_part(clean, ' ', 1) END AS first_name,
                      nullif(CASE WHEN strpos(clean, ' ') > 0 THEN substr(clean, strpos(clean, ' ') + 1)
                                  ELSE clean END, '') AS surname
            FROM cleaned
        )
        SELECT id, first_name, surname,
               CASE WHEN first_name IS NOT NULL AND surname IS NOT NULL THEN first_name || ' ' || surname END
                   AS first_name_surname_concat,
               strftime(birthday, '%Y-%m-%d') AS dob,
               nullif(regexp_replace(upper(replace(trim(postcode), ' ', '')), '^(.+)(.{3})$', '\1 \2'), '')
                   AS postcode,
               nullif(lower(trim(city)), '') AS city,
               nullif(lower(regexp_replace(trim(address), '\s+', ' ', 'g')), '') AS address,
               nullif(regexp_replace(mobile, '[^0-9]', '', 'g'), '') AS mobile,
               nullif(lower(trim(email)), '') AS email
        FROM named
    """)


def _prepare_chinese(con: Any) -> None:
    """The pinyin of the family name and of the given name (张伟, 張偉, "Zhang Wei" and "Wei Zhang" all give
    zhang + wei, in one order or the other), the name as written, the date of birth as text, the rest tidied."""
    from kehu.cdp import normalise

    firsts = [c for (c,) in con.execute("SELECT DISTINCT substr(trim(name), 1, 1) FROM profiles "
                                        "WHERE name IS NOT NULL AND strpos(trim(name), ' ') = 0").fetchall() if c]
    con.execute("CREATE TABLE family_pinyin (c VARCHAR, py VARCHAR)")
    if firsts:
        con.executemany("INSERT INTO family_pinyin VALUES (?, ?)", [(c, normalise.pinyin(c) or "") for c in firsts])
    con.execute(r"""
        CREATE TABLE splink_input AS
        WITH named AS (
            SELECT p.*,
                   CASE WHEN strpos(trim(p.name), ' ') > 0 THEN lower(split_part(trim(p.name), ' ', 1))
                        ELSE f.py END AS family_py,
                   CASE WHEN strpos(trim(p.name), ' ') > 0
                        THEN lower(replace(substr(trim(p.name), strpos(trim(p.name), ' ') + 1), ' ', ''))
                        WHEN starts_with(p.name_pinyin, f.py) THEN substr(p.name_pinyin, length(f.py) + 1) END
                       AS given_py
            FROM profiles p LEFT JOIN family_pinyin f ON f.c = substr(trim(p.name), 1, 1)
        )
        SELECT id, nullif(trim(name), '') AS name, nullif(family_py, '') AS family_py, nullif(given_py, '') AS given_py,
               CASE WHEN nullif(family_py, '') IS NOT NULL AND nullif(given_py, '') IS NOT NULL
                    THEN family_py || ' ' || given_py END AS name_py_concat,
               strftime(birthday, '%Y-%m-%d') AS dob,
               nullif(trim(city), '') AS city,
               nullif(regexp_replace(address, '\s', '', 'g'), '') AS address,
               nullif(regexp_replace(mobile, '[^0-9]', '', 'g'), '') AS mobile,
               nullif(lower(trim(email)), '') AS email
        FROM named
    """)


def _name_only_pairs(con: Any, columns: tuple[str, ...]) -> int:
    group = ", ".join(columns)
    return int(con.execute(f"SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM (SELECT count(*) AS n FROM splink_input "
                           f"WHERE {' AND '.join(c + ' IS NOT NULL' for c in columns)} GROUP BY {group})"
                           ).fetchall()[0][0])


def _splink_setup(con: Any, data: str) -> dict[str, Any]:
    """Comparisons, blocking rules and training plan, as Splink's examples configure them for these columns."""
    import splink.comparison_library as cl
    from splink import block_on

    if data == "western":
        first, last, full = "first_name", "surname", "first_name_surname_concat"
        comparisons = [
            cl.ForenameSurnameComparison(first, last, forename_surname_concat_col_name=full),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.PostcodeComparison("postcode"),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("address", [2, 5]),
            cl.ExactMatch("mobile"),
            cl.EmailComparison("email"),
        ]
        # the historical-persons example's rules, with the postcode and town of these data
        blocking = [
            block_on("substr(first_name,1,3)", "substr(surname,1,4)"),
            block_on("surname", "dob"),
            block_on("first_name", "dob"),
            block_on("postcode", "first_name"),
            block_on("postcode", "surname"),
            block_on("dob", "city"),
            block_on("substr(postcode,1,3)", "dob"),
            block_on("substr(postcode,1,3)", "first_name"),
            block_on("substr(postcode,1,3)", "surname"),
            block_on("substr(first_name,1,2)", "substr(surname,1,2)", "substr(dob,1,4)"),
            "l.first_name = r.surname AND l.surname = r.first_name",
            block_on("mobile"),
            block_on("email"),
        ]
        deterministic = [block_on("first_name", "surname", "dob"),
                         block_on("substr(first_name,1,2)", "surname", "substr(postcode,1,2)"),
                         block_on("dob", "postcode")]
        em = [block_on("first_name", "surname"), block_on("dob")]
    else:
        first, last, full = "given_py", "family_py", "name_py_concat"
        comparisons = [
            cl.ForenameSurnameComparison(first, last, forename_surname_concat_col_name=full),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.ExactMatch("mobile"),
            # These e-mails are the name's pinyin and a number (zhangwei.88@qq.com): a similar local part says
            # no more than the name does, so only the whole address is compared.
            cl.ExactMatch("email"),
            cl.ExactMatch("address"),
        ]
        blocking = [
            block_on("family_py", "given_py", "dob"),
            block_on("family_py", "given_py", "city"),
            "l.family_py = r.given_py AND l.given_py = r.family_py",
            block_on("family_py", "dob"),
            block_on("given_py", "dob"),
            block_on("dob", "city"),
            block_on("mobile"),
            block_on("email"),
        ]
        if _name_only_pairs(con, ("family_py", "given_py")) <= NAME_ONLY_LIMIT:
            blocking.insert(0, block_on("family_py", "given_py"))
        deterministic = [block_on("family_py", "given_py", "dob"), block_on("mobile"), block_on("email")]
        em = [block_on("family_py", "given_py"), block_on("dob")]
    return {"comparisons": comparisons, "blocking": blocking, "deterministic": deterministic, "em": em}


def _rule_sql(rule: Any) -> str:
    from splink.internals.blocking_rule_creator_utils import to_blocking_rule_creator

    return to_blocking_rule_creator(rule).get_blocking_rule("duckdb").blocking_rule_sql


def _model(linker: Any) -> dict[str, Any]:
    """The trained model as Splink saved it: the prior and each comparison level's m, u and weight."""
    import math

    saved = linker.misc.save_model_to_json()
    out: dict[str, Any] = {"probability_two_random_records_match":
                           saved.get("probability_two_random_records_match"), "comparisons": {}}
    for comparison in saved["comparisons"]:
        levels = []
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            levels.append({"level": level.get("label_for_charts") or level["sql_condition"][:60],
                           "m": round(m, 5) if m is not None else None, "u": round(u, 7) if u is not None else None,
                           "weight": round(math.log2(m / u), 2) if m and u else None})
        out["comparisons"][comparison["output_column_name"]] = levels
    return out


def _splink(database: Any, org_id: int, data: str, truth: dict[int, str]) -> tuple[list[tuple[int, int, float]],
                                                                                 dict[str, Any]]:
    import duckdb
    from splink import DuckDBAPI, Linker, SettingsCreator
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    con = duckdb.connect()
    steps: dict[str, float] = {}
    mark = time.perf_counter()
    _read_profiles(database, org_id, con)
    steps["read"] = time.perf_counter() - mark
    mark = time.perf_counter()
    (_prepare_western if data == "western" else _prepare_chinese)(con)
    setup = _splink_setup(con, data)
    settings = SettingsCreator(link_type="dedupe_only", unique_id_column_name="id",
                               comparisons=setup["comparisons"],
                               blocking_rules_to_generate_predictions=setup["blocking"],
                               retain_intermediate_calculation_columns=False, retain_matching_columns=False)
    db_api = DuckDBAPI(connection=con)
    records = db_api.register("splink_input")
    linker = Linker(records, settings, log_level=None)
    steps["prepare"] = time.perf_counter() - mark
    mark = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(setup["deterministic"], recall=0.6)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=42)
    for rule in setup["em"]:
        linker.training.estimate_parameters_using_expectation_maximisation(rule,
                                                                           estimate_without_term_frequencies=True)
    steps["train"] = time.perf_counter() - mark
    mark = time.perf_counter()
    predictions = linker.inference.predict(threshold_match_probability=min(SWEEP))
    pairs = [(int(a), int(b), float(p)) for a, b, p in con.execute(
        f"SELECT id_l, id_r, match_probability FROM {predictions.physical_name}").fetchall()]
    steps["predict"] = time.perf_counter() - mark
    # Untimed: what the run compared (counted exactly up to 200,000 records, estimated from a 10 % sample of
    # each side beyond), and the share of true pairs its blocking rules reach.
    size = int(con.execute("SELECT count(*) FROM splink_input").fetchall()[0][0])
    counted = count_comparisons_from_blocking_rules(records, blocking_rules=setup["blocking"],
                                                    link_type="dedupe_only", unique_id_column_name="id",
                                                    record_sample_proportion=1.0 if size <= 200_000 else 0.1)
    rules = [_rule_sql(rule) for rule in setup["blocking"]]
    total = _true_pairs(con, truth)
    reached = con.execute(
        "SELECT count(*) FROM bench_true_pairs t JOIN splink_input l ON l.id = t.a JOIN splink_input r ON r.id = t.b "
        f"WHERE {' OR '.join(f'coalesce(({sql}), false)' for sql in rules)}").fetchall()[0][0]
    info = {"steps": {k: round(v, 2) for k, v in steps.items()},
            "candidate_pairs": int(counted[-1]["cumulative_comparison_count"]) if counted else 0,
            "candidate_pairs_estimated": bool(counted and counted[-1]["is_estimate"]),
            "blocking_rules": [{"rule": sql, "comparisons": int(c["marginal_comparison_count"])}
                               for sql, c in zip(rules, counted, strict=True)],
            "blocking_recall": round(reached / total, 4) if total else None,
            "model": _model(linker)}
    con.close()
    return pairs, info


# -- the run ---------------------------------------------------------------------------------------------------
def _generate(database: Any, org_id: int, data: str, customers: int) -> tuple[dict[str, Any], dict[int, str]]:
    from kehu.cdp.resolution_quality import read_truth

    truth_file = io.StringIO()
    if data == "western":
        from kehu.demo import western

        made = western.generate(database, org_id, customers=customers, seed=SEED, truth=truth_file)
        facts = {"style": data, **made.as_dict()}
    else:
        from kehu.demo.generate import generate

        done = generate(database, org_id, customers=customers, events_per_customer=3, seed=SEED, truth=truth_file)
        facts = {"style": data, "customers": done.customers, "profiles": done.profiles}
    truth_file.seek(0)
    return facts, dict(read_truth(truth_file))


def run(database_url: str | None = None, size: int | None = None, data: str = "chinese") -> dict[str, Any]:
    import duckdb
    from sqlalchemy import text

    import kehu.models  # noqa: F401
    from kehu.cdp import matching
    from kehu.core.db import Database, migrate
    from kehu.demo.seed import seed_demo

    if data not in ("chinese", "western"):
        raise ValueError(f"data must be chinese or western, not {data!r}")
    url = fresh_database(database_url, scratch=f"dedupe_{data}")
    customers = size or default_size(url, postgres=100_000, sqlite=20_000)
    database = Database(url)
    migrate(database)
    with database.unit_of_work() as session:
        seed_demo(session)
        org_id = session.execute(text("SELECT id FROM organizations WHERE slug = 'demo'")).scalar_one()
    facts, truth = _generate(database, org_id, data, customers)
    settle(database)

    con = duckdb.connect()
    with _measured() as kehu_load:
        with database.sessionmaker() as session:
            started = time.perf_counter()
            records = matching.load_records(session, org_id, con)
            read_s = time.perf_counter() - started
        ours = matching.match_records(con, records, threshold=min(SWEEP))
    kehu_s = kehu_load["wall_seconds"]
    kehu_recall = _kehu_blocking_recall(con, truth)
    con.close()

    def sweep(pairs: list[tuple[int, int, float]]) -> dict[str, Any]:
        return {str(t): _f1(matching.clusters((a, b) for a, b, p in pairs if p >= t), truth) for t in SWEEP}

    kehu_scores = sweep([(a, b, p) for a, b, p, *_ in ours.pairs])
    at = str(THRESHOLD)
    result: dict[str, Any] = {
        "target": "dedupe", "threshold": THRESHOLD,
        "data": {**facts, "records": records, "true_pairs": kehu_scores[at]["true_pairs"]},
        "kehu": {"seconds": kehu_s, "read_seconds": round(read_s, 2),
                 "steps": {k: round(v, 2) for k, v in ours.seconds.items()},
                 "candidate_pairs": ours.candidate_pairs, "blocking_recall": kehu_recall,
                 **kehu_scores[at], "by_threshold": kehu_scores, "load": kehu_load},
        "machine": {**machine(url), "load_average": [round(x, 2) for x in os.getloadavg()]},
    }
    try:
        import splink
    except ImportError:
        result.update(baseline=None, ratio=None, **{"pass": None, "note": "splink is not installed"})
        database.dispose()
        return result
    with contextlib.redirect_stdout(sys.stderr), _measured() as splink_load:  # stdout carries the JSON
        theirs, info = _splink(database, org_id, data, truth)
    splink_s = round(sum(info["steps"].values()), 2)
    splink_scores = sweep(theirs)
    result["baseline"] = {"name": f"splink {splink.__version__} (DuckDB)", "seconds": splink_s,
                          **{k: v for k, v in info.items() if k != "model"}, **splink_scores[at],
                          "by_threshold": splink_scores, "load": splink_load, "model": info["model"]}
    best: Callable[[dict[str, Any]], float] = lambda scores: max(s["f1"] for s in scores.values())  # noqa: E731
    result["ratio"] = {"f1": round(kehu_scores[at]["f1"] / max(splink_scores[at]["f1"], 1e-9), 3),
                       "best_f1": round(best(kehu_scores) / max(best(splink_scores), 1e-9), 3),
                       "speed": round(splink_s / max(kehu_s, 1e-9), 2)}
    result["pass"] = kehu_scores[at]["f1"] >= splink_scores[at]["f1"] and kehu_s <= splink_s
    database.dispose()
    return result
