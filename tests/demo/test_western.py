"""`kehu generate --style western`: another company's customer file — Western names, street addresses, UK
postcodes, dates of birth, few mobiles or e-mails — with several records of some people corrupted by a model of
its own (typos, OCR and phonetic errors, swapped and missing fields, nicknames, initials, dates mistyped, moves).
Deterministic with a seed; the corruption rates are reported; the records load through kehu's writer and through
a normal import; the truth names every record's person."""

from __future__ import annotations

import io
import random
import re
from collections import Counter

import pytest
from sqlalchemy import func, select

from kehu.cdp.models import Identity, Profile
from kehu.cdp.resolution_quality import read_truth
from kehu.demo import western
from kehu.demo.seed import seed_demo
from kehu.tenancy import service as tenancy_service
from tests.cdp.test_imports import run_jobs, upload

UK_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9]{1,2} [0-9][A-Z]{2}$")


def test_the_same_seed_gives_the_same_file_and_another_seed_another():
    first = list(western.records(customers=300, seed=5))
    assert first == list(western.records(customers=300, seed=5))
    assert first != list(western.records(customers=300, seed=6))
    # a part of the file is the same however it is cut
    assert list(western.records(customers=100, seed=5, first=200)) == [r for r in first if
                                                                          int(r.person.split("-")[1]) >= 200]


def test_people_addresses_and_duplicates_look_like_a_western_customer_file():
    rows = list(western.records(customers=4000, seed=9))
    originals = [r for r in rows if not r.corruptions]
    copies = [r for r in rows if r.corruptions]
    people = Counter(r.person for r in rows)
    assert len(people) == len(originals) == 4000
    assert 0.26 < sum(1 for n in people.values() if n > 1) / 4000 < 0.34  # default share 0.3
    assert max(people.values()) > 3  # several duplicates of some people
    assert all(r.record % 8 for r in copies) and not any(r.record % 8 for r in originals)
    assert all(UK_POSTCODE.match(r.postcode) and re.match(r"^(Flat \d+, )?\d+ \w", r.address) and r.birthday
               and r.given and r.family and r.city for r in originals)
    assert len({r.family for r in originals}) > 1500  # a long tail of surnames, not a few hundred
    assert Counter(r.family for r in originals).most_common(1)[0][0] == "Smith"
    assert sum(1 for r in rows if r.mobile) / len(rows) < 0.2 and sum(1 for r in rows if r.email) / len(rows) < 0.15
    assert len({r.customer_no for r in rows}) == len(rows)


def test_each_corruption_happens_at_its_rate_and_is_seen_in_the_record():
    rows = list(western.records(customers=6000, seed=11))
    by_person = {r.person: r for r in rows if not r.corruptions}
    made = western.Made()
    western._count(made, rows)
    rates = made.rates()
    assert set(rates) == set(western.CORRUPTIONS), "every kind of corruption occurs"
    weights = sum(western.CORRUPTIONS.values())
    for kind in ("keyboard_typo", "phonetic_error", "moved", "birthday_missing"):
        expected = 2.2 * western.CORRUPTIONS[kind] / weights  # about 2.2 drawn per duplicate
        assert 0.4 * expected < rates[kind] < 1.6 * expected, (kind, rates[kind], expected)
    for copy in (r for r in rows if r.corruptions):
        original = by_person[copy.person]
        assert western._written(copy) != western._written(original) or set(copy.corruptions) == {"moved"}, copy
        if copy.corruptions == ("names_swapped",):
            assert (copy.given, copy.family) == (original.family, original.given)
        if copy.corruptions == ("day_month_swapped",):
            assert (copy.birthday.day, copy.birthday.month) == (original.birthday.month, original.birthday.day)
        if copy.corruptions == ("birthday_missing",):
            assert copy.birthday is None


def test_each_error_of_the_model_changes_the_text_as_its_kind_does():
    rng = random.Random(1)
    assert sum(western.keyboard_typo(rng, "Richardson") != "Richardson" for _ in range(50)) >= 45
    assert {western.phonetic_error(rng, "Philips") for _ in range(200)} >= {"Filips", "Philipz"}
    assert "Harnmond" in {western.ocr_error(rng, "Hammond") for _ in range(200)}
    assert all(len(western.keyboard_typo(rng, "Lee")) in (2, 3, 4) for _ in range(50))


def test_records_are_written_through_the_writer_with_their_truth(clean_database, session):
    seed_demo(session)
    session.commit()
    org_id = tenancy_service.get_organization_by_slug(session, "demo").id
    truth_file = io.StringIO()
    made = western.generate(clean_database, org_id, customers=400, seed=3, truth=truth_file)
    truth_file.seek(0)
    truth = dict(read_truth(truth_file))
    stored = session.scalar(select(func.count()).select_from(Profile).where(Profile.source == "import"))
    assert made.profiles == len(truth) == stored and made.customers == 400 and made.duplicates > 0
    assert made.true_pairs == sum(n * (n - 1) // 2 for n in Counter(truth.values()).values())
    numbers = session.scalar(select(func.count()).select_from(Identity).where(Identity.kind == "dealer_customer_no"))
    assert numbers == made.profiles
    profiles = list(session.scalars(select(Profile).where(Profile.id.in_(list(truth)))))
    assert sum(1 for p in profiles if p.postcode) > 0.9 * len(profiles)
    assert {"corruption_rates", "true_pairs", "duplicates"} <= set(made.as_dict())


def test_the_file_imports_through_kehus_import(client, tree, login, session, clean_database, settings):
    rows = list(western.records(customers=30, seed=4))
    out = io.StringIO()
    assert western.write_csv(out, rows) == len(rows)
    admin = login("admin@example.com")
    uploaded = upload(client, admin, out.getvalue().encode(), filename="customers.csv")
    assert uploaded.status_code == 201, uploaded.text
    run = uploaded.json()
    assert run["mapping"]["Postcode"] == "postcode" and run["mapping"]["Customer No"] == "identity:dealer_customer_no"
    assert client.post(f"/api/v1/imports/{run['id']}/start", headers=admin).status_code == 200
    run_jobs(clean_database, settings)
    done = client.get(f"/api/v1/imports/{run['id']}", headers=admin).json()
    assert done["status"] == "done" and done["accepted_rows"] == len(rows), done
    session.expire_all()
    stored = {p.name: p for p in session.scalars(select(Profile).where(Profile.org_id == tree.org.id))}
    first = rows[0]
    assert stored[first.name].postcode == first.postcode and stored[first.name].address == first.address


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_the_duplicate_share_is_a_setting(share: float):
    rows = list(western.records(customers=200, seed=2, duplicate_share=share))
    assert (len(rows) == 200) is (share == 0.0)
