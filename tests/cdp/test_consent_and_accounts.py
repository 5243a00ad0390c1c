"""Consent per channel and purpose (PIPL) and accounts from group calls; both follow merges and unmerges."""

from __future__ import annotations

from sqlalchemy import select

from kehu.cdp import schemas, service
from kehu.cdp.models import AccountMember, ConsentRecord, Profile
from tests.factories.cdp import basic, call, process


def send(client, key, *calls):  # type: ignore[no-untyped-def]
    response = client.post("/v1/batch", headers=basic(key), json={"batch": list(calls)})
    assert response.status_code == 200 and not response.json()["rejected"], response.text


def test_consent_from_traits_latest_decision_wins_and_replays_add_nothing(client, web_source, session,
                                                                         clean_database, login):
    _, key = web_source
    granted = call("identify", userId="u1", timestamp="2026-05-01T00:00:00Z",
                   traits={"consent": {"sms": {"marketing": True}, "email": {"marketing": True}}})
    withdrawn = call("identify", userId="u1", timestamp="2026-06-01T00:00:00Z",
                     traits={"consent": {"sms": {"marketing": False}, "fax": {"marketing": True}}})
    send(client, key, withdrawn)
    send(client, key, granted)  # arrives late: older decision, must not win
    send(client, key, granted)  # replayed: adds nothing
    process(clean_database)
    profile = session.scalars(select(Profile)).one()
    assert "consent" not in profile.attributes
    assert len(session.scalars(select(ConsentRecord)).all()) == 3
    view = client.get(f"/api/v1/customers/{profile.id}?include=consents", headers=login("admin@example.com")).json()
    states = {(c["channel"], c["purpose"]): c["status"] for c in view["consents"]}
    assert states == {("sms", "marketing"): "withdrawn", ("email", "marketing"): "granted"}
    assert all(c["evidence"].startswith("官网: call") for c in view["consents"])


def test_consent_recorded_by_hand_needs_evidence_and_is_audited(client, tree, login, session):
    admin = login("admin@example.com")
    customer = client.post("/api/v1/customers", headers=admin, json={"name": "吴女士", "mobile": "13766665555"})
    profile_id = customer.json()["id"]
    missing = client.post(f"/api/v1/customers/{profile_id}/consents", headers=admin,
                          json={"channel": "phone", "purpose": "marketing", "granted": False, "evidence": ""})
    assert missing.status_code == 422
    ok = client.post(f"/api/v1/customers/{profile_id}/consents", headers=admin, json={
        "channel": "phone", "purpose": "marketing", "granted": False, "evidence": "客服来电录音 #A-1203"})
    assert ok.status_code == 201 and ok.json()["status"] == "withdrawn"
    audit = client.get(f"/api/v1/audit?entity=profiles&entity_id={profile_id}&action=consent", headers=admin)
    assert audit.json()["items"][0]["after"]["evidence"] == "客服来电录音 #A-1203"
    assert client.post(f"/api/v1/customers/{profile_id}/consents", headers=login("b.sales@example.com"), json={
        "channel": "sms", "purpose": "marketing", "granted": True, "evidence": "x"}).status_code == 404


def test_group_calls_make_accounts_with_members(client, web_source, session, clean_database, login):
    _, key = web_source
    send(client, key,
         call("group", userId="u1", groupId="co-42", traits={"name": "杭州某某科技有限公司", "kind": "company",
                                                              "employees": 120}),
         call("group", userId="u2", groupId="co-42", traits={}),
         call("group", userId="u1", groupId="co-42", traits={"industry": "软件"}))
    process(clean_database)
    admin = login("admin@example.com")
    accounts = client.get("/api/v1/accounts", headers=admin).json()["items"]
    assert len(accounts) == 1
    account = accounts[0]
    assert account["name"] == "杭州某某科技有限公司" and account["traits"] == {"employees": 120, "industry": "软件"}
    detail = client.get(f"/api/v1/accounts/{account['id']}", headers=admin).json()
    assert len(detail["members"]) == 2
    assert len(session.scalars(select(AccountMember)).all()) == 2
    assert client.get(f"/api/v1/accounts/{account['id']}", headers=login("a.sales@example.com")).status_code == 404


def test_consent_and_membership_follow_a_merge_and_come_back_on_unmerge(client, web_source, session,
                                                                        clean_database, tree):
    _, key = web_source
    send(client, key, call("identify", userId="p1"),
         call("identify", userId="p2", traits={"consent": {"wechat": {"marketing": True}}}),
         call("group", userId="p2", groupId="family-7", traits={"kind": "household"}))
    process(clean_database)
    first, second = sorted(session.scalars(select(Profile)), key=lambda p: p.id)
    merge = service.merge_by_hand(session, tree.system, data=schemas.MergeRequest(winner_id=first.id,
                                                                                loser_id=second.id))
    session.commit()
    assert {r.profile_id for r in session.scalars(select(ConsentRecord))} == {first.id}
    assert {m.profile_id for m in session.scalars(select(AccountMember))} == {first.id}
    service.unmerge(session, tree.system, merge.id)
    session.commit()
    session.expire_all()
    assert {r.profile_id for r in session.scalars(select(ConsentRecord))} == {second.id}
    assert {m.profile_id for m in session.scalars(select(AccountMember))} == {second.id}
