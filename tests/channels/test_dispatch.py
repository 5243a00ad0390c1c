"""The dispatcher's guarantee: a dispatcher killed in the middle of a send leaves nobody skipped and nobody
with two messages. Messages it had claimed but not handed over go back to the queue; one it handed to a provider
that cannot recognise a repeat (SMTP) and never heard back about is marked unknown, not sent again; through a
provider that can (the outbox, webhooks), it is sent again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta

from sqlalchemy import func, select, update

from kehu.cdp.models import ConsentRecord, Profile
from kehu.channels import schemas, service
from kehu.channels.dispatch import claim
from kehu.channels.models import Message
from kehu.core.db import utcnow
from kehu.segments.models import SegmentMember
from tests.channels.conftest import Sink, _free_port, dispatch_all, email_template, run_due, send_now

CROWD = 60


def _crowd(session, audience) -> None:  # type: ignore[no-untyped-def]
    """Sixty more customers with e-mail consent in the audience's segment, written as rows (fast)."""
    tree = audience.tree
    now = utcnow()
    profiles = [Profile(org_id=tree.org.id, unit_id=tree.dealer_c.id, name=f"客户{n}", email=f"c{n}@example.com",
                        lifecycle_stage="prospect", attributes={}, trait_times={}) for n in range(CROWD)]
    session.add_all(profiles)
    session.flush()
    session.add_all([ConsentRecord(org_id=tree.org.id, profile_id=p.id, channel="email", purpose="marketing",
                                   status="granted", ts=now, evidence="form") for p in profiles])
    session.add_all([SegmentMember(segment_id=audience.segment_id, profile_id=p.id, org_id=tree.org.id,
                                   added_at=now) for p in profiles])
    session.commit()


def _expire_leases(session) -> None:  # type: ignore[no-untyped-def]
    session.execute(update(Message).where(Message.status == "sending")
                    .values(lease_until=utcnow() - timedelta(seconds=1)))
    session.commit()


def test_claimed_but_not_handed_messages_go_back_to_the_queue(session, clean_database, audience):
    hq = audience.principal(session, audience.hq_marketer)
    send_now(session, hq, email_template(session, hq).id, audience.segment_id)
    run_due(clean_database)
    with clean_database.unit_of_work() as other:
        assert len(claim(other)) == 3  # a dispatcher claims them and dies before handing any over
    assert dispatch_all(clean_database) == 0  # still leased: nobody else takes them
    _expire_leases(session)
    assert dispatch_all(clean_database) == 3
    session.expire_all()
    sent = session.scalars(select(Message).where(Message.status == "sent")).all()
    assert len(sent) == 3 and all(m.attempts == 2 for m in sent)


def test_an_unanswered_hand_over_is_sent_again_only_where_a_repeat_is_recognised(session, clean_database, audience,
                                                                               smtp_sink):
    sink, port = smtp_sink
    tree = audience.tree
    hq = audience.principal(session, audience.hq_marketer)
    send_now(session, hq, email_template(session, hq).id, audience.segment_id)
    run_due(clean_database)
    with clean_database.unit_of_work() as other:  # dies right after handing two over to the outbox
        for message in claim(other)[:2]:
            message.handed_at, message.provider = utcnow(), "outbox"
    _expire_leases(session)
    assert dispatch_all(clean_database) == 3  # the outbox recognises a repeat: all three go
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Message).where(Message.status == "sent")) == 3

    service.save_account(session, tree.system, schemas.ChannelAccountIn(
        channel="email", provider="smtp", unit_id=tree.hq.id,
        config={"host": "127.0.0.1", "port": port, "from_address": "news@example.com"}))
    session.commit()
    again = send_now(session, hq, email_template(session, hq, name="再发").id, audience.segment_id, "再发")
    run_due(clean_database)
    with clean_database.unit_of_work() as other:  # dies after handing one over to SMTP
        claimed = claim(other)
        claimed[0].handed_at, claimed[0].provider = utcnow(), "smtp"
        lost = claimed[0].id
    _expire_leases(session)
    assert dispatch_all(clean_database) == 2
    session.expire_all()
    settled = dict(session.execute(select(Message.id, Message.status).where(Message.broadcast_id == again.id,
                                                                            Message.status != "skipped")).all())
    assert settled.pop(lost) == "unknown"
    assert set(settled.values()) == {"sent"}
    assert len(sink.received) == 2  # the unknown one was not sent a second time


CHILD = textwrap.dedent("""
    import sys, time
    from kehu.core.db import Database
    from kehu.channels.dispatch import Dispatcher
    dispatcher = Dispatcher(Database(sys.argv[1]))
    while True:
        if not dispatcher.run_once(limit=20):
            time.sleep(0.05)
""")


def test_a_killed_dispatcher_repeats_and_drops_nothing(session, clean_database, audience, database_url):
    """A real dispatcher process, killed with SIGKILL while it sends to a slow SMTP server; another one finishes:
    every customer got exactly one e-mail, except at most the one in flight, which is marked unknown."""
    sink = Sink()

    class Slow(Sink):
        async def handle_DATA(self, server, session_, envelope):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.03)
            return await sink.handle_DATA(server, session_, envelope)

    from aiosmtpd.controller import Controller
    port = _free_port()
    controller = Controller(Slow(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        _crowd(session, audience)
        tree = audience.tree
        service.save_account(session, tree.system, schemas.ChannelAccountIn(
            channel="email", provider="smtp", unit_id=tree.hq.id,
            config={"host": "127.0.0.1", "port": port, "from_address": "news@example.com"}))
        hq = audience.principal(session, audience.hq_marketer)
        broadcast = send_now(session, hq, email_template(session, hq).id, audience.segment_id)
        run_due(clean_database)
        child = subprocess.Popen([sys.executable, "-c", CHILD, database_url], env={**os.environ},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(sink.received) < 15 and time.monotonic() < deadline:
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert 15 <= len(sink.received) < CROWD + 3, "killed while sending"
        _expire_leases(session)
        dispatch_all(clean_database)
        session.expire_all()
        messages = session.scalars(select(Message).where(Message.broadcast_id == broadcast.id,
                                                         Message.status != "skipped")).all()
        by_status: dict[str, int] = {}
        for message in messages:
            by_status[message.status] = by_status.get(message.status, 0) + 1
        assert set(by_status) <= {"sent", "unknown"} and by_status.get("unknown", 0) <= 1
        received = [address for envelope, _ in sink.received for address in envelope.rcpt_tos]
        assert len(received) == len(set(received)), "nobody gets two"
        sent = {m.address for m in messages if m.status == "sent"}
        assert sent <= set(received) and len(sent) == by_status["sent"]
        unknown = {m.address for m in messages if m.status == "unknown"}
        assert set(received) == sent | (unknown & set(received)), "nobody skipped: all sent or in doubt"
    finally:
        controller.stop()
