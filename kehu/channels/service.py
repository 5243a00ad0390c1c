"""Channels: the accounts a unit sends through, the messages (the outbox viewer, a customer's messages), and the
messages on the customer's timeline. Templates, communication control, broadcasts, the dispatcher and what
comes back live in their own modules of this package."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from kehu.cdp import timeline
from kehu.cdp.models import Profile
from kehu.channels import control, schemas
from kehu.channels.broadcasts import visible_broadcasts
from kehu.channels.models import PROVIDERS, Broadcast, ChannelAccount, Message
from kehu.channels.providers import names as provider_names
from kehu.core import audit
from kehu.core.db import built_once, utcnow
from kehu.core.errors import Conflict, FieldError, ValidationFailed
from kehu.core.i18n import t
from kehu.core.pagination import OffsetPage, Page, keyset_page, offset_page
from kehu.tenancy.access import Principal, Ref, check_references, get_scoped, require_row, scope
from kehu.tenancy.masking import mask_value
from kehu.tenancy.models import BusinessUnit

# what each provider's settings must say (secrets are kept apart and never read back)
REQUIRED = {
    "smtp": (("host", "port", "from_address"), ()),
    "tencent_sms": (("sdk_app_id", "sign_name"), ("secret_id", "secret_key")),
    "aliyun_sms": (("sign_name",), ("access_key_id", "access_key_secret")),
    "http_sms": (("url",), ("signing_secret",)),
    "wechat_mp": (("app_id",), ("app_secret",)),  # config.server_token: the official account's server token
    "jpush": (("app_key",), ("master_secret",)),
    "webhook": (("url",), ("signing_secret",)),
    "outbox": ((), ()),
}


# -- channel accounts -----------------------------------------------------------------------------------------------
def account_out(account: ChannelAccount) -> schemas.ChannelAccountOut:
    return schemas.ChannelAccountOut(id=account.id, unit_id=account.unit_id, channel=account.channel,
                              provider=account.provider, name=account.name, config=dict(account.config or {}),
                              secret_names=sorted(k for k, v in (account.secrets or {}).items() if v),
                              is_active=account.is_active, rate_per_second=account.rate_per_second,
                              updated_at=account.updated_at)


def list_accounts(session: Session, principal: Principal) -> list[ChannelAccount]:
    principal.require("messages", "read")
    return list(session.scalars(select(ChannelAccount).where(scope(principal, ChannelAccount))
                                .order_by(ChannelAccount.unit_id, ChannelAccount.channel)))


def save_account(session: Session, principal: Principal, data: schemas.ChannelAccountIn) -> ChannelAccount:
    """Switch a provider on for a unit's channel (or change it). A dealer with its own SMS account sends through
    it; one without sends through the account of the nearest unit above."""
    principal.require_permission("settings.manage")
    unit_id = data.unit_id if data.unit_id is not None else principal.unit_id
    found = check_references(session, principal, {"unit_id": Ref(BusinessUnit, unit_id, None)})
    unit: BusinessUnit = found["unit_id"]
    require_row(session, principal, "messages", "update", unit_id=unit.id)
    problems: list[FieldError] = []
    if data.provider not in PROVIDERS[data.channel] or data.provider not in provider_names():
        problems.append(FieldError("provider", f"one of {', '.join(PROVIDERS[data.channel])} for {data.channel}",
                                   "unknown"))
    account = session.scalar(select(ChannelAccount).where(ChannelAccount.org_id == principal.org_id,
                                                          ChannelAccount.unit_id == unit.id,
                                                          ChannelAccount.channel == data.channel))
    secrets = dict(account.secrets or {}) if account is not None else {}
    if data.secrets is not None:
        secrets.update({k: v for k, v in data.secrets.items() if v})
    config_keys, secret_keys = REQUIRED.get(data.provider, ((), ()))
    problems += [FieldError(f"config.{k}", "required", "required") for k in config_keys
                 if data.config.get(k) in (None, "")]
    problems += [FieldError(f"secrets.{k}", "required", "required") for k in secret_keys if not secrets.get(k)]
    aes_key = str(secrets.get("encoding_aes_key") or "")
    if data.provider == "wechat_mp" and aes_key and not re.fullmatch(r"[A-Za-z0-9+/]{43}", aes_key):
        problems.append(FieldError("secrets.encoding_aes_key", "43 letters and digits, as the official account's "
                                   "settings show it", "invalid"))
    if aes_key and data.provider == "wechat_mp" and not data.config.get("server_token"):
        problems.append(FieldError("config.server_token", "safe mode signs with the server token: give it too",
                                   "required"))
    if problems:
        raise ValidationFailed("; ".join(f"{p.field}: {p.message}" for p in problems), errors=problems)
    before = account_out(account).model_dump(mode="json") if account is not None else None
    if account is None:
        account = ChannelAccount(org_id=principal.org_id, unit_id=unit.id, channel=data.channel)
        session.add(account)
    account.provider, account.name, account.config = data.provider, data.name, dict(data.config)
    account.secrets, account.is_active, account.rate_per_second = secrets, data.is_active, data.rate_per_second
    session.flush()
    after = account_out(account).model_dump(mode="json")
    audit.record(session, principal, action="update" if before else "create", entity="channel_accounts",
                 entity_id=account.id, unit_id=unit.id, before=before, after=after,
                 summary=f"{data.channel} of {unit.name}: {data.provider}")
    return account


def delete_account(session: Session, principal: Principal, account_id: int) -> None:
    principal.require_permission("settings.manage")
    account = get_scoped(session, principal, ChannelAccount, account_id)
    require_row(session, principal, "messages", "delete", unit_id=account.unit_id)
    if session.scalar(select(Message.id).where(Message.org_id == account.org_id,
                                               Message.sender_unit_id == account.unit_id,
                                               Message.channel == account.channel,
                                               Message.status.in_(("queued", "sending"))).limit(1)):
        raise Conflict("Messages are on their way through this account; pause them or switch it off instead.")
    audit.record(session, principal, action="delete", entity="channel_accounts", entity_id=account.id,
                 unit_id=account.unit_id, before=account_out(account).model_dump(mode="json"),
                 summary=f"{account.channel} account of unit {account.unit_id} removed")
    session.delete(account)
    session.flush()


# -- messages -------------------------------------------------------------------------------------------------------
def list_messages(session: Session, principal: Principal, *, channel: str | None = None,
                  status: str | None = None, broadcast_id: int | None = None, profile_id: int | None = None,
                  provider: str | None = None, limit: int = 50, cursor: str | None = None) -> Page[Any]:
    """Messages to customers of the reader's scope (and tests they sent), newest first."""
    return keyset_page(session, _messages_query(session, principal, channel=channel, status=status,
                                                broadcast_id=broadcast_id, profile_id=profile_id, provider=provider),
                       id_column=Message.id, limit=limit, cursor=cursor)


