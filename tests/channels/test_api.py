"""The channels through HTTP: problem+json naming the field at fault, another organisation's or dealer's ids
refused wherever a request carries them, secrets never read back, an SMS broadcast through Tencent Cloud's
documented API (faked at its HTTP boundary) settled by the receipts Tencent posts back, and the messages on the
customer's timeline."""

from __future__ import annotations

import json

import httpx
import respx
from sqlalchemy import select

from kehu.channels import tracking
from kehu.channels.dispatch import public_base
from tests.channels.conftest import dispatch_all, run_due

PROBLEM = "application/problem+json"


def _headers(login, user) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return login(user.email)


def test_errors_are_problems_naming_the_field(client, login, audience):
    hq = _headers(login, audience.hq_marketer)
    bad = client.post("/api/v1/templates", headers=hq, json={
        "name": "坏", "channel": "email", "content": {"zh": {"subject": "{{ name", "html": "<p>x</p>"}}})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)
    assert bad.json()["errors"][0]["field"] == "content.zh.subject"
    missing = client.post("/api/v1/broadcasts", headers=hq, json={"name": "无模板", "segment_id": audience.segment_id})
    assert missing.status_code == 422 and any("template_id" in e["field"] for e in missing.json()["errors"])
    other_org = client.post("/api/v1/broadcasts", headers=_headers(login, audience.tree.other_org_admin), json={
        "name": "越界", "template_id": 1, "segment_id": audience.segment_id})
    assert other_org.status_code == 422
    assert {e["field"] for e in other_org.json()["errors"]} == {"template_id", "segment_id"}
    assert {e["code"] for e in other_org.json()["errors"]} == {"unknown"}  # not told apart from "no such id"


def test_a_dealer_reaches_nothing_of_another_dealer_through_the_api(client, login, audience):
    a = _headers(login, audience.a_marketer)
    b = _headers(login, audience.b_marketer)
    template = client.post("/api/v1/templates", headers=a, json={
        "name": "A店短信", "channel": "sms", "content": {"zh": {"text": "【A店】{{ name }}您好"}}}).json()
    assert client.get(f"/api/v1/templates/{template['id']}", headers=b).status_code == 404
    assert client.post(f"/api/v1/templates/{template['id']}/preview", headers=b, json={}).status_code == 404
    wang = audience.customers["wang"].id  # dealer B's customer: A may not preview a template on them
    refused = client.post(f"/api/v1/templates/{template['id']}/preview", headers=a, json={"profile_id": wang})
    assert refused.status_code == 422 and refused.json()["errors"][0]["code"] == "out_of_scope"
    assert client.get(f"/api/v1/messages?profile_id={wang}", headers=a).status_code == 422
    templates_b = client.get("/api/v1/templates", headers=b).json()["items"]
    assert template["id"] not in [t["id"] for t in templates_b]
    # HQ's templates are there for every dealer to use
    hq_template = client.post("/api/v1/templates", headers=_headers(login, audience.hq_marketer), json={
        "name": "总部模板", "channel": "sms", "content": {"zh": {"text": "【示范汽车】{{ name }}"}}}).json()
    assert hq_template["id"] in [t["id"] for t in client.get("/api/v1/templates", headers=b).json()["items"]]
    assert client.put("/api/v1/communication-policy", headers=a, json={}).status_code == 403


