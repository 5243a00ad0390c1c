"""Segments (人群): saved conditions and their members, with the record of who entered and who left."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, FetchedValue, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kehu.core.db import Base, BigId, IdMixin, JsonDoc, TimestampMixin


class Segment(IdMixin, TimestampMixin, Base):
    """A group of customers: ``dynamic`` ones follow their condition at every refresh, ``static`` ones are the
    snapshot taken when they were made. A segment covers the customers of its unit and the units below it."""

    __tablename__ = "segments"
    __entity__ = "segments"
    __scope_unit__ = "unit_id"
    __scope_owner__ = "owner_id"
    __table_args__ = (UniqueConstraint("org_id", "name"), Index("ix_segments_org_unit", "org_id", "unit_id"))

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(BigId)
    owner_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    kind: Mapped[str] = mapped_column(String(10), default="dynamic")  # dynamic | static
    condition: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued | refreshing | ready | failed
    error: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    member_count: Mapped[int] = mapped_column(default=0)
    refreshes: Mapped[int] = mapped_column(default=0)  # how many times members were computed
    refreshed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    job_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    # The moment up to which the members were decided on time alone, for a condition counting days back from now
    # (None for one that does not): customers near its boundaries are asked again as time passes on.
    time_followed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class SegmentMember(Base):
    """One customer in one segment, since the refresh ``added_in``; ``leaving`` marks, during a refresh, those
    the condition no longer finds (recorded as having left, then removed)."""

    __tablename__ = "segment_members"
    __table_args__ = (Index("ix_segment_members_profile", "profile_id"),)

    segment_id: Mapped[int] = mapped_column(BigId, ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(BigId)
    added_in: Mapped[int] = mapped_column(default=0)
    leaving: Mapped[bool] = mapped_column(default=False)
    added_at: Mapped[datetime] = mapped_column()


class SegmentChange(IdMixin, Base):
    """Who entered and who left a segment at which refresh: the customer's timeline shows it, journeys start from
    it (a stream read in transaction order by consumers, core/events.py)."""

    __tablename__ = "segment_changes"
    __table_args__ = (Index("ix_segment_changes_segment", "segment_id", "refresh"),
                      Index("ix_segment_changes_profile", "profile_id", "at"),
                      Index("ix_segment_changes_txid_id", "txid", "id"))

    org_id: Mapped[int] = mapped_column(BigId)
    segment_id: Mapped[int] = mapped_column(BigId, ForeignKey("segments.id", ondelete="CASCADE"))
    profile_id: Mapped[int] = mapped_column(BigId)
    change: Mapped[str] = mapped_column(String(10))  # entered | left
    refresh: Mapped[int] = mapped_column()
    at: Mapped[datetime] = mapped_column()
    # the writing transaction's id, filled by the database (core/events.py); None on rows older than 0029
    txid: Mapped[int | None] = mapped_column(BigInteger, server_default=FetchedValue(), nullable=True)


class TagGroup(IdMixin, TimestampMixin, Base):
    """A family of tags (意向车型, 客户价值, 兴趣 …), so that tags stay findable when there are hundreds."""

    __tablename__ = "tag_groups"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(60))


class Tag(IdMixin, TimestampMixin, Base):
    """标签: put on customers by hand, or by rule — a tag bound to a segment is on exactly its members, kept so
    at every refresh of that segment."""

    __tablename__ = "tags"
    __entity__ = "segments"  # tags are managed and read with the segments privileges
    __scope_unit__ = None
    __scope_owner__ = None
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("tag_groups.id", ondelete="SET NULL"),
                                                 nullable=True)
    name: Mapped[str] = mapped_column(String(60))
    colour: Mapped[str] = mapped_column(String(20), default="primary")
    segment_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("segments.id", ondelete="SET NULL"),
                                                   nullable=True)
    rule: Mapped[str | None] = mapped_column(String(60), nullable=True)  # e.g. rfm:important_value
    created_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)


class ProfileTag(Base):
    """A tag on a customer: who or what put it there (``manual`` with the user, ``rule`` by a segment)."""

    __tablename__ = "profile_tags"
    __table_args__ = (Index("ix_profile_tags_profile", "profile_id"),)

    tag_id: Mapped[int] = mapped_column(BigId, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(BigId)
    origin: Mapped[str] = mapped_column(String(10), default="manual")  # manual | rule
    added_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    added_at: Mapped[datetime] = mapped_column()


class RfmModel(IdMixin, TimestampMixin, Base):
    """How an organisation scores recency, frequency and monetary value of orders (score 5 is best): the
    upper bounds of days since the last order, the lower bounds of order counts and of totals (CNY)."""

    __tablename__ = "rfm_models"
    __table_args__ = (UniqueConstraint("org_id"),)

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    recency_days: Mapped[list[int]] = mapped_column(JsonDoc)  # 4 ascending bounds: ≤ b0 → 5 … > b3 → 1
    frequency: Mapped[list[int]] = mapped_column(JsonDoc)  # 4 ascending bounds: ≥ b3 → 5 … < b0 → 1
    monetary: Mapped[list[float]] = mapped_column(JsonDoc)  # 4 ascending bounds, as frequency
    statuses: Mapped[list[str]] = mapped_column(JsonDoc)  # which orders count
    status: Mapped[str] = mapped_column(String(20), default="ready")  # queued | ready
    computed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    job_id: Mapped[int | None] = mapped_column(BigId, nullable=True)


class RfmScore(Base):
    """One customer's scores at the last computation, and the class they put them in."""

    __tablename__ = "rfm_scores"
    __table_args__ = (Index("ix_rfm_scores_org_class", "org_id", "rfm_class"),)

    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(BigId)
    last_ordered_at: Mapped[datetime] = mapped_column()
    orders: Mapped[int] = mapped_column()
    total: Mapped[Decimal] = mapped_column(Numeric(16, 2))
    r: Mapped[int] = mapped_column()
    f: Mapped[int] = mapped_column()
    m: Mapped[int] = mapped_column()
    rfm_class: Mapped[str] = mapped_column(String(30))
    computed_at: Mapped[datetime] = mapped_column()
