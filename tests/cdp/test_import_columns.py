"""A profile file read column by column (``RowReader.read``) and its new people written column by column
(``store_imported``) against the plain reading: hypothesis makes small files full of defects (bad and odd
phones, e-mails, dates, blank and short rows, people twice, people already stored, mappings the columns cannot
hold) and both readings must agree — every row accepted or rejected alike, with the same values and reasons,
and the same customers in the database as when every row goes through the resolver."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from kehu.cdp import imports
from kehu.cdp.identity import PROFILE_FIELDS, trait_time
from kehu.cdp.imported import ImportedColumns, store_imported
from kehu.cdp.models import CustomField, Event, Identity, Profile
from kehu.tenancy import service as tenancy_service
from tests.factories.cdp import make_source

STARTED = datetime(2026, 5, 1, 8, 0, 0, 999_990, tzinfo=UTC)  # rows past the second's end carry into the next
FILENAME = '客户 "100%".csv'  # quotes and a per cent sign: the file's name is written into every event
PHONES = ["13800000001", "13800000002", " 138 0000 0003", "+86 13800000001", "１３８００００００４", "12345",
          "+1 415 555 2671", "", "   "]
EMAILS = ["a@example.com", "A@Example.com ", "b@example.com", "not-an-email", "", "ｃ@example.com"]
NAMES = ["张伟", " 欧阳 娜娜 ", "John  Smith", "王" * 120, "", "\u200b"]
GENDERS = ["男", "女", "F", "unknown", ""]
BIRTHDAYS = ["1990-02-03", "1990/2/3", "1990年2月3日", "1899-12-31", "2999-01-01", "1990-02-30", "19900203", ""]
CITIES = ["上海", "杭州", "市" * 70, ""]
STAGES = ["lead", "customer", "nonsense", ""]
VINS = ["LSVAA4182E2123456", "lsvaa4182e2123456", "BAD", ""]
LEVELS = ["3", "1,200", "x", ""]
TIERS = ["gold", "金卡", "Silver", "silver", "platinum", ""]  # an option's value, its labels, a wrong one
VALUES = {"mobile": PHONES, "email": EMAILS, "name": NAMES, "gender": GENDERS, "birthday": BIRTHDAYS,
          "city": CITIES, "province": CITIES, "lifecycle_stage": STAGES, "identity:vin": VINS,
          "identity:user_id": ["u1", "u2", " ", ""], "attribute:hobby": ["越野", ""], "attribute:source": ["展会", ""],
          "attribute:level": LEVELS, "attribute:tier": TIERS, "attribute:first_name": ["伟", ""],
          "attribute:mobile": PHONES, "address": ["上海市浦东新区碧波路690号", " 北京  朝阳区３号 ", ""],
          "attribute:expires": ["2999-01-01", "1800-01-01", "2031-02-30", ""]}
# Mappings the columns hold, and two they cannot (a trait that is not a plain value; a second mobile column)
TARGETS = ["mobile", "email", "name", "gender", "birthday", "city", "province", "lifecycle_stage", "identity:vin",
           "identity:user_id", "attribute:hobby", "attribute:source", "attribute:level", "attribute:tier", "address",
           "attribute:expires"]
ODD_TARGETS = ["attribute:first_name", "attribute:mobile"]
LEVEL = CustomField(key="level", type="number", label_zh="等级", label_en="Level", options=[], is_pii=False)
TIER = CustomField(key="tier", type="option", label_zh="会员等级", label_en="Tier", is_pii=False,
                   options=[{"value": "gold", "zh": "金卡", "en": "Gold"},
                            {"value": "silver", "zh": "银卡", "en": "Silver"}])
EXPIRES = CustomField(key="expires", type="date", label_zh="到期日", label_en="Expires", options=[], is_pii=False)
FIELDS = {"level": LEVEL, "tier": TIER, "expires": EXPIRES}


@st.composite
def files(draw: st.DrawFn, odd: bool = True) -> tuple[dict[str, str], list[tuple[int, list[str]]]]:
    targets = draw(st.lists(st.sampled_from(TARGETS + (ODD_TARGETS if odd else [])), min_size=1, max_size=8,
                            unique=True))
    if not any(t in ("mobile", "email") or t.startswith("identity:") for t in targets):
        targets.append("mobile")
    mapping = {f"c{i}": target for i, target in enumerate(targets)}
    people = draw(st.lists(st.lists(st.integers(0, 20), min_size=len(targets), max_size=len(targets)),
                           min_size=1, max_size=12))
    rows = []
    for number, picks in enumerate(people, start=2):
        values = [VALUES[target][pick % len(VALUES[target])] for target, pick in zip(targets, picks, strict=True)]
        cut = draw(st.sampled_from([len(values)] * 4 + [0, 1, len(values) + 1]))  # blank, short and long rows
        rows.append((number, values[:cut] + ["extra"] * (cut - len(values))))
    return mapping, rows


def _reader(mapping: dict[str, str]) -> imports.RowReader:
    return imports.RowReader(mapping, FIELDS, list(mapping))


def _one_by_one(reader: imports.RowReader, rows: list[tuple[int, list[str]]]) -> tuple[dict, dict, dict]:
    accepted, rejected, warned = {}, {}, {}
    for number, values in rows:
        try:
            accepted[number], problems = reader.read_row(7, number, values, FILENAME,
                                                         imports.timedelta(microseconds=number) + STARTED)
        except imports.RowRejected as error:
            rejected[number] = error.as_json()
            continue
        if problems:
            warned[number] = imports.RowRejected(problems).as_json()
    return accepted, rejected, warned


@settings(max_examples=300, deadline=None)
@given(files())
def test_reading_by_column_accepts_and_rejects_every_row_as_reading_it_alone(file):  # type: ignore[no-untyped-def]
    mapping, rows = file
    reader = _reader(mapping)
    read = reader.read(7, rows, FILENAME, STARTED)
    accepted, rejected, warned = _one_by_one(reader, rows)
    by_column = {number: read.columns.row(i) for i, number in enumerate(read.columns.numbers)}
    assert {**by_column, **{row.properties["row"]: row for row in read.odd}} == accepted
    assert {number: error.as_json() for number, _, error in read.rejected} == rejected
    assert {number: imports.RowRejected(problems).as_json() for number, _, problems in read.warned} == warned
    assert [number for number, _, _ in read.warned] == sorted(warned)
    assert all(values == dict(rows)[number] for number, values, _ in read.warned)
    assert read.accepted == len(accepted)
    assert all(values == dict(rows)[number] for number, values, _ in read.rejected)
    if reader.by_column:  # only a row with a problem is read alone; the plain mappings are all by column
        assert not read.odd


def _customers(session, org_id: int, source_id: int) -> dict:  # type: ignore[no-untyped-def]
    """Each live customer of the organisation by its identities: what a user sees of it (and when and whether
    the import's source set each trait)."""
    identities = {}
    for kind, value, profile_id in session.execute(select(Identity.kind, Identity.value, Identity.profile_id)
                                                   .where(Identity.org_id == org_id)):
        identities.setdefault(profile_id, set()).add((kind, value))
    events = {}
    for profile_id, identity_id, properties, ts in session.execute(
            select(Event.profile_id, Event.identity_id, Event.properties, Event.ts).where(Event.org_id == org_id)):
        events.setdefault(profile_id, []).append((session.get(Identity, identity_id).kind, ts,
                                                  sorted(properties.items())))
    customers = {}
    for profile in session.scalars(select(Profile).where(Profile.org_id == org_id, Profile.merged_into_id.is_(None))):
        times = {key: {**entry, "src": entry["src"] == source_id} if (entry := trait_time(
            profile, profile.trait_times, key)) else {} for key in (*PROFILE_FIELDS, *profile.attributes)}
        customers[frozenset(identities.get(profile.id, ()))] = (
            {c: getattr(profile, c) for c in (*PROFILE_FIELDS, "name_pinyin", "attributes", "first_seen_at",
                                               "last_seen_at", "owner_id")},
            times, sorted(events.get(profile.id, [])))
    return customers


_orgs = itertools.count(1)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files(odd=False), st.booleans())
def test_new_people_written_by_column_are_the_customers_the_resolver_makes(session, file, stored_before):  # type: ignore[no-untyped-def]
    """The same file into two organisations: by column (new people skip the resolver) and every row through
    the resolver. Some files meet people already stored (the file's first rows, imported before)."""
    mapping, rows = file
    reader = _reader(mapping)
    outcomes = []
    for through_resolver in (False, True):
        org = tenancy_service.create_organization(session, name="O", slug=f"o{next(_orgs)}")
        source, _ = make_source(session, tenancy_service.system_principal(session, org.id), "导入")
        kept = ("key", "type", "label_zh", "label_en", "options")
        session.add_all(CustomField(org_id=org.id, **{key: getattr(field, key) for key in kept})
                        for field in FIELDS.values())
        session.flush()
        batches = [rows[:2], rows] if stored_before else [rows]
        for run_id, batch in enumerate(batches, start=7):  # a file imported again is another run
            read = reader.read(run_id, batch, FILENAME, STARTED)
            columns, odd = read.columns, read.odd
            if through_resolver:
                odd = [*(columns.row(i) for i in range(len(columns.numbers))), *odd]
                columns = ImportedColumns(7, FILENAME, [], [], {}, [])
            store_imported(session, source, columns, odd, received_at=STARTED)
            session.flush()
        outcomes.append(_customers(session, org.id, source.id))
    session.rollback()
    by_column, by_resolver = outcomes
    assert by_column.keys() == by_resolver.keys()
    for identities, (values, times, events) in by_column.items():
        resolved_values, resolved_times, resolved_events = by_resolver[identities]
        assert values == resolved_values, identities
        assert times == resolved_times, identities
        assert events == resolved_events, identities
