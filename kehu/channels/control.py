"""Communication control (适当性管理): who may receive what, when, and how often — decided in SQL for a whole send
before anything leaves, every skipped message keeping its reason.

- **Consent** per channel and purpose (the latest record wins): marketing needs a grant; service messages go
  unless consent was withdrawn; transactional ones (an order confirmation, a test send) need none.
- **Suppression**: an unsubscribed or complaining address gets no marketing; a hard bounce or an invalid number
  gets nothing on that channel.
- **Frequency caps** on marketing, per channel and across channels (``all``), in the last 24 hours and the last
  7 days (rolling, so a burst at midnight cannot double a day's allowance). Messages queued, paused, sending
  or sent count; skipped, cancelled and failed ones do not.
- **Quiet hours** in the organisation's time zone (21:00–09:00 unless the policy says otherwise): marketing and
  service messages made then wait for the next opening; transactional ones go at once.
- **One per person per send**: a unique key per (send, customer), and one per address within a send (two
  records sharing a mobile get one message: the oldest record that may receive it).

A unit's policy may tighten what the units above it set, never loosen it: a cap is the lowest along the unit's
path, quiet hours must contain those above, and an approval asked above cannot be waived below."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import BigInteger, and_, any_, case, func, literal, or_, select, true, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from kehu.cdp import normalise
from kehu.cdp.models import Identity, Profile
from kehu.channels import schemas
from kehu.channels.models import CHANNELS, CommunicationPolicy, Message, Suppression
from kehu.core import audit
from kehu.core.db import affected, utcnow
from kehu.core.errors import FieldError, Forbidden, NotFound, ValidationFailed, invalid
from kehu.core.timeutil import zone
from kehu.segments.conditions import compile_condition
from kehu.segments.schemas import condition_adapter
from kehu.tenancy.access import BoundScope, Principal, bound_scope, check_references, org_timezone, require_row, scope
from kehu.tenancy.access import Ref as _Ref
from kehu.tenancy.models import BusinessUnit

DEFAULT_QUIET = ("21:00", "09:00")
CAP_KEYS = (*[c for c in CHANNELS if c != "webhook"], "all")
# the consent channel of the CDP each channel asks (webhooks carry no consent of their own)
CONSENT_CHANNEL = {"email": "email", "sms": "sms", "wechat": "wechat", "push": "app_push"}
SKIP_REASONS = ("no_address", "suppressed", "no_consent", "frequency_cap", "duplicate")
COUNTED = ("queued", "paused", "sending", "sent", "delivered", "unknown")
# reasons that stop every purpose, and those that stop marketing only
STOPS_ALL = ("hard_bounce", "invalid")
STOPS_MARKETING = ("unsubscribed", "complained")


# -- the policy -----------------------------------------------------------------------------------------------------
def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _quiet_set(start: str, end: str) -> set[int]:
    a, b = _minutes(start), _minutes(end)
    return set(range(a, b)) if a <= b else set(range(a, 1440)) | set(range(0, b))


@dataclass
class Rules:
    """The rules in force for a unit's sends."""

    per_day: dict[str, int] = field(default_factory=dict)
    per_week: dict[str, int] = field(default_factory=dict)
    quiet_start: str | None = DEFAULT_QUIET[0]
    quiet_end: str | None = DEFAULT_QUIET[1]
    approval_required: bool = False  # a unit above asks to approve this unit's broadcasts

    def as_policy(self) -> schemas.PolicyIn:
        return schemas.PolicyIn(per_day=schemas.Caps(**self.per_day), per_week=schemas.Caps(**self.per_week),
                                quiet_start=self.quiet_start, quiet_end=self.quiet_end,
                                approval_required=self.approval_required)

    def next_opening(self, now: datetime, tz_name: str) -> datetime:
        """``now`` if it is outside the quiet hours, else when they end (UTC)."""
        if not self.quiet_start or not self.quiet_end or self.quiet_start == self.quiet_end:
            return now
        tz = zone(tz_name)
        local = (now if now.tzinfo else now.replace(tzinfo=UTC)).astimezone(tz)
        minute = local.hour * 60 + local.minute
        if minute not in _quiet_set(self.quiet_start, self.quiet_end):
            return now
        end = time.fromisoformat(self.quiet_end)
        opening = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
        if opening <= local:
            opening += timedelta(days=1)
        return opening.astimezone(UTC)


