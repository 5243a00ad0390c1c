"""Customer search: what it finds (name anywhere in it, pinyin, mobile in any format or its last digits, e-mail,
VIN, any identity) on both databases, and that on PostgreSQL each kind is answered from its own index, not a
scan of every profile (a million profiles made each search take a second alone, thirty under load)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import text

from kehu.cdp import schemas, service
from kehu.cdp.models import Identity, Profile, Vehicle
from kehu.cdp.normalise import pinyin
from kehu.core.db import copy_columns, utcnow


def create(session, principal, **fields):  # type: ignore[no-untyped-def]
    return service.create_profile(session, principal, data=schemas.ProfileCreate(**fields))


def found(client, headers, q: str) -> list[int]:  # type: ignore[no-untyped-def]
    response = client.get("/api/v1/customers", headers=headers, params={"q": q})
    assert response.status_code == 200, response.text
    return sorted(p["id"] for p in response.json()["items"])


@pytest.fixture
def people(session, tree):  # type: ignore[no-untyped-def]
    system = tree.system
    zhang = create(session, system, name="张伟华", mobile="13812345678", email="WeiHua.Zhang@Example.com",
                   unit_id=tree.dealer_a.id)
    wei = create(session, system, name="Wei Zhang", mobile="13987650000", unit_id=tree.dealer_b.id)
    li = create(session, system, name="李娜", mobile="13700001111", unit_id=tree.dealer_c.id)
    service.register_vehicle(session, system, li.id, data=schemas.VehicleIn(vin="LSVAA4182E2123456", model="ID.4"))
    session.add(Identity(org_id=tree.org.id, profile_id=wei.id, kind="wechat_openid", value="oWx-123abc"))
    session.commit()
    return {"zhang": zhang.id, "wei": wei.id, "li": li.id}


def test_search_finds_a_customer_by_each_thing_people_type(client, tree, login, people):
    admin = login("admin@example.com")
    expectations = {
        "张伟华": ["zhang"], "伟华": ["zhang"], "伟": ["zhang"], "张": ["zhang"],  # anywhere in the name
        "wei zhang": ["wei"], "WEI": ["wei"],  # Latin names in any case
        "zhangweihua": ["zhang"], "zhangwei": ["zhang"], "li": ["li"],  # pinyin from its start
        "138 1234 5678": ["zhang"], "+86-138-1234-5678": ["zhang"], "5678": ["zhang"], "345678": ["zhang"],
        "0000": ["wei"],  # the last digits of a mobile
        "1381234": ["zhang"], "138 1234 56": ["zhang"], "1398765": ["wei"],  # its start (issue 20)
        "weihua.zhang@example.com": ["zhang"], "WeiHua.Zhang@EXAMPLE.com": ["zhang"],
        "LSVAA4182E2123456": ["li"], "lsvaa4182e2123456": ["li"], "oWx-123abc": ["wei"],
        "王": [], "1234": [], "nobody@example.com": [],
        # the digits of an e-mail or a VIN are no mobile's end (张伟华's ends 5678, 李娜's 1111); words and
        # full-width digits around a tail are
        "zw5678@example.com": [], "LSVAA4182E2125678": [], "LSVAA4182E1111": [],
        "尾号5678": ["zhang"], "５６７８": ["zhang"], "0013－5678": [],
    }
    for q, who in expectations.items():
        assert found(client, admin, q) == sorted(people[w] for w in who), q


def test_like_wildcards_in_a_search_are_plain_characters(client, tree, login, people):
    admin = login("admin@example.com")
    assert found(client, admin, "%") == []
    assert found(client, admin, "_") == []
    assert found(client, admin, "张%") == []


def test_a_search_pages_through_every_match_once(client, session, tree, login, people):
    """The search box's statement is built once and its values bound: page after page, with the cursor, each match
    comes once, newest first, and a search of another kind (a mobile) in between changes nothing."""
    more = [create(session, tree.system, name=f"张{given}", unit_id=tree.dealer_a.id).id for given in "一二三四"]
    session.commit()
    admin = login("admin@example.com")
    seen: list[int] = []
    cursor = None
    while True:
        params = {"q": "张", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/customers", headers=admin, params=params).json()
        assert found(client, admin, "13812345678") == [people["zhang"]]
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted([people["zhang"], *more], reverse=True)
    forged = client.get("/api/v1/customers", headers=admin, params={"q": "张", "cursor": "bm90LWEtY3Vyc29y"})
    assert forged.status_code == 422


def test_search_stays_within_the_viewers_scope(client, tree, login, people):
    sales = login("a.sales@example.com")  # dealer A's consultant: owns none of them
    assert found(client, sales, "张伟华") == []
    manager = login("east@example.com")  # East: dealers A and B
    assert found(client, manager, "李娜") == []
    assert found(client, manager, "5678") == [people["zhang"]]


def test_the_list_filters_by_unit_and_stage_with_a_search_and_across_pages(client, session, tree, login, people):
    """The list's unit filter takes the unit and the units below it, the stage filter one stage; both combine with
    the search box and the viewer's scope, page after page; another organisation's unit finds nobody."""
    leads = [create(session, tree.system, name=f"张{given}", unit_id=unit.id, lifecycle_stage="lead").id
             for given, unit in zip("一二三", (tree.dealer_a, tree.dealer_b, tree.dealer_c), strict=True)]
    session.commit()
    admin = login("admin@example.com")

    def listed(headers: dict[str, str], **params: Any) -> list[int]:
        seen: list[int] = []
        cursor = None
        while True:
            query = {**params, "limit": 1, **({"cursor": cursor} if cursor else {})}
            response = client.get("/api/v1/customers", headers=headers, params=query)
            assert response.status_code == 200, response.text
            seen += [p["id"] for p in response.json()["items"]]
            cursor = response.json()["next_cursor"]
            if not cursor:
                return seen

    east = sorted([people["zhang"], people["wei"], leads[0], leads[1]], reverse=True)
    assert listed(admin, unit_id=tree.east.id) == east
    assert listed(admin, unit_id=tree.dealer_c.id) == sorted([people["li"], leads[2]], reverse=True)
    assert listed(admin, stage="lead") == sorted(leads, reverse=True)
    assert listed(admin, unit_id=tree.east.id, stage="lead") == sorted(leads[:2], reverse=True)
    assert listed(admin, unit_id=tree.east.id, stage="lead", q="张二") == [leads[1]]
    assert listed(admin, unit_id=tree.east.id, q="5678") == [people["zhang"]]
    assert listed(login("east@example.com"), unit_id=tree.hq.id, stage="lead") == sorted(leads[:2], reverse=True)
    assert listed(admin, unit_id=tree.other_org_admin.unit_id) == []


# -- PostgreSQL answers each kind of search from an index ------------------------------------------------
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华"


def _many_customers(session, org_id: int, unit_id: int, count: int) -> None:  # type: ignore[no-untyped-def]
    """``count`` customers written in bulk, with a mobile, an e-mail and a vehicle each, then analysed: enough
    rows that a scan costs the planner more than an index would."""
    rng = random.Random(3)
    now = utcnow()
    names = [rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
             for _ in range(count)]
    mobiles = [f"+86139{n:08d}" for n in range(count)]
    ids = [row for row in session.execute(text(
        "SELECT nextval(pg_get_serial_sequence('profiles', 'id')) FROM generate_series(1, :n)"), {"n": count})
        .scalars()]
    copy_columns(session, Profile.__table__, {
        "id": ids, "org_id": [org_id] * count, "unit_id": [unit_id] * count, "owner_id": [None] * count,
        "name": names, "name_pinyin": [pinyin(n) for n in names], "mobile": mobiles,
        "email": [f"c{n}@example.com" for n in range(count)], "lifecycle_stage": ["prospect"] * count,
        "attributes": [{}] * count, "trait_times": [{}] * count, "created_at": [now] * count,
        "updated_at": [now] * count, "last_seen_at": [now] * count, "source": ["import"] * count})
    kinds = ("mobile", "email", "dealer_customer_no")
    values = (mobiles, [f"c{n}@example.com" for n in range(count)], [f"SH001-{n}" for n in range(count)])
    copy_columns(session, Identity.__table__, {
        "org_id": [org_id] * count * 3, "profile_id": ids * 3,
        "kind": [k for k in kinds for _ in range(count)], "value": [v for vs in values for v in vs],
        "first_seen_at": [now] * count * 3, "last_seen_at": [now] * count * 3})
    copy_columns(session, Vehicle.__table__, {
        "org_id": [org_id] * count, "unit_id": [unit_id] * count, "profile_id": ids,
        "vin": [f"LSVAA41{n:010d}" for n in range(count)], "model": ["ID.4"] * count,
        "created_at": [now] * count, "updated_at": [now] * count})
    session.commit()
    for table in ("profiles", "identities", "vehicles"):
        session.execute(text(f"ANALYZE {table}"))


def _plan(session, principal: Any, q: str) -> str:  # type: ignore[no-untyped-def]
    """PostgreSQL's plan for the customer list's search (the API's first page)."""
    from sqlalchemy import select

    statement = select(Profile.id).where(*service.profile_filters(principal, q, None, None)) \
        .order_by(Profile.id.desc()).limit(51)
    compiled = statement.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
    return "\n".join(session.execute(text(f"EXPLAIN {compiled}")).scalars())


def test_each_kind_of_search_is_answered_from_its_index(session, tree, clean_database):
    if clean_database.is_sqlite:
        pytest.skip("PostgreSQL plans; SQLite reads names in a scan (see kehu.cdp.search)")
    _many_customers(session, tree.org.id, tree.dealer_a.id, 20_000)
    admin = tree.principal(session, tree.admin)
    searches = {
        "张伟": "ix_profiles_name_grams",
        "zhangwei": "ix_profiles_org_pinyin",
        "0001234": "ix_profiles_org_mobile_tail", "13900001234": "ix_profiles_org_mobile_tail",
        "c1234@example.com": "uq_identities_org_id_kind_value", "SH001-77": "uq_identities_org_id_kind_value",
        "1390000123": "uq_identities_org_id_kind_value",  # a mobile's start, a range of the identities' index
        "LSVAA410000001234": "uq_vehicles_org_id_vin",
    }
    for q, index in searches.items():
        plan = _plan(session, admin, q)
        assert index in plan, f"{q}: {plan}"
        if not q.replace(" ", "").isdigit():  # no mobile's tail is looked up for an e-mail or a VIN
            assert "ix_profiles_org_mobile_tail" not in plan, f"{q}: {plan}"
        assert "Seq Scan on profiles" not in plan and "Seq Scan on identities" not in plan, f"{q}: {plan}"
    # One character matches one customer in fourteen here: newest first along the primary key, testing each,
    # finds a page of them sooner than the index would list them all
    broad = _plan(session, admin, "伟")
    assert "Index Scan Backward using pk_profiles" in broad and "Seq Scan" not in broad, broad
    # testing a row, the name's LIKE comes before its grams (a function call a row): PostgreSQL keeps the order
    # written for an AND inside an OR
    tested = next(line for line in broad.splitlines() if "Filter:" in line and "kehu_name_grams" in line)
    assert tested.index("lower((name)::text) ~~") < tested.index("kehu_name_grams"), tested
