"""Values are normalised before they are stored or matched: E.164 phones (CN default), lower-case e-mails,
trimmed names with pinyin, ISO birthdays, a small gender vocabulary."""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import phonenumbers
from pypinyin import Style, lazy_pinyin

from kehu.cdp.models import ADDRESS_LENGTH, POSTCODE_LENGTH
from kehu.tenancy.masking import MASK

DEFAULT_REGION = "CN"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SPACES = re.compile(r"\s+")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_EARLIEST_BIRTHDAY = date(1900, 1, 1)
_SURELY_PAST = date(2026, 1, 1)  # a day before it is before today on any day the code runs: no date.today()


class InvalidValue(ValueError):
    """A value that cannot be normalised. ``code`` and ``params`` name the problem so that people fixing
    their data read it in their own language; ``str()`` is the English text (API, logs)."""

    def __init__(self, code: str, **params: object) -> None:
        self.code = code
        self.params = {k: str(v) for k, v in params.items()}
        super().__init__(self.text("en"))

    def text(self, locale: str | None) -> str:
        from kehu.core.i18n import t

        return t(f"invalid.{self.code}", locale, default=self.code, **self.params)

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "params": self.params}


_CN_MOBILE = re.compile(r"(?:\+?86)?(1[3-9]\d{9})")
_SEPARATORS = str.maketrans("", "", " -()")


@functools.cache
def _cn_mobile_numbers() -> re.Pattern[str]:
    """libphonenumber's own pattern of mainland mobile numbers (national form). A number it matches is valid
    and its E.164 form is +86 and the number; anything else takes the full parse, so the answer is always
    libphonenumber's — at half a microsecond for the millions of ordinary mobiles of an import."""
    return re.compile(phonenumbers.PhoneMetadata.metadata_for_region("CN").mobile.national_number_pattern)


def phone(value: object, region: str = DEFAULT_REGION) -> str:
    raw = str(value or "").strip()
    if not raw:
        raise InvalidValue("phone_empty")
    if (region == "CN" and len(raw) == 11 and raw.isdigit() and raw.isascii()  # as most files write them
            and _cn_mobile_numbers().fullmatch(raw)):
        return "+86" + raw
    if not raw.isascii():
        raw = unicodedata.normalize("NFKC", raw)  # full-width digits from Chinese input methods
    if region == "CN":
        mobile = _CN_MOBILE.fullmatch(raw.translate(_SEPARATORS))
        if mobile and _cn_mobile_numbers().fullmatch(mobile.group(1)):
            return "+86" + mobile.group(1)
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidValue("phone_invalid", value=raw) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidValue("phone_invalid", value=raw)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def email(value: object) -> str:
    raw = str(value or "")
    raw = (raw if raw.isascii() else unicodedata.normalize("NFKC", raw)).strip().lower()
    if MASK in raw:  # z***@example.com from a masked export: as an identity it would join strangers
        raise InvalidValue("masked", value=raw)
    if not _EMAIL.match(raw):
        raise InvalidValue("email_invalid", value=raw)
    return raw


_CJK_NAME = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]+")
_CJK_OR_SPACE = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf ]+")


def name(value: object) -> str:
    """Trim and fold spaces; Chinese names lose inner spaces (张 伟 → 张伟), Latin names keep one."""
    text = str(value or "")
    if _CJK_NAME.fullmatch(text):
        return text  # the common case (an import's million 张伟s): nothing to fold
    raw = _SPACES.sub(" ", unicodedata.normalize("NFKC", text).strip())
    if raw and _CJK_OR_SPACE.fullmatch(raw):
        raw = raw.replace(" ", "")
    return raw


