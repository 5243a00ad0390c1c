"""HQ's templates for dealers on the journeys pages: the templates offered to a dealer and making one's own of one
(the list page), what a template leaves open and every dealer's journey made of it side by side (HQ's template
page), and on a dealer's journey which template it follows and taking the template's new version."""

from __future__ import annotations

from typing import Any

from nicegui import ui
from sqlalchemy import select

from kehu.journeys import schemas, templates
from kehu.journeys.models import Journey
from kehu.ui.components import add_status_slot, localise_table
from kehu.ui.components.chart import chart
from kehu.ui.shell import run_action, tr, unit_of_work, validated

STATUS_COLOURS = {"draft": "grey-6", "live": "positive", "paused": "deep-orange-6", "stopped": "grey-5"}


def offered_button(principal: Any) -> None:
    """"From a template": shown when a unit above offers any."""
    if not principal.can("journeys", "create"):
        return
    with unit_of_work() as session:
        offered = templates.offered_templates(session, principal)
    if offered:
        ui.button(tr("journeys.template.from"), icon="dashboard_customize",
                  on_click=lambda: _offered_dialog(principal, offered)).props("outline data-testid=from-template")


def _offered_dialog(principal: Any, offered: list[schemas.OfferedTemplate]) -> None:
    chosen: dict[str, Any] = {"id": offered[0].id if len(offered) == 1 else None}
    with ui.dialog() as dialog, ui.card().classes("w-[40rem]").props("data-testid=offered-templates"):
        ui.label(tr("journeys.template.from_title")).classes("text-lg font-medium")
        ui.label(tr("journeys.template.from_text")).classes("text-grey-8 text-sm")
        cards: dict[int, Any] = {}

        def pick(template_id: int) -> None:
            chosen["id"] = template_id
            for other, card in cards.items():
                if other == template_id:
                    card.classes(add="border-primary border-2", remove="border")
                else:
                    card.classes(add="border", remove="border-primary border-2")

        for item in offered:
            with ui.card().classes("w-full cursor-pointer border").props(
                    f"flat data-testid=offered-{item.id}").on("click", lambda _, i=item.id: pick(i)) as card:
                cards[item.id] = card
                with ui.row().classes("w-full items-center gap-2"):
                    ui.label(item.name).classes("font-medium")
                    ui.badge(tr("journeys.template.from_unit", unit=item.unit), color="blue-grey-6")
                    ui.space()
                    ui.label(tr("journeys.template.made", count=item.instances)).classes("text-xs text-grey-7")
                if item.description:
                    ui.label(item.description).classes("text-sm text-grey-8")
                ui.label(tr("journeys.template.open_parts", count=len(item.open)) if item.open
                         else tr("journeys.template.all_locked")).classes("text-xs text-grey-7")
        if chosen["id"] is not None:
            pick(chosen["id"])
        name = ui.input(tr("journeys.col.name")).props("outlined dense data-testid=instance-name").classes("w-full")

        def create() -> None:
            if chosen["id"] is None:
                ui.notify(tr("journeys.template.pick"), type="warning")
                return
            data = validated(lambda: schemas.InstanceCreate(name=name.value or ""))
            if data is None:
                return
            made = run_action(lambda session: templates.instantiate(session, principal, chosen["id"], data).id,
                              tr("journeys.created", name=data.name))
            if made is not None:
                dialog.close()
                ui.navigate.to(f"/journeys/{made}")

        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
            ui.button(tr("journeys.template.make"), on_click=create).props("data-testid=instance-create")
    dialog.open()


def template_card(principal: Any, journey: Any) -> None:
    """On HQ's template: what it is and every dealer's journey made of it. On a dealer's journey: the template it
    follows (and its newer version, to take)."""
    if journey.is_template:
        _instances(principal, journey)
    elif journey.template_id is not None:
        _follows(principal, journey)