def _path_ids(path: str) -> list[int]:
    return [int(part) for part in path.strip("/").split("/") if part]


def rules_for(session: Session, org_id: int, unit_id: int) -> Rules:
    """The strictest rules along the unit's path (the unit's own included)."""
    unit = session.get(BusinessUnit, unit_id)
    path = _path_ids(unit.path) if unit is not None and unit.org_id == org_id else [unit_id]
    policies = {p.unit_id: p for p in session.scalars(select(CommunicationPolicy).where(
        CommunicationPolicy.org_id == org_id, CommunicationPolicy.unit_id.in_(path)))}
    rules = Rules()
    for depth, unit_on_path in enumerate(path):
        policy = policies.get(unit_on_path)
        if policy is None:
            continue
        for mine, theirs in ((rules.per_day, policy.per_day), (rules.per_week, policy.per_week)):
            for key, cap in (theirs or {}).items():
                if cap is not None:
                    mine[key] = min(int(cap), mine.get(key, int(cap)))
        if policy.quiet_start and policy.quiet_end:
            rules.quiet_start, rules.quiet_end = policy.quiet_start, policy.quiet_end  # contains those above
        if policy.approval_required and depth < len(path) - 1:
            rules.approval_required = True
    return rules


def get_policy(session: Session, principal: Principal, unit_id: int | None = None) -> schemas.PolicyOut:
    principal.require("messages", "read")
    unit_id = unit_id if unit_id is not None else principal.unit_id
    check_references(session, principal, {"unit_id": _Ref(BusinessUnit, unit_id, None)})
    assert unit_id is not None
    own = session.scalar(select(CommunicationPolicy).where(CommunicationPolicy.org_id == principal.org_id,
                                                           CommunicationPolicy.unit_id == unit_id))
    rules = rules_for(session, principal.org_id, unit_id)
    effective = rules.as_policy()
    effective.approval_required = bool(own and own.approval_required)
    parent_id = session.scalar(select(BusinessUnit.parent_id).where(BusinessUnit.id == unit_id))
    inherited = (rules_for(session, principal.org_id, parent_id) if parent_id else Rules(
        quiet_start=None, quiet_end=None)).as_policy()
    return schemas.PolicyOut(
        unit_id=unit_id, effective=effective, inherited=inherited, approval_required=rules.approval_required,
        own=schemas.PolicyIn(per_day=schemas.Caps(**own.per_day), per_week=schemas.Caps(**own.per_week),
                             quiet_start=own.quiet_start, quiet_end=own.quiet_end,
                             approval_required=own.approval_required) if own else None)


def set_policy(session: Session, principal: Principal, unit_id: int | None,
               data: schemas.PolicyIn) -> schemas.PolicyOut:
    """Set a unit's own rules; refused (422, naming each field) where they would loosen what a unit above set."""
    principal.require_permission("settings.manage")
    unit_id = unit_id if unit_id is not None else principal.unit_id
    found = check_references(session, principal, {"unit_id": _Ref(BusinessUnit, unit_id, None)})
    unit: BusinessUnit = found["unit_id"]
    require_row(session, principal, "messages", "update", unit_id=unit.id)
    if (data.quiet_start is None) != (data.quiet_end is None):
        raise invalid("quiet_end" if data.quiet_end is None else "quiet_start", "give both ends of the quiet hours",
                      "required")
    above = rules_for(session, principal.org_id, unit.parent_id) if unit.parent_id else Rules(
        quiet_start=None, quiet_end=None)
    problems: list[FieldError] = []
    for name, caps, limits in (("per_day", data.per_day, above.per_day), ("per_week", data.per_week,
                                                                           above.per_week)):
        for key, limit in limits.items():
            mine = getattr(caps, key)
            if mine is not None and mine > limit:  # none of its own: the one above holds
                problems.append(FieldError(f"{name}.{key}", f"at most {limit}, as a unit above allows", "looser"))
    inherited = _quiet_set(above.quiet_start, above.quiet_end) if above.quiet_start and above.quiet_end else set()
    if inherited and data.quiet_start and data.quiet_end and \
            not inherited <= _quiet_set(data.quiet_start, data.quiet_end):
        problems.append(FieldError("quiet_start", f"quiet hours must include {above.quiet_start}–"
                                                  f"{above.quiet_end}, as a unit above keeps", "looser"))
    if problems:
        raise ValidationFailed("; ".join(f"{p.field}: {p.message}" for p in problems), errors=problems)
    policy = session.scalar(select(CommunicationPolicy).where(CommunicationPolicy.org_id == principal.org_id,
                                                              CommunicationPolicy.unit_id == unit.id))
    before = None
    if policy is None:
        policy = CommunicationPolicy(org_id=principal.org_id, unit_id=unit.id)
        session.add(policy)
    else:
        before = {"per_day": policy.per_day, "per_week": policy.per_week, "quiet_start": policy.quiet_start,
                  "quiet_end": policy.quiet_end, "approval_required": policy.approval_required}
    policy.per_day = data.per_day.model_dump(exclude_none=True)
    policy.per_week = data.per_week.model_dump(exclude_none=True)
    policy.quiet_start, policy.quiet_end = data.quiet_start, data.quiet_end
    policy.approval_required = data.approval_required
    session.flush()
    audit.record(session, principal, action="update", entity="communication_policies", entity_id=policy.id,
                 unit_id=unit.id, before=before, after={
                     "per_day": policy.per_day, "per_week": policy.per_week, "quiet_start": policy.quiet_start,
                     "quiet_end": policy.quiet_end, "approval_required": policy.approval_required},
                 summary=f"Communication rules of {unit.name} changed")
    return get_policy(session, principal, unit.id)