def address(value: object) -> str:
    """A postal address as one line: spaces folded, full-width digits and letters made plain (３号楼 → 3号楼), at
    most ADDRESS_LENGTH characters."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", str(value or ""))).strip()[:ADDRESS_LENGTH]


def postcode(value: object) -> str:
    """A postcode as people write it, tidied: full-width digits and letters made plain (２００１２０ → 200120), letters
    upper-cased, spaces folded to one ("sw1a  1aa" → "SW1A 1AA"), at most POSTCODE_LENGTH characters. A spreadsheet's
    number cell (200120.0) loses its ".0"."""
    text = _SPACES.sub(" ", unicodedata.normalize("NFKC", str(value or ""))).strip().upper()
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    return text[:POSTCODE_LENGTH]


PINYIN_LENGTH = 200  # what profiles.name_pinyin holds: a name of 100 characters can spell 600


def pinyin(value: str | None) -> str | None:
    """Tone-less pinyin without spaces (张伟 → zhangwei), for search and matching, at most PINYIN_LENGTH
    characters. Names are read character by character (cached), which is what pypinyin does for names anyway
    and a hundred times quicker."""
    if not value:
        return None
    if _CJK_NAME.fullmatch(value):
        return _cjk_pinyin(value)[:PINYIN_LENGTH]
    return "".join(lazy_pinyin(value, style=Style.NORMAL, errors="default")).lower().replace(" ", "")[:PINYIN_LENGTH]


@functools.lru_cache(maxsize=200_000)
def _cjk_pinyin(value: str) -> str:
    return "".join(_char_pinyin(c) for c in value)


@functools.lru_cache(maxsize=30000)
def _char_pinyin(char: str) -> str:
    return "".join(lazy_pinyin(char, style=Style.NORMAL, errors="default")).lower()


def birthday(value: object) -> date:
    """A day of birth: any date ``day`` reads, from 1900-01-01 to today."""
    parsed, raw = _day(value)
    if not _EARLIEST_BIRTHDAY <= parsed < _SURELY_PAST and not _EARLIEST_BIRTHDAY <= parsed <= date.today():
        raise InvalidValue("date_out_of_range", value=raw)
    return parsed


def day(value: object) -> date:
    """A calendar day as people write it (2024-03-05, 2024/3/5, 2024年3月5日, 20240305, 2024-03-05T10:00), any
    year a date can hold: an expiry or next-service date lies ahead, a purchase may lie long ago. Only a
    birthday (``birthday``) is held to the span of a life."""
    return _day(value)[0]


def _day(value: object) -> tuple[date, str]:
    """(the day, the text it was read from, as an error quotes it)."""
    if isinstance(value, datetime):
        return value.date(), value.isoformat()
    if isinstance(value, date):
        return value, value.isoformat()
    text = str(value or "")
    if len(text) == 10 and text[4] == text[7] == "-" and text[:4].isdigit():  # ISO already: the common case
        try:
            return date.fromisoformat(text), text
        except ValueError:
            pass
    raw = unicodedata.normalize("NFKC", text).strip()
    raw = raw.replace("年", "-").replace("月", "-").replace("日", "").replace("/", "-").replace(".", "-")
    raw = _SPACES.sub("", raw) if "-" in raw else raw  # "2027 年 1 月 15 日"
    iso = _ISO_DATE.fullmatch(raw)
    if iso:  # the common case, without strptime's cost
        try:
            return date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3))), raw
        except ValueError:
            raise InvalidValue("date_invalid", value=raw) from None
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(raw[:10] if "T" in raw else raw, fmt).date(), raw
        except ValueError:
            continue
    raise InvalidValue("date_invalid", value=raw)


def moment(value: object, tz_name: str = "Asia/Shanghai") -> datetime:
    """A point in time (UTC) from what people write: 2024-03-05, 2024/3/5 14:30, 2024年3月5日, ISO 8601. A time
    without a zone is read in ``tz_name`` (the organisation's), a bare date as its midnight."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        raw = unicodedata.normalize("NFKC", str(value or "")).strip()
        text = raw.replace("年", "-").replace("月", "-").replace("日", " ").replace("/", "-").replace(".", "-")
        text = _SPACES.sub(" ", text.replace("T", " ")).strip()
        parsed = None
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y%m%d"):
                try:
                    parsed = datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
        if parsed is None:
            raise InvalidValue("datetime_invalid", value=raw)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz_name))
    parsed = parsed.astimezone(UTC)
    if not datetime(1990, 1, 1, tzinfo=UTC) <= parsed <= datetime.now(UTC) + timedelta(days=1):
        raise InvalidValue("date_out_of_range", value=str(value))
    return parsed


_MONEY_NOISE = re.compile(r"[\s,，¥￥元]|RMB|CNY", re.IGNORECASE)


def amount(value: object) -> Decimal:
    """A non-negative amount in CNY, to the fen: "¥258,000", "25.8万", "1234.5元"."""
    raw = unicodedata.normalize("NFKC", str(value if value is not None else "")).strip()
    text, factor = _MONEY_NOISE.sub("", raw), Decimal(1)
    if text.endswith("万"):  # dealers write car prices in units of 10,000
        text, factor = text[:-1], Decimal(10000)
    try:
        parsed = (Decimal(text) * factor).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError) as exc:
        raise InvalidValue("amount_invalid", value=raw) from exc
    if not parsed.is_finite() or parsed < 0 or parsed >= Decimal("1e12"):
        raise InvalidValue("amount_invalid", value=raw)
    return parsed


def quantity(value: object) -> int:
    raw = unicodedata.normalize("NFKC", str(value if value is not None else "")).strip()
    text = raw[:-2] if raw.endswith(".0") else raw
    if not text.isdigit() or not 0 < int(text) <= 100000:
        raise InvalidValue("quantity_invalid", value=raw)
    return int(text)


GENDERS = {"male": "male", "m": "male", "男": "male", "先生": "male", "female": "female", "f": "female",
           "女": "female", "女士": "female", "other": "other", "其他": "other"}


def gender(value: object) -> str:
    raw = str(value or "").strip().lower()
    if raw not in GENDERS:
        raise InvalidValue("gender_unknown", value=raw)
    return GENDERS[raw]


def identity_value(kind: str, value: object) -> str:
    """The canonical form of an identity value of ``kind``."""
    if kind == "mobile":
        return phone(value)
    if kind == "email":
        return email(value)
    if kind == "vin":
        vin = str(value or "").strip().upper()
        if not re.fullmatch(r"[A-HJ-NPR-Z0-9]{17}", vin):
            raise InvalidValue("vin_invalid", value=vin)
        return vin
    raw = str(value if value is not None else "").strip()
    if not raw:
        raise InvalidValue("empty", kind=kind)
    if len(raw) > 254:
        raise InvalidValue("too_long", kind=kind, limit=254)
    return raw
