"""The dispatcher: one for every channel and every feature that sends. Each worker claims due messages (``FOR
UPDATE SKIP LOCKED`` on PostgreSQL, so several never take the same), renders them for their customers (a few
queries per batch, not per message), and hands each to the provider of the sending unit's channel account.

Exactly once, as far as a provider allows: before the provider is called, the message is marked handed
(committed); after, its outcome is committed. A dispatcher that dies leaves its claimed messages to the lease: a
message never handed goes back to the queue (nobody skipped); one handed but not answered is sent again only
through a provider that recognises a repeat (``idempotent``), and is otherwise marked ``unknown`` for a person to
decide (nobody gets two). Those commits do not wait for the disk (``commit_without_waiting_for_disk``): what they
guard against is the dispatcher dying, and a database that crashes loses neither side of a mark alone."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from kehu.channels import personalise, rendering
from kehu.channels.manifest import MESSAGE_BOUNCED, MESSAGE_SENT
from kehu.channels.models import ChannelAccount, Message, TemplateVersion
from kehu.channels.providers import Outcome, Outgoing, Provider, open_provider
from kehu.channels.providers.errors import OutcomeUnknown
from kehu.channels.templates import render_version
from kehu.core import events, jobs
from kehu.core.db import Database, commit_without_waiting_for_disk, utcnow
from kehu.core.settings import get_settings
from kehu.tenancy.models import BusinessUnit, Organization

log = logging.getLogger(__name__)

BATCH = 200
LEASE_SECONDS = 120
MAX_ATTEMPTS = 6
RETRY_BASE_SECONDS = 30.0


@dataclass
class Account:
    """The channel account a message goes out through (the outbox where the unit has none)."""

    id: int | None
    provider: str
    config: dict[str, Any]
    secrets: dict[str, Any]
    rate_per_second: float = 0.0


OUTBOX = Account(None, "outbox", {}, {})


def account_for(session: Session, org_id: int, unit_id: int, channel: str) -> Account:
    """The active account of the unit, or of the nearest unit above it, for ``channel``; the outbox otherwise."""
    path = session.scalar(select(BusinessUnit.path).where(BusinessUnit.id == unit_id)) or ""
    ids = [int(p) for p in path.strip("/").split("/") if p] or [unit_id]
    rows = {a.unit_id: a for a in session.scalars(select(ChannelAccount).where(
        ChannelAccount.org_id == org_id, ChannelAccount.channel == channel, ChannelAccount.unit_id.in_(ids),
        ChannelAccount.is_active.is_(True)))}
    for unit in reversed(ids):
        if unit in rows:
            found = rows[unit]
            return Account(found.id, found.provider, dict(found.config or {}), dict(found.secrets or {}),
                           found.rate_per_second)
    return OUTBOX


def public_base() -> str:
    settings = get_settings()
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


# -- claiming -------------------------------------------------------------------------------------------------------
def claim(session: Session, *, limit: int = BATCH, now: datetime | None = None) -> list[Message]:
    """Take up to ``limit`` due messages for this dispatcher (committed by the caller): the oldest due first,
    read through the (status, due_at) index, so a million queued cost what twenty do."""
    now = now or utcnow()
    ids = list(session.scalars(jobs.unclaimed(select(Message.id).where(
        Message.status == "queued", Message.due_at <= now).order_by(Message.due_at, Message.id).limit(limit),
        session)))
    if not ids:
        return []
    session.execute(update(Message).where(Message.id.in_(ids)).values(
        status="sending", lease_until=now + timedelta(seconds=LEASE_SECONDS), attempts=Message.attempts + 1)
        .execution_options(synchronize_session=False))
    return list(session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id)))


def settle_abandoned(session: Session, *, now: datetime | None = None) -> int:
    """Messages whose dispatcher died (their lease ran out): never handed over, they go back to the queue; handed
    over and never answered, they are sent again where the provider recognises a repeat, else ``unknown``."""
    now = now or utcnow()
    abandoned = list(session.scalars(jobs.unclaimed(select(Message).where(
        Message.status == "sending", Message.lease_until < now).limit(500), session)))
    for message in abandoned:
        if message.handed_at is None or (message.provider or "outbox") in IDEMPOTENT:
            message.status, message.handed_at, message.lease_until = "queued", None, None
        else:
            message.status = "unknown"
            message.error = "the dispatcher stopped after handing it over; whether it arrived is not known"
    session.flush()
    return len(abandoned)


# providers that recognise a repeat of a message they may have taken (their ``idempotent``; README)
IDEMPOTENT = {"outbox", "http_sms", "webhook"}


# -- rendering a batch ----------------------------------------------------------------------------------------------
def _render_batch(session: Session, messages: list[Message]) -> dict[int, Outgoing | str]:
    """Each message as its customer will see it (or why it cannot be rendered)."""
    out: dict[int, Outgoing | str] = {}
    by_org: dict[int, list[Message]] = defaultdict(list)
    for message in messages:
        by_org[message.org_id].append(message)
    links_secret = get_settings().effective_secret_key()
    base = public_base()
    for org_id, mine in by_org.items():
        org = session.get(Organization, org_id)
        tz = org.timezone if org else "Asia/Shanghai"
        default_locale = org.default_locale if org else "zh"
        versions = {(v.template_id, v.version): v for v in session.scalars(select(TemplateVersion).where(
            TemplateVersion.org_id == org_id,
            TemplateVersion.template_id.in_({m.template_id for m in mine if m.template_id})))}
        by_version: dict[tuple[int, int], list[Message]] = defaultdict(list)
        for message in mine:
            if message.body is not None and message.send_key.startswith("test:"):
                out[message.id] = Outgoing(message.id, message.channel, message.address or "", message.locale,
                                           subject=message.subject, html=message.body
                                           if message.channel == "email" else None, text=message.body)
                continue
            by_version[(message.template_id or 0, message.template_version or 0)].append(message)
        for key, group in by_version.items():
            version = versions.get(key)
            if version is None:
                for message in group:
                    out[message.id] = "its template version is gone"
                continue
            contexts = personalise.contexts(session, org_id, tz, [m.profile_id for m in group if m.profile_id],
                                            blocks=version.blocks)
            for message in group:
                context = contexts.get(message.profile_id or 0, {})
                locale = personalise.language(context, default_locale) if context else default_locale
                links = rendering.Links(base, links_secret, message.id)
                try:
                    parts = render_version(version.content, version.compiled, message.channel, context, locale,
                                           links=links)
                except rendering.RenderError as exc:
                    out[message.id] = f"render: {exc}"
                    continue
                message.locale, message.subject = parts["locale"], (parts["subject"] or "")[:500] or None
                headers = {}
                if message.channel == "email" and message.purpose == "marketing":
                    headers = {"List-Unsubscribe": f"<{links.unsubscribe()}>",
                               "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
                payload = parts["payload"] or {"profile_id": message.profile_id, "text": parts["text"]}
                out[message.id] = Outgoing(
                    message.id, message.channel, message.address or "", parts["locale"], subject=parts["subject"],
                    html=parts["html"], text=parts["text"], provider_template=version.content.get(
                        "provider_template"), params=parts["params"], fields=parts["fields"], url=parts["url"],
                    headers=headers, payload=payload)
    return out


# -- sending --------------------------------------------------------------------------------------------------------
class Dispatcher:
    """Sends batches of claimed messages; keeps providers (an SMTP connection, a WeChat token) open between
    batches of the same account."""

    def __init__(self, database: Database, *, hand_over: int | None = None) -> None:
        self.database = database
        # messages handed over between two commits: at most so many are in doubt when a dispatcher dies
        self.hand_over = max(1, hand_over if hand_over is not None else get_settings().dispatch_hand_over)
        self.http = httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))
        self.providers: dict[tuple[str, int | None], Provider] = {}
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def close(self) -> None:
        for provider in self.providers.values():
            try:
                provider.close()
            except Exception:  # closing what may already be broken: nothing to tell anyone
                log.debug("closing a provider failed", exc_info=True)
        self.providers.clear()
        self.http.close()

    def _provider(self, account: Account) -> Provider:
        key = (account.provider, account.id)
        if key not in self.providers:
            self.providers[key] = open_provider(account.provider, account.config, account.secrets, self.http)
        return self.providers[key]

    def run_once(self, *, limit: int = BATCH) -> int:
        """Claim, render and send one batch; returns how many messages it settled."""
        with self.database.unit_of_work() as session:
            settle_abandoned(session)
            messages = claim(session, limit=limit)
            if not messages:
                return 0
            rendered = _render_batch(session, messages)
            accounts: dict[tuple[int, int, str], Account] = {}
            for m in messages:
                key = (m.org_id, m.sender_unit_id, m.channel)
                if key not in accounts:
                    accounts[key] = account_for(session, *key)
            work = [Sending(m.id, m.org_id, m.profile_id, m.channel, m.purpose, m.broadcast_id, m.address,
                            accounts[(m.org_id, m.sender_unit_id, m.channel)], rendered[m.id], m.attempts)
                    for m in messages]
            # what the render found out (locale, subject) is committed with the claim
        with self.database.sessionmaker() as session:
            settled: list[Settled] = []
            for start in range(0, len(work), self.hand_over):
                chunk = work[start:start + self.hand_over]
                self._commit(session, settled, [item for item in chunk if item.ready])
                settled = [self._send_one(item) for item in chunk]
            self._commit(session, settled, [])
        return len(work)

    def _commit(self, session: Session, settled: list[Settled], handing: list[Sending]) -> None:
        """One transaction: the outcomes of the messages just sent, and the mark that the next ones are being
        handed over (a dispatcher that dies in between leaves those marked: sent again only where that is safe)."""
        if not settled and not handing:
            return
        commit_without_waiting_for_disk(session)
        if settled:
            _write_outcomes(session, settled)
        now = utcnow()
        by_provider: dict[str, list[int]] = defaultdict(list)
        for item in handing:
            by_provider[item.account.provider].append(item.message_id)
        for provider_name, ids in by_provider.items():
            session.execute(update(Message).where(Message.id.in_(ids)).values(handed_at=now, provider=provider_name)
                            .execution_options(synchronize_session=False))
        session.commit()

    def _send_one(self, item: Sending) -> Settled:
        if isinstance(item.outgoing, str):
            return Settled(item, Outcome("failed", error=item.outgoing))
        if not item.address:
            return Settled(item, Outcome("failed", error="no address"))
        started = time.monotonic()
        account = item.account
        try:
            outcome = self._provider(account).send(item.outgoing)
        except OutcomeUnknown as exc:
            return Settled(item, Outcome("failed", error=f"unknown: {exc}"[:300]), unknown=True)
        except Exception as exc:  # a provider's own bug must not stop the others' messages
            log.exception("provider %s failed on message %s", account.provider, item.message_id)
            self.providers.pop((account.provider, account.id), None)
            outcome = Outcome("retry", error=f"{type(exc).__name__}: {exc}"[:300])
        if account.rate_per_second > 0:
            time.sleep(max(0.0, 1.0 / account.rate_per_second - (time.monotonic() - started)))
        return Settled(item, outcome)


@dataclass
class Sending:
    """A claimed message on its way: who, where, through which account, as rendered (or why it cannot be)."""

    message_id: int
    org_id: int
    profile_id: int | None
    channel: str
    purpose: str
    broadcast_id: int | None
    address: str | None
    account: Account
    outgoing: Outgoing | str
    attempts: int

    @property
    def ready(self) -> bool:
        """Whether it goes to a provider (a message that cannot be rendered or has no address does not)."""
        return not isinstance(self.outgoing, str) and bool(self.address)


@dataclass
class Settled:
    item: Sending
    outcome: Outcome
    unknown: bool = False


def _outcome_values(done: Settled, now: datetime) -> dict[str, Any]:
    item, outcome = done.item, done.outcome
    values: dict[str, Any] = {"lease_until": None, "error": outcome.error}
    if done.unknown:
        values.update(status="unknown")
    elif outcome.status == "sent":
        values.update(status="sent", sent_at=now, provider_message_id=outcome.provider_message_id, error=None)
        outgoing = item.outgoing
        if item.account.provider == "outbox" and isinstance(outgoing, Outgoing):
            values["body"] = outgoing.html or outgoing.text or None
            if outgoing.channel == "wechat":
                values["body"] = "\n".join(f"{k}: {v}" for k, v in outgoing.fields.items()) or outgoing.text
    elif outcome.status == "retry" and item.attempts < MAX_ATTEMPTS:
        wait = outcome.retry_after or jobs.backoff_seconds(RETRY_BASE_SECONDS, item.attempts)
        values.update(status="queued", handed_at=None, due_at=now + timedelta(seconds=wait))
    elif outcome.status == "suppress":
        values.update(status="bounced")
    else:
        values.update(status="failed")
    return values


def _write_outcomes(session: Session, settled: list[Settled]) -> None:
    """The messages' new states, one statement for each set of columns they change, and what they tell the
    customers' records (one insert of events) and the suppression list."""
    from kehu.channels import control

    now = utcnow()
    table: Any = Message.__table__
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    sent: list[dict[str, Any]] = []
    bounced: list[dict[str, Any]] = []
    for done in settled:
        item = done.item
        values = _outcome_values(done, now)
        groups[tuple(sorted(values))].append({**{f"v_{k}": v for k, v in values.items()}, "m_id": item.message_id})
        what = {"message_id": item.message_id, "channel": item.channel, "purpose": item.purpose,
                "broadcast_id": item.broadcast_id}
        if values["status"] == "sent" and item.profile_id is not None:
            sent.append({"org_id": item.org_id, "entity": "messages", "entity_id": item.message_id,
                         "profile_id": item.profile_id, "payload": what})
        if done.outcome.status == "suppress" and item.address:
            control.suppress(session, org_id=item.org_id, channel=item.channel, address=item.address,
                             reason=done.outcome.suppress_reason or "invalid", evidence=done.outcome.error or "",
                             message_id=item.message_id)
            if item.profile_id is not None:
                bounced.append({"org_id": item.org_id, "entity": "messages", "entity_id": item.message_id,
                                "profile_id": item.profile_id, "payload": {**what, "error": done.outcome.error}})
    for columns, rows in groups.items():
        statement = table.update().where(table.c.id == bindparam("m_id"), table.c.status == "sending") \
            .values({column: bindparam(f"v_{column}") for column in columns})
        session.connection().execute(statement, rows)
    events.publish_many(session, MESSAGE_SENT, sent)
    events.publish_many(session, MESSAGE_BOUNCED, bounced)


_DISPATCHERS: dict[int, Dispatcher] = {}


@jobs.poller
def dispatch_due(database: Database) -> bool:
    """The worker's dispatcher: one batch per tick while there is something due."""
    dispatcher = _DISPATCHERS.get(id(database))
    if dispatcher is None:
        dispatcher = _DISPATCHERS[id(database)] = Dispatcher(database)
    return dispatcher.run_once() > 0
