"""/v1 follows the Segment HTTP API: Basic auth with the write key, every call type, batch limits, dedupe."""

from __future__ import annotations

import gzip
import json
import zlib

from sqlalchemy import func, select

from kehu.cdp.models import Event, IngestBatch, Profile
from tests.factories.cdp import basic, call, process


def count(session, model, *where) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_every_call_type_is_accepted_and_becomes_an_event(client, web_source, session, clean_database):
    _, key = web_source
    calls = {
        "identify": {"userId": "u1", "traits": {"name": "张伟", "phone": "13812345678", "email": "ZW@Example.com"}},
        "track": {"userId": "u1", "event": "test_drive_booked", "properties": {"model": "ID.4"}},
        "page": {"userId": "u1", "name": "车型首页", "properties": {"url": "https://x/models"}},
        "screen": {"anonymousId": "a1", "name": "配置器"},
        "group": {"userId": "u1", "groupId": "co-9", "traits": {"name": "某某科技"}},
        "alias": {"previousId": "a1", "userId": "u1"},
    }
    for kind, fields in calls.items():
        response = client.post(f"/v1/{kind}", headers=basic(key), json={"messageId": f"{kind}-1", **fields})
        assert response.status_code == 200, response.text
        assert response.json()["success"] is True
    assert count(session, IngestBatch) == 6
    process(clean_database)
    assert count(session, Event) == 6
    profiles = session.scalars(select(Profile).where(Profile.merged_into_id.is_(None))).all()
    assert len(profiles) == 1  # the screen's anonymous visitor was aliased to u1
    profile = profiles[0]
    assert (profile.name, profile.mobile, profile.email) == ("张伟", "+8613812345678", "zw@example.com")
    assert profile.name_pinyin == "zhangwei"
    assert set(session.scalars(select(Event.type))) == set(calls)


def test_batch_keeps_valid_calls_and_reports_each_invalid_one(client, web_source, session, clean_database):
    _, key = web_source
    body = {"batch": [
        call("track", userId="u1", event="官网访问"),
        call("track", userId="u1"),  # no event name
        call("identify", traits={"name": "无名"}),  # no userId / anonymousId
        call("spaceship", userId="u1"),
        "not an object",
        call("page", anonymousId="a9", timestamp="yesterday"),
        call("page", anonymousId="a9", name="首页"),
    ], "context": {"library": {"name": "analytics-python"}}}
    response = client.post("/v1/batch", headers=basic(key), json=body)
    assert response.status_code == 200
    result = response.json()
    assert result["accepted"] == 2
    reasons = {r["index"]: r["reason"] for r in result["rejected"]}
    assert set(reasons) == {1, 2, 3, 4, 5}
    assert "event" in reasons[1] and "userId or anonymousId" in reasons[2] and "timestamp" in reasons[5]
    process(clean_database)
    events = session.scalars(select(Event).order_by(Event.id)).all()
    assert [e.event for e in events] == ["官网访问", "首页"]
    assert events[0].context["library"]["name"] == "analytics-python"  # batch context applies to each call


def test_repeated_message_id_is_stored_once(client, web_source, session, clean_database):
    _, key = web_source
    message = {"userId": "u7", "event": "quote_requested", "messageId": "same-id"}
    for _ in range(3):
        assert client.post("/v1/track", headers=basic(key), json=message).status_code == 200
    client.post("/v1/batch", headers=basic(key), json={"batch": [{**message, "type": "track"}] * 2})
    process(clean_database)
    assert count(session, Event, Event.message_id == "same-id") == 1


def test_unknown_fields_are_kept_in_properties_and_context(client, web_source, session, clean_database):
    _, key = web_source
    client.post("/v1/track", headers=basic(key), json={
        "userId": "u1", "event": "配置车辆", "dealerHint": "SH001",
        "properties": {"colour": "珍珠白"}, "context": {"campaign": {"source": "douyin"}, "ip": "1.2.3.4"}})
    process(clean_database)
    event = session.scalars(select(Event)).one()
    assert event.properties == {"colour": "珍珠白", "dealerHint": "SH001"}
    assert event.context["campaign"] == {"source": "douyin"}


