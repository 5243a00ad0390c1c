"""How well One ID found the people behind the records: pairwise precision, recall and F1 against a ground
truth (``profile_id,person`` lines, as `kehu generate --truth` writes them).

Two records are a pair when they are one person (the truth) or one profile now (One ID: a merged record
counts as the profile it was merged into). Precision is the share of One ID's pairs that are true, recall
the share of true pairs it found. Counted from group sizes, never by listing pairs: a million records of
which 8 % are duplicates are a few hundred thousand pairs, and a wrong merge of two big clusters billions."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.cdp.models import Profile


@dataclass(frozen=True)
class ResolutionScore:
    records: int  # profiles the truth names (found in the organisation)
    people: int
    profiles: int  # what One ID made of them
    true_pairs: int
    found_pairs: int
    correct_pairs: int
    missing_records: int = 0  # named in the truth, not in the organisation

    @property
    def precision(self) -> float | None:
        return self.correct_pairs / self.found_pairs if self.found_pairs else None

    @property
    def recall(self) -> float | None:
        return self.correct_pairs / self.true_pairs if self.true_pairs else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return 0.0 if self.true_pairs else None
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, object]:
        rounded = {name: None if value is None else round(value, 4)
                   for name, value in (("precision", self.precision), ("recall", self.recall), ("f1", self.f1))}
        return {"records": self.records, "people": self.people, "profiles": self.profiles,
                "true_pairs": self.true_pairs, "found_pairs": self.found_pairs, "correct_pairs": self.correct_pairs,
                "missing_records": self.missing_records, **rounded}


def read_truth(file: TextIO) -> list[tuple[int, str]]:
    """``profile_id,person`` lines (a header line is skipped)."""
    rows = csv.reader(file)
    return [(int(profile_id), person) for profile_id, person in rows if profile_id.strip().isdigit()]


def _pairs(counts: Iterable[int]) -> int:
    return sum(n * (n - 1) // 2 for n in counts)


def score_resolution(session: Session, org_id: int, truth: list[tuple[int, str]]) -> ResolutionScore:
    # Only tombstones point anywhere, so reading the organisation's merges is reading a few rows.
    merged_into = dict(session.execute(select(Profile.id, Profile.merged_into_id).where(
        Profile.org_id == org_id, Profile.merged_into_id.is_not(None))).all())
    named = {profile_id for profile_id, _ in truth}
    present = set()
    for start in range(0, len(truth), 50_000):
        chunk = [profile_id for profile_id, _ in truth[start:start + 50_000]]
        present.update(session.scalars(select(Profile.id).where(Profile.org_id == org_id, Profile.id.in_(chunk))))

    def live(profile_id: int) -> int:
        seen = 0
        while profile_id in merged_into and seen < 1000:  # a chain of merges ends at the live profile
            profile_id, seen = merged_into[profile_id], seen + 1
        return profile_id

    kept = [(live(profile_id), person) for profile_id, person in truth if profile_id in present]
    return score_clusters(kept, missing_records=len(named - present))


def score_clusters(kept: list[tuple[int, str]], *, missing_records: int = 0) -> ResolutionScore:
    """The score of a clustering given as (cluster, true person) per record: One ID's profiles, or the
    clusters of a matcher's pairs (the dedupe benchmark)."""
    by_cluster = Counter(cluster for cluster, _ in kept)
    by_person = Counter(person for _, person in kept)
    by_both = Counter(kept)
    return ResolutionScore(records=len(kept), people=len(by_person), profiles=len(by_cluster),
                           true_pairs=_pairs(by_person.values()), found_pairs=_pairs(by_cluster.values()),
                           correct_pairs=_pairs(by_both.values()), missing_records=missing_records)
