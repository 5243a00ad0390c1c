"""Customers at three dealers with addresses and consents, a dealer marketer, and the helpers that run the
broadcasting machinery as the worker would."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes
from email.message import Message as MailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.cdp import relations
from kehu.cdp import schemas as cdp_schemas
from kehu.cdp import service as cdp_service
from kehu.cdp.models import Profile
from kehu.channels import broadcasts, control, schemas, templates
from kehu.channels.dispatch import Dispatcher
from kehu.core import jobs
from kehu.core.db import Database, utcnow
from kehu.segments import schemas as segment_schemas
from kehu.segments import service as segment_service
from kehu.tenancy.access import Principal
from tests.factories.tenancy import OrgTree, make_user

ALWAYS_OPEN = schemas.PolicyIn(quiet_start="00:00", quiet_end="00:00")  # no quiet hours: tests send at any hour


@dataclass
class Audience:
    tree: OrgTree
    hq_marketer: Any
    a_marketer: Any
    b_marketer: Any
    customers: dict[str, Profile] = field(default_factory=dict)
    segment_id: int = 0

    def principal(self, session: Session, user: Any) -> Principal:
        return self.tree.principal(session, user)


def customer(session: Session, system: Principal, unit_id: int, name: str, *, email: str | None = None,
             mobile: str | None = None, consent: dict[str, bool] | None = None, **extra: Any) -> Profile:
    profile = cdp_service.create_profile(session, system, data=cdp_schemas.ProfileCreate(
        name=name, email=email, mobile=mobile, unit_id=unit_id, lifecycle_stage=extra.pop("stage", "prospect"),
        attributes=extra.pop("attributes", {})))
    for channel, granted in (consent or {}).items():
        relations.record_consent(session, system, profile, channel=channel, purpose="marketing", granted=granted,
                                 evidence="showroom form")
    return profile


@pytest.fixture
def audience(session: Session, tree: OrgTree) -> Audience:
    """Dealer A: 张伟 (e-mail + SMS consent), 李娜 (e-mail, no consent), 赵强 (no e-mail, consent);
    dealer B: 王芳 (e-mail + consent); dealer C: 刘洋 (e-mail + consent). A static segment of all five, at HQ."""
    system = tree.system
    found = Audience(
        tree=tree,
        hq_marketer=make_user(session, system, tree.hq, "hq_marketing", email="hq.mkt@example.com", name="市场部"),
        a_marketer=make_user(session, system, tree.dealer_a, "dealer_marketing", email="a.mkt@example.com",
                             name="A店市场"),
        b_marketer=make_user(session, system, tree.dealer_b, "dealer_marketing", email="b.mkt@example.com",
                             name="B店市场"),
    )
    people = [
        ("zhang", tree.dealer_a, "张伟", "zhangwei@example.com", "13800000001", {"email": True, "sms": True}),
        ("li", tree.dealer_a, "李娜", "lina@example.com", "13800000002", {}),
        ("zhao", tree.dealer_a, "赵强", None, "13800000003", {"email": True}),
        ("wang", tree.dealer_b, "王芳", "wangfang@example.com", "13800000004", {"email": True, "sms": True}),
        ("liu", tree.dealer_c, "刘洋", "liuyang@example.com", "13800000005", {"email": True}),
    ]
    for key, unit, name, email, mobile, consent in people:
        found.customers[key] = customer(session, system, unit.id, name, email=email, mobile=mobile,
                                        consent=consent)
    segment = segment_service.create_segment(session, system, segment_schemas.SegmentCreate(
        name="全部客户", kind="static", profile_ids=[p.id for p in found.customers.values()]))
    found.segment_id = segment.id
    control.set_policy(session, system, tree.hq.id, ALWAYS_OPEN)
    session.commit()
    return found


def email_template(session: Session, principal: Principal, name: str = "春季保养", **content: Any) -> Any:
    body = content.pop("html", '<mjml><mj-body><mj-section><mj-column><mj-text>您好 {{ name | default("车主") }}，'
                               '<a href="https://dealer.example.com/offer?x=1&y=2">查看优惠</a> '
                               '<a href="{{ unsubscribe_url }}">退订</a></mj-text></mj-column></mj-section>'
                               '</mj-body></mjml>')
    return templates.create_template(session, principal, schemas.TemplateCreate(
        name=name, channel=content.pop("channel", "email"), purpose=content.pop("purpose", "marketing"),
        content=schemas.TemplateContent(zh=schemas.Variant(subject=content.pop("subject", "{{ name }}，春季保养优惠"),
                                                           html=body, text=content.pop("text", "")),
                                        en=content.pop("en", None)),
        blocks=content.pop("blocks", {})))


def run_due(database: Database) -> None:
    """What the worker does for broadcasts: start the due ones, run their jobs, settle the finished."""
    broadcasts.start_due_broadcasts(database)
    worker = jobs.Worker(database, lease_seconds=30)
    while (job := worker.claim()) is not None:
        worker.run(job)
    broadcasts.start_due_broadcasts(database)


def dispatch_all(database: Database) -> int:
    dispatcher = Dispatcher(database)
    try:
        total = 0
        while (sent := dispatcher.run_once()):
            total += sent
        return total
    finally:
        dispatcher.close()


def send_now(session: Session, principal: Principal, template_id: int, segment_id: int, name: str = "群发") -> Any:
    broadcast = broadcasts.create_broadcast(session, principal, schemas.BroadcastCreate(
        name=name, template_id=template_id, segment_id=segment_id))
    broadcasts.submit(session, principal, broadcast.id)
    session.commit()
    return broadcast


def statuses(session: Session, broadcast_id: int) -> dict[int, tuple[str, str | None]]:
    from kehu.channels.models import Message
    session.expire_all()
    return {m.profile_id: (m.status, m.skip_reason) for m in session.scalars(
        select(Message).where(Message.broadcast_id == broadcast_id))}


def later(minutes: int) -> Any:
    return utcnow() + timedelta(minutes=minutes)


class Sink:
    """An SMTP server's handler that keeps what it receives and refuses the mailboxes it is told to."""

    def __init__(self, *, pipelining: bool = False) -> None:
        self.received: list[tuple[Envelope, MailMessage]] = []
        self.unknown: set[str] = set()
        self.replies: dict[str, str] = {}  # an address's own answer to RCPT (a relay refusal, say)
        self.pipelining = pipelining

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]
        session.host_name = hostname
        if self.pipelining:  # as Postfix and most relays do: the client may send MAIL, RCPT and DATA at once
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address in self.unknown:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address in self.replies:
            return self.replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.received.append((envelope, message_from_bytes(envelope.content, policy=default_policy)))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[MailMessage]:
        return [mail for envelope, mail in self.received if address in envelope.rcpt_tos]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["one command at a time", "pipelining"])
def smtp_sink(request):  # type: ignore[no-untyped-def]
    """A real SMTP server (aiosmtpd) on a free port: each test runs against one that answers command by command
    and one that advertises PIPELINING (RFC 2920), so both ways of handing a message over are proven."""
    sink = Sink(pipelining=request.param == "pipelining")
    controller = Controller(sink, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield sink, controller.port
    controller.stop()
