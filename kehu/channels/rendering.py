"""Templates rendered for customers: a sandboxed Jinja2 (no reach into Python's internals, bounded in size and
time), personalised from what kehu knows of each customer, with tracked links.

What a template may use: the customer's fields (``name``, ``gender``, ``city`` … and ``profile.<field>``), custom
fields (``fields.<key>``), ``order`` (the latest: number, total, date), ``vehicle`` (the latest: model, VIN,
plate), ``dealer`` (the customer's unit: name, city) and ``salesperson`` (the customer's owner: name, phone,
e-mail), ``show.<block>`` (the template's dynamic content: whether the customer meets the block's condition),
``snippet("name")`` and ``image("name")`` (the content library), ``unsubscribe_url``, and the filters
``default``, ``date`` and ``money``. A value kehu does not have is empty, so ``{{ name | default("车主") }}``
falls back.

Rendering is bounded: templates of at most ``MAX_SOURCE`` characters, output of at most ``MAX_OUTPUT``, ``range``
of at most ``MAX_RANGE`` items, multiplication and powers of strings and lists refused past the output limit,
and ``MAX_SECONDS`` of wall time for one message (checked as output is produced and as loops advance)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import operator
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined, Template, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from kehu.core.errors import invalid

MAX_SOURCE = 100_000
MAX_OUTPUT = 200_000
MAX_RANGE = 1_000
MAX_SECONDS = 0.5


class RenderError(Exception):
    """A template that cannot be rendered for a customer (too big, too slow, refused by the sandbox)."""


class _Deadline(threading.local):
    """When the message being rendered on this thread must be done (0: none being rendered)."""

    until = 0.0

    def check(self) -> None:
        if self.until and time.monotonic() > self.until:
            raise RenderError("rendering took too long")


_deadline = _Deadline()


class _Blank(ChainableUndefined):
    """What kehu does not know renders as nothing (``vehicle.model`` of a customer without a vehicle too), and
    ``default`` replaces it, rather than failing a send."""

    def __str__(self) -> str:
        return ""


def _bounded_range(*args: int) -> Iterator[int]:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise RenderError(f"range() of more than {MAX_RANGE} items")
    for number in numbers:
        _deadline.check()
        yield number


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox: Jinja's own (no attributes starting with ``_``, no unsafe callables, nothing modified in
    place), plus bounds on the operators that make big values from small ones."""

    intercepted_binops = frozenset(["*", "**"])

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        # Jinja answers a forbidden attribute with an undefined value, which renders as nothing here: refuse
        # loudly instead, so that an author sees the template is wrong rather than a silent blank
        raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__} is not allowed")

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int) and abs(right) > 100:
                raise SecurityError("exponent too large")
            return operator.pow(left, right)
        for value, times in ((left, right), (right, left)):
            if isinstance(value, str | list | tuple) and isinstance(times, int) and len(value) * times > MAX_OUTPUT:
                raise SecurityError("value too large")
        return operator.mul(left, right)


def _money(value: Any, currency: str = "¥") -> str:
    if value in (None, "") or isinstance(value, Undefined):
        return ""
    try:
        return f"{currency}{Decimal(str(value)):,.2f}"
    except ArithmeticError:
        return str(value)


def _date(value: Any, pattern: str = "%Y-%m-%d") -> str:
    if isinstance(value, datetime | date):
        return value.strftime(pattern)
    return "" if value is None or isinstance(value, Undefined) else str(value)


def _default(value: Any, fallback: Any = "", boolean: bool = False) -> Any:
    """Jinja's ``default``, with a missing value (None: a customer without a name) counted as undefined — what a
    marketer writing ``{{ name | default("车主") }}`` means."""
    if value is None or isinstance(value, Undefined) or (boolean and not value):
        return fallback
    return value


def _finalize(value: Any) -> Any:
    return "" if value is None else value  # a missing value prints nothing, never "None"


