"""The compiler against a plain reading of the language: hypothesis makes small random sets of customers
(fields, identities, events, orders, consent, tags, merged records) and random conditions over them, and the
SQL's answer must equal what a straightforward Python evaluation of the same condition says — on SQLite and
on PostgreSQL. When they differ, hypothesis shrinks to the smallest data and condition that show it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from kehu.cdp import fields
from kehu.cdp.models import Account, AccountMember, ConsentRecord, Event, Identity, Order, Profile
from kehu.segments import schemas
from kehu.segments.conditions import compile_condition
from kehu.segments.models import ProfileTag, Tag
from kehu.tenancy.access import scope

NOW = datetime(2026, 6, 15, 4, 30, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")
CITIES = [None, "", "上海", "上海市", "杭州", "北京"]
STAGES = ["visitor", "prospect", "lead", "customer", "owner"]
KINDS = ["wechat_openid", "vin"]
EVENTS = ["test_drive_booked", "page_viewed"]
MODELS = [None, "ID.4", "ID.6"]
STATUSES = ["placed", "paid", "cancelled"]
TOTALS = [Decimal("0"), Decimal("1000"), Decimal("250000")]
DEALERS = ["dealer_a", "dealer_b", "dealer_c"]
ACCOUNTS = {"acme": "company", "wang": "household"}
# Days ago are whole days plus an odd fraction, so no moment falls exactly on a window's edge.
DAYS = st.integers(0, 60).map(lambda d: d + 0.37)


@dataclass
class Person:
    dealer: str
    city: str | None
    stage: str
    budget: int | None
    birthday: date | None
    last_seen: float | None
    kinds: list[str]
    events: list[tuple[str, float, str | None]]
    orders: list[tuple[float, Decimal, str]]
    consent: list[tuple[float, str]]  # sms/marketing records: (days ago, granted|withdrawn)
    tagged: bool
    merged: bool
    accounts: list[str]
    id: int = 0


people_strategy = st.lists(st.builds(
    Person,
    dealer=st.sampled_from(DEALERS),
    city=st.sampled_from(CITIES),
    stage=st.sampled_from(STAGES),
    budget=st.one_of(st.none(), st.integers(0, 4).map(lambda n: n * 100000)),
    birthday=st.one_of(st.none(), st.dates(date(1980, 1, 1), date(2000, 12, 31))),
    last_seen=st.one_of(st.none(), DAYS),
    kinds=st.lists(st.sampled_from(KINDS), unique=True),
    events=st.lists(st.tuples(st.sampled_from(EVENTS), DAYS, st.sampled_from(MODELS)), max_size=4),
    orders=st.lists(st.tuples(DAYS, st.sampled_from(TOTALS), st.sampled_from(STATUSES)), max_size=3),
    consent=st.lists(st.tuples(DAYS, st.sampled_from(["granted", "withdrawn"])), max_size=2,
                     unique_by=lambda c: c[0]),
    tagged=st.booleans(),
    merged=st.sampled_from([False, False, False, True]),
    accounts=st.lists(st.sampled_from(list(ACCOUNTS)), unique=True),
), min_size=1, max_size=10)

COUNT_OPS = ["eq", "gte", "gt", "lte", "lt"]
TEXT_RULES = st.one_of(
    st.builds(lambda op, v: {"type": "field", "field": "city", "op": op, "value": v},
              st.sampled_from(["eq", "ne", "contains", "starts_with"]), st.sampled_from(["上海", "杭州", "北京"])),
    st.builds(lambda op, v: {"type": "field", "field": "city", "op": op, "value": v},
              st.sampled_from(["in", "not_in"]), st.lists(st.sampled_from(["上海", "杭州", "上海市"]), min_size=1,
                                                           max_size=2)),
    st.builds(lambda op: {"type": "field", "field": "city", "op": op}, st.sampled_from(["is_set", "is_not_set"])),
    st.builds(lambda op, v: {"type": "field", "field": "lifecycle_stage", "op": op, "value": v},
              st.sampled_from(["eq", "ne"]), st.sampled_from(STAGES)),
)
NUMBER_RULES = st.one_of(
    st.builds(lambda op, v: {"type": "field", "field": "attributes.budget", "op": op, "value": v},
              st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]), st.integers(0, 4).map(lambda n: n * 100000)),
    st.builds(lambda lo, hi: {"type": "field", "field": "attributes.budget", "op": "between",
                              "value": [lo * 100000, hi * 100000]}, st.integers(0, 2), st.integers(1, 4)),
    st.builds(lambda op: {"type": "field", "field": "attributes.budget", "op": op},
              st.sampled_from(["is_set", "is_not_set"])),
)
DATE_RULES = st.one_of(
    st.builds(lambda op, d: {"type": "field", "field": "birthday", "op": op, "value": d.isoformat()},
              st.sampled_from(["eq", "before", "after"]), st.dates(date(1980, 1, 1), date(2000, 12, 31))),
    st.builds(lambda op, n: {"type": "field", "field": "last_seen_at", "op": op, "value": n},
              st.sampled_from(["within_last_days", "more_than_days_ago"]), st.integers(0, 60)),
)
BEHAVIOUR_RULES = st.one_of(
    st.builds(lambda event, op, count, within, model: {
        "type": "event", "event": event, "op": op,
        **({"count": count} if count and op == "did" else {}),
        **({"window": {"within_days": within}} if within else {}),
        **({"where": [{"property": "model", "op": "eq", "value": model}]} if model else {})},
        st.sampled_from(EVENTS), st.sampled_from(["did", "did_not"]),
        st.one_of(st.none(), st.builds(lambda op, n: {"op": op, "value": n}, st.sampled_from(COUNT_OPS),
                                       st.integers(0, 3))),
        st.one_of(st.none(), st.integers(1, 60)), st.sampled_from(MODELS)),
    st.builds(lambda op, n, status: {"type": "orders", "measure": "count", "op": op, "value": n,
                                     **({"status": status} if status else {})},
              st.sampled_from(COUNT_OPS), st.integers(0, 3),
              st.one_of(st.none(), st.lists(st.sampled_from(STATUSES), min_size=1, max_size=2, unique=True))),
    st.builds(lambda op, amount: {"type": "orders", "measure": "total", "op": op, "value": amount},
              st.sampled_from(COUNT_OPS), st.sampled_from([0, 1000, 2000, 250000])),
    st.builds(lambda op, n: {"type": "orders", "measure": "last_ordered_at", "op": op, "value": n},
              st.sampled_from(["within_last_days", "more_than_days_ago"]), st.integers(0, 60)),
    st.builds(lambda event, which, op, n: {"type": "event_time", "event": event, "which": which, "op": op,
                                           "value": n},
              st.sampled_from(EVENTS), st.sampled_from(["first", "last"]),
              st.sampled_from(["within_last_days", "more_than_days_ago"]), st.integers(0, 60)),
)
RELATION_RULES = st.one_of(
    st.builds(lambda kind, op: {"type": "identity", "kind": kind, "op": op}, st.sampled_from(KINDS),
              st.sampled_from(["has", "lacks"])),
    st.builds(lambda op, account, kind: {"type": "account", "op": op,
                                         **({"account_id": account} if account else {}),
                                         **({"kind": kind} if kind else {})},
              st.sampled_from(["member", "not_member"]), st.sampled_from([None, *ACCOUNTS]),
              st.sampled_from([None, "company", "household"])),
    st.builds(lambda op: {"type": "consent", "channel": "sms", "op": op}, st.sampled_from(["granted", "not_granted"])),
    st.builds(lambda op: {"type": "tag", "tag_id": "TAG", "op": op}, st.sampled_from(["has", "lacks"])),
    st.builds(lambda unit, op: {"type": "unit", "unit_id": unit, "op": op},
              st.sampled_from(["east", "dealer_c"]), st.sampled_from(["within", "not_within"])),
)
FAMILIES = {"fields": st.one_of(TEXT_RULES, NUMBER_RULES, DATE_RULES), "behaviour": BEHAVIOUR_RULES,
            "relations": RELATION_RULES,
            "mixed": st.one_of(TEXT_RULES, NUMBER_RULES, DATE_RULES, BEHAVIOUR_RULES, RELATION_RULES)}


def conditions(family: str) -> st.SearchStrategy[dict[str, Any]]:
    """Trees of all / any / not over one family of rules (or all of them): each family gets its own share of
    examples, so rare paths of each are reached."""
    return st.recursive(FAMILIES[family], lambda inner: st.one_of(
        st.builds(lambda cs: {"type": "all", "conditions": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda cs: {"type": "any", "conditions": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"type": "not", "condition": c}, inner)), max_leaves=6)


# -- the plain reading ---------------------------------------------------------------------------------------
def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def counted(op: str, actual: Any, bound: Any) -> bool:
    return {"eq": actual == bound, "gte": actual >= bound, "gt": actual > bound, "lte": actual <= bound,
            "lt": actual < bound, "ne": actual != bound}[op]


def evaluate(c: dict[str, Any], p: Person, units: dict[str, set[str]]) -> bool:
    kind = c["type"]
    if kind == "all":
        return all(evaluate(x, p, units) for x in c["conditions"])
    if kind == "any":
        return any(evaluate(x, p, units) for x in c["conditions"])
    if kind == "not":
        return not evaluate(c["condition"], p, units)
    if kind == "field":
        op, value = c["op"], c.get("value")
        if c["field"] in ("city", "lifecycle_stage"):
            have = p.city if c["field"] == "city" else p.stage
            return {"eq": lambda: have == value, "ne": lambda: have != value,
                    "contains": lambda: have is not None and value in have,
                    "starts_with": lambda: have is not None and have.startswith(value),
                    "in": lambda: have in value, "not_in": lambda: have not in value,
                    "is_set": lambda: bool(have), "is_not_set": lambda: not have}[op]()
        if c["field"] == "attributes.budget":
            if op in ("is_set", "is_not_set"):
                return (p.budget is not None) == (op == "is_set")
            if op == "ne":
                return p.budget != value
            if p.budget is None:
                return False
            return value[0] <= p.budget <= value[1] if op == "between" else counted(op, p.budget, value)
        if c["field"] == "birthday":
            day = date.fromisoformat(value)
            if p.birthday is None:
                return False
            return {"eq": p.birthday == day, "before": p.birthday < day, "after": p.birthday > day}[op]
        if c["field"] == "last_seen_at":
            if p.last_seen is None:
                return False
            return (p.last_seen <= value) == (op == "within_last_days")
    if kind == "identity":
        return (c["kind"] in p.kinds) == (c["op"] == "has")
    if kind == "event":
        within = c.get("window", {}).get("within_days")
        model = c["where"][0]["value"] if c.get("where") else None
        n = sum(1 for name, days, m in p.events
                if name == c["event"] and (within is None or days <= within) and (model is None or m == model))
        if c["op"] == "did_not":
            return n == 0
        count = c.get("count", {"op": "gte", "value": 1})
        return counted(count["op"], n, count["value"])
    if kind == "event_time":
        days = [d for name, d, _ in p.events if name == c["event"]]
        if not days:
            return False
        when = max(days) if c["which"] == "first" else min(days)  # the first time is the most days ago
        return (when <= c["value"]) == (c["op"] == "within_last_days")
    if kind == "account":
        return any((c.get("account_id") in (None, a)) and c.get("kind") in (None, ACCOUNTS[a])
                   for a in p.accounts) == (c["op"] == "member")
    if kind == "orders":
        orders = [o for o in p.orders if not c.get("status") or o[2] in c["status"]]
        if c["measure"] == "count":
            return counted(c["op"], len(orders), c["value"])
        if c["measure"] == "total":
            return counted(c["op"], sum((o[1] for o in orders), Decimal(0)), Decimal(c["value"]))
        if not orders:
            return False
        return (min(o[0] for o in orders) <= c["value"]) == (c["op"] == "within_last_days")
    if kind == "consent":
        latest = min(p.consent, default=None, key=lambda r: r[0])  # the fewest days ago
        return (latest is not None and latest[1] == "granted") == (c["op"] == "granted")
    if kind == "tag":
        return p.tagged == (c["op"] == "has")
    if kind == "unit":
        return (p.dealer in units[c["unit_id"]]) == (c["op"] == "within")
    raise AssertionError(kind)


# -- the database ----------------------------------------------------------------------------------------------
def store(session, tree, people: list[Person], tag_id: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    org = tree.org.id
    for table in (Event, Order, Identity, ConsentRecord, ProfileTag):
        session.execute(delete(table).where(table.org_id == org))
    session.execute(delete(AccountMember).where(AccountMember.account_id.in_(
        select(Account.id).where(Account.org_id == org))))
    session.execute(delete(Account).where(Account.org_id == org))
    accounts = {}
    for key, account_kind in ACCOUNTS.items():
        account = Account(org_id=org, unit_id=tree.hq.id, external_id=key, kind=account_kind, name=key)
        session.add(account)
        session.flush()
        accounts[key] = account.id
    session.execute(delete(Profile).where(Profile.org_id == org, Profile.merged_into_id.is_not(None)))
    session.execute(delete(Profile).where(Profile.org_id == org))
    survivor = None
    for i, p in enumerate(people):
        profile = Profile(org_id=org, unit_id=getattr(tree, p.dealer).id, name=f"客户{i}", city=p.city,
                          lifecycle_stage=p.stage, birthday=p.birthday,
                          attributes={} if p.budget is None else {"budget": p.budget},
                          last_seen_at=None if p.last_seen is None else ago(p.last_seen))
        session.add(profile)
        session.flush()
        p.id = profile.id
        if p.merged and survivor is not None:
            profile.merged_into_id = survivor  # a tombstone: never a member, whatever it holds
        survivor = survivor or profile.id
        for kind in p.kinds:
            session.add(Identity(org_id=org, profile_id=p.id, kind=kind, value=f"{kind}-{i}"))
        for n, (name, days, model) in enumerate(p.events):
            session.add(Event(org_id=org, source_id=0, message_id=f"m-{i}-{n}", type="track", event=name,
                              ts=ago(days), identity_id=0, profile_id=p.id,
                              properties={} if model is None else {"model": model}))
        for n, (days, total, status) in enumerate(p.orders):
            session.add(Order(org_id=org, unit_id=profile.unit_id, profile_id=p.id, external_id=f"SO-{i}-{n}",
                              status=status, ordered_at=ago(days), total=total))
        for days, status in p.consent:
            session.add(ConsentRecord(org_id=org, profile_id=p.id, channel="sms", purpose="marketing",
                                      status=status, ts=ago(days)))
        for key in p.accounts:
            session.add(AccountMember(account_id=accounts[key], profile_id=p.id))
        if p.tagged:
            session.add(ProfileTag(tag_id=tag_id, profile_id=p.id, org_id=org, added_at=NOW))
    session.flush()
    return accounts


def resolve(condition: dict[str, Any], tree, tag_id: int, accounts: dict[str, int]  # type: ignore[no-untyped-def]
            ) -> dict[str, Any]:
    """The generated condition with the test's real ids in place of names."""
    if condition["type"] in ("all", "any"):
        return {**condition, "conditions": [resolve(c, tree, tag_id, accounts) for c in condition["conditions"]]}
    if condition["type"] == "not":
        return {**condition, "condition": resolve(condition["condition"], tree, tag_id, accounts)}
    if condition["type"] == "account" and condition.get("account_id"):
        return {**condition, "account_id": accounts[condition["account_id"]]}
    if condition["type"] == "tag":
        return {**condition, "tag_id": tag_id}
    if condition["type"] == "unit":
        return {**condition, "unit_id": getattr(tree, condition["unit_id"]).id}
    return condition


