"""The one writer of new profiles and identities (kehu.cdp.writer): what it fills in, the order of its ids, and
that nothing else in kehu creates those rows."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

import kehu
from kehu.cdp import writer
from kehu.cdp.models import Identity, Profile
from kehu.core.db import EveryRow

BORN = datetime(2026, 5, 1, 8, tzinfo=UTC)


def test_a_profile_left_unsaid_holds_the_models_defaults(session, tree):  # type: ignore[no-untyped-def]
    ids = writer.write_profiles(session, {"org_id": EveryRow(tree.org.id), "unit_id": [tree.dealer_a.id,
                                                                                        tree.dealer_b.id],
                                          "name": ["张伟", None]}, now=BORN)
    session.commit()
    first, second = (session.get_one(Profile, profile_id) for profile_id in ids)
    assert (first.name, first.unit_id, second.name, second.unit_id) == ("张伟", tree.dealer_a.id, None,
                                                                        tree.dealer_b.id)
    for profile in (first, second):
        assert (profile.lifecycle_stage, profile.attributes, profile.trait_times) == ("visitor", {}, {})
        assert profile.created_at == profile.updated_at == BORN


def test_a_profile_needs_its_organisation_and_real_columns(session):  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="org_id"):
        writer.write_profiles(session, {"name": ["张伟"]})
    with pytest.raises(ValueError, match="nickname"):
        writer.write_profiles(session, {"org_id": [1], "nickname": ["伟"]})


def test_identities_come_back_in_the_order_given_whatever_order_they_are_stored_in(session, tree):  # type: ignore[no-untyped-def]
    [a, b] = writer.write_profiles(session, {"org_id": EveryRow(tree.org.id), "unit_id": EveryRow(tree.hq.id),
                                             "name": ["甲", "乙"]})
    given = [(b, "mobile", "+8613900000009"), (a, "email", "z@example.com"), (a, "mobile", "+8613900000001"),
             (b, "email", "a@example.com")]
    ids = writer.write_identities(session, tree.org.id, profile_ids=[p for p, _, _ in given],
                                  kinds=[k for _, k, _ in given], values=[v for _, _, v in given],
                                  source_ids=EveryRow(None), first_seen=EveryRow(BORN))
    session.commit()
    stored = {row.id: (row.profile_id, row.kind, row.value) for row in session.scalars(select(Identity))}
    assert [stored[identity_id] for identity_id in ids] == given
    # into the unique index in its own order: kind, then value
    assert sorted(ids) == [ids[3], ids[1], ids[2], ids[0]]


def test_nothing_but_the_writer_creates_profiles_or_identities() -> None:
    """A second writer would drift from the first (a default, a stamp, the index order): one writes them all."""
    creating = re.compile(r"\b(Profile|Identity)\(|\b(Profile|Identity)\.__table__|insert\((Profile|Identity)\)")
    package = Path(kehu.__file__).parent
    offenders = [f"{path.relative_to(package)}:{number}" for path in package.rglob("*.py")
                 if path.name not in ("writer.py", "models.py")
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if creating.search(line)]
    assert offenders == []