def test_secrets_are_written_never_read_back(client, login, audience):
    admin = _headers(login, audience.tree.admin)
    saved = client.put("/api/v1/channel-accounts", headers=admin, json={
        "channel": "sms", "provider": "tencent_sms", "config": {"sdk_app_id": "1400000000", "sign_name": "示范汽车"},
        "secrets": {"secret_id": "AKIDexample", "secret_key": "very-secret"}})
    assert saved.status_code == 200, saved.text
    assert saved.json()["secret_names"] == ["secret_id", "secret_key"] and "very-secret" not in saved.text
    listed = client.get("/api/v1/channel-accounts", headers=admin)
    assert "very-secret" not in listed.text and "AKIDexample" not in listed.text
    # saving again without secrets keeps them; a provider the channel has not is refused by name
    again = client.put("/api/v1/channel-accounts", headers=admin, json={
        "channel": "sms", "provider": "tencent_sms", "config": {"sdk_app_id": "1400000000", "sign_name": "新签名"}})
    assert again.status_code == 200 and again.json()["secret_names"] == ["secret_id", "secret_key"]
    wrong = client.put("/api/v1/channel-accounts", headers=admin, json={
        "channel": "sms", "provider": "smtp", "config": {}})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "provider"
    nohost = client.put("/api/v1/channel-accounts", headers=admin, json={
        "channel": "email", "provider": "smtp", "config": {"port": 25, "from_address": "a@b.cn"}})
    assert nohost.status_code == 422 and nohost.json()["errors"][0]["field"] == "config.host"


def test_sms_broadcast_through_tencent_settled_by_its_receipts(client, login, session, clean_database, audience):
    admin = _headers(login, audience.tree.admin)
    account = client.put("/api/v1/channel-accounts", headers=admin, json={
        "channel": "sms", "provider": "tencent_sms", "config": {"sdk_app_id": "1400000000", "sign_name": "示范汽车"},
        "secrets": {"secret_id": "AKIDexample", "secret_key": "very-secret"}}).json()
    hq = _headers(login, audience.hq_marketer)
    template = client.post("/api/v1/templates", headers=hq, json={
        "name": "试驾邀请", "channel": "sms", "content": {
            "zh": {"text": "【示范汽车】{{ name }}您好，邀您试驾"}, "provider_template": "1234567",
            "params": ["{{ name }}", "{{ dealer.name }}"]}}).json()
    broadcast = client.post("/api/v1/broadcasts", headers=hq, json={
        "name": "试驾季", "template_id": template["id"], "segment_id": audience.segment_id}).json()
    assert client.post(f"/api/v1/broadcasts/{broadcast['id']}/submit", headers=hq).json()["status"] == "scheduled"
    run_due(clean_database)
    sent: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append(body)
        assert request.headers["Authorization"].startswith("TC3-HMAC-SHA256 Credential=AKIDexample/")
        serial = f"2433:{len(sent)}"
        return httpx.Response(200, json={"Response": {"SendStatusSet": [{
            "SerialNo": serial, "PhoneNumber": body["PhoneNumberSet"][0], "Code": "Ok", "Message": "send success"}],
            "RequestId": "r"}})

    with respx.mock(assert_all_called=True) as mock:
        mock.post("https://sms.tencentcloudapi.com/").mock(side_effect=answer)
        assert dispatch_all(clean_database) == 2  # 张伟 and 王芳 granted SMS
    assert {b["PhoneNumberSet"][0] for b in sent} == {"+8613800000001", "+8613800000004"}
    zhang = next(b for b in sent if b["PhoneNumberSet"][0] == "+8613800000001")
    assert zhang["TemplateId"] == "1234567" and zhang["TemplateParamSet"] == ["张伟", "上海浦东店"]

    hook = tracking.receipt_url(public_base(), account["id"]).split("://", 1)[1].split("/", 1)[1]
    receipts = [{"user_receive_time": "2026-12-03 10:00:00", "nationcode": "86", "mobile": "13800000001",
                 "report_status": "SUCCESS", "errmsg": "DELIVRD", "description": "用户短信送达成功",
                 "sid": "2433:1"},
                {"user_receive_time": "2026-12-03 10:00:01", "nationcode": "86", "mobile": "13800000004",
                 "report_status": "FAIL", "errmsg": "MK:0001", "description": "空号", "sid": "2433:2"}]
    posted = client.post(f"/{hook}", content=json.dumps(receipts, ensure_ascii=False).encode())
    assert posted.status_code == 200 and posted.json()["settled"] == 2
    assert client.post(f"/{hook[:-3]}xyz", content=b"[]").status_code == 404  # a made-up receipt address
    report = client.get(f"/api/v1/broadcasts/{broadcast['id']}/report", headers=hq).json()
    assert report["delivered"] == 1 and report["bounced"] == 1 and report["skipped"]["no_consent"] == 3

    timeline = client.get(f"/api/v1/customers/{audience.customers['zhang'].id}/timeline",
                          headers=_headers(login, audience.tree.admin)).json()["items"]
    messages = [item for item in timeline if item["kind"] == "message"]
    assert messages and messages[0]["action"] == "delivered" and messages[0]["changes"]["channel"] == "sms"


