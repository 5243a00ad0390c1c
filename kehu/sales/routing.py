"""Where a new lead goes: the customer's own dealer, else the first routing rule that matches (a dealer, or
a region whose dealers share the leads), then a salesperson there in turn (round robin) or the least loaded.

A ``Router`` holds what routing reads — the unit tree, the rules, each dealer's salespeople, whose turn it
is, the service levels — for one unit of work, so a batch of a thousand inquiries reads each once instead
of a thousand times, and keeps the turns it hands out in memory (later leads of the batch see them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kehu.cdp.models import Profile
from kehu.core.timeutil import add_working_hours
from kehu.sales.models import OPEN_STATUSES, Lead, LeadChange, LeadSla, RoutingRule
from kehu.tenancy.access import merge_privileges
from kehu.tenancy.models import BusinessUnit, Organization, Role, User, user_roles

DEFAULT_FIRST_CONTACT_HOURS = 24


@dataclass
class Route:
    unit_id: int
    owner_id: int | None
    method: str
    why: str


@dataclass
class Router:
    session: Session
    org_id: int
    _units: dict[int, tuple[str, str]] | None = None  # id → (path, kind)
    _rules: list[RoutingRule] | None = None
    _levels: dict[int | None, LeadSla] | None = None
    _timezone: str | None = None
    _people: dict[int, list[int]] = field(default_factory=dict)
    _turns: dict[int, dict[int, int]] = field(default_factory=dict)  # unit → person (or dealer) → last turn
    _loads: dict[int, dict[int, int]] = field(default_factory=dict)  # unit → person (or dealer) → open leads
    _locked: set[int] = field(default_factory=set)
    _subtrees: dict[int, tuple[int, ...]] = field(default_factory=dict)
    _tick: int = 10**15  # turns handed out here come after every one stored
    status_field_ready: bool = False  # the customer field leads write back to is declared

    # -- the unit tree ---------------------------------------------------------------------------------------------
    @property
    def units(self) -> dict[int, tuple[str, str]]:
        if self._units is None:
            self._units = {uid: (path, kind) for uid, path, kind in self.session.execute(
                select(BusinessUnit.id, BusinessUnit.path, BusinessUnit.kind).where(
                    BusinessUnit.org_id == self.org_id))}
        return self._units

    def ancestors(self, unit_id: int) -> list[int]:
        """The unit and the units above it, from the top (its materialised path)."""
        unit = self.units.get(unit_id)
        return [int(p) for p in unit[0].strip("/").split("/") if p] if unit else []

    def subtree(self, unit_id: int) -> tuple[int, ...]:
        """The unit and the units under it, by id (a dealer and its teams)."""
        if unit_id not in self._subtrees:
            path = self.units[unit_id][0] if unit_id in self.units else None
            self._subtrees[unit_id] = tuple(sorted(u for u, (p, _k) in self.units.items()
                                                   if path is not None and p.startswith(path)))
        return self._subtrees[unit_id]

    def dealer_of(self, unit_id: int | None) -> int | None:
        """The dealer a unit belongs to (itself, or the dealer above a team), if any: customers held at
        headquarters, a region or the call centre belong to no dealer yet."""
        if unit_id is None:
            return None
        dealers = [u for u in self.ancestors(unit_id) if self.units[u][1] == "dealer"]
        return dealers[-1] if dealers else None

    def lock(self, unit_id: int) -> None:
        """One router at a time hands out a unit's turns (PostgreSQL; SQLite has one writer anyway)."""
        if unit_id not in self._locked and self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(select(BusinessUnit.id).where(BusinessUnit.id == unit_id).with_for_update())
        self._locked.add(unit_id)

    # -- people and turns ------------------------------------------------------------------------------------------
    def salespeople(self, unit_id: int) -> list[int]:
        """Active users of the unit and its teams who work their own leads (a role granting ``leads.update``
        at "own"): those leads are shared among. Managers, who see the whole dealer, assign rather than
        receive."""
        if unit_id not in self._people:
            rows = self.session.execute(
                select(User.id, Role.privileges).join(user_roles, user_roles.c.user_id == User.id)
                .join(Role, Role.id == user_roles.c.role_id)
                .where(User.unit_id.in_(self.subtree(unit_id)), User.is_active.is_(True))).all()
            grants: dict[int, list[Any]] = {}
            for user_id, privileges in rows:
                grants.setdefault(user_id, []).append(privileges)
            self._people[unit_id] = sorted(u for u, g in grants.items()
                                           if merge_privileges(g).get("leads.update") == "own")
        return self._people[unit_id]

    def _turns_of(self, unit_id: int, people: list[int]) -> dict[int, int]:
        if unit_id not in self._turns:
            self._turns[unit_id] = dict(self.session.execute(
                select(LeadChange.owner_id, func.max(LeadChange.id)).where(
                    LeadChange.kind == "assigned", LeadChange.unit_id == unit_id, LeadChange.owner_id.in_(people))
                .group_by(LeadChange.owner_id)).all()) if people else {}
        return self._turns[unit_id]

    def _loads_of(self, unit_id: int, people: list[int]) -> dict[int, int]:
        if unit_id not in self._loads:
            self._loads[unit_id] = dict(self.session.execute(
                select(Lead.owner_id, func.count()).where(Lead.owner_id.in_(people), Lead.status.in_(OPEN_STATUSES))
                .group_by(Lead.owner_id)).all()) if people else {}
        return self._loads[unit_id]

    def pick(self, unit_id: int, method: str) -> int | None:
        """A salesperson of the unit: the one given a lead longest ago (round robin; never given one
        first), or the one with the fewest open leads (least loaded; ties by round robin)."""
        people = self.salespeople(unit_id)
        if not people or method == "none":
            return None
        self.lock(unit_id)
        last = self._turns_of(unit_id, people)
        load = self._loads_of(unit_id, people) if method == "least_loaded" else {}
        chosen = min(people, key=lambda u: (load.get(u, 0), last.get(u, 0), u))
        self.handed(unit_id, chosen)
        return chosen

    def handed(self, unit_id: int, owner_id: int) -> None:
        """A lead went to ``owner_id`` at ``unit_id``: their turn is taken, their load one more."""
        self._tick += 1
        self._turns_of(unit_id, self.salespeople(unit_id))[owner_id] = self._tick
        if unit_id in self._loads:
            self._loads[unit_id][owner_id] = self._loads[unit_id].get(owner_id, 0) + 1

    def choose_dealer(self, unit_id: int, method: str) -> int:
        """A rule may send leads to a region (or any unit above dealers): they are shared among its dealers,
        the one given a lead longest ago first (or the one with the fewest open leads). A dealer is itself."""
        dealers = [u for u in self.subtree(unit_id) if self.units[u][1] == "dealer" and u != unit_id]
        if not dealers or self.dealer_of(unit_id) is not None:
            return unit_id
        self.lock(unit_id)
        key = -unit_id  # the region's turns among its dealers, apart from its own people's
        if key not in self._turns:
            self._turns[key] = dict(self.session.execute(
                select(LeadChange.unit_id, func.max(LeadChange.id)).where(
                    LeadChange.unit_id.in_(dealers), LeadChange.kind == "assigned")
                .group_by(LeadChange.unit_id)).all())
        if method == "least_loaded" and key not in self._loads:
            self._loads[key] = dict(self.session.execute(
                select(Lead.unit_id, func.count()).where(Lead.unit_id.in_(dealers), Lead.status.in_(OPEN_STATUSES))
                .group_by(Lead.unit_id)).all())
        last, load = self._turns[key], self._loads.get(key, {}) if method == "least_loaded" else {}
        chosen = min(dealers, key=lambda d: (load.get(d, 0), last.get(d, 0), d))
        self._tick += 1
        last[chosen] = self._tick
        if key in self._loads:
            self._loads[key][chosen] = self._loads[key].get(chosen, 0) + 1
        return chosen

    # -- the decision ----------------------------------------------------------------------------------------------
    @property
    def rules(self) -> list[RoutingRule]:
        if self._rules is None:
            self._rules = list(self.session.scalars(select(RoutingRule).where(
                RoutingRule.org_id == self.org_id, RoutingRule.is_active.is_(True))
                .order_by(RoutingRule.priority, RoutingRule.id)))
        return self._rules

    def route(self, profile: Profile, lead: Lead) -> Route | None:
        """Where a new lead goes. A customer who already belongs to a dealer goes back to that dealer (and to
        their salesperson while they are active there); otherwise the first matching routing rule decides.
        None: no rule matched, the lead waits where it was made (the call centre's or HQ's queue)."""
        dealer = self.dealer_of(profile.unit_id)
        if dealer is not None:
            owner = profile.owner_id if profile.owner_id in self.salespeople(dealer) else None
            if owner is not None:
                self.handed(dealer, owner)
            return Route(dealer, owner or self.pick(dealer, "round_robin"), "round_robin", "existing_customer")
        for rule in self.rules:
            checks = ((rule.provinces, profile.province), (rule.cities, profile.city),
                      (rule.models, lead.model_interest), (rule.sources, lead.source))
            if all(not wanted or value in wanted for wanted, value in checks):
                dealer = self.choose_dealer(rule.unit_id, rule.method)
                return Route(dealer, self.pick(dealer, rule.method), rule.method, f"rule:{rule.name}")
        return None

    # -- service levels --------------------------------------------------------------------------------------------
    def service_level(self, unit_id: int) -> LeadSla:
        """The first-contact level of a unit: its own, else the nearest above it, else the organisation's,
        else the platform's default (24 hours around the clock)."""
        if self._levels is None:
            self._levels = {row.unit_id: row for row in self.session.scalars(
                select(LeadSla).where(LeadSla.org_id == self.org_id))}
        for unit in reversed(self.ancestors(unit_id)):
            if unit in self._levels:
                return self._levels[unit]
        return self._levels.get(None) or LeadSla(org_id=self.org_id, unit_id=None,
                                                 first_contact_hours=DEFAULT_FIRST_CONTACT_HOURS,
                                                 open_days=list(range(7)))

    def first_contact_due(self, unit_id: int, assigned_at: datetime) -> datetime:
        """When a lead assigned at ``assigned_at`` must have been contacted: its level's hours later, counted
        in the unit's working hours (organisation's time zone) when it has them."""
        level = self.service_level(unit_id)
        hours = level.first_contact_hours
        if level.opens_at is None and level.unit_id is not None and self._levels and None in self._levels:
            level = self._levels[None]  # a unit's own hours to respond, in the organisation's opening times
        if level.opens_at is None or level.closes_at is None:
            return assigned_at + timedelta(hours=hours)
        if self._timezone is None:
            organisation = self.session.get(Organization, self.org_id)
            self._timezone = organisation.timezone if organisation else "Asia/Shanghai"
        return add_working_hours(assigned_at, hours, opens=level.opens_at,
                                 closes=level.closes_at, days=level.open_days or list(range(7)),
                                 tz_name=self._timezone)
