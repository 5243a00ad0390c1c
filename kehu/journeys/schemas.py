"""What the journeys API takes and gives: a journey's definition (trigger, entry rules, nodes and the edges between
them), its life cycle, enrolments and per-node counts.

Over 600 lines: one model per node kind and trigger, each with its own checks; they form one discriminated union
and read best side by side. The results' and templates' models are what to move out next."""

from __future__ import annotations

from datetime import date as _date
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kehu.channels.schemas import Rendered
from kehu.core.schemas import Input, omissible
from kehu.segments.schemas import Condition

# short enough for a message's send key ("j:<enrolment>:<node>", 60 characters at most)
NodeId = Annotated[str, Field(min_length=1, max_length=30, pattern=r"^[A-Za-z0-9_-]+$")]
ELSE = "else"  # the branch of a split that takes everyone no other branch took
HAPPENED, TIMED_OUT = "happened", "timed_out"  # the two ways on from a wait for an event


class _In(Input):
    pass


class Position(_In):
    """Where the node sits on the canvas (kept as drawn, meaningless to the engine)."""

    x: float = Field(ge=-100_000, le=100_000)
    y: float = Field(ge=-100_000, le=100_000)


class _Node(_In):
    id: NodeId
    label: str = Field(default="", max_length=100)
    position: Position | None = None


class EntryNode(_Node):
    """Where every customer enters: one per journey."""

    type: Literal["entry"]


class _Timed(_Node):
    """A duration: days, hours and minutes add up."""

    days: int = Field(default=0, ge=0, le=3650)
    hours: int = Field(default=0, ge=0, le=10_000)
    minutes: int = Field(default=0, ge=0, le=100_000)

    @model_validator(mode="after")
    def _some_time(self) -> _Timed:
        if self.days == 0 and self.hours == 0 and self.minutes == 0:
            raise ValueError("a wait needs a duration: days, hours or minutes")
        return self

    @property
    def seconds(self) -> int:
        return ((self.days * 24 + self.hours) * 60 + self.minutes) * 60


class WaitNode(_Timed):
    """Wait this long before going on."""

    type: Literal["wait"]


class WaitForEventNode(_Timed):
    """Wait for an event of this name (with these property values) to arrive for the customer, at most this long:
    the customer goes on the ``happened`` way as soon as it arrives, the ``timed_out`` way when the time is up.
    Only events received after the customer arrived here count."""

    type: Literal["wait_for_event"]
    event: str | None = Field(default=None, min_length=1, max_length=100)  # a draft may leave it to name
    properties: dict[str, str | int | float | bool] = Field(default_factory=dict, max_length=10)


