"""Compile a condition (``schemas.Condition``) into one SQL filter over profiles, for SQLite and PostgreSQL.

Questions about other tables become sets of profile ids (``profile_id IN (SELECT …)``) that the database
answers with its indexes: events by (org_id, event, ts), identities by (org_id, kind, value), orders and
consent by profile. A count or sum bound is turned into membership of "at least N" sets, so "fewer than 2
test drives" includes the people with none, as a marketer means it. Every mistake is reported with the path
of the offending node in the JSON (``condition.conditions.1.value``), all of them at once.

Over 600 lines on purpose: one compiler of one language (segments, journeys' splits, scoring), whose node handlers
share its checks and belong together; what is not the compiler lives beside it (schemas, the builder's texts)."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, false, func, not_, or_, select, true, type_coerce, union
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from kehu.cdp.fields import definitions
from kehu.cdp.models import (
    HAPPENING,
    Account,
    AccountMember,
    ConsentRecord,
    CustomField,
    Event,
    Identity,
    Order,
    OrderLine,
    Profile,
)
from kehu.cdp.views import PersonalData
from kehu.core import events
from kehu.core.db import utcnow
from kehu.core.errors import FieldError, Forbidden, ValidationFailed
from kehu.segments import schemas
from kehu.segments.models import ProfileTag, Segment, SegmentMember, Tag
from kehu.tenancy.access import Principal, Ref, check_references, is_root_path, units_under
from kehu.tenancy.models import BusinessUnit

# Standard fields and their kinds; custom fields are ``attributes.<key>`` with the kind of their definition.
STANDARD_FIELDS: dict[str, str] = {
    "name": "text", "gender": "option", "birthday": "date", "mobile": "text", "email": "text",
    "province": "text", "city": "text", "postcode": "text", "source": "text", "lifecycle_stage": "option",
    "first_seen_at": "datetime", "last_seen_at": "datetime", "created_at": "datetime",
}
OPTIONS = {"gender": ("male", "female", "other"),
           "lifecycle_stage": ("visitor", "prospect", "lead", "opportunity", "customer", "owner", "churned")}
# Which operators each kind of field answers.
OPERATORS: dict[str, set[str]] = {
    "text": {"eq", "ne", "in", "not_in", "contains", "starts_with", "is_set", "is_not_set"},
    "option": {"eq", "ne", "in", "not_in", "is_set", "is_not_set"},
    "multi_option": {"contains", "is_set", "is_not_set"},
    "number": {"eq", "ne", "gt", "gte", "lt", "lte", "between", "is_set", "is_not_set"},
    "boolean": {"is_true", "is_false", "is_set", "is_not_set"},
    "date": {"eq", "before", "after", "between", "within_last_days", "more_than_days_ago", "is_set",
             "is_not_set"},
    "datetime": {"before", "after", "between", "within_last_days", "more_than_days_ago", "is_set",
                 "is_not_set"},
}
# What a condition may ask of personal data (a masked field) without pii.read: whether it is there, which the
# reader sees anyway. Any value test (equals, contains, starts with, before, between…) answers yes or no about
# the hidden value, and a count or a sample of who matches narrows it to one person: 72 previews rebuild a
# masked mobile digit by digit. So such a condition is refused (403, naming the field), whatever is asked of it.
PRESENCE_OPERATORS = frozenset({"is_set", "is_not_set"})
PII_REFUSED = "pii_read_required"
MAX_IN_VALUES = 1000
NUMBER_ONLY = {"gt", "gte", "lt", "lte", "between"}
RELATIVE_OPERATORS = frozenset({"within_last_days", "more_than_days_ago"})  # their answer turns as time passes
ATTRIBUTE_KEY = re.compile(r"[\w\-]{1,60}")  # letters (also Chinese), digits, _ and -: safe in a JSON path


@dataclass
class Compiler:
    session: Session
    org_id: int
    zone: ZoneInfo
    now: datetime
    dialect: str
    custom: dict[str, CustomField]
    reads_pii: bool  # may the condition test the values of personal data (pii.read, or the platform itself)
    within: frozenset[int] = frozenset()  # the segment(s) this condition defines: referring to one is a cycle
    errors: list[FieldError] = field(default_factory=list)
    reader: Principal | None = None
    # the units whose happenings (a lead's status, a deal won: kehu/cdp/happenings.py) the condition may see; None:
    # every unit's. A dealer's customer's deal at another dealer is that dealer's business, not a fact to segment on.
    happening_units: frozenset[int] | None = None
    # Following time (``since``, the moment up to which it was followed): the customers for whom a part that counts
    # days back from now may have turned between ``since`` and ``now``, as SELECTs of profile ids (``crossings``).
    since: datetime | None = None
    crossings: list[Any] = field(default_factory=list)

    @cached_property
    def personal(self) -> PersonalData:
        return PersonalData(self.custom)

    # -- entry ------------------------------------------------------------------------------------------
    def compile(self, node: Any, path: str) -> ColumnElement[bool]:
        handler = getattr(self, f"_{node.type}")
        try:
            return handler(node, path)
        except OverflowError:  # a day at the calendar's edge: 9999-12-31 has no next day, 0001-01-01 no UTC start
            return self.fail(path, "a date or number out of range (dates from 0001-01-02 to 9999-12-30)",
                             "out_of_range")

    def fail(self, path: str, message: str, code: str = "invalid") -> ColumnElement[bool]:
        self.errors.append(FieldError(path, message, code))
        return false()

    def reference(self, path: str, model: Any, row_id: int, code: str, privilege: str | None = None) -> Any:
        """The row a rule names, checked as every foreign id of a write is (check_references): another
        organisation's or a missing one is this language's ``code`` (unknown_unit …), one beyond the reader's
        ``privilege`` out_of_scope. The platform (no reader) checks the organisation only."""
        asker = self.reader or Principal.system(self.org_id)
        try:
            return check_references(self.session, asker, {path: Ref(model, row_id, privilege)})[path]
        except ValidationFailed as error:
            self.errors += [FieldError(e.field, e.message, code if e.code == "unknown" else e.code)
                            for e in error.errors]
            return None

    def crossing(self, who: Any, column: Any, days: int, *, as_date: bool = False,
                 stored_as_text: bool = False) -> None:
        """Those of ``who`` (a SELECT of profile ids) whose ``column`` lies where "``days`` days back" moved to since
        the time was last followed: their part's answer may have turned, nobody else's did."""
        if self.since is None or self.since >= self.now:
            return
        if as_date:  # a day field turns at midnight in the organisation's zone, not every minute
            low: Any = self.since.astimezone(self.zone).date() - timedelta(days=days)
            high: Any = self.now.astimezone(self.zone).date() - timedelta(days=days)
            if low == high:
                return
            low, high = (low.isoformat(), high.isoformat()) if stored_as_text else (low, high)
        else:
            low, high = self.since - timedelta(days=days), self.now - timedelta(days=days)
        self.crossings.append(who.where(column >= low, column < high))

    def refuse_personal(self, path: str, name: str) -> ColumnElement[bool]:
        return self.fail(path, f"{name} is personal data: without pii.read a condition may only ask whether it "
                               "is set (is_set, is_not_set)", PII_REFUSED)

    # -- groups -----------------------------------------------------------------------------------------
    def _all(self, node: schemas.AllOf, path: str) -> ColumnElement[bool]:
        return and_(*(self.compile(c, f"{path}.conditions.{i}") for i, c in enumerate(node.conditions)))

    def _any(self, node: schemas.AnyOf, path: str) -> ColumnElement[bool]:
        return or_(*(self.compile(c, f"{path}.conditions.{i}") for i, c in enumerate(node.conditions)))

    def _not(self, node: schemas.Not, path: str) -> ColumnElement[bool]:
        # SQL's "unknown" (a comparison with an empty field) would stay unknown under NOT and drop the row;
        # a marketer's "not in Shanghai" includes the customers whose city nobody knows.
        return not_(func.coalesce(self.compile(node.condition, f"{path}.condition"), false()))

    # -- fields -----------------------------------------------------------------------------------------
    def _field(self, node: schemas.FieldRule, path: str) -> ColumnElement[bool]:
        name = node.field
        if name in STANDARD_FIELDS:
            kind, column = STANDARD_FIELDS[name], getattr(Profile, name)
            options = OPTIONS.get(name)
        elif name.startswith("attributes.") and name[11:] in self.custom:
            definition = self.custom[name[11:]]
            kind, options = definition.type, tuple(o["value"] for o in definition.options or ()) or None
            column = self._attribute(name[11:], kind)
        elif name.startswith("attributes.") and ATTRIBUTE_KEY.fullmatch(name[11:]):
            # A trait nobody declared (sent by a source as it is): compared as text, or as a number when the
            # operator can only mean a number.
            kind = "number" if node.op in NUMBER_ONLY else "text"
            options, column = None, self._attribute(name[11:], kind)
        else:
            known = ", ".join([*STANDARD_FIELDS, *(f"attributes.{k}" for k in self.custom)])
            return self.fail(f"{path}.field", f"no field {name!r}; fields are {known}, or attributes.<trait>",
                             "unknown_field")
        if node.op not in OPERATORS[kind]:
            return self.fail(f"{path}.op", f"{node.op} does not apply to {name} ({kind}); use one of "
                                           f"{', '.join(sorted(OPERATORS[kind]))}", "wrong_operator")
        if node.op not in operators_for(kind, personal=self.personal.of_field(name) is not None,
                                        reads_pii=self.reads_pii):
            return self.refuse_personal(f"{path}.field", name)
        if node.op == "is_set":
            return column.is_not(None) if kind not in ("text", "option") else and_(column.is_not(None), column != "")
        if node.op == "is_not_set":
            return column.is_(None) if kind not in ("text", "option") else or_(column.is_(None), column == "")
        if kind == "boolean":
            return column.is_(True) if node.op == "is_true" else column.is_(False)
        value_path = f"{path}.value"
        if kind in ("date", "datetime"):
            return self._when(column, node.op, node.value, value_path, as_date=kind == "date",
                              stored_as_text=name.startswith("attributes."))
        if kind == "number":
            return self._number(column, node.op, node.value, value_path)
        if kind == "multi_option":
            return self._has_option(name[11:], self._text(node.value, value_path, options))
        if node.op in ("in", "not_in"):
            values = node.value if isinstance(node.value, list) else None
            if not values or len(values) > MAX_IN_VALUES:
                return self.fail(value_path, f"a list of 1 to {MAX_IN_VALUES} values", "not_list")
            texts = [self._text(v, f"{value_path}.{i}", options) for i, v in enumerate(values)]
            clause = column.in_(texts)
            return clause if node.op == "in" else or_(column.is_(None), not_(clause))
        text = self._text(node.value, value_path, options)
        if node.op == "eq":
            return column == text
        if node.op == "ne":
            return or_(column.is_(None), column != text)
        if node.op == "contains":
            return column.contains(text, autoescape=True)
        return column.startswith(text, autoescape=True)  # starts_with

    def _attribute(self, key: str, kind: str) -> Any:
        value = Profile.attributes[key]
        if kind == "number":
            return value.as_float()
        if kind == "boolean":
            return value.as_boolean()
        return value.as_string()

    def _has_option(self, key: str, option: str) -> ColumnElement[bool]:
        """A multi-option custom field (a JSON list) holds ``option``."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return type_coerce(Profile.attributes, JSONB).contains({key: [option]})  # attributes @> {key: [x]}
        each = func.json_each(Profile.attributes, f'$."{key}"').table_valued("value")
        return select(each.c.value).where(each.c.value == option).exists()

    def _text(self, value: Any, path: str, options: tuple[str, ...] | None = None) -> str:
        if not isinstance(value, str | int | float) or isinstance(value, bool) or str(value) == "":
            self.fail(path, "a text value", "not_text")
            return ""
        text = str(value)
        if options and text not in options:
            self.fail(path, f"{text!r} is not one of {', '.join(options)}", "not_option")
        return text

    def _decimal(self, value: Any, path: str) -> Decimal | None:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.fail(path, "a number", "not_number")
            return None
        try:
            return Decimal(str(value))
        except InvalidOperation:
            self.fail(path, "a number", "not_number")
            return None

    def _number(self, column: Any, op: str, value: Any, path: str) -> ColumnElement[bool]:
        if op == "between":
            low, high = self._pair(value, path, self._decimal)
            return false() if low is None or high is None else column.between(float(low), float(high))
        number = self._decimal(value, path)
        if number is None:
            return false()
        return _compare(column, op, float(number))

    def _pair(self, value: Any, path: str, read: Any) -> tuple[Any, Any]:
        if not isinstance(value, list) or len(value) != 2:
            self.fail(path, "two values: [from, to]", "not_pair")
            return None, None
        return read(value[0], f"{path}.0"), read(value[1], f"{path}.1")

    # -- time -------------------------------------------------------------------------------------------
    def _moment(self, value: Any, path: str) -> datetime | None:
        """An ISO date (its start in the organisation's zone) or date-time (without a zone: in that zone)."""
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime.combine(value, time())
        elif isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                self.fail(path, f"{value!r} is not an ISO date such as 2026-03-01", "not_date")
                return None
        else:
            self.fail(path, "an ISO date such as 2026-03-01", "not_date")
            return None
        return (moment if moment.tzinfo else moment.replace(tzinfo=self.zone)).astimezone(ZoneInfo("UTC"))

    def _days(self, value: Any, path: str) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 36500:
            self.fail(path, "a whole number of days (0 to 36500)", "not_days")
            return None
        return value

    def _when(self, column: Any, op: str, value: Any, path: str, *, as_date: bool,
              stored_as_text: bool = False) -> ColumnElement[bool]:
        """Date comparisons. Day values of a date field compare as days; of a date-time field, a day means
        from its first moment in the organisation's zone to its last (so ``before`` 3 March excludes it)."""
        if op in ("within_last_days", "more_than_days_ago"):
            days = self._days(value, path)
            if days is None:
                return false()
            self.crossing(select(Profile.id).where(Profile.org_id == self.org_id), column, days, as_date=as_date,
                          stored_as_text=stored_as_text)
            if as_date:
                bound: Any = (self.now.astimezone(self.zone).date() - timedelta(days=days))
                bound = bound.isoformat() if stored_as_text else bound
                return column >= bound if op == "within_last_days" else column < bound
            moment = self.now - timedelta(days=days)
            return column >= moment if op == "within_last_days" else column < moment
        if op == "between":
            low, high = self._pair(value, path, lambda v, p: self._day_range(v, p, as_date, stored_as_text))
            return false() if low is None or high is None else and_(column >= low[0], column < high[1])
        bounds = self._day_range(value, path, as_date, stored_as_text)
        if bounds is None:
            return false()
        start, end = bounds
        if op == "before":
            return column < start
        if op == "after":
            return column >= end
        return and_(column >= start, column < end)  # eq: that day

    def _day_range(self, value: Any, path: str, as_date: bool, stored_as_text: bool) -> tuple[Any, Any] | None:
        """[start, end) of the day (or the exact moment of a date-time value) ``value`` names."""
        if as_date:
            try:
                day = date.fromisoformat(str(value)[:10]) if isinstance(value, str | date) else None
            except ValueError:
                day = None
            if day is None:
                self.fail(path, "an ISO date such as 2026-03-01", "not_date")
                return None
            end = day + timedelta(days=1)
            return (day.isoformat(), end.isoformat()) if stored_as_text else (day, end)
        exact = (isinstance(value, str) and len(value) > 10) or isinstance(value, datetime)
        start = self._moment(value, path)
        if start is None:
            return None
        if exact:
            return start, start
        return start, self._moment((datetime.fromisoformat(str(value)[:10]) + timedelta(days=1)).date().isoformat(),
                                   path)

    def _window(self, column: Any, window: schemas.Window | None, path: str, who: Any) -> list[ColumnElement[bool]]:
        """``window``'s bounds on ``column``; ``who`` selects the profile ids of the rows it bounds (the customers
        whose rows may leave a "last N days" as time passes)."""
        if window is None:
            return []
        clauses = []
        if window.within_days:
            self.crossing(who, column, window.within_days)
            clauses.append(column >= self.now - timedelta(days=window.within_days))
        if window.from_ is not None:
            bounds = self._day_range(window.from_.isoformat(), f"{path}.from", False, False)
            if bounds:
                clauses.append(column >= bounds[0])
        if window.to is not None:
            bounds = self._day_range(window.to.isoformat(), f"{path}.to", False, False)
            if bounds:
                clauses.append(column < bounds[1] if bounds[0] != bounds[1] else column <= bounds[0])
        return clauses

    # -- identities, units, consent ---------------------------------------------------------------------
    def _identity(self, node: schemas.IdentityRule, path: str) -> ColumnElement[bool]:
        holders = select(Identity.profile_id).where(Identity.org_id == self.org_id, Identity.kind == node.kind)
        return Profile.id.in_(holders) if node.op == "has" else _outside(holders)

    def _unit(self, node: schemas.UnitRule, path: str) -> ColumnElement[bool]:
        unit = self.reference(f"{path}.unit_id", BusinessUnit, node.unit_id, "unknown_unit")
        if unit is None:
            return false()
        unit_path = unit.path
        tree = select(BusinessUnit.id).where(BusinessUnit.org_id == self.org_id,
                                             BusinessUnit.path.startswith(unit_path, autoescape=True))
        return Profile.unit_id.in_(tree) if node.op == "within" else Profile.unit_id.not_in(tree)

    def _consent(self, node: schemas.ConsentRule, path: str) -> ColumnElement[bool]:
        later = ConsentRecord.__table__.alias("later")
        record = ConsentRecord.__table__.alias("record")
        status = "withdrawn" if node.op in ("withdrawn", "not_withdrawn") else "granted"
        latest_says = select(record.c.profile_id).where(
            record.c.org_id == self.org_id, record.c.channel == node.channel, record.c.purpose == node.purpose,
            record.c.status == status,
            ~select(later.c.id).where(later.c.profile_id == record.c.profile_id, later.c.channel == node.channel,
                                      later.c.purpose == node.purpose, later.c.ts > record.c.ts).exists())
        return Profile.id.in_(latest_says) if node.op in ("granted", "withdrawn") else _outside(latest_says)

    def _segment(self, node: schemas.SegmentRule, path: str) -> ColumnElement[bool]:
        if self.reference(f"{path}.segment_id", Segment, node.segment_id, "unknown_segment", "read") is None:
            return false()
        if node.segment_id in self.within:
            return self.fail(f"{path}.segment_id", "a segment cannot contain itself", "cycle")
        if self.within and self._refers_to(node.segment_id, self.within):
            return self.fail(f"{path}.segment_id", f"segment {node.segment_id} refers back to this one (a cycle)",
                             "cycle")
        members = select(SegmentMember.profile_id).where(SegmentMember.segment_id == node.segment_id)
        return Profile.id.in_(members) if node.op == "in" else _outside(members)

    def _refers_to(self, segment_id: int, targets: frozenset[int]) -> bool:
        """Whether ``segment_id``'s condition, or a segment it refers to, refers to one of ``targets``."""
        seen: set[int] = set()
        pending = [segment_id]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            condition = self.session.scalar(select(Segment.condition).where(Segment.id == current,
                                                                            Segment.org_id == self.org_id))
            referred = set(segments_in(condition))
            if referred & targets:
                return True
            pending.extend(referred)
        return False

    def _tag(self, node: schemas.TagRule, path: str) -> ColumnElement[bool]:
        if self.reference(f"{path}.tag_id", Tag, node.tag_id, "unknown_tag") is None:
            return false()
        carriers = select(ProfileTag.profile_id).where(ProfileTag.tag_id == node.tag_id)
        return Profile.id.in_(carriers) if node.op == "has" else _outside(carriers)

    # -- events -----------------------------------------------------------------------------------------
    def _event(self, node: schemas.EventRule, path: str) -> ColumnElement[bool]:
        wheres = [Event.org_id == self.org_id, Event.event == node.event, *self._happenings_seen(node.event),
                  *self._window(Event.ts, node.window, f"{path}.window", self._doers(node.event))]
        for i, condition in enumerate(node.where):
            wheres.append(self._property(condition, f"{path}.where.{i}"))
        base = select(Event.profile_id).where(*wheres)
        if node.op == "did_not":
            if node.count is not None:
                return self.fail(f"{path}.count", "did_not takes no count (it means not even once)", "invalid")
            return _outside(base)
        count = node.count or schemas.Count(op="gte", value=1)
        return _bounded(Profile.id, count.op, count.value,
                        lambda n: base if n == 1 else base.group_by(Event.profile_id).having(func.count() >= n))

    def _property(self, node: schemas.PropertyFilter, path: str) -> ColumnElement[bool]:
        if not self.reads_pii and self.personal.of_attribute(node.property) is not None:
            return self.refuse_personal(f"{path}.property", node.property)
        value = Event.properties[node.property]
        numeric = isinstance(node.value, int | float) and not isinstance(node.value, bool)
        if node.op in ("gt", "gte", "lt", "lte") or (numeric and node.op in ("eq", "ne")):
            number = self._decimal(node.value, f"{path}.value")
            return false() if number is None else _compare(value.as_float(), node.op, float(number))
        if node.op == "in":
            if not isinstance(node.value, list) or not node.value or len(node.value) > MAX_IN_VALUES:
                return self.fail(f"{path}.value", f"a list of 1 to {MAX_IN_VALUES} values", "not_list")
            return value.as_string().in_([self._text(v, f"{path}.value.{i}") for i, v in enumerate(node.value)])
        text = self._text(node.value, f"{path}.value")
        if node.op == "contains":
            return value.as_string().contains(text, autoescape=True)
        return value.as_string() == text if node.op == "eq" else or_(value.as_string().is_(None),
                                                                      value.as_string() != text)

    def _event_time(self, node: schemas.EventTimeRule, path: str) -> ColumnElement[bool]:
        moment = func.min(Event.ts) if node.which == "first" else func.max(Event.ts)
        having = self._moment_bound(moment, node.op, node.value, f"{path}.value", self._doers(node.event), Event.ts)
        if having is None:
            return false()
        return Profile.id.in_(select(Event.profile_id).where(Event.org_id == self.org_id, Event.event == node.event,
                                                             *self._happenings_seen(node.event))
                              .group_by(Event.profile_id).having(having))

    def _doers(self, event: str) -> Any:
        return select(Event.profile_id).where(Event.org_id == self.org_id, Event.event == event)

    def _happenings_seen(self, event: str) -> list[ColumnElement[bool]]:
        """For an event kehu also records as a happening, those of other units left out (a test-drive booking is
        left alone: its index answers "who did it" without reading the events themselves)."""
        if self.happening_units is None or event not in events.customer_events():
            return []
        return [or_(Event.type != HAPPENING, Event.properties["unit_id"].as_integer().in_(self.happening_units))]

    def _moment_bound(self, moment: Any, op: str, value: Any, path: str, who: Any,
                      column: Any) -> ColumnElement[bool] | None:
        """``moment`` (an aggregate time of ``column`` over the rows ``who`` selects the profile ids of) against a
        day or a number of days back; None when ``value`` is bad."""
        if op in ("within_last_days", "more_than_days_ago"):
            days = self._days(value, path)
            if days is None:
                return None
            self.crossing(who, column, days)
            bound = self.now - timedelta(days=days)
            return moment >= bound if op == "within_last_days" else moment < bound
        bounds = self._day_range(value, path, False, False)
        if bounds is None:
            return None
        return moment < bounds[0] if op == "before" else moment >= bounds[1]

    # -- accounts ---------------------------------------------------------------------------------------
    def _account(self, node: schemas.AccountRule, path: str) -> ColumnElement[bool]:
        accounts = select(Account.id).where(Account.org_id == self.org_id)
        if node.account_id is not None:
            if self.reference(f"{path}.account_id", Account, node.account_id, "unknown_account", "read") is None:
                return false()
            accounts = accounts.where(Account.id == node.account_id)
        if node.kind is not None:
            accounts = accounts.where(Account.kind == node.kind)
        members = select(AccountMember.profile_id).where(AccountMember.account_id.in_(accounts))
        return Profile.id.in_(members) if node.op == "member" else _outside(members)

    # -- orders -----------------------------------------------------------------------------------------
    def _orders(self, node: schemas.OrderRule, path: str) -> ColumnElement[bool]:
        buyers = select(Order.profile_id).where(Order.org_id == self.org_id)
        wheres = [Order.org_id == self.org_id, *self._window(Order.ordered_at, node.window, f"{path}.window", buyers)]
        if node.status:
            wheres.append(Order.status.in_(node.status))
        if node.sku:
            wheres.append(Order.id.in_(select(OrderLine.order_id).where(OrderLine.sku == node.sku)))
        base = select(Order.profile_id).where(*wheres)
        value_path = f"{path}.value"
        if node.measure == "last_ordered_at":
            if node.op not in ("before", "after", "within_last_days", "more_than_days_ago"):
                return self.fail(f"{path}.op", "last_ordered_at takes before, after, within_last_days or "
                                               "more_than_days_ago", "wrong_operator")
            having = self._moment_bound(func.max(Order.ordered_at), node.op, node.value, value_path, buyers,
                                        Order.ordered_at)
            if having is None:
                return false()
            return Profile.id.in_(base.group_by(Order.profile_id).having(having))
        if node.op not in ("eq", "gte", "gt", "lte", "lt"):
            return self.fail(f"{path}.op", f"{node.measure} takes eq, gte, gt, lte or lt", "wrong_operator")
        if node.measure == "count":
            if isinstance(node.value, bool) or not isinstance(node.value, int) or node.value < 0:
                return self.fail(value_path, "a whole number of orders", "not_count")
            return _bounded(Profile.id, node.op, node.value,
                            lambda n: base if n == 1 else base.group_by(Order.profile_id).having(func.count() >= n))
        amount = self._decimal(node.value, value_path)
        if amount is None:
            return false()
        # A customer without (such) orders has spent 0: "less than 1,000" includes them, "at least 1,000"
        # does not. Where 0 meets the bound, they are counted in by excluding those whose sum fails it.
        total = func.sum(Order.total)
        meets = _compare(total, node.op, amount)
        if _compare_values(node.op, Decimal(0), amount):
            return _outside(base.group_by(Order.profile_id).having(not_(meets)))
        return Profile.id.in_(base.group_by(Order.profile_id).having(meets))


