"""What comes back from a message: an open (the e-mail's pixel), a click (a link through kehu's signed redirect,
so the redirect is never open to any address someone makes up), an unsubscribe (RFC 8058 one-click, or the page
behind the link), and the providers' delivery receipts. Each is recorded on the message (the first time) and
becomes an event on the customer, so segments, scoring and journeys see it.

The tokens in links are signed with the installation's secret key (rendering.sign): a changed message id or URL
is refused, so nobody can unsubscribe someone else or bounce visitors through kehu to another site."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kehu.cdp import relations
from kehu.cdp.models import Profile
from kehu.cdp.service import live_profile_ids
from kehu.channels import control, rendering
from kehu.channels.manifest import EMAIL_OPENED, LINK_CLICKED, MESSAGE_BOUNCED, MESSAGE_DELIVERED, UNSUBSCRIBED
from kehu.channels.models import ChannelAccount, Message
from kehu.channels.providers import receipt_parser
from kehu.channels.providers.wechat import decrypt_push
from kehu.core import events
from kehu.core.db import affected, utcnow
from kehu.core.errors import NotFound
from kehu.core.settings import get_settings
from kehu.tenancy.access import Principal

CONSENT_CHANNEL = {"email": "email", "sms": "sms", "wechat": "wechat", "push": "app_push"}


def _secret() -> str:
    return get_settings().effective_secret_key()


def _message(session: Session, message_id: str | None) -> Message | None:
    if message_id is None or not message_id.isdigit():
        return None
    return session.get(Message, int(message_id))


def _what(message: Message) -> dict[str, Any]:
    return {"message_id": message.id, "channel": message.channel, "purpose": message.purpose,
            "broadcast_id": message.broadcast_id}


def _first(session: Session, message: Message, column: str) -> bool:
    """Set the moment once; whether this was the first time."""
    column_attr = getattr(Message, column)
    return bool(affected(session.execute(update(Message).where(Message.id == message.id, column_attr.is_(None))
                                         .values({column: utcnow()}).execution_options(synchronize_session=False))))


def opened(session: Session, token: str) -> bool:
    """The pixel was loaded; False when the token is not one kehu made."""
    message = _message(session, rendering.unsign(_secret(), "open", token))
    if message is None:
        return False
    if _first(session, message, "opened_at") and message.profile_id is not None:
        events.publish(session, EMAIL_OPENED, org_id=message.org_id, entity="messages", entity_id=message.id,
                       profile_id=message.profile_id, **_what(message))
    return True


def clicked(session: Session, token: str) -> str:
    """Where the link goes; NotFound when the token is not one kehu made (the redirect is never open)."""
    value = rendering.unsign(_secret(), "click", token)
    if value is None or " " not in value:
        raise NotFound("This link is not valid.")
    message_id, url = value.split(" ", 1)
    message = _message(session, message_id)
    if message is None:
        raise NotFound("This link is not valid.")
    _first(session, message, "opened_at")  # a click is an open too (images are often blocked)
    _first(session, message, "clicked_at")
    if message.profile_id is not None:
        events.publish(session, LINK_CLICKED, org_id=message.org_id, entity="messages", entity_id=message.id,
                       profile_id=message.profile_id, url=url[:2000], **_what(message))
    return url


def unsubscribe_target(session: Session, token: str) -> Message:
    message = _message(session, rendering.unsign(_secret(), "unsubscribe", token))
    if message is None:
        raise NotFound("This unsubscribe link is not valid.")
    return message


def unsubscribe(session: Session, token: str, *, how: str) -> Message:
    """Withdraw marketing consent for the message's channel, with the evidence (which message, how), and stop
    marketing to its address. Doing it twice changes nothing more."""
    message = unsubscribe_target(session, token)
    if not _first(session, message, "unsubscribed_at"):
        return message
    evidence = f"unsubscribe link of message {message.id} ({how})"
    if message.address:
        control.suppress(session, org_id=message.org_id, channel=message.channel, address=message.address,
                         reason="unsubscribed", evidence=evidence, message_id=message.id)
    consent_channel = CONSENT_CHANNEL.get(message.channel)
    if message.profile_id is not None:
        live = live_profile_ids(session, {message.profile_id}).get(message.profile_id, message.profile_id)
        profile = session.get(Profile, live)
        if profile is not None and consent_channel:
            relations.record_consent(session, Principal.system(message.org_id), profile, channel=consent_channel,
                                     purpose="marketing", granted=False, evidence=evidence)
        events.publish(session, UNSUBSCRIBED, org_id=message.org_id, entity="messages", entity_id=message.id,
                       profile_id=message.profile_id, address=message.address, **_what(message))
    return message


def _receipt_account(session: Session, account_id: int, token: str) -> ChannelAccount:
    if rendering.unsign(_secret(), "receipts", token) != str(account_id):
        raise NotFound("No such receipt address.")
    account = session.get(ChannelAccount, account_id)
    if account is None or receipt_parser(account.provider) is None:
        raise NotFound("No such receipt address.")
    return account


def wechat_signed(account: ChannelAccount, query: dict[str, str]) -> bool:
    """Whether a call to the account's server address comes from WeChat: ``signature`` is the SHA-1 of the
    server token (set in the official account's settings and in kehu's), ``timestamp`` and ``nonce``, sorted and
    joined. Without a server token configured there is nothing to check beyond the address's own token."""
    server_token = str((account.config or {}).get("server_token") or "")
    if not server_token:
        return True
    parts = sorted([server_token, query.get("timestamp", ""), query.get("nonce", "")])
    expected = hashlib.sha1("".join(parts).encode()).hexdigest()
    return hmac.compare_digest(expected.encode(), query.get("signature", "").encode())  # bytes: any text compares