class WaitUntilNode(_Node):
    """Wait until a time of day in the organisation's time zone: the next such moment on one of ``weekdays`` (ISO:
    1 Monday … 7 Sunday; none: any day), or on ``date`` (once: a customer arriving after it goes on at once). A
    customer arriving at that very minute goes on at once; a time a clock change skips is taken as the moment
    after the change."""

    type: Literal["wait_until"]
    time: str = Field(default="10:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] = Field(default_factory=list, max_length=7)
    date: _date | None = None
    # or a date on the customer's profile ("birthday", "attributes.<key>" of a date field), ``offset_days`` before
    # (negative) or after it, each year (``yearly``: its next anniversary) or once; without that date: at once
    field: str | None = Field(default=None, min_length=1, max_length=80)
    offset_days: int = Field(default=0, ge=-365, le=365)
    yearly: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> WaitUntilNode:
        if self.date is not None and self.weekdays:
            raise ValueError("a wait until a date names no weekdays")
        if self.field is not None and (self.date is not None or self.weekdays):
            raise ValueError("a wait until a profile's date names no date nor weekdays")
        if self.field is None and (self.offset_days or self.yearly):
            raise ValueError("offset_days and yearly go with a profile's date field")
        return self


class SendNode(_Node):
    """Send a template's message (its channel and purpose; communication control applies)."""

    type: Literal["send"]
    template_id: int | None = Field(default=None, ge=1)  # a draft may leave it to choose; publishing may not


class TagNode(_Node):
    """Put a tag on the customers (or take it off, ``remove``): one of the tags people put on by hand, not one a
    rule keeps."""

    type: Literal["tag"]
    tag_id: int | None = Field(default=None, ge=1)  # a draft may leave it to choose; publishing may not
    remove: bool = False


class FieldNode(_Node):
    """Set a field of the customers' profiles to one value (or clear it, ``value`` null): their life-cycle stage or
    one of the organisation's custom fields that holds no personal data — e.g. ``attributes.campaign`` to the
    campaign they answered, ``attributes.vip`` to true."""

    type: Literal["field"]
    field: str | None = Field(default=None, min_length=1, max_length=80)  # a draft may leave it to choose
    value: str | int | float | bool | list[str] | None = None


class SegmentNode(_Node):
    """Add the customers to a static segment (or take them out, ``remove``): a list kept by hand that other
    journeys, broadcasts and exports use; recorded as the segment's entries and leavings, as a change by hand is."""

    type: Literal["segment"]
    segment_id: int | None = Field(default=None, ge=1)  # a draft may leave it to choose; publishing may not
    remove: bool = False


class LeadNode(_Node):
    """Record an inquiry for each customer: a new lead routed as every lead is (the routing rules), or, for a
    customer with an open lead already, that lead asked again (one open lead per person). The lead's source is
    ``journey`` and its note names the journey."""

    type: Literal["lead"]
    model: str | None = Field(default=None, max_length=100)  # the model the customer is interested in, if known
    note: str = Field(default="", max_length=500)


class TaskNode(_Node):
    """A follow-up task for the customer's salesperson (the customer's owner, else the owner of their open lead
    at one of the journey's units; nobody yet when neither: then the task waits at the customer's dealer), due
    ``due_days`` after the customer reaches the node."""

    type: Literal["task"]
    kind: Literal["task", "call", "visit", "wechat", "sms", "email"] = "call"
    subject: str = Field(default="", max_length=200)  # a draft may leave it to write; publishing may not
    note: str = Field(default="", max_length=2000)
    due_days: int = Field(default=1, ge=0, le=365)


class Branch(_In):
    name: NodeId
    label: str = Field(default="", max_length=50)  # as the canvas shows it (the name if empty)
    condition: Condition | None = None  # a draft may leave it to write; publishing may not


class SplitNode(_Node):
    """Each customer takes the first branch whose condition they meet at that moment (the segment language), or
    ``else``: every customer exactly one way."""

    type: Literal["split"]
    branches: list[Branch] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _names_differ(self) -> SplitNode:
        names = [branch.name for branch in self.branches]
        if len(set(names)) != len(names) or ELSE in names:
            raise ValueError(f"branch names must differ from each other and from {ELSE!r}")
        return self


class Group(_In):
    name: NodeId
    label: str = Field(default="", max_length=50)  # as the canvas shows it (the name if empty)
    percent: int = Field(ge=0, le=100)
    control: bool = False  # the hold-out group: usually sent nothing, the others' results are compared with it


class RandomSplitNode(_Node):
    """Customers shared out at random in these proportions (an A/B/n test; one group may be the hold-out control
    group). Each customer's draw is fixed by their enrolment: a step done again sends nobody another way."""

    type: Literal["random_split"]
    groups: list[Group] = Field(min_length=2, max_length=10)

    @model_validator(mode="after")
    def _names_differ(self) -> RandomSplitNode:
        names = [group.name for group in self.groups]
        if len(set(names)) != len(names):
            raise ValueError("group names must differ from each other")
        if sum(group.control for group in self.groups) > 1:
            raise ValueError("one control group at most")
        return self


class ExitNode(_Node):
    """The end of a path: the customer leaves the journey (and may enter again as its entry rules allow)."""

    type: Literal["exit"]


Node = Annotated[EntryNode | WaitNode | WaitUntilNode | WaitForEventNode | SendNode | TagNode | FieldNode
                 | SegmentNode | LeadNode | TaskNode | SplitNode | RandomSplitNode | ExitNode,
                 Field(discriminator="type")]
NODE_TYPES = ("entry", "wait", "wait_until", "wait_for_event", "send", "tag", "field", "segment", "lead", "task",
              "split", "random_split", "exit")


def ways_of(node: Any) -> list[str | None]:
    """The ways on from a node: a split's branches and ``else``, a wait for an event's two, none from an exit, one
    (unnamed) from the others."""
    if node.type == "split":
        return [*(branch.name for branch in node.branches), ELSE]
    if node.type == "wait_for_event":
        return [HAPPENED, TIMED_OUT]
    if node.type == "random_split":
        return [group.name for group in node.groups]
    return [] if node.type == "exit" else [None]


class Edge(_In):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    source: NodeId = Field(alias="from")
    target: NodeId = Field(alias="to")
    branch: NodeId | None = None  # a split's branch name or "else"; a wait for an event's "happened" or "timed_out"


SEGMENT_TRIGGERS = ("segment_entered", "segment_left", "schedule")  # triggers that name a segment
TIMED_TRIGGERS = ("schedule", "date")  # triggers the clock sets off


class Trigger(_In):
    """Who enters: customers who enter (or leave) a segment, as it happens; customers an event of this name (and
    these property values) arrives for, within seconds; a segment's members at a ``time`` of day in the
    organisation's time zone (``schedule``: on ``date`` once, or on ``weekdays`` — none: every day); each day at
    ``time``, the customers whose profile date ``field`` (``birthday``, ``attributes.<key>`` of a date field),
    ``offset_days`` later (negative: earlier), is that day — each year (``yearly``) or on the date itself
    (``date``); or only those enrolled by hand or through the API."""

    type: Literal["segment_entered", "segment_left", "event", "schedule", "date", "manual"]
    segment_id: int | None = Field(default=None, ge=1)
    event: str | None = Field(default=None, min_length=1, max_length=100)
    properties: dict[str, str | int | float | bool] = Field(default_factory=dict, max_length=10)
    # a timed trigger's (None elsewhere, so that other triggers are stored as they were)
    time: str | None = Field(default=None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] | None = Field(default=None, max_length=7)
    date: _date | None = None
    field: str | None = Field(default=None, min_length=1, max_length=80)
    offset_days: int | None = Field(default=None, ge=-365, le=365)
    yearly: bool | None = None  # a date trigger's: each year (the default) or on the date itself

    @model_validator(mode="after")
    def _complete(self) -> Trigger:
        kind = self.type
        if kind in SEGMENT_TRIGGERS and self.segment_id is None:
            raise ValueError(f"a {kind} trigger names its segment_id")
        if kind == "event" and not self.event:
            raise ValueError("an event trigger names its event")
        if kind == "date" and not self.field:
            raise ValueError("a date trigger names the profile's date field")
        if kind not in SEGMENT_TRIGGERS and self.segment_id is not None:
            raise ValueError(f"a {kind} trigger names no segment_id")
        if kind != "event" and (self.event or self.properties):
            raise ValueError(f"a {kind} trigger names no event nor properties")
        if kind not in TIMED_TRIGGERS and (self.time or self.weekdays or self.date):
            raise ValueError(f"a {kind} trigger names no time, weekdays nor date")
        if kind != "date" and (self.field or self.offset_days):
            raise ValueError(f"a {kind} trigger names no profile date field nor offset")
        if kind == "schedule" and self.date is not None and self.weekdays:
            raise ValueError("a schedule runs once on a date or on weekdays, not both")
        if kind == "date" and (self.date is not None or self.weekdays):
            raise ValueError("a date trigger runs every day: it names no date nor weekdays")
        if kind != "date" and self.yearly is not None:
            raise ValueError(f"a {kind} trigger is not yearly")
        if kind in TIMED_TRIGGERS and self.time is None:
            self.time = "10:00"
        if kind == "date":
            self.offset_days = self.offset_days or 0
            self.yearly = True if self.yearly is None else self.yearly
        return self


class Goal(_In):
    """What the journey is for: a customer converts when an event of this name (and these property values) happens
    for them within ``within_days`` of entering — e.g. ``order_completed`` within 30 days."""

    event: str = Field(min_length=1, max_length=100)
    within_days: int = Field(default=30, ge=1, le=365)
    properties: dict[str, str | int | float | bool] = Field(default_factory=dict, max_length=10)


class Definition(_In):
    """A journey as drawn: trigger, entry rules, goal, nodes and edges. ``re_entry``: ``never`` (once per
    customer, ever) or ``after_exit`` (again once their last walk ended, and at least ``reentry_days`` after they
    last entered)."""

    trigger: Trigger = Field(default_factory=lambda: Trigger(type="manual"))
    goal: Goal | None = None
    # exit criteria, wherever the customer is in the journey: reaching the goal; leaving this segment
    exit_on_goal: bool = False
    exit_segment_id: int | None = Field(default=None, ge=1)
    re_entry: Literal["never", "after_exit"] = "never"
    reentry_days: int = Field(default=0, ge=0, le=3650)
    nodes: list[Node] = Field(default_factory=list, max_length=200)
    edges: list[Edge] = Field(default_factory=list, max_length=400)
    # a template for dealers: what the dealers' journeys made of it may change — "trigger" (their own audience)
    # and the ids of nodes whose settings they choose; everything else is locked (kehu/journeys/templates.py)
    open: list[str] = Field(default_factory=list, max_length=201)

    @model_validator(mode="after")
    def _open_parts_exist(self) -> Definition:
        known = {node.id for node in self.nodes} | {"trigger"}
        unknown = [part for part in self.open if part not in known]
        if unknown:
            raise ValueError(f"open names no part of the journey: {', '.join(unknown[:5])}")
        self.open = sorted(set(self.open))
        return self


class JourneyCreate(_In):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=1000)
    unit_id: int | None = Field(default=None, ge=1)
    definition: Definition | None = None
    template: bool = False  # a template for the dealers below (kehu/journeys/templates.py), not a journey that runs


