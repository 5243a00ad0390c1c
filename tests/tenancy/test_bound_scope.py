"""``bound_scope`` (the scope filter of statements built once, with the reader's values as parameters) lets through
exactly the rows ``scope()`` does, for every kind of reader: the Customer 360's timeline reads with it."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from kehu.cdp.models import Profile
from kehu.tenancy.access import bound_scope, scope
from kehu.tenancy.models import Role
from tests.cdp.test_customer_access import seed
from tests.factories.tenancy import make_user


def _ids(session, *where, params=None):  # type: ignore[no-untyped-def]
    return set(session.scalars(select(Profile.id).where(*where), params or {}))


@pytest.mark.parametrize("reader", ["admin", "east_manager", "a_manager", "a_sales", "b_sales", "c_sales",
                                    "other_org_admin", "analyst", "nobody"])
def test_bound_scope_lets_through_what_scope_does(session, tree, reader):  # type: ignore[no-untyped-def]
    seed(session, tree)
    if reader == "analyst":
        user = make_user(session, tree.system, tree.hq, "hq_analyst", email="analyst@example.com", name="分析师")
    elif reader == "nobody":  # a role that grants nothing on customers
        session.add(Role(org_id=tree.org.id, code="clerk", name_zh="文员", name_en="Clerk", privileges={}))
        session.flush()
        user = make_user(session, tree.system, tree.dealer_a, "clerk", email="clerk@example.com", name="文员")
    else:
        user = getattr(tree, reader)
    session.commit()
    principal = tree.principal(session, user)
    readers = [principal]
    if principal.unit_tree is not None:  # a principal made without its tree's ids reads the tree by path
        readers.append(dataclasses.replace(principal, unit_tree=None, memo={}))
    for one in readers:
        expected = _ids(session, scope(one, Profile))
        bound = bound_scope(one, Profile)
        assert _ids(session, bound.clause(), params=bound.params) == expected, (reader, bound.form)
    # not a vacuous match: each form lets through its own rows (seed: one customer of each of a_sales, a_sales2,
    # b_sales and one at the northern dealer)
    seen = {"admin": 4, "analyst": 4, "east_manager": 3, "a_manager": 2, "a_sales": 1, "other_org_admin": 0,
            "nobody": 0}
    if reader in seen:
        assert len(expected) == seen[reader]


def test_an_api_key_of_an_own_role_reads_no_ownerless_customer(client, session, tree, login):  # type: ignore[no-untyped-def]
    """An API key is nobody: a role that reads "own" customers gives it none, where the filter once read every
    customer without an owner, at any dealer (``owner_id IS NULL``)."""
    seed(session, tree)
    session.commit()
    ownerless = session.scalar(select(Profile).where(Profile.owner_id.is_(None), Profile.org_id == tree.org.id))
    assert ownerless is not None
    created = client.post("/api/v1/api-keys", headers=login("admin@example.com"),
                          json={"name": "销售接口", "role": "dealer_sales", "unit_id": tree.dealer_a.id})
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["key"]}
    listed = client.get("/api/v1/customers", headers=key)
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert client.get(f"/api/v1/customers/{ownerless.id}?include=timeline", headers=key).status_code == 404


def test_one_statement_built_once_serves_each_reader_their_own_rows(session, tree):  # type: ignore[no-untyped-def]
    """The cached statement carries no reader's values: run for one consultant, then another, each sees theirs."""
    from kehu.core.db import built_once

    seed(session, tree)
    session.commit()
    seen = {}
    for user in (tree.a_sales, tree.b_sales, tree.a_sales):
        readable = bound_scope(tree.principal(session, user), Profile)
        query = built_once(("test_profiles_in_scope", readable.form),
                           lambda readable=readable: select(Profile.id).where(readable.clause()))
        seen.setdefault(user.id, []).append(set(session.scalars(query, readable.params)))
    assert seen[tree.a_sales.id][0] == seen[tree.a_sales.id][1] and len(seen[tree.a_sales.id][0]) == 1
    assert len(seen[tree.b_sales.id][0]) == 1 and seen[tree.b_sales.id][0] != seen[tree.a_sales.id][0]