# -- suppressions ---------------------------------------------------------------------------------------------------
def suppress(session: Session, *, org_id: int, channel: str, address: str, reason: str, evidence: str = "",
             message_id: int | None = None) -> None:
    """Put an address on the list (a stronger reason replaces a weaker one: a hard bounce over an unsubscribe)."""
    existing = session.scalar(select(Suppression).where(Suppression.org_id == org_id, Suppression.channel == channel,
                                                        Suppression.address == address))
    if existing is None:
        session.add(Suppression(org_id=org_id, channel=channel, address=address, reason=reason,
                                evidence=evidence[:500], message_id=message_id, created_at=utcnow()))
    elif reason in STOPS_ALL and existing.reason not in STOPS_ALL:
        existing.reason, existing.evidence, existing.message_id = reason, evidence[:500], message_id
    session.flush()


def may_manage_suppressions(principal: Principal) -> bool:
    """The list is the organisation's (an address is suppressed for every unit): only who manages settings for
    the whole organisation reads or changes it — a dealer's settings manager would otherwise read every dealer's
    customers' addresses, or lift another dealer's hard bounce."""
    return principal.is_system or principal.privileges.get("settings.manage") == "org"


def _require_suppressions(principal: Principal) -> None:
    if not may_manage_suppressions(principal):
        raise Forbidden("The suppression list needs settings.manage for the whole organisation.")


def list_suppressions(session: Session, principal: Principal, *, channel: str | None = None,
                      address: str | None = None, limit: int = 100) -> list[Suppression]:
    principal.require("messages", "read")
    principal.require_permission("pii.read")  # the list is addresses and nothing else
    _require_suppressions(principal)
    query = select(Suppression).where(Suppression.org_id == principal.org_id)
    if channel:
        query = query.where(Suppression.channel == channel)
    if address:
        forms = {address.strip()}
        for kind in ("email", "sms"):  # found however it was typed (a mobile without +86, an e-mail in capitals)
            with contextlib.suppress(ValidationFailed):
                forms.add(address_as_sent(kind, address))
        query = query.where(Suppression.address.in_(forms))
    return list(session.scalars(query.order_by(Suppression.id.desc()).limit(limit)))


def address_as_sent(channel: str, address: str) -> str:
    """An address as messages carry it (and the list must hold it to match them): an e-mail in lower case, a
    mobile in E.164 (13800000001 → +8613800000001); other channels' ids as given. ValidationFailed (field
    ``address``) for one that cannot be an address of its channel."""
    try:
        if channel == "email":
            found = normalise.email(address)
        elif channel == "sms":
            found = normalise.phone(address)
        else:
            found = address.strip()
    except normalise.InvalidValue:
        found = ""
    if not found or len(found) > 254:
        raise invalid("address", f"not an address of the {channel} channel", "invalid")
    return found


