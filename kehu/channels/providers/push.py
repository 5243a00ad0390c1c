"""App push through JPush (极光推送) REST API v3: ``jpush``.

One notification per message to one device (``audience.registration_id``), HTTP Basic auth with the app's
AppKey and Master Secret. JPush echoes ``options.sendno`` back but does not deduplicate on it, so a repeat after a
lost answer is a second notification: ``idempotent = False``.

JPush answers 200 only for success; otherwise a 4xx/5xx with ``{"error": {"code", "message"}}``. Codes used here
(Push API v3): 1000 internal error and 1030 internal timeout (try later); 1001/1002/1003 method or parameters;
1004 authentication; 1005 body too long; 1008 AppKey invalid; 1011 no target (the registration id is unknown: app
uninstalled or reinstalled); 1020 HTTPS only; 2002/2003 rate limited (HTTP 429, ``X-Rate-Limit-Reset``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from kehu.channels.providers import Outcome, Outgoing, provider
from kehu.channels.providers.errors import retry_after, short, transport_outcome

Clock = Callable[[], float]
_RETRY_CODES = frozenset({1000, 1030})
_RATE_LIMIT_CODES = frozenset({2002, 2003})


def _rate_limit_reset(value: str | None, *, now: float) -> float | None:
    """Seconds until JPush's rate window resets. Documented as the seconds left in the window; a value that looks
    like a Unix time is read as one, so either reading waits a sensible time."""
    if not value:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if number > 1_000_000_000:
        number -= now
    return max(0.0, number)


def _flag(value: Any) -> bool:
    """A setting stored as text ("false") must not turn into True."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def jpush_outcome(code: int | None, message: str, *, status: int, headers: Mapping[str, str], now: float) -> Outcome:
    """Classify a JPush answer other than 200, by its error code first and its HTTP status second."""
    error = short(f"jpush {code if code is not None else '-'} (HTTP {status}): {message}")
    if code == 1011:
        return Outcome("suppress", error=error, suppress_reason="invalid")
    if code in _RATE_LIMIT_CODES or status == 429:
        wait = _rate_limit_reset(headers.get("X-Rate-Limit-Reset"), now=now)
        if wait is None:
            wait = retry_after(headers.get("Retry-After"), now=now)
        return Outcome("retry", error=error, retry_after=wait)
    if code in _RETRY_CODES or status >= 500:
        return Outcome("retry", error=error, retry_after=retry_after(headers.get("Retry-After"), now=now))
    return Outcome("failed", error=error)  # 1001–1008, 1020, 401/403 and any other 4xx: fix the request first


class JPush:
    name = "jpush"
    idempotent = False  # sendno is echoed, not deduplicated

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any], http: httpx.Client, *,
                 now: Clock = time.time) -> None:
        app_key = config.get("app_key")
        master_secret = secrets.get("master_secret")
        if not isinstance(app_key, str) or not app_key:
            raise ValueError("config 'app_key' is required")
        if not isinstance(master_secret, str) or not master_secret:
            raise ValueError("secret 'master_secret' is required")
        self.app_key = app_key
        self.apns_production = _flag(config.get("apns_production", False))
        self.base_url = str(config.get("base_url") or "https://api.jpush.cn").rstrip("/")
        self._auth = httpx.BasicAuth(app_key, master_secret)
        self._http = http
        self._now = now

    def payload(self, message: Outgoing) -> dict[str, Any]:
        extras = {"url": message.url} if message.url else {}
        android: dict[str, Any] = {"alert": message.text}
        ios: dict[str, Any] = {"alert": {"title": message.subject, "body": message.text} if message.subject
                               else message.text}
        if message.subject:
            android["title"] = message.subject
        if extras:
            android["extras"] = extras
            ios["extras"] = extras
        return {
            "platform": "all",
            "audience": {"registration_id": [message.address]},
            "notification": {"alert": message.text, "android": android, "ios": ios},
            "options": {"sendno": message.message_id % 2**31, "apns_production": self.apns_production},
        }

    def send(self, message: Outgoing) -> Outcome:
        if not message.address:
            return Outcome("suppress", error="jpush: no registration id", suppress_reason="invalid")
        body = json.dumps(self.payload(message), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            response = self._http.post(f"{self.base_url}/v3/push", content=body, auth=self._auth,
                                       headers={"Content-Type": "application/json"})
        except httpx.TransportError as exc:
            return transport_outcome(exc, provider=self.name, idempotent=self.idempotent)
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code == 200:  # "200 is always success" (JPush HTTP status code specification)
            msg_id = data.get("msg_id") if isinstance(data, dict) else None
            return Outcome("sent", provider_message_id=str(msg_id) if msg_id not in (None, "") else None)
        code: int | None = None
        text = ""
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            try:
                code = int(data["error"].get("code"))
            except (TypeError, ValueError):
                code = None
            text = str(data["error"].get("message", ""))
        return jpush_outcome(code, text, status=response.status_code, headers=response.headers, now=self._now())

    def close(self) -> None:
        pass


@provider("jpush")
def _jpush(config: dict[str, Any], secrets: dict[str, Any], http: httpx.Client) -> JPush:
    return JPush(config, secrets, http)
