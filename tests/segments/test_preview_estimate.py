"""The builder's preview counts a condition that many customers of a large database meet in a random sample of
them (PostgreSQL's TABLESAMPLE), says so, and gives the margin; the exact count is one request away; a rare
condition, a small scope and SQLite are counted exactly. The estimate stays within the viewer's scope."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, text

from kehu.cdp.models import Profile
from kehu.core.db import copy_columns, utcnow
from kehu.segments import preview as previews

LEAD = {"type": "field", "field": "lifecycle_stage", "op": "eq", "value": "lead"}
RARE = {"type": "field", "field": "city", "op": "eq", "value": "拉萨"}
CUSTOMERS = 12_000


def _fill(session, tree, monkeypatch, lead=lambda n: n % 5 in (1, 3)):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(previews, "ESTIMATE_FROM_PROFILES", 5_000)
    monkeypatch.setattr(previews, "ESTIMATE_SAMPLE_PROFILES", 9_000)
    monkeypatch.setattr(previews, "ESTIMATE_MIN_MATCHES", 100)
    monkeypatch.setattr(previews, "ESTIMATE_SCOPE_UNITS", 2)
    now = utcnow()
    units = [tree.dealer_a.id, tree.dealer_b.id, tree.dealer_c.id]
    copy_columns(session, Profile.__table__, {
        "id": list(range(1_000_001, 1_000_001 + CUSTOMERS)), "org_id": [tree.org.id] * CUSTOMERS,
        "unit_id": [units[n % 3] for n in range(CUSTOMERS)], "owner_id": [None] * CUSTOMERS,
        "name": [f"客户{n}" for n in range(CUSTOMERS)], "name_pinyin": [f"kehu{n}" for n in range(CUSTOMERS)],
        "city": ["拉萨" if n % 600 == 7 else "上海" for n in range(CUSTOMERS)],
        "lifecycle_stage": ["lead" if lead(n) else "prospect" for n in range(CUSTOMERS)],
        "attributes": [{}] * CUSTOMERS, "trait_times": [{}] * CUSTOMERS, "created_at": [now] * CUSTOMERS,
        "updated_at": [now] * CUSTOMERS, "last_seen_at": [now] * CUSTOMERS, "source": ["import"] * CUSTOMERS})
    session.commit()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE profiles"))  # reltuples: how large the table is
        session.commit()


@pytest.fixture
def crowd(session, tree, monkeypatch):  # type: ignore[no-untyped-def]
    """12,000 customers over three dealers (two of them in East), two in five of them leads, twenty in Lhasa;
    the estimate's thresholds scaled down to that size (three pages in four sampled)."""
    _fill(session, tree, monkeypatch)


def _preview(client, headers, condition, **extra: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/segments/preview", headers=headers,
                           json={"condition": condition, "sample": 10, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def _truth(session, *where: Any) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).select_from(Profile).where(*where))


def test_a_broad_condition_is_estimated_within_its_margin_and_exact_on_request(client, session, tree, login,
                                                                                 crowd):
    admin = login("admin@example.com")
    leads = _truth(session, Profile.lifecycle_stage == "lead")
    exact = _preview(client, admin, LEAD, exact=True)
    assert (exact["count"], exact["estimated"], exact["margin"]) == (leads, False, None)
    estimate = _preview(client, admin, LEAD)
    if session.get_bind().dialect.name != "postgresql":
        assert estimate == {**estimate, "count": leads, "estimated": False, "margin": None}
        return
    assert estimate["estimated"] is True and 0 < estimate["margin"] < leads / 5
    assert abs(estimate["count"] - leads) <= estimate["margin"], (estimate, leads)
    assert estimate["count"] != leads  # a sample's count, not the exact one with a flag on it
    shown = session.scalars(select(Profile).where(Profile.id.in_([p["id"] for p in estimate["sample"]]))).all()
    assert len(shown) == 10 and all(p.lifecycle_stage == "lead" for p in shown)
    again = _preview(client, admin, LEAD)  # the same pages each time: asking again gives the same estimate
    assert (again["count"], again["margin"]) == (estimate["count"], estimate["margin"])


def test_an_estimate_counts_only_the_viewers_scope(client, session, tree, login, crowd):
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite counts exactly")
    east = _truth(session, Profile.lifecycle_stage == "lead", Profile.unit_id.in_([tree.dealer_a.id,
                                                                                    tree.dealer_b.id]))
    estimate = _preview(client, login("east@example.com"), LEAD)
    assert estimate["estimated"] is True
    assert abs(estimate["count"] - east) <= estimate["margin"] < east / 2  # not the group's 4,800
    shown = session.scalars(select(Profile.unit_id).where(Profile.id.in_([p["id"] for p in estimate["sample"]])))
    assert set(shown) <= {tree.dealer_a.id, tree.dealer_b.id}


