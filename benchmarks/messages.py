"""A broadcast to a million customers (DESIGN.md §6): the audience resolved and communication control applied —
consent, suppression, frequency caps, quiet hours, one message per address — and its message rows made in ≤ 60 s,
against one plain INSERT … SELECT of the same rows with no rule applied (the baseline); then rendering and the
hand-over to a local SMTP server at ≥ 1,000 personalised e-mails a second with two dispatcher processes, against
a plain smtplib loop sending the same number of ready-made e-mails over one connection (the baseline).

The SMTP server is Postfix's smtp-sink where it is installed (`apt-get install postfix`; a C server, as a
production relay would be), else aiosmtpd in a process of its own; either keeps nothing. The
dispatchers are real: they claim, render each customer's e-mail (MJML compiled once, Jinja per message, tracked
links), hand it over, and record the outcome (two commits a message: handed, then its outcome).

``reuse=True`` measures on the customers an earlier run generated (a million take a quarter of an hour)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import textwrap
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_seconds, demo_data, free_port, machine

TARGET_ROWS_S = 60.0  # at a million customers
TARGET_PER_S = 1_000.0
SINK = textwrap.dedent("""
    import asyncio, sys
    from aiosmtpd.controller import Controller
    class Count:
        received = 0
        async def handle_DATA(self, server, session, envelope):
            Count.received += 1
            if Count.received % 500 == 0:
                print(Count.received, flush=True)
            return "250 OK"
    controller = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
""")
DISPATCHER = textwrap.dedent("""
    import sys, time
    from kehu.core.db import Database
    from kehu.channels.dispatch import Dispatcher
    database = Database(sys.argv[1])
    dispatcher = Dispatcher(database, hand_over=int(sys.argv[3]))
    idle_since = None
    while True:
        if dispatcher.run_once(limit=int(sys.argv[2])):
            idle_since = None
        else:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 3:
                break
            time.sleep(0.05)
    dispatcher.close()
""")
MAIL = """<mjml><mj-body><mj-section><mj-column>
<mj-text font-size="18px">{{ name | default("尊敬的客户", true) }}，您好</mj-text>
<mj-text>{% if show.owner %}您的{{ vehicle.model | default("爱车", true) }}该保养了，{{ dealer.name }}工时八折。
{% else %}欢迎到{{ dealer.name }}试驾新款车型。{% endif %}</mj-text>
<mj-button href="https://demo.kehu.dev/book">预约</mj-button>
<mj-text font-size="12px"><a href="{{ unsubscribe_url }}">退订</a></mj-text>
</mj-column></mj-section></mj-body></mjml>"""


def _setup(session: Any, org_id: int) -> dict[str, Any]:
    """What a marketer would have: customers' consents (70 % granted SMS and e-mail marketing, set-based, not
    timed), a segment of everyone, a template per channel, the group's usual rules (a daily cap, quiet hours
    that never bite while we measure)."""
    from kehu.cdp.models import ConsentRecord
    from kehu.channels import control, schemas, templates
    from kehu.segments.models import Segment, SegmentMember
    from kehu.tenancy import service as tenancy_service

    system = tenancy_service.system_principal(session, org_id)
    hq = tenancy_service.root_unit(session, org_id)
    control.set_policy(session, system, hq.id, schemas.PolicyIn(
        per_day=schemas.Caps(all=3), per_week=schemas.Caps(all=10), quiet_start="00:00", quiet_end="00:00"))
    have_consents = session.scalar(select(func.count()).select_from(ConsentRecord).where(
        ConsentRecord.org_id == org_id, ConsentRecord.evidence == "bench"))
    if not have_consents:
        for channel in ("sms", "email"):
            session.execute(text(
                "INSERT INTO consents (org_id, profile_id, channel, purpose, status, ts, evidence) "
                "SELECT org_id, id, :channel, 'marketing', 'granted', CURRENT_TIMESTAMP, 'bench' FROM profiles "
                "WHERE org_id = :org AND merged_into_id IS NULL AND id % 10 < 7"), {"channel": channel, "org": org_id})
    segment = Segment(org_id=org_id, unit_id=hq.id, name=f"bench-everyone-{time.time_ns()}", kind="static",
                      status="ready")
    session.add(segment)
    session.flush()
    session.execute(text(
        "INSERT INTO segment_members (segment_id, profile_id, org_id, added_in, leaving, added_at) "
        "SELECT :segment, id, org_id, 1, false, CURRENT_TIMESTAMP FROM profiles "
        "WHERE org_id = :org AND merged_into_id IS NULL"), {"segment": segment.id, "org": org_id})
    members = session.scalar(select(func.count()).select_from(SegmentMember).where(
        SegmentMember.segment_id == segment.id)) or 0
    sms = templates.create_template(session, system, schemas.TemplateCreate(
        name=f"bench-sms-{time.time_ns()}", channel="sms", content=schemas.TemplateContent(
            zh=schemas.Variant(text="【示范汽车】{{ name }}您好，本周末{{ dealer.name }}试驾日"))))
    mail = templates.create_template(session, system, schemas.TemplateCreate(
        name=f"bench-mail-{time.time_ns()}", channel="email", content=schemas.TemplateContent(
            zh=schemas.Variant(subject="{{ name | default('您', true) }}，春季礼遇", html=MAIL)),
        blocks={"owner": {"type": "field", "field": "lifecycle_stage", "op": "in", "value": ["customer", "owner"]}}))
    session.commit()
    return {"system": system, "segment": segment.id, "members": members, "sms": sms.id, "mail": mail.id}


def _rows(database: Any, setup: dict[str, Any]) -> dict[str, Any]:
    """Message rows for an SMS broadcast to everyone: kehu's statement, then the plain INSERT … SELECT."""
    from kehu.channels import broadcasts, schemas
    from kehu.channels.models import Broadcast, Message

    with database.unit_of_work() as session:
        broadcast = broadcasts.create_broadcast(session, setup["system"], schemas.BroadcastCreate(
            name="bench-rows", template_id=setup["sms"], segment_id=setup["segment"]))
        broadcasts.submit(session, setup["system"], broadcast.id)
        broadcast_id = broadcast.id
    db_before = cpu_seconds()
    started = time.perf_counter()
    with database.unit_of_work() as session:
        made = broadcasts.make_messages(session, session.get(Broadcast, broadcast_id))
    ours = time.perf_counter() - started
    db_cpu = (cpu_seconds() or 0) - (db_before or 0) if db_before is not None else None
    with database.unit_of_work() as session:
        reasons = dict(session.execute(select(Message.skip_reason, func.count()).where(
            Message.broadcast_id == broadcast_id).group_by(Message.skip_reason)).all())
    baseline_sql = (
        "INSERT INTO messages (org_id, unit_id, profile_id, send_key, broadcast_id, sender_unit_id, channel, "
        "purpose, address, locale, status, created_at, due_at, attempts) "
        "SELECT p.org_id, p.unit_id, p.id, 'bench-baseline', NULL, p.unit_id, 'sms', 'marketing', p.mobile, 'zh', "
        "'cancelled', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0 FROM profiles p JOIN segment_members m "
        "ON m.profile_id = p.id WHERE m.segment_id = :segment AND p.org_id = :org AND p.merged_into_id IS NULL")
    started = time.perf_counter()
    with database.unit_of_work() as session:
        session.execute(text(baseline_sql), {"segment": setup["segment"], "org": setup["system"].org_id})
    theirs = time.perf_counter() - started
    with database.unit_of_work() as session:  # neither stays: they would count against the caps below
        session.execute(text("DELETE FROM messages WHERE send_key = 'bench-baseline' OR broadcast_id = :b"),
                        {"b": broadcast_id})
    return {"messages": made, "seconds": round(ours, 2), "baseline_insert_select_s": round(theirs, 2),
            "ratio": round(ours / theirs, 2) if theirs else None,
            "database_cpu_s": round(db_cpu, 1) if db_cpu else None,
            "by_reason": {str(k or "to_send"): v for k, v in reasons.items()}}


