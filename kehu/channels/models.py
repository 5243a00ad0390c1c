"""Channels (渠道): the accounts kehu sends through, templates and their versions, broadcasts (群发), one table of
messages for every channel and every feature that sends, the suppression list and the communication policy
(适当性管理) of each unit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kehu.core.db import Base, BigId, IdMixin, JsonDoc, TimestampMixin

CHANNELS = ("email", "sms", "wechat", "push", "webhook")
PURPOSES = ("marketing", "service", "transactional")
# what each channel's messages are addressed to on the customer's record
PROVIDERS = {
    "email": ("outbox", "smtp"),
    "sms": ("outbox", "tencent_sms", "aliyun_sms", "http_sms"),
    "wechat": ("outbox", "wechat_mp"),
    "push": ("outbox", "jpush"),
    "webhook": ("outbox", "webhook"),
}


class ChannelAccount(IdMixin, TimestampMixin, Base):
    """How one unit sends on one channel: a provider and its settings. A message goes out through the account of
    the sending unit or, when it has none, of the nearest unit above it; with none at all, into the outbox (the
    page that shows what would have gone out). ``secrets`` (passwords, API keys) are written, never read back."""

    __tablename__ = "channel_accounts"
    __entity__ = "messages"
    __scope_unit__ = "unit_id"
    __scope_owner__ = None
    __table_args__ = (UniqueConstraint("org_id", "unit_id", "channel"),)

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(BigId)
    channel: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str] = mapped_column(String(20), default="outbox")
    name: Mapped[str] = mapped_column(String(100), default="")
    config: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    secrets: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    is_active: Mapped[bool] = mapped_column(default=True)
    # sends per second through this account, per dispatcher (0: as fast as the provider answers)
    rate_per_second: Mapped[float] = mapped_column(default=0.0)


class Template(IdMixin, TimestampMixin, Base):
    """A message for one channel and purpose, in Chinese and English; its content lives in versions, the newest of
    which is ``version``. A broadcast pins the version it was approved with."""

    __tablename__ = "templates"
    __entity__ = "messages"
    __scope_unit__ = "unit_id"
    __scope_owner__ = "owner_id"
    __table_args__ = (UniqueConstraint("org_id", "name"), Index("ix_templates_org_unit", "org_id", "unit_id"))

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(BigId)
    owner_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    channel: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(20), default="marketing")
    version: Mapped[int] = mapped_column(default=1)
    is_archived: Mapped[bool] = mapped_column(default=False)


class TemplateVersion(IdMixin, Base):
    """One saved state of a template, never changed afterwards. ``content`` holds per language (``zh``, ``en``)
    the subject, HTML (MJML or HTML) and text, and for SMS and WeChat the provider's template id and parameters;
    ``blocks`` the dynamic content's conditions (segment language) by name; ``compiled`` the HTML the MJML
    became, compiled once when saved."""

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("template_id", "version"),)

    template_id: Mapped[int] = mapped_column(BigId, ForeignKey("templates.id", ondelete="CASCADE"))
    org_id: Mapped[int] = mapped_column(BigId)
    version: Mapped[int] = mapped_column()
    content: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    blocks: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    compiled: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_at: Mapped[datetime] = mapped_column()
    note: Mapped[str] = mapped_column(String(500), default="")


class ContentItem(IdMixin, TimestampMixin, Base):
    """The content library: an image (a URL or an uploaded file's URL) or a snippet of text/HTML that templates
    reuse by name (``{{ snippet("footer") }}``, ``{{ image("logo") }}``)."""

    __tablename__ = "content_items"
    __entity__ = "messages"
    __scope_unit__ = "unit_id"
    __scope_owner__ = "owner_id"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(BigId)
    owner_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10), default="snippet")  # snippet | image
    body: Mapped[str] = mapped_column(Text, default="")  # the snippet, or the image's URL


class Broadcast(IdMixin, TimestampMixin, Base):
    """A template sent to a segment, now or at a set time (群发), through an approval when the unit's policy asks
    for one: draft → submitted → approved | rejected → scheduled → sending ⇄ paused → sent, or cancelled."""

    __tablename__ = "broadcasts"
    __entity__ = "messages"
    __scope_unit__ = "unit_id"
    __scope_owner__ = "owner_id"
    __table_args__ = (Index("ix_broadcasts_org_unit", "org_id", "unit_id"),
                      Index("ix_broadcasts_due", "status", "scheduled_at"))

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(BigId)
    owner_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    template_id: Mapped[int] = mapped_column(BigId, ForeignKey("templates.id"))
    template_version: Mapped[int | None] = mapped_column(nullable=True)  # pinned when submitted
    segment_id: Mapped[int] = mapped_column(BigId, ForeignKey("segments.id"))
    channel: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    scheduled_at: Mapped[datetime | None] = mapped_column(nullable=True)  # None: as soon as approved
    submitted_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    reviewed_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    review_comment: Mapped[str] = mapped_column(String(1000), default="")
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    audience: Mapped[int] = mapped_column(default=0)  # message rows made (sent or skipped)
    job_id: Mapped[int | None] = mapped_column(BigId, nullable=True)


class Message(IdMixin, Base):
    """One message to one customer (or, for a test send, to one address), whatever sent it: made once per send
    and customer (``send_key``, ``profile_id`` unique), claimed by a dispatcher, and followed to its end.

    ``status``: queued (due at ``due_at``; quiet hours hold it), sending (claimed until ``lease_until``), sent,
    delivered, failed, bounced, skipped (``skip_reason``), cancelled, unknown (a dispatcher stopped between handing
    it over and hearing back, on a channel whose provider cannot tell a repeat: a person decides)."""

    __tablename__ = "messages"
    __entity__ = "messages"
    __scope_unit__ = "unit_id"
    __scope_owner__ = None
    __table_args__ = (UniqueConstraint("org_id", "send_key", "profile_id", name="uq_messages_send_profile"),
                      Index("ix_messages_due", "status", "due_at"),
                      Index("ix_messages_profile", "org_id", "profile_id", "created_at"),
                      Index("ix_messages_broadcast", "broadcast_id", "status"),
                      Index("ix_messages_journey", "journey_id", "status"),
                      Index("ix_messages_template", "template_id", "status"))

    org_id: Mapped[int] = mapped_column(BigId)
    unit_id: Mapped[int] = mapped_column(BigId)  # the customer's unit: who may see the message
    profile_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    send_key: Mapped[str] = mapped_column(String(60))  # broadcast:12 | test:<uuid> | j:<enrolment>:<node>: one send
    broadcast_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    journey_id: Mapped[int | None] = mapped_column(BigId, nullable=True)  # sent by a journey's node
    sender_unit_id: Mapped[int] = mapped_column(BigId)  # whose channel account it goes out through
    channel: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(20))
    template_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    template_version: Mapped[int | None] = mapped_column(nullable=True)
    address: Mapped[str | None] = mapped_column(String(254), nullable=True)
    locale: Mapped[str] = mapped_column(String(8), default="zh")
    status: Mapped[str] = mapped_column(String(12), default="queued")
    skip_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    created_at: Mapped[datetime] = mapped_column()
    due_at: Mapped[datetime] = mapped_column()
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    attempts: Mapped[int] = mapped_column(default=0)
    handed_at: Mapped[datetime | None] = mapped_column(nullable=True)  # the provider call began
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    opened_at: Mapped[datetime | None] = mapped_column(nullable=True)
    clicked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    provider: Mapped[str | None] = mapped_column(String(20), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(500), nullable=True)
    body: Mapped[str | None] = mapped_column(Text, nullable=True)  # as rendered (outbox and test sends)


class Suppression(IdMixin, Base):
    """An address nothing (or no marketing) goes to: unsubscribed and complained stop marketing; a hard bounce or
    an invalid number stops everything on that channel."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("org_id", "channel", "address"),)

    org_id: Mapped[int] = mapped_column(BigId)
    channel: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(254))
    reason: Mapped[str] = mapped_column(String(20))  # unsubscribed | complained | hard_bounce | invalid
    evidence: Mapped[str] = mapped_column(String(500), default="")
    message_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_at: Mapped[datetime] = mapped_column()


class CommunicationPolicy(IdMixin, TimestampMixin, Base):
    """A unit's rules for marketing messages: frequency caps per channel and across channels (``all``) per day
    and per week, quiet hours (local time, the organisation's zone), and whether the broadcasts of the units
    below need an approval. A unit below may tighten its parent's rules, never loosen them: the rules in force
    are the strictest along the path."""

    __tablename__ = "communication_policies"
    __table_args__ = (UniqueConstraint("org_id", "unit_id"),)

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(BigId)
    per_day: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)  # channel | "all" → at most
    per_week: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    quiet_start: Mapped[str | None] = mapped_column(String(5), nullable=True)  # "21:00"
    quiet_end: Mapped[str | None] = mapped_column(String(5), nullable=True)  # "09:00"
    approval_required: Mapped[bool] = mapped_column(default=False)  # for broadcasts of units below
