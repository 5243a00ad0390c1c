"""WeChat Official Account (service account) template messages: ``wechat_mp``.

The access token comes from ``POST /cgi-bin/stable_token`` (normal mode), not the older ``GET /cgi-bin/token``:
  - every kehu process (and any other system using the same AppID) gets the *same* token while it is valid, so N
    workers with their own caches do not invalidate one another, which ``/cgi-bin/token`` does on every call;
  - the AppSecret travels in the POST body, not in a URL that proxies and access logs keep.
Tokens are cached per AppID in this process until five minutes before they expire. When WeChat still says the
token is invalid or expired (40001/40014/42001), the cached one is dropped, a fresh one fetched (normal mode again:
``force_refresh`` is limited to 20 a day and would invalidate every other holder's token) and the send repeated
once.

Receipts: WeChat pushes ``TEMPLATESENDJOBFINISH`` events as XML to the account's server URL. The parser here reads
the plaintext form; the endpoint that receives the push first checks WeChat's ``signature`` (it is in the query
string, which a receipt parser does not see) and, for an account in safe mode (安全模式: an EncodingAESKey is set),
checks ``msg_signature`` and decrypts the ``<Encrypt>`` body with ``decrypt_push``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kehu.channels.providers import Outcome, Outgoing, Receipt, provider
from kehu.channels.providers.errors import seconds_until_china_hour, short, transport_outcome, unreadable_response

Clock = Callable[[], float]
REFRESH_EARLY = 300.0  # seconds before expiry a cached token is replaced
TOKEN_ERRORS = frozenset({40001, 40014, 42001})  # invalid credential / invalid token / token expired
MAX_RECEIPT_BYTES = 64 * 1024

# AppID -> (access_token, expires_at). Shared by every WechatMp of this process; guarded per AppID so that one
# slow token call does not hold up another account.
_tokens: dict[str, tuple[str, float]] = {}
_tokens_guard = threading.Lock()
_app_locks: dict[str, threading.Lock] = {}


def clear_token_cache() -> None:
    """Forget every cached token (tests; an operator who rotated an AppSecret)."""
    with _tokens_guard:
        _tokens.clear()


def _app_lock(app_id: str) -> threading.Lock:
    with _tokens_guard:
        return _app_locks.setdefault(app_id, threading.Lock())


class _Stop(Exception):
    """The send cannot go on; ``outcome`` says why (used to leave the token path early)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


def wechat_outcome(errcode: int, errmsg: str, *, now: float) -> Outcome:
    """Classify a non-zero ``errcode`` of ``message/template/send``."""
    error = short(f"wechat_mp {errcode}: {errmsg}")
    if errcode in (43004, 43101):  # the user does not follow the account (any more) / refuses its messages
        return Outcome("suppress", error=error, suppress_reason="unsubscribed")
    if errcode == 40003:  # not an OpenID of this account
        return Outcome("suppress", error=error, suppress_reason="invalid")
    if errcode == 45009:  # the API's daily quota: it resets at midnight, China time
        return Outcome("retry", error=error, retry_after=seconds_until_china_hour(0, now=now))
    if errcode in (45047, -1) or errcode in TOKEN_ERRORS:  # frequency limit, "system busy", a token race
        return Outcome("retry", error=error)
    # 40037 invalid template_id, 47003 bad data, 48001 API not authorised, 40164 IP not allow-listed …
    return Outcome("failed", error=error)


def _token_error(errcode: Any, errmsg: str, *, now: float) -> Outcome:
    """Classify a failed ``stable_token`` call (here 40001/40125 mean a wrong AppSecret, not a stale token)."""
    error = short(f"wechat_mp token {errcode}: {errmsg}")
    if errcode == -1:
        return Outcome("retry", error=error)
    if errcode == 45009:
        return Outcome("retry", error=error, retry_after=seconds_until_china_hour(0, now=now))
    return Outcome("failed", error=error)  # wrong AppID/AppSecret, IP not allow-listed, account frozen …


