"""The condition language of segments (and, later, journey branches): JSON, one schema, one compiler.

A condition is a tree. Groups combine (``all`` / ``any`` of their ``conditions``, ``not`` of one); rules ask
one question of a profile: a field, an identity it holds, events it did, its orders, its consent, the unit
that owns it. Dates are ISO dates or date-times read in the organisation's time zone; "relative" windows
count days back from now."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, model_validator

from kehu.core.schemas import Input, omissible

CountOp = Literal["eq", "gte", "gt", "lte", "lt"]
FieldOp = Literal["eq", "ne", "in", "not_in", "contains", "starts_with", "gt", "gte", "lt", "lte", "between",
                  "before", "after", "within_last_days", "more_than_days_ago", "is_true", "is_false", "is_set",
                  "is_not_set"]


class _Shape(Input):
    """Request bodies (see kehu.core.schemas.Input)."""


class Window(_Shape):
    """When: the last ``within_days`` days, or from one day to another (both included), or both bounds open."""

    within_days: int | None = Field(default=None, ge=1, le=36500)
    from_: date | datetime | None = Field(default=None, alias="from")
    to: date | datetime | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Count(_Shape):
    op: CountOp = "gte"
    value: int = Field(ge=0, le=1_000_000)


class PropertyFilter(_Shape):
    """A condition on one property of the event (``properties.<property>``)."""

    property: str = Field(min_length=1, max_length=100)
    op: Literal["eq", "ne", "in", "contains", "gt", "gte", "lt", "lte"] = "eq"
    value: Any


class FieldRule(_Shape):
    """A standard field (``city``, ``lifecycle_stage``, ``birthday``, ``last_seen_at`` …) or a custom field
    (``attributes.<key>``)."""

    type: Literal["field"]
    field: str = Field(min_length=1, max_length=80)
    op: FieldOp
    value: Any = None


class IdentityRule(_Shape):
    """Holds (or lacks) an identity of a kind: a WeChat openid, a VIN, a member id …"""

    type: Literal["identity"]
    kind: str = Field(min_length=1, max_length=40)
    op: Literal["has", "lacks"] = "has"


class EventRule(_Shape):
    """Did an event (a number of times, in a window, with properties); ``did_not`` is "not even once"."""

    type: Literal["event"]
    event: str = Field(min_length=1, max_length=200)
    op: Literal["did", "did_not"] = "did"
    count: Count | None = None
    window: Window | None = None
    where: list[PropertyFilter] = Field(default_factory=list, max_length=10)


class EventTimeRule(_Shape):
    """When a customer first (or last) did an event: "first test drive after 1 March", "last app login more
    than 90 days ago". Customers who never did it meet none of these."""

    type: Literal["event_time"]
    event: str = Field(min_length=1, max_length=200)
    which: Literal["first", "last"] = "last"
    op: Literal["before", "after", "within_last_days", "more_than_days_ago"]
    value: Any


class AccountRule(_Shape):
    """Belongs (or does not belong) to an account: a given one (``account_id``), or any of a kind (a company,
    a household, a dealer group), or any at all when neither is given."""

    type: Literal["account"]
    op: Literal["member", "not_member"] = "member"
    account_id: int | None = None
    kind: Literal["company", "household", "dealer_group"] | None = None


class OrderRule(_Shape):
    """Orders: how many, how much in total (CNY), or when the last one was; optionally only some statuses,
    one product (SKU) or a window."""

    type: Literal["orders"]
    measure: Literal["count", "total", "last_ordered_at"] = "count"
    op: Literal["eq", "gte", "gt", "lte", "lt", "before", "after", "within_last_days", "more_than_days_ago"]
    value: Any
    status: list[Literal["placed", "paid", "delivered", "cancelled", "refunded"]] | None = None
    sku: str | None = Field(default=None, max_length=100)
    window: Window | None = None


