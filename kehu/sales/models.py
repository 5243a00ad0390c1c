"""Sales: leads (线索) with their history, the rules that make them from behaviour and route them to dealers,
and first-contact service levels."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from kehu.core.db import Base, BigId, IdMixin, JsonDoc, OwnedMixin, TimestampMixin

OPEN_STATUSES = ("inquiry", "mql", "sal", "sql", "recycled")
CLOSED_STATUSES = ("converted", "disqualified")
STATUSES = (*OPEN_STATUSES, *CLOSED_STATUSES)


class Lead(IdMixin, TimestampMixin, OwnedMixin, Base):
    """A person's interest that sales should follow up: one open lead per customer, which later inquiries
    update rather than duplicate. Placed in a dealer (``unit_id``) and, once assigned, owned by a salesperson."""

    __tablename__ = "leads"
    __entity__ = "leads"
    __profile_link__ = "profile_id"
    __table_args__ = (Index("ix_leads_org_status", "org_id", "status", "unit_id"),
                      Index("ix_leads_profile", "profile_id"),
                      # the escalation poller's question, asked every few seconds: only the few still waiting
                      Index("ix_leads_waiting", "first_contact_due_at",
                            postgresql_where=text("first_contacted_at IS NULL AND escalated_at IS NULL"),
                            sqlite_where=text("first_contacted_at IS NULL AND escalated_at IS NULL")))

    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"))
    status: Mapped[str] = mapped_column(String(20), default="inquiry")  # see STATUSES
    source: Mapped[str] = mapped_column(String(30), default="manual")  # web | app | call_centre | showroom | …
    source_event: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the event that made it
    model_interest: Mapped[str | None] = mapped_column(String(100), nullable=True)  # e.g. ID.4
    note: Mapped[str] = mapped_column(String(2000), default="")
    score: Mapped[int] = mapped_column(default=0)
    inquiries: Mapped[int] = mapped_column(default=1)  # how many times the person asked while it was open
    first_inquiry_at: Mapped[datetime] = mapped_column()
    last_inquiry_at: Mapped[datetime] = mapped_column()
    status_changed_at: Mapped[datetime] = mapped_column()
    assigned_at: Mapped[datetime | None] = mapped_column(nullable=True)
    first_contact_due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    first_contacted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    disqualify_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)


class LeadChange(IdMixin, Base):
    """What happened to a lead, when and by whom: created, asked again, status, assigned, contacted,
    escalated. The lead's history and the customer's timeline read it."""

    __tablename__ = "lead_changes"
    __profile_link__ = "profile_id"
    __table_args__ = (Index("ix_lead_changes_lead", "lead_id", "at"),
                      Index("ix_lead_changes_profile", "profile_id", "at"),
                      # whose turn it is: the last assignment per salesperson (or dealer) of a unit
                      Index("ix_lead_changes_turns", "unit_id", "kind", "owner_id", "id"))

    org_id: Mapped[int] = mapped_column(BigId)
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id", ondelete="CASCADE"))
    profile_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(20))  # created | inquiry | status | assigned | contacted | escalated
    from_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    unit_id: Mapped[int | None] = mapped_column(BigId, nullable=True)  # where it was assigned to
    owner_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    reason: Mapped[str] = mapped_column(String(500), default="")
    actor_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    actor: Mapped[str] = mapped_column(String(100), default="")
    at: Mapped[datetime] = mapped_column()


class LeadRule(IdMixin, TimestampMixin, Base):
    """An event that makes (or updates) a lead: ``test_drive_booked`` from the website, a call-centre
    inquiry … with the source it is recorded under and the event property naming the model of interest."""

    __tablename__ = "lead_rules"
    __entity__ = "leads"
    __scope_unit__ = None
    __scope_owner__ = None
    __table_args__ = (UniqueConstraint("org_id", "event"),)

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(30), default="web")
    model_property: Mapped[str] = mapped_column(String(60), default="model")
    is_active: Mapped[bool] = mapped_column(default=True)


class RoutingRule(IdMixin, TimestampMixin, Base):
    """Where new leads go: the first active rule (by ``priority``) whose conditions all hold sends the lead
    to ``unit_id``; there a salesperson is picked by ``method``. Conditions left empty match anything."""

    __tablename__ = "routing_rules"
    __entity__ = "leads"
    __scope_unit__ = None
    __scope_owner__ = None

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    priority: Mapped[int] = mapped_column(default=100)  # lower first
    provinces: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    cities: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    models: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    sources: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    unit_id: Mapped[int] = mapped_column(BigId, ForeignKey("business_units.id"))
    method: Mapped[str] = mapped_column(String(20), default="round_robin")  # round_robin | least_loaded | none
    is_active: Mapped[bool] = mapped_column(default=True)


class LeadSla(IdMixin, Base):
    """Hours to the first contact of an assigned lead, counted in working hours when they are set: the
    organisation's default (``unit_id`` empty) or a unit's own (a dealer and the units below it)."""

    __tablename__ = "lead_slas"
    __table_args__ = (UniqueConstraint("org_id", "unit_id"),)

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    unit_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    first_contact_hours: Mapped[int] = mapped_column(default=24)
    # Working hours: the clock runs only while the unit is open (a lead at 22:00 is due N hours after the next
    # opening). Empty: around the clock.
    opens_at: Mapped[time | None] = mapped_column(nullable=True)
    closes_at: Mapped[time | None] = mapped_column(nullable=True)
    open_days: Mapped[list[int]] = mapped_column(JsonDoc, default=lambda: [0, 1, 2, 3, 4, 5, 6])


def lead_fields(lead: Lead) -> dict[str, Any]:
    """The fields an audit record keeps of a lead."""
    return {k: getattr(lead, k) for k in ("status", "unit_id", "owner_id", "source", "model_interest", "score")}


class ScoreRule(IdMixin, TimestampMixin, Base):
    """Points towards a customer's lead score: for each time they did an ``event`` (halved for every
    ``half_life_days`` of age, at most ``max_points``), or once for meeting a ``condition`` (the segment
    language: a field, consent, a tag …). Points may be negative (a complaint, an unsubscribe)."""

    __tablename__ = "score_rules"
    __entity__ = "leads"
    __scope_unit__ = None
    __scope_owner__ = None

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10), default="event")  # event | condition
    event: Mapped[str | None] = mapped_column(String(200), nullable=True)
    condition: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, nullable=True)
    points: Mapped[int] = mapped_column(default=10)
    half_life_days: Mapped[int] = mapped_column(default=30)
    max_points: Mapped[int | None] = mapped_column(nullable=True)
    is_active: Mapped[bool] = mapped_column(default=True)


class ScoringModel(IdMixin, Base):
    """The organisation's threshold: an open inquiry whose customer scores this much becomes an MQL."""

    __tablename__ = "scoring_models"
    __table_args__ = (UniqueConstraint("org_id"),)

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"))
    mql_threshold: Mapped[int] = mapped_column(default=50)
    computed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    job_id: Mapped[int | None] = mapped_column(BigId, nullable=True)


