"""Off-the-shelf client libraries pointed at kehu work unchanged: Segment's analytics-python and RudderStack's
Python SDK (which gzips its batches by default) talk to a real kehu server over HTTP, as they would in production;
the requests of the browser libraries (Segment's analytics.js, RudderStack's JavaScript SDK) are replayed as they
send them. tests/e2e/test_browser_tracking.py sends them from a real browser on another origin."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from rudderstack.analytics.client import Client as RudderStackClient
from rudderstack.analytics.request import APIError as RudderStackAPIError
from segment.analytics.client import Client as SegmentClient
from segment.analytics.request import APIError as SegmentAPIError
from sqlalchemy import func, select

from kehu.cdp.models import Account, Event, Identity, IngestBatch, Profile
from tests.factories.cdp import basic, process


@pytest.fixture
def kehu_host(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The test app served by uvicorn on a free local port, for clients that speak real HTTP."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _send_a_customer_journey(client) -> None:  # type: ignore[no-untyped-def]
    """What a shop's back end sends about one visitor who becomes a known customer."""
    client.page(anonymous_id="anon-7", name="车型首页", properties={"url": "https://shop.example/models"})
    client.screen(anonymous_id="anon-7", name="配置器", properties={"model": "ID.4"})
    client.alias(previous_id="anon-7", user_id="u-7")
    client.identify(user_id="u-7", traits={"name": "李娜", "phone": "138 1234 5678", "email": "Li.Na@Example.com"})
    client.track(user_id="u-7", event="test_drive_booked", properties={"model": "ID.4", "dealer": "HZ001"})
    client.group(user_id="u-7", group_id="co-42", traits={"name": "某某科技"})
    client.flush()


def _the_customer(session) -> Profile:  # type: ignore[no-untyped-def]
    session.expire_all()
    profiles = session.scalars(select(Profile).where(Profile.merged_into_id.is_(None))).all()
    assert len(profiles) == 1, [p.id for p in profiles]  # the anonymous visitor became the identified customer
    return profiles[0]


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_segment_analytics_python_works_unchanged(kehu_host, web_source, session, clean_database, gzip):
    _, key = web_source
    errors = []
    client = SegmentClient(key, host=kehu_host, sync_mode=True, gzip=gzip, max_retries=0,
                           on_error=lambda error, batch: errors.append(error))
    _send_a_customer_journey(client)
    assert not errors
    process(clean_database)
    customer = _the_customer(session)
    assert (customer.name, customer.mobile, customer.email) == ("李娜", "+8613812345678", "li.na@example.com")
    events = session.scalars(select(Event).where(Event.profile_id == customer.id)).all()
    assert sorted(e.type for e in events) == ["alias", "group", "identify", "page", "screen", "track"]
    track = next(e for e in events if e.type == "track")
    assert (track.event, track.properties) == ("test_drive_booked", {"model": "ID.4", "dealer": "HZ001"})
    assert track.context["library"]["name"] == "analytics-python"
    assert {(i.kind, i.value) for i in session.scalars(select(Identity).where(Identity.profile_id == customer.id))
            } >= {("user_id", "u-7"), ("anonymous_id", "anon-7"), ("mobile", "+8613812345678")}
    assert session.scalar(select(Account.name).where(Account.external_id == "co-42")) == "某某科技"


def test_rudderstack_python_sdk_works_unchanged_with_its_gzipped_batches(kehu_host, web_source, session,
                                                                         clean_database):
    _, key = web_source
    client = RudderStackClient(key, host=kehu_host, sync_mode=True, max_retries=0)
    assert client.gzip  # the SDK's default: every batch arrives with Content-Encoding: gzip
    _send_a_customer_journey(client)
    process(clean_database)
    customer = _the_customer(session)
    assert (customer.name, customer.mobile) == ("李娜", "+8613812345678")
    events = session.scalars(select(Event).where(Event.profile_id == customer.id)).all()
    assert sorted(e.type for e in events) == ["alias", "group", "identify", "page", "screen", "track"]
    assert next(e for e in events if e.type == "track").context["library"]["name"] == "analytics-python"


@pytest.mark.parametrize(("library", "api_error"), [(SegmentClient, SegmentAPIError),
                                                     (RudderStackClient, RudderStackAPIError)],
                         ids=["segment", "rudderstack"])
def test_a_refused_batch_reaches_the_library_with_kehus_reason(kehu_host, web_source, session, library, api_error):
    client = library("wk_not_a_key", host=kehu_host, sync_mode=True, max_retries=0)
    with pytest.raises(api_error) as refused:
        client.track(user_id="u-1", event="官网访问")
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")
    assert "write key" in refused.value.message
    assert session.scalar(select(func.count()).select_from(IngestBatch)) == 0


