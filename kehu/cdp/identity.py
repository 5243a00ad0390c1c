"""One ID: resolve the identities of incoming calls to profiles, merge within the rules, unmerge exactly.

A batch is resolved with one query for every identity it mentions and one for the identities of the
profiles those point at; merges re-point events with one set-based UPDATE per merge; events are appended
with one multi-row INSERT that skips message ids already stored.

New profiles and identities are written by ``kehu.cdp.writer`` (as an import's newcomers are, by
``kehu.cdp.imported``).

Over 600 lines: resolving, merging and unmerging share the batch's lookups and the rules of what may merge; the
inbox's drain is what to move out next.
"""

from __future__ import annotations

import itertools
import operator
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kehu.cdp import commerce, fields, normalise, relations, writer
from kehu.cdp.identity_rules import Rules, rules_for
from kehu.cdp.manifest import MERGE_UNDONE, PROFILE_MERGED
from kehu.cdp.models import Event, Identity, IngestBatch, Merge, Profile, Source
from kehu.cdp.writer import PROFILE_COLUMNS
from kehu.core import audit, events, jobs
from kehu.core.db import (
    insert_ignoring_conflicts,
    lost_a_race,
    one_of,
    profile_linked_models,
    refresh_statistics,
    utcnow,
)

# Traits that carry an identity, and the kind they become.
IDENTITY_TRAITS = {
    "phone": "mobile", "mobile": "mobile", "email": "email", "wechat_openid": "wechat_openid",
    "wechatOpenId": "wechat_openid", "wechat_unionid": "wechat_unionid", "wechatUnionId": "wechat_unionid",
    "vin": "vin", "dealer_customer_no": "dealer_customer_no", "dealerCustomerNo": "dealer_customer_no",
    "push_token": "push_token", "pushToken": "push_token",  # the app's push registration id (channels: push)
}
# Trait names (Segment's reserved traits and our own) that map onto profile columns.
STANDARD_TRAITS = {
    "name": "name", "gender": "gender", "birthday": "birthday", "phone": "mobile", "mobile": "mobile",
    "email": "email", "province": "province", "state": "province", "city": "city", "source": "source",
    "lifecycle_stage": "lifecycle_stage", "lifecycleStage": "lifecycle_stage", "address": "address",
    "postcode": "postcode", "postalCode": "postcode", "postal_code": "postcode", "zip": "postcode",
}
PROFILE_FIELDS = ("name", "gender", "birthday", "mobile", "email", "province", "city", "address", "postcode",
                  "source", "lifecycle_stage")
LIFECYCLE_STAGES = ("visitor", "prospect", "lead", "opportunity", "customer", "owner", "churned")


@dataclass
class BatchStats:
    messages: int = 0
    events: int = 0
    duplicates: int = 0
    profiles_created: int = 0
    merges: int = 0
    dropped_identities: list[str] = field(default_factory=list)


def message_identities(message: dict[str, Any]) -> tuple[list[tuple[str, str]], list[str]]:
    """(kind, normalised value) pairs a call carries, and notes on values that could not be used."""
    trusted = message.get("normalised", False)  # set by imports, which normalised every value already
    if trusted and "identities" in message:
        return message["identities"], []  # an import's row lists them, in this function's order
    pairs: list[tuple[str, str]] = []
    notes: list[str] = []
    if message.get("user_id"):
        pairs.append(("user_id", message["user_id"]))
    if message.get("anonymous_id"):
        pairs.append(("anonymous_id", message["anonymous_id"]))
    traits = message.get("traits") or {}
    for trait, kind in IDENTITY_TRAITS.items():
        raw = traits.get(trait)
        if raw is None or raw == "":
            continue
        try:
            pairs.append((kind, raw if trusted else normalise.identity_value(kind, raw)))
        except normalise.InvalidValue as error:
            notes.append(f"{trait}: {error}")
    return list(dict.fromkeys(pairs)), notes


_profile_values = operator.attrgetter(*PROFILE_COLUMNS)  # all of a NewProfile's columns in one C call


class NewProfile:
    """A profile born in this batch, not yet written: a plain object, because an ORM instance costs ~70 µs to
    build and another ~50 µs to flush, and imports make millions. ``Resolver.write_pending`` turns it into a
    row; if the batch must touch it again through the ORM (a merge), it is swapped for the loaded row."""

    __slots__ = ("id", *PROFILE_COLUMNS)

    def __init__(self, **values: Any) -> None:
        self.id: int | None = None
        for key in PROFILE_COLUMNS:
            setattr(self, key, values.get(key))


