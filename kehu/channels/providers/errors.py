"""What the third-party providers share about failure: the exception for a call whose outcome nobody knows, and
the few rules every HTTP provider applies the same way (which transport errors mean "nothing went out", how a
``Retry-After`` is read, how long an error string may be).

A timeout *before* the request left (no connection, no free connection in the pool) is always safe to retry. A
timeout or broken connection *after* the request was written is not: the provider may have taken the message. A
provider whose receiver recognises repeats (``idempotent``) may send it again; any other raises ``OutcomeUnknown``
so that the dispatcher marks the message ``unknown`` for a person to decide, rather than texting a customer twice."""

from __future__ import annotations

import email.utils
import math
from datetime import UTC, datetime, timedelta, timezone

import httpx

from kehu.channels.providers import Outcome

MAX_ERROR = 300
# China has one time zone and no daylight saving: the providers' daily quotas and quiet hours follow it
CHINA = timezone(timedelta(hours=8))

# Raised while the connection was being set up: the request never reached the provider.
_NOT_SENT: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)
# Our own configuration or code is wrong (a bad URL, a request httpx refuses to write): repeating changes nothing.
_NEVER_SENT_BROKEN: tuple[type[Exception], ...] = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


class OutcomeUnknown(Exception):
    """The request may have reached the provider but no answer came back, and a repeat could deliver twice.

    The message (``args[0]``) is short and holds no secrets; the dispatcher stores it and marks the message
    ``unknown``."""


def short(text: str, limit: int = MAX_ERROR) -> str:
    """Errors end up in a column and on a screen: one line, bounded."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def transport_outcome(exc: httpx.TransportError, *, provider: str, idempotent: bool) -> Outcome:
    """Classify an exception httpx raised instead of a response (raises ``OutcomeUnknown`` when undecidable).

    Only the exception's class goes into the error: httpx messages can quote the URL, and some URLs carry
    credentials (WeChat's ``access_token``)."""
    kind = type(exc).__name__
    if isinstance(exc, _NOT_SENT):
        return Outcome("retry", error=short(f"{provider}: {kind} before the request was sent"))
    if isinstance(exc, _NEVER_SENT_BROKEN):
        return Outcome("failed", error=short(f"{provider}: {kind} (request could not be written)"))
    # ReadTimeout, WriteTimeout, RemoteProtocolError, ReadError, WriteError …: the request may have gone out
    if idempotent:
        return Outcome("retry", error=short(f"{provider}: {kind} after the request was sent; safe to repeat"))
    raise OutcomeUnknown(short(f"{provider}: {kind} after the request was sent; it may have been delivered"))


def unreadable_response(response: httpx.Response, *, provider: str, idempotent: bool, now: float) -> Outcome:
    """A response whose body is not what the provider documents: judge it by its HTTP status alone.

    A 2xx without the documented body means the provider took the request and we cannot tell what it did, so it
    is treated like a timeout after sending."""
    status = response.status_code
    if 200 <= status < 300:
        if idempotent:
            return Outcome("retry", error=short(f"{provider}: HTTP {status} with an unreadable body; safe to repeat"))
        raise OutcomeUnknown(short(f"{provider}: HTTP {status} with an unreadable body; it may have been delivered"))
    if status in (408, 429) or status >= 500:
        wait = retry_after(response.headers.get("Retry-After"), now=now)
        return Outcome("retry", error=short(f"{provider}: HTTP {status}"), retry_after=wait)
    return Outcome("failed", error=short(f"{provider}: HTTP {status}"))


def retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: a number of seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def seconds_until_china_hour(hour: int, *, now: float) -> float:
    """Seconds from ``now`` to the next ``hour``:00 in China (a daily quota resets at 0:00, quiet hours end at 8:00)."""
    local = datetime.fromtimestamp(now, CHINA)
    target = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if target <= local:
        target += timedelta(days=1)
    return (target - local).total_seconds()
