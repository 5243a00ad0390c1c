"""An import's profile rows into kehu: the rows that bring a new person and nothing else to resolve are written
column by column through the one writer (``kehu.cdp.writer``), the others are resolved as calls
(``kehu.cdp.identity``)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy.orm import Session

from kehu.cdp import normalise, writer
from kehu.cdp.identity import (
    BORN_WITH,
    IDENTITY_TRAITS,
    NOT_TRAITS,
    STANDARD_TRAITS,
    BatchStats,
    Resolver,
    resolve_calls,
)
from kehu.cdp.identity_rules import rules_for
from kehu.cdp.models import Event, Source
from kehu.core.db import EveryRow, JsonTexts, copy_columns, copy_rows


def import_message_id(run_id: int, number: int) -> str:
    """The message id of row ``number`` of an import run: new by construction, the same if the part runs again."""
    return f"import-{run_id}-{number}"


class ImportedRow(NamedTuple):
    """A validated row of a profile file: its normalised traits (JSON values, dates as ISO text), the
    identities they carry (as ``message_identities`` orders them) and its moment."""

    message_id: str
    ts: datetime
    traits: dict[str, Any]
    identities: list[tuple[str, str]]
    properties: dict[str, Any]

    @classmethod
    def of(cls, run_id: int, number: int, filename: str, ts: datetime, traits: dict[str, Any],
           identities: list[tuple[str, str]]) -> ImportedRow:
        """Row ``number`` of import run ``run_id``: its message id and event properties (``_add_newcomers``
        writes the same as text)."""
        return cls(import_message_id(run_id, number), ts, traits, identities,
                   {"import_id": run_id, "row": number, "file": filename})

    def message(self) -> dict[str, Any]:
        """The identify call the row stands for."""
        user_id = next((value for kind, value in self.identities if kind == "user_id"), None)
        return {"type": "identify", "message_id": self.message_id, "user_id": user_id, "anonymous_id": None,
                "previous_id": None, "group_id": None, "event": "import", "traits": self.traits, "group_traits": {},
                "properties": self.properties, "context": {}, "ts": self.ts.isoformat(), "normalised": True,
                "identities": self.identities}


class ImportedColumns(NamedTuple):
    """Validated rows of a profile file laid out by column, as ``RowReader.read`` gives them: row ``i`` is what
    ``row(i)`` says (the ImportedRow ``RowReader.row`` makes of it). A file's columns hold a million rows'
    values as a few lists, so the common case (new people) is written without an object per row."""

    run_id: int
    filename: str
    numbers: list[int]
    moments: list[datetime]
    traits: dict[str, list[Any]]  # trait → each row's normalised value, None where the row gives none
    identities: list[tuple[str, list[Any]]]  # (kind, each row's value) in the order a call lists them

    def row(self, i: int) -> ImportedRow:
        number = self.numbers[i]
        return ImportedRow.of(self.run_id, number, self.filename, self.moments[i],
                              {trait: values[i] for trait, values in self.traits.items() if values[i] is not None},
                              [(kind, values[i]) for kind, values in self.identities if values[i] is not None])


def store_imported(session: Session, source: Source, columns: ImportedColumns, odd: list[ImportedRow], *,
                   received_at: datetime) -> BatchStats:
    """Profiles and events from the rows of an import, whose message ids are new by construction: ``columns``
    (the rows read by column) and ``odd`` (rows the columns cannot hold, read one by one). A row that brings
    a new person and nothing else to resolve (identities that nobody holds and no other row mentions) becomes
    a profile of its own whatever the order of the rows: such rows skip the resolver and go in column by
    column (what the resolver would have written, at a fraction of its cost: an import's first run is nearly
    all of them). The others are resolved as calls."""
    resolver = Resolver(session, source.org_id, rules_for(session, source.org_id))
    resolver.newcomer_stage = "prospect"
    resolver.stats.messages = len(columns.numbers) + len(odd)
    mentioned: dict[str, list[Any]] = defaultdict(list)
    for kind, values in columns.identities:
        mentioned[kind] += [value for value in values if value is not None]
    for row in odd:
        for kind, value in row.identities:
            mentioned[kind].append(value)
    resolver.preload_values(mentioned)
    held: dict[str, set[Any]] = defaultdict(set)
    for kind, value in resolver.owner:
        held[kind].add(value)
    resolved: set[int] = set()  # rows (by place in the columns) that another row or a stored person touches
    for kind, values in columns.identities:
        taken = held[kind]
        if len(set(mentioned[kind])) < len(mentioned[kind]):  # a value more than one row gives
            taken = taken | {value for value, count in Counter(mentioned[kind]).items() if count > 1}
        if taken:
            resolved.update(i for i, value in enumerate(values) if value in taken)
    rest = [*(columns.row(i) for i in sorted(resolved)), *odd]
    if rest:
        extracted: list[tuple[dict[str, Any], list[Any], list[str]]] = [
            (row.message(), list(row.identities), []) for row in rest]
        copy_rows(session, Event, resolve_calls(resolver, source, extracted, received_at))
    _add_newcomers(resolver, source, columns,
                   None if not resolved else [i for i in range(len(columns.numbers)) if i not in resolved], received_at)
    resolver.stats.events = resolver.stats.messages
    return resolver.stats


def columns_hold(traits: list[str], identity_kinds: list[str]) -> bool:
    """Can ``ImportedColumns`` with these traits (in a file's order) and identity kinds be written by column?
    Not when two traits fill one profile column or give one kind (the row decides which), nor with traits
    that are not plain values (``NOT_TRAITS``): such files are resolved row by row."""
    slots = [STANDARD_TRAITS[trait] for trait in traits if trait in STANDARD_TRAITS]
    return (len(set(traits)) == len(traits) and len(set(slots)) == len(slots)
            and len(set(identity_kinds)) == len(identity_kinds) and NOT_TRAITS.isdisjoint(traits))


def _memoised(convert: Callable[[Any], Any]) -> Callable[[list[Any]], list[Any]]:
    """``convert`` applied to a column, once per distinct value (None stays None)."""
    def column(values: list[Any]) -> list[Any]:
        done: dict[Any, Any] = {None: None}
        return [done[value] if value in done else done.setdefault(value, convert(value)) for value in values]
    return column


_dates, _pinyins = _memoised(date.fromisoformat), _memoised(normalise.pinyin)


def _add_newcomers(resolver: Resolver, source: Source, columns: ImportedColumns, keep: list[int] | None,
                   received_at: datetime) -> None:
    """Write the newcomers' profiles, identities and events column by column, one COPY per table: the rows
    ``keep`` names (all of them if None)."""
    def pick(values: list[Any]) -> list[Any]:
        return values if keep is None else [values[i] for i in keep]

    count = len(columns.numbers) if keep is None else len(keep)
    if not count:
        return
    session = resolver.session
    now, org_id, unit_id, source_id = resolver.now, resolver.org_id, source.unit_id, source.id
    # a newcomer's traits are normalised and carry no composite ones (columns_hold): each is a column, an
    # identity kept as such, or an attribute
    profiles: dict[str, Any] = {"org_id": EveryRow(org_id), "unit_id": EveryRow(unit_id),
                                "source": EveryRow(source.name), "lifecycle_stage": EveryRow(resolver.newcomer_stage)}
    attributes: list[tuple[str, list[Any]]] = []
    for trait, values in columns.traits.items():
        column = STANDARD_TRAITS.get(trait)
        if column is None:
            if trait not in IDENTITY_TRAITS:
                attributes.append((trait, pick(values)))
        elif column in BORN_WITH:
            default = profiles[column].value
            profiles[column] = [default if value is None else value for value in pick(values)]
        else:
            profiles[column] = pick(values)
    if isinstance(profiles.get("birthday"), list):
        profiles["birthday"] = _dates(profiles["birthday"])  # ISO text in the traits, a date in the column
    if isinstance(names := profiles.get("name"), list):
        profiles["name_pinyin"] = _pinyins(names)
    nothing: dict[str, Any] = {}  # attributes and context of the rows that have none: written once, as "{}"
    if attributes:
        keys = [key for key, _ in attributes]
        profiles["attributes"] = [{key: value for key, value in zip(keys, values, strict=True) if value is not None}
                                  for values in zip(*(values for _, values in attributes), strict=True)]
    moments = pick(columns.moments)
    # every trait from this one call: one shared stamp (see trait_time), written as text from the moments'
    # JSON spelling (one orjson call for the part, which writes a moment as isoformat() does)
    stamps: list[Any] = JsonTexts(map(f'{{"*":{{"ts":%s,"src":{source_id}}}}}'.__mod__,
                                      orjson.dumps(moments).decode()[1:-1].split(",")))
    if born_with := BORN_WITH.intersection(columns.traits):  # given by the file: stamped as their own
        stamps = [{"*": {"ts": ts, "src": source_id}} for ts in moments]
        for trait in born_with:
            for stamp, value in zip(stamps, pick(columns.traits[trait]), strict=True):
                if value is not None:
                    stamp[trait] = stamp["*"]
    profiles.update(trait_times=stamps, first_seen_at=moments, last_seen_at=moments)
    profile_ids = writer.write_profiles(session, profiles, now=now)
    kinds: list[str] = []
    values_given: list[Any] = []
    owners: list[int] = []
    seen: list[datetime] = []
    laid_out = []
    for kind, all_values in columns.identities:
        values = pick(all_values)
        given = [i for i, value in enumerate(values) if value is not None]
        kinds += [kind] * len(given)
        values_given += map(values.__getitem__, given)
        owners += map(profile_ids.__getitem__, given)
        seen += map(moments.__getitem__, given)
        laid_out.append((kind, given))
    stored = iter(writer.write_identities(session, org_id, profile_ids=owners, kinds=kinds, values=values_given,
                                          source_ids=EveryRow(source_id), first_seen=seen))
    identity_ids: dict[str, list[Any]] = {}
    for kind, given in laid_out:
        ids: list[Any] = [None] * count
        for i, identity_id in zip(given, stored, strict=False):  # the kind's share of ``stored``
            ids[i] = identity_id
        identity_ids[kind] = ids
    # the event's identity is the call's strongest (the first of equals)
    kinds = [kind for kind, _ in columns.identities]
    ranked = sorted(range(len(kinds)), key=lambda k: (resolver.rules.priority(kinds[k]), k))
    strongest = identity_ids[kinds[ranked[0]]]
    for k in ranked[1:]:
        if None in strongest:
            strongest = [a if a is not None else b for a, b in zip(strongest, identity_ids[kinds[k]], strict=True)]
    run_id, filename = columns.run_id, columns.filename
    numbers = pick(columns.numbers)
    # ImportedRow.of's {"import_id": …, "row": n, "file": …} for each n, as text
    properties = f'{{"import_id":{run_id},"row":%d,"file":' + orjson.dumps(filename).decode().replace("%", "%%") + "}"
    copy_columns(session, Event.__table__, {
        "org_id": EveryRow(org_id), "source_id": EveryRow(source_id),
        "message_id": [import_message_id(run_id, number) for number in numbers], "type": EveryRow("identify"),
        "event": EveryRow("import"), "ts": moments, "received_at": EveryRow(received_at), "identity_id": strongest,
        "profile_id": profile_ids, "properties": JsonTexts(map(properties.__mod__, numbers)),
        "context": EveryRow(nothing)})
    resolver.stats.profiles_created += count
