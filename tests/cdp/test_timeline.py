"""The Customer 360 timeline interleaves what the customer did with what was done to their record: newest
first, one cursor over both, nothing repeated or skipped across pages, personal data masked, scope kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from kehu.core.audit import AuditRecord
from kehu.core.pagination import encode_cursor
from tests.cdp.test_customer_access import create
from tests.factories.cdp import basic, call, make_source, process
from tests.factories.tenancy import make_user


def walk(client, headers, profile_id: int, limit: int) -> list[dict]:  # type: ignore[type-arg]
    items, cursor = [], None
    while True:
        url = f"/api/v1/customers/{profile_id}/timeline?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=headers)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_events_and_changes_interleave_newest_first_across_pages(client, tree, login, session, clean_database):
    sales = tree.principal(session, tree.a_sales)
    profile = create(session, sales, name="张三", mobile="13811112222", unit_id=tree.dealer_a.id)
    _, key = make_source(session, tree.system, "官网", tree.dealer_a.id)
    session.commit()
    now = datetime.now(UTC).replace(microsecond=0)
    moments = [now - timedelta(days=d) for d in (30, 20, 10)]
    client.post("/v1/batch", headers=basic(key), json={"batch": [
        call("track", userId="u-1", event="test_drive_booked", timestamp=moments[0].isoformat(),
             context={"traits": {"phone": "13811112222"}}),
        call("page", userId="u-1", name="ID.4", timestamp=moments[1].isoformat()),
        call("track", userId="u-1", event="quote_requested", timestamp=moments[2].isoformat()),
    ]})
    process(clean_database)
    manager = login("a.manager@example.com")
    assert client.patch(f"/api/v1/customers/{profile.id}", headers=manager,
                        json={"city": "上海", "mobile": "13899998888"}).status_code == 200
    assert client.post(f"/api/v1/customers/{profile.id}/consents", headers=manager,
                       json={"channel": "sms", "purpose": "marketing", "granted": True,
                             "evidence": "到店签字单 A-17"}).status_code in (200, 201)

    everything = walk(client, manager, profile.id, limit=50)
    paged = walk(client, manager, profile.id, limit=2)
    assert [(i["kind"], i["id"]) for i in paged] == [(i["kind"], i["id"]) for i in everything]
    stamps = [datetime.fromisoformat(i["ts"]) for i in everything]
    assert stamps == sorted(stamps, reverse=True)
    kinds = [i["kind"] for i in everything]
    assert kinds.count("event") == 3 and kinds.count("change") == 3  # created, updated, consent
    assert kinds[-3:] == ["event", "event", "event"]  # the older events sit below today's changes
    update = next(i for i in everything if i.get("action") == "update")
    assert update["changes"]["city"] == "上海" and update["changes"]["mobile"] == "+8613899998888"
    assert update["actor"] == "李店长"
    consent = next(i for i in everything if i.get("action") == "consent")
    assert consent["changes"]["evidence"] == "到店签字单 A-17"

    # The 360 call includes the first page; a viewer without pii.read sees the phone masked.
    first = client.get(f"/api/v1/customers/{profile.id}?include=timeline&limit=3", headers=manager).json()
    assert len(first["timeline"]) == 3 and first["timeline_next_cursor"]
    make_user(session, tree.system, tree.hq, "hq_analyst", email="analyst@example.com", name="分析师")
    session.commit()
    masked = walk(client, login("analyst@example.com"), profile.id, limit=50)
    masked_update = next(i for i in masked if i.get("action") == "update")
    assert masked_update["changes"]["mobile"] == "+86138****8888"


def test_a_change_and_events_at_one_instant_page_one_by_one_without_loss(client, tree, login, session,
                                                                        clean_database):
    """The cursor holds (instant, stream, id): paging one item at a time through rows of two streams that share
    their instant repeats and skips none of them, the change above the events it came with."""
    sales = tree.principal(session, tree.a_sales)
    profile = create(session, sales, name="李四", mobile="13811113333", unit_id=tree.dealer_a.id)
    _, key = make_source(session, tree.system, "官网", tree.dealer_a.id)
    session.commit()
    instant = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    client.post("/v1/batch", headers=basic(key), json={"batch": [
        call("track", userId="u-2", event=name, timestamp=instant.isoformat(),
             context={"traits": {"phone": "13811113333"}}) for name in ("page_view", "model_viewed", "quote_requested")
    ]})
    process(clean_database)
    session.execute(update(AuditRecord).where(AuditRecord.entity == "profiles", AuditRecord.entity_id == profile.id)
                    .values(ts=instant))
    session.commit()
    manager = login("a.manager@example.com")
    everything = walk(client, manager, profile.id, limit=50)
    assert [i["kind"] for i in everything] == ["change", "event", "event", "event"]
    assert len({i["ts"] for i in everything}) == 1
    one_by_one = walk(client, manager, profile.id, limit=1)
    assert [(i["kind"], i["id"]) for i in one_by_one] == [(i["kind"], i["id"]) for i in everything]


def test_timeline_keeps_scope_and_rejects_forged_cursors(client, tree, login, session):
    profile = create(session, tree.principal(session, tree.a_sales), name="张三", unit_id=tree.dealer_a.id)
    session.commit()
    assert client.get(f"/api/v1/customers/{profile.id}/timeline", headers=login("b.sales@example.com")
                      ).status_code == 404
    assert client.get(f"/api/v1/customers/{profile.id}/timeline",
                      headers=login("boss@other.example.com")).status_code == 404
    forged = client.get(f"/api/v1/customers/{profile.id}/timeline?cursor=bm9wZQ",
                        headers=login("a.sales@example.com"))
    assert forged.status_code == 422 and forged.json()["errors"][0]["field"] == "cursor"
    # a time without its zone (every cursor this API gives carries one): 422, not the database's error
    naive = encode_cursor(["2024-01-01T00:00:00", 0, 5])
    forged = client.get(f"/api/v1/customers/{profile.id}/timeline?cursor={naive}",
                        headers=login("a.sales@example.com"))
    assert forged.status_code == 422 and forged.json()["errors"][0]["field"] == "cursor"


def test_orders_of_the_customer_appear_as_changes(client, tree, login, session):
    profile = create(session, tree.system, name="王五", mobile="13811114444", unit_id=tree.dealer_a.id)
    session.commit()
    admin = login("admin@example.com")
    made = client.post("/api/v1/orders", headers=admin, json={
        "profile_id": profile.id, "external_id": "SO-77", "ordered_at": "2025-05-01T10:00:00+08:00",
        "lines": [{"sku": "ID4", "name": "ID.4", "price": "259800", "quantity": 1}]})
    assert made.status_code == 201, made.text
    items = walk(client, admin, profile.id, limit=10)
    order = next(i for i in items if i.get("entity") == "orders")
    assert order["action"] == "create" and order["changes"]["external_id"] == "SO-77"
