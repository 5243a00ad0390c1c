"""Customers with histories for the segment tests, sent through /v1 and the worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kehu.cdp import fields
from tests.factories.cdp import basic, call, make_source, process

NOW = datetime.now(UTC)


def ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


@pytest.fixture
def people(client, tree, session, clean_database):  # type: ignore[no-untyped-def]
    """Five customers at three dealers with the histories the rules below ask about."""
    fields.create_field(session, tree.system, {"key": "budget", "label_zh": "预算", "label_en": "Budget",
                                               "type": "number"})
    fields.create_field(session, tree.system, {"key": "interests", "label_zh": "兴趣", "label_en": "Interests",
                                               "type": "multi_option", "options": [
                                                   {"value": "suv", "zh": "SUV", "en": "SUV"},
                                                   {"value": "ev", "zh": "电动", "en": "EV"}]})
    keys = {}
    for unit in (tree.dealer_a, tree.dealer_b, tree.dealer_c):
        _, keys[unit.code] = make_source(session, tree.system, f"{unit.name}展厅", unit.id)
    session.commit()

    def send(dealer: str, *calls):  # type: ignore[no-untyped-def]
        response = client.post("/v1/batch", headers=basic(keys[dealer]), json={"batch": list(calls)})
        assert response.status_code == 200 and not response.json()["rejected"], response.text

    # 张伟 (A): Shanghai, budget 300k, two recent ID.4 test drives, big spender, SMS consent, WeChat.
    send("SH001",
         call("identify", userId="zw", timestamp=ago(60), traits={
             "name": "张伟", "phone": "13800000001", "city": "上海", "lifecycle_stage": "customer",
             "birthday": "1985-06-01", "budget": 300000, "interests": ["suv", "ev"], "wechat_openid": "o-zw",
             "consent": {"sms": {"marketing": True}}}),
         call("track", userId="zw", event="test_drive_booked", timestamp=ago(10), properties={"model": "ID.4"}),
         call("track", userId="zw", event="test_drive_booked", timestamp=ago(3), properties={"model": "ID.4"}),
         call("track", userId="zw", event="Order Completed", timestamp=ago(2),
              properties={"order_id": "SO-1", "total": 250000, "products": [{"sku": "ID4", "price": 250000}]}))
    # 李娜 (A): Shanghai, one old ID.6 test drive, consent granted then withdrawn.
    send("SH001",
         call("identify", userId="ln", timestamp=ago(400), traits={
             "name": "李娜", "phone": "13800000002", "city": "上海", "lifecycle_stage": "lead",
             "birthday": "1992-02-10", "budget": 150000, "interests": ["ev"],
             "consent": {"sms": {"marketing": True}}}),
         call("track", userId="ln", event="test_drive_booked", timestamp=ago(200), properties={"model": "ID.6"}),
         call("identify", userId="ln", timestamp=ago(5), traits={"consent": {"sms": {"marketing": False}}}))
    # 王芳 (B): Hangzhou, no budget, three small orders long ago.
    send("HZ001",
         call("identify", userId="wf", timestamp=ago(900), traits={
             "name": "王芳", "phone": "13800000003", "city": "杭州", "lifecycle_stage": "owner"}),
         *[call("track", userId="wf", event="Order Completed", timestamp=ago(800 - n),
                properties={"order_id": f"SO-W{n}", "total": 1000, "products": [{"sku": "MAT", "price": 1000}]})
           for n in range(3)])
    # 刘洋 (C): Beijing, one ID.4 test drive today, nothing else.
    send("BJ001",
         call("identify", userId="ly", timestamp=ago(1), traits={
             "name": "刘洋", "phone": "13800000004", "city": "北京", "lifecycle_stage": "prospect"}),
         call("track", userId="ly", event="test_drive_booked", timestamp=ago(0.5), properties={"model": "ID.4"}))
    # 陈静 (C): Beijing, just a name and a mobile.
    send("BJ001", call("identify", userId="cj", timestamp=ago(30), traits={
        "name": "陈静", "phone": "13800000005", "city": "北京", "lifecycle_stage": "prospect"}))
    process(clean_database)
    return tree


