"""E-mail over real SMTP (a local aiosmtpd server): the message arrives multipart with its unsubscribe headers,
its links and pixel come back through kehu, one-click unsubscribe withdraws consent with evidence, a refused
mailbox is suppressed, and no token can be forged."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from kehu.cdp.models import ConsentRecord
from kehu.channels import rendering, schemas, service
from kehu.channels.models import Message, Suppression
from kehu.core.settings import get_settings
from tests.channels.conftest import dispatch_all, email_template, run_due, send_now, statuses


@pytest.fixture
def with_smtp(session, audience, smtp_sink):  # type: ignore[no-untyped-def]
    sink, port = smtp_sink
    service.save_account(session, audience.tree.system, schemas.ChannelAccountIn(
        channel="email", provider="smtp", name="集团邮件", unit_id=audience.tree.hq.id,
        config={"host": "127.0.0.1", "port": port, "from_address": "news@kehu-motors.example.com",
                "from_name": "示范汽车"}))
    session.commit()
    return sink


def _links(html: str) -> list[str]:
    return re.findall(r'<a\b[^>]*href="([^"]+)"', html)


def _path(url: str) -> str:
    return urlsplit(url).path


def test_email_arrives_and_what_the_customer_does_comes_back(session, clean_database, client, audience, with_smtp):
    hq = audience.principal(session, audience.hq_marketer)
    broadcast = send_now(session, hq, email_template(session, hq).id, audience.segment_id)
    run_due(clean_database)
    assert dispatch_all(clean_database) == 3
    [mail] = with_smtp.to("zhangwei@example.com")
    assert mail["Subject"] == "张伟，春季保养优惠"
    assert mail["From"] == "示范汽车 <news@kehu-motors.example.com>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Message-ID"].startswith("<kehu-")
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "您好 张伟" in text and "您好 张伟" in html
    assert "@media" in html and "googleapis" not in html  # MJML's responsive layout, no fonts from Google
    offer, unsubscribe_link = _links(html)[:2]
    assert "/t/c/" in offer and "/t/u/" in unsubscribe_link

    opened = client.get(re.search(r'<img src="([^"]+)"', html).group(1).replace("http://127.0.0.1:8000", ""))
    assert opened.status_code == 200 and opened.headers["content-type"] == "image/gif"
    followed = client.get(_path(offer), follow_redirects=False)
    assert followed.status_code == 302
    assert followed.headers["location"] == "https://dealer.example.com/offer?x=1&y=2"

    header_link = mail["List-Unsubscribe"].strip("<>")
    asked = client.get(_path(header_link))
    assert asked.status_code == 200 and "退订" in asked.text  # a page that asks; a GET changes nothing
    done = client.post(_path(header_link), content=b"List-Unsubscribe=One-Click",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200 and "退订成功" in done.text

    session.expire_all()
    zhang = audience.customers["zhang"]
    message = session.scalar(select(Message).where(Message.profile_id == zhang.id,
                                                   Message.broadcast_id == broadcast.id))
    assert message.opened_at and message.clicked_at and message.unsubscribed_at
    latest = session.scalars(select(ConsentRecord).where(
        ConsentRecord.profile_id == zhang.id, ConsentRecord.channel == "email")
        .order_by(ConsentRecord.ts.desc(), ConsentRecord.id.desc())).first()
    assert latest.status == "withdrawn" and f"message {message.id}" in latest.evidence
    assert "one-click" in latest.evidence
    report = service.list_messages(session, hq, broadcast_id=broadcast.id)
    assert len(report.items) == 5

    again = send_now(session, hq, email_template(session, hq, name="第二封").id, audience.segment_id, "第二封")
    run_due(clean_database)
    assert statuses(session, again.id)[zhang.id][0] == "skipped"  # unsubscribed: no more marketing


def test_tokens_cannot_be_forged(session, clean_database, client, audience, with_smtp):
    hq = audience.principal(session, audience.hq_marketer)
    send_now(session, hq, email_template(session, hq).id, audience.segment_id)
    run_due(clean_database)
    dispatch_all(clean_database)
    [mail] = with_smtp.to("zhangwei@example.com")
    html = mail.get_body(("html",)).get_content()
    offer = _path(_links(html)[0])
    token = offer.rsplit("/", 1)[1]
    value = rendering.unsign(get_settings().effective_secret_key(), "click", token)
    message_id, _ = value.split(" ", 1)
    secret = get_settings().effective_secret_key()
    # the same message, another address: kehu made no such token, so it redirects nowhere
    forged = rendering.sign("not-the-key", "click", f"{message_id} https://evil.example.com/")
    assert client.get(f"/t/c/{forged}", follow_redirects=False).status_code == 404
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"/t/c/{tampered}", follow_redirects=False).status_code == 404
    # a click token is no unsubscribe token, and another customer's message id cannot be swapped in
    assert client.post(f"/t/u/{token}").status_code == 404
    other = session.scalar(select(Message.id).where(Message.profile_id == audience.customers["li"].id))
    assert client.post(f"/t/u/{rendering.sign('wrong', 'unsubscribe', str(other))}").status_code == 404
    assert client.post(f"/t/u/{rendering.sign(secret, 'unsubscribe', str(other))}").status_code == 200  # genuine


def test_a_refused_mailbox_bounces_and_is_suppressed(session, clean_database, audience, with_smtp):
    with_smtp.unknown.add("wangfang@example.com")
    hq = audience.principal(session, audience.hq_marketer)
    broadcast = send_now(session, hq, email_template(session, hq).id, audience.segment_id)
    run_due(clean_database)
    dispatch_all(clean_database)
    wang = audience.customers["wang"]
    message = session.scalar(select(Message).where(Message.profile_id == wang.id,
                                                   Message.broadcast_id == broadcast.id))
    assert message.status == "bounced" and "550" in message.error
    suppression = session.scalar(select(Suppression).where(Suppression.address == "wangfang@example.com"))
    assert suppression.reason == "hard_bounce"
    service_template = email_template(session, hq, name="召回", purpose="service")
    recall = send_now(session, hq, service_template.id, audience.segment_id, "召回")
    run_due(clean_database)
    assert statuses(session, recall.id)[wang.id] == ("skipped", "suppressed")  # a hard bounce stops everything


def test_a_test_send_reaches_the_author_only(session, clean_database, audience, with_smtp):
    from kehu.channels import templates
    hq = audience.principal(session, audience.hq_marketer)
    template = email_template(session, hq)
    templates.test_send(session, hq, template.id, schemas.TestSend(profile_id=audience.customers["zhang"].id))
    session.commit()
    assert dispatch_all(clean_database) == 1
    [mail] = with_smtp.to("hq.mkt@example.com")
    assert "张伟" in mail["Subject"]
    assert with_smtp.to("zhangwei@example.com") == []


def test_a_message_is_handed_over_in_two_writes_where_the_server_pipelines(smtp_sink):
    """RFC 2920: MAIL, RCPT and DATA in one write where the server advertises PIPELINING (the message itself only
    after DATA's 354), one command at a time where it does not; a long Chinese subject with an emoji arrives
    whole through the RFC 2047 encoded words, however they are cut."""
    from kehu.channels.providers import Outgoing
    from kehu.channels.providers.smtp import Smtp

    sink, port = smtp_sink
    smtp = Smtp({"host": "127.0.0.1", "port": port, "from_address": "news@example.com"}, {})
    connection = smtp._connect()
    connection.ehlo()
    writes: list[object] = []
    send = connection.send
    connection.send = lambda data: (writes.append(data), send(data))[1]  # type: ignore[method-assign]
    subject = "张伟先生，您的爱车保养提醒：春季保养节工时八折、免费检测空调与轮胎，预约从速 🚗 " * 2
    outcome = smtp.send(Outgoing(1, "email", "zhangwei@example.com", "zh", subject=subject, html="<p>您好</p>",
                                 text="您好"))
    assert outcome.status == "sent"
    assert len(writes) == (2 if sink.pipelining else 4)
    assert sink.to("zhangwei@example.com")[0]["subject"] == subject
    sink.unknown.add("nobody@example.com")
    refused = smtp.send(Outgoing(2, "email", "nobody@example.com", "zh", subject="x", text="x"))
    assert refused.status == "suppress" and "5.1.1" in (refused.error or "")
    assert smtp.send(Outgoing(3, "email", "lina@example.com", "zh", subject="再次", text="x")).status == "sent"
    smtp.close()


def test_a_subject_cannot_add_headers_and_only_the_addresss_fault_suppresses_it(smtp_sink):
    from kehu.channels.providers import Outgoing
    from kehu.channels.providers.smtp import Smtp

    sink, port = smtp_sink
    smtp = Smtp({"host": "127.0.0.1", "port": port, "from_address": "news@example.com"}, {})
    sent = smtp.send(Outgoing(1, "email", "zhangwei@example.com", "zh", subject="Hello\r\nBcc: all@example.com",
                              text="x"))
    assert sent.status == "sent"
    mail = sink.to("zhangwei@example.com")[0]
    assert mail["bcc"] is None and mail["subject"] == "Hello  Bcc: all@example.com"
    sink.replies["relay@example.com"] = "554 5.7.1 <relay@example.com>: Relay access denied"
    denied = smtp.send(Outgoing(2, "email", "relay@example.com", "zh", subject="x", text="x"))
    assert denied.status == "failed"  # the relay's refusal is ours to fix, not the customer's address
    sink.unknown.add("gone@example.com")
    assert smtp.send(Outgoing(3, "email", "gone@example.com", "zh", subject="x", text="x")).status == "suppress"
    smtp.close()
