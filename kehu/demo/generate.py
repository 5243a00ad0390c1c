"""Customers at scale for benchmarks and load tests (`kehu generate`): profiles with their identities,
three years of life-cycle events with the seasons of the Chinese car market, orders with lines and the
delivered vehicles. Deterministic from a seed. Rows go straight into the tables (COPY on PostgreSQL,
multi-row INSERTs on SQLite), one chunk of customers per transaction, with a progress callback.

The demo sends its thousand customers through ingestion to show One ID at work; a million through the
resolver would take hours, and what the benchmarks measure at that size is reading, so this writes the
resolved result directly."""

from __future__ import annotations

import base64
import bisect
import contextlib
import hashlib
import itertools
import multiprocessing
import os
import random
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO

from sqlalchemy import UniqueConstraint, select
from sqlalchemy.orm import Session
from sqlalchemy.schema import AddConstraint, DropConstraint

from kehu.cdp import normalise, schemas, service, writer
from kehu.cdp.models import Event, Identity, Order, OrderLine, Product, Source, Vehicle
from kehu.core import events
from kehu.core.db import Database, copy_rows, insert_returning_ids, one_of, refresh_statistics, utcnow
from kehu.core.errors import Conflict
from kehu.demo.customers import MAIL_DOMAINS, MODELS, _person, noisy_name, postcode, vin
from kehu.sales import pipelines
from kehu.sales.models import (
    Lead,
    LeadChange,
    Opportunity,
    OpportunityChange,
    OpportunityLine,
    PipelineStage,
)
from kehu.sales.service import LEAD_RULES
from kehu.tenancy import service as tenancy_service
from kehu.tenancy.models import BusinessUnit, Role, User

CHUNK = 10_000
# Relative sales activity by month (1–12): the Spring Festival dip in February, the spring and "golden
# September, silver October" peaks, the year-end push.
SEASON = [0.9, 0.55, 1.1, 1.15, 1.05, 0.95, 0.85, 0.9, 1.2, 1.2, 1.0, 1.15]
# (event, call type, weight, where it happens) for the browsing and engagement part of a journey.
ENGAGEMENT = [("车型详情", "page", 30, "web"), ("官网首页", "page", 12, "web"), ("ad_click", "track", 8, "web"),
              ("wechat_follow", "track", 4, "web"), ("app_login", "track", 10, "app"),
              ("车辆状态", "screen", 8, "app"), ("call_centre_inquiry", "track", 3, "showroom"),
              ("survey_answered", "track", 2, "app")]
FUNNEL = ["test_drive_booked", "showroom_visit", "test_drive_completed", "quote_requested"]
AFTER_SALES = ["maintenance_visit", "maintenance_visit", "complaint", "referral"]


@dataclass
class Generated:
    customers: int = 0  # people
    profiles: int = 0  # records: people plus their deliberate duplicates
    identities: int = 0
    events: int = 0
    orders: int = 0
    vehicles: int = 0
    leads: int = 0
    opportunities: int = 0
    seconds: float = 0.0
    by_table: dict[str, int] = field(default_factory=dict)


class _Calendar:
    """Days from ``begin`` to ``now`` weighted by the season; a draw is a bisection of the cumulative weights
    (a million customers draw twenty million moments)."""

    def __init__(self, begin: datetime, now: datetime) -> None:
        self.begin, self.now = begin, now
        self.days = max((now - begin).days, 1)
        self.cumulative = list(itertools.accumulate(
            SEASON[(begin + timedelta(days=d)).month - 1] for d in range(self.days)))

    def moment(self, rng: random.Random, from_day: int = 0) -> tuple[int, datetime]:
        low = self.cumulative[from_day - 1] if from_day > 0 else 0.0
        day = bisect.bisect_left(self.cumulative, low + rng.random() * (self.cumulative[-1] - low))
        day = min(day, self.days - 1)
        return day, min(self.now, self.begin + timedelta(days=day, seconds=rng.randrange(86_400)))


