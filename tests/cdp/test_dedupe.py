"""Probabilistic dedupe: a run proposes the records that are probably one person although they share no
identity; people merge or dismiss each pair within their scope; decisions stick; auto-merge above a threshold;
a run that dies after queueing resumes at the merging."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from kehu.cdp import dedupe, schemas, service
from kehu.cdp.models import DedupeSettings, DuplicateCandidate, Identity, Merge, Profile
from kehu.core import jobs
from kehu.core import settings as kehu_settings
from kehu.core.db import utcnow
from kehu.demo.customers import GIVEN_FEMALE, GIVEN_MALE, SURNAMES
from tests.cdp.test_imports import run_jobs

CITIES = {"dealer_a": "上海", "dealer_b": "杭州", "dealer_c": "北京"}


def _people(session, tree) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Two hundred ordinary customers, and among them three people written down twice (and one namesake)."""
    rng = random.Random(5)
    units = {"dealer_a": tree.dealer_a.id, "dealer_b": tree.dealer_b.id, "dealer_c": tree.dealer_c.id}

    def add(name: str, born: date | None, dealer: str, mobile: str | None = None) -> int:
        return service.create_profile(session, tree.system, data=schemas.ProfileCreate(
            name=name, birthday=born, city=CITIES[dealer], unit_id=units[dealer], mobile=mobile)).id

    for n in range(200):
        given = rng.choice(GIVEN_MALE + GIVEN_FEMALE)
        add(rng.choice(SURNAMES) + given, date(1960, 1, 1) + timedelta(days=rng.randrange(15_000)),
            rng.choice(list(units)), mobile=f"139{n:08d}")
    ids = {
        "zhang": add("张伟", date(1985, 3, 12), "dealer_a", "13812340001"),
        "zhang_pinyin": add("Wei Zhang", date(1985, 3, 12), "dealer_a", "18600000002"),  # pinyin, given name first
        "chen": add("陈静", date(1990, 7, 1), "dealer_b", "13812340003"),
        "chen_traditional": add("陳靜", date(1990, 7, 1), "dealer_a"),  # traditional characters, another dealer
        "liu": add("刘洋", date(1978, 5, 20), "dealer_c", "13812340005"),
        "liu_typo": add("刘阳", date(1978, 5, 20), "dealer_c"),  # a homophone typo
        "zhang_namesake": add("张伟", date(1979, 11, 30), "dealer_c", "13812340007"),  # a different 张伟
    }
    session.commit()
    return ids