def _follows(principal: Any, journey: Any) -> None:
    with unit_of_work() as session:
        name = session.scalar(select(Journey.name).where(Journey.id == journey.template_id,
                                                         Journey.org_id == principal.org_id))
        newer = templates.newest_version(session, principal, journey)
    with ui.card().classes("w-full border-l-4 border-blue-grey-5").props("data-testid=journey-template"):
        with ui.row().classes("items-center gap-2 w-full"):
            ui.icon("dashboard_customize").classes("text-blue-grey-7 text-xl")
            ui.label(tr("journeys.template.follows", name=name or "—", version=journey.template_version or 0)) \
                .classes("text-grey-9")
            ui.space()
            if newer is not None and journey.status != "stopped":
                ui.button(tr("journeys.template.rebase", version=newer), icon="system_update_alt",
                          on_click=lambda: _rebase(principal, journey.id)).props(
                    "outline dense data-testid=journey-rebase")
        ui.label(tr("journeys.template.follows_text")).classes("text-sm text-grey-7")


def _rebase(principal: Any, journey_id: int) -> None:
    if run_action(lambda session: templates.rebase(session, principal, journey_id).id,
                  tr("journeys.template.rebased")) is not None:
        ui.navigate.reload()


def _instances(principal: Any, journey: Any) -> None:
    with ui.card().classes("w-full border-l-4 border-blue-grey-5").props("data-testid=journey-template"):
        with ui.row().classes("items-center gap-2"):
            ui.icon("dashboard_customize").classes("text-blue-grey-7 text-xl")
            ui.label(tr("journeys.template.is_template")).classes("font-medium text-grey-9")
        ui.label(tr("journeys.template.is_template_text")).classes("text-sm text-grey-7")
    if not journey.version:
        return
    with unit_of_work() as session:
        found = templates.instance_results(session, principal, journey.id)
    with ui.card().classes("w-full").props("data-testid=template-instances"):
        ui.label(tr("journeys.template.instances_title")).classes("text-lg font-medium")
        if not found.instances:
            ui.label(tr("journeys.template.no_instances")).classes("text-grey-7")
            return
        if found.goal is not None:
            ui.label(tr("journeys.template.overall", count=len(found.instances), converted=found.converted,
                        entered=found.entered, rate=f"{found.rate:.1%}", event=found.goal.event,
                        days=found.goal.within_days)).classes("text-grey-8")
        rows = [{"id": i.journey_id, "unit": i.unit, "name": i.name, "status": i.status,
                 "version": f"{i.template_version}" + ("" if i.template_version == found.version else " ↑"),
                 "entered": i.entered, "active": i.active, "completed": i.completed, "converted": i.converted,
                 "rate": round(i.rate * 100, 1)} for i in found.instances]
        keys = ("unit", "name", "status", "version", "entered", "active", "completed", "converted", "rate")
        columns = [{"name": key, "label": tr(f"journeys.template.col.{key}"), "field": key, "sortable": True,
                    "align": "left" if key in ("unit", "name", "status") else "right"} for key in keys]
        with ui.row().classes("w-full gap-4 items-start no-wrap"):
            table = ui.table(columns=columns, rows=rows, row_key="id", pagination=15).classes("flex-1").props(
                "flat bordered dense data-testid=template-instances-table")
            localise_table(table, tr)
            add_status_slot(table, "status", {s: tr(f"journeys.status.{s}") for s in STATUS_COLOURS},
                            STATUS_COLOURS)
            table.on("row-click", lambda e: ui.navigate.to(f"/journeys/{e.args[1]['id']}"))
            if found.goal is not None and len(found.instances) > 1:  # one dealer: the table says it all
                shown = found.instances[:15]
                chart({
                    "grid": {"left": 90, "right": 30, "top": 10, "bottom": 30},
                    "tooltip": {"trigger": "axis"},
                    "xAxis": {"type": "value", "axisLabel": {"formatter": "{value}%"}},
                    "yAxis": {"type": "category", "inverse": True, "data": [i.unit for i in shown]},
                    "series": [{"type": "bar", "name": tr("journeys.template.col.rate"),
                                "data": [round(i.rate * 100, 2) for i in shown], "itemStyle": {"color": "#1f4e79"},
                                "markLine": {"data": [{"xAxis": round(found.rate * 100, 2)}],
                                             "label": {"formatter": tr("journeys.template.average"),
                                                       "position": "end"}}}],
                }).classes("w-96").style(f"height: {60 + 26 * len(shown)}px")