def generate(database: Database, org_id: int, *, customers: int, events_per_customer: int = 20,
             seed: int = 7, years: int = 3, duplicate_share: float = 0.08, truth: TextIO | None = None,
             processes: int | None = None, progress: Callable[[int], None] | None = None) -> Generated:
    """Add ``customers`` people (about ``events_per_customer`` events each) to the organisation. A
    ``duplicate_share`` of them appear as 2–4 records from different touchpoints, written down differently
    (another spelling of the name, an old mobile, an e-mail with 0 for o, fields missing) and sharing no
    identity — what One ID's fuzzy matching must find. ``truth`` receives ``profile_id,person`` lines for
    every record, to score it.

    Chunks of customers are independent (each has its own random stream, its own number range), so they are
    written by several ``processes`` on PostgreSQL (default: one per core); the data are the same whatever
    their number. While one process builds its rows in Python, the server stores another's."""
    import time

    started = time.perf_counter()
    out = Generated()
    with database.unit_of_work() as session:
        if session.scalar(select(Identity.id).where(Identity.org_id == org_id, Identity.kind == "anonymous_id",
                                                    Identity.value == f"gen-{seed}-0")):
            raise Conflict(f"Customers were generated with seed {seed} already; choose another seed.")
        _Context.load(session, org_id, seed)  # sources and products exist before any worker looks for them
    if truth is not None and truth.tell() == 0:
        truth.write("profile_id,person\n")
    now = utcnow()
    plan = _Plan(org_id, seed, duplicate_share, events_per_customer, now - timedelta(days=365 * years), now,
                 run=uuid.uuid4().hex)
    chunks = [(index, first, min(CHUNK, customers - first)) for index, first in
              enumerate(range(0, customers, CHUNK))]
    if database.is_sqlite:  # SQLite has one writer
        processes = 1
    elif processes is None:
        processes = os.cpu_count() or 1

    def take(part: Generated, lines: list[str], size: int) -> None:
        for name in ("profiles", "identities", "events", "orders", "vehicles", "leads", "opportunities"):
            setattr(out, name, getattr(out, name) + getattr(part, name))
        out.customers += size
        if truth is not None:
            truth.writelines(lines)
        if progress:
            progress(size)

    # A load that more than doubles the events builds their lookup indexes afterwards, sorted, in one go:
    # kept up row by row, their random inserts into indexes far bigger than memory dominated past a few
    # million events (what pg_restore does for the same reason).
    if not database.is_sqlite:
        _build_missing_indexes(database, Event.__table__)  # should an earlier load have been killed midway
    aside = not database.is_sqlite and customers * events_per_customer > _row_estimate(database, "events")
    with _indexes_set_aside(database, Event.__table__) if aside else contextlib.nullcontext():
        if processes <= 1 or len(chunks) == 1:
            for index, first, size in chunks:
                take(*_run_chunk(database, plan, index, first, size), size)
        else:
            url = database.url
            context = multiprocessing.get_context("spawn")  # a fresh interpreter: no engine or socket inherited
            with ProcessPoolExecutor(processes, mp_context=context) as pool:
                futures = {pool.submit(_chunk_in_process, url, plan, index, first, size): size
                           for index, first, size in chunks}
                for future in as_completed(futures):
                    take(*future.result(), futures[future])
    with database.unit_of_work() as session:
        # The lead rules must not read the generated history again: its leads are written already.
        events.skip_to_end(session, LEAD_RULES)
    out.seconds = time.perf_counter() - started
    return out


def _row_estimate(database: Database, table: str) -> int:
    with database.engine.connect() as connection:
        return int(connection.exec_driver_sql(
            f"SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE relname = '{table}'").scalar() or 0)


def _build_missing_indexes(database: Database, table: Any) -> None:
    """Build those of ``table``'s indexes and unique constraints that are missing: sorted builds, with
    memory for them and the server's parallel workers (for this transaction only)."""
    with database.engine.connect() as connection:
        present = set(connection.exec_driver_sql(
            f"SELECT indexname FROM pg_indexes WHERE tablename = '{table.name}'").scalars())
        missing = [i for i in table.indexes if i.name not in present]
        uniques = [c for c in table.constraints if isinstance(c, UniqueConstraint) and c.name not in present]
        if not missing and not uniques:
            return
        connection.exec_driver_sql("SET LOCAL maintenance_work_mem = '1GB'")
        connection.exec_driver_sql("SET LOCAL max_parallel_maintenance_workers = 2")
        for index in missing:
            index.create(connection)
        for unique in uniques:
            connection.execute(AddConstraint(unique))
        connection.exec_driver_sql(f'ANALYZE "{table.name}"')
        connection.commit()


