"""What the sales API takes and gives."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kehu.core.schemas import Input
from kehu.segments.schemas import Condition

Status = Literal["inquiry", "mql", "sal", "sql", "converted", "disqualified", "recycled"]
Source = Literal["web", "app", "wechat", "call_centre", "showroom", "event", "import", "api", "manual", "journey"]
DisqualifyReason = Literal["no_budget", "no_response", "bought_elsewhere", "not_interested", "duplicate",
                           "invalid_contact", "other"]
Method = Literal["round_robin", "least_loaded", "none"]


class _Shape(Input):
    """Request bodies (see kehu.core.schemas.Input)."""


class LeadCreate(_Shape):
    """An inquiry: for a known customer (``profile_id``) or for a person given by mobile / e-mail (found by
    One ID, or made a new customer). A second inquiry while the person has an open lead the caller may read
    updates that lead; another dealer's open lead is left alone (the inquiry becomes the caller's own lead).
    ``unit_id`` / ``owner_id`` place it by hand; otherwise the routing rules do."""

    profile_id: int | None = None
    name: str | None = Field(default=None, max_length=100)
    mobile: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    province: str | None = Field(default=None, max_length=60)
    city: str | None = Field(default=None, max_length=60)
    source: Source = "manual"
    model_interest: str | None = Field(default=None, max_length=100)
    note: str = Field(default="", max_length=2000)
    unit_id: int | None = None
    owner_id: int | None = None

    @model_validator(mode="after")
    def someone(self) -> LeadCreate:
        if self.profile_id is None and not (self.mobile or self.email):
            raise ValueError("give the customer (profile_id) or a mobile or e-mail to find or make them by")
        return self


class LeadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    profile_id: int
    status: str
    source: str
    source_event: str | None
    model_interest: str | None
    note: str
    score: int
    inquiries: int
    unit_id: int
    owner_id: int | None
    first_inquiry_at: datetime
    last_inquiry_at: datetime
    status_changed_at: datetime
    assigned_at: datetime | None
    first_contact_due_at: datetime | None
    first_contacted_at: datetime | None
    escalated_at: datetime | None
    disqualify_reason: str | None
    overdue: bool = Field(description="assigned, not contacted, and past its first-contact time")
    created_at: datetime


class LeadCreated(LeadOut):
    created: bool = Field(description="false when an open lead of the same customer was updated instead")


class LeadChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    from_status: str | None
    to_status: str | None
    unit_id: int | None
    owner_id: int | None
    reason: str
    actor: str
    at: datetime


class StatusChange(_Shape):
    status: Status
    reason: DisqualifyReason | None = Field(default=None, description="required to disqualify")
    note: str = Field(default="", max_length=500)


class Assignment(_Shape):
    """Where to: a unit (a salesperson there is picked by its routing method unless ``owner_id`` is given),
    or straight to a salesperson (in their unit)."""

    unit_id: int | None = None
    owner_id: int | None = None

    @model_validator(mode="after")
    def somewhere(self) -> Assignment:
        if self.unit_id is None and self.owner_id is None:
            raise ValueError("give a unit_id, an owner_id or both")
        return self


class BulkAssignment(Assignment):
    lead_ids: list[int] = Field(min_length=1, max_length=1000)


class Contacted(_Shape):
    note: str = Field(default="", max_length=500)


class LeadRuleIn(_Shape):
    event: str = Field(min_length=1, max_length=200)
    source: Source = "web"
    model_property: str = Field(default="model", min_length=1, max_length=60)
    is_active: bool = True


class LeadRuleOut(LeadRuleIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")
    id: int


class RoutingRuleIn(_Shape):
    name: str = Field(min_length=1, max_length=100)
    priority: int = Field(default=100, ge=0, le=100_000)
    provinces: list[str] = Field(default_factory=list, max_length=100)
    cities: list[str] = Field(default_factory=list, max_length=500)
    models: list[str] = Field(default_factory=list, max_length=100)
    sources: list[Source] = Field(default_factory=list)
    unit_id: int
    method: Method = "round_robin"
    is_active: bool = True


class RoutingRuleOut(RoutingRuleIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")
    id: int


class SlaIn(_Shape):
    """Hours to the first contact; with ``opens_at`` / ``closes_at`` (and ``open_days``, 0 = Monday) they are
    working hours in the organisation's time zone: the clock stops while the unit is closed."""

    unit_id: int | None = Field(default=None, description="empty: the organisation's default")
    first_contact_hours: int = Field(ge=1, le=24 * 30)
    opens_at: time | None = None
    closes_at: time | None = None
    open_days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4, 5, 6], min_length=1, max_length=7)


