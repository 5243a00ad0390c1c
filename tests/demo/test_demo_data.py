"""The demo generator makes data that passes the same checks real data does."""

from __future__ import annotations

import random

from kehu.cdp import normalise
from kehu.demo.customers import _person, vin, vin_check_digit


def test_vin_check_digit_matches_the_textbook_example():
    assert vin_check_digit("1M8GDM9AXKP042788") == "X"
    assert vin_check_digit("11111111111111111") == "1"


def test_generated_vins_and_mobiles_are_valid_and_deterministic():
    first = [vin(random.Random(7)) for _ in range(3)]
    assert len(set(first)) == 1  # same seed, same VIN
    rng = random.Random(2026)
    for _ in range(200):
        v = vin(rng)
        assert normalise.identity_value("vin", v) == v and vin_check_digit(v) == v[8]
        person = _person(rng)
        assert normalise.phone(person["mobile"]).startswith("+861")


def test_demo_customers_live_in_the_past(clean_database, session):
    from sqlalchemy import func, select

    from kehu.cdp.models import Event, Profile
    from kehu.core.db import utcnow
    from kehu.demo.customers import seed_customers
    from kehu.demo.seed import seed_demo

    org = seed_demo(session).org
    live = seed_customers(session, org.id, customers=500, seed=9)
    session.commit()
    assert 400 < live <= 1000
    now = utcnow()
    assert session.scalar(select(func.max(Event.ts))) <= now
    assert session.scalar(select(func.max(Profile.last_seen_at))) <= now