def page_messages(session: Session, principal: Principal, *, page: int = 1, per_page: int = 20,
                  **filters: Any) -> OffsetPage[Any]:
    return offset_page(session, _messages_query(session, principal, **filters), order_by=[Message.id.desc()],
                       page=page, per_page=per_page)


def _messages_query(session: Session, principal: Principal, *, channel: str | None = None,
                    status: str | None = None, broadcast_id: int | None = None, profile_id: int | None = None,
                    provider: str | None = None) -> Any:
    principal.require("messages", "read")
    query = select(Message).where(control.visible_messages(principal))
    if profile_id is not None:
        check_references(session, principal, {"profile_id": Ref(Profile, profile_id, "read")})
        query = query.where(Message.profile_id == profile_id)
    if channel:
        query = query.where(Message.channel == channel)
    if status:
        query = query.where(Message.status == status)
    if broadcast_id is not None:
        query = query.where(Message.broadcast_id == broadcast_id)
    if provider:
        query = query.where(Message.provider == provider)
    return query


def get_message(session: Session, principal: Principal, message_id: int) -> Message:
    return get_scoped(session, principal, Message, message_id)


RETRYABLE = ("failed", "unknown")


RETRY_AT_ONCE = 100_000  # messages one request sends again (dead letters are few; a larger set is asked twice)


def retry_messages(session: Session, principal: Principal, data: schemas.MessageRetry) -> int:
    """Send failed messages again — the dead letters, once a person has read why they failed (a webhook's
    endpoint was down, a gateway refused its credentials). Only failed ones unless ``status`` says ``unknown``:
    a message of unknown outcome may have reached its customer already, so replaying it is a deliberate choice
    (the page says so). Messages of a cancelled or paused broadcast stay where they are. The rules are applied
    again as for a new send — an address suppressed or a consent withdrawn since skips the message, quiet hours
    hold it. Returns how many were queued."""
    principal.require("messages", "update")
    if not (data.message_ids or data.broadcast_id is not None or data.channel or data.status):
        raise ValidationFailed("message_ids: name the messages, or a broadcast, channel or status",
                               errors=[FieldError("message_ids", "name the messages, or a broadcast, channel or "
                                                  "status", "required")])
    check_references(session, principal, {
        "message_ids": Ref(Message, data.message_ids or None, "update"),
        "broadcast_id": Ref(Broadcast, data.broadcast_id, "read", reach=lambda s, p, i: s.scalar(
            select(Broadcast.id).where(Broadcast.id == i, visible_broadcasts(p))) is not None)})
    held = select(Broadcast.id).where(Broadcast.org_id == principal.org_id,
                                      Broadcast.status.in_(("cancelled", "paused")))
    where = [scope(principal, Message, "update"), Message.status == (data.status or "failed"),
             Message.broadcast_id.not_in(held) | Message.broadcast_id.is_(None)]
    if data.message_ids:
        where.append(Message.id.in_(set(data.message_ids)))
    if data.broadcast_id is not None:
        where.append(Message.broadcast_id == data.broadcast_id)
    if data.channel:
        where.append(Message.channel == data.channel)
    ids = list(session.scalars(select(Message.id).where(*where).order_by(Message.id).limit(RETRY_AT_ONCE)))
    now = utcnow()
    for start in range(0, len(ids), control.ID_CHUNK):
        session.execute(update(Message).where(Message.id.in_(ids[start:start + control.ID_CHUNK])).values(
            status="queued", due_at=now, attempts=0, lease_until=None, handed_at=None, error=None)
            .execution_options(synchronize_session=False))
    skipped = control.recheck(session, principal.org_id, ids, now=now)
    queued = len(ids) - skipped
    if ids:
        audit.record(session, principal, action="retry", entity="messages", unit_id=principal.unit_id,
                     after={**data.model_dump(mode="json", exclude_none=True), "queued": queued,
                            "skipped": skipped},
                     summary=f"{queued} failed message(s) queued to be sent again, {skipped} no longer allowed")
    return queued


