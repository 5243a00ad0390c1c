"""Test before launch: one customer walked through a journey as drawn, on a simulated clock, writing nothing — the
path they would take (each split's condition evaluated on their data at that simulated moment, their random split
group drawn as the engine draws it), when each node would act, and each message rendered as they would receive it.

What it does not foresee, and says so: whether communication control lets a message through on the day (consent
may change, caps depend on what else is sent), and events other than those the tester says come."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.cdp import service as cdp_service
from kehu.cdp.models import Profile
from kehu.channels import schemas as channel_schemas
from kehu.channels import templates
from kehu.core.db import utcnow
from kehu.core.errors import Forbidden, KehuError, ValidationFailed
from kehu.core.i18n import t
from kehu.journeys import schemas
from kehu.journeys.service import Graph, get_journey, journey_units, parse
from kehu.journeys.timing import profile_dates, wait_until
from kehu.segments.conditions import compile_condition
from kehu.tenancy.access import Principal, check_references, org_timezone

MOST_STEPS = 100  # a drawing with a loop (publishing refuses one) ends the test run here


def test_run(session: Session, principal: Principal, journey_id: int, data: schemas.TestRun) -> schemas.TestRunOut:
    """The walk of ``data.profile_id`` (a customer the tester may read) through the journey's draft."""
    from kehu.journeys.engine import share_out  # the engine's own draw, so the test run shows the real group

    journey = get_journey(session, principal, journey_id)
    check_references(session, principal, {"profile_id": cdp_service.customer_ref(data.profile_id)})
    profile = session.get_one(Profile, data.profile_id)
    definition = parse(journey.draft or {})
    graph = Graph(definition)
    timezone = org_timezone(session, journey.org_id)
    units = journey_units(session, journey)
    at = data.start_at or utcnow()
    steps: list[schemas.TestStep] = []
    node_id = graph.entry
    happened = set(data.happened)
    locale = principal.locale
    while node_id is not None and len(steps) < MOST_STEPS:
        node = graph.nodes[node_id]
        step = schemas.TestStep(node=node.id, type=node.type, label=node.label or "", at=at)
        steps.append(step)
        way: str | None = None
        if node.type == "exit":
            return schemas.TestRunOut(profile_id=profile.id, enters=_enters(profile, units), steps=steps,
                                      ends="completed")
        if node.type in ("wait", "wait_for_event"):
            came = node.type == "wait_for_event" and node.id in happened
            if node.type == "wait_for_event":
                way = schemas.HAPPENED if came else schemas.TIMED_OUT
            at = at if came else at + timedelta(seconds=node.seconds)
            step.does = t("journeys.test.came" if came else "journeys.test.until", locale,
                          at=_local(at, timezone))
        elif node.type == "wait_until":
            on = profile_dates(session, node.field, [profile.id]).get(profile.id) if node.field else None
            at = wait_until(node, at, timezone, on)
            step.does = t("journeys.test.until", locale, at=_local(at, timezone))
        elif node.type == "send":
            step.message, step.problem = _rendered(session, principal, node.template_id, profile.id)
            step.does = t("journeys.test.sends", locale)
        elif node.type == "split":
            way = _branch(session, principal, journey.org_id, timezone, node, profile.id, at, units)
        elif node.type == "random_split":
            way = next(name for name, taken in share_out(journey.id, node, [(0, profile.id)]).items() if taken)
        elif node.type in ("tag", "field", "segment", "lead", "task"):
            step.does = t(f"journeys.test.{node.type}", locale)
        step.way = way
        if node.type in ("wait", "wait_for_event", "wait_until") and at > step.at:
            step.at = at  # a wait acts when it ends
        node_id = graph.next(node.id, way)
        if node_id is None:
            step.problem = t("journeys.test.unconnected", locale)
            return schemas.TestRunOut(profile_id=profile.id, enters=_enters(profile, units), steps=steps,
                                      ends="stopped")
    return schemas.TestRunOut(profile_id=profile.id, enters=_enters(profile, units), steps=steps,
                              ends="too_long" if node_id is not None else "stopped")


def _enters(profile: Profile, units: tuple[int, ...] | None) -> bool:
    return profile.merged_into_id is None and (units is None or profile.unit_id in units)


def _local(at: datetime, timezone: str) -> str:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def _rendered(session: Session, principal: Principal, template_id: int | None,
              profile_id: int) -> tuple[channel_schemas.Rendered | None, str | None]:
    """The send's message as the customer would receive it, or why it cannot be shown."""
    if template_id is None:
        return None, t("journeys.problem.template", principal.locale)
    try:
        return templates.preview(session, principal, template_id,
                                 channel_schemas.TemplatePreviewRequest(profile_id=profile_id)), None
    except KehuError as error:  # archived, out of reach, or it does not render for this customer
        if error.message is None:
            return None, error.detail
        key, params = error.message
        words = {k: (v.get(principal.locale) or next(iter(v.values()), "")) if isinstance(v, dict) else v
                 for k, v in params.items()}
        return None, t(key, principal.locale, **words)


def _branch(session: Session, principal: Principal, org_id: int, timezone: str, node: schemas.SplitNode,
            profile_id: int, at: datetime, units: tuple[int, ...] | None) -> str:
    """The first branch whose condition the customer meets at ``at`` (as the tester may ask: a condition on
    personal data they may not read is not evaluated for them), else ``else``."""
    for branch in node.branches:
        if branch.condition is None:
            continue
        try:
            clause = compile_condition(session, org_id, timezone, branch.condition, reader=principal, now=at,
                                       happening_units=units)
        except (ValidationFailed, Forbidden):
            continue
        if session.scalar(select(Profile.id).where(Profile.id == profile_id, clause)) is not None:
            return branch.name
    return schemas.ELSE