def test_bad_write_key_malformed_json_and_oversize_are_refused(client, web_source, session):
    _, key = web_source
    assert client.post("/v1/track", headers=basic("wk_nope"), json={"userId": "u", "event": "x"}).status_code == 401
    assert client.post("/v1/track", json={"userId": "u", "event": "x"}).status_code == 401
    bad = client.post("/v1/track", headers={**basic(key), "Content-Type": "application/json"}, content=b"{nope")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "body"
    big_message = {"userId": "u", "event": "x", "properties": {"blob": "x" * 33_000}}
    too_big = client.post("/v1/track", headers=basic(key), json=big_message)
    assert too_big.status_code == 400  # as Segment answers an oversized call (413 elsewhere in kehu)
    assert too_big.json()["errors"] == [{"field": "body", "message": f"larger than the limit of {32 * 1024} bytes",
                                         "code": "too_large"}]
    assert too_big.json()["type"].endswith("/payload-too-large") and too_big.json()["limit_bytes"] == 32 * 1024
    in_batch = client.post("/v1/batch", headers=basic(key), json={"batch": [{**big_message, "type": "track"}]})
    assert in_batch.status_code == 200 and "32 KB" in in_batch.json()["rejected"][0]["reason"]
    huge = {"batch": [call("track", userId="u", event="x", properties={"p": "y" * 20_000}) for _ in range(30)]}
    assert len(json.dumps(huge)) > 500 * 1024
    response = client.post("/v1/batch", headers=basic(key), json=huge)
    assert response.status_code == 400 and response.json()["limit_bytes"] == 500 * 1024
    single_invalid = client.post("/v1/track", headers=basic(key), json={"userId": "u"})
    assert single_invalid.status_code == 400 and single_invalid.json()["errors"][0]["field"] == "event"
    assert count(session, IngestBatch) == 0


def test_compressed_bodies_are_unpacked_within_the_same_limits(client, web_source, session, clean_database):
    """Segment's and RudderStack's libraries may gzip a batch (RudderStack's does by default)."""
    _, key = web_source
    batch = {"batch": [call("track", userId="u1", event="官网访问", messageId=f"m-{n}") for n in range(3)]}
    gzipped = {**basic(key), "Content-Type": "application/json", "Content-Encoding": "gzip"}
    response = client.post("/v1/batch", headers=gzipped, content=gzip.compress(json.dumps(batch).encode()))
    assert response.status_code == 200 and response.json()["accepted"] == 3, response.text
    deflated = client.post("/v1/identify", headers={**gzipped, "Content-Encoding": "deflate"},
                           content=zlib.compress(json.dumps({"userId": "u2", "messageId": "m-9"}).encode()))
    assert deflated.status_code == 200, deflated.text
    assert count(session, IngestBatch) == 2
    process(clean_database)
    assert count(session, Event) == 4

    # 40 KB of JSON that gzip packs into a few hundred bytes: past a single call's 32 KB once unpacked
    packed = gzip.compress(json.dumps({"userId": "u", "event": "x", "properties": {"p": "y" * 40_000}}).encode())
    assert len(packed) < 1024
    bomb = client.post("/v1/track", headers=gzipped, content=packed)
    assert bomb.status_code == 400 and bomb.json()["limit_bytes"] == 32 * 1024
    assert bomb.json()["type"].endswith("/payload-too-large") and bomb.json()["errors"][0]["field"] == "body"
    for body, encoding in ((b"not gzip at all", "gzip"), (gzip.compress(b'{"batch": []}')[:-6], "gzip"),
                           (gzip.compress(b'{"batch": []}') + b"junk", "gzip")):
        bad = client.post("/v1/batch", headers={**gzipped, "Content-Encoding": encoding}, content=body)
        assert bad.status_code == 400, bad.text
        assert bad.headers["content-type"] == "application/problem+json"
        assert bad.json()["errors"][0]["field"] == "Content-Encoding"
    unknown = client.post("/v1/batch", headers={**gzipped, "Content-Encoding": "br"}, content=b"...")
    assert unknown.status_code == 415 and unknown.headers["accept-encoding"] == "gzip, deflate"
    assert unknown.json()["errors"][0] == {"field": "Content-Encoding", "message": "unsupported content coding 'br'",
                                           "code": "unsupported"}
    assert count(session, IngestBatch) == 2  # nothing of the refused bodies was stored