def segments_in(condition: Any) -> list[int]:
    """The segments a stored condition (plain JSON) refers to."""
    if not isinstance(condition, dict):
        return []
    if condition.get("type") == "segment":
        return [condition["segment_id"]]
    children = condition.get("conditions") or ([condition["condition"]] if "condition" in condition else [])
    return [s for child in children for s in segments_in(child)]


def _outside(ids: Any) -> ColumnElement[bool]:
    """The profile is not among ``ids`` (a SELECT whose first column is a profile id). NOT EXISTS rather than
    NOT IN: PostgreSQL turns it into a hash anti-join, while NOT IN over a set bigger than work_mem falls
    back to scanning the set once per profile (6 s instead of 1 s for "no orders" at a million profiles)."""
    found = ids.subquery()
    return ~select(found.c[0]).where(found.c[0] == Profile.id).exists()


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    return {"eq": column == value, "ne": or_(column.is_(None), column != value), "gt": column > value,
            "gte": column >= value, "lt": column < value, "lte": column <= value}[op]


def _compare_values(op: str, actual: Any, bound: Any) -> bool:
    return {"eq": actual == bound, "ne": actual != bound, "gt": actual > bound, "gte": actual >= bound,
            "lt": actual < bound, "lte": actual <= bound}[op]


def _bounded(profile_id: Any, op: str, n: int, at_least: Any) -> ColumnElement[bool]:
    """A count bound as membership of "at least k" sets (``at_least(k)`` gives the ids), so that zero counts:
    fewer than 2 includes those with none."""
    def member(k: int) -> ColumnElement[bool]:
        return true() if k <= 0 else profile_id.in_(at_least(k))

    def outside(k: int) -> ColumnElement[bool]:
        return false() if k <= 0 else _outside(at_least(k))

    if op == "gte":
        return member(n)
    if op == "gt":
        return member(n + 1)
    if op == "lt":
        return outside(n)
    if op == "lte":
        return outside(n + 1)
    return and_(member(n), outside(n + 1))  # eq


