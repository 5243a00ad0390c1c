"""A customer's journeys on their Customer 360: the latest walks through journeys — which journey, where they are
now or how it ended, when they entered — each opening to the steps they took (node, way, when)."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from kehu.core.errors import KehuError
from kehu.core.timeutil import format_local
from kehu.journeys import results
from kehu.journeys.service import graph_of
from kehu.tenancy.access import Principal
from kehu.ui.shell import tr, unit_of_work

STATE_COLOURS = {"active": "primary", "completed": "positive", "exited": "grey-7"}


def customer_journeys(principal: Principal, profile_id: int) -> None:
    if not principal.can("journeys"):
        return
    try:
        with unit_of_work() as session:
            walks = results.customer_journeys(session, principal, profile_id)
            labels: dict[tuple[int, int], dict[str, str]] = {}  # a version's node and way names as drawn
            for walk, _, _ in walks:
                nodes = graph_of(session, walk.journey_id, walk.version).nodes
                labels[(walk.journey_id, walk.version)] = {
                    **{node_id: node.label or node_id for node_id, node in nodes.items()},
                    **{f"{node_id}:{way.name}": way.label for node_id, node in nodes.items()
                       for way in [*getattr(node, "branches", []), *getattr(node, "groups", [])] if way.label}}
    except KehuError:
        return
    with ui.card().classes("w-full").props("data-testid=customer-journeys"):
        ui.label(tr("journeys.customer.title")).classes("text-lg font-medium")
        if not walks:
            ui.label(tr("journeys.customer.none")).classes("text-grey-7 text-sm")
            return
        for walk, name, steps in walks:
            named = labels.get((walk.journey_id, walk.version), {})
            where = tr("journeys.customer.at", node=named.get(walk.node, walk.node)) if walk.state == "active" \
                else tr(f"journeys.customer.reason.{walk.exit_reason}", default=walk.exit_reason) \
                if walk.exit_reason else tr("journeys.customer.finished", node=named.get(walk.node, walk.node))
            with ui.expansion().classes("w-full").props("dense") as item:
                with item.add_slot("header"), ui.row().classes("w-full items-center gap-2 no-wrap"):
                    ui.icon("alt_route").classes("text-grey-7")
                    with ui.column().classes("gap-0 flex-1 min-w-0"):
                        ui.link(name, f"/journeys/{walk.journey_id}").classes("text-sm text-primary ellipsis")
                        ui.label(f"{where} · {format_local(walk.entered_at, principal.timezone)}").classes(
                            "text-xs text-grey-6")
                    ui.badge(tr(f"journeys.customer.state.{walk.state}")).props(
                        f"color={STATE_COLOURS.get(walk.state, 'grey-7')}")
                with ui.column().classes("gap-0 pl-8"):
                    for step in steps:
                        ui.label(f"{format_local(step.at, principal.timezone)}　"
                                 f"{named.get(step.node, step.node)}：{_outcome(step, named)}").classes(
                            "text-xs text-grey-8")
                    if not steps:
                        ui.label(tr("journeys.customer.no_steps")).classes("text-xs text-grey-6")


def _outcome(step: Any, named: dict[str, str]) -> str:
    if step.outcome.startswith("branch:"):
        way = step.outcome.removeprefix("branch:")
        return tr("journeys.customer.took", way=named.get(f"{step.node}:{way}")
                  or tr(f"journeys.way.{way}", default=way))
    return tr(f"journeys.customer.outcome.{step.outcome}", default=step.outcome)
