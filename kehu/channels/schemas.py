"""What the channels API takes and gives: templates and their content, the content library, broadcasts and their
review, messages, the communication policy and the channel accounts."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kehu.core.schemas import Input
from kehu.segments.schemas import Condition

Channel = Literal["email", "sms", "wechat", "push", "webhook"]
Purpose = Literal["marketing", "service", "transactional"]
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class _In(Input):
    pass


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Variant(_In):
    """One language of a template: the subject (e-mail; a push's title), the HTML (e-mail: MJML, a whole
    ``<mjml>`` document, or plain HTML) and the text (SMS, push, WeChat's fallback, the e-mail's text part —
    made from the HTML when empty)."""

    subject: str | None = Field(default=None, max_length=500)
    html: str | None = Field(default=None, max_length=100_000)
    text: str = Field(default="", max_length=20_000)


class TemplateContent(_In):
    zh: Variant
    en: Variant | None = None
    # SMS: the gateway's approved template and its parameters in order; WeChat: the template and its fields
    provider_template: str | None = Field(default=None, max_length=100)
    params: list[str] = Field(default_factory=list, max_length=20)
    fields: dict[str, str] = Field(default_factory=dict, max_length=30)
    url: str | None = Field(default=None, max_length=2000)  # WeChat / push: where the message opens
    payload: dict[str, str] = Field(default_factory=dict, max_length=50)  # webhook: the data sent, by key


class TemplateCreate(_In):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)
    channel: Channel
    purpose: Purpose = "marketing"
    unit_id: int | None = None  # the author's unit unless given
    content: TemplateContent
    # dynamic content (千人千面): block name → a condition in the segment language
    blocks: dict[str, Condition] = Field(default_factory=dict, max_length=20)

    @field_validator("blocks")
    @classmethod
    def _block_names(cls, blocks: dict[str, Any]) -> dict[str, Any]:
        for name in blocks:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
                raise ValueError(f"block name {name!r}: lower-case letters, digits and _, starting with a letter")
        return blocks


class TemplateUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    purpose: Purpose | None = None
    content: TemplateContent | None = None
    blocks: dict[str, Condition] | None = None
    note: str = Field(default="", max_length=500)  # what this version changed
    is_archived: bool | None = None


class TemplateOut(Out):
    id: int
    unit_id: int
    owner_id: int | None
    name: str
    description: str
    channel: str
    purpose: str
    version: int
    is_archived: bool
    created_at: datetime
    updated_at: datetime
    content: dict[str, Any] | None = None
    blocks: dict[str, Any] | None = None


class TemplateVersionOut(Out):
    version: int
    created_by_id: int | None
    created_at: datetime
    note: str


class Rendered(BaseModel):
    """A template as one customer would receive it."""

    profile_id: int | None
    locale: str
    channel: str
    address: str | None
    subject: str | None = None
    html: str | None = None
    text: str = ""
    params: list[str] = Field(default_factory=list)
    fields: dict[str, str] = Field(default_factory=dict)
    url: str | None = None
    sms_parts: int | None = None  # SMS: how many parts the carrier bills
    sms_length: int | None = None


class TemplatePreviewRequest(_In):
    profile_id: int | None = None  # a customer of the reader's scope; None: a sample customer
    locale: Literal["zh", "en"] | None = None
    content: TemplateContent | None = None  # unsaved content (the editor); the template's newest otherwise
    blocks: dict[str, Condition] | None = None


class TestSend(_In):
    address: str | None = Field(default=None, max_length=254)  # the sender's own e-mail/mobile unless given
    profile_id: int | None = None  # whose data fills the template
    locale: Literal["zh", "en"] | None = None


class ContentItemIn(_In):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_\-]+$")
    kind: Literal["snippet", "image"] = "snippet"
    body: str = Field(max_length=50_000)


class ContentItemOut(Out):
    id: int
    name: str
    kind: str
    body: str
    unit_id: int
    updated_at: datetime


class BroadcastCreate(_In):
    name: str = Field(min_length=1, max_length=200)
    template_id: int
    segment_id: int
    scheduled_at: datetime | None = None  # None: as soon as it may go
    unit_id: int | None = None


class BroadcastUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    template_id: int | None = None
    segment_id: int | None = None
    scheduled_at: datetime | None = None


class MessageRetry(_In):
    """Which failed messages to send again: named ones, or those of a broadcast or a channel; ``status`` is
    ``failed`` unless ``unknown`` is asked for (those may have arrived already). At least one of them is given:
    "every failed message" is not a click away."""
    message_ids: list[int] | None = Field(default=None, max_length=1000)
    broadcast_id: int | None = None
    channel: Channel | None = None
    status: Literal["failed", "unknown"] | None = None


class Review(_In):
    approve: bool
    comment: str = Field(default="", max_length=1000)


class BroadcastOut(Out):
    id: int
    unit_id: int
    owner_id: int | None
    name: str
    template_id: int
    template_version: int | None
    segment_id: int
    channel: str
    purpose: str
    status: str
    scheduled_at: datetime | None
    submitted_at: datetime | None
    reviewed_by_id: int | None
    reviewed_at: datetime | None
    review_comment: str
    started_at: datetime | None
    finished_at: datetime | None
    audience: int
    created_at: datetime


class Report(BaseModel):
    """What became of a send's messages."""

    total: int = 0
    queued: int = 0
    held: int = 0  # queued for after the quiet hours
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0
    bounced: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)  # reason → count
    by_hour: list[dict[str, Any]] = Field(default_factory=list)  # [{"hour", "sent", "opened", "clicked"}]
    by_unit: list[dict[str, Any]] = Field(default_factory=list)  # HQ: [{"unit_id", "name", "sent", …}]