class WechatMp:
    name = "wechat_mp"
    # template/send has no lasting idempotency key: client_msg_id (sent below) only deduplicates for ten minutes,
    # and a dispatcher's later repeat of a timed-out call could reach the user twice
    idempotent = False

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any], http: httpx.Client, *,
                 now: Clock = time.time) -> None:
        app_id = config.get("app_id")
        app_secret = secrets.get("app_secret")
        if not isinstance(app_id, str) or not app_id:
            raise ValueError("config 'app_id' is required")
        if not isinstance(app_secret, str) or not app_secret:
            raise ValueError("secret 'app_secret' is required")
        self.app_id = app_id
        self.base_url = str(config.get("base_url") or "https://api.weixin.qq.com").rstrip("/")
        self._app_secret = app_secret
        self._http = http
        self._now = now

    # -- the access token ----------------------------------------------------------------------------------------

    def _token(self) -> str:
        with _app_lock(self.app_id):
            cached = _tokens.get(self.app_id)
            now = self._now()
            if cached is not None and now < cached[1] - REFRESH_EARLY:
                return cached[0]
            token, expires_in = self._fetch_token()
            _tokens[self.app_id] = (token, now + expires_in)
            return token

    def _forget(self, token: str) -> None:
        """Drop ``token`` unless another thread has already replaced it."""
        with _app_lock(self.app_id):
            cached = _tokens.get(self.app_id)
            if cached is not None and cached[0] == token:
                del _tokens[self.app_id]

    def _fetch_token(self) -> tuple[str, float]:
        body = {"grant_type": "client_credential", "appid": self.app_id, "secret": self._app_secret}
        try:
            response = self._http.post(f"{self.base_url}/cgi-bin/stable_token", json=body)
        except httpx.TransportError as exc:
            # Fetching a token delivers nothing, and normal mode hands out the same token again: always repeatable
            raise _Stop(transport_outcome(exc, provider=f"{self.name} token", idempotent=True)) from None
        data = _json(response)
        if not isinstance(data, dict):
            raise _Stop(unreadable_response(response, provider=f"{self.name} token", idempotent=True,
                                            now=self._now()))
        token = data.get("access_token")
        if isinstance(token, str) and token:
            try:
                expires_in = float(data.get("expires_in") or 7200)
            except (TypeError, ValueError):
                expires_in = 7200.0
            return token, expires_in
        raise _Stop(_token_error(data.get("errcode"), str(data.get("errmsg", "")), now=self._now()))

    # -- sending ------------------------------------------------------------------------------------------------

    def send(self, message: Outgoing) -> Outcome:
        if not message.provider_template:
            return Outcome("failed", error="wechat_mp: no template_id (provider_template) for this message")
        body: dict[str, Any] = {
            "touser": message.address,
            "template_id": message.provider_template,
            "data": {name: {"value": value} for name, value in message.fields.items()},
            "client_msg_id": f"kehu-{message.message_id}",
        }
        if message.url:
            body["url"] = message.url
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            token = self._token()
            outcome, errcode = self._post(token, payload)
            if errcode in TOKEN_ERRORS:  # WeChat dropped the token before its time (another holder, a reset …)
                self._forget(token)
                outcome, errcode = self._post(self._token(), payload)
        except _Stop as stop:
            return stop.outcome
        return outcome

    def _post(self, token: str, payload: bytes) -> tuple[Outcome, int | None]:
        try:
            response = self._http.post(f"{self.base_url}/cgi-bin/message/template/send",
                                       params={"access_token": token}, content=payload,
                                       headers={"Content-Type": "application/json; charset=utf-8"})
        except httpx.TransportError as exc:
            return transport_outcome(exc, provider=self.name, idempotent=self.idempotent), None
        data = _json(response)
        if not isinstance(data, dict) or ("errcode" not in data and "msgid" not in data):
            return unreadable_response(response, provider=self.name, idempotent=self.idempotent, now=self._now()), None
        try:
            errcode = int(data.get("errcode", 0))
        except (TypeError, ValueError):
            errcode = -2  # undocumented: classified as failed below
        if errcode == 0:
            msgid = data.get("msgid")
            return Outcome("sent", provider_message_id=str(msgid) if msgid is not None else None), 0
        return wechat_outcome(errcode, str(data.get("errmsg", "")), now=self._now()), errcode

    def close(self) -> None:
        pass


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


# -- receipts ---------------------------------------------------------------------------------------------------

# Any markup declaration (<!DOCTYPE, <!ENTITY, <!ELEMENT …) except CDATA sections and comments
_DECLARATION = re.compile(r"<!(?!\[CDATA\[|--)")


