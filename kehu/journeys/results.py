"""What happened in a journey, of the customers in the reader's scope, counted in SQL at the moment of asking: its
enrolled customers, how many wait at and passed each node (a list's summary per journey), each customer's journey
history, and its results — conversion to its goal (an event within some days of entering), overall and per random
split group, each group against the control group with the difference's 95 % confidence interval and a
two-proportion z-test, or, without a control group, the best group against the others."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import and_, case, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from kehu.cdp.models import HAPPENING, Event
from kehu.cdp.views import PersonalData
from kehu.core.db import seconds_between
from kehu.core.pagination import Page, keyset_page
from kehu.journeys import schemas
from kehu.journeys.models import ACTIVE, Enrolment, Journey, JourneyStep
from kehu.journeys.service import get_journey, graph_of, journey_units, parse
from kehu.tenancy.access import Principal, scope
from kehu.tenancy.models import BusinessUnit

SIGNIFICANCE = 0.05
Z = 1.959964  # the normal quantile of a two-sided 95 % interval
MIN_CUSTOMERS = 30  # fewer in either group: no verdict, however large the difference looks


# -- what happened --------------------------------------------------------------------------------------------------
def list_enrolments(session: Session, principal: Principal, journey_id: int, *, state: str | None = None,
                    node: str | None = None, limit: int = 50, cursor: str | None = None) -> Page[Any]:
    """The journey's customers (those of the reader's scope), newest first."""
    journey = get_journey(session, principal, journey_id)
    query = select(Enrolment).where(Enrolment.journey_id == journey.id, scope(principal, Enrolment))
    if state:
        query = query.where(Enrolment.state == state)
    if node:
        query = query.where(Enrolment.node == node)
    return keyset_page(session, query, id_column=Enrolment.id, limit=limit, cursor=cursor, descending=True)


def enrolments_out(session: Session, principal: Principal, walks: list[Enrolment]) -> list[schemas.EnrolmentOut]:
    """Walks as the API gives them. At a wait until a date of personal data (a birthday), the due time would tell
    that date: readers who see personal data masked get none."""
    shown = [schemas.EnrolmentOut.model_validate(walk) for walk in walks]
    if principal.has("pii.read"):
        return shown
    personal = PersonalData.of(session, principal.org_id)
    for out in shown:
        node = graph_of(session, out.journey_id, out.version).nodes.get(out.node)
        if out.state == ACTIVE and node is not None and node.type == "wait_until" and node.field is not None \
                and personal.of_field(node.field) is not None:
            out.due_at = None
    return shown


def summaries(session: Session, principal: Principal, journey_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(entered, inside now) per journey, of the customers in the reader's scope: one grouped read for a list."""
    if not journey_ids:
        return {}
    rows = session.execute(select(Enrolment.journey_id, func.count(),
                                  func.sum(case((Enrolment.state == ACTIVE, 1), else_=0)))
                           .where(Enrolment.journey_id.in_(journey_ids), scope(principal, Enrolment))
                           .group_by(Enrolment.journey_id))
    return {journey_id: (int(entered), int(active or 0)) for journey_id, entered, active in rows}


def report(session: Session, principal: Principal, journey_id: int) -> schemas.JourneyReport:
    """How many entered, are inside, finished or were taken out; per node how many wait there now and passed it
    (a split's by branch) — of the customers in the reader's scope."""
    journey = get_journey(session, principal, journey_id)
    visible = and_(Enrolment.journey_id == journey.id, scope(principal, Enrolment))
    states = dict(session.execute(select(Enrolment.state, func.count()).where(visible)
                                  .group_by(Enrolment.state)).all())
    waiting = dict(session.execute(select(Enrolment.node, func.count()).where(visible, Enrolment.state == ACTIVE)
                                   .group_by(Enrolment.node)).all())
    passed = session.execute(select(JourneyStep.node, JourneyStep.outcome, func.count())
                             .join(Enrolment, Enrolment.id == JourneyStep.enrolment_id).where(visible)
                             .group_by(JourneyStep.node, JourneyStep.outcome)).all()
    nodes: dict[str, schemas.NodeCount] = {}
    definition = parse(journey.draft or {})
    for node in definition.nodes:
        nodes[node.id] = schemas.NodeCount(node=node.id)
    for node_id, count in waiting.items():
        nodes.setdefault(node_id, schemas.NodeCount(node=node_id)).waiting = count
    for node_id, outcome, count in passed:
        entry = nodes.setdefault(node_id, schemas.NodeCount(node=node_id))
        entry.passed += count
        if outcome.startswith("branch:"):
            entry.branches[outcome.removeprefix("branch:")] = count
    return schemas.JourneyReport(entered=sum(states.values()), active=states.get(ACTIVE, 0),
                                 completed=states.get("completed", 0), exited=states.get("exited", 0),
                                 nodes=list(nodes.values()))