class ProfileScore(Base):
    """A customer's score at the last computation."""

    __tablename__ = "profile_scores"
    __table_args__ = (Index("ix_profile_scores_org_score", "org_id", "score"),)

    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(BigId)
    score: Mapped[int] = mapped_column()
    computed_at: Mapped[datetime] = mapped_column()


class Activity(IdMixin, TimestampMixin, OwnedMixin, Base):
    """A follow-up: a call, a visit, a test drive, a quote, a message — done (``done_at``) or planned as a
    task due at ``due_at``. On the customer (and their lead, if any); owned by whoever does it."""

    __tablename__ = "activities"
    __entity__ = "activities"
    __profile_link__ = "profile_id"
    __table_args__ = (Index("ix_activities_profile", "profile_id", "created_at"),
                      Index("ix_activities_lead", "lead_id"),
                      Index("ix_activities_owner_open", "owner_id", "done_at", "due_at"))

    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"))
    lead_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("leads.id", ondelete="SET NULL"), nullable=True)
    kind: Mapped[str] = mapped_column(String(20))  # call | visit | test_drive | quote | wechat | sms | email | task
    subject: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(String(2000), default="")
    outcome: Mapped[str] = mapped_column(String(200), default="")
    due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)


# -- opportunities (商机) ------------------------------------------------------------------------------------------
OPPORTUNITY_STATUSES = ("open", "won", "lost")


class Pipeline(IdMixin, TimestampMixin, Base):
    """A sales process: the ordered stages an opportunity goes through. Each organisation has a default
    (销售线索 → … → 项目实施) and may add its own (fleet sales, used cars …)."""

    __tablename__ = "pipelines"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    is_default: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)