def test_a_batch_keeps_its_first_2500_calls_and_reports_the_rest(client, web_source, session):
    _, key = web_source
    calls = [{"type": "track", "userId": "u", "event": "e", "messageId": f"m{n}"} for n in range(2502)]
    response = client.post("/v1/batch", headers=basic(key), json={"batch": calls})
    assert response.status_code == 200 and response.json()["accepted"] == 2500
    assert [(r["index"], r["messageId"]) for r in response.json()["rejected"]] == [(2500, "m2500"), (2501, "m2501")]
    assert "2500" in response.json()["rejected"][0]["reason"]
    assert session.scalar(select(IngestBatch.message_count)) == 2500


def test_write_key_in_body_and_disabled_source(client, web_source, session, login):
    source, key = web_source
    assert client.post("/v1/batch", json={"writeKey": key, "batch": [call("track", userId="u", event="x")]}
                       ).status_code == 200
    admin = login("admin@example.com")
    assert client.patch(f"/api/v1/sources/{source.id}?is_active=false", headers=admin).status_code == 200
    assert client.post("/v1/track", headers=basic(key), json={"userId": "u", "event": "x"}).status_code == 401


def test_sources_api_shows_the_write_key_once(client, tree, login):
    admin = login("admin@example.com")
    created = client.post("/api/v1/sources", headers=admin, json={"name": "App", "kind": "app"})
    assert created.status_code == 201
    assert created.json()["write_key"].startswith("wk_")
    assert all("write_key" not in s for s in client.get("/api/v1/sources", headers=admin).json())
    sales = login("a.sales@example.com")
    assert client.post("/api/v1/sources", headers=sales, json={"name": "x"}).status_code == 403


def test_a_batch_that_collides_in_copy_is_tried_again_not_set_aside(client, web_source, session, clean_database,
                                                                     monkeypatch):
    """Two workers storing one new identity at once: COPY raises the driver's own unique violation (not
    SQLAlchemy's). The batch stays pending for the next round, and then goes through."""
    import psycopg

    from kehu.cdp import identity

    _, key = web_source
    assert client.post("/v1/batch", headers=basic(key), json={"batch": [
        call("identify", userId="u-copy", traits={"name": "王五"})]}).status_code == 200
    real = identity.process_batch

    def collides(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise psycopg.errors.UniqueViolation("duplicate key value violates unique constraint")

    monkeypatch.setattr(identity, "process_batch", collides)
    with clean_database.unit_of_work() as s:
        identity.drain_inbox(s)
    batch = session.scalars(select(IngestBatch)).one()
    assert (batch.status, batch.attempts) == ("pending", 1)
    monkeypatch.setattr(identity, "process_batch", real)
    process(clean_database)
    assert count(session, Event) == 1 and count(session, IngestBatch, IngestBatch.status == "processed") == 1


def test_small_batches_are_processed_together_each_event_keeping_its_arrival(client, web_source, session,
                                                                             clean_database, monkeypatch):
    """A browser's batches of a few calls are resolved several at once (one lookup, one write of the profiles);
    the result is what one batch of them all would give, in time order, and each event keeps its own batch's
    arrival time."""
    from datetime import timedelta

    from kehu.cdp import identity

    _, key = web_source
    bodies = [[call("track", anonymousId="anon-7", event="page_view", timestamp="2026-05-01T10:00:00Z")],
              [call("identify", anonymousId="anon-7", userId="u-7", traits={"name": "赵六"},
                    timestamp="2026-05-01T10:01:00Z")],
              [call("track", userId="u-7", event="test_drive_booked", timestamp="2026-05-01T10:02:00Z")]]
    for body in bodies:
        assert client.post("/v1/batch", headers=basic(key), json={"batch": body}).status_code == 200
    batches = session.scalars(select(IngestBatch).order_by(IngestBatch.id)).all()
    arrivals = {}
    for n, batch in enumerate(batches):  # three arrival times a minute apart
        batch.received_at = batch.received_at - timedelta(minutes=3 - n)
        arrivals[batch.messages[0]["message_id"]] = batch.received_at
    session.commit()
    calls = []
    real = identity.process_messages

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(args[2]))
        return real(*args, **kwargs)

    monkeypatch.setattr(identity, "process_messages", counted)
    with clean_database.unit_of_work() as s:
        assert identity.drain_inbox(s, limit=10) == 3
    assert calls == [3]  # one resolution for the three batches
    assert count(session, IngestBatch, IngestBatch.status == "processed") == 3
    events = session.scalars(select(Event).order_by(Event.ts)).all()
    assert [e.event for e in events] == ["page_view", "identify", "test_drive_booked"]
    assert len({e.profile_id for e in events}) == 1  # the visitor and the user are one person
    assert {e.message_id: e.received_at for e in events} == arrivals