def customer_journeys(session: Session, principal: Principal, profile_id: int, *,
                      limit: int = 10) -> list[tuple[Enrolment, str, list[JourneyStep]]]:
    """The customer's latest walks through journeys (of the reader's scope), newest first: each with its journey's
    name and the steps taken, oldest first — the journey history on their Customer 360."""
    principal.require("journeys", "read")
    walks = session.execute(select(Enrolment, Journey.name).join(Journey, Journey.id == Enrolment.journey_id)
                            .where(Enrolment.profile_id == profile_id, scope(principal, Enrolment))
                            .order_by(Enrolment.entered_at.desc(), Enrolment.id.desc()).limit(limit)).all()
    steps: dict[int, list[JourneyStep]] = {}
    if walks:
        for found in session.scalars(select(JourneyStep).where(JourneyStep.enrolment_id.in_([w.id for w, _ in walks]))
                                     .order_by(JourneyStep.at, JourneyStep.id)):
            steps.setdefault(found.enrolment_id, []).append(found)
    return [(walk, name, steps.get(walk.id, [])) for walk, name in walks]


def _converted(session: Session, journey: Journey, goal: schemas.Goal | None) -> Any:
    """1 for an enrolment whose customer reached the goal within its days of entering, else 0 (SQL, per row)."""
    if goal is None:
        return literal(0)
    happened = select(Event.id).where(
        Event.org_id == journey.org_id, Event.profile_id == Enrolment.profile_id, Event.event == goal.event,
        Event.ts >= Enrolment.entered_at,
        seconds_between(Enrolment.entered_at, Event.ts, session.get_bind().dialect.name) <= goal.within_days * 86400)
    for key, value in goal.properties.items():
        prop = Event.properties[key]
        if isinstance(value, bool):
            happened = happened.where(prop.as_boolean() == value)
        elif isinstance(value, int | float):
            happened = happened.where(prop.as_float() == float(value))
        else:
            happened = happened.where(prop.as_string() == value)
    units = journey_units(session, journey)
    if units is not None:  # what kehu recorded happened at a unit (a deal won) counts at the journey's units only
        happened = happened.where(or_(Event.type != HAPPENING, Event.properties["unit_id"].as_integer().in_(units)))
    return case((exists(happened), 1), else_=0)


def results(session: Session, principal: Principal, journey_id: int) -> schemas.JourneyResults:
    """Conversion to the goal of the running version (of the customers in the reader's scope), overall and per
    random split group, each against the control group (or the best against the rest) with a confidence interval."""
    journey = get_journey(session, principal, journey_id)
    definition = graph_of(session, journey.id, journey.version).definition if journey.version \
        else parse(journey.draft or {})
    goal = definition.goal
    visible = and_(Enrolment.journey_id == journey.id, scope(principal, Enrolment))
    converted = _converted(session, journey, goal)
    entered, reached = session.execute(select(func.count(), func.coalesce(func.sum(converted), 0))
                                       .where(visible)).one()
    splits, paths = [], []

    def by_way(node_id: str) -> dict[str, tuple[int, int]]:
        return {outcome.removeprefix("branch:"): (int(n), int(c or 0)) for outcome, n, c in session.execute(
            select(JourneyStep.outcome, func.count(), func.sum(converted))
            .join(Enrolment, Enrolment.id == JourneyStep.enrolment_id)
            .where(visible, JourneyStep.journey_id == journey.id, JourneyStep.node == node_id)
            .group_by(JourneyStep.outcome))}

    for node in definition.nodes:
        if node.type in ("split", "wait_for_event") and goal is not None:
            counted = by_way(node.id)
            ways = [(b.name, b.label or b.name) for b in node.branches] + [(schemas.ELSE, schemas.ELSE)] \
                if node.type == "split" else [(schemas.HAPPENED, schemas.HAPPENED), (schemas.TIMED_OUT,
                                                                                     schemas.TIMED_OUT)]
            paths.append(schemas.PathResult(node=node.id, label=node.label or node.id, type=node.type, ways=[
                schemas.WayResult(way=way, label=label, customers=counted.get(way, (0, 0))[0],
                                  converted=counted.get(way, (0, 0))[1], rate=_rate(*counted.get(way, (0, 0))))
                for way, label in ways]))
        if node.type != "random_split":
            continue
        counted = by_way(node.id)
        groups = [schemas.GroupResult(group=g.name, label=g.label or g.name, control=g.control,
                                      customers=counted.get(g.name, (0, 0))[0],
                                      converted=counted.get(g.name, (0, 0))[1],
                                      rate=_rate(*counted.get(g.name, (0, 0)))) for g in node.groups]
        splits.append(_compare_groups(node, groups) if goal is not None else schemas.SplitResult(
            node=node.id, label=node.label or node.id, compared_with=None, winner=None, groups=groups))
    return schemas.JourneyResults(goal=goal, entered=int(entered), converted=int(reached),
                                  rate=_rate(int(entered), int(reached)), splits=splits, paths=paths,
                                  units=_by_unit(session, visible, converted))


