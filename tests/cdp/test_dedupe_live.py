"""Live duplicate matching (issue 24): after a full run, a customer who arrives through the API, an import or
/v1 is compared with its candidates by the worker's next step and its likely twin joins the queue — the same
pairs, with the same probabilities, as a full run under the same model finds on the same data; a customer merged
away is never proposed again; a pair shows only to whoever may read both customers."""

from __future__ import annotations

import io
from datetime import date

import duckdb
import pytest
from sqlalchemy import delete, func, select

from kehu.cdp import dedupe, dedupe_live, matching, schemas, service
from kehu.cdp.matching.blocking import DEFAULT_RULES, Plan, Rule
from kehu.cdp.matching.comparisons import DEFAULT_COMPARISONS
from kehu.cdp.matching.model import make_tf_tables, score
from kehu.cdp.models import BlockingKey, DedupeSettings, DuplicateCandidate, Identity, Merge, Profile
from kehu.core import events
from kehu.demo import western
from tests.cdp.test_dedupe import _pairs, _people
from tests.cdp.test_imports import run_jobs, upload
from tests.cdp.test_matching_settings import _field
from tests.factories.cdp import basic, call

Pairs = dict[tuple[int, int], float]


def _queue(session, org_id: int) -> Pairs:  # type: ignore[no-untyped-def]
    session.expire_all()
    return {(c.profile_a_id, c.profile_b_id): c.probability for c in session.scalars(select(DuplicateCandidate).where(
        DuplicateCandidate.org_id == org_id, DuplicateCandidate.status == "open"))}


def _full_scoring(session, org_id: int) -> Pairs:  # type: ignore[no-untyped-def]
    """What a full run finds on the data as it is now, under the stored plan and model (not fitted again)."""
    found = session.scalar(select(DedupeSettings).where(DedupeSettings.org_id == org_id))
    blocking = dedupe_live.plan_stored(found.model)
    comparisons, _ = dedupe_live._matching_of(session, org_id)
    con = duckdb.connect()
    try:
        records = matching.load_records(session, org_id, con, attributes=dedupe_live.attributes(comparisons, blocking))
        chosen = [(Rule(name, (keys,)), keys, 1) for name, keys in blocking]
        matching.candidates(con, Plan(records=records, ceiling=0, chosen=chosen, counts={}), comparisons)
        make_tf_tables(con, comparisons)
        pairs = score(con, matching.MatchModel.from_dict(found.model), found.review_threshold, comparisons)
    finally:
        con.close()
    return {(a, b): round(p, 6) for a, b, p, _ in pairs}


def _same(live: Pairs, full: Pairs) -> None:
    assert set(live) == set(full)
    assert all(live[pair] == pytest.approx(full[pair], abs=1e-5) for pair in full)


def _involving(pairs: Pairs, ids: set[int]) -> Pairs:
    return {pair: p for pair, p in pairs.items() if ids & set(pair)}


def _western(session, tree, *, people: int, held: int):  # type: ignore[no-untyped-def]
    """Western customers written in bulk (no events: what a full run finds), but for the later records of the
    first ``held`` people written more than once: those are returned, to arrive later."""
    records = list(western.records(customers=people, seed=11))
    duplicated = [p for p in dict.fromkeys(r.person for r in records if r.corruptions)][:held]
    later = [r for r in records if r.person in duplicated and r.corruptions]
    units = [tree.dealer_a.id, tree.dealer_b.id, tree.dealer_c.id]
    western._write(session, tree.org.id, units, [r for r in records if r not in later])
    session.commit()
    return later


def _full_run(session, org_id: int) -> None:  # type: ignore[no-untyped-def]
    dedupe.run(session, org_id)
    session.commit()