def environment(*, strict: bool = False, autoescape: bool = False) -> _Sandbox:
    env = _Sandbox(autoescape=autoescape, undefined=StrictUndefined if strict else _Blank, finalize=_finalize)
    env.globals = {"range": _bounded_range}  # no lipsum, cycler, joiner, namespace, dict
    env.filters.update({"money": _money, "date": _date, "default": _default, "d": _default})
    return env


_TEXT = environment()
_HTML = environment(autoescape=True)


def check_source(source: str, *, where: str) -> list[str]:
    """The names a template reads (for the editor's warnings), or a FieldError at ``where`` when it does not
    parse or is too long."""
    if len(source) > MAX_SOURCE:
        raise invalid(where, f"at most {MAX_SOURCE} characters", "too_long")
    try:
        tree = _TEXT.parse(source)
    except TemplateSyntaxError as exc:
        raise invalid(where, f"line {exc.lineno}: {exc.message}", "template_syntax") from None
    return sorted({node.name for node in tree.find_all(nodes.Name)})


@functools.lru_cache(maxsize=256)
def _compiled(source: str, html: bool) -> Template:
    """A template compiled once per process, not once per customer (compiling is most of rendering's cost)."""
    return (_HTML if html else _TEXT).from_string(source)


def render(source: str, context: dict[str, Any], *, html: bool = False) -> str:
    """``source`` rendered for one customer, within the bounds; RenderError otherwise."""
    try:
        template = _compiled(source, html)
        parts: list[str] = []
        size = 0
        _deadline.until = time.monotonic() + MAX_SECONDS
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise RenderError(f"more than {MAX_OUTPUT} characters")
            _deadline.check()
            parts.append(chunk)
        return "".join(parts)
    except RenderError:
        raise
    except (TemplateError, SecurityError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise RenderError(f"{type(exc).__name__}: {exc}"[:300]) from None
    finally:
        _deadline.until = 0.0


# -- tracked links --------------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: str, purpose: str, value: str) -> str:
    """A token carrying ``value`` that only kehu can have made for ``purpose`` (open, click, unsubscribe)."""
    mac = hmac.new(secret.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).digest()[:16]
    return f"{_b64(value.encode())}.{_b64(mac)}"


def unsign(secret: str, purpose: str, token: str) -> str | None:
    """The value of a token made by ``sign`` for ``purpose``; None when forged, altered or malformed."""
    try:
        encoded, mac = token.split(".", 1)
        value = _unb64(encoded).decode()
        expected = hmac.new(secret.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).digest()[:16]
        return value if hmac.compare_digest(expected, _unb64(mac)) else None
    except (ValueError, UnicodeDecodeError):
        return None


_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"']+)\2""", re.IGNORECASE)


@dataclass
class Links:
    """How a message's links and its pixel reach kehu: ``base`` is the public address of kehu."""

    base: str
    secret: str
    message_id: int = 0
    clicks: list[str] = field(default_factory=list)

    def click(self, url: str) -> str:
        return f"{self.base}/t/c/{sign(self.secret, 'click', f'{self.message_id} {url}')}"

    def open_pixel(self) -> str:
        return f"{self.base}/t/o/{sign(self.secret, 'open', str(self.message_id))}"

    def unsubscribe(self) -> str:
        return f"{self.base}/t/u/{sign(self.secret, 'unsubscribe', str(self.message_id))}"

    def track_html(self, html: str) -> str:
        """Every http(s) link through kehu's redirect (the unsubscribe link excepted), and the open pixel."""
        unsubscribe = self.unsubscribe()

        def swap(match: re.Match[str]) -> str:
            url = match.group(3).replace("&amp;", "&")
            if url == unsubscribe:
                return match.group(0)
            return f"{match.group(1)}{match.group(2)}{self.click(url)}{match.group(2)}"

        tracked = _HREF.sub(swap, html)
        pixel = Markup('<img src="{}" width="1" height="1" alt="" style="display:none">').format(self.open_pixel())
        return tracked.replace("</body>", f"{pixel}</body>") if "</body>" in tracked else tracked + pixel