def operators_for(kind: str, *, personal: bool, reads_pii: bool) -> set[str]:
    """The operators a reader may use on a field of ``kind`` (``personal``: its values are masked for them)."""
    return OPERATORS[kind] if reads_pii or not personal else OPERATORS[kind] & PRESENCE_OPERATORS


def compile_condition(session: Session, org_id: int, timezone: str, condition: Any, *, reader: Principal | None,
                      now: datetime | None = None, path: str = "condition", segment_id: int | None = None,
                      happening_units: Collection[int] | None = None) -> ColumnElement[bool]:
    """The SQL filter over ``Profile`` for ``condition`` (of segment ``segment_id``, if it defines one), or
    ValidationFailed naming every bad node. ``reader`` is who asks (their pii.read decides what they may ask
    of personal data: Forbidden naming the fields otherwise); None is the platform evaluating a condition that
    was checked against its author when it was saved (a segment's refresh, a scoring rule). Happenings on the
    customer (kehu/cdp/happenings.py) count only where they happened within the reader's units
    (``happening_units`` for the platform: a segment's refresh gives its unit's)."""
    return _compiled(session, org_id, timezone, condition, reader=reader, now=now, path=path, segment_id=segment_id,
                     happening_units=happening_units)[0]


def time_crossings(session: Session, org_id: int, timezone: str, condition: Any, *, since: datetime, now: datetime,
                   segment_id: int | None = None) -> Any:
    """A SELECT of the profile ids whose answer to ``condition`` may have turned with time alone between ``since``
    and ``now`` ("no showroom visit in 90 days" for those whose last visit crossed the 90 days meanwhile; a day
    field's "more than 30 days ago" at midnight in the organisation's zone), or None when none may have: the
    customers near its time boundaries, for whom the platform asks the condition again as time passes."""
    crossings = _compiled(session, org_id, timezone, condition, reader=None, now=now, segment_id=segment_id,
                          since=since)[1]
    if not crossings:
        return None
    return crossings[0] if len(crossings) == 1 else union(*crossings)