def test_live_matching_finds_what_a_full_run_finds(session, tree, clean_database):  # type: ignore[no-untyped-def]
    """Every customer matched live, one batch, against the keys a full run stored: the full run's own pairs,
    probabilities and all (rules, comparisons, model and term frequencies drifting apart fail here)."""
    _western(session, tree, people=700, held=0)
    _full_run(session, tree.org.id)
    full = _queue(session, tree.org.id)
    assert len(full) > 50
    _same(full, _full_scoring(session, tree.org.id))
    stored = session.scalar(select(DedupeSettings.figures).where(DedupeSettings.org_id == tree.org.id))
    assert stored["keys_added"] == stored["keys"] > stored["records"]
    session.execute(delete(DuplicateCandidate))
    every = set(session.scalars(select(Profile.id).where(Profile.org_id == tree.org.id)))
    counts = dedupe_live.follow(session, tree.org.id, every, force=True)
    session.commit()
    assert counts["changed"] == len(every) and counts["blocks_left_to_full_run"] == 0
    _same(_queue(session, tree.org.id), full)
    # unchanged customers touched again compare nothing; a second full run on the same data writes no key
    assert dedupe_live.follow(session, tree.org.id, every)["changed"] == 0
    _full_run(session, tree.org.id)
    again = session.scalar(select(DedupeSettings.figures).where(DedupeSettings.org_id == tree.org.id))
    assert (again["keys_added"], again["keys_removed"]) == (0, 0)