def parse_push_xml(body: bytes) -> dict[str, str]:
    """The child elements of a WeChat push (``<xml><MsgID>…</MsgID>…</xml>``) as a dict of their text.

    WeChat never sends a DTD, so any declaration is refused before parsing: no entity can be defined, hence none
    expanded (billion laughs) and no external one fetched. The body is decoded as UTF-8 here and handed to the
    parser as text, which makes expat ignore any ``encoding=`` declaration that could reinterpret the bytes."""
    if len(body) > MAX_RECEIPT_BYTES:
        raise ValueError("WeChat push larger than expected; refused")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("WeChat push is not UTF-8; refused") from None
    if _DECLARATION.search(text):
        raise ValueError("XML with a DOCTYPE or ENTITY declaration; refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"malformed WeChat push: {exc}") from None
    return {child.tag: (child.text or "").strip() for child in root}


def decrypt_push(body: bytes, query: Mapping[str, str], *, token: str, encoding_aes_key: str,
                 app_id: str) -> bytes:
    """The plaintext XML of a safe-mode push, as WeChat documents its message encryption: ``msg_signature`` is the
    SHA-1 of the server token, ``timestamp``, ``nonce`` and the ``<Encrypt>`` text, sorted and joined; the text is
    AES-256-CBC (key: the 43-character EncodingAESKey, base64; IV: its first 16 bytes; PKCS#7 padding to 32 bytes)
    of 16 random bytes, the message's length (4 bytes, big-endian), the message and the AppID, which must be
    ours. A push without ``<Encrypt>`` is refused: an account in safe mode takes no plaintext. ValueError for
    anything that does not hold."""
    fields = parse_push_xml(body)
    encrypted = fields.get("Encrypt")
    if not encrypted:
        raise ValueError("safe mode: the push carries no <Encrypt>")
    parts = sorted([token, query.get("timestamp", ""), query.get("nonce", ""), encrypted])
    expected = hashlib.sha1("".join(parts).encode()).hexdigest()
    if not hmac.compare_digest(expected.encode(), query.get("msg_signature", "").encode()):
        raise ValueError("safe mode: msg_signature does not match")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
        cipher_text = base64.b64decode(encrypted, validate=True)
    except ValueError:
        raise ValueError("safe mode: the key or the text is not base64") from None
    if len(key) != 32 or not cipher_text or len(cipher_text) % 16:
        raise ValueError("safe mode: wrong key or text length")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(cipher_text) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= 32 or plain[-pad:] != bytes([pad]) * pad:
        raise ValueError("safe mode: bad padding (wrong EncodingAESKey?)")
    plain = plain[:-pad]
    length = int.from_bytes(plain[16:20], "big")
    message, sender = plain[20:20 + length], plain[20 + length:]
    if len(message) != length or not hmac.compare_digest(sender, app_id.encode()):
        raise ValueError("safe mode: the push is not for this AppID")
    return message


def wechat_receipts(body: bytes, headers: dict[str, str], config: dict[str, Any],
                    secrets: dict[str, Any]) -> list[Receipt]:
    """``TEMPLATESENDJOBFINISH``: Status ``success`` → delivered; ``failed:user block`` (the user refuses the
    account's messages) → failed and the OpenID suppressed as unsubscribed; ``failed: system failed`` → failed.
    Any other push (a user's message, a menu click) is not a receipt: ``[]``."""
    fields = parse_push_xml(body)
    if fields.get("MsgType") != "event" or fields.get("Event", "").upper() != "TEMPLATESENDJOBFINISH":
        return []
    msg_id = fields.get("MsgID")
    if not msg_id:
        return []
    status = fields.get("Status", "")
    if status == "success":
        return [Receipt(msg_id, "delivered")]
    error = short(f"wechat_mp {status or 'failed'}")
    if "user block" in status:
        return [Receipt(msg_id, "failed", error=error, suppress_reason="unsubscribed")]
    return [Receipt(msg_id, "failed", error=error)]


@provider("wechat_mp", receipts=wechat_receipts)
def _wechat_mp(config: dict[str, Any], secrets: dict[str, Any], http: httpx.Client) -> WechatMp:
    return WechatMp(config, secrets, http)