class SlaOut(SlaIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")


class ScoreRuleIn(_Shape):
    """``event``: ``points`` for each time the customer did ``event``, halved for every ``half_life_days`` of
    age, at most ``max_points`` in all. ``condition``: ``points`` once for a customer who meets ``condition``
    (the segment language). Negative points count against."""

    name: str = Field(min_length=1, max_length=100)
    kind: Literal["event", "condition"] = "event"
    event: str | None = Field(default=None, max_length=200)
    condition: Condition | None = None
    points: int = Field(ge=-1000, le=1000)
    half_life_days: int = Field(default=30, ge=1, le=3650)
    max_points: int | None = Field(default=None, ge=1, le=100_000)
    is_active: bool = True

    @model_validator(mode="after")
    def complete(self) -> ScoreRuleIn:
        if self.kind == "event" and not self.event:
            raise ValueError("an event rule names its event")
        if self.kind == "condition" and self.condition is None:
            raise ValueError("a condition rule has a condition")
        return self


class ScoreRuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    kind: str
    event: str | None
    condition: dict[str, object] | None
    points: int
    half_life_days: int
    max_points: int | None
    is_active: bool


class ScoringIn(_Shape):
    mql_threshold: int = Field(ge=1, le=100_000)


class ScoringOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    mql_threshold: int
    computed_at: datetime | None


class ScorePart(BaseModel):
    rule_id: int
    rule: str
    points: int


class LeadScoreOut(BaseModel):
    score: int = Field(description="the lead's score at the last computation")
    now: list[ScorePart] = Field(description="where the customer's points come from now, rule by rule")


ActivityKind = Literal["call", "visit", "test_drive", "quote", "wechat", "sms", "email", "task"]


class ActivityIn(_Shape):
    """A follow-up on a lead (``lead_id``) or a customer (``profile_id``): done now unless ``due_at`` plans it
    (then ``done`` false); ``done_at`` records one done earlier."""

    lead_id: int | None = None
    profile_id: int | None = None
    kind: ActivityKind
    subject: str = Field(default="", max_length=200)
    note: str = Field(default="", max_length=2000)
    outcome: str = Field(default="", max_length=200)
    due_at: datetime | None = None
    done_at: datetime | None = None
    done: bool = False

    @model_validator(mode="after")
    def about_someone(self) -> ActivityIn:
        if self.lead_id is None and self.profile_id is None:
            raise ValueError("give the lead (lead_id) or the customer (profile_id)")
        return self


class ActivityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    profile_id: int
    lead_id: int | None
    kind: str
    subject: str
    note: str
    outcome: str
    due_at: datetime | None
    done_at: datetime | None
    owner_id: int | None
    unit_id: int
    created_at: datetime
    overdue: bool


class ActivityDone(_Shape):
    outcome: str = Field(default="", max_length=200)


# -- opportunities ------------------------------------------------------------------------------------------------
SalesMethod = Literal["direct", "distribution", "agency", "fleet", "online"]
Influence = Literal["high", "medium", "low"]
ContactRole = Literal["decision_maker", "influencer", "user", "finance", "contact"]
MemberRole = Literal["sales", "presales", "manager", "finance", "service"]
LostReason = Literal["price", "competitor", "no_budget", "no_decision", "product_fit", "timing", "no_response",
                     "other"]
REQUIRABLE = ("amount", "expected_close_on", "products", "contacts", "account_id", "competitors", "description")


class OpportunityLineIn(_Shape):
    product_id: int | None = None
    name: str | None = Field(default=None, max_length=200, description="the product's name unless given")
    quantity: int = Field(default=1, ge=1, le=100_000)
    unit_price: Decimal | None = Field(default=None, ge=0, le=Decimal("999999999999"), decimal_places=2,
                                       description="the product's list price unless given")

    @model_validator(mode="after")
    def named(self) -> OpportunityLineIn:
        if self.product_id is None and not self.name:
            raise ValueError("give a product_id or a name")
        return self


class OpportunityLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    product_id: int | None
    name: str
    quantity: int
    unit_price: Decimal


class ContactIn(_Shape):
    profile_id: int
    role: ContactRole = "contact"


class MemberIn(_Shape):
    user_id: int
    role: MemberRole = "sales"


class OpportunityFields(_Shape):
    """What a salesperson fills in; on update only the fields sent change (lists are replaced whole)."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    amount: Decimal | None = Field(default=None, ge=0, le=Decimal("999999999999"), decimal_places=2,
                                   description="expected amount in CNY; the products' total when not given")
    probability: int | None = Field(default=None, ge=0, le=100, description="per cent; the stage's by default")
    expected_close_on: date | None = None
    sales_method: SalesMethod | None = None
    source: Source | None = None
    influence: Influence | None = None
    competitors: list[str] | None = Field(default=None, max_length=20)
    account_id: int | None = None
    distributor_account_id: int | None = None
    partner_account_id: int | None = None
    products: list[OpportunityLineIn] | None = Field(default=None, max_length=200)
    contacts: list[ContactIn] | None = Field(default=None, max_length=50)
    members: list[MemberIn] | None = Field(default=None, max_length=50)


class OpportunityCreate(OpportunityFields):
    """A new deal for a customer (``profile_id``) and/or a company (``account_id``), in a pipeline (the
    default unless given) at a stage (its first unless given); placed at the owner's unit (the creator's
    unless given)."""

    title: str = Field(min_length=1, max_length=200)
    profile_id: int | None = None
    pipeline_id: int | None = None
    stage_key: str | None = Field(default=None, max_length=40)
    unit_id: int | None = None
    owner_id: int | None = None

    @model_validator(mode="after")
    def for_someone(self) -> OpportunityCreate:
        if self.profile_id is None and self.account_id is None:
            raise ValueError("give the customer (profile_id) or the company (account_id)")
        return self


class StageMove(_Shape):
    stage_key: str = Field(min_length=1, max_length=40)
    note: str = Field(default="", max_length=500)


class Close(_Shape):
    """Won (the pipeline's won stage is entered) or lost, with the reason."""

    outcome: Literal["won", "lost"]
    reason: LostReason | None = Field(default=None, description="required when lost")
    note: str = Field(default="", max_length=500)


class OpportunityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    title: str
    profile_id: int | None
    account_id: int | None
    distributor_account_id: int | None
    partner_account_id: int | None
    lead_id: int | None
    pipeline_id: int
    stage_id: int
    stage_key: str
    status: str
    probability: int
    amount: Decimal
    weighted_amount: Decimal
    currency: str
    expected_close_on: date | None
    sales_method: str
    source: str
    influence: str | None
    competitors: list[str]
    description: str
    unit_id: int
    owner_id: int | None
    stage_entered_at: datetime
    closed_at: datetime | None
    close_reason: str | None
    close_note: str
    created_at: datetime


class OpportunityDetail(OpportunityOut):
    products: list[OpportunityLineOut]
    contacts: list[ContactIn]
    members: list[MemberIn]


class OpportunityChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    from_stage_id: int | None
    to_stage_id: int | None
    status: str
    amount: Decimal
    probability: int
    owner_id: int | None
    reason: str
    actor: str
    at: datetime
    seconds_in_stage: int | None = Field(default=None, description="how long it stayed in the stage it entered")


class StageIn(_Shape):
    key: str = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str = Field(min_length=1, max_length=60)
    name_en: str = Field(min_length=1, max_length=60)
    probability: int = Field(ge=0, le=100)
    is_won: bool = False
    required_fields: list[Literal["amount", "expected_close_on", "products", "contacts", "account_id",
                                  "competitors", "description"]] = Field(default_factory=list)


class PipelineIn(_Shape):
    """A pipeline and its stages in order; exactly one stage, the last, is the won stage."""

    name: str = Field(min_length=1, max_length=100)
    is_default: bool = False
    stages: list[StageIn] = Field(min_length=2, max_length=20)

    @model_validator(mode="after")
    def well_formed(self) -> PipelineIn:
        keys = [s.key for s in self.stages]
        if len(set(keys)) != len(keys):
            raise ValueError("stage keys must differ")
        if [s.is_won for s in self.stages] != [False] * (len(keys) - 1) + [True]:
            raise ValueError("the last stage, and only it, is the won stage")
        return self


class StageOut(StageIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")
    id: int
    position: int


class PipelineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    is_default: bool
    is_active: bool
    stages: list[StageOut]


class LeadConversion(_Shape):
    """Convert a lead in one step: the customer (already the lead's), optionally their company (an existing
    account, or a new one named here, which the customer joins), and a new opportunity."""

    title: str | None = Field(default=None, max_length=200, description="'<customer> · <model>' by default")
    account_id: int | None = None
    new_account_name: str | None = Field(default=None, max_length=200)
    new_account_kind: Literal["company", "household"] = "company"
    pipeline_id: int | None = None
    amount: Decimal | None = Field(default=None, ge=0, le=Decimal("999999999999"), decimal_places=2)
    expected_close_on: date | None = None
    products: list[OpportunityLineIn] | None = Field(default=None, max_length=200)
    note: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def one_account(self) -> LeadConversion:
        if self.account_id is not None and self.new_account_name:
            raise ValueError("give an existing account_id or a new_account_name, not both")
        return self