@pytest.mark.parametrize("family", list(FAMILIES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(people=people_strategy, data=st.data())
def test_compiled_sql_agrees_with_a_plain_evaluation(tree, session, family, people, data):  # type: ignore[no-untyped-def]
    condition = data.draw(conditions(family), label="condition")
    org = tree.org.id
    if not session.scalar(select(Tag.id).where(Tag.org_id == org)):
        fields.create_field(session, tree.system, {"key": "budget", "label_zh": "预算", "label_en": "Budget",
                                                   "type": "number"})
        session.add(Tag(org_id=org, name="关注"))
        session.flush()
    tag_id = session.scalar(select(Tag.id).where(Tag.org_id == org))
    accounts = store(session, tree, people, tag_id)
    units = {"east": {"dealer_a", "dealer_b"}, "dealer_c": {"dealer_c"}}
    parsed = schemas.condition_adapter.validate_python(resolve(condition, tree, tag_id, accounts))
    clause = compile_condition(session, org, "Asia/Shanghai", parsed, reader=None, now=NOW)
    found = set(session.scalars(select(Profile.id).where(scope(tree.system, Profile),
                                                         Profile.merged_into_id.is_(None), clause)))
    expected = {p.id for p in people if not (p.merged and p.id != people[0].id) and evaluate(condition, p, units)}
    assert found == expected, (condition, [p for p in people if p.id in found ^ expected])
    session.rollback()