def add_suppression(session: Session, principal: Principal, data: schemas.SuppressionIn) -> Suppression:
    _require_suppressions(principal)
    address = address_as_sent(data.channel, data.address)
    suppress(session, org_id=principal.org_id, channel=data.channel, address=address, reason=data.reason,
             evidence=data.evidence or f"added by {principal.display}")
    audit.record(session, principal, action="suppress", entity="suppressions", entity_id=None,
                 summary=f"{data.channel} {address} suppressed ({data.reason})")
    row = session.scalar(select(Suppression).where(Suppression.org_id == principal.org_id,
                                                   Suppression.channel == data.channel,
                                                   Suppression.address == address))
    assert row is not None
    return row


def remove_suppression(session: Session, principal: Principal, suppression_id: int) -> None:
    _require_suppressions(principal)
    row = session.scalar(select(Suppression).where(Suppression.id == suppression_id,
                                                   Suppression.org_id == principal.org_id))
    if row is None:
        raise NotFound(f"No suppression with id {suppression_id}.")
    audit.record(session, principal, action="unsuppress", entity="suppressions", entity_id=row.id,
                 summary=f"{row.channel} {row.address} no longer suppressed")
    session.delete(row)
    session.flush()


# -- messages sent again ----------------------------------------------------------------------------------------
ID_CHUNK = 10_000  # ids per statement (SQLite takes at most 32,766 parameters)


def recheck(session: Session, org_id: int, message_ids: list[int], *, now: datetime) -> int:
    """The rules applied again to queued messages made earlier (sent again after they failed): an address
    suppressed since, or a consent withdrawn since, skips the message with that reason; the quiet hours of its
    sender's unit hold it (transactional ones excepted). Set statements per channel, purpose and sending unit
    (a handful), not a loop over messages. Returns how many were skipped."""
    timezone = org_timezone(session, org_id)
    skipped = 0
    for start in range(0, len(message_ids), ID_CHUNK):
        chunk = message_ids[start:start + ID_CHUNK]
        mine = and_(Message.id.in_(chunk), Message.status == "queued")
        groups = session.execute(select(Message.channel, Message.purpose, Message.sender_unit_id).where(mine)
                                 .distinct()).all()
        for channel, purpose, sender_unit_id in groups:
            group = and_(mine, Message.channel == channel, Message.purpose == purpose,
                         Message.sender_unit_id == sender_unit_id)
            stopping = STOPS_ALL + (STOPS_MARKETING if purpose == "marketing" else ())
            suppressed = select(Suppression.id).where(
                Suppression.org_id == org_id, Suppression.channel == channel,
                Suppression.address == Message.address, Suppression.reason.in_(stopping)).exists()
            skipped += affected(session.execute(update(Message).where(group, suppressed).values(
                status="skipped", skip_reason="suppressed").execution_options(synchronize_session=False)))
            consent_channel = CONSENT_CHANNEL.get(channel)
            if consent_channel and purpose != "transactional":
                clause = compile_condition(session, org_id, timezone, condition_adapter.validate_python({
                    "type": "consent", "channel": consent_channel, "purpose": purpose,
                    "op": "granted" if purpose == "marketing" else "not_withdrawn"}), reader=None)
                allowed = select(Profile.id).where(Profile.org_id == org_id, Profile.id == Message.profile_id,
                                                   clause).exists()
                skipped += affected(session.execute(update(Message).where(
                    group, Message.profile_id.is_not(None), ~allowed).values(
                    status="skipped", skip_reason="no_consent").execution_options(synchronize_session=False)))
            if purpose != "transactional":
                opening = rules_for(session, org_id, sender_unit_id).next_opening(now, timezone)
                if opening > now:
                    session.execute(update(Message).where(group).values(due_at=opening)
                                    .execution_options(synchronize_session=False))
    return skipped


# -- the audience of a send, controlled -----------------------------------------------------------------------------
def address_column(channel: str, org_id: int, endpoint: str | None = None) -> Any:
    """The SQL expression of a customer's address on ``channel`` (None where it has none). A webhook's messages
    all go to the account's ``endpoint``: each carries one customer."""
    if channel == "webhook":
        return literal(endpoint, type_=Message.address.type)
    if channel == "email":
        return Profile.email
    if channel == "sms":
        return Profile.mobile
    kind = {"wechat": "wechat_openid", "push": "push_token"}.get(channel)
    if kind is None:
        return literal(None)
    return select(func.max(Identity.value)).where(Identity.org_id == org_id, Identity.profile_id == Profile.id,
                                                  Identity.kind == kind).scalar_subquery()