def test_wechat_checks_its_server_address_and_its_receipts_settle_messages(client, login, session, audience):
    import hashlib

    from kehu.channels.models import Message
    from kehu.core.db import utcnow

    admin = _headers(login, audience.tree.admin)
    account = client.put("/api/v1/channel-accounts", headers=admin, json={
        "channel": "wechat", "provider": "wechat_mp", "config": {"app_id": "wx123", "server_token": "kehu-token"},
        "secrets": {"app_secret": "s3cret"}}).json()
    hook = "/" + tracking.receipt_url(public_base(), account["id"]).split("://", 1)[1].split("/", 1)[1]

    def signed(timestamp: str, nonce: str) -> dict[str, str]:
        signature = hashlib.sha1("".join(sorted(["kehu-token", timestamp, nonce])).encode()).hexdigest()
        return {"signature": signature, "timestamp": timestamp, "nonce": nonce}

    assert client.get(hook, params={**signed("1700000000", "abc"), "echostr": "hello"}).text == "hello"
    forged = {**signed("1700000000", "abc"), "nonce": "other", "echostr": "hello"}
    assert client.get(hook, params=forged).status_code == 404
    zhang = audience.customers["zhang"]
    now = utcnow()
    message = Message(org_id=zhang.org_id, unit_id=zhang.unit_id, profile_id=zhang.id, send_key="test:wx",
                      sender_unit_id=audience.tree.hq.id, channel="wechat", purpose="service", address="o-zhang",
                      status="sent", created_at=now, due_at=now, sent_at=now, provider="wechat_mp",
                      provider_message_id="200163836")
    session.add(message)
    session.commit()
    receipt = (b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o-zhang]]></FromUserName>"
               b"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
               b"<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200163836</MsgID>"
               b"<Status><![CDATA[failed:user block]]></Status></xml>")
    assert client.post(hook, params=forged, content=receipt).status_code == 404  # not WeChat's
    answered = client.post(hook, params=signed("1700000001", "n2"), content=receipt)
    assert answered.status_code == 200 and answered.text == "success"
    session.expire_all()
    assert session.get(Message, message.id).status == "bounced"
    from kehu.channels.models import Suppression
    assert session.scalar(select(Suppression.reason).where(Suppression.address == "o-zhang")) == "unsubscribed"