class InstanceCreate(_In):
    """A dealer's journey made of a template offered to its unit (``unit_id``: the dealer's, the caller's own unit
    unless named)."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=1000)
    unit_id: int | None = Field(default=None, ge=1)


class JourneyUpdate(_In):
    name: str = omissible(min_length=1, max_length=200)
    description: str = omissible(max_length=1000)
    definition: Definition = omissible()


class JourneyImport(_In):
    """A journey as exported (``GET /journeys/{id}/export``), to make a new draft of: a copy, a backup restored, a
    journey moved between environments. ``unit_id``: where the draft goes (the importer's unit if not said)."""

    format: Literal["kehu.journey"]
    format_version: Literal[1]
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=1000)
    definition: Definition
    exported_at: datetime | None = None
    unit_id: int | None = Field(default=None, ge=1)


class Publish(_In):
    """``move_people``: customers already inside a live journey move to the node of the same id in the new version
    (those whose node is gone stay on the version they are on); otherwise everyone finishes on their version."""

    move_people: bool = False


class TestRun(_In):
    """Walk one customer through the journey as drawn (the draft), on a simulated clock from ``start_at`` (now if
    not said), writing nothing: ``happened`` names the waits for an event where the event is taken to come at once
    (the others time out)."""

    profile_id: int = Field(ge=1)
    start_at: datetime | None = None
    happened: list[NodeId] = Field(default_factory=list, max_length=50)


