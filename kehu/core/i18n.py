"""The i18n catalogue: every user-facing string is looked up here by key (简体中文 default, English).

Each domain keeps its own messages in ``kehu/<domain>/locales/<locale>.json`` (the platform's and the shell's in
``kehu/core/locales``); they are read as one catalogue, found by folder, so a new domain brings its messages
with it. A key is defined in one file only."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

LOCALES = ("zh", "en")
DEFAULT_LOCALE = "zh"
_PACKAGE = Path(__file__).parent.parent  # kehu/


def catalogue_files(locale: str) -> list[Path]:
    """Every domain's (and the platform's) messages in ``locale``."""
    return sorted(_PACKAGE.glob(f"*/locales/{locale}.json"))


@lru_cache
def catalogue(locale: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in catalogue_files(locale):
        messages = json.loads(path.read_text(encoding="utf-8"))
        twice = sorted(messages.keys() & merged.keys())
        if twice:
            raise ValueError(f"{path}: keys defined in another catalogue too: {', '.join(twice[:5])}")
        merged.update(messages)
    return merged


def normalise_locale(locale: str | None) -> str:
    if not locale:
        return DEFAULT_LOCALE
    short = locale.lower().replace("_", "-").split("-")[0]
    return short if short in LOCALES else DEFAULT_LOCALE


def t(key: str, locale: str | None = None, *, default: str | None = None, **params: Any) -> str:
    """Translate ``key``; falls back to the other locale, then to ``default`` or the key (a visible gap)."""
    loc = normalise_locale(locale)
    text = catalogue(loc).get(key)
    if text is None:
        fallback = key if default is None else default
        text = next((catalogue(other)[key] for other in LOCALES if key in catalogue(other)), fallback)
    return text.format(**params) if params else text


def label(labels: dict[str, str] | None, locale: str | None, fallback: str = "") -> str:
    """Pick a label from a ``{"zh": …, "en": …}`` dict stored on a row (roles, custom fields…)."""
    if not labels:
        return fallback
    loc = normalise_locale(locale)
    return labels.get(loc) or next(iter(labels.values()), fallback) or fallback