def test_a_rare_condition_and_a_small_scope_are_counted_exactly(client, session, tree, login, crowd):
    admin = login("admin@example.com")
    rare = _preview(client, admin, RARE)
    assert (rare["count"], rare["estimated"]) == (_truth(session, Profile.city == "拉萨"), False)
    assert len(rare["sample"]) == 10
    manager = _preview(client, login("a.manager@example.com"), LEAD)  # one dealer: its index counts it
    assert (manager["count"], manager["estimated"]) == (
        _truth(session, Profile.lifecycle_stage == "lead", Profile.unit_id == tree.dealer_a.id), False)


def _on_postgresql(session) -> None:  # type: ignore[no-untyped-def]
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite counts exactly")


def test_matches_that_sit_together_widen_the_margin_or_are_counted(client, session, tree, login, monkeypatch):
    """Leads imported in runs of 300 fill whole pages: the sample of pages sees them in lumps. The margin says so
    (it is the pages' spread, not the customers'), and holds the true count in nineteen of twenty samples; where
    it would be too loose the preview counts exactly."""
    _on_postgresql(session)
    _fill(session, tree, monkeypatch, lead=lambda n: (n // 300) % 5 in (1, 3))
    admin = login("admin@example.com")
    leads = _truth(session, Profile.lifecycle_stage == "lead")
    held, estimated = 0, 0
    for seed in range(40):
        monkeypatch.setattr(previews, "ESTIMATE_SEED", seed)
        answer = _preview(client, admin, LEAD)
        estimated += answer["estimated"]
        held += abs(answer["count"] - leads) <= (answer["margin"] or 0)
    assert held >= 36, (held, estimated)


def test_an_estimate_follows_updates_and_deletes_of_every_customer(client, session, tree, login, monkeypatch):
    """An UPDATE of every customer doubles the table's pages until vacuum; deleting half leaves its pages as they
    were: the estimate scales by the live customers, not by the pages."""
    _on_postgresql(session)
    _fill(session, tree, monkeypatch)
    admin = login("admin@example.com")
    session.execute(text("UPDATE profiles SET updated_at = now()"))
    session.commit()
    leads = _truth(session, Profile.lifecycle_stage == "lead")
    answer = _preview(client, admin, LEAD)
    assert answer["estimated"] and abs(answer["count"] - leads) <= answer["margin"], (answer, leads)
    session.execute(text("DELETE FROM profiles WHERE id % 2 = 0"))
    session.commit()
    everyone = _truth(session, Profile.city.is_not(None))
    answer = _preview(client, admin, {"type": "field", "field": "city", "op": "is_set"})
    assert answer["margin"] is None or answer["margin"] > 0
    assert abs(answer["count"] - everyone) <= (answer["margin"] or 0), (answer, everyone)


CONDITIONS = [
    {"type": "field", "field": "city", "op": "eq", "value": "上海"},
    {"type": "field", "field": "attributes.budget", "op": "gte", "value": 200000},
    {"type": "field", "field": "attributes.interests", "op": "contains", "value": "ev"},
    {"type": "field", "field": "last_seen_at", "op": "within_last_days", "value": 7},
    {"type": "event", "event": "test_drive_booked"},
    {"type": "event", "event": "test_drive_booked", "count": {"op": "lt", "value": 2}},
    {"type": "event", "event": "test_drive_booked", "op": "did_not"},
    {"type": "orders", "measure": "count", "op": "eq", "value": 0},
    {"type": "orders", "measure": "total", "op": "gte", "value": 100000},
    {"type": "identity", "kind": "wechat_openid", "op": "lacks"},
    {"type": "not", "condition": {"type": "any", "conditions": [
        {"type": "field", "field": "city", "op": "eq", "value": "上海"},
        {"type": "orders", "measure": "count", "op": "gte", "value": 1}]}},
]


def test_every_kind_of_condition_counts_the_same_customers_in_a_whole_sample(client, session, tree, login, people,
                                                                              monkeypatch):
    """The sample replaces the customers the condition is about, in every kind of condition and its subqueries
    (events, orders, identities, groups): a sample of every page finds exactly who the exact count finds, for
    HQ and for a region."""
    _on_postgresql(session)
    session.execute(text("ANALYZE profiles"))
    session.commit()
    for name, value in (("ESTIMATE_FROM_PROFILES", 0), ("ESTIMATE_SAMPLE_PROFILES", 10**9),
                        ("ESTIMATE_MIN_MATCHES", 1), ("ESTIMATE_MAX_MARGIN", 10.0), ("ESTIMATE_SCOPE_UNITS", 2)):
        monkeypatch.setattr(previews, name, value)
    for email in ("admin@example.com", "east@example.com"):
        headers = login(email)
        for condition in CONDITIONS:
            exact = _preview(client, headers, condition, exact=True)
            sampled = _preview(client, headers, condition)
            assert sampled["estimated"] is (exact["count"] > 0), condition
            assert sampled["count"] == exact["count"], condition
            assert [p["id"] for p in sampled["sample"]] == [p["id"] for p in exact["sample"]], condition
