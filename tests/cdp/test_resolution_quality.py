"""Scoring One ID against a ground truth: pairs of records that are one person vs. one profile."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from kehu.cdp.identity import merge_profiles
from kehu.cdp.models import Profile
from kehu.cdp.resolution_quality import read_truth, score_resolution


@pytest.fixture
def records(session, tree):  # type: ignore[no-untyped-def]
    """Person A met three times, person B once."""
    made = [Profile(org_id=tree.org.id, unit_id=tree.hq.id, name=name) for name in ("张伟", "張偉", "张玮", "李娜")]
    session.add_all(made)
    session.commit()
    return made


def test_nothing_merged_finds_no_pairs(session, tree, records):
    a1, a2, a3, b1 = records
    truth = read_truth(io.StringIO(f"profile_id,person\n{a1.id},A\n{a2.id},A\n{a3.id},A\n{b1.id},B\n999999,C\n"))
    score = score_resolution(session, tree.org.id, truth)
    assert (score.records, score.people, score.profiles, score.missing_records) == (4, 2, 4, 1)
    assert (score.true_pairs, score.found_pairs, score.correct_pairs) == (3, 0, 0)
    assert (score.precision, score.recall, score.f1) == (None, 0.0, 0.0)


def test_right_and_wrong_merges_move_recall_and_precision(session, tree, records):
    a1, a2, a3, b1 = records
    truth = [(a1.id, "A"), (a2.id, "A"), (a3.id, "A"), (b1.id, "B")]
    merge_profiles(session, a1, a2, reason="manual")
    session.commit()
    right = score_resolution(session, tree.org.id, truth)
    assert (right.found_pairs, right.correct_pairs, right.precision) == (1, 1, 1.0)
    assert right.recall == pytest.approx(1 / 3) and right.f1 == pytest.approx(0.5)
    merge_profiles(session, a3, b1, reason="manual")  # a wrong merge: two people as one profile
    merge_profiles(session, a1, a3, reason="manual")  # and that profile into the first: a chain of merges
    session.commit()
    wrong = score_resolution(session, tree.org.id, truth)
    assert session.scalar(select(Profile.merged_into_id).where(Profile.id == b1.id)) == a3.id
    assert (wrong.profiles, wrong.found_pairs, wrong.correct_pairs) == (1, 6, 3)
    assert (wrong.precision, wrong.recall) == (0.5, 1.0) and wrong.as_dict()["f1"] == pytest.approx(0.6667)