def message_out(principal: Principal, message: Message,
                personal: dict[int, list[tuple[str, str]]] | None = None) -> schemas.MessageOut:
    """A message as the reader may see it: without pii.read, its address masked, and the customer's personal
    values (``personal``: from ``personal_values``) masked wherever the subject or the provider's answer carries
    them."""
    out = schemas.MessageOut.model_validate(message)
    if principal.has("pii.read"):
        return out
    if out.address and message.channel != "webhook":  # a hook's URL is no PII
        out.address = mask_value("email" if message.channel == "email" else "mobile", out.address)
    pairs = (personal or {}).get(message.profile_id or 0, [])
    if message.address and message.channel != "webhook":
        pairs = [*pairs, (message.address, out.address or "")]
    out.subject, out.error = masked_text(out.subject, pairs), masked_text(out.error, pairs)
    return out


def messages_out(session: Session, principal: Principal, messages: list[Message]) -> list[schemas.MessageOut]:
    personal = personal_values(session, principal, [m.profile_id for m in messages])
    return [message_out(principal, m, personal) for m in messages]


def personal_values(session: Session, principal: Principal,
                    profile_ids: list[int | None]) -> dict[int, list[tuple[str, str]]]:
    """Each customer's personal values and their masks, for a reader without pii.read (one query; none with it):
    the mobile (as stored and as written in China), the e-mail, the birthday and the address."""
    wanted = {i for i in profile_ids if i}
    if principal.has("pii.read") or not wanted:
        return {}
    found: dict[int, list[tuple[str, str]]] = {}
    for profile_id, mobile, email, birthday, address in session.execute(
            select(Profile.id, Profile.mobile, Profile.email, Profile.birthday, Profile.address).where(
                Profile.org_id == principal.org_id, Profile.id.in_(wanted))):
        pairs: list[tuple[str, str]] = []
        if mobile:
            pairs += [(mobile, mask_value("mobile", mobile))]
            if mobile.startswith("+86"):
                pairs += [(mobile[3:], mask_value("mobile", mobile[3:]))]
        if email:
            pairs += [(email, mask_value("email", email))]
        if birthday:
            pairs += [(birthday.isoformat(), mask_value("birthday", birthday.isoformat()))]
        if address:
            pairs += [(address, mask_value("text", address))]
        found[profile_id] = pairs
    return found


def masked_text(text: str | None, pairs: list[tuple[str, str]]) -> str | None:
    """``text`` with each personal value replaced by its mask (the longest first: a mobile before its tail)."""
    if not text:
        return text
    for raw, mask in sorted(pairs, key=lambda pair: -len(pair[0])):
        if raw and len(raw) >= 4:
            text = text.replace(raw, mask)
    return text


# -- on the customer's timeline -------------------------------------------------------------------------------------
def _timeline_messages(session: Session, principal: Principal, profile: Profile,
                       params: dict[str, Any]) -> list[timeline.TimelineItem]:
    if not principal.can("messages", "read"):
        return []
    visible = control.visible_messages_bound(principal)
    query = built_once(("message_timeline", Message, visible.form), lambda: select(Message).where(
        Message.org_id == bindparam("org_id"), Message.profile_id == bindparam("profile_id"),
        Message.status != "skipped", visible.clause(), timeline.before(Message.created_at, Message.id))
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(bindparam("rows")))
    rows = session.scalars(query, {**params, **visible.params})
    return [timeline.TimelineItem("message", m.id, m.created_at, m) for m in rows]


def _timeline_item(principal: Principal, message: Message) -> dict[str, Any]:
    return {"action": message.status, "entity": "messages", "entity_id": message.id,
            "summary": message.subject or "",
            "changes": {"channel": message.channel, "status": message.status, "broadcast_id": message.broadcast_id,
                        "opened_at": _iso(message.opened_at), "clicked_at": _iso(message.clicked_at)}}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _timeline_title(item: Any, locale: str | None) -> str:
    detail = getattr(item, "changes", None) or {}
    channel = t(f"channels.channel.{detail.get('channel', 'email')}", locale)
    return t(f"timeline.message_{item.action}", locale, channel=channel, subject=item.summary or "")


TIMELINE_STREAM = timeline.TimelineStream("message", 6, _timeline_messages, _timeline_item, _timeline_title, {
    "": ("mail", "text-indigo-7"), "bounced": ("unsubscribe", "text-red-7"), "failed": ("error", "text-red-7")})
