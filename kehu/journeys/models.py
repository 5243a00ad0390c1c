"""Journeys (客户旅程): a drawn path customers walk — who enters, what they receive, how long they wait, which way
they go — its published versions, each customer's enrolment (where they are now) and the steps they took."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from kehu.core.db import Base, BigId, IdMixin, JsonDoc, TimestampMixin

STATUSES = ("draft", "live", "paused", "stopped")
ACTIVE = "active"  # an enrolment still on its way; "completed" (reached an exit) and "exited" (taken out) are ended


class Journey(IdMixin, TimestampMixin, Base):
    """A journey of one unit, enrolling only that unit's customers and those of the units below it. ``draft`` is
    the graph being edited; what runs is the published ``version`` (journey_versions). draft → live ⇄ paused →
    stopped."""

    __tablename__ = "journeys"
    __entity__ = "journeys"
    __scope_unit__ = "unit_id"
    __scope_owner__ = "owner_id"
    # a name is unique within its unit: another dealer learns nothing of this one's journeys by choosing a name
    __table_args__ = (UniqueConstraint("org_id", "unit_id", "name"), Index("ix_journeys_org_unit", "org_id", "unit_id"),
                      Index("ix_journeys_status", "status"), Index("ix_journeys_template", "template_id"))

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(BigId)
    owner_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")
    status: Mapped[str] = mapped_column(String(10), default="draft")
    draft: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)  # trigger, entry rules and graph
    version: Mapped[int] = mapped_column(default=0)  # the published version that runs (0: never published)
    # what the trigger listens to, copied from the published version so that consumers find their journeys by index
    trigger_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)
    trigger_key: Mapped[str | None] = mapped_column(String(100), nullable=True)  # a segment id, an event name
    # approval, where a unit above asks to approve this unit's messages (kehu/journeys/approval.py): the draft as
    # submitted waits ("submitted", not to be edited) or came back ("rejected", with the reviewer's comment)
    review_status: Mapped[str | None] = mapped_column(String(10), nullable=True)
    review_comment: Mapped[str] = mapped_column(String(500), default="")
    submitted_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    submitted_move_people: Mapped[bool] = mapped_column(default=False)
    reviewed_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # a timed trigger's next run (a schedule, a date on the profile); None: no such trigger, or a schedule that ran
    next_entry_at: Mapped[datetime | None] = mapped_column(nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # HQ's templates for dealers (kehu/journeys/templates.py): a template enrols nobody; live, it is offered to the
    # units below its own, each of which makes its journey of it (``template_id``, at the template's version then)
    is_template: Mapped[bool] = mapped_column(default=False)
    template_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("journeys.id", ondelete="SET NULL"),
                                                    nullable=True)
    template_version: Mapped[int | None] = mapped_column(nullable=True)


class JourneyVersion(IdMixin, Base):
    """One published state of a journey, never changed afterwards: its trigger, entry rules and graph."""

    __tablename__ = "journey_versions"
    __table_args__ = (UniqueConstraint("journey_id", "version"),)

    org_id: Mapped[int] = mapped_column(BigId)
    journey_id: Mapped[int] = mapped_column(BigId, ForeignKey("journeys.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column()
    definition: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    published_at: Mapped[datetime] = mapped_column()
    published_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)


class Enrolment(IdMixin, Base):
    """One customer's walk through one journey: the node they are at and when it acts on them (``due_at``: now for
    a send or a split, the end of a wait). A customer is in a journey at most once at a time: a unique index over
    the active ones, not a check a race could pass."""

    __tablename__ = "journey_enrolments"
    __entity__ = "journeys"
    __scope_unit__ = "unit_id"
    __scope_owner__ = None
    __table_args__ = (
        Index("uq_journey_enrolments_active", "journey_id", "profile_id", unique=True,
              postgresql_where=text("state = 'active'"), sqlite_where=text("state = 'active'")),
        # the engine's: who is due at a node, oldest first (the active ones only: the ended stay out of its way)
        Index("ix_journey_enrolments_due", "journey_id", "version", "node", "due_at",
              postgresql_where=text("state = 'active'"), sqlite_where=text("state = 'active'")),
        Index("ix_journey_enrolments_profile", "profile_id", "journey_id"),
    )

    org_id: Mapped[int] = mapped_column(BigId)
    unit_id: Mapped[int] = mapped_column(BigId)  # the customer's unit when they entered: who may see it
    journey_id: Mapped[int] = mapped_column(BigId, ForeignKey("journeys.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column()
    profile_id: Mapped[int] = mapped_column(BigId)
    node: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(10), default=ACTIVE)
    due_at: Mapped[datetime] = mapped_column()
    arrived_at: Mapped[datetime] = mapped_column()  # when they came to the node they are at
    # what happened while they wait there ("happened": the event a wait for an event waits for arrived)
    signal: Mapped[str | None] = mapped_column(String(20), nullable=True)
    entered_at: Mapped[datetime] = mapped_column()
    left_at: Mapped[datetime | None] = mapped_column(nullable=True)
    exit_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)


class JourneyStep(IdMixin, Base):
    """A node an enrolment passed and how (waited, sent, which branch, exit): the per-node counts and each
    customer's journey history."""

    __tablename__ = "journey_steps"
    __table_args__ = (Index("ix_journey_steps_journey_node", "journey_id", "node"),
                      Index("ix_journey_steps_enrolment", "enrolment_id"))

    org_id: Mapped[int] = mapped_column(BigId)
    journey_id: Mapped[int] = mapped_column(BigId)
    version: Mapped[int] = mapped_column()
    enrolment_id: Mapped[int] = mapped_column(BigId)
    profile_id: Mapped[int] = mapped_column(BigId)
    node: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(40))  # passed | branch:<name> | completed
    at: Mapped[datetime] = mapped_column()
