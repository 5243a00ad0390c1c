"""Shapes of the customer API (unknown fields refused on input)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kehu.cdp.models import ADDRESS_LENGTH, POSTCODE_LENGTH
from kehu.core.schemas import Input, omissible

SourceKind = Literal["web", "app", "server", "import"]
Gender = Literal["male", "female", "other"]
Stage = Literal["visitor", "prospect", "lead", "opportunity", "customer", "owner", "churned"]


class Strict(Input):
    """Request bodies (see kehu.core.schemas.Input)."""


class SourceCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    kind: SourceKind = "server"
    unit_id: int | None = None


class SourceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    kind: str
    unit_id: int
    write_key_prefix: str
    is_active: bool
    created_at: datetime


class SourceCreated(SourceOut):
    write_key: str = Field(description="Use as the HTTP Basic user name of /v1 calls. Shown once.")


class ProfileCreate(Strict):
    name: str | None = Field(default=None, max_length=100)
    gender: Gender | None = None
    birthday: date | None = None
    mobile: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    province: str | None = Field(default=None, max_length=60)
    city: str | None = Field(default=None, max_length=60)
    address: str | None = Field(default=None, max_length=ADDRESS_LENGTH)
    postcode: str | None = Field(default=None, max_length=POSTCODE_LENGTH)
    lifecycle_stage: Stage = "prospect"
    unit_id: int | None = None
    owner_id: int | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class ProfileUpdate(Strict):
    name: str | None = Field(default=None, max_length=100)
    gender: Gender | None = None
    birthday: date | None = None
    mobile: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    province: str | None = Field(default=None, max_length=60)
    city: str | None = Field(default=None, max_length=60)
    address: str | None = Field(default=None, max_length=ADDRESS_LENGTH)
    postcode: str | None = Field(default=None, max_length=POSTCODE_LENGTH)
    lifecycle_stage: Stage = omissible()
    attributes: dict[str, Any] = omissible()


class ProfileOut(BaseModel):
    id: int
    name: str | None
    name_pinyin: str | None
    gender: str | None
    birthday: str | None
    mobile: str | None
    email: str | None
    province: str | None
    city: str | None
    address: str | None
    postcode: str | None = None
    source: str | None
    lifecycle_stage: str
    unit_id: int
    owner_id: int | None
    attributes: dict[str, Any]
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    created_at: datetime
    updated_at: datetime


class IdentityOut(BaseModel):
    id: int
    kind: str
    value: str
    source_id: int | None
    first_seen_at: datetime
    last_seen_at: datetime


class EventOut(BaseModel):
    id: int
    type: str
    event: str
    ts: datetime
    source_id: int
    properties: dict[str, Any]
    context: dict[str, Any]


class TimelineItemOut(BaseModel):
    """An event the customer caused (kind "event"), a change made to their record (kind "change"), their
    entering or leaving a segment (kind "segment": action entered | left, entity_id the segment, summary its
    name), or what happened to one of their leads (kind "lead": action created | inquiry | status | assigned |
    contacted | escalated, entity_id the lead), or a sales activity (kind "activity": action call | visit |
    test_drive | quote | … | task), or a move of one of their opportunities (kind "opportunity": action
    created | stage | won | lost | reopened, entity_id the opportunity, summary its title), or a message sent to
    them (kind "message": action its status, entity_id the message, summary its subject, changes its channel and
    when it was opened and clicked)."""

    kind: Literal["event", "change", "segment", "lead", "activity", "opportunity", "message"]
    id: int
    ts: datetime
    type: str | None = Field(default=None, description="event: identify | track | page | screen | group | alias")
    event: str | None = None
    source_id: int | None = None
    properties: dict[str, Any] | None = None
    action: str | None = Field(default=None, description="change: create | update | merge | unmerge | consent | "
                                                         "register_vehicle | …")
    entity: str | None = None
    entity_id: int | None = None
    actor: str | None = None
    summary: str | None = None
    changes: dict[str, Any] | None = Field(default=None, description="change: field → new value (PII masked)")


class TimelinePage(BaseModel):
    items: list[TimelineItemOut]
    next_cursor: str | None


class MergeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    winner_id: int
    loser_id: int
    reason: str
    detail: str
    created_at: datetime
    created_by_id: int | None
    undone_at: datetime | None


class ConsentOut(BaseModel):
    channel: str
    purpose: str
    status: str
    ts: datetime
    evidence: str


class ConsentCreate(Strict):
    channel: Literal["sms", "email", "wechat", "phone", "app_push", "mail"]
    purpose: Literal["marketing", "service", "analytics", "third_party"]
    granted: bool
    evidence: str = Field(min_length=1, max_length=500, description="How the customer decided (PIPL proof)")
    ts: datetime | None = None


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    external_id: str
    kind: str
    name: str | None
    traits: dict[str, Any]
    unit_id: int
    created_at: datetime


class OrderLineIn(Strict):
    sku: str | None = Field(default=None, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    quantity: int = Field(default=1, ge=1, le=10_000)
    price: Decimal = Field(ge=0, max_digits=14, decimal_places=2)


class OrderCreate(Strict):
    profile_id: int
    external_id: str = Field(min_length=1, max_length=100, description="The order number")
    ordered_at: datetime | None = None
    unit_id: int | None = None
    owner_id: int | None = None
    status: Literal["placed", "paid", "delivered", "cancelled", "refunded"] = "placed"
    lines: list[OrderLineIn] = Field(min_length=1, max_length=500)


class OrderLineOut(BaseModel):
    sku: str | None
    name: str
    quantity: int
    unit_price: Decimal


class OrderOut(BaseModel):
    id: int
    external_id: str
    status: str
    ordered_at: datetime
    total: Decimal
    currency: str
    profile_id: int
    unit_id: int
    owner_id: int | None
    lines: list[OrderLineOut] = []


class VehicleIn(Strict):
    vin: str = Field(min_length=17, max_length=17)
    model: str | None = Field(default=None, max_length=100)
    model_year: int | None = Field(default=None, ge=1950, le=2100)
    plate: str | None = Field(default=None, max_length=20)
    purchased_at: date | None = None


class VehicleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    vin: str
    model: str | None
    model_year: int | None
    plate: str | None
    purchased_at: date | None
    unit_id: int | None


class Customer360(BaseModel):
    profile: ProfileOut
    identities: list[IdentityOut] | None = None
    consents: list[ConsentOut] | None = None
    accounts: list[AccountOut] | None = None
    orders: list[OrderOut] | None = None
    vehicles: list[VehicleOut] | None = None
    merges: list[MergeOut] | None = None
    events: list[EventOut] | None = None
    events_next_cursor: str | None = None
    timeline: list[TimelineItemOut] | None = None
    timeline_next_cursor: str | None = None


MergeChoices = dict[str, Literal["winner", "loser"]]
MERGE_CHOICES = Field(default_factory=dict, max_length=200, description=(
    "Field by field, whose value the merged customer keeps (standard fields and custom ones). A field not "
    "named keeps the surviving record's value, or takes the other's when it has none; the life-cycle stage "
    "is the further of the two."))


class MergeRequest(Strict):
    winner_id: int
    loser_id: int
    reason: str = Field(default="", max_length=500)
    fields: MergeChoices = MERGE_CHOICES


class AssignRequest(Strict):
    profile_ids: list[int] = Field(min_length=1, max_length=10_000)
    owner_id: int


class ImportOut(BaseModel):
    id: int
    kind: str = Field(description="profiles | orders")
    filename: str
    encoding: str
    headers: list[str]
    mapping: dict[str, str]
    status: str
    job_id: int | None
    job_status: str | None = None
    progress: int = 0
    total_rows: int
    accepted_rows: int
    rejected_rows: int
    profiles_created: int
    orders_created: int
    warnings: int = Field(description="Values of accepted rows that were left out (listed under /warnings)")
    created_at: datetime


class ImportMapping(Strict):
    mapping: dict[str, str] = Field(description='header → "name", "mobile", "identity:vin", "attribute:<key>" or "" '
                                    '(profiles); "order_no", "ordered_at", "status", "total", "currency", '
                                    '"dealer", "sku", "product", "quantity", "unit_price" and customer columns '
                                    '(orders)')


class PreviewRowOut(BaseModel):
    row_number: int
    values: dict[str, str]
    ok: bool
    reason: str = Field(description="Why the row would be rejected (empty when it is accepted)")
    warnings: str = Field(description="Values of an accepted row that would be left out, and why")


class ImportWarningOut(BaseModel):
    """A value of an accepted row that was not stored."""

    row_number: int
    column: str
    value: str
    reason: str


class FieldOption(Strict):
    value: str = Field(min_length=1, max_length=60)
    zh: str = Field(min_length=1, max_length=60)
    en: str = Field(min_length=1, max_length=60)


class CustomFieldCreate(Strict):
    key: str = Field(min_length=1, max_length=60, description="lower_snake_case; the key in attributes")
    label_zh: str = Field(min_length=1, max_length=100)
    label_en: str = Field(min_length=1, max_length=100)
    type: Literal["text", "number", "date", "boolean", "option", "multi_option"]
    options: list[FieldOption] = Field(default_factory=list, max_length=200)
    is_pii: bool = False


class CustomFieldUpdate(Strict):
    label_zh: str = omissible(min_length=1, max_length=100)
    label_en: str = omissible(min_length=1, max_length=100)
    options: list[FieldOption] = omissible(max_length=200)
    is_pii: bool = omissible()


class CustomFieldOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    key: str
    label_zh: str
    label_en: str
    type: str
    options: list[dict[str, str]]
    is_pii: bool


class IdentityRuleIn(Strict):
    priority: int = Field(ge=1, le=1000, description="1 is the strongest identity")
    max_per_profile: int = Field(ge=1, le=1000, description="How many values of this kind one profile may hold")
    label_zh: str = Field(default="", max_length=60)
    label_en: str = Field(default="", max_length=60)


class IdentityRuleOut(BaseModel):
    kind: str
    priority: int
    max_per_profile: int
    label_zh: str
    label_en: str


class ExportRequest(Strict):
    format: Literal["csv", "xlsx"] = "csv"
    q: str | None = Field(default=None, max_length=200, description="The customer list's search")
    unit_id: int | None = Field(default=None, description="Customers of this unit and the units below it")
    stage: Literal["visitor", "prospect", "lead", "opportunity", "customer", "owner", "churned"] | None = None


class ExportOut(BaseModel):
    id: int
    format: str
    filters: dict[str, Any]
    status: str = Field(description="queued | running | done | failed")
    error: str | None = None
    row_count: int
    filename: str
    created_at: datetime
    finished_at: datetime | None


ProductKind = Literal["vehicle_model", "part", "service", "accessory"]


class ProductCreate(Strict):
    sku: str = Field(min_length=1, max_length=100, pattern=r"^\S(.*\S)?$", description="Unique per organisation")
    name: str = Field(min_length=1, max_length=200)
    kind: ProductKind = "vehicle_model"
    price: Decimal | None = Field(default=None, ge=0, lt=Decimal("1e12"), decimal_places=2,
                                  description="List price in CNY")
    is_active: bool = True


class ProductUpdate(Strict):
    name: str = omissible(min_length=1, max_length=200)
    kind: ProductKind = omissible()
    price: Decimal | None = Field(default=None, ge=0, lt=Decimal("1e12"), decimal_places=2)
    is_active: bool = omissible()


class ProductOut(BaseModel):
    model_config = {"from_attributes": True}

    id: int
    sku: str
    name: str
    kind: str
    price: Decimal | None
    is_active: bool


# -- probabilistic dedupe -----------------------------------------------------------------------------------
class DedupeSettingsIn(Strict):
    review_threshold: float | None = Field(default=None, ge=0.5, lt=1,
                                           description="Pairs at least this probable are proposed for review")
    auto_merge_threshold: float | None = Field(
        default=None, ge=0.5, lt=1, description="Pairs at least this probable are merged without asking; "
                                                "send null with clear_auto_merge to let people decide every pair")
    clear_auto_merge: bool = False


class DedupeSettingsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    review_threshold: float
    auto_merge_threshold: float | None
    status: str
    job_id: int | None
    last_run_at: datetime | None
    figures: dict[str, Any]
    model: dict[str, Any] = Field(description="The fitted model: per comparison level m, u and the weight "
                                              "log2(m/u); the prior; pairs each blocking rule found")


class ComparisonSetting(Strict):
    field: str = Field(max_length=80, description="A standard comparison (name, birthday, mobile, email, city, "
                                                  "address — with the postcode —, gender) or a custom field as "
                                                  "attributes.<key>")
    kind: str | None = Field(default=None, max_length=20, description=(
        "standard (the matcher's own levels; the only kind of a standard field), or for a custom field: exact "
        "(text, number, date, option, boolean), fuzzy (text: one character mistyped, missing, extra or two "
        "swapped), date (date: one digit mistyped, day and month swapped)"))


class RuleSetting(Strict):
    name: str = Field(min_length=1, max_length=60, description="A default rule's name, or a name for your own rule")
    fields: list[str] | None = Field(default=None, max_length=10, description=(
        "null for a default rule; for your own: the fields pairs must agree on exactly — standard (name, birthday, "
        "birth_year, mobile, email, city, postcode, gender) or attributes.<key>. Empty (or only fields with a "
        "handful of values, such as gender) would compare every pair and is refused"))


class MatchingIn(Strict):
    comparisons: list[ComparisonSetting] | None = Field(
        default=None, max_length=50, description="What is compared between two records; null: the defaults")
    rules: list[RuleSetting] | None = Field(
        default=None, max_length=100, description="Which pairs are compared at all (blocking): a pair is compared "
                                                  "when it meets one rule; null: the default rules")


class MatchingFieldOption(BaseModel):
    field: str = Field(description="attributes.<key>")
    label_zh: str
    label_en: str
    type: str
    is_pii: bool
    kinds: list[str] = Field(description="The comparison kinds its type allows (none: it cannot take part)")


class MatchingOptions(BaseModel):
    comparisons: list[str] = Field(description="The standard comparisons")
    rules: list[str] = Field(description="The default blocking rules, in the order they are loosened")
    rule_fields: list[str] = Field(description="Standard fields a rule of your own may use")
    custom_fields: list[MatchingFieldOption]


class MatchingOut(BaseModel):
    is_default: bool = Field(description="Nothing chosen: the defaults (made for Chinese consumer data)")
    comparisons: list[ComparisonSetting]
    rules: list[RuleSetting]
    options: MatchingOptions


class RulePlanOut(BaseModel):
    rule: str
    keys: list[str] = Field(description="The keys its pairs agree on (a rule is tightened — more keys — when it "
                                        "would compare too many)")
    pairs: int = Field(description="Pairs it compares (before pairs found by an earlier rule are left out)")
    tightened: bool


class MatchingCheckOut(BaseModel):
    records: int
    ceiling: int = Field(description="Most pairs a run may compare (KEHU_DEDUPE_MAX_PAIRS_PER_RECORD × records)")
    pairs: int
    over_ceiling: bool = Field(description="A run would refuse to start (each rule counted at its tightest)")
    rules: list[RulePlanOut]


class EvidenceOut(BaseModel):
    comparison: str = Field(description="name | birthday | mobile | email | city | address | gender | "
                                        "attributes.<key> (a custom field the organisation compares)")
    level: int = Field(description="0 = different; higher = closer (name: 1 similar, 2 same pinyin, 3 same)")
    weight: float | None


class DuplicateOut(BaseModel):
    id: int
    probability: float
    status: str
    found_at: datetime
    decided_at: datetime | None
    decided_by_id: int | None
    merge_id: int | None
    evidence: list[EvidenceOut]
    customers: list[ProfileOut] = Field(description="The two customers, the older record first")


class DuplicateMergeIn(Strict):
    winner_id: int | None = Field(default=None, description="The customer that stays (default: the older record)")
    fields: MergeChoices = MERGE_CHOICES