def _by_unit(session: Session, visible: Any, converted: Any) -> list[schemas.UnitResult]:
    """Entered and converted per unit (the customer's when they entered), most customers first."""
    rows = session.execute(select(Enrolment.unit_id, BusinessUnit.name, func.count(),
                                  func.coalesce(func.sum(converted), 0))
                           .join(BusinessUnit, BusinessUnit.id == Enrolment.unit_id).where(visible)
                           .group_by(Enrolment.unit_id, BusinessUnit.name)).all()
    found = [schemas.UnitResult(unit_id=unit_id, unit=name, entered=int(n), converted=int(c),
                                rate=_rate(int(n), int(c))) for unit_id, name, n, c in rows]
    return sorted(found, key=lambda u: (-u.entered, u.unit))


def _rate(customers: int, converted: int) -> float:
    return converted / customers if customers else 0.0


def _compare_groups(node: schemas.RandomSplitNode, groups: list[schemas.GroupResult]) -> schemas.SplitResult:
    """Each group against the control group; without one, the best group against each other group (its winner
    must beat every one of them). Groups nobody reached are left out; the p-values are held to Holm's correction
    for the several comparisons."""
    control = next((g for g in groups if g.control), None)
    compared_with = control if control is not None else max(groups, key=lambda g: g.rate)
    others = [g for g in groups if g is not compared_with and g.customers]
    for group in others:
        _difference(group, compared_with)
    _holm(others)
    if control is not None:
        beating = [g for g in others if g.significant and (g.uplift or 0) > 0]
        winner = max(beating, key=lambda g: g.rate).group if beating else None
    else:
        wins = bool(others) and all(g.significant and (g.uplift or 0) < 0 for g in others)
        winner = compared_with.group if wins else None
    return schemas.SplitResult(node=node.id, label=node.label or node.id, compared_with=compared_with.group,
                               winner=winner, groups=groups)


def _wilson(converted: int, customers: int) -> tuple[float, float]:
    """Wilson's 95 % score interval of a proportion (sensible at 0 and 1, unlike rate ± 1.96 standard errors)."""
    rate, z2 = converted / customers, Z * Z
    centre = (rate + z2 / (2 * customers)) / (1 + z2 / customers)
    half = Z * math.sqrt(rate * (1 - rate) / customers + z2 / (4 * customers * customers)) / (1 + z2 / customers)
    return centre - half, centre + half


def _difference(group: schemas.GroupResult, other: schemas.GroupResult) -> None:
    """``group``'s conversion minus ``other``'s: Newcombe's 95 % interval (from the two Wilson intervals) and the
    two-sided p-value of the two-proportion z-test (pooled), filled in on ``group``. Significant only with at least
    ``MIN_CUSTOMERS`` in each group (and after Holm's correction: ``_holm``)."""
    if group.customers == 0 or other.customers == 0:
        return
    group.uplift = group.rate - other.rate
    low1, high1 = _wilson(group.converted, group.customers)
    low2, high2 = _wilson(other.converted, other.customers)
    group.uplift_low = group.uplift - math.sqrt((group.rate - low1) ** 2 + (high2 - other.rate) ** 2)
    group.uplift_high = group.uplift + math.sqrt((high1 - group.rate) ** 2 + (other.rate - low2) ** 2)
    pooled = (group.converted + other.converted) / (group.customers + other.customers)
    standard = math.sqrt(pooled * (1 - pooled) * (1 / group.customers + 1 / other.customers))
    group.p_value = 1.0 if standard == 0 else math.erfc(abs(group.uplift) / standard / math.sqrt(2))
    group.significant = min(group.customers, other.customers) >= MIN_CUSTOMERS


def _holm(groups: list[schemas.GroupResult]) -> None:
    """Holm's step-down correction: the smallest p-value is held to α / m, the next to α / (m − 1)…; once one
    fails, the larger ones fail too."""
    tested = sorted((g for g in groups if g.p_value is not None), key=lambda g: g.p_value or 0.0)
    passing = True
    for rank, group in enumerate(tested):
        passing = passing and (group.p_value or 0.0) < SIGNIFICANCE / (len(tested) - rank)
        group.significant = group.significant and passing