def controlled_audience(session: Session, *, org_id: int, timezone: str, audience: Any, channel: str, purpose: str,
                        rules: Rules, now: datetime, endpoint: str | None = None) -> Any:
    """A SELECT of (profile_id, unit_id, address, skip_reason) for the profiles ``audience`` names — a SELECT of
    profile ids (a broadcast's segment), or the ids themselves (a journey's step of a few thousand, one
    customer's triggered message): every rule applied in the statement, the first that stops a customer named.

    Each rule is a set joined to the audience (the suppressed addresses, the customers whose consent allows it,
    those at a cap), never a subquery asked per customer: inside a CASE the planner cannot turn "in this set"
    into a join, and a set too big to hash in memory is then searched row by row for each of a million
    customers (minutes instead of seconds). The caps of a few thousand named customers are the exception
    (``_at_cap``)."""
    named = isinstance(audience, list | tuple)
    postgres = session.get_bind().dialect.name == "postgresql"
    people = (select(Profile.id.label("profile_id"), Profile.unit_id.label("unit_id"),
                     address_column(channel, org_id, endpoint).label("address"))
              .where(Profile.org_id == org_id, Profile.merged_into_id.is_(None),
                     _one_of(Profile.id, audience, postgres))
              .subquery("people"))
    stops = list(STOPS_ALL) + (list(STOPS_MARKETING) if purpose == "marketing" else [])
    suppressed = select(Suppression.address.label("address")).where(
        Suppression.org_id == org_id, Suppression.channel == channel, Suppression.reason.in_(stops)) \
        .subquery("suppressed")  # one row per address: (org, channel, address) is unique
    joined: Any = people.outerjoin(suppressed, suppressed.c.address == people.c.address)
    rules_in_order: list[tuple[Any, str]] = [(people.c.address.is_(None), "no_address"),
                                             (suppressed.c.address.is_not(None), "suppressed")]
    consent_channel = CONSENT_CHANNEL.get(channel)
    if consent_channel and purpose != "transactional":
        op = "granted" if purpose == "marketing" else "not_withdrawn"
        clause = compile_condition(session, org_id, timezone, condition_adapter.validate_python({
            "type": "consent", "channel": consent_channel, "purpose": purpose, "op": op}), reader=None)
        allowed = select(Profile.id.label("profile_id")).where(Profile.org_id == org_id,
                                                              _one_of(Profile.id, audience, postgres),
                                                              clause).subquery("allowed")
        joined = joined.outerjoin(allowed, allowed.c.profile_id == people.c.profile_id)
        rules_in_order.append((allowed.c.profile_id.is_(None), "no_consent"))
    if purpose == "marketing" and (rules.per_day or rules.per_week):
        if named and postgres:
            sent = _sent_lately(org_id, channel, now, Message.profile_id == people.c.profile_id).lateral("sent")
            at_cap = _cap_reached(channel, rules, sent)
            if at_cap is not None:
                joined = joined.outerjoin(sent, true())
                rules_in_order.append((at_cap, "frequency_cap"))
        else:
            capped = _at_cap(org_id, channel, rules, now, audience, postgres)
            if capped is not None:
                joined = joined.outerjoin(capped, capped.c.profile_id == people.c.profile_id)
                rules_in_order.append((capped.c.profile_id.is_not(None), "frequency_cap"))
    reason = case(*[(test, literal(name)) for test, name in rules_in_order], else_=literal(None)).label("reason")
    base = select(people.c.profile_id, people.c.unit_id, people.c.address, reason).select_from(joined) \
        .subquery("base")
    # one message per address; a webhook's one address carries every customer, each in a message of its own
    same = base.c.profile_id if channel == "webhook" else base.c.address
    rank = func.row_number().over(partition_by=(same, base.c.reason.is_(None)), order_by=base.c.profile_id)
    ranked = select(base.c.profile_id, base.c.unit_id, base.c.address, base.c.reason, rank.label("rank")) \
        .subquery("ranked")
    final_reason = case((and_(ranked.c.reason.is_(None), ranked.c.address.is_not(None), ranked.c.rank > 1),
                         literal("duplicate")), else_=ranked.c.reason)
    return select(ranked.c.profile_id, ranked.c.unit_id, ranked.c.address, final_reason.label("skip_reason"))


