"""`kehu bench dedupe` end to end at a tiny size on PostgreSQL, on both kinds of data: kehu's matcher and a
Splink set up on its own terms report F1, precision and recall over thresholds, blocking recall, seconds,
candidate pairs, the machine's load and Splink's trained parameters. Skipped without PostgreSQL or Splink."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import make_url

BASE = os.environ.get("KEHU_TEST_DATABASE_URL", "")
pytestmark = [
    pytest.mark.skipif(not BASE or make_url(BASE).get_backend_name() != "postgresql",
                       reason="the benchmark runs on PostgreSQL (KEHU_TEST_DATABASE_URL)"),
    pytest.mark.skipif(importlib.util.find_spec("splink") is None, reason="splink is not installed (the bench extra)"),
]


def _bench():  # type: ignore[no-untyped-def]
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "dedupe.py"
    spec = importlib.util.spec_from_file_location("kehu_bench_dedupe_test", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.parametrize("data", ["western", "chinese"])
def test_the_dedupe_bench_reports_both_matchers(data: str):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    url = make_url(BASE).set(database=f"{make_url(BASE).database}_dedupe_bench_{worker}").render_as_string(
        hide_password=False)
    result = _bench().run(database_url=url, size=1500, data=data)
    assert result["data"]["style"] == data and result["data"]["true_pairs"] > 50
    for side in (result["kehu"], result["baseline"]):
        assert {"precision", "recall", "f1", "seconds", "candidate_pairs", "blocking_recall", "by_threshold",
                "load"} <= set(side), side.keys()
        assert set(side["by_threshold"]) == {str(t) for t in (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999)}
        assert side["candidate_pairs"] > 0 and side["seconds"] > 0
        assert {"load_before", "load_during", "cpu_seconds"} <= set(side["load"])
    assert 0.5 < result["baseline"]["blocking_recall"] <= 1
    assert result["kehu"]["blocking_recall"] is None or 0 < result["kehu"]["blocking_recall"] <= 1
    model = result["baseline"]["model"]
    assert model["probability_two_random_records_match"] > 0
    assert any("dob" in name for name in model["comparisons"])
    assert result["baseline"]["f1"] > 0.3, result["baseline"]  # a baseline that works
    if data == "western":
        assert "keyboard_typo" in result["data"]["corruption_rates"]
    assert "load_average" in result["machine"] and result["ratio"]["f1"] >= 0