def test_webhook_broadcast_posts_each_customer_signed(client, login, session, clean_database, audience):
    from kehu.channels.providers.webhook import verify_signature

    admin = _headers(login, audience.tree.admin)
    client.put("/api/v1/channel-accounts", headers=admin, json={
        "channel": "webhook", "provider": "webhook", "config": {"url": "https://partner.example.com/kehu"},
        "secrets": {"signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}})
    hq = _headers(login, audience.hq_marketer)
    template = client.post("/api/v1/templates", headers=hq, json={
        "name": "同步经销商系统", "channel": "webhook", "purpose": "transactional", "content": {
            "zh": {"text": ""}, "payload": {"name": "{{ name }}", "dealer": "{{ dealer.name }}"}}})
    assert template.status_code == 201, template.text
    broadcast = client.post("/api/v1/broadcasts", headers=hq, json={
        "name": "同步", "template_id": template.json()["id"], "segment_id": audience.segment_id}).json()
    client.post(f"/api/v1/broadcasts/{broadcast['id']}/submit", headers=hq)
    run_due(clean_database)
    received: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        assert verify_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", dict(request.headers), request.content)
        received.append(json.loads(request.content))
        return httpx.Response(204)

    with respx.mock() as mock:
        mock.post("https://partner.example.com/kehu").mock(side_effect=answer)
        assert dispatch_all(clean_database) == 5  # one per customer, no consent asked of a transactional hook
    assert sorted(r["data"]["name"] for r in received) == sorted(p.name for p in audience.customers.values())
    assert len({r["id"] for r in received}) == 5


def test_the_campaign_calendar_shows_what_reaches_customers_when(client, login, audience):
    hq = _headers(login, audience.hq_marketer)
    template = client.post("/api/v1/templates", headers=hq, json={
        "name": "日历", "channel": "sms", "content": {"zh": {"text": "x"}}}).json()
    soon = client.post("/api/v1/broadcasts", headers=hq, json={
        "name": "下周", "template_id": template["id"], "segment_id": audience.segment_id,
        "scheduled_at": "2027-01-05T02:00:00Z"}).json()
    client.post("/api/v1/broadcasts", headers=hq, json={
        "name": "更晚", "template_id": template["id"], "segment_id": audience.segment_id,
        "scheduled_at": "2027-03-05T02:00:00Z"})
    month = client.get("/api/v1/broadcasts/calendar", headers=hq,
                       params={"start": "2027-01-01T00:00:00", "end": "2027-02-01T00:00:00"})
    assert month.status_code == 200 and [b["name"] for b in month.json()] == ["下周"]
    assert month.json()[0]["id"] == soon["id"]
    too_long = client.get("/api/v1/broadcasts/calendar", headers=hq,
                          params={"start": "2027-01-01T00:00:00Z", "end": "2027-12-01T00:00:00Z"})
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "end"
    # a dealer sees HQ's campaigns that reach its customers once they are under way (not HQ's drafts)
    b_marketer = _headers(login, audience.b_marketer)
    window = {"start": "2027-01-01T00:00:00Z", "end": "2027-02-01T00:00:00Z"}
    assert client.get("/api/v1/broadcasts/calendar", headers=b_marketer, params=window).json() == []
    client.post(f"/api/v1/broadcasts/{soon['id']}/submit", headers=hq)
    assert [x["name"] for x in client.get("/api/v1/broadcasts/calendar", headers=b_marketer,
                                          params=window).json()] == ["下周"]
    assert client.post(f"/api/v1/broadcasts/{soon['id']}/pause", headers=b_marketer).status_code == 403
    # and a dealer's own broadcast is no other dealer's business
    a_marketer = _headers(login, audience.a_marketer)
    mine = client.post("/api/v1/broadcasts", headers=a_marketer, json={
        "name": "A店", "template_id": template["id"], "segment_id": audience.segment_id,
        "scheduled_at": "2027-01-09T02:00:00Z"}).json()
    client.post(f"/api/v1/broadcasts/{mine['id']}/submit", headers=a_marketer)
    assert [x["name"] for x in client.get("/api/v1/broadcasts/calendar", headers=b_marketer,
                                          params=window).json()] == ["下周"]
    assert client.get(f"/api/v1/broadcasts/{mine['id']}", headers=b_marketer).status_code == 404


def test_retrying_messages_names_the_field_and_hides_other_dealers_ids(client, login, session, clean_database,
                                                                         audience):
    from kehu.channels.models import Message

    hq = _headers(login, audience.hq_marketer)
    template = client.post("/api/v1/templates", headers=hq, json={
        "name": "重发", "channel": "email", "content": {"zh": {"subject": "您好", "html": "<p>x</p>"}}}).json()
    made = client.post("/api/v1/broadcasts", headers=hq, json={
        "name": "重发测试", "template_id": template["id"], "segment_id": audience.segment_id}).json()
    client.post(f"/api/v1/broadcasts/{made['id']}/submit", headers=hq)
    empty = client.post("/api/v1/messages/retry", headers=hq, json={})
    assert empty.status_code == 422 and empty.headers["content-type"].startswith(PROBLEM)
    assert empty.json()["errors"][0]["field"] == "message_ids"
    run_due(clean_database)
    zhang = session.scalar(select(Message.id).where(Message.profile_id == audience.customers["zhang"].id))
    b = _headers(login, audience.b_marketer)
    foreign = client.post("/api/v1/messages/retry", headers=b, json={"message_ids": [zhang]})
    assert foreign.status_code == 422 and foreign.json()["errors"][0]["field"] == "message_ids"
    assert "张伟" not in foreign.text and "zhangwei" not in foreign.text
    queued = client.post("/api/v1/messages/retry", headers=hq, json={"message_ids": [zhang]})
    assert queued.status_code == 200 and queued.json() == {"queued": 0}  # queued already, not failed: untouched


def test_wechat_safe_mode_receipts_are_checked_and_decrypted(client, login, session, audience):
    """安全模式: WeChat encrypts each push (AES-256-CBC keyed by the EncodingAESKey) and signs the cipher text with
    msg_signature; the receipt settles its message only when both hold and the AppID inside is ours."""
    import base64
    import hashlib
    import os

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from kehu.channels.models import Message
    from kehu.core.db import utcnow

    aes_key = base64.b64encode(os.urandom(32)).decode()[:43]
    admin = _headers(login, audience.tree.admin)
    bad_key = client.put("/api/v1/channel-accounts", headers=admin, json={
        "channel": "wechat", "provider": "wechat_mp", "config": {"app_id": "wx123", "server_token": "kehu-token"},
        "secrets": {"app_secret": "s3cret", "encoding_aes_key": "too-short"}})
    assert bad_key.status_code == 422 and bad_key.json()["errors"][0]["field"] == "secrets.encoding_aes_key"
    account = client.put("/api/v1/channel-accounts", headers=admin, json={
        "channel": "wechat", "provider": "wechat_mp", "config": {"app_id": "wx123", "server_token": "kehu-token"},
        "secrets": {"app_secret": "s3cret", "encoding_aes_key": aes_key}}).json()
    assert "encoding_aes_key" in account["secret_names"] and aes_key not in json.dumps(account)
    hook = "/" + tracking.receipt_url(public_base(), account["id"]).split("://", 1)[1].split("/", 1)[1]
    zhang = audience.customers["zhang"]
    now = utcnow()
    message = Message(org_id=zhang.org_id, unit_id=zhang.unit_id, profile_id=zhang.id, send_key="test:wx-safe",
                      sender_unit_id=audience.tree.hq.id, channel="wechat", purpose="service", address="o-zhang",
                      status="sent", created_at=now, due_at=now, sent_at=now, provider="wechat_mp",
                      provider_message_id="200163899")
    session.add(message)
    session.commit()
    receipt = (b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o-zhang]]></FromUserName>"
               b"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
               b"<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200163899</MsgID>"
               b"<Status><![CDATA[success]]></Status></xml>")

    def sealed(plain: bytes, app_id: str = "wx123") -> str:  # what WeChat does (its docs' sample code, in short)
        key = base64.b64decode(aes_key + "=")
        data = os.urandom(16) + len(plain).to_bytes(4, "big") + plain + app_id.encode()
        pad = 32 - len(data) % 32
        encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        return base64.b64encode(encryptor.update(data + bytes([pad]) * pad) + encryptor.finalize()).decode()

    def push(encrypted: str, *, token: str = "kehu-token") -> httpx.Response:
        timestamp, nonce = "1700000002", "n3"
        signature = hashlib.sha1("".join(sorted(["kehu-token", timestamp, nonce])).encode()).hexdigest()
        msg_signature = hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()
        body = f"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        return client.post(hook, params={"signature": signature, "timestamp": timestamp, "nonce": nonce,
                                         "encrypt_type": "aes", "msg_signature": msg_signature},
                           content=body.encode())

    assert push(sealed(receipt), token="forged").status_code == 404  # msg_signature wrong
    assert push(sealed(receipt, app_id="wx-someone-else")).status_code == 404  # another account's push
    plain_signature = hashlib.sha1("".join(sorted(["kehu-token", "1700000003", "n4"])).encode()).hexdigest()
    assert client.post(hook, params={"signature": plain_signature, "timestamp": "1700000003", "nonce": "n4"},
                       content=receipt).status_code == 404  # in safe mode a plaintext push is not WeChat's
    session.expire_all()
    assert session.get(Message, message.id).status == "sent"
    answered = push(sealed(receipt))
    assert answered.status_code == 200 and answered.text == "success"
    session.expire_all()
    assert session.get(Message, message.id).status == "delivered"