class Resolver:
    """Resolution state for one batch of one organisation, held in memory: identity → profile and
    profile → identities. New profiles and identities stay pending until ``write_pending`` inserts them
    with one multi-row INSERT per table (Core, not the ORM's unit of work, which costs ten times more per
    row); only a merge, which needs real ids, writes early."""

    def __init__(self, session: Session, org_id: int, rules: Rules) -> None:
        self.session = session
        self.org_id = org_id
        self.rules = rules
        self.identities: dict[tuple[str, str], int] = {}  # pair → id, once written
        self.owner: dict[tuple[str, str], Profile] = {}
        self.held: dict[Profile, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.stats = BatchStats()
        self.new_profiles: list[NewProfile] = []
        self.new_identities: list[tuple[Any, str, str, int, datetime]] = []
        self.swapped: dict[int, Profile] = {}  # id(NewProfile) → its loaded row, after an early write
        self.now = utcnow()  # the batch's moment: rows it creates share it
        # where a person this batch discovers starts: an anonymous visitor for the streams; someone an import
        # names (a mobile, an e-mail: a dealer's or the call centre's list) is a prospect
        self.newcomer_stage = "visitor"

    def preload(self, pairs: set[tuple[str, str]]) -> None:
        """One query for the identities the batch mentions, one for their profiles, one for all they hold."""
        by_kind: dict[str, list[str]] = defaultdict(list)
        for kind, value in pairs:
            by_kind[kind].append(value)
        self.preload_values(by_kind)

    def preload_values(self, by_kind: dict[str, list[str]]) -> None:
        """``preload`` of the values of each kind (repeats allowed)."""
        by_kind = {kind: list(dict.fromkeys(values)) for kind, values in by_kind.items() if values}
        if not by_kind:
            return
        owners: dict[tuple[str, str], int] = {}
        dialect = self.session.get_bind().dialect.name
        for kind, values in by_kind.items():  # (org_id, kind, value IN …) walks the unique index
            for start in range(0, len(values), 1000):
                rows = self.session.execute(
                    select(Identity.id, Identity.value, Identity.profile_id).where(
                        Identity.org_id == self.org_id, Identity.kind == kind,
                        one_of(Identity.value, values[start:start + 1000], dialect)))
                for identity_id, value, profile_id in rows:
                    self.identities[(kind, value)] = identity_id
                    owners[(kind, value)] = profile_id
        profile_ids = set(owners.values())
        if not profile_ids:
            return
        ids = list(profile_ids)
        profiles = {p.id: p for p in self.session.scalars(select(Profile).where(one_of(Profile.id, ids, dialect)))}
        for pair, profile_id in owners.items():
            self.owner[pair] = profiles[profile_id]
        for kind, value, profile_id in self.session.execute(
            select(Identity.kind, Identity.value, Identity.profile_id).where(one_of(Identity.profile_id, ids, dialect))
        ):
            self.held[profiles[profile_id]][kind].add(value)

    def can_take(self, profile: Profile, pairs: list[tuple[str, str]]) -> bool:
        """Would the profile stay within every kind's limit after taking these identities?"""
        adding: dict[str, set[str]] = defaultdict(set)
        for kind, value in pairs:
            if value not in self.held[profile][kind]:
                adding[kind].add(value)
        return all(len(self.held[profile][k]) + len(v) <= self.rules.limit(k) for k, v in adding.items())

    def resolve(self, pairs: list[tuple[str, str]], *, source: Source,
                ts: datetime) -> tuple[Profile, tuple[str, str]]:
        """The profile a call belongs to, and the identity that produced it (the strongest one it carries)."""
        owner_of = self.owner.get
        if pairs and not any(owner_of(pair) for pair in pairs) and len({k for k, _ in pairs}) == len(pairs):
            # Nobody holds any of these, one value per kind (a first import, a new visitor): a new profile
            # takes them all; every kind's limit is at least one, so there is nothing to weigh.
            newcomer = self._new_profile(source, ts)
            for kind, value in pairs:
                self._attach(newcomer, kind, value, source, ts)
            return newcomer, min(pairs, key=lambda p: self.rules.priority(p[0]))
        ordered = sorted(pairs, key=lambda p: self.rules.priority(p[0]))
        anchor: Profile | None = None
        unknown: list[tuple[str, str]] = []
        for pair in ordered:
            owner = self.owner.get(pair)
            if owner is None:
                unknown.append(pair)
            elif anchor is None:
                if self.can_take(owner, unknown):
                    anchor = owner
                # else: a stronger identity of this call conflicts with that profile (shared device): leave it
            elif owner is not anchor:
                held = [(k, v) for k, values in self.held[owner].items() for v in values]
                if self.can_take(anchor, held):
                    self.merge(anchor, owner, reason="identity",
                               detail=f"{pair[0]} {pair[1]} seen together with a stronger identity")
                    anchor = self.current(anchor)
        if anchor is None:
            anchor = self._new_profile(source, ts)
        for kind, value in unknown:
            if self.can_take(anchor, [(kind, value)]):
                self._attach(anchor, kind, value, source, ts)
            else:
                self.stats.dropped_identities.append(f"{kind}={value}")
        produced = next((p for p in ordered if self.owner.get(p) is anchor), None)
        if produced is None:  # every identity of the call went elsewhere: record it on the anchor's strongest
            produced = min(((k, v) for k, vs in self.held[anchor].items() for v in vs),
                           key=lambda p: self.rules.priority(p[0]))
        return anchor, produced

    def identity_id(self, pair: tuple[str, str]) -> int:
        """After ``write_pending``: the id of the identity row for ``pair``."""
        return self.identities[pair]

    def current(self, profile: Any) -> Any:
        """The object that stands for ``profile`` now (a NewProfile written early is replaced by its row)."""
        return self.swapped.get(id(profile), profile)

    def _new_profile(self, source: Source, ts: datetime) -> Any:
        now = self.now
        profile = NewProfile(org_id=self.org_id, unit_id=source.unit_id, owner_id=None, attributes={},
                             trait_times={}, first_seen_at=ts, last_seen_at=ts, source=source.name,
                             lifecycle_stage=self.newcomer_stage, created_at=now, updated_at=now)
        self.new_profiles.append(profile)
        self.held[profile] = defaultdict(set)
        self.stats.profiles_created += 1
        return profile

    def _attach(self, profile: Profile, kind: str, value: str, source: Source, ts: datetime) -> None:
        self.new_identities.append((profile, kind, value, source.id, ts))
        self.owner[(kind, value)] = profile
        self.held[profile][kind].add(value)

    def write_pending(self, *, final: bool = False) -> None:
        """Insert the new profiles (as they are now) and identities. Unless this is the batch's last write,
        the new profiles are then loaded as ORM rows and take their NewProfile's place, so that what the
        batch still does to them (a merge, later traits) reaches the database as ordinary UPDATEs."""
        written = self.new_profiles
        if written:
            laid_out = zip(*map(_profile_values, written), strict=True)
            ids = writer.write_profiles(self.session, dict(zip(PROFILE_COLUMNS, map(list, laid_out), strict=True)))
            for profile, profile_id in zip(written, ids, strict=True):
                profile.id = profile_id
            self.new_profiles = []
        if self.new_identities:
            owners, kinds, values, sources, moments = (list(c) for c in zip(*self.new_identities, strict=True))
            ids = writer.write_identities(self.session, self.org_id, profile_ids=[p.id for p in owners],
                                          kinds=kinds, values=values, source_ids=sources, first_seen=moments)
            self.identities.update(zip(zip(kinds, values, strict=True), ids, strict=True))
            self.new_identities = []
        if written and not final:
            loaded = {p.id: p for p in self.session.scalars(select(Profile).where(
                Profile.id.in_([p.id for p in written])))}
            for new in written:
                row = loaded[new.id]
                self.swapped[id(new)] = row
                if new in self.held:
                    self.held[row] = self.held.pop(new)
            for pair, owner in self.owner.items():
                if id(owner) in self.swapped:
                    self.owner[pair] = self.swapped[id(owner)]

    def merge(self, winner: Profile, loser: Profile, *, reason: str, detail: str,
              actor: audit.Actor | None = None) -> Merge:
        self.write_pending()  # the merge moves rows by id: pending profiles and identities get theirs now
        winner, loser = self.current(winner), self.current(loser)
        self.session.flush()
        merge = merge_profiles(self.session, winner, loser, reason=reason, detail=detail, actor=actor)
        for kind, values in self.held.pop(loser, {}).items():
            self.held[winner][kind] |= values
            for value in values:
                self.owner[(kind, value)] = winner
        self.stats.merges += 1
        return merge


# -- merges ------------------------------------------------------------------------------------------
# Domains to the right (sales …) tidy their own rows after a merge (two open leads of one person become one) and
# undo that on unmerge, subscribed within the merge's transaction to its event (cdp/manifest.py); they write what
# they did into the merge record's ``moved`` to find it again.


def merge_profiles(session: Session, winner: Profile, loser: Profile, *, reason: str, detail: str = "",
                   actor: audit.Actor | None = None, kept: bool = False,
                   choices: dict[str, str] | None = None) -> Merge:
    """Fold ``loser`` into ``winner``: identities, events and linked rows move (recorded), the loser stays as a
    tombstone pointing at the winner. Traits combine by last-write-wins for merges the streams make; ``kept``
    (a person chose the record to keep) keeps the winner's values, as Salesforce and Dynamics do, filling
    only what it lacks and taking the further life-cycle stage, and ``choices`` ({field: "winner"|"loser"})
    are the person's picks field by field."""
    session.flush()
    moved_identities = list(session.scalars(select(Identity.id).where(Identity.profile_id == loser.id)))
    session.execute(update(Identity).where(Identity.id.in_(moved_identities)).values(profile_id=winner.id)
                    .execution_options(synchronize_session=False))
    if moved_identities:
        # An identity's events sit on the profile holding it (here the loser): found by its profile index.
        session.execute(update(Event).where(Event.org_id == winner.org_id, Event.profile_id == loser.id,
                                            Event.identity_id.in_(moved_identities))
                        .values(profile_id=winner.id).execution_options(synchronize_session=False))
    linked: dict[str, list[int]] = {}
    for model in profile_linked_models():
        ids = list(session.scalars(select(model.id).where(model.profile_id == loser.id)))
        if ids:
            session.execute(update(model).where(model.id.in_(ids)).values(profile_id=winner.id)
                            .execution_options(synchronize_session=False))
            linked[model.__tablename__] = ids
    taken = combine_traits(winner, loser, kept=kept, choices=choices)
    winner.first_seen_at = min(filter(None, [winner.first_seen_at, loser.first_seen_at]), default=None)
    winner.last_seen_at = max(filter(None, [winner.last_seen_at, loser.last_seen_at]), default=None)
    loser.merged_into_id = winner.id
    record = Merge(org_id=winner.org_id, winner_id=winner.id, loser_id=loser.id, reason=reason, detail=detail,
                   moved={"identities": moved_identities, "linked": linked}, winner_before=taken,
                   created_by_id=actor.user_id if actor else None)
    session.add(record)
    session.flush()
    events.publish(session, PROFILE_MERGED, org_id=winner.org_id, entity=Merge.__tablename__, entity_id=record.id,
                   profile_id=winner.id, loser_id=loser.id, reason=reason)
    audit.record(session, actor, org_id=winner.org_id, unit_id=winner.unit_id, action="merge", entity="profiles",
                 entity_id=winner.id, before={"loser_id": loser.id},
                 after={"merge_id": record.id, "identities": len(moved_identities), "reason": reason},
                 summary=f"Profile {loser.id} merged into {winner.id} ({reason})")
    return record


def further(stage: Any, than: Any) -> bool:
    """A life-cycle stage further along than another (churned counts as an owner's; unknown ones as none)."""
    order = {s: n for n, s in enumerate(LIFECYCLE_STAGES)} | {"churned": LIFECYCLE_STAGES.index("owner")}
    return order.get(stage, -1) > order.get(than, -1)


def combine_traits(winner: Profile, loser: Profile, *, kept: bool = False,
                   choices: dict[str, str] | None = None) -> dict[str, Any]:
    """Take from the loser what the winner lacks or what the loser learnt later (``kept``: only what the winner
    lacks, and a further life-cycle stage; ``choices``: what the person picked). Returns, per taken field,
    the winner's previous value and the value taken, so an unmerge can put back what nobody changed since."""
    choices = choices or {}
    taken: dict[str, Any] = {}
    winner_times = dict(winner.trait_times or {})
    attributes = dict(winner.attributes or {})
    for key in {*PROFILE_FIELDS, *(loser.attributes or {})}:
        is_column = key in PROFILE_FIELDS
        loser_value = getattr(loser, key) if is_column else (loser.attributes or {}).get(key)
        if loser_value in (None, ""):
            continue
        winner_value = getattr(winner, key) if is_column else attributes.get(key)
        loser_entry = trait_time(loser, loser.trait_times or {}, key)
        loser_ts = loser_entry.get("ts", "")
        winner_ts = trait_time(winner, winner_times, key).get("ts", "")
        if key in choices:
            take = choices[key] == "loser"
        elif kept:
            take = winner_value in (None, "") or (key == "lifecycle_stage" and further(loser_value, winner_value))
        else:
            take = winner_value in (None, "", "visitor") or bool(loser_ts and loser_ts > winner_ts)
        if take:
            if winner_value == loser_value:
                continue
            taken[key] = {"before": _plain(winner_value), "taken": _plain(loser_value)}
            if is_column:
                setattr(winner, key, loser_value)
            else:
                attributes[key] = loser_value
            if loser_entry:
                winner_times[key] = loser_entry
    if "name" in taken:
        winner.name_pinyin = normalise.pinyin(winner.name)
    winner.attributes = attributes
    winner.trait_times = winner_times
    return taken


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def unmerge(session: Session, merge: Merge, *, actor: audit.Actor | None = None) -> Profile:
    """Undo one merge exactly: identities, their events and linked rows go back; the loser lives again."""
    from kehu.core.errors import Conflict

    if merge.undone_at is not None:
        raise Conflict("This merge was already undone.")
    winner = session.get(Profile, merge.winner_id)
    loser = session.get(Profile, merge.loser_id)
    assert winner is not None and loser is not None
    if winner.merged_into_id is not None:
        raise Conflict(f"Profile {winner.id} was itself merged into {winner.merged_into_id} later; undo that "
                       "merge first.")
    identity_ids = list(merge.moved.get("identities", []))
    if identity_ids:
        session.execute(update(Identity).where(Identity.id.in_(identity_ids), Identity.profile_id == winner.id)
                        .values(profile_id=loser.id).execution_options(synchronize_session=False))
        session.execute(update(Event).where(Event.org_id == merge.org_id, Event.profile_id == winner.id,
                                            Event.identity_id.in_(identity_ids))
                        .values(profile_id=loser.id).execution_options(synchronize_session=False))
    by_table = {m.__tablename__: m for m in profile_linked_models()}
    for table, ids in (merge.moved.get("linked") or {}).items():
        model = by_table.get(table)
        if model is not None and ids:
            session.execute(update(model).where(model.id.in_(ids), model.profile_id == winner.id)
                            .values(profile_id=loser.id).execution_options(synchronize_session=False))
    attributes = dict(winner.attributes or {})
    for key, change in (merge.winner_before or {}).items():
        is_column = key in PROFILE_FIELDS
        current = getattr(winner, key) if is_column else attributes.get(key)
        if _plain(current) != change["taken"]:
            continue  # changed since the merge: the newer value stays
        before = change["before"]
        if is_column:
            if key == "birthday" and isinstance(before, str):
                before = datetime.fromisoformat(before).date()
            setattr(winner, key, before)
        elif before is None:
            attributes.pop(key, None)
        else:
            attributes[key] = before
    winner.attributes = attributes
    winner.name_pinyin = normalise.pinyin(winner.name)
    loser.merged_into_id = None
    events.publish(session, MERGE_UNDONE, org_id=merge.org_id, entity=Merge.__tablename__, entity_id=merge.id,
                   profile_id=winner.id, restored_id=loser.id, reason=merge.reason)
    merge.undone_at = utcnow()
    merge.undone_by_id = actor.user_id if actor else None
    session.flush()
    audit.record(session, actor, org_id=merge.org_id, unit_id=winner.unit_id, action="unmerge", entity="profiles",
                 entity_id=winner.id, after={"merge_id": merge.id, "restored_profile_id": loser.id},
                 summary=f"Merge {merge.id} undone: profile {loser.id} restored from {winner.id}")
    return loser


# -- traits ----------------------------------------------------------------------------------------
def apply_traits(profile: Profile, traits: dict[str, Any], *, ts: datetime, source_id: int | None,
                 defined: dict[str, Any] | None = None, normalised: bool = False) -> list[str]:
    """Set traits by last-write-wins on event time; returns notes on values that were refused. Traits that
    are custom fields are coerced to their type; ``normalised`` values (from an import's validation) are
    taken as they are."""
    notes: list[str] = []
    if not traits:
        return notes
    times = dict(profile.trait_times or {})
    attributes = dict(profile.attributes or {})
    stamp = ts.isoformat()
    for key, column, value in _trait_targets(traits):
        target = column or key
        if trait_time(profile, times, target).get("ts", "") > stamp:
            continue  # a later call already set it: late events do not overwrite
        try:
            if normalised:
                clean = value if column != "birthday" else date.fromisoformat(value)
            elif column:
                clean = _clean(column, value)
            elif defined and key in defined:
                clean = fields.coerce(defined[key], value)
            else:
                clean = value
        except normalise.InvalidValue as error:
            notes.append(f"{key}: {error}")
            continue
        if column:
            setattr(profile, column, clean)
            if column == "name":
                profile.name_pinyin = normalise.pinyin(clean)
        else:
            attributes[target] = clean
        times[target] = {"ts": stamp, "src": source_id}
    profile.attributes = attributes
    profile.trait_times = times
    return notes


BORN_WITH = frozenset(("source", "lifecycle_stage"))  # what _new_profile sets before any trait


def trait_time(profile: Any, times: dict[str, Any], key: str) -> dict[str, Any]:
    """When and from which source the profile's ``key`` was set ({} if unknown). Traits a profile was born
    with share one entry, ``"*"`` (an import's million new profiles then carry one stamp each, not one per
    trait); it stands for every trait the profile holds that has no entry of its own, but for the two columns a
    new profile holds without being given them (``BORN_WITH``): those have their own entry when given."""
    entry = times.get(key)
    if entry is None and "*" in times and key not in BORN_WITH:
        held = getattr(profile, key) if key in PROFILE_FIELDS else (profile.attributes or {}).get(key)
        if held not in (None, ""):
            return times["*"]
    return entry or {}


NOT_TRAITS = frozenset(("firstName", "lastName", "first_name", "last_name", "consent"))


def _trait_targets(traits: dict[str, Any]) -> Iterator[tuple[str, str | None, Any]]:
    """(trait, profile column or None for an attribute, value) for each trait a call sets: first and last
    names make the name; an address is text, or Segment's {street, city, state, postalCode, …}, whose street
    is the address, whose state and city are the province and city and whose postalCode is the postcode;
    consent and identities are kept elsewhere."""
    combined = traits
    first, last = traits.get("firstName") or traits.get("first_name"), traits.get("lastName") or traits.get("last_name")
    address = traits.get("address")
    if ((first or last) and not traits.get("name")) or isinstance(address, dict):
        combined = dict(traits)
        if not combined.get("name") and (first or last):
            combined["name"] = f"{last or ''}{first or ''}" if _cjk(f"{last}{first}") else \
                f"{first or ''} {last or ''}"
        if isinstance(address, dict):
            combined.setdefault("province", address.get("state") or address.get("province"))
            combined.setdefault("city", address.get("city"))
            combined["address"] = address.get("street") or None
            if address.get("postalCode") or address.get("postal_code"):
                combined.setdefault("postcode", address.get("postalCode") or address.get("postal_code"))
    for key, value in combined.items():
        if key in NOT_TRAITS or value is None:
            continue  # consent becomes consent records, not a trait
        if key in IDENTITY_TRAITS and key not in STANDARD_TRAITS:
            continue  # an identity (VIN, openid, dealer number…), kept as such, not copied into attributes
        yield key, STANDARD_TRAITS.get(key), value


def _clean(column: str, value: Any) -> Any:
    if column == "mobile":
        return normalise.phone(value)
    if column == "email":
        return normalise.email(value)
    if column == "name":
        cleaned = normalise.name(value)
        if not cleaned:
            raise normalise.InvalidValue("empty", kind="name")
        return cleaned[:100]
    if column == "birthday":
        return normalise.birthday(value)
    if column == "gender":
        return normalise.gender(value)
    if column == "lifecycle_stage":
        if value not in LIFECYCLE_STAGES:
            raise normalise.InvalidValue("stage_unknown", value=value, allowed=", ".join(LIFECYCLE_STAGES))
        return value
    if column == "address":
        return normalise.address(value)
    if column == "postcode":
        return normalise.postcode(value)
    return str(value).strip()[:100]


def _cjk(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


# -- processing the inbox ------------------------------------------------------------------------------
def process_batch(session: Session, batch: IngestBatch) -> BatchStats:
    """Resolve, merge, set traits and append the events of one inbox batch, in the caller's transaction."""
    source = session.get(Source, batch.source_id)
    assert source is not None
    stats = process_messages(session, source, list(batch.messages), received_at=batch.received_at)
    batch.status, batch.processed_at = "processed", utcnow()
    session.flush()
    return stats


# Small batches (a browser sends ten or twenty calls at a time) are processed several at once, as one: what a batch
# costs apart from its calls (its claim, source and rules, a lookup of identities, the profiles' updates, the
# consumers woken, a commit) was three quarters of a worker's time, and a third of the database's, under live
# traffic of such batches.
TOGETHER_MESSAGES = 500


def process_batches(session: Session, batches: list[IngestBatch]) -> None:
    """Several inbox batches as one, in the caller's transaction: each run of one source's batches resolved
    together in time order (as one batch of their calls would be), each event keeping its own batch's
    ``received_at``."""
    # neighbours of one source together, in the inbox's order: calls of several sources meet in one order (a
    # dealer's order_placed, then the web's order_paid for it) only as they arrived
    for source_id, grouped in itertools.groupby(batches, key=lambda batch: batch.source_id):
        group = list(grouped)
        source = session.get(Source, source_id)
        assert source is not None
        messages = [{**message, "_received_at": batch.received_at} for batch in group for message in batch.messages]
        process_messages(session, source, messages, received_at=group[0].received_at)
    now = utcnow()
    for batch in batches:
        batch.status, batch.processed_at = "processed", now
    session.flush()


def process_messages(session: Session, source: Source, messages: list[dict[str, Any]], *,
                     received_at: datetime) -> BatchStats:
    """The one path from validated calls to profiles and events (ingestion, order imports; a profile
    import's rows take ``store_imported``, which ends here for the rows that need resolving)."""
    resolver = Resolver(session, source.org_id, rules_for(session, source.org_id))
    resolver.stats.messages = len(messages)
    # A messageId already stored is skipped by the INSERT below (ON CONFLICT DO NOTHING); resolving its
    # identities and traits again changes nothing, so no lookup of stored ids is needed here.
    seen: set[str] = set()
    extracted = []
    for message in messages:
        if message["message_id"] in seen:
            resolver.stats.duplicates += 1
            continue
        seen.add(message["message_id"])
        pairs, notes = message_identities(message)
        if message["type"] == "alias" and message.get("previous_id"):
            pairs.append(("anonymous_id", message["previous_id"]))
        extracted.append((message, pairs, notes))
    mentioned = Counter(p for _, pairs, _ in extracted for p in pairs)
    mentioned.update(("user_id", m["previous_id"]) for m, _, _ in extracted if m.get("previous_id"))
    resolver.preload(set(mentioned))
    rows = resolve_calls(resolver, source, extracted, received_at)
    inserted = insert_ignoring_conflicts(session, Event, rows, ["source_id", "message_id"])
    resolver.stats.events = inserted
    resolver.stats.duplicates += len(rows) - inserted
    return resolver.stats


def resolve_calls(resolver: Resolver, source: Source, extracted: list[tuple[dict[str, Any], list[Any], list[str]]],
             received_at: datetime) -> list[dict[str, Any]]:
    """Resolve (message, identities, notes) in time order after ``preload``: profiles, merges, traits,
    consent, accounts and orders written; the rows of their events returned."""
    session = resolver.session
    defined = fields.definitions(session, source.org_id)
    resolved = []
    with session.no_autoflush:  # one flush for the whole batch, not one per call
        for message, pairs, notes in sorted(extracted, key=lambda e: e[0]["ts"]):
            ts = datetime.fromisoformat(message["ts"])
            if message["type"] == "alias" and ("user_id", message["previous_id"]) in resolver.owner:
                pairs = [*pairs, ("user_id", message["previous_id"])]
            profile, produced = resolver.resolve(pairs, source=source, ts=ts)
            profile = resolver.current(profile)
            notes += apply_traits(profile, message.get("traits") or {}, ts=ts, source_id=source.id,
                                  defined=defined, normalised=message.get("normalised", False))
            if profile.last_seen_at is None or ts > profile.last_seen_at:
                profile.last_seen_at = ts
            if profile.first_seen_at is None or ts < profile.first_seen_at:
                profile.first_seen_at = ts
            resolved.append((message, ts, profile, produced, notes))
    resolver.write_pending(final=True)
    session.flush()
    consent_rows: list[dict[str, Any]] = []
    group_links: list[tuple[str, dict[str, Any], Profile]] = []
    for message, ts, profile, produced, notes in resolved:
        owner = resolver.owner.get(produced, profile)
        given, consent_notes = relations.consent_rows_from_traits(
            message.get("traits") or {}, org_id=source.org_id, profile_id=owner.id, ts=ts, source=source,
            message_id=message["message_id"])
        consent_rows += given
        notes += consent_notes
        if message["type"] == "group" and message.get("group_id"):
            group_links.append((message["group_id"], dict(message.get("group_traits") or {}), owner))
    relations.store_consents(session, consent_rows)
    relations.link_groups(session, source, group_links)
    order_notes = commerce.orders_from_calls(
        session, source, [(m, ts, resolver.owner.get(produced, profile)) for m, ts, profile, produced, _ in resolved])
    resolver.stats.dropped_identities += order_notes
    rows = []
    for message, ts, profile, produced, notes in resolved:
        properties = dict(message.get("properties") or {})
        if message["type"] == "group":
            properties = {**properties, "group_id": message["group_id"], "group_traits": message["group_traits"]}
        context = dict(message.get("context") or {})
        if notes:
            context["kehu_notes"] = notes
        # A profile merged later in the same batch: the event belongs to where its identity lives now.
        owner = resolver.owner.get(produced, profile)
        rows.append({"org_id": source.org_id, "source_id": source.id, "message_id": message["message_id"],
                     "type": message["type"], "event": str(message["event"])[:200], "ts": ts,
                     "received_at": message.get("_received_at", received_at),
                     "identity_id": resolver.identity_id(produced),
                     "profile_id": owner.id, "properties": properties, "context": context})
    return rows


def drain_inbox(session: Session, *, limit: int = 20) -> int:
    """Process the oldest pending batches, as many of the first ``limit`` as make ``TOGETHER_MESSAGES`` calls (at
    least one), and return how many; rows another worker holds are skipped.

    Several are processed together (``process_batches``) in one savepoint; should that fail, the oldest runs
    alone, in a savepoint of its own, and the others in the calls that follow: a batch that collides with a
    concurrent worker (same new identity) is left pending and tried again; one that keeps failing is set aside as
    ``failed`` with its error, so a single bad batch never blocks the inbox and nothing is thrown away.

    The inbox is a queue of its own table rather than jobs, but claims and gives up as jobs do (core/jobs.py:
    ``unclaimed``, ``gives_up``): a batch is claimed by its row lock for the one short transaction that
    processes it, so it needs no lease (a job's lease costs two more writes per item, and the inbox takes one
    row per /v1 request)."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    batches = list(session.scalars(jobs.unclaimed(select(IngestBatch).where(IngestBatch.status == "pending")
                                                  .order_by(IngestBatch.id).limit(limit), session)))
    if not batches:
        return 0
    refresh_statistics(session, ["identities"])  # what resolution looks up by value
    # the oldest batches, as many as make TOGETHER_MESSAGES calls at most (one, however big): one transaction never
    # holds more, as the profiles' row locks would be held longer (two workers deadlock over long ones)
    together: list[IngestBatch] = []
    calls = 0
    for batch in batches:
        calls += len(batch.messages)
        if together and calls > TOGETHER_MESSAGES:
            break
        together.append(batch)
    if len(together) > 1:
        try:
            with session.begin_nested():
                process_batches(session, together)
            return len(together)
        except Exception:  # one of them is at fault, or a concurrent worker: the oldest alone now, the rest later
            session.expire_all()
            together = together[:1]
    batch = together[0]
    batch_id = batch.id
    try:
        with session.begin_nested():
            process_batch(session, batch)
    except Exception as error:
        # A collision raised by COPY comes from the driver itself, not wrapped by SQLAlchemy.
        _note_failure(session, batch_id, error,
                      retry=isinstance(error, IntegrityError | OperationalError) or lost_a_race(error))
    return 1


def _note_failure(session: Session, batch_id: int, error: Exception, *, retry: bool) -> None:
    import structlog

    session.expire_all()
    batch = session.get(IngestBatch, batch_id)
    assert batch is not None
    batch.attempts += 1
    batch.error = f"{type(error).__name__}: {error}"[:4000]
    if jobs.gives_up(batch.attempts, retryable=retry):
        batch.status = "failed"
    structlog.get_logger("kehu.ingest").warning("inbox batch failed", batch_id=batch_id, status=batch.status,
                                                attempts=batch.attempts, error=batch.error.split("\n")[0][:300])
    session.flush()