def verify_server(session: Session, account_id: int, token: str, query: dict[str, str]) -> str:
    """WeChat's check of a server address when it is configured: ``echostr`` back if the call is WeChat's."""
    account = _receipt_account(session, account_id, token)
    if account.provider != "wechat_mp" or not wechat_signed(account, query):
        raise NotFound("No such receipt address.")
    return query.get("echostr", "")


def receipts(session: Session, account_id: int, token: str, body: bytes, headers: dict[str, str],
             query: dict[str, str] | None = None) -> int:
    """A provider's delivery receipts for an account (its callback address carries a token signed for that
    account, since most providers sign nothing we can check; WeChat's calls are checked as it documents);
    returns how many messages they settled."""
    account = _receipt_account(session, account_id, token)
    parser = receipt_parser(account.provider)
    assert parser is not None
    if account.provider == "wechat_mp":
        if not wechat_signed(account, query or {}):
            raise NotFound("No such receipt address.")
        aes_key = str((account.secrets or {}).get("encoding_aes_key") or "")
        if aes_key:  # safe mode (安全模式): every push is encrypted
            try:
                body = decrypt_push(body, query or {}, token=str((account.config or {}).get("server_token") or ""),
                                    encoding_aes_key=aes_key, app_id=str((account.config or {}).get("app_id")))
            except ValueError as error:
                raise NotFound("No such receipt address.") from error
    try:
        found = parser(body, headers, dict(account.config or {}), dict(account.secrets or {}))
    except ValueError as error:  # not a receipt this provider could have sent (malformed, oversized, a DTD)
        raise NotFound("No such receipt address.") from error
    settled = 0
    for receipt in found:
        message = session.scalar(select(Message).where(Message.org_id == account.org_id,
                                                       Message.provider == account.provider,
                                                       Message.provider_message_id == receipt.provider_message_id))
        if message is None:
            continue
        settled += 1
        if receipt.status == "delivered":
            if _first(session, message, "delivered_at"):
                session.execute(update(Message).where(Message.id == message.id, Message.status == "sent")
                                .values(status="delivered").execution_options(synchronize_session=False))
                if message.profile_id is not None:
                    events.publish(session, MESSAGE_DELIVERED, org_id=message.org_id, entity="messages",
                                   entity_id=message.id, profile_id=message.profile_id, **_what(message))
            continue
        session.execute(update(Message).where(Message.id == message.id).values(
            status="bounced", error=(receipt.error or receipt.status)[:1000])
            .execution_options(synchronize_session=False))
        if receipt.suppress_reason and message.address:
            control.suppress(session, org_id=message.org_id, channel=message.channel, address=message.address,
                             reason=receipt.suppress_reason, evidence=receipt.error or "", message_id=message.id)
        if message.profile_id is not None:
            events.publish(session, MESSAGE_BOUNCED, org_id=message.org_id, entity="messages", entity_id=message.id,
                           profile_id=message.profile_id, error=receipt.error, **_what(message))
    return settled


def receipt_url(base: str, account_id: int) -> str:
    """Where a provider posts its receipts for this account (shown on the account's settings)."""
    return f"{base}/hooks/channels/{account_id}/{rendering.sign(_secret(), 'receipts', str(account_id))}"