def _one_of(column: Any, audience: Any, postgres: bool) -> Any:
    """``column`` is one of the audience's profile ids: in its SELECT, or among the ids it names — on PostgreSQL
    one array parameter (``= ANY``), not thousands of parameters bound and parsed again by each statement."""
    if not isinstance(audience, list | tuple):
        return column.in_(audience)
    if postgres:
        return column == any_(literal(list(audience), type_=ARRAY(BigInteger)))
    return column.in_(list(audience))


def _sent_lately(org_id: int, channel: str, now: datetime, whose: Any) -> Any:
    """Per customer (``whose``: the messages' filter), their marketing messages of the last day and week, of this
    channel and of all."""
    day_ago, week_ago = now - timedelta(days=1), now - timedelta(days=7)
    recent = Message.created_at >= day_ago
    same = Message.channel == channel
    return select(
        func.sum(case((and_(recent, same), 1), else_=0)).label("day_channel"),
        func.sum(case((recent, 1), else_=0)).label("day_all"),
        func.sum(case((same, 1), else_=0)).label("week_channel"),
        func.count().label("week_all"),
    ).where(Message.org_id == org_id, Message.purpose == "marketing", Message.status.in_(COUNTED),
            Message.created_at >= week_ago, whose)


def _cap_reached(channel: str, rules: Rules, sums: Any) -> Any:
    """The test that a customer's ``sums`` (``_sent_lately``) reached a cap, or None when no cap concerns the
    channel."""
    checks = []
    for caps, channel_col, all_col in ((rules.per_day, sums.c.day_channel, sums.c.day_all),
                                       (rules.per_week, sums.c.week_channel, sums.c.week_all)):
        if channel in caps:
            checks.append(channel_col >= caps[channel])
        if "all" in caps:
            checks.append(all_col >= caps["all"])
    return or_(*checks) if checks else None


def _at_cap(org_id: int, channel: str, rules: Rules, now: datetime, audience: Any, postgres: bool) -> Any:
    """The customers of ``audience`` who had as many marketing messages as a cap allows (one grouped read of
    their last week's messages), or None when no cap concerns this channel. Read for the audience only: the
    week's messages of those a broadcast names, not the whole organisation's.

    A step's few thousand named customers on PostgreSQL look theirs up one by one instead (a LATERAL read by
    ``ix_messages_profile``, in ``controlled_audience``): joined as a set, a journey's own million messages made
    in the last minutes were read whole for each step of 5,000 until the planner's statistics caught up — half
    of a send's time."""
    sums = _sent_lately(org_id, channel, now, _one_of(Message.profile_id, audience, postgres)) \
        .add_columns(Message.profile_id.label("profile_id")).group_by(Message.profile_id).subquery("sent_lately")
    reached = _cap_reached(channel, rules, sums)
    if reached is None:
        return None
    return select(sums.c.profile_id).where(reached).subquery("at_cap")


def skip_reason_of(session: Session, *, org_id: int, timezone: str, profile_id: int, channel: str, purpose: str,
                   unit_id: int, now: datetime | None = None) -> tuple[str | None, str | None]:
    """(address, skip reason) for one customer — what a single triggered message (a journey's) is checked with:
    the same statement as a broadcast's, for one id."""
    rules = rules_for(session, org_id, unit_id)
    row = session.execute(controlled_audience(
        session, org_id=org_id, timezone=timezone, audience=[profile_id], channel=channel,
        purpose=purpose, rules=rules, now=now or utcnow())).first()
    if row is None:
        return None, "no_address"
    return row.address, row.skip_reason


def visible_messages(principal: Principal) -> Any:
    """The filter of the messages a reader may see: those to customers of their scope (tests to themselves too)."""
    return scope(principal, Message)


def visible_messages_bound(principal: Principal) -> BoundScope:
    """``visible_messages`` for a statement built once (the customer's timeline): the same rows, the reader's values
    as parameters. Change the two together."""
    return bound_scope(principal, Message)
