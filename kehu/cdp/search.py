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

import unicodedata
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, and_, any_, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import ARRAY

from kehu.cdp import normalise
from kehu.cdp.models import Identity, Profile, Vehicle
from kehu.cdp.views import PSEUDONYMOUS_IDENTITIES
from kehu.core.db import PerDialect, parameter

TAIL = 4  # digits of a mobile's end kept in its index: a shorter tail matches too many to be worth a search
MOBILE_PREFIX = 7  # digits of a mobile's start that narrow it down to a few (one number in 10,000)
VIN_LENGTH = 17


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


def _kinds_in_use(org_id: Any) -> Select[Any]:
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


def _like_escaped(text: str) -> str:
    """``text`` as a LIKE pattern matches it literally (escape character '/', as SQLAlchemy's autoescape)."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def terms(q: str, *, personal: bool = True) -> tuple[tuple[str, ...], dict[str, Any]]:
    """What a search for ``q`` looks for: the arms it has (its shape: a handful of kinds of search) and their
    values. ``condition(shape, values)`` makes the condition; the same shape is the same statement whatever the
    values, so a caller may build it once (``core.db.built_once``) and bind them."""
    text = q.strip()
    arms = ["name"]
    values: dict[str, Any] = {"search_grams": grams_of(text), "search_name_lower": f"%{_like_escaped(text.lower())}%",
                              "search_name": f"%{_like_escaped(text)}%"}
    letters = text.lower().replace(" ", "")
    if letters.isascii() and letters.isalpha():
        arms.append("pinyin")
        values.update(search_pinyin=f"{letters}%", search_pinyin_from=letters, search_pinyin_to=letters + "\U0010ffff")
    if not personal:
        if len(text) == TAIL and text.isdigit():
            arms.append("tail")
            values["search_tail"] = text
        arms.append("pseudonymous")
        values["search_value"] = text
        return ("masked", *arms), values
    identity_values = {text, text.upper()}
    try:
        mobile = normalise.phone(text)
    except normalise.InvalidValue:
        digits = "".join(c for c in unicodedata.normalize("NFKC", text) if c.isdigit())  # ５６７８ too
        # the last digits of a mobile (尾号5678, 0013-5678), but not the digits of an e-mail or a VIN: read as a
        # tail, they found whoever's mobile ended so, and rechecked hundreds of rows to do it
        if len(digits) >= TAIL and "@" not in text and not any(c.isascii() and c.isalpha() for c in text):
            arms.append("tail_digits")
            values.update(search_tail=digits[-TAIL:], search_digits=f"%{digits}")
        if MOBILE_PREFIX <= len(digits) < 11 and digits.startswith("1") and len(digits) == len(text.replace(" ", "")):
            # the start of a mobile (1390021…), as a range of the identities' (org, kind, value) index: a range
            # needs no pattern index, and every stored mobile is +86 and digits, in one order in any collation
            start = "+86" + digits
            arms.append("mobile_start")
            values.update(search_mobile_from=start, search_mobile_to=start[:-1] + chr(ord(start[-1]) + 1))
    else:
        identity_values.add(mobile)
        arms.append("mobile")
        values.update(search_tail=mobile[-TAIL:], search_mobile=mobile)
    if "@" in text:
        try:
            identity_values.add(normalise.email(text))
        except normalise.InvalidValue:
            identity_values.add(text.lower())
    arms.append("identity")
    values["search_values"] = sorted(identity_values)
    if len(text) == VIN_LENGTH:
        arms.append("vin")
        values["search_vin"] = text.upper()
    return tuple(arms), values


def condition(shape: tuple[str, ...], values: dict[str, Any] | None = None) -> ColumnElement[bool]:
    """The condition on profiles of a search of ``shape`` (``terms``): with ``values`` written in, or — None — as
    parameters named as ``terms`` names them (and ``search_org_id``), for a statement built once.

    An OR of one arm per kind of match, each an index's condition, so PostgreSQL can combine the indexes (bitmap
    OR) for a precise search, or walk the caller's order and test each row for a broad one (a search for one
    letter matches a fifth of everyone), or start from the caller's scope (a consultant's few hundred customers) —
    whichever is cheaper for this search and this viewer."""

    def value(name: str, **kw: Any) -> Any:
        return parameter(name, values, **kw)

    org_id = value("search_org_id")
    in_org = Profile.org_id == org_id
    # SQLite's LIKE ignores the case of ASCII letters by itself, and scans. On PostgreSQL the grams are the index's
    # condition; tested on a row (a search that starts from the reader's customers) the LIKE goes first, since
    # PostgreSQL tests an AND inside an OR in the order written and a name's grams cost a function call each
    # (a consultant's 1,700 customers: 14 ms a search with the grams first, most of it computing them)
    arms: list[ColumnElement[bool]] = [PerDialect(
        and_(func.lower(Profile.name).like(value("search_name_lower"), escape="/"),
             name_grams(Profile.name).contains(value("search_grams", type_=ARRAY(Text)))),
        Profile.name.like(value("search_name"), escape="/"))]
    if "pinyin" in shape:
        # PostgreSQL reads the prefix off the text_pattern_ops index; SQLite's LIKE takes no index unless told to
        # be case-sensitive, a range of the index does
        arms.append(and_(in_org, PerDialect(
            Profile.name_pinyin.like(value("search_pinyin")),
            and_(Profile.name_pinyin >= value("search_pinyin_from"), Profile.name_pinyin < value("search_pinyin_to")))))
    if "tail" in shape:
        arms.append(and_(in_org, mobile_tail(Profile.mobile) == value("search_tail")))
    if "pseudonymous" in shape:
        arms.append(_among(Identity.profile_id, Identity.org_id == org_id,
                           Identity.kind.in_(sorted(PSEUDONYMOUS_IDENTITIES)), Identity.value == value("search_value")))
    if "tail_digits" in shape:
        arms.append(and_(in_org, mobile_tail(Profile.mobile) == value("search_tail"),
                         Profile.mobile.like(value("search_digits"))))
    if "mobile_start" in shape:
        arms.append(_among(Identity.profile_id, Identity.org_id == org_id, Identity.kind == "mobile",
                           Identity.value >= value("search_mobile_from"), Identity.value < value("search_mobile_to")))
    if "mobile" in shape:
        arms.append(and_(in_org, mobile_tail(Profile.mobile) == value("search_tail"),
                         Profile.mobile == value("search_mobile")))
    if "identity" in shape:
        arms.append(_among(Identity.profile_id, Identity.org_id == org_id, Identity.kind.in_(_kinds_in_use(org_id)),
                           Identity.value.in_(value("search_values", expanding=True))))
    if "vin" in shape:
        arms.append(_among(Vehicle.profile_id, Vehicle.org_id == org_id, Vehicle.vin == value("search_vin")))
    return and_(in_org, or_(*arms))


def matches(org_id: int, q: str, *, personal: bool = True) -> ColumnElement[bool]:
    """The condition on profiles that ``q`` finds (``terms`` and ``condition``, the values written in).

    ``personal=False`` (a reader without pii.read): personal data is no search key beyond what the reader is
    shown — a mobile's last four digits, identities of pseudonymous kinds only — since each answer (found / not
    found) would confirm a hidden value, and a few dozen searches rebuild a masked number digit by digit."""
    shape, values = terms(q, personal=personal)
    return condition(shape, {**values, "search_org_id": org_id})