def test_twins_arriving_through_the_api_and_an_import_are_queued(  # type: ignore[no-untyped-def]
        client, tree, login, session, clean_database, settings):
    later = _western(session, tree, people=500, held=40)
    admin = login("admin@example.com")
    run_jobs(clean_database, settings)  # the consumers start here: a worker was running before the first run
    # before any full run there is no model: nothing is matched live
    first = later[0]
    created = client.post("/api/v1/customers", headers=admin, json={
        "name": first.name, "birthday": first.birthday.isoformat() if first.birthday else None, "city": first.city,
        "address": first.address, "postcode": first.postcode, "gender": first.gender, "unit_id": tree.dealer_a.id})
    assert created.status_code == 201, created.text
    run_jobs(clean_database, settings)
    assert _queue(session, tree.org.id) == {}

    _full_run(session, tree.org.id)
    before = _queue(session, tree.org.id)
    by_api, by_import = later[1:len(later) // 2], later[len(later) // 2:]
    arrived = set()
    for record in by_api:
        response = client.post("/api/v1/customers", headers=admin, json={
            "name": record.name, "birthday": record.birthday.isoformat() if record.birthday else None,
            "city": record.city, "address": record.address, "postcode": record.postcode, "gender": record.gender,
            "unit_id": tree.dealer_b.id})
        assert response.status_code == 201, response.text
        arrived.add(response.json()["id"])
    run_jobs(clean_database, settings)
    # exactly what a full run with this model finds for them now
    _same(_involving(_queue(session, tree.org.id), arrived), _involving(_full_scoring(session, tree.org.id), arrived))

    sheet = io.StringIO()
    western.write_csv(sheet, by_import)
    uploaded = upload(client, admin, sheet.getvalue().encode(), "customers.csv")
    assert uploaded.status_code == 201, uploaded.text
    assert client.post(f"/api/v1/imports/{uploaded.json()['id']}/start", headers=admin).status_code == 200
    run_jobs(clean_database, settings)  # the import's job, then the consumers
    imported = set(session.scalars(select(Profile.id).where(Profile.org_id == tree.org.id, Profile.id > max(arrived))))
    assert len(imported) == len(by_import)
    queue = _queue(session, tree.org.id)
    _same(_involving(queue, imported), _involving(_full_scoring(session, tree.org.id), imported))
    # the twins are found: most of them (the generator's worst corruptions are beyond any matcher)
    new = arrived | imported
    assert len({i for pair in _involving(queue, new) for i in pair} & new) >= len(new) * 0.6
    _totals_follow_the_data(session, tree.org.id)
    # nothing else was touched
    assert {pair: p for pair, p in queue.items() if not new & set(pair)} == before
    # keys are stored for every live customer, the newcomers too
    keyed = set(session.scalars(select(BlockingKey.profile_id).distinct()))
    assert new <= keyed


def test_merged_customers_leave_and_pairs_keep_to_scope(  # type: ignore[no-untyped-def]
        client, tree, login, session, clean_database, settings):
    ids = _people(session, tree)
    admin, dealer_a, east = login("admin@example.com"), login("a.manager@example.com"), login("east@example.com")
    run_jobs(clean_database, settings)
    _full_run(session, tree.org.id)
    # another 陈静 (the same birthday) at dealer C, in the North: a pair with each of the two in the East
    twin = service.create_profile(session, tree.system, data=schemas.ProfileCreate(
        name="陈静", birthday=date(1990, 7, 1), city="北京", unit_id=tree.dealer_c.id)).id
    session.commit()
    run_jobs(clean_database, settings)
    chen = {frozenset((twin, ids["chen"])), frozenset((twin, ids["chen_traditional"]))}
    assert chen <= _pairs(client, admin)
    assert not chen & _pairs(client, dealer_a) and not chen & _pairs(client, east)  # neither sees both
    assert not chen & _pairs(client, login("c.sales@example.com"))
    # the region's pair (both in the East) is merged: the one folded leaves the queue and the keys, and is not
    # proposed again when its twin changes
    pair = next(i for i in client.get("/api/v1/duplicates", headers=east).json()["items"]
                if {c["id"] for c in i["customers"]} == {ids["chen"], ids["chen_traditional"]})
    merged = client.post(f"/api/v1/duplicates/{pair['id']}/merge", headers=east)
    assert merged.status_code == 201, merged.text
    loser = merged.json()["loser_id"]
    run_jobs(clean_database, settings)
    assert not session.scalars(select(BlockingKey).where(BlockingKey.profile_id == loser)).first()
    client.patch(f"/api/v1/customers/{twin}", headers=admin, json={"city": "上海"})
    run_jobs(clean_database, settings)
    found = _pairs(client, admin)
    assert not any(loser in p for p in found)
    assert frozenset((twin, merged.json()["winner_id"])) in found
    _totals_follow_the_data(session, tree.org.id)


def test_a_batch_is_one_transaction_with_its_cursor(session, tree, clean_database):  # type: ignore[no-untyped-def]
    """The consumers are registered and read in batches; nothing is matched for an organisation without a run."""
    consumers = events.subscriptions()
    assert consumers[dedupe_live.LIVE_EVENTS].batch == consumers[dedupe_live.LIVE_EDITS].batch == \
        dedupe_live.LIVE_BATCH
    assert dedupe_live.follow(session, tree.org.id, {1, 2, 3}) == {}


def _totals_follow_the_data(session, org_id: int) -> None:  # type: ignore[no-untyped-def]
    """The term frequencies' totals kept with the model are those of the records as they are now."""
    session.expire_all()
    model = session.scalar(select(DedupeSettings.model).where(DedupeSettings.org_id == org_id))
    comparisons, _ = dedupe_live._matching_of(session, org_id)
    con = duckdb.connect()
    try:
        matching.load_records(session, org_id, con)
        assert model["tf_totals"] == dedupe_live.tf_totals(con, comparisons)
    finally:
        con.close()


def test_customers_arriving_through_v1_are_matched_and_page_views_are_not(  # type: ignore[no-untyped-def]
        client, tree, session, clean_database, settings, web_source):
    ids = _people(session, tree)
    run_jobs(clean_database, settings)
    _full_run(session, tree.org.id)
    _source, key = web_source
    # an identify call, and a track call whose context carries the traits (Segment's libraries send both)
    sent = client.post("/v1/batch", headers=basic(key), json={"batch": [
        call("identify", userId="app-liu", traits={"name": "刘洋", "birthday": "1978-05-20", "city": "北京"}),
        call("track", userId="app-zhang", event="test_drive_booked",
             context={"traits": {"name": "张伟", "birthday": "1985-03-12", "city": "上海"}}),
        call("page", userId="app-visitor", name="home")]})
    assert sent.status_code == 200, sent.text
    run_jobs(clean_database, settings)  # the inbox, then the consumers
    session.expire_all()
    liu, zhang = (session.scalar(select(Identity.profile_id).where(Identity.value == value))
                  for value in ("app-liu", "app-zhang"))
    queue = _queue(session, tree.org.id)
    assert tuple(sorted((liu, ids["liu"]))) in queue and tuple(sorted((zhang, ids["zhang"]))) in queue
    _same(_involving(queue, {liu, zhang}), _involving(_full_scoring(session, tree.org.id), {liu, zhang}))
    _totals_follow_the_data(session, tree.org.id)
    # a page view of a known customer changes no key (its call is not even read: nothing it carries is matched on)
    keys = session.scalar(select(func.count()).select_from(BlockingKey))
    client.post("/v1/batch", headers=basic(key), json={"batch": [call("page", userId="app-liu", name="home")]})
    run_jobs(clean_database, settings)
    assert session.scalar(select(func.count()).select_from(BlockingKey)) == keys


def test_auto_merge_applies_to_pairs_found_live(  # type: ignore[no-untyped-def]
        client, tree, login, session, clean_database, settings):
    ids = _people(session, tree)
    admin = login("admin@example.com")
    run_jobs(clean_database, settings)
    _full_run(session, tree.org.id)
    assert client.put("/api/v1/dedupe", headers=admin, json={"auto_merge_threshold": 0.8}).status_code == 200
    twin = service.create_profile(session, tree.system, data=schemas.ProfileCreate(
        name="刘洋", birthday=date(1978, 5, 20), city="北京", unit_id=tree.dealer_c.id)).id
    session.commit()
    run_jobs(clean_database, settings)
    session.expire_all()
    # merged into the older record, as a run merges (and so is the pair that record had with its typo): the pairs
    # merge most probable first, so the twin may have gone into the typo's record on its way to the oldest one
    assert _lives_on_as(session, twin) == ids["liu"]
    assert session.get(Profile, ids["liu_typo"]).merged_into_id == ids["liu"]
    merges = session.scalars(select(Merge).where(Merge.winner_id == ids["liu"])).all()
    assert {m.reason for m in merges} == {"dedupe"} and all(m.detail.startswith("automatic") for m in merges)
    assert not session.scalars(select(BlockingKey).where(BlockingKey.profile_id.in_(
        (twin, ids["liu_typo"])))).first()  # the records folded left the keys (the merges' events, next step)


def test_custom_fields_of_the_settings_take_part_live(  # type: ignore[no-untyped-def]
        client, tree, login, session, clean_database, settings):
    """An ID number the organisation compares and blocks on (its matching settings): a newcomer sharing only it
    (no birthday, another city) meets its twin live, as a full run scores the pair."""
    admin = login("admin@example.com")
    _field(client, admin, "id_number", is_pii=True)
    ids = _people(session, tree)
    proposal = {"comparisons": [*({"field": c.name} for c in DEFAULT_COMPARISONS),
                                {"field": "attributes.id_number", "kind": "fuzzy"}],
                "rules": [*({"name": r.name} for r in DEFAULT_RULES),
                          {"name": "id_number", "fields": ["attributes.id_number"]}]}
    assert client.put("/api/v1/dedupe/matching", headers=admin, json=proposal).status_code == 200
    # (one ID number among 208 customers teaches the model little of it: pairs from an even chance up)
    assert client.put("/api/v1/dedupe", headers=admin, json={"review_threshold": 0.5}).status_code == 200
    assert client.patch(f"/api/v1/customers/{ids['liu']}", headers=admin,
                        json={"attributes": {"id_number": "310101197805201234"}}).status_code == 200
    run_jobs(clean_database, settings)
    _full_run(session, tree.org.id)
    created = client.post("/api/v1/customers", headers=admin, json={
        "name": "刘洋", "city": "深圳", "attributes": {"id_number": "310101197805201234"}})
    assert created.status_code == 201, created.text
    run_jobs(clean_database, settings)
    newcomer = {created.json()["id"]}
    queue = _involving(_queue(session, tree.org.id), newcomer)
    assert tuple(sorted((created.json()["id"], ids["liu"]))) in queue
    _same(queue, _involving(_full_scoring(session, tree.org.id), newcomer))
    # the plan stored with the model blocks on the custom field's column too
    model = session.scalar(select(DedupeSettings.model).where(DedupeSettings.org_id == tree.org.id))
    assert dict(dedupe_live.plan_stored(model))["id_number"][0] == "cf_id_number"


def _lives_on_as(session, profile_id: int) -> int:  # type: ignore[no-untyped-def]
    """The live record a merged-away one lives on as (following merges one after another)."""
    profile = session.get(Profile, profile_id)
    while profile.merged_into_id is not None:
        profile = session.get(Profile, profile.merged_into_id)
    return int(profile.id)