@contextlib.contextmanager
def _indexes_set_aside(database: Database, table: Any) -> Iterator[None]:
    """Drop ``table``'s secondary indexes and unique constraints for a bulk load of rows that are unique by
    construction, and build them again afterwards (also after a failed load)."""
    indexes = list(table.indexes)
    uniques = [c for c in table.constraints if isinstance(c, UniqueConstraint)]
    with database.engine.connect() as connection:
        for unique in uniques:
            connection.execute(DropConstraint(unique))
        for index in indexes:
            connection.exec_driver_sql(f'DROP INDEX "{index.name}"')
        connection.commit()
    try:
        yield
    finally:
        _build_missing_indexes(database, table)


@dataclass(frozen=True)
class _Plan:
    org_id: int
    seed: int
    duplicate_share: float
    events_per_customer: int
    begin: datetime
    now: datetime
    run: str  # this call of generate(): a process reuses what it loaded only within it


_process_state: dict[str, Any] = {}


def _chunk_in_process(url: str, plan: _Plan, index: int, first: int, size: int) -> tuple[Generated, list[str]]:
    """A worker process's share: one chunk, with the process's own database connection."""
    if "database" not in _process_state:
        import kehu.models  # noqa: F401 - every table registered

        _process_state["database"] = Database(url)
    return _run_chunk(_process_state["database"], plan, index, first, size)


def _run_chunk(database: Database, plan: _Plan, index: int, first: int, size: int) -> tuple[Generated, list[str]]:
    rng = random.Random(f"{plan.seed}:{index}")  # each chunk its own stream: same data in any process
    part = Generated()
    with database.unit_of_work() as session:
        if _process_state.get("context_run") != plan.run:  # loaded once per process and run, not per chunk
            _process_state["context"] = _Context.load(session, plan.org_id, plan.seed)
            _process_state["context_run"] = plan.run
        context = _process_state["context"]
        context.duplicate_share = plan.duplicate_share
        lines = _chunk(session, context, rng, size, begin=plan.begin, now=plan.now,
                       events_per_customer=plan.events_per_customer, out=part, first_number=first)
    return part, lines


@dataclass
class _Context:
    org_id: int
    seed: int
    dealers: list[BusinessUnit]
    consultants: dict[int, list[int]]
    web: int
    app: int
    showroom: dict[int, int]
    products: dict[str, int]
    pipeline_id: int
    stages: list[tuple[int, int]]  # the default pipeline's (stage id, probability), first to won
    duplicate_share: float = 0.0

    @classmethod
    def load(cls, session: Session, org_id: int, seed: int) -> _Context:
        system = tenancy_service.system_principal(session, org_id)
        dealers = list(session.scalars(select(BusinessUnit).where(
            BusinessUnit.org_id == org_id, BusinessUnit.kind == "dealer", BusinessUnit.is_active)
            .order_by(BusinessUnit.code)))
        if not dealers:
            raise Conflict("The organisation has no dealers to give customers to (run `kehu demo` first).")
        sales_role = session.scalar(select(Role.id).where(Role.org_id == org_id, Role.code == "dealer_sales"))
        consultants: dict[int, list[int]] = {d.id: [] for d in dealers}
        dealer_of_path = {d.path: d.id for d in dealers}
        for user_id, path in session.execute(  # one query, each consultant filed under the dealer above them
                select(User.id, BusinessUnit.path).join(BusinessUnit, User.unit_id == BusinessUnit.id)
                .where(User.org_id == org_id, User.is_active, User.roles.any(Role.id == sales_role))
                .order_by(User.id)):
            prefixes = (path[:i + 1] for i, c in enumerate(path) if c == "/")
            dealer_id = next((dealer_of_path[p] for p in prefixes if p in dealer_of_path), None)
            if dealer_id is not None:
                consultants[dealer_id].append(user_id)

        def source(name: str, kind: str, unit_id: int | None = None) -> int:
            found = session.scalar(select(Source.id).where(Source.org_id == org_id, Source.name == name))
            if found:
                return found
            return service.create_source(session, system, data=schemas.SourceCreate(
                name=name, kind=kind, unit_id=unit_id))[0].id

        web, app = source("生成数据·官网", "web"), source("生成数据·车主 App", "app")
        showroom = {d.id: source(f"生成数据·{d.code} 展厅", "server", d.id) for d in dealers}
        products = {}
        for model, price in MODELS:
            product = session.scalar(select(Product).where(Product.org_id == org_id, Product.sku == model))
            if product is None:
                product = Product(org_id=org_id, sku=model, name=model, kind="vehicle_model", price=Decimal(price))
                session.add(product)
                session.flush()
            products[model] = product.id
        pipeline = pipelines.default_pipeline(session, org_id)
        stages = [(stage.id, stage.probability) for stage in session.scalars(
            select(PipelineStage).where(PipelineStage.pipeline_id == pipeline.id).order_by(PipelineStage.position))]
        return cls(org_id, seed, dealers, consultants, web, app, showroom, products, pipeline.id, stages)