class TestStep(BaseModel):
    """One node of a test run: when the customer would reach it (UTC), which way they would go on, what it would
    do (in words) and, for a send, the message as they would receive it (personal data masked as for the reader)."""

    node: str
    type: str
    label: str
    at: datetime
    way: str | None = None
    does: str = ""
    message: Rendered | None = None
    problem: str | None = None  # what stops the walk here (an unconnected way, a template that cannot render)


class TestRunOut(BaseModel):
    profile_id: int
    enters: bool  # a customer of the journey's units: one outside them would never enter
    steps: list[TestStep]
    ends: Literal["completed", "stopped", "too_long"]


class CalendarItem(BaseModel):
    """A journey on the campaign calendar: ``running`` over the range (since ``at``), or a moment within it —
    ``started``, ``stopped``, a timed trigger's ``run`` (a schedule's or a date trigger's, from now on), or a draft's
    ``planned`` run (a schedule on a date, not yet live)."""

    journey_id: int
    name: str
    status: str
    unit_id: int
    kind: Literal["running", "started", "stopped", "run", "planned"]
    at: datetime


class EnrolRequest(_In):
    profile_ids: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list, max_length=1000)
    segment_id: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _someone(self) -> EnrolRequest:
        if not self.profile_ids and self.segment_id is None:
            raise ValueError("name profile_ids or a segment_id")
        return self


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class JourneyOut(Out):
    id: int
    unit_id: int
    owner_id: int | None
    name: str
    description: str
    status: str
    version: int
    definition: dict[str, Any]
    started_at: datetime | None
    stopped_at: datetime | None
    created_at: datetime
    updated_at: datetime
    review_status: Literal["submitted", "rejected"] | None = None  # approval, where a unit above asks for it
    review_comment: str = ""
    submitted_at: datetime | None = None
    is_template: bool = False
    template_id: int | None = None  # the template this dealer's journey was made of, at ``template_version``
    template_version: int | None = None