class PipelineStage(IdMixin, Base):
    """One step of a pipeline with the win probability it stands for, the fields an opportunity must have
    filled to enter it, and whether reaching it means the deal is won."""

    __tablename__ = "pipeline_stages"
    __table_args__ = (UniqueConstraint("pipeline_id", "key"), Index("ix_pipeline_stages_order", "pipeline_id",
                                                                     "position"))

    org_id: Mapped[int] = mapped_column(BigId)
    pipeline_id: Mapped[int] = mapped_column(BigId, ForeignKey("pipelines.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(40))
    name_zh: Mapped[str] = mapped_column(String(60))
    name_en: Mapped[str] = mapped_column(String(60))
    position: Mapped[int] = mapped_column()
    probability: Mapped[int] = mapped_column(default=10)  # per cent
    is_won: Mapped[bool] = mapped_column(default=False)
    required_fields: Mapped[list[str]] = mapped_column(JsonDoc, default=list)


class Opportunity(IdMixin, TimestampMixin, OwnedMixin, Base):
    """A deal being worked (商机): for a customer (a person) and/or a company, with the products and amount
    expected, its stage in a pipeline and the chance of winning it. Owned by a salesperson at a dealer."""

    __tablename__ = "opportunities"
    __entity__ = "opportunities"
    __profile_link__ = "profile_id"
    __table_args__ = (Index("ix_opportunities_org_status", "org_id", "status", "unit_id"),
                      Index("ix_opportunities_stage", "stage_id", "status"),
                      Index("ix_opportunities_profile", "profile_id"),
                      # the foreign key's own index: without it, removing a lead scanned every deal
                      Index("ix_opportunities_lead", "lead_id", postgresql_where=text("lead_id IS NOT NULL"),
                            sqlite_where=text("lead_id IS NOT NULL")))

    title: Mapped[str] = mapped_column(String(200))
    profile_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("profiles.id"), nullable=True)
    account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts.id"), nullable=True)
    distributor_account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts.id"), nullable=True)
    partner_account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts.id"), nullable=True)
    lead_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("leads.id", ondelete="SET NULL"), nullable=True)
    pipeline_id: Mapped[int] = mapped_column(BigId, ForeignKey("pipelines.id"))
    stage_id: Mapped[int] = mapped_column(BigId, ForeignKey("pipeline_stages.id"))
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | won | lost
    probability: Mapped[int] = mapped_column(default=10)  # per cent; the stage's unless set by hand
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))  # expected, CNY
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    expected_close_on: Mapped[date | None] = mapped_column(nullable=True)
    sales_method: Mapped[str] = mapped_column(String(20), default="direct")  # direct | distribution | …
    source: Mapped[str] = mapped_column(String(30), default="manual")
    influence: Mapped[str | None] = mapped_column(String(10), nullable=True)  # high | medium | low
    competitors: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    description: Mapped[str] = mapped_column(String(2000), default="")
    stage_entered_at: Mapped[datetime] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    close_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    close_note: Mapped[str] = mapped_column(String(500), default="")
    created_by_id: Mapped[int | None] = mapped_column(BigId, nullable=True)


class OpportunityLine(IdMixin, Base):
    """A product of the deal with its quantity and price (three ID.4 for a fleet, a service package …)."""

    __tablename__ = "opportunity_lines"

    opportunity_id: Mapped[int] = mapped_column(BigId, ForeignKey("opportunities.id", ondelete="CASCADE"),
                                                index=True)
    product_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("products.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(default=1)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))


class OpportunityContact(IdMixin, Base):
    """A person on the customer's side and their part in the decision (决策人, 影响人, 使用人 …)."""

    __tablename__ = "opportunity_contacts"
    __profile_link__ = "profile_id"

    opportunity_id: Mapped[int] = mapped_column(BigId, ForeignKey("opportunities.id", ondelete="CASCADE"),
                                                index=True)
    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("profiles.id"), index=True)
    role: Mapped[str] = mapped_column(String(30), default="contact")


class OpportunityMember(IdMixin, Base):
    """A colleague on the deal besides its owner (销售团队): presales, the manager, a finance adviser."""

    __tablename__ = "opportunity_members"
    __table_args__ = (UniqueConstraint("opportunity_id", "user_id"),)

    opportunity_id: Mapped[int] = mapped_column(BigId, ForeignKey("opportunities.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(30), default="sales")


class OpportunityChange(IdMixin, Base):
    """The stage history: each row is the opportunity entering a stage (or being won, lost, reopened,
    reassigned), with the amount and probability it had then. Time in a stage is the gap to the next row."""

    __tablename__ = "opportunity_changes"
    __table_args__ = (Index("ix_opportunity_changes_opportunity", "opportunity_id", "at"),
                      Index("ix_opportunity_changes_org", "org_id", "kind", "at"))

    org_id: Mapped[int] = mapped_column(BigId)
    opportunity_id: Mapped[int] = mapped_column(BigId, ForeignKey("opportunities.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # created | stage | won | lost | reopened | assigned | updated
    from_stage_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    to_stage_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    status: Mapped[str] = mapped_column(String(10))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    probability: Mapped[int] = mapped_column(default=0)
    unit_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    owner_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    reason: Mapped[str] = mapped_column(String(500), default="")
    actor_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    actor: Mapped[str] = mapped_column(String(100), default="")
    at: Mapped[datetime] = mapped_column()