# Each generated record of a person has an address of its own (a second touchpoint rarely writes the same).

DISTRICTS = ("高新区", "经开区", "新区", "城东区", "城西区", "中心区", "滨江区", "北区")
STREETS = ("人民路", "解放路", "中山路", "建设路", "和平路", "长江路", "黄河路", "文化路", "新华路", "青年路")
def _wechat_id(kind: str, seed: int, record: int) -> str:
    """A 28-character id shaped like WeChat's (they start with "o"), stable per seed and record."""
    digest = base64.urlsafe_b64encode(hashlib.sha1(f"{kind}-{seed}-{record}".encode()).digest()).decode()
    return "o" + digest[:27]


@dataclass
class _Person:
    person: str  # who this really is (ground truth): duplicates of one person share it
    record: int  # unique per generated record: numbers its identities and messages
    dealer: BusinessUnit
    owner: int | None
    model: str
    price: int
    stage: str
    mobile: str | None
    email: str | None
    dealer_number: str | None
    stamps: list[datetime]


def _mobile(ctx: _Context, prefix: str, record: int) -> str:
    # Unique by construction (identities are unique per organisation): the record number in a bijection of
    # the 8-digit subscriber part.
    return f"+86{prefix}{(record * 7919 + ctx.seed * 104729) % 10**8:08d}"


