"""Customer search answered from indexes: the profiles whose name contains the text, whose pinyin starts with it,
whose mobile ends with its digits, or who hold it as an identity (mobile, e-mail, VIN, openid, user id…).

The search is one OR with an arm per kind of match, each arm an index's condition on profiles (identities and
vehicles are looked up first and come in as an array of profile ids), so PostgreSQL can combine the indexes in a
bitmap OR. Written as a substring LIKE over the name ORed with EXISTS on other tables, no index could serve any
of it: at a million profiles every search read the whole table (~1 s alone, 29 s with fifty users at once).

The indexes, made by migration 0025: on PostgreSQL a GIN over each name's characters and pairs of adjacent
characters (``kehu_name_grams``; trigrams would not do, most Chinese names are two or three characters and a
search for 张伟 has no trigram), the pinyin in byte order (``text_pattern_ops``: LIKE 'zhang%' takes no plain
index under a C.UTF-8 or en_US collation), the mobile's last four digits, and the identities' and vehicles'
unique keys. SQLite, kehu's one-laptop database, has the same indexes but the name's: it has no GIN, and it
reads its names in a scan (~30 ms at 100,000 profiles).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, Text, and_, any_, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import ARRAY

from kehu.cdp import normalise
from kehu.cdp.models import Identity, Profile, Vehicle
from kehu.cdp.views import PSEUDONYMOUS_IDENTITIES
from kehu.core.db import PerDialect

TAIL = 4  # digits of a mobile's end kept in its index: a shorter tail matches too many to be worth a search
MOBILE_PREFIX = 7  # digits of a mobile's start that narrow it down to a few (one number in 10,000)
VIN_LENGTH = 17
PHONE_PUNCTUATION = frozenset(" +-().")  # what people type between a number's digits


def mobile_tail(column: Any) -> ColumnElement[Any]:
    """The last four characters of a mobile, as its index stores them. The same SQL on both databases, with the
    length written in (a bound parameter would not match the index's expression on SQLite)."""
    return func.substr(column, func.length(column) - literal_column(str(TAIL - 1)))


def name_grams(column: Any) -> ColumnElement[Any]:
    """A name's characters and pairs of adjacent characters, lower-cased (PostgreSQL; migration 0025)."""
    return func.kehu_name_grams(column, type_=ARRAY(Text))


def grams_of(text: str) -> list[str]:
    """The keys every name containing ``text`` holds in its grams: its one character, or its pairs."""
    lowered = text.lower()
    if len(lowered) == 1:
        return [lowered]
    return sorted({lowered[i:i + 2] for i in range(len(lowered) - 1)})


def _kinds_in_use(org_id: int) -> Select[Any]:
    """The identity kinds the organisation's identities have, read off the (org, kind, value) index one kind at a
    time (a dozen probes, not a scan): with them the index finds a value of any kind."""
    kinds = select(func.min(Identity.kind).label("kind")).where(Identity.org_id == org_id).cte(
        "identity_kinds_in_use", recursive=True)
    following = select(func.min(Identity.kind)).where(Identity.org_id == org_id, Identity.kind > kinds.c.kind)
    kinds = kinds.union_all(select(following.scalar_subquery()).where(kinds.c.kind.is_not(None)))
    return select(kinds.c.kind).where(kinds.c.kind.is_not(None))


def _among(profile_id: Any, *where: Any) -> ColumnElement[bool]:
    """The profile is one of the few that ``profile_id`` of the rows ``where`` names (identities, vehicles). On
    PostgreSQL written as ``id = ANY(those ids as one array)``: the array is computed once and the primary key
    looks its ids up, so this arm joins the others in one bitmap OR of indexes; ``id IN (subquery)`` is no index
    condition there, and an OR with one turns the whole search into a filter over every row."""
    ids = func.coalesce(select(func.array_agg(profile_id)).where(*where).scalar_subquery(),
                        literal_column("'{}'::bigint[]"))  # an expression, not "ANY (SELECT …)" of rows
    return PerDialect(Profile.id == any_(ids), Profile.id.in_(select(profile_id).where(*where)))


def matches(org_id: int, q: str, *, personal: bool = True) -> ColumnElement[bool]:
    """The condition on profiles that ``q`` finds: an OR of one arm per kind of match, each an index's condition,
    so PostgreSQL can combine the indexes (bitmap OR) for a precise search, or walk the caller's order and test
    each row for a broad one (a search for one letter matches a fifth of everyone), or start from the caller's
    scope (a consultant's few hundred customers) — whichever is cheaper for this search and this viewer.

    ``personal=False`` (a reader without pii.read): personal data is no search key beyond what the reader is
    shown — a mobile's last four digits, identities of pseudonymous kinds only — since each answer (found / not
    found) would confirm a hidden value, and a few dozen searches rebuild a masked number digit by digit."""
    text = q.strip()
    in_org = Profile.org_id == org_id
    # SQLite's LIKE ignores the case of ASCII letters by itself, and scans
    arms: list[ColumnElement[bool]] = [PerDialect(
        and_(name_grams(Profile.name).contains(grams_of(text)),
             func.lower(Profile.name).contains(text.lower(), autoescape=True)),
        Profile.name.contains(text, autoescape=True))]
    letters = text.lower().replace(" ", "")
    if letters.isascii() and letters.isalpha():
        # PostgreSQL reads the prefix off the text_pattern_ops index; SQLite's LIKE takes no index unless told to
        # be case-sensitive, a range of the index does
        arms.append(and_(in_org, PerDialect(
            Profile.name_pinyin.like(f"{letters}%"),
            and_(Profile.name_pinyin >= letters, Profile.name_pinyin < letters + "\U0010ffff"))))
    if not personal:
        if len(text) == TAIL and text.isdigit():
            arms.append(and_(in_org, mobile_tail(Profile.mobile) == text))
        arms.append(_among(Identity.profile_id, Identity.org_id == org_id,
                           Identity.kind.in_(sorted(PSEUDONYMOUS_IDENTITIES)), Identity.value == text))
        return and_(in_org, or_(*arms))
    values = {text, text.upper()}
    try:
        mobile = normalise.phone(text)
    except normalise.InvalidValue:
        digits = "".join(c for c in text if c.isdigit())
        # the last digits of a mobile: only a text of digits is one (the digits of an e-mail or a VIN are not,
        # and read as a tail they found whoever's mobile ended so, and rechecked hundreds of rows to do it)
        if len(digits) >= TAIL and all(c.isdigit() or c in PHONE_PUNCTUATION for c in text):
            arms.append(and_(in_org, mobile_tail(Profile.mobile) == digits[-TAIL:], Profile.mobile.endswith(digits)))
        if MOBILE_PREFIX <= len(digits) < 11 and digits.startswith("1") and len(digits) == len(text.replace(" ", "")):
            # the start of a mobile (1390021…), as a range of the identities' (org, kind, value) index: a range
            # needs no pattern index, and every stored mobile is +86 and digits, in one order in any collation
            start = "+86" + digits
            arms.append(_among(Identity.profile_id, Identity.org_id == org_id, Identity.kind == "mobile",
                               Identity.value >= start, Identity.value < start[:-1] + chr(ord(start[-1]) + 1)))
    else:
        values.add(mobile)
        arms.append(and_(in_org, mobile_tail(Profile.mobile) == mobile[-TAIL:], Profile.mobile == mobile))
    if "@" in text:
        try:
            values.add(normalise.email(text))
        except normalise.InvalidValue:
            values.add(text.lower())
    arms.append(_among(Identity.profile_id, Identity.org_id == org_id, Identity.kind.in_(_kinds_in_use(org_id)),
                       Identity.value.in_(sorted(values))))
    if len(text) == VIN_LENGTH:
        arms.append(_among(Vehicle.profile_id, Vehicle.org_id == org_id, Vehicle.vin == text.upper()))
    return and_(in_org, or_(*arms))