class OfferedTemplate(BaseModel):
    """A template offered to a unit: HQ's (or a region's) journey that the unit may make its own."""

    id: int
    name: str
    description: str
    unit_id: int
    unit: str
    version: int
    open: list[str]
    instances: int  # journeys already made of it, of the reader's scope


class InstanceResult(BaseModel):
    """One dealer's journey made of a template, beside the others: its customers and their conversion to the
    template's goal."""

    journey_id: int
    name: str
    unit_id: int
    unit: str
    status: str
    version: int
    template_version: int
    entered: int
    active: int
    completed: int
    converted: int
    rate: float


class TemplateResults(BaseModel):
    goal: Goal | None
    version: int
    entered: int
    converted: int
    rate: float
    instances: list[InstanceResult]


class Review(_In):
    """A reviewer's answer to a submitted journey: approve (the version goes live) or reject, saying why."""

    approve: bool
    comment: str = Field(default="", max_length=500)


class ProblemOut(BaseModel):
    """One thing that keeps a draft from going live, at its place in the definition."""

    field: str
    message: str
    code: str


class Enrolled(BaseModel):
    enrolled: int


class EnrolmentOut(Out):
    id: int
    journey_id: int
    version: int
    profile_id: int
    node: str
    state: str
    due_at: datetime | None  # none to a reader without personal data at a wait until their birthday: it would tell it
    entered_at: datetime
    left_at: datetime | None
    exit_reason: str | None


class NodeCount(BaseModel):
    """A node's customers: ``waiting`` there now, ``passed`` through it (a split: by branch)."""

    node: str
    waiting: int = 0
    passed: int = 0
    branches: dict[str, int] = Field(default_factory=dict)


class JourneyReport(BaseModel):
    entered: int
    active: int
    completed: int
    exited: int
    nodes: list[NodeCount]


class GroupResult(BaseModel):
    """One way of a random split: its customers, how many converted, and — against the control group, or the
    best group against the others when there is none — the difference in conversion with its 95 % confidence
    interval and a two-sided p-value (two-proportion z-test)."""

    group: str
    label: str
    control: bool
    customers: int
    converted: int
    rate: float
    uplift: float | None = None  # this group's rate minus the one compared with
    uplift_low: float | None = None
    uplift_high: float | None = None
    p_value: float | None = None
    significant: bool = False


class SplitResult(BaseModel):
    node: str
    label: str
    compared_with: str | None  # the control group's name, or None (each group against the rest)
    winner: str | None  # a group whose conversion beats the compared one at p < 0.05
    groups: list[GroupResult]


class WayResult(BaseModel):
    way: str
    label: str
    customers: int
    converted: int
    rate: float


class PathResult(BaseModel):
    """Conversion along each way of a condition split or a wait for an event. Observed, not randomised: customers
    choose their way by who they are or what they do, so a difference says where conversions come from, not what
    caused them (a random split's groups say that)."""

    node: str
    label: str
    type: str
    ways: list[WayResult]


class UnitResult(BaseModel):
    """One dealer's (unit's) customers in the journey and their conversion: HQ compares its dealers."""

    unit_id: int
    unit: str
    entered: int
    converted: int
    rate: float


class JourneyResults(BaseModel):
    """The journey's conversion to its goal (of the customers in the reader's scope), each random split's, and each
    path's."""

    goal: Goal | None
    entered: int
    converted: int
    rate: float
    splits: list[SplitResult]
    paths: list[PathResult] = Field(default_factory=list)
    units: list[UnitResult] = Field(default_factory=list)  # per unit the customers belonged to when they entered


class JourneyExport(BaseModel):
    """A journey's draft as a file: what ``POST /journeys/import`` takes back."""

    format: Literal["kehu.journey"] = "kehu.journey"
    format_version: Literal[1] = 1
    name: str
    description: str
    definition: dict[str, Any]
    exported_at: datetime