def _pairs(client, headers, **params) -> set[frozenset[int]]:  # type: ignore[no-untyped-def]
    response = client.get("/api/v1/duplicates", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return {frozenset(c["id"] for c in item["customers"]) for item in response.json()["items"]}


def test_a_run_proposes_duplicates_and_people_decide_within_their_scope(  # type: ignore[no-untyped-def]
        client, tree, login, session, clean_database, settings):
    ids = _people(session, tree)
    admin, dealer_a, east = login("admin@example.com"), login("a.manager@example.com"), login("east@example.com")
    assert client.get("/api/v1/dedupe", headers=admin).json()["status"] == "idle"
    assert client.post("/api/v1/dedupe/run", headers=login("a.sales@example.com")).status_code == 403
    started = client.post("/api/v1/dedupe/run", headers=admin)
    assert started.status_code == 202 and started.json()["status"] == "queued"
    assert client.post("/api/v1/dedupe/run", headers=admin).json()["job_id"] == started.json()["job_id"]
    run_jobs(clean_database, settings)

    state = client.get("/api/v1/dedupe", headers=admin).json()
    assert state["status"] == "done" and state["figures"]["records"] == 207
    assert state["model"]["levels"]["birthday"]["5"]["weight"] > 5  # the same birthday says a lot
    zhang, chen, liu = (frozenset((ids[a], ids[b])) for a, b in (
        ("zhang", "zhang_pinyin"), ("chen", "chen_traditional"), ("liu", "liu_typo")))
    found = _pairs(client, admin)
    assert {zhang, chen, liu} <= found
    assert not any(ids["zhang_namesake"] in pair for pair in found)  # same name, another person
    # a dealer sees the pairs whose two customers are both its own; the region sees its dealers' pairs
    assert _pairs(client, dealer_a) == {zhang}
    assert chen in _pairs(client, east) and liu not in _pairs(client, east)
    assert _pairs(client, login("b.sales@example.com")) == set()
    assert _pairs(client, admin, unit_id=tree.dealer_c.id) == {liu}

    item = next(i for i in client.get("/api/v1/duplicates", headers=dealer_a).json()["items"])
    assert item["probability"] >= 0.8 and [c["id"] for c in item["customers"]] == sorted(zhang)
    assert {e["comparison"] for e in item["evidence"]} >= {"name", "birthday", "city"}
    assert client.get(f"/api/v1/customers/{ids['zhang_pinyin']}/duplicates", headers=dealer_a).json()[0]["id"] \
        == item["id"]
    # the other organisation cannot see or touch it
    other = login("boss@other.example.com")
    assert client.get(f"/api/v1/duplicates/{item['id']}", headers=other).status_code == 404
    assert client.post(f"/api/v1/duplicates/{item['id']}/merge", headers=other).status_code == 404

    # the dealer merges its pair: the older record stays; deciding twice is a conflict
    merged = client.post(f"/api/v1/duplicates/{item['id']}/merge", headers=dealer_a)
    assert merged.status_code == 201, merged.text
    assert (merged.json()["winner_id"], merged.json()["loser_id"]) == (ids["zhang"], ids["zhang_pinyin"])
    assert merged.json()["reason"] == "dedupe"
    assert client.post(f"/api/v1/duplicates/{item['id']}/merge", headers=dealer_a).status_code == 409
    # the region dismisses the cross-dealer pair; a dealer could not decide it (it sees only one side)
    chen_id = next(i["id"] for i in client.get("/api/v1/duplicates", headers=east).json()["items"]
                   if frozenset(c["id"] for c in i["customers"]) == chen)
    assert client.post(f"/api/v1/duplicates/{chen_id}/dismiss", headers=dealer_a).status_code == 404
    dismissed = client.post(f"/api/v1/duplicates/{chen_id}/dismiss", headers=east)
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"

    # the merge is undone: the decision is taken back, so the pair is to be reviewed again (issue 20: it
    # vanished from every tab), once, however often the search runs; the dismissed pair stays dismissed
    assert client.post(f"/api/v1/customers/merges/{merged.json()['id']}/undo", headers=dealer_a).status_code == 200
    assert _pairs(client, dealer_a) == {zhang} and _pairs(client, dealer_a, status="merged") == set()
    client.post("/api/v1/dedupe/run", headers=admin)
    run_jobs(clean_database, settings)
    again = client.get("/api/v1/duplicates", headers=admin).json()["items"]
    assert [frozenset(c["id"] for c in i["customers"]) for i in again].count(zhang) == 1
    assert liu in _pairs(client, admin) and chen not in _pairs(client, admin)
    assert _pairs(client, admin, status="dismissed") == {chen}


def test_thresholds_are_checked_and_auto_merge_resumes_after_a_crash(  # type: ignore[no-untyped-def]
        client, tree, login, session, clean_database, settings):
    ids = _people(session, tree)
    admin = login("admin@example.com")
    bad = client.put("/api/v1/dedupe", headers=admin, json={"review_threshold": 0.9, "auto_merge_threshold": 0.85})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "auto_merge_threshold"
    assert client.put("/api/v1/dedupe", headers=admin, json={"review_threshold": 1.5}).status_code == 422
    assert client.put("/api/v1/dedupe", headers=login("a.manager@example.com"),
                      json={"auto_merge_threshold": 0.9}).status_code == 403
    # a first run queues the pairs; then a run that had queued them and died is taken up again
    client.post("/api/v1/dedupe/run", headers=admin)
    run_jobs(clean_database, settings)
    open_pairs = _pairs(client, admin)
    assert client.put("/api/v1/dedupe", headers=admin, json={"auto_merge_threshold": 0.8}).status_code == 200
    with clean_database.unit_of_work() as s:
        # both 刘洋 records signed in to the app: one customer with two app accounts breaks One ID's limit of one
        s.add_all([Identity(org_id=tree.org.id, profile_id=ids[key], kind="user_id", value=f"app-{key}")
                   for key in ("liu", "liu_typo")])
        job = jobs.enqueue(s, kind=dedupe.DEDUPE_JOB, org_id=tree.org.id, payload={"org_id": tree.org.id})
        job.checkpoint = {"stage": "merging"}
        s.execute(DedupeSettings.__table__.update().values(status="running", job_id=job.id,
                                                          figures={"records": 1, "merged": 0}))
    run_jobs(clean_database, settings)
    session.expire_all()
    state = session.scalar(select(DedupeSettings).where(DedupeSettings.org_id == tree.org.id))
    assert state.status == "done"
    assert state.figures["records"] == 1  # resumed at the merging: the scoring was not repeated
    assert state.figures["merged"] == len(open_pairs) - 1 and state.figures["held_back"] == 1
    assert state.figures["open"] == 1
    merges = list(session.scalars(select(Merge).where(Merge.reason == "dedupe")))
    assert len(merges) == len(open_pairs) - 1 and all(m.detail.startswith("automatic") for m in merges)
    assert session.get(Profile, ids["zhang_pinyin"]).merged_into_id == ids["zhang"]
    assert session.get(Profile, ids["zhang_namesake"]).merged_into_id is None
    # the pair beyond the limits waits for a person, who may still merge it
    assert session.get(Profile, ids["liu_typo"]).merged_into_id is None
    held = [c for c in session.scalars(select(DuplicateCandidate)) if c.status == "open"]
    assert [(c.profile_a_id, c.profile_b_id) for c in held] == [(ids["liu"], ids["liu_typo"])]
    assert all(c.merge_id for c in session.scalars(select(DuplicateCandidate)) if c.status == "merged")
    assert client.post(f"/api/v1/duplicates/{held[0].id}/merge", headers=admin).status_code == 201


def test_an_organisation_that_looked_before_is_looked_at_again_daily(  # type: ignore[no-untyped-def]
        client, tree, login, session, clean_database, settings):
    _people(session, tree)
    admin = login("admin@example.com")
    assert not dedupe.enqueue_due_runs(clean_database)  # never looked: nothing is run behind its back
    client.post("/api/v1/dedupe/run", headers=admin)
    run_jobs(clean_database, settings)
    assert not dedupe.enqueue_due_runs(clean_database)  # just looked
    with clean_database.unit_of_work() as s:
        s.execute(DedupeSettings.__table__.update().values(last_run_at=utcnow() - timedelta(hours=25)))
    assert dedupe.enqueue_due_runs(clean_database)
    assert not dedupe.enqueue_due_runs(clean_database)  # queued once, whoever asks again
    session.expire_all()
    state = session.scalar(select(DedupeSettings))
    assert state.status == "queued"
    assert session.scalar(select(func.count()).select_from(jobs.Job).where(
        jobs.Job.kind == dedupe.DEDUPE_JOB, jobs.Job.status == jobs.QUEUED)) == 1
    run_jobs(clean_database, settings)
    session.expire_all()
    assert session.scalar(select(DedupeSettings)).status == "done"


@pytest.fixture
def ceiling():  # type: ignore[no-untyped-def]
    """Set KEHU_DEDUPE_MAX_PAIRS_PER_RECORD for the test (settings are read once per process, then kept)."""
    def set_ceiling(monkeypatch, value: str) -> None:  # type: ignore[no-untyped-def]
        monkeypatch.setenv("KEHU_DEDUPE_MAX_PAIRS_PER_RECORD", value)
        kehu_settings.get_settings.cache_clear()

    yield set_ceiling
    kehu_settings.get_settings.cache_clear()


def test_a_run_that_would_compare_too_many_pairs_says_so_instead_of_starting(  # type: ignore[no-untyped-def]
        client, tree, login, session, clean_database, settings, monkeypatch, ceiling):
    for n in range(60):  # sixty records no blocking rule can tell apart: one name, one birthday, one city
        service.create_profile(session, tree.system, data=schemas.ProfileCreate(
            name="张伟", birthday=date(1985, 3, 12), city="上海", unit_id=tree.dealer_a.id, mobile=f"139{n:08d}"))
    session.commit()
    admin = login("admin@example.com")
    ceiling(monkeypatch, "1")
    refused = client.post("/api/v1/dedupe/run", headers=admin)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("too-many-comparisons") and refused.json()["pairs"] > 1_000
    assert client.get("/api/v1/dedupe", headers=admin).json()["status"] == "idle"  # nothing was queued
    ceiling(monkeypatch, "500")  # every rule sums its pairs: 1,770 each
    started = client.post("/api/v1/dedupe/run", headers=admin)
    assert started.status_code == 202, started.text
    run_jobs(clean_database, settings)
    state = client.get("/api/v1/dedupe", headers=admin).json()
    assert state["status"] == "done"
    rules = {row["rule"]: row for row in state["figures"]["blocking"]}
    assert {"mobile", "name_year", "birthday"} <= set(rules)
    assert all(row["pairs"] >= row["added"] for row in rules.values())
    assert sum(row["added"] for row in rules.values()) == state["figures"]["candidate_pairs"]
