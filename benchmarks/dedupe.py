"""Probabilistic dedupe (DESIGN.md §6): F1 at least Splink's on the same data, at least at Splink's speed.

The generator writes deliberate duplicates (a share of people as 2–4 records written down differently, sharing
no identity) and the ground truth. Both matchers start from the same columnar copy of the live profiles that
kehu reads out of the database (the read is timed once and added to both), use the same blocking rules, and
cluster their pairs at the same match probability; F1 is pairwise over the clusters against the truth.

Splink (DuckDB backend) is set up as its documentation teaches: Jaro–Winkler on the name key with term
frequencies, its date-of-birth comparison, exact mobile, e-mail and city, Jaro–Winkler on the address; the
prior from a deterministic rule, u by random sampling, m by EM over three blocking rules. Splink is a
benchmark-only dependency (`pip install splink`); without it the run reports kehu's figures alone."""

from __future__ import annotations

import contextlib
import io
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import default_size, fresh_database, machine

THRESHOLD = 0.9
SWEEP = (0.5, 0.7, 0.9, 0.95, 0.99)


def _f1(clusters: dict[int, int], truth: dict[int, str]) -> dict[str, Any]:
    """Pairwise precision, recall and F1 of a clustering (record → cluster) against the truth."""
    from kehu.cdp.resolution_quality import score_clusters

    figures = score_clusters([(clusters.get(record, record), person) for record, person in truth.items()]).as_dict()
    return {key: figures[key] or 0.0 for key in ("precision", "recall", "f1", "found_pairs", "true_pairs")}


def _splink(con: Any) -> tuple[list[tuple[int, int, float]], float]:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    from kehu.cdp.matching import BLOCKING_RULES

    started = time.perf_counter()
    settings = SettingsCreator(
        link_type="dedupe_only", unique_id_column_name="id",
        comparisons=[
            cl.JaroWinklerAtThresholds("name_key", [0.9]).configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("birthday", input_is_string=False),
            cl.ExactMatch("mobile"), cl.ExactMatch("email"), cl.ExactMatch("city"),
            cl.JaroWinklerAtThresholds("address", [0.92]),
        ],
        blocking_rules_to_generate_predictions=[block_on(*columns) for _, columns, _ in BLOCKING_RULES],
        retain_intermediate_calculation_columns=False, retain_matching_columns=False,
    )
    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register("records"), settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match([block_on("name_key", "birthday")], recall=0.5)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=42)
    for columns in (("name_key", "birthday"), ("name_key", "city"), ("birthday", "city")):
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*columns))
    predictions = linker.inference.predict(threshold_match_probability=min(SWEEP))
    pairs = [(int(a), int(b), float(p)) for a, b, p in con.execute(
        f"SELECT id_l, id_r, match_probability FROM {predictions.physical_name}").fetchall()]
    return pairs, time.perf_counter() - started


def run(database_url: str | None = None, size: int | None = None) -> dict[str, Any]:
    import duckdb
    from sqlalchemy import text

    import kehu.models  # noqa: F401
    from kehu.cdp import matching
    from kehu.cdp.resolution_quality import read_truth
    from kehu.core.db import Database, migrate
    from kehu.demo.generate import generate
    from kehu.demo.seed import seed_demo

    url = fresh_database(database_url, scratch="dedupe")
    customers = size or default_size(url, postgres=100_000, sqlite=20_000)
    database = Database(url)
    migrate(database)
    with database.unit_of_work() as session:
        seed_demo(session)
        org_id = session.execute(text("SELECT id FROM organizations WHERE slug = 'demo'")).scalar_one()
    truth_file = io.StringIO()
    made = generate(database, org_id, customers=customers, events_per_customer=3, seed=31, truth=truth_file)
    truth_file.seek(0)
    truth = dict(read_truth(truth_file))

    con = duckdb.connect()
    with database.sessionmaker() as session:
        started = time.perf_counter()
        records = matching.load_records(session, org_id, con)
        read_s = time.perf_counter() - started
    started = time.perf_counter()
    ours = matching.match_records(con, records, threshold=min(SWEEP))
    kehu_s = read_s + time.perf_counter() - started

    def sweep(pairs: list[tuple[int, int, float]]) -> dict[str, Any]:
        return {str(t): _f1(matching.clusters((a, b) for a, b, p in pairs if p >= t), truth) for t in SWEEP}

    kehu_scores = sweep([(a, b, p) for a, b, p, _ in ours.pairs])
    result: dict[str, Any] = {
        "target": "dedupe", "data": {"customers": made.customers, "records": records, "true_pairs":
                                     kehu_scores[str(THRESHOLD)]["true_pairs"],
                                     "candidate_pairs": ours.candidate_pairs},
        "threshold": THRESHOLD,
        "kehu": {"seconds": round(kehu_s, 2), "read_seconds": round(read_s, 2),
                 "steps": {k: round(v, 2) for k, v in ours.seconds.items()}, **kehu_scores[str(THRESHOLD)],
                 "by_threshold": kehu_scores},
        "machine": machine(url),
    }
    try:
        import splink
    except ImportError:
        result.update(baseline=None, ratio=None, **{"pass": None, "note": "splink is not installed"})
        database.dispose()
        return result
    # Splink's scratch tables are named __splink__…: it shares the connection and the records table.
    with contextlib.redirect_stdout(sys.stderr):  # Splink prints its training notes; stdout carries the JSON
        theirs, splink_s = _splink(con)
    splink_s += read_s
    splink_scores = sweep(theirs)
    result["baseline"] = {"name": f"splink {splink.__version__} (DuckDB)", "seconds": round(splink_s, 2),
                          **splink_scores[str(THRESHOLD)], "by_threshold": splink_scores}
    result["ratio"] = {"f1": round(kehu_scores[str(THRESHOLD)]["f1"] / max(splink_scores[str(THRESHOLD)]["f1"], 1e-9),
                                   3),
                       "speed": round(splink_s / kehu_s, 2)}
    result["pass"] = kehu_scores[str(THRESHOLD)]["f1"] >= splink_scores[str(THRESHOLD)]["f1"] and kehu_s <= splink_s
    database.dispose()
    return result