def _chunk(session: Session, ctx: _Context, rng: random.Random, size: int, *, begin: datetime, now: datetime,
           events_per_customer: int, out: Generated, first_number: int) -> list[str]:
    """Write one chunk of customers; returns its ground-truth lines."""
    calendar = _Calendar(begin, now)
    people: list[_Person] = []
    profiles = []
    for k in range(size):
        number = first_number + k
        raw = _person(rng)
        name, model_price = str(raw["name"]), rng.choice(MODELS)
        stage = rng.choices(["prospect", "lead", "opportunity", "customer", "owner"], [30, 25, 20, 8, 17])[0]
        home = rng.choice(ctx.dealers)
        has_email = bool(raw["email"]) or rng.random() < 0.1
        copies = rng.choice((2, 2, 2, 3, 4)) if rng.random() < ctx.duplicate_share else 1
        for variant in range(copies):
            record = number * 4 + variant
            dealer = home if variant == 0 or rng.random() < 0.5 else rng.choice(ctx.dealers)
            owners = ctx.consultants.get(dealer.id) or [None]
            first_day, first = calendar.moment(rng)
            count = max(3, int(rng.gauss(events_per_customer, events_per_customer / 4)) // (2 if variant else 1))
            stamps = [first, *sorted(max(first, calendar.moment(rng, first_day)[1]) for _ in range(count - 1))]
            spelled = name if variant == 0 else noisy_name(rng, name)
            pinyin = normalise.pinyin(name) or "kehu"
            if variant == 0:
                mobile = _mobile(ctx, str(raw["mobile"])[:3], record)
                email = f"{pinyin}.{number}.{ctx.seed}@{rng.choice(MAIL_DOMAINS)}" if has_email else None
            else:  # an old number, or none; the e-mail with 0 for o, or none
                mobile = _mobile(ctx, rng.choice(("139", "186", "158")), record) if rng.random() < 0.6 else None
                email = f"{pinyin.replace('o', '0', 1)}_{record}.{ctx.seed}@{rng.choice(MAIL_DOMAINS)}" \
                    if has_email and rng.random() < 0.5 else None
            # A second record always carries the dealer's own customer number (so it has an identity).
            dealer_number = f"{dealer.code}-G{ctx.seed}-{record}" if variant or rng.random() < 0.3 else None
            person = _Person(f"{ctx.seed}-{number}", record, dealer, owners[record % len(owners)], *model_price,
                             stage if variant == 0 else rng.choice(["prospect", "lead"]), mobile, email,
                             dealer_number, stamps)
            people.append(person)
            missing = variant > 0 and rng.random() < 0.5  # a second touchpoint often knows less
            district = rng.randrange(len(DISTRICTS))
            profiles.append({
                "org_id": ctx.org_id, "unit_id": dealer.id, "owner_id": person.owner, "name": spelled,
                "name_pinyin": normalise.pinyin(spelled), "gender": None if missing else raw["gender"],
                "birthday": None if missing else datetime.strptime(str(raw["birthday"]), "%Y-%m-%d").date(),
                "mobile": mobile, "email": email, "province": dealer.province, "city": dealer.city,
                "address": f"{dealer.city}{DISTRICTS[district]}{rng.choice(STREETS)}{rng.randint(1, 999)}号",
                "postcode": postcode(dealer.city, district),
                "source": "官网", "lifecycle_stage": person.stage,
                "attributes": {"intended_model": person.model},
                "trait_times": {}, "merged_into_id": None, "first_seen_at": first, "last_seen_at": stamps[-1],
                "created_at": first, "updated_at": now})
    _avoid_taken_mobiles(session, ctx, people, profiles)
    laid_out = {key: [row[key] for row in profiles] for key in (profiles[0] if profiles else {"org_id": None})}
    profile_ids = writer.write_profiles(session, laid_out)
    out.profiles += len(profile_ids)
    truth = [f"{profile_id},{person.person}\n" for profile_id, person in zip(profile_ids, people, strict=True)]

    identities = []
    for profile_id, person in zip(profile_ids, people, strict=True):
        base = {"org_id": ctx.org_id, "profile_id": profile_id, "first_seen_at": person.stamps[0],
                "last_seen_at": person.stamps[-1]}
        identities.append({**base, "kind": "anonymous_id", "value": f"gen-{ctx.seed}-{person.record}",
                           "source_id": ctx.web})
        if person.mobile:
            identities.append({**base, "kind": "mobile", "value": person.mobile,
                               "source_id": ctx.showroom[person.dealer.id]})
        if person.email:
            identities.append({**base, "kind": "email", "value": person.email, "source_id": ctx.web})
        if person.dealer_number:
            identities.append({**base, "kind": "dealer_customer_no", "value": person.dealer_number,
                               "source_id": ctx.showroom[person.dealer.id]})
        if person.stage in ("customer", "owner"):
            identities.append({**base, "kind": "user_id", "value": f"gen-app-{ctx.seed}-{person.record}",
                               "source_id": ctx.app})
        spread = person.record // 4 + person.record % 4  # person number + which of their records
        if spread % 2 == 0:  # half follow the brand's WeChat account; a third of those are known across its apps
            identities.append({**base, "kind": "wechat_openid", "value": _wechat_id("openid", ctx.seed, person.record),
                               "source_id": ctx.web})
            if spread % 6 == 0:
                identities.append({**base, "kind": "wechat_unionid", "source_id": ctx.web,
                                   "value": _wechat_id("unionid", ctx.seed, person.record)})
    def column(key: str) -> list[Any]:
        return [row[key] for row in identities]

    identity_ids = writer.write_identities(
        session, ctx.org_id, profile_ids=column("profile_id"), kinds=column("kind"), values=column("value"),
        source_ids=column("source_id"), first_seen=column("first_seen_at"), last_seen=column("last_seen_at"))
    by_profile: dict[int, dict[str, int]] = {}
    for row, identity_id in zip(identities, identity_ids, strict=True):
        by_profile.setdefault(row["profile_id"], {})[row["kind"]] = identity_id

    events, orders, models, vehicles = [], [], [], []
    weights = [w for _, _, w, _ in ENGAGEMENT]
    for profile_id, person in zip(profile_ids, people, strict=True):
        ids = by_profile[profile_id]
        showroom = ctx.showroom[person.dealer.id]
        funnel_at = len(person.stamps) // 3
        for index, ts in enumerate(person.stamps):
            if funnel_at <= index < funnel_at + len(FUNNEL) and person.stage != "prospect":
                name, kind, where = FUNNEL[index - funnel_at], "track", "showroom"
            elif index > funnel_at + len(FUNNEL) + 2 and person.stage == "owner" and rng.random() < 0.3:
                name, kind, where = rng.choice(AFTER_SALES), "track", "showroom"
            else:
                name, kind, _, where = rng.choices(ENGAGEMENT, weights)[0]
            if name == "wechat_follow" and "wechat_openid" in ids:
                source_id, identity_id = ctx.web, ids["wechat_openid"]
            elif where == "web":
                source_id, identity_id = ctx.web, ids["anonymous_id"]
            elif where == "app":
                source_id, identity_id = ctx.app, ids.get("user_id", ids["anonymous_id"])
            else:
                source_id = showroom
                identity_id = ids.get("mobile") or ids.get("dealer_customer_no") or ids["anonymous_id"]
            events.append({"org_id": ctx.org_id, "source_id": source_id,
                           "message_id": f"gen-{ctx.seed}-{person.record}-{index}", "type": kind, "event": name,
                           "ts": ts, "received_at": ts, "identity_id": identity_id, "profile_id": profile_id,
                           "properties": {"model": person.model}, "context": {}})
        if person.stage in ("customer", "owner"):
            ordered = person.stamps[min(funnel_at + len(FUNNEL), len(person.stamps) - 1)]
            orders.append({"org_id": ctx.org_id, "unit_id": person.dealer.id, "owner_id": person.owner,
                           "profile_id": profile_id, "external_id": f"SO-G{ctx.seed}-{person.record}",
                           "status": "delivered" if person.stage == "owner" else "paid", "ordered_at": ordered,
                           "total": Decimal(person.price), "currency": "CNY", "source_id": showroom,
                           "created_at": ordered, "updated_at": ordered})
            models.append(person.model)
            milestones = [("order_placed", ordered, {"order_id": f"SO-G{ctx.seed}-{person.record}",
                                                    "model": person.model, "amount": person.price})]
            if person.stage == "owner":
                milestones.append(("vehicle_delivered", ordered + timedelta(days=20), {"model": person.model}))
            for name, ts, properties in milestones:
                events.append({"org_id": ctx.org_id, "source_id": showroom, "type": "track", "event": name,
                               "message_id": f"gen-{ctx.seed}-{person.record}-{name}", "ts": min(ts, now),
                               "received_at": min(ts, now), "profile_id": profile_id, "properties": properties,
                               "identity_id": ids.get("mobile") or ids.get("dealer_customer_no")
                               or ids["anonymous_id"], "context": {}})
            if person.stage == "owner":
                vehicles.append({"org_id": ctx.org_id, "unit_id": person.dealer.id, "profile_id": profile_id,
                                 "vin": vin(rng), "model": person.model, "model_year": ordered.year, "plate": None,
                                 "purchased_at": (ordered + timedelta(days=20)).date(), "created_at": ordered,
                                 "updated_at": ordered})
    copy_rows(session, Event, events)
    out.leads, out.opportunities = _sales(session, ctx, rng, [  # a person's first record met the dealer
        (profile_id, person) for profile_id, person in zip(profile_ids, people, strict=True) if person.record % 4 == 0],
        now=now)
    order_ids = insert_returning_ids(session, Order.__table__, orders)
    copy_rows(session, OrderLine, [{"order_id": order_id, "product_id": ctx.products[model], "sku": model,
                                    "name": model, "quantity": 1, "unit_price": order["total"]}
                                   for order_id, order, model in zip(order_ids, orders, models, strict=True)])
    copy_rows(session, Vehicle, vehicles)
    out.identities += len(identities)
    out.events += len(events)
    out.orders += len(orders)
    out.vehicles += len(vehicles)
    return truth


# How far the sales history of a person at each life-cycle stage got: lead statuses for those still in
# the lead stage; everyone further along converted their lead into a deal.
OPEN_LEAD_STATUSES = (("sal", 40), ("sql", 30), ("recycled", 10), ("disqualified", 20))
LOST_REASONS = ("price", "competitor", "no_budget", "timing")


def _sales(session: Session, ctx: _Context, rng: random.Random, people: list[tuple[int, _Person]], *,
           now: datetime) -> tuple[int, int]:
    """Leads and deals consistent with each person's events: the first test-drive booking made the lead
    (the demo's lead rule), the dealer's consultant took it within the hour and called within a day; people
    who went on to quote and buy converted it into a deal, won at the order, or still open or lost."""
    leads, changes, deals, deal_people = [], [], [], []
    for profile_id, person in people:
        if person.stage == "prospect":
            continue  # no funnel events, no lead
        at = person.stamps[len(person.stamps) // 3]  # the booking (see the funnel in _chunk)
        assigned = at + timedelta(minutes=rng.randint(2, 50))
        contacted = assigned + timedelta(minutes=rng.randint(10, 36 * 60)) if rng.random() < 0.93 else None
        if person.stage == "lead":
            status = rng.choices([s for s, _ in OPEN_LEAD_STATUSES], [w for _, w in OPEN_LEAD_STATUSES])[0]
        else:
            status = "converted"
        changed = min(now, max(contacted or assigned, assigned) + timedelta(days=rng.randint(1, 20)))
        leads.append({
            "org_id": ctx.org_id, "unit_id": person.dealer.id, "owner_id": person.owner, "profile_id": profile_id,
            "status": status, "source": "web", "source_event": "test_drive_booked", "model_interest": person.model,
            "note": "", "score": rng.randint(10, 90), "inquiries": rng.choice((1, 1, 1, 2, 3)),
            "first_inquiry_at": at, "last_inquiry_at": at, "status_changed_at": changed, "assigned_at": assigned,
            "first_contact_due_at": assigned + timedelta(hours=24), "first_contacted_at": contacted,
            "escalated_at": assigned + timedelta(hours=24) if contacted is None and at < now - timedelta(days=1)
            else None, "disqualify_reason": "not_interested" if status == "disqualified" else None,
            "created_by_id": None, "created_at": at, "updated_at": changed})
        if status == "converted":
            deal_people.append((len(leads) - 1, profile_id, person, changed))
    lead_ids = insert_returning_ids(session, Lead.__table__, leads)
    for lead_id, lead in zip(lead_ids, leads, strict=True):
        base = {"org_id": ctx.org_id, "lead_id": lead_id, "profile_id": lead["profile_id"], "reason": "",
                "actor_id": None, "actor": "", "unit_id": None, "owner_id": None}
        changes.append({**base, "kind": "created", "from_status": None, "to_status": "inquiry",
                        "at": lead["first_inquiry_at"]})
        changes.append({**base, "kind": "assigned", "from_status": None, "to_status": None,
                        "unit_id": lead["unit_id"], "owner_id": lead["owner_id"], "at": lead["assigned_at"]})
        if lead["first_contacted_at"]:
            changes.append({**base, "kind": "contacted", "from_status": None, "to_status": None,
                            "at": lead["first_contacted_at"]})
        changes.append({**base, "kind": "status", "from_status": "inquiry", "to_status": lead["status"],
                        "at": lead["status_changed_at"]})
    copy_rows(session, LeadChange, changes)

    stage_ids = [stage_id for stage_id, _ in ctx.stages]
    probability = dict(ctx.stages)
    history = []
    for index, profile_id, person, opened in deal_people:
        won = person.stage in ("customer", "owner")
        ordered = person.stamps[min(len(person.stamps) // 3 + len(FUNNEL), len(person.stamps) - 1)]
        if won:
            stage, status, closed = stage_ids[-1], "won", max(ordered, opened)
        elif rng.random() < 0.2:
            stage, status, closed = rng.choice(stage_ids[1:5]), "lost", min(now, opened + timedelta(days=30))
        else:
            stage, status, closed = rng.choice(stage_ids[:-1]), "open", None
        entered = closed or min(now, opened + timedelta(days=rng.randint(0, 25)))
        deals.append({
            "org_id": ctx.org_id, "unit_id": person.dealer.id, "owner_id": person.owner,
            "title": f"{person.model} · {person.dealer.city}", "profile_id": profile_id, "account_id": None,
            "distributor_account_id": None, "partner_account_id": None, "lead_id": lead_ids[index],
            "pipeline_id": ctx.pipeline_id, "stage_id": stage, "status": status,
            "probability": 100 if won else 0 if status == "lost" else probability[stage],
            "amount": Decimal(person.price), "currency": "CNY",
            "expected_close_on": (closed or opened + timedelta(days=rng.randint(20, 90))).date(),
            "sales_method": "direct", "source": "web", "influence": None, "competitors": [], "description": "",
            "stage_entered_at": entered, "closed_at": closed,
            "close_reason": rng.choice(LOST_REASONS) if status == "lost" else None, "close_note": "",
            "created_by_id": None, "created_at": opened, "updated_at": entered})
    deal_ids = insert_returning_ids(session, Opportunity.__table__, deals)
    for deal_id, deal in zip(deal_ids, deals, strict=True):
        base = {"org_id": ctx.org_id, "opportunity_id": deal_id, "amount": deal["amount"], "unit_id": deal["unit_id"],
                "owner_id": deal["owner_id"], "reason": "", "actor_id": None, "actor": ""}
        history.append({**base, "kind": "created", "from_stage_id": None, "to_stage_id": stage_ids[0],
                        "status": "open", "probability": probability[stage_ids[0]], "at": deal["created_at"]})
        if deal["stage_id"] != stage_ids[0] or deal["status"] != "open":
            kind = {"won": "won", "lost": "lost"}.get(deal["status"], "stage")
            history.append({**base, "kind": kind, "from_stage_id": stage_ids[0], "to_stage_id": deal["stage_id"],
                            "status": deal["status"], "probability": deal["probability"],
                            "at": deal["stage_entered_at"]})
    copy_rows(session, OpportunityChange, history)
    copy_rows(session, OpportunityLine, [{"opportunity_id": deal_id, "product_id": ctx.products[person.model],
                                          "name": person.model, "quantity": 1, "unit_price": Decimal(person.price)}
                                         for deal_id, (_, _, person, _) in zip(deal_ids, deal_people, strict=True)])
    return len(leads), len(deals)


def _avoid_taken_mobiles(session: Session, ctx: _Context, people: list[_Person], profiles: list[dict]) -> None:
    """Customers already in the organisation (the demo's, another seed's) keep their numbers: a generated
    customer whose mobile is taken gets a fresh one in the 199 block instead."""
    wanted = [p.mobile for p in people if p.mobile]
    refresh_statistics(session, ["identities"])  # grown by the chunks before: the lookup must use its index
    taken = set(session.scalars(select(Identity.value).where(
        Identity.org_id == ctx.org_id, Identity.kind == "mobile",
        one_of(Identity.value, wanted, session.get_bind().dialect.name))))
    for person, row in zip(people, profiles, strict=True):
        if person.mobile and person.mobile in taken:
            person.mobile = row["mobile"] = f"+86199{(person.record * 7919 + ctx.seed * 15485863) % 10**8:08d}"