def test_a_suppressed_address_is_kept_as_messages_carry_it(client, login, audience):
    admin = _headers(login, audience.tree.admin)
    mobile = client.post("/api/v1/suppressions", headers=admin, json={"channel": "sms", "address": "138 0000 0004"})
    assert mobile.status_code == 201 and mobile.json()["address"] == "+8613800000004"  # as 王芳's messages carry it
    mail = client.post("/api/v1/suppressions", headers=admin, json={"channel": "email", "address": " LiNa@Example.com"})
    assert mail.status_code == 201 and mail.json()["address"] == "lina@example.com"
    bad = client.post("/api/v1/suppressions", headers=admin, json={"channel": "email", "address": "no-such-address"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "address"
    found = client.get("/api/v1/suppressions", headers=admin, params={"address": "13800000004"}).json()
    assert [s["address"] for s in found] == ["+8613800000004"]


def test_hostile_receipts_are_refused_not_crashed_on(client, login, audience):
    import hashlib

    admin = _headers(login, audience.tree.admin)
    account = client.put("/api/v1/channel-accounts", headers=admin, json={
        "channel": "wechat", "provider": "wechat_mp", "config": {"app_id": "wx123", "server_token": "kehu-token"},
        "secrets": {"app_secret": "s3cret"}}).json()
    hook = "/" + tracking.receipt_url(public_base(), account["id"]).split("://", 1)[1].split("/", 1)[1]
    assert client.get(hook, params={"signature": "é", "timestamp": "1", "nonce": "n", "echostr": "x"}
                      ).status_code == 404
    signature = hashlib.sha1("".join(sorted(["kehu-token", "1700000005", "n5"])).encode()).hexdigest()
    signed = {"signature": signature, "timestamp": "1700000005", "nonce": "n5"}
    for body in (b"<xml><MsgType>event", b'<!DOCTYPE x [<!ENTITY a "b">]><xml>&a;</xml>', "\u00ff".encode("latin-1")):
        assert client.post(hook, params=signed, content=body).status_code == 404


def test_a_reader_without_pii_read_sees_no_personal_value_in_a_message(client, login, clean_database, audience):
    hq = _headers(login, audience.hq_marketer)  # HQ marketing: customers' personal data masked
    template = client.post("/api/v1/templates", headers=hq, json={
        "name": "确认", "channel": "email", "purpose": "transactional",
        "content": {"zh": {"subject": "{{ name }}（{{ mobile }}），您的预约已确认", "html": "<p>x</p>"}}}).json()
    made = client.post("/api/v1/broadcasts", headers=hq, json={
        "name": "确认", "template_id": template["id"], "segment_id": audience.segment_id}).json()
    client.post(f"/api/v1/broadcasts/{made['id']}/submit", headers=hq)
    run_due(clean_database)
    dispatch_all(clean_database)
    seen = client.get("/api/v1/messages", headers=hq, params={"broadcast_id": made["id"]}).json()["items"]
    zhang = next(m for m in seen if m["profile_id"] == audience.customers["zhang"].id)
    assert zhang["subject"] == "张伟（+86138****0001），您的预约已确认" and zhang["address"] == "z***@example.com"
    admin = _headers(login, audience.tree.admin)  # with pii.read: as it was sent
    whole = client.get(f"/api/v1/messages/{zhang['id']}", headers=admin).json()
    assert whole["subject"] == "张伟（+8613800000001），您的预约已确认"