class ConsentRule(_Shape):
    """The latest consent record for a channel and purpose says granted (or does not: withdrawn or never), or
    says withdrawn (or does not: granted or never — what service messages ask)."""

    type: Literal["consent"]
    channel: Literal["sms", "email", "wechat", "phone", "app_push", "mail"]
    purpose: Literal["marketing", "service", "analytics", "third_party"] = "marketing"
    op: Literal["granted", "not_granted", "withdrawn", "not_withdrawn"] = "granted"


class UnitRule(_Shape):
    """Owned by a unit or anything under it (a region and its dealers), or not."""

    type: Literal["unit"]
    unit_id: int
    op: Literal["within", "not_within"] = "within"


class SegmentRule(_Shape):
    """Is (or is not) a member of another segment, as of that segment's last refresh."""

    type: Literal["segment"]
    segment_id: int
    op: Literal["in", "not_in"] = "in"


class TagRule(_Shape):
    """Carries (or does not carry) a tag."""

    type: Literal["tag"]
    tag_id: int
    op: Literal["has", "lacks"] = "has"


class AllOf(_Shape):
    type: Literal["all"]
    conditions: list[Condition] = Field(min_length=1, max_length=50)


class AnyOf(_Shape):
    type: Literal["any"]
    conditions: list[Condition] = Field(min_length=1, max_length=50)


class Not(_Shape):
    type: Literal["not"]
    condition: Condition


# How deep groups (all / any / not) may nest. A marketer's condition is a few levels deep; a deeper one is a
# generated attack, and past ~65 levels validating and compiling it recursed until Python gave up (a 500).
MAX_CONDITION_DEPTH = 20


def _within_depth(value: Any) -> Any:
    """Measures the raw tree before it is validated (which would recurse through it), without recursing."""
    stack, deepest = [(value, 1)], 0
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_CONDITION_DEPTH:
            raise ValueError(f"conditions may nest at most {MAX_CONDITION_DEPTH} levels deep (all / any / not)")
        if isinstance(node, dict):
            children = node.get("conditions") if node.get("type") in ("all", "any") else (
                [node.get("condition")] if node.get("type") == "not" else [])
            if isinstance(children, list):
                stack.extend((child, depth + 1) for child in children)
    return value


Condition = Annotated[AllOf | AnyOf | Not | FieldRule | IdentityRule | EventRule | EventTimeRule | OrderRule
                      | ConsentRule | UnitRule | SegmentRule | TagRule | AccountRule, Field(discriminator="type"),
                      BeforeValidator(_within_depth)]
AllOf.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()


class PreviewRequest(_Shape):
    condition: Condition
    sample: int = Field(default=20, ge=0, le=100)
    exact: bool = Field(default=False, description=(
        "Count every matching customer. Without it, a condition that many customers of a large database meet, asked "
        "by someone whose scope spans many units, is counted in a random sample of the customers' pages (an "
        "estimate within ±10 % at 95 %, answered in milliseconds instead of a scan of every customer); a rare one, a "
        "small scope and SQLite are always counted exactly."))


class SampleProfile(BaseModel):
    id: int
    name: str | None
    mobile: str | None
    city: str | None
    lifecycle_stage: str
    unit_id: int
    last_seen_at: datetime | None


class PreviewOut(BaseModel):
    count: int = Field(description="The customers who match; an estimate when ``estimated``.")
    estimated: bool = Field(default=False, description="``count`` was estimated from a random sample of the "
                            "customers; ask again with ``exact`` for the exact number.")
    margin: int | None = Field(default=None, description="An estimate's margin of error (95 %): the number lies "
                               "within ``count`` ± ``margin``.")
    sample: list[SampleProfile] = Field(description="Some of the matching customers, newest first (when the count "
                                        "is estimated, the newest of those in the sample).")
    milliseconds: int


condition_adapter: TypeAdapter[Any] = TypeAdapter(Condition)