# -- Segment's browser library, analytics.js: each call to /v1/<letter> as text/plain with the write key in the
# body (a request a browser sends cross-origin without a preflight), settings first from its CDN address

SHOP = "https://shop.example"


def test_analytics_js_calls_are_accepted_from_the_shops_own_site(client, web_source, session, clean_database):
    _, key = web_source
    settings = client.get(f"/v1/projects/{key}/settings", headers={"Origin": SHOP})
    assert settings.status_code == 200 and settings.headers["access-control-allow-origin"] == "*"
    segment_io = settings.json()["integrations"]["Segment.io"]
    assert (segment_io["apiKey"], segment_io["apiHost"], segment_io["protocol"]) == (key, "testserver/v1", "http")
    assert list(settings.json()["integrations"]) == ["Segment.io"]  # to kehu only
    assert settings.json()["metrics"]["sampleRate"] == 0  # and no usage metrics sent to Segment
    plain = {"Content-Type": "text/plain", "Origin": SHOP}
    calls = [("p", {"type": "page", "anonymousId": "anon-3", "name": "车型首页", "context": {"page": {"url": SHOP}}}),
             ("i", {"type": "identify", "anonymousId": "anon-3", "userId": "u-3", "traits": {"phone": "13912345678"}}),
             ("t", {"type": "track", "userId": "u-3", "event": "test_drive_booked", "properties": {"model": "ID.4"}}),
             ("b", {"batch": [{"type": "track", "userId": "u-3", "event": "brochure_downloaded"}]}),
             ("import", {"batch": [{"type": "track", "userId": "u-3", "event": "showroom_visited",
                                    "properties": {"blob": "x" * 40_000}}]})]  # Segment's older batch name
    for letter, body in calls:
        response = client.post(f"/v1/{letter}", headers=plain, content=json.dumps({**body, "writeKey": key}))
        assert response.status_code == 200, (letter, response.text)
        assert response.headers["access-control-allow-origin"] == "*"
    process(clean_database)
    customer = _the_customer(session)
    assert customer.mobile == "+8613912345678"
    assert sorted(session.scalars(select(Event.event).where(Event.profile_id == customer.id))) == [
        "brochure_downloaded", "identify", "test_drive_booked", "车型首页"]  # the 40 KB call refused in its batch


def test_only_the_segment_paths_are_open_to_other_sites(client, tree, login):
    preflight = client.options("/v1/batch", headers={
        "Origin": SHOP, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, content-encoding"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    refused = client.post("/v1/t", headers={"Content-Type": "text/plain", "Origin": SHOP},
                          content=json.dumps({"type": "track", "userId": "u", "event": "x", "writeKey": "wk_nope"}))
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "*"  # readable there
    assert refused.json()["code"] == "unauthorized"
    assert refused.headers["www-authenticate"].startswith("Basic ")  # the write key is the Basic user name
    assert client.get("/v1/projects/wk_nope/settings").status_code == 401
    headers = {**login("admin@example.com"), "Origin": SHOP}
    api = client.get("/api/v1/customers", headers=headers)
    assert api.status_code == 200 and "access-control-allow-origin" not in api.headers
    api_preflight = client.options("/api/v1/customers", headers={"Origin": SHOP,
                                                                 "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in api_preflight.headers


def test_rudderstack_js_reads_its_source_config_from_kehu(client, web_source):
    """RudderStack's JavaScript SDK with configUrl …/v1 asks /v1/sourceConfig/ (key in the query and as Basic auth)
    and then sends each call to its dataPlaneUrl's /v1/<type>, JSON with Basic auth (preflighted)."""
    source, key = web_source
    asked = client.get("/v1/sourceConfig/", params={"p": "npm", "v": "3.34.1", "writeKey": key},
                       headers={**basic(key), "Origin": SHOP})
    assert asked.status_code == 200 and asked.headers["access-control-allow-origin"] == "*"
    config = asked.json()["source"]
    assert (config["id"], config["writeKey"], config["enabled"], config["destinations"]) == (str(source.id), key,
                                                                                            True, [])
    assert config["config"]["statsCollection"] == {"errors": {"enabled": False}, "metrics": {"enabled": False}}
    assert client.get("/v1/sourceConfig", headers=basic(key)).json()["source"]["writeKey"] == key
    assert client.get("/v1/sourceConfig/", params={"writeKey": "wk_nope"}).status_code == 401
