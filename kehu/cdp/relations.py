"""Consent (PIPL) and accounts: what a customer agreed to, per channel and purpose, and which companies or
households they belong to. Both follow a profile through merges and unmerges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from kehu.cdp.manifest import PROFILE_CHANGED
from kehu.cdp.models import Account, AccountMember, ConsentRecord, Profile, Source
from kehu.core import audit, events
from kehu.core.db import insert_ignoring_conflicts, one_of, utcnow
from kehu.core.errors import invalid

CHANNELS = ("sms", "email", "wechat", "phone", "app_push", "mail")
PURPOSES = ("marketing", "service", "analytics", "third_party")
ACCOUNT_KINDS = ("company", "household", "dealer_group")


@dataclass
class ConsentState:
    channel: str
    purpose: str
    status: str
    ts: datetime
    evidence: str


def consent_rows_from_traits(traits: dict[str, Any], *, org_id: int, profile_id: int, ts: datetime, source: Source,
                             message_id: str) -> tuple[list[dict[str, Any]], list[str]]:
    """``traits.consent = {"sms": {"marketing": true}, …}`` → consent records (true = granted)."""
    given = traits.get("consent")
    if given is None:
        return [], []
    if not isinstance(given, dict):
        return [], ["consent: expected an object {channel: {purpose: true|false}}"]
    rows, notes = [], []
    for channel, purposes in given.items():
        if channel not in CHANNELS or not isinstance(purposes, dict):
            notes.append(f"consent.{channel}: unknown channel ({', '.join(CHANNELS)})")
            continue
        for purpose, granted in purposes.items():
            if purpose not in PURPOSES or not isinstance(granted, bool):
                notes.append(f"consent.{channel}.{purpose}: unknown purpose or not true/false")
                continue
            rows.append({"org_id": org_id, "profile_id": profile_id, "channel": channel, "purpose": purpose,
                         "status": "granted" if granted else "withdrawn", "ts": ts, "source_id": source.id,
                         "message_id": message_id, "evidence": f"{source.name}: call {message_id}"[:500]})
    return rows, notes


def store_consents(session: Session, rows: list[dict[str, Any]]) -> int:
    return insert_ignoring_conflicts(session, ConsentRecord, rows, ["source_id", "message_id", "channel", "purpose"])


# built once (a Customer 360 reads these): see service._IDENTITIES_OF
_CONSENTS_OF = (select(ConsentRecord).where(ConsentRecord.profile_id == bindparam("profile_id"))
                .order_by(ConsentRecord.ts, ConsentRecord.id))
_ACCOUNTS_OF = (select(Account).where(Account.id.in_(
    select(AccountMember.account_id).where(AccountMember.profile_id == bindparam("profile_id"))))
    .order_by(Account.name))


def current_consents(session: Session, profile: Profile) -> list[ConsentState]:
    """The latest decision per channel and purpose (by the time it was given, not when it arrived)."""
    latest: dict[tuple[str, str], ConsentRecord] = {}
    for record in session.scalars(_CONSENTS_OF, {"profile_id": profile.id}):
        latest[(record.channel, record.purpose)] = record
    return [ConsentState(r.channel, r.purpose, r.status, r.ts, r.evidence)
            for (_, _), r in sorted(latest.items())]


def consent_history(session: Session, profile: Profile) -> list[ConsentRecord]:
    return list(session.scalars(select(ConsentRecord).where(ConsentRecord.profile_id == profile.id)
                                .order_by(ConsentRecord.ts.desc(), ConsentRecord.id.desc())))


def record_consent(session: Session, actor: audit.Actor, profile: Profile, *, channel: str, purpose: str,
                   granted: bool, evidence: str, ts: datetime | None = None) -> ConsentRecord:
    """A decision taken by phone, at the showroom or on paper, with what proves it."""
    if channel not in CHANNELS:
        raise invalid("channel", f"one of {', '.join(CHANNELS)}")
    if purpose not in PURPOSES:
        raise invalid("purpose", f"one of {', '.join(PURPOSES)}")
    if not evidence.strip():
        raise invalid("evidence", "say how the customer gave or withdrew consent (PIPL asks for proof)")
    record = ConsentRecord(org_id=profile.org_id, profile_id=profile.id, channel=channel, purpose=purpose,
                           status="granted" if granted else "withdrawn", ts=ts or utcnow(),
                           evidence=evidence.strip()[:500], recorded_by_id=actor.user_id)
    session.add(record)
    session.flush()
    audit.record(session, actor, org_id=profile.org_id, unit_id=profile.unit_id, action="consent",
                 entity="profiles", entity_id=profile.id,
                 after={"channel": channel, "purpose": purpose, "status": record.status, "evidence": record.evidence},
                 summary=f"Consent {channel}/{purpose} {record.status} for customer {profile.id}")
    events.publish(session, PROFILE_CHANGED, org_id=profile.org_id, entity="profiles", entity_id=profile.id,
                   profile_id=profile.id, what="consent")
    return record


def link_groups(session: Session, source: Source, links: list[tuple[str, dict[str, Any], Profile]]) -> int:
    """Accounts for the groupIds of a batch (created on first sight, traits updated) and their members."""
    if not links:
        return 0
    dialect = session.get_bind().dialect.name
    external_ids = list({group_id for group_id, _, _ in links})
    accounts = {a.external_id: a for a in session.scalars(select(Account).where(
        Account.org_id == source.org_id, one_of(Account.external_id, external_ids, dialect)))}
    for group_id, traits, _ in links:
        account = accounts.get(group_id)
        if account is None:
            account = Account(org_id=source.org_id, unit_id=source.unit_id, external_id=group_id, traits={})
            session.add(account)
            accounts[group_id] = account
        kind = traits.get("kind") or traits.get("type")
        if kind in ACCOUNT_KINDS:
            account.kind = kind
        if isinstance(traits.get("name"), str) and traits["name"].strip():
            account.name = traits["name"].strip()[:200]
        extra = {k: v for k, v in traits.items() if k not in ("name", "kind", "type")}
        if extra:
            account.traits = {**(account.traits or {}), **extra}
    session.flush()
    account_ids = [a.id for a in accounts.values()]
    existing = {(account_id, profile_id) for account_id, profile_id in session.execute(
        select(AccountMember.account_id, AccountMember.profile_id).where(
            one_of(AccountMember.account_id, account_ids, dialect)))}
    added = 0
    for group_id, _, profile in links:
        pair = (accounts[group_id].id, profile.id)
        if pair not in existing:
            session.add(AccountMember(account_id=pair[0], profile_id=pair[1]))
            existing.add(pair)
            added += 1
    session.flush()
    return added


def accounts_of(session: Session, profile: Profile) -> list[Account]:
    return list(session.scalars(_ACCOUNTS_OF, {"profile_id": profile.id}))