SMTP_SINK = shutil.which("smtp-sink") or ("/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None)


def _sink(port: int) -> tuple[subprocess.Popen[str], str]:
    """The local SMTP server: Postfix's smtp-sink where it is installed (a C server, as a production relay would
    be: Postfix, Haraka), else aiosmtpd (Python: it is then the slower half of every figure)."""
    if SMTP_SINK:
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        sink = subprocess.Popen([SMTP_SINK, *user, f"127.0.0.1:{port}", "256"], stdin=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return sink, "postfix smtp-sink"
            time.sleep(0.05)
        raise RuntimeError("smtp-sink did not start")
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    return sink, "aiosmtpd"


def _smtplib_loop(port: int, count: int) -> float:
    """The baseline: ``count`` ready-made multipart e-mails over one smtplib connection, as fast as it goes."""
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "news@example.com", "someone@example.com", "张伟，春季礼遇"
    mail.set_content("张伟，您好。欢迎到上海浦东4S店试驾新款车型。")
    mail.add_alternative("<p>张伟，您好。</p><p>欢迎到上海浦东4S店试驾新款车型。</p>" * 20, subtype="html")
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as connection:
        for n in range(count):
            connection.send_message(mail, to_addrs=[f"c{n}@example.com"])
    return time.perf_counter() - started


def _send(database: Any, url: str, setup: dict[str, Any], *, count: int, dispatchers: int,
          batch: int, hand_over: int) -> dict[str, Any]:
    """``count`` queued e-mails sent by ``dispatchers`` processes to a local SMTP server."""
    from kehu.channels import broadcasts, schemas, service
    from kehu.channels.models import Broadcast, Message

    port = free_port()
    sink, sink_name = _sink(port)
    try:
        baseline_s = _smtplib_loop(port, min(count, 5_000))
        baseline_rate = min(count, 5_000) / baseline_s
        with database.unit_of_work() as session:
            service.save_account(session, setup["system"], schemas.ChannelAccountIn(
                channel="email", provider="smtp", config={"host": "127.0.0.1", "port": port,
                                                          "from_address": "news@example.com"}))
            broadcast = broadcasts.create_broadcast(session, setup["system"], schemas.BroadcastCreate(
                name="bench-send", template_id=setup["mail"], segment_id=setup["segment"]))
            broadcasts.submit(session, setup["system"], broadcast.id)
            broadcasts.make_messages(session, session.get(Broadcast, broadcast.id))
            queued = list(session.scalars(select(Message.id).where(Message.broadcast_id == broadcast.id,
                                                                   Message.status == "queued")
                                          .order_by(Message.id)))
            # only ``count`` of them go now; the rest are cancelled (a measurement, not a million e-mails)
            if len(queued) > count:
                session.execute(text("UPDATE messages SET status = 'cancelled' WHERE broadcast_id = :b "
                                     "AND status = 'queued' AND id > :last"), {"b": broadcast.id,
                                                                              "last": queued[count - 1]})
            broadcast_id = broadcast.id
        to_send = min(count, len(queued))
        env = {**os.environ, "KEHU_LOG_LEVEL": "WARNING"}
        db_before = cpu_seconds()
        started = time.perf_counter()
        children = [subprocess.Popen([sys.executable, "-c", DISPATCHER, url, str(batch), str(hand_over)], env=env)
                    for _ in range(dispatchers)]
        cpu_children = []
        while any(child.poll() is None for child in children):
            cpu_children = [cpu_seconds([child.pid]) for child in children]
            with database.sessionmaker() as session:
                done = session.scalar(select(func.count()).select_from(Message).where(
                    Message.broadcast_id == broadcast_id, Message.status.in_(("sent", "failed", "unknown"))))
            if done >= to_send:
                elapsed = time.perf_counter() - started
                break
            time.sleep(0.2)
        else:
            elapsed = time.perf_counter() - started
        for child in children:
            child.terminate()
            child.wait()
        db_cpu = (cpu_seconds() or 0) - (db_before or 0) if db_before is not None else None
        with database.sessionmaker() as session:
            statuses = dict(session.execute(select(Message.status, func.count()).where(
                Message.broadcast_id == broadcast_id).group_by(Message.status)).all())
            first, last = session.execute(select(func.min(Message.sent_at), func.max(Message.sent_at)).where(
                Message.broadcast_id == broadcast_id)).one()
        # from the first e-mail handed over to the last (the processes' start-up, a second or two of importing,
        # is left out; ``seconds`` includes it)
        span = (last - first).total_seconds() if first and last and last > first else elapsed
        rate = statuses.get("sent", 0) / span if span else 0.0
        return {"smtp_server": sink_name, "emails": to_send, "dispatchers": dispatchers, "hand_over": hand_over,
                "seconds": round(elapsed, 2),
                "sending_seconds": round(span, 2),
                "per_second": round(rate, 1), "statuses": statuses,
                "baseline_smtplib_per_second": round(baseline_rate, 1),
                "ratio_to_smtplib": round(rate / baseline_rate, 2) if baseline_rate else None,
                "dispatcher_cpu_s": [round(c, 1) for c in cpu_children if c is not None],
                "database_cpu_s": round(db_cpu, 1) if db_cpu else None}
    finally:
        if sink.stdin:
            sink.stdin.close()
        sink.terminate()
        sink.wait()


def run(database_url: str | None = None, size: int | None = None, reuse: bool = False, emails: int = 20_000,
        dispatchers: int = 2, batch: int = 200, hand_over: int = 1) -> dict[str, Any]:
    """``emails``: how many of the broadcast's e-mails are sent (the rest are cancelled); ``dispatchers``:
    processes; ``batch``: messages a dispatcher claims at once; ``hand_over``: messages handed to the SMTP server
    between two commits (KEHU_DISPATCH_HAND_OVER: at most so many in doubt when a dispatcher dies)."""
    import kehu.models  # noqa: F401 - every table registered
    from kehu.core.db import Database

    url, org_id, data_size = demo_data(database_url, size, reuse=reuse, postgres=1_000_000, sqlite=20_000, seed=17)
    database = Database(url)
    load = os.getloadavg()
    with database.sessionmaker() as session:
        setup = _setup(session, org_id)
    rows = _rows(database, setup)
    sent = _send(database, url, setup, count=emails, dispatchers=dispatchers, batch=batch, hand_over=hand_over)
    database.dispose()
    passed = rows["seconds"] <= TARGET_ROWS_S and sent["per_second"] >= TARGET_PER_S
    return {"benchmark": "messages", "machine": {**machine(url), "load_before": [round(x, 2) for x in load],
                                                 "load_after": [round(x, 2) for x in os.getloadavg()],
                                                 "cpus": multiprocessing.cpu_count(),
                                                 "host": socket.gethostname()},
            "data": {**data_size, "audience": setup["members"]},
            "message_rows": {**rows, "target_s": TARGET_ROWS_S},
            "sending": {**sent, "target_per_second": TARGET_PER_S},
            "pass": bool(passed)}
