"""脱敏: how personal data looks to a reader without ``pii.read``, decided here once, by the kind of value.

A value is masked by what it is, never by how long it happens to be: a yes/no, a date, a number or a chosen
option says everything it has in one glance, so it is hidden whole; a mobile keeps its country and operator
prefix and its last four digits (+86138****5678), an e-mail its first letter and domain (z***@example.com), a
birthday its year (1990-**-**); any other text keeps at most a short tail (a quarter of it, four characters at
most), so a 7-character plate, an ID number or an address never comes out whole. The mask never tells the
length of what it hides.

Callers name the kind (``masked(principal, MOBILE, value)``): there is no kind-less mask to reach for.
"""

from __future__ import annotations

import re
from typing import Any

from kehu.tenancy.access import Principal

MASK = "***"

TEXT, MOBILE, EMAIL, BIRTHDAY = "text", "mobile", "email", "birthday"
DATE, NUMBER, BOOLEAN, OPTION, MULTI_OPTION = "date", "number", "boolean", "option", "multi_option"
HIDDEN_WHOLE = frozenset({DATE, NUMBER, BOOLEAN, OPTION, MULTI_OPTION})
KINDS = frozenset({TEXT, MOBILE, EMAIL, BIRTHDAY, *HIDDEN_WHOLE})

_ISO_DAY = re.compile(r"(\d{4})-\d{2}-\d{2}")


def mask_value(kind: str, value: Any) -> Any:
    """``value`` (of ``kind``) with what identifies a person hidden. Empty values stay empty: that a field is
    blank is shown as it is."""
    if value is None or value == "" or value == [] or value == {}:
        return value
    if kind not in KINDS:
        raise ValueError(f"no such kind of personal data: {kind!r}")
    if kind in HIDDEN_WHOLE or isinstance(value, dict | list | bool | int | float):
        return MASK  # a structure, a flag or a number: any part of it gives it away
    text = str(value)
    if kind == EMAIL and "@" in text:
        local, _, domain = text.rpartition("@")
        return f"{local[:1] if len(local) >= 3 else ''}{MASK}@{domain}"
    if kind == MOBILE:
        if text.startswith("+") and text[1:].isdigit() and len(text) > 11:
            return f"{text[:-8]}****{text[-4:]}"  # E.164: country code and operator prefix stay
        if text.isdigit() and len(text) >= 11:
            return f"{text[:3]}****{text[-4:]}"
    if kind == BIRTHDAY:
        day = _ISO_DAY.fullmatch(text[:10])
        return f"{day.group(1)}-**-**" if day else MASK
    return _tail(text)


def _tail(text: str) -> str:
    keep = min(4, len(text) // 4)
    return MASK + text[-keep:] if keep else MASK


def masked(principal: Principal, kind: str, value: Any) -> Any:
    """The value as ``principal`` may see it: whole with ``pii.read``, masked by its kind without."""
    return value if principal.has("pii.read") else mask_value(kind, value)


def is_masked(value: Any) -> bool:
    """Whether a shown value is a mask (pages render it as it is, not as the yes/no or option it hides)."""
    return isinstance(value, str) and MASK in value