class MessageOut(Out):
    id: int
    profile_id: int | None
    broadcast_id: int | None
    send_key: str
    channel: str
    purpose: str
    template_id: int | None
    template_version: int | None
    address: str | None
    locale: str
    status: str
    skip_reason: str | None
    created_at: datetime
    due_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    opened_at: datetime | None
    clicked_at: datetime | None
    provider: str | None
    error: str | None
    subject: str | None
    attempts: int


class Caps(_In):
    email: int | None = Field(default=None, ge=0)
    sms: int | None = Field(default=None, ge=0)
    wechat: int | None = Field(default=None, ge=0)
    push: int | None = Field(default=None, ge=0)
    all: int | None = Field(default=None, ge=0)


class PolicyIn(_In):
    per_day: Caps = Field(default_factory=Caps)
    per_week: Caps = Field(default_factory=Caps)
    quiet_start: str | None = None
    quiet_end: str | None = None
    approval_required: bool = False

    @field_validator("quiet_start", "quiet_end")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None and not _CLOCK.match(value):
            raise ValueError("a time of day as HH:MM")
        return value


class PolicyOut(BaseModel):
    unit_id: int
    own: PolicyIn | None  # what this unit set (None: nothing of its own)
    effective: PolicyIn  # the strictest along its path: what applies to its sends
    inherited: PolicyIn  # what the units above set: this unit may only tighten it
    approval_required: bool  # whether this unit's broadcasts need an approval (a unit above asks for it)


class ChannelAccountIn(_In):
    channel: Channel
    provider: str = Field(max_length=20)
    name: str = Field(default="", max_length=100)
    unit_id: int | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] | None = None  # None: keep those saved
    is_active: bool = True
    rate_per_second: float = Field(default=0.0, ge=0, le=10_000)


class ChannelAccountOut(Out):
    id: int
    unit_id: int
    channel: str
    provider: str
    name: str
    config: dict[str, Any]
    secret_names: list[str]  # which secrets are saved (never their values)
    is_active: bool
    rate_per_second: float
    updated_at: datetime


class SuppressionIn(_In):
    channel: Channel
    address: str = Field(min_length=1, max_length=254)
    reason: Literal["unsubscribed", "complained", "hard_bounce", "invalid"] = "unsubscribed"
    evidence: str = Field(default="", max_length=500)


class SuppressionOut(Out):
    id: int
    channel: str
    address: str
    reason: str
    evidence: str
    created_at: datetime
