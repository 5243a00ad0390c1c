"""One ID: identities resolve to profiles, merges follow the rules, limits stop over-merging, late traits
lose to newer ones, and a merge can be undone exactly."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from kehu.cdp import imports, schemas, service
from kehu.cdp.identity import trait_time
from kehu.cdp.imported import ImportedRow, store_imported
from kehu.cdp.models import Event, Identity, Merge, Profile
from kehu.core.errors import Conflict
from tests.factories.cdp import basic, call, process


def send(client, key, *calls):  # type: ignore[no-untyped-def]
    response = client.post("/v1/batch", headers=basic(key), json={"batch": list(calls)})
    assert response.status_code == 200 and not response.json()["rejected"], response.text


def live_profiles(session) -> list[Profile]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(Profile).where(Profile.merged_into_id.is_(None)).order_by(Profile.id)))


def identities(session, profile_id) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {(i.kind, i.value) for i in session.scalars(select(Identity).where(Identity.profile_id == profile_id))}


def test_a_chain_of_touchpoints_becomes_one_profile(client, web_source, session, clean_database):
    _, key = web_source
    send(client, key, call("page", anonymousId="a1", name="首页", timestamp="2026-01-01T01:00:00Z"))
    send(client, key, call("identify", userId="u1", anonymousId="a1", timestamp="2026-01-01T02:00:00Z"))
    send(client, key, call("track", anonymousId="a2", event="留资", timestamp="2026-01-02T01:00:00Z",
                           context={"traits": {"phone": "138-1234-5678"}}))
    assert process(clean_database) == 3
    assert len(live_profiles(session)) == 2
    send(client, key, call("identify", userId="u1", traits={"phone": "+86 13812345678", "name": "李雷"},
                           timestamp="2026-01-03T01:00:00Z"))
    process(clean_database)
    profiles = live_profiles(session)
    assert len(profiles) == 1
    survivor = profiles[0]
    assert identities(session, survivor.id) == {("user_id", "u1"), ("anonymous_id", "a1"),
                                                ("anonymous_id", "a2"), ("mobile", "+8613812345678")}
    assert set(session.scalars(select(Event.profile_id))) == {survivor.id}
    merge = session.scalars(select(Merge)).one()
    assert merge.reason == "identity" and merge.winner_id == survivor.id
    assert survivor.first_seen_at.isoformat().startswith("2026-01-01T01:00")


def test_a_shared_device_does_not_merge_two_members(client, web_source, session, clean_database):
    _, key = web_source
    send(client, key, call("identify", userId="dad", anonymousId="family-ipad", traits={"name": "王爸爸"}))
    send(client, key, call("identify", userId="son", anonymousId="family-ipad", traits={"name": "王儿子"}))
    process(clean_database)
    profiles = live_profiles(session)
    assert sorted(p.name for p in profiles) == ["王儿子", "王爸爸"]
    son = next(p for p in profiles if p.name == "王儿子")
    assert ("anonymous_id", "family-ipad") not in identities(session, son.id)
    assert session.scalars(select(Merge)).all() == []


def test_identity_limits_drop_the_extra_value_and_say_so(client, web_source, session, clean_database):
    _, key = web_source
    phones = ["13800000001", "13800000002", "13800000003", "13800000004"]
    for phone in phones:
        send(client, key, call("identify", userId="u-many", traits={"phone": phone}))
    process(clean_database)
    profile = live_profiles(session)[0]
    mobiles = {v for k, v in identities(session, profile.id) if k == "mobile"}
    assert len(mobiles) == 3 and "+8613800000004" not in mobiles


def test_two_profiles_holding_a_user_id_each_are_never_merged_by_a_phone(client, web_source, session,
                                                                         clean_database):
    _, key = web_source
    send(client, key, call("identify", userId="u-a", traits={"phone": "13900000001"}))
    send(client, key, call("identify", userId="u-b", traits={"email": "b@example.com"}))
    send(client, key, call("identify", anonymousId="kiosk", traits={"phone": "13900000001",
                                                                     "email": "b@example.com"}))
    process(clean_database)
    assert len(live_profiles(session)) == 2


def test_late_events_do_not_overwrite_newer_traits(client, web_source, session, clean_database):
    _, key = web_source
    send(client, key, call("identify", userId="u1", traits={"city": "杭州"}, timestamp="2026-03-02T00:00:00Z"))
    process(clean_database)
    send(client, key, call("identify", userId="u1", traits={"city": "上海", "vip": True},
                           timestamp="2026-03-01T00:00:00Z"))
    process(clean_database)
    profile = live_profiles(session)[0]
    assert profile.city == "杭州"
    assert profile.attributes == {"vip": True}


def test_bad_trait_values_are_noted_on_the_event_not_fatal(client, web_source, session, clean_database):
    _, key = web_source
    send(client, key, call("identify", userId="u1", traits={"phone": "12345", "birthday": "not-a-date",
                                                             "name": "韩梅梅"}))
    process(clean_database)
    profile = live_profiles(session)[0]
    assert profile.name == "韩梅梅" and profile.mobile is None and profile.birthday is None
    notes = session.scalars(select(Event)).one().context["kehu_notes"]
    assert any("phone" in n for n in notes) and any("birthday" in n for n in notes)


def test_manual_merge_and_unmerge_restore_everything(client, web_source, session, clean_database, tree, login):
    _, key = web_source
    send(client, key,
         call("identify", userId="p1", traits={"name": "赵敏", "city": "北京"}, timestamp="2026-02-01T00:00:00Z"),
         call("track", userId="p1", event="试驾", timestamp="2026-02-02T00:00:00Z"),
         call("identify", userId="p2", traits={"name": "赵敏", "email": "zm@example.com", "vip": "gold"},
              timestamp="2026-02-03T00:00:00Z"),
         call("track", userId="p2", event="下订", timestamp="2026-02-04T00:00:00Z"),
         call("track", userId="p2", event="交车", timestamp="2026-02-05T00:00:00Z"))
    process(clean_database)
    first, second = live_profiles(session)
    before = {p.id: (identities(session, p.id), Counter(session.scalars(
        select(Event.event).where(Event.profile_id == p.id)))) for p in (first, second)}
    admin = login("admin@example.com")
    merged = client.post("/api/v1/customers/merges", headers=admin,
                         json={"winner_id": first.id, "loser_id": second.id, "reason": "同一人"})
    assert merged.status_code == 201, merged.text
    view = client.get(f"/api/v1/customers/{first.id}?include=identities,events,merges", headers=admin).json()
    assert {e["event"] for e in view["events"]} == {"试驾", "下订", "交车", "identify"}
    assert view["profile"]["email"] == "zm@example.com" and view["profile"]["attributes"]["vip"] == "gold"
    assert client.get(f"/api/v1/customers/{second.id}", headers=admin).json()["profile"]["id"] == first.id
    undo = client.post(f"/api/v1/customers/merges/{merged.json()['id']}/undo", headers=admin)
    assert undo.status_code == 200 and undo.json()["id"] == second.id
    after = {p.id: (identities(session, p.id), Counter(session.scalars(
        select(Event.event).where(Event.profile_id == p.id)))) for p in live_profiles(session)}
    assert after == before
    restored = session.get(Profile, first.id)
    assert restored.email is None and "vip" not in restored.attributes
    assert client.post(f"/api/v1/customers/merges/{merged.json()['id']}/undo", headers=admin).status_code == 409


def test_unmerge_is_refused_while_the_winner_lives_inside_a_later_merge(session, tree, web_source, client,
                                                                        clean_database):
    _, key = web_source
    send(client, key, call("identify", userId="x1"), call("identify", userId="x2"), call("identify", userId="x3"))
    process(clean_database)
    a, b, c = live_profiles(session)
    first = service.merge_by_hand(session, tree.system, data=schemas.MergeRequest(winner_id=b.id, loser_id=a.id))
    service.merge_by_hand(session, tree.system, data=schemas.MergeRequest(winner_id=c.id, loser_id=b.id))
    with pytest.raises(Conflict):
        service.unmerge(session, tree.system, first.id)


def test_identity_traits_become_identities_not_attributes(client, web_source, session, clean_database):
    _, key = web_source
    send(client, key, call("identify", userId="u1", traits={"vin": "lsvaa4182e2123456", "dealer_customer_no": "D-1",
                                                             "wechat_openid": "o-123", "favourite_colour": "红"}))
    process(clean_database)
    profile = live_profiles(session)[0]
    assert profile.attributes == {"favourite_colour": "红"}
    assert {("vin", "LSVAA4182E2123456"), ("dealer_customer_no", "D-1"), ("wechat_openid", "o-123")} <= identities(
        session, profile.id)


def test_identity_rules_are_configurable_per_organisation(client, web_source, session, clean_database, login):
    admin = login("admin@example.com")
    rules = client.get("/api/v1/identity-rules", headers=admin).json()
    assert rules[0]["kind"] == "user_id" and rules[0]["max_per_profile"] == 1
    assert client.put("/api/v1/identity-rules/mobile", headers=login("a.manager@example.com"),
                      json={"priority": 40, "max_per_profile": 1}).status_code == 403
    bad = client.put("/api/v1/identity-rules/mobile", headers=admin, json={"priority": 0, "max_per_profile": 1})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.priority"
    assert client.put("/api/v1/identity-rules/mobile", headers=admin,
                      json={"priority": 40, "max_per_profile": 1}).status_code == 200
    _, key = web_source
    send(client, key, call("identify", userId="u1", traits={"phone": "13800000001"}),
         call("identify", userId="u1", traits={"phone": "13800000002"}))
    process(clean_database)
    profile = live_profiles(session)[0]
    assert {v for k, v in identities(session, profile.id) if k == "mobile"} == {"+8613800000001"}


def test_a_merge_inside_one_batch_keeps_what_comes_before_and_after_it(client, web_source, session,
                                                                      clean_database):
    """Profiles born in a batch are written early when a merge needs their ids; traits set before and after
    the merge, in the same batch, all land on the survivor."""
    _, key = web_source
    send(client, key,
         call("identify", anonymousId="a9", traits={"city": "杭州"}, timestamp="2026-02-01T01:00:00Z"),
         call("identify", userId="u9", traits={"name": "韩梅梅"}, timestamp="2026-02-01T02:00:00Z"),
         call("identify", userId="u9", anonymousId="a9", timestamp="2026-02-01T03:00:00Z"),
         call("identify", userId="u9", traits={"email": "HMM@example.com"}, timestamp="2026-02-01T04:00:00Z"),
         call("identify", anonymousId="a10", traits={"city": "宁波"}, timestamp="2026-02-01T05:00:00Z"))
    assert process(clean_database) == 1
    profiles = live_profiles(session)
    assert len(profiles) == 2
    survivor = next(p for p in profiles if p.name == "韩梅梅")
    assert (survivor.city, survivor.email, survivor.name_pinyin) == ("杭州", "hmm@example.com", "hanmeimei")
    assert identities(session, survivor.id) == {("user_id", "u9"), ("anonymous_id", "a9"),
                                                ("email", "hmm@example.com")}
    assert Counter(session.scalars(select(Event.profile_id))) == {survivor.id: 4,
                                                                 next(p.id for p in profiles if p.city == "宁波"): 1}
    assert session.scalars(select(Merge)).one().winner_id == survivor.id


MAPPING = {"姓名": "name", "手机": "mobile", "邮箱": "email", "性别": "gender", "生日": "birthday", "城市": "city",
           "爱好": "attribute:hobby"}


def _imported(number: int, row: dict[str, str], ts: str) -> ImportedRow:
    """A row of a profile file as the import reads it one by one."""
    reader = imports.RowReader({h: t for h, t in MAPPING.items() if h in row})
    return reader.row(1, number, [row[h] for h in reader.headers], "f.csv", datetime.fromisoformat(ts))


def _read(rows: dict[int, dict[str, str]], started: str) -> imports.ReadChunk:
    """Rows of a profile file (by number) as the import reads them column by column."""
    reader = imports.RowReader(MAPPING)
    return reader.read(1, [(n, [row.get(h, "") for h in reader.headers]) for n, row in rows.items()], "f.csv",
                       datetime.fromisoformat(started))


def _store(session, source, read: imports.ReadChunk, *odd: ImportedRow):  # type: ignore[no-untyped-def]
    return store_imported(session, source, read.columns, [*read.odd, *odd], received_at=datetime.now(UTC))


def test_a_new_person_from_an_import_is_the_profile_the_resolver_would_make(web_source, session):
    """A row whose identities are new skips the resolver; the row beside it, sharing a mobile with a row read
    one by one, goes through it. Both profiles hold the same values and times."""
    source, _ = web_source
    row = {"姓名": " 欧阳 娜娜 ", "性别": "女", "生日": "1990-02-03", "城市": "上海", "爱好": "越野"}
    read = _read({2: {**row, "手机": "13800000001", "邮箱": "a@example.com"},
                  3: {**row, "手机": "13800000002", "邮箱": "b@example.com"}}, "2026-05-01T08:00:00+00:00")
    assert read.columns.numbers == [2, 3] and not read.odd and not read.rejected
    stats = _store(session, source, read,
                   _imported(4, {"手机": "13800000002"}, "2026-04-01T08:00:00+00:00"))  # the same person, earlier
    session.commit()
    assert stats.profiles_created == 2 and stats.events == 3
    by_mobile = {p.mobile: p for p in live_profiles(session)}
    fast, slow = by_mobile["+8613800000001"], by_mobile["+8613800000002"]
    assert fast.trait_times == {"*": {"ts": "2026-05-01T08:00:00.000002+00:00", "src": source.id}}
    assert "*" not in slow.trait_times
    columns = ("name", "name_pinyin", "gender", "birthday", "city", "province", "attributes", "lifecycle_stage",
               "source", "unit_id", "owner_id", "first_seen_at", "last_seen_at")
    assert [getattr(fast, c) for c in columns[:-2]] == [getattr(slow, c) for c in columns[:-2]]
    assert (fast.name, fast.name_pinyin, fast.attributes) == ("欧阳娜娜", "ouyangnana", {"hobby": "越野"})
    assert fast.first_seen_at.isoformat() == "2026-05-01T08:00:00.000002+00:00"
    assert slow.first_seen_at.isoformat() == "2026-04-01T08:00:00+00:00"  # the earlier row's moment
    for key in ("name", "gender", "birthday", "city", "mobile", "email", "hobby"):  # each row's moment
        assert trait_time(fast, fast.trait_times, key) == {"ts": "2026-05-01T08:00:00.000002+00:00", "src": source.id}
        assert trait_time(slow, slow.trait_times, key) == {"ts": "2026-05-01T08:00:00.000003+00:00", "src": source.id}
    assert trait_time(fast, fast.trait_times, "province") == {}  # never set: any call may set it
    # each event names its profile's strongest identity (the mobile), whichever way the profile was made
    for profile in (fast, slow):
        kinds = {session.get(Identity, event.identity_id).kind for event in
                 session.scalars(select(Event).where(Event.profile_id == profile.id))}
        assert kinds == {"mobile"}


def test_traits_an_import_gave_together_lose_only_to_newer_calls(client, web_source, session, clean_database):
    source, key = web_source
    _store(session, source, _read({2: {"姓名": "王五", "手机": "13800000009"}}, "2026-06-01T00:00:00+00:00"))
    session.commit()
    # older than the import: the name stays, the city (which the file did not give) is taken
    send(client, key, call("identify", userId="w5", traits={"phone": "13800000009", "name": "老王", "city": "上海"},
                           timestamp="2026-01-01T00:00:00Z"))
    process(clean_database)
    profile = live_profiles(session)[0]
    assert (profile.name, profile.city) == ("王五", "上海")
    send(client, key, call("identify", userId="w5", traits={"name": "王小五", "city": "杭州"},
                           timestamp="2026-03-01T00:00:00Z"))
    process(clean_database)
    profile = live_profiles(session)[0]
    assert (profile.name, profile.city) == ("王五", "杭州")  # the name is June's, the city January's
    send(client, key, call("identify", userId="w5", traits={"name": "王小五"}, timestamp="2026-07-01T00:00:00Z"))
    process(clean_database)
    profile = live_profiles(session)[0]
    assert profile.name == "王小五" and profile.trait_times["name"]["ts"].startswith("2026-07-01")
