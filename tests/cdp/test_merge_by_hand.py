"""A person merging two customers keeps the record they chose, as in Salesforce and Dynamics (issue 20: keeping the
dealer's 丁梓涵 left "Zihan Ding" with the hotline's mobile and an earlier stage): the kept record's values, what it
lacks from the other, the further life-cycle stage, or what they pick field by field; both records' mobiles and
e-mails find the customer afterwards."""

from __future__ import annotations

from datetime import date

from kehu.cdp import schemas, service
from kehu.cdp.models import Profile


def _customer(session, tree, **values):  # type: ignore[no-untyped-def]
    profile = service.create_profile(session, tree.system, data=schemas.ProfileCreate(
        unit_id=tree.dealer_a.id, **values))
    session.commit()
    return profile.id


def _merge(client, headers, winner: int, loser: int, **fields):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/customers/merges", headers=headers,
                       json={"winner_id": winner, "loser_id": loser, "fields": fields})


def test_the_kept_record_keeps_its_values_and_the_further_stage(tree, client, login, session):  # type: ignore[no-untyped-def]
    dealer = _customer(session, tree, name="丁梓涵", mobile="13900030001", lifecycle_stage="opportunity")
    hotline = _customer(session, tree, name="Zihan Ding", mobile="13900030002", email="zihan@example.com",
                        lifecycle_stage="prospect")  # entered later: newest-wins would take its name and mobile
    admin = login("admin@example.com")
    merged = _merge(client, admin, dealer, hotline)
    assert merged.status_code == 201, merged.text
    kept = client.get(f"/api/v1/customers/{dealer}", headers=admin).json()["profile"]
    assert (kept["name"], kept["mobile"], kept["lifecycle_stage"]) == ("丁梓涵", "+8613900030001", "opportunity")
    assert kept["email"] == "zihan@example.com"  # what the kept record lacked
    for q in ("13900030002", "+8613900030002", "zihan@example.com"):  # the merged-in identities still find her
        found = client.get("/api/v1/customers", headers=admin, params={"q": q}).json()["items"]
        assert [c["id"] for c in found] == [dealer], q


def test_a_nameless_record_merged_in_changes_nothing_the_kept_one_has(tree, client, login, session):  # type: ignore[no-untyped-def]
    lin = _customer(session, tree, name="林一凡", mobile="13900030011", email="lin@example.com",
                    birthday=date(1990, 2, 3))
    nameless = _customer(session, tree, mobile="13900030012", email="other@example.com", birthday=date(1991, 1, 1),
                         lifecycle_stage="customer")
    admin = login("admin@example.com")
    assert _merge(client, admin, lin, nameless).status_code == 201
    kept = client.get(f"/api/v1/customers/{lin}", headers=admin).json()["profile"]
    assert (kept["name"], kept["mobile"], kept["email"], kept["birthday"]) == (
        "林一凡", "+8613900030011", "lin@example.com", "1990-02-03")
    assert kept["lifecycle_stage"] == "customer"  # further along: she bought as the other record


def test_the_person_picks_field_by_field_and_undo_puts_it_back(tree, client, login, session):  # type: ignore[no-untyped-def]
    first = _customer(session, tree, name="王伟", mobile="13900030021", city="上海")
    second = _customer(session, tree, name="王 伟（新）", mobile="13900030022", city="杭州")
    admin = login("admin@example.com")
    refused = _merge(client, admin, first, second, nickname="loser")
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "fields.nickname"
    assert _merge(client, admin, first, second, city="sideways").status_code == 422
    merged = _merge(client, admin, first, second, city="loser", mobile="loser")
    assert merged.status_code == 201, merged.text
    kept = client.get(f"/api/v1/customers/{first}", headers=admin).json()["profile"]
    assert (kept["name"], kept["city"], kept["mobile"]) == ("王伟", "杭州", "+8613900030022")
    assert client.post(f"/api/v1/customers/merges/{merged.json()['id']}/undo", headers=admin).status_code == 200
    session.expire_all()
    restored = session.get(Profile, first)
    assert (restored.city, restored.mobile) == ("上海", "+8613900030021")