def follows_time(condition: Any) -> bool:
    """Whether a stored condition (plain JSON) has a part counting days back from now, whose answer turns as time
    passes without anything happening."""
    if isinstance(condition, list):
        return any(follows_time(c) for c in condition)
    if not isinstance(condition, dict):
        return False
    if condition.get("op") in RELATIVE_OPERATORS or (isinstance(condition.get("window"), dict)
                                                    and condition["window"].get("within_days")):
        return True
    return follows_time(condition.get("conditions")) or follows_time(condition.get("condition"))


def _compiled(session: Session, org_id: int, timezone: str, condition: Any, *, reader: Principal | None,
              now: datetime | None = None, path: str = "condition", segment_id: int | None = None,
              happening_units: Collection[int] | None = None,
              since: datetime | None = None) -> tuple[ColumnElement[bool], list[Any]]:
    custom = definitions(session, org_id)
    if reader is not None and happening_units is None and not is_root_path(reader.unit_path):
        happening_units = reader.unit_tree if reader.unit_tree is not None else units_under(
            session, org_id, reader.unit_path)
    compiler = Compiler(session, org_id, ZoneInfo(timezone), now or utcnow(), session.get_bind().dialect.name,
                        custom, reader is None or reader.has("pii.read"), frozenset({segment_id} if segment_id else ()),
                        reader=reader, happening_units=None if happening_units is None else frozenset(happening_units),
                        since=since)
    clause = compiler.compile(condition, path)
    if any(e.code == PII_REFUSED for e in compiler.errors):
        raise Forbidden("The condition tests personal data, which your roles do not let you read.",
                        errors=compiler.errors)
    if compiler.errors:
        raise ValidationFailed("The condition has problems.", errors=compiler.errors)
    return clause, compiler.crossings