def test_a_failing_batch_among_small_ones_is_set_aside_and_the_others_go_through(client, web_source, session,
                                                                                  clean_database, monkeypatch):
    from kehu.cdp import identity

    _, key = web_source
    for user in ("u-1", "u-bad", "u-3"):
        assert client.post("/v1/batch", headers=basic(key), json={"batch": [
            call("identify", userId=user, traits={"name": user})]}).status_code == 200
    real = identity.process_messages

    def fails_on_bad(*args, **kwargs):  # type: ignore[no-untyped-def]
        if any(m.get("user_id") == "u-bad" for m in args[2]):
            raise ValueError("a call no worker can store")
        return real(*args, **kwargs)

    monkeypatch.setattr(identity, "process_messages", fails_on_bad)
    while True:  # as the worker drains: after the three together failed, the oldest alone, then the rest
        with clean_database.unit_of_work() as s:
            if not identity.drain_inbox(s, limit=10):
                break
    session.expire_all()
    statuses = {b.messages[0]["user_id"]: b.status for b in session.scalars(select(IngestBatch))}
    assert statuses == {"u-1": "processed", "u-bad": "failed", "u-3": "processed"}
    assert count(session, Event) == 2


def test_calls_of_two_sources_processed_together_meet_in_the_order_they_arrived(
        client, web_source, dealer_source, session, clean_database):
    """Batches processed together keep the inbox's order across sources: a dealer's order_placed, then the web's
    order_paid for it (grouped by source, the payment came first and found no order to mark paid)."""
    from kehu.cdp import identity
    from kehu.cdp.models import Order

    _, web = web_source
    _, dealer = dealer_source
    bodies = [(web, [call("track", userId="u-1", event="page_view", timestamp="2026-05-01T10:00:00Z")]),
              (dealer, [call("track", userId="u-1", event="order_placed", properties={"order_id": "X1", "total": 10},
                             timestamp="2026-05-01T10:01:00Z")]),
              (web, [call("track", userId="u-1", event="order_paid", properties={"order_id": "X1"},
                          timestamp="2026-05-01T10:02:00Z")])]
    for key, body in bodies:
        assert client.post("/v1/batch", headers=basic(key), json={"batch": body}).status_code == 200
    with clean_database.unit_of_work() as s:
        assert identity.drain_inbox(s, limit=10) == 3
    session.expire_all()
    assert session.scalar(select(Order.status).where(Order.external_id == "X1")) == "paid"


def test_a_worker_transaction_holds_at_most_500_calls_or_one_batch(client, web_source, session, clean_database):
    from kehu.cdp import identity

    _, key = web_source
    for size in (300, 300, 10):
        batch = [call("track", anonymousId=f"a-{size}-{n}", event="page_view") for n in range(size)]
        assert client.post("/v1/batch", headers=basic(key), json={"batch": batch}).status_code == 200
    done = []
    while True:
        with clean_database.unit_of_work() as s:
            n = identity.drain_inbox(s, limit=10)
        if not n:
            break
        done.append(n)
    assert done == [1, 2]  # 300 alone (300 + 300 is over 500), then 300 + 10
    assert count(session, Event) == 610
