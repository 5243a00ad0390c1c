"""Outgoing webhooks signed the Standard Webhooks way (https://www.standardwebhooks.com, spec 1.0.0): ``webhook``.

Each message is a POST of ``{"id": "msg_<message_id>", "type": "message", "created": <unix time>, "data": …}``
with the headers ``Webhook-Id``, ``Webhook-Timestamp`` and ``Webhook-Signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">``. The id stays the same on every attempt, so receivers deduplicate on it and a repeat
is harmless: ``idempotent = True``.

The signing secret is given as ``whsec_<base64>`` (the spec's serialisation, decoded to its bytes) or as any other
string (its UTF-8 bytes). Note that the spec's reference libraries base64-decode a secret even without the prefix:
receivers using them should be given the ``whsec_`` form.

Status handling follows the spec's advice: 2xx delivered; 410 Gone means the receiver wants nothing more (the
endpoint is suppressed); 408, 429 and 5xx are retried (``Retry-After`` honoured); redirects are not followed and,
like every other 4xx, fail."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from kehu.channels.providers import Outcome, Outgoing, provider
from kehu.channels.providers.errors import retry_after, short, transport_outcome

Clock = Callable[[], float]
SECRET_PREFIX = "whsec_"


def secret_bytes(secret: str | bytes) -> bytes:
    """The HMAC key: ``whsec_<base64>`` decoded, any other string as UTF-8, bytes as they are."""
    if isinstance(secret, bytes):
        key = secret
    elif secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX):]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("webhook secret starts with whsec_ but is not base64") from None
    else:
        key = secret.encode("utf-8")
    if not key:
        raise ValueError("webhook secret may not be empty")
    return key


def sign(secret: str | bytes, msg_id: str, timestamp: int | str, body: bytes | str) -> str:
    """``v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`` over the exact body bytes sent."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    to_sign = f"{msg_id}.{timestamp}.".encode() + raw
    digest = hmac.new(secret_bytes(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify_signature(secret: str | bytes, headers: Mapping[str, str], body: bytes | str, *,
                     tolerance_seconds: float = 300, now: float | None = None) -> bool:
    """True when one of the ``v1`` signatures in ``Webhook-Signature`` matches and ``Webhook-Timestamp`` is within
    ``tolerance_seconds`` of ``now`` (replay protection). Header names are matched case-insensitively; the body must
    be the raw bytes received, not JSON parsed and serialised again. A malformed ``whsec_`` secret raises
    ``ValueError``: that is a configuration error, not a forged request."""
    lowered = {key.lower(): value for key, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        return False
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_seconds:
        return False
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1].encode("ascii")
    for versioned in signatures.split(" "):
        version, _, signature = versioned.partition(",")
        # constant-time comparison, so that timing does not reveal how much of a forged signature is right
        if version == "v1" and hmac.compare_digest(expected, signature.encode("ascii", "replace")):
            return True
    return False


class Webhook:
    name = "webhook"
    idempotent = True  # Webhook-Id is the same on every attempt and receivers deduplicate on it

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any], http: httpx.Client, *,
                 now: Clock = time.time) -> None:
        url = config.get("url")
        secret = secrets.get("signing_secret")
        if not isinstance(url, str) or not url:
            raise ValueError("config 'url' is required")
        if not isinstance(secret, str | bytes) or not secret:
            raise ValueError("secret 'signing_secret' is required")
        self.url = url
        self._key = secret_bytes(secret)  # checked once, here, rather than on every message
        self._http = http
        self._now = now

    def send(self, message: Outgoing) -> Outcome:
        msg_id = f"msg_{message.message_id}"
        timestamp = int(self._now())
        body = json.dumps({"id": msg_id, "type": "message", "created": timestamp, "data": message.payload},
                          ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "Webhook-Id": msg_id,
            "Webhook-Timestamp": str(timestamp),
            "Webhook-Signature": sign(self._key, msg_id, timestamp, body),
        }
        try:
            response = self._http.post(self.url, content=body, headers=headers, follow_redirects=False)
        except httpx.TransportError as exc:
            return transport_outcome(exc, provider=self.name, idempotent=self.idempotent)
        status = response.status_code
        error = short(f"webhook HTTP {status}")
        if 200 <= status < 300:
            return Outcome("sent", provider_message_id=msg_id)
        if status == 410:
            return Outcome("suppress", error=short("webhook HTTP 410: endpoint gone"), suppress_reason="invalid")
        if status in (408, 429) or status >= 500:
            return Outcome("retry", error=error,
                           retry_after=retry_after(response.headers.get("Retry-After"), now=self._now()))
        return Outcome("failed", error=error)

    def close(self) -> None:
        pass


@provider("webhook")
def _webhook(config: dict[str, Any], secrets: dict[str, Any], http: httpx.Client) -> Webhook:
    return Webhook(config, secrets, http)