class SegmentCreate(_Shape):
    """A dynamic segment follows its condition; a static one is a snapshot of its condition's members now,
    or of hand-picked customers (``profile_ids``), or both, or empty until a list is uploaded to it."""

    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)
    kind: Literal["dynamic", "static"] = "dynamic"
    condition: Condition | None = None
    profile_ids: list[int] = Field(default_factory=list, max_length=10_000)

    @model_validator(mode="after")
    def picked_only_for_static(self) -> SegmentCreate:
        if self.profile_ids and self.kind != "static":
            raise ValueError("hand-picked customers (profile_ids) make a static segment")
        if self.condition is None and self.kind == "dynamic":
            raise ValueError("a dynamic segment needs a condition")
        return self


class SegmentUpdate(_Shape):
    """What may change on a saved segment: its name, its description and, for a dynamic one, its condition
    (members follow at the refresh this starts)."""

    name: str = omissible(min_length=1, max_length=100)
    description: str = omissible(max_length=500)
    condition: Condition = omissible()


class ListRejection(BaseModel):
    row: int = Field(description="the row number as a spreadsheet shows it (the header is row 1)")
    value: str
    code: str = Field(description="not_found | repeated | phone_invalid | email_invalid | …")
    reason: str = Field(description="the reason, in the uploader's language")


class ListUploadOut(BaseModel):
    """What became of each row: added, already a member, or rejected with its reason."""

    model_config = ConfigDict(from_attributes=True)
    rows: int
    added: int
    already: int
    column: str = Field(description="the column the values were read from")
    rejected: list[ListRejection]


class SegmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    description: str
    kind: str
    condition: dict[str, Any] | None
    status: str
    error: str | None
    member_count: int
    refreshes: int
    refreshed_at: datetime | None
    unit_id: int
    owner_id: int | None
    created_at: datetime


class SegmentBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    kind: str
    added_at: datetime


class SegmentChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    profile_id: int
    change: str
    refresh: int
    at: datetime


class SegmentExportRequest(_Shape):
    format: Literal["csv", "xlsx"] = "csv"


class TagGroupCreate(_Shape):
    name: str = Field(min_length=1, max_length=60)


class TagGroupOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str


class TagCreate(_Shape):
    """A tag; with ``segment_id`` it is a rule tag, on exactly that segment's members."""

    name: str = Field(min_length=1, max_length=60)
    group_id: int | None = None
    colour: Literal["primary", "secondary", "positive", "negative", "warning", "info", "teal", "purple", "orange",
                    "grey"] = "primary"
    segment_id: int | None = None


class TagOut(BaseModel):
    id: int
    name: str
    group_id: int | None
    colour: str
    segment_id: int | None
    customers: int = Field(description="How many of your customers carry it")


class CustomerSelection(_Shape):
    """Hand-picked customers (a selection in a list), to tag or to put in a static segment."""

    profile_ids: list[int] = Field(min_length=1, max_length=10_000)


class CustomerTagOut(BaseModel):
    id: int
    name: str
    colour: str
    origin: str = Field(description="manual | rule | journey")
    added_at: datetime


class RfmModelIn(_Shape):
    """Four ascending bounds each: days since the last order (within the first scores 5), order counts and
    totals in CNY (at least the last scores 5); which order statuses count."""

    recency_days: list[int] | None = Field(default=None, min_length=4, max_length=4)
    frequency: list[int] | None = Field(default=None, min_length=4, max_length=4)
    monetary: list[float] | None = Field(default=None, min_length=4, max_length=4)
    statuses: list[Literal["placed", "paid", "delivered", "cancelled", "refunded"]] | None = None


class RfmModelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    recency_days: list[int]
    frequency: list[int]
    monetary: list[float]
    statuses: list[str]
    status: str
    computed_at: datetime | None


class RfmDistributionOut(BaseModel):
    classes: dict[str, int] = Field(description="customers per class (important_value, …)")
    scores: dict[str, dict[str, int]] = Field(description="customers per score 1–5 of r, f and m")
