"""The providers messages go out through, behind one interface (DESIGN §8.7): the dispatcher hands a provider a
rendered message (``Outgoing``) and gets an ``Outcome`` back; receipts a provider posts later (delivered,
bounced) are parsed by the same provider into ``Receipt``s. Each provider is a module of this package that
registers a factory with ``@provider("name")``: ``factory(config, secrets, http) -> Provider``.

Outcomes are classified here once: ``sent`` (handed over, the provider's id kept), ``retry`` (try again later:
a timeout before anything went out, throttling, the provider's temporary errors), ``failed`` (never retry: a
rejected template, a bad signature), ``suppress`` (the address itself is bad — an invalid number, a mailbox
that does not exist, a WeChat user who unfollowed — so nothing goes there again until someone says otherwise).

``idempotent`` says whether a repeat of a message the provider may already have taken is harmless (it or the
receiver recognises the message's id): only then does a dispatcher that stopped mid-call send it again;
otherwise the message is marked ``unknown`` for a person to decide (README: what each channel guarantees)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

OutcomeStatus = Literal["sent", "retry", "failed", "suppress"]


@dataclass
class Outgoing:
    """A message as the customer will see it."""

    message_id: int
    channel: str
    address: str
    locale: str = "zh"
    subject: str | None = None
    html: str | None = None
    text: str = ""
    # SMS and WeChat: the provider's own template and what fills it (SMS: in order; WeChat: by field name)
    provider_template: str | None = None
    params: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    url: str | None = None  # where a WeChat message or a push opens
    headers: dict[str, str] = field(default_factory=dict)  # e-mail: List-Unsubscribe …
    payload: dict[str, Any] = field(default_factory=dict)  # webhook: the JSON body's ``data``


@dataclass
class Outcome:
    status: OutcomeStatus
    provider_message_id: str | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds, when the provider says
    suppress_reason: str | None = None  # invalid | hard_bounce | unsubscribed


@dataclass
class Receipt:
    """What a provider said later about a message it took: delivered, or failed (and whether the address is bad)."""

    provider_message_id: str
    status: Literal["delivered", "failed", "bounced"]
    error: str | None = None
    suppress_reason: str | None = None


class Provider(Protocol):
    name: str
    idempotent: bool

    def send(self, message: Outgoing) -> Outcome: ...

    def close(self) -> None: ...


Factory = Callable[[dict[str, Any], dict[str, Any], httpx.Client], Provider]
ReceiptParser = Callable[[bytes, dict[str, str], dict[str, Any], dict[str, Any]], list[Receipt]]

_FACTORIES: dict[str, Factory] = {}
_RECEIPTS: dict[str, ReceiptParser] = {}
MODULES = ("outbox", "smtp", "sms", "wechat", "push", "webhook")


def provider(name: str, *, receipts: ReceiptParser | None = None) -> Callable[[Factory], Factory]:
    """Register a provider's factory (and, when it posts receipts, their parser: body, headers, config, secrets)."""

    def register(factory: Factory) -> Factory:
        _FACTORIES[name] = factory
        if receipts is not None:
            _RECEIPTS[name] = receipts
        return factory

    return register


def _load() -> None:
    """Import every provider module (each registers itself; importing one first must not hide the others)."""
    for module in MODULES:
        importlib.import_module(f"{__name__}.{module}")


def open_provider(name: str, config: dict[str, Any], secrets: dict[str, Any], http: httpx.Client) -> Provider:
    _load()
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise LookupError(f"no provider {name!r}") from None
    return factory(config, secrets, http)


def receipt_parser(name: str) -> ReceiptParser | None:
    _load()
    return _RECEIPTS.get(name)


def names() -> list[str]:
    _load()
    return sorted(_FACTORIES)
