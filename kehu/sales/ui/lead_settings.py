"""Lead settings: where leads come from (rules on events), where they go (routing), how fast they are answered
(first-contact levels), and scoring."""

from __future__ import annotations

from typing import Any

from nicegui import ui
from pydantic import ValidationError

from kehu.core.i18n import t
from kehu.core.timeutil import format_local
from kehu.sales import routing, schemas, scoring, service
from kehu.sales.ui.leads import SOURCES
from kehu.tenancy import service as tenancy_service
from kehu.ui.shell import frame, locale, run_action, tr, unit_of_work

# -- settings: where leads come from, where they go, how fast they are answered ------------------------------------
METHODS = ("round_robin", "least_loaded", "none")


def _event_name(key: str | None) -> str:
    """An event as people know it, its key beside it for whoever wires up the tracking: 预约试驾 · test_drive_booked."""
    name = t(f"event.{key}", locale(), default="") if key else ""
    return f"{name} · {key}" if name and name != key else (key or "")


def settings_page() -> None:
    with frame("nav.lead_settings", "/admin/leads", "settings.manage") as principal:
        manage = principal.has("settings.manage")
        with unit_of_work() as session:
            units = {u.id: ("　" * u.depth) + u.name for u in tenancy_service.list_units(session, principal)} \
                if principal.can("units") else {}
        ui.label(tr("lead_settings.intro")).classes("text-grey-7")
        rules_card = ui.column().classes("w-full")
        routing_card = ui.column().classes("w-full")
        sla_card = ui.column().classes("w-full")

        def draw_rules() -> None:
            rules_card.clear()
            with unit_of_work() as session:
                rows = [{"id": r.id, "event": _event_name(r.event), "source": tr(f"lead.source.{r.source}"),
                         "model_property": r.model_property, "active": tr("status.active") if r.is_active
                         else tr("status.inactive"), "raw": {"event": r.event, "source": r.source,
                                                               "model_property": r.model_property,
                                                               "is_active": r.is_active}}
                        for r in service.list_rules(session, principal)]
            with rules_card, ui.card().classes("w-full"):
                with ui.row().classes("w-full items-center"):
                    ui.label(tr("lead_settings.rules")).classes("text-lg font-medium")
                    ui.space()
                    if manage:
                        ui.button(tr("lead_settings.add_rule"), icon="add", on_click=lambda: rule_dialog(None)).props(
                            "outline").mark("add-lead-rule")
                ui.label(tr("lead_settings.rules_help")).classes("text-sm text-grey-7")
                if not rows:
                    ui.label(tr("lead_settings.no_rules")).classes("text-grey-7")
                    return
                table = ui.table(columns=[
                    {"name": "event", "label": tr("segments.event"), "field": "event", "align": "left"},
                    {"name": "source", "label": tr("leads.source"), "field": "source", "align": "left"},
                    {"name": "model_property", "label": tr("lead_settings.model_property"),
                     "field": "model_property", "align": "left"},
                    {"name": "active", "label": tr("users.status"), "field": "active", "align": "left"},
                ], rows=rows, row_key="id").classes("w-full").props("flat bordered")
                if manage:
                    table.on("row-click", lambda e: rule_dialog(e.args[1]))
                    table.props("hover")

        def rule_dialog(row: dict[str, Any] | None) -> None:
            raw = (row or {}).get("raw") or {"event": "", "source": "web", "model_property": "model",
                                             "is_active": True}
            with ui.dialog() as dialog, ui.card().classes("w-[480px]"):
                ui.label(tr("lead_settings.rule")).classes("text-lg font-medium")
                event = ui.input(tr("segments.event"), value=raw["event"], placeholder="test_drive_booked").classes(
                    "w-full").mark("lead-rule-event")
                if row:
                    event.disable()
                source = ui.select({s: tr(f"lead.source.{s}") for s in (*SOURCES, "api")}, value=raw["source"],
                                   label=tr("leads.source")).classes("w-full")
                prop = ui.input(tr("lead_settings.model_property"), value=raw["model_property"]).classes("w-full")
                active = ui.switch(tr("status.active"), value=raw["is_active"])

                def save() -> None:
                    try:
                        data = schemas.LeadRuleIn(event=event.value or "", source=source.value,
                                                  model_property=prop.value or "model", is_active=active.value)
                    except ValidationError:
                        ui.notify(tr("lead_settings.incomplete"), type="warning")
                        return
                    if run_action(lambda s: service.save_rule(s, principal, data), tr("done.lead_rule_saved")):
                        dialog.close()
                        draw_rules()

                def remove() -> None:
                    if run_action(lambda s: service.delete_rule(s, principal, row["id"]) or True,  # type: ignore[index]
                                  tr("done.lead_rule_deleted")):
                        dialog.close()
                        draw_rules()

                with ui.row().classes("w-full justify-end"):
                    if row:
                        ui.button(tr("common.delete"), on_click=remove).props("flat color=negative")
                    ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                    ui.button(tr("common.save"), on_click=save).mark("lead-rule-save")
            dialog.open()

        def draw_routing() -> None:
            routing_card.clear()
            with unit_of_work() as session:
                rules = service.list_routing(session, principal)
                rows = [{"id": r.id, "priority": r.priority, "name": r.name,
                         "when": "；".join(filter(None, [", ".join(r.provinces), ", ".join(r.cities),
                                                        ", ".join(r.models),
                                                        ", ".join(tr(f"lead.source.{x}") for x in r.sources)]))
                         or tr("lead_settings.anything"),
                         "unit": units.get(r.unit_id, "").strip(), "method": tr(f"lead_settings.method.{r.method}"),
                         "active": tr("status.active") if r.is_active else tr("status.inactive"),
                         "raw": schemas.RoutingRuleIn.model_validate(r, from_attributes=True).model_dump()}
                        for r in rules]
            with routing_card, ui.card().classes("w-full"):
                with ui.row().classes("w-full items-center"):
                    ui.label(tr("lead_settings.routing")).classes("text-lg font-medium")
                    ui.space()
                    if manage:
                        ui.button(tr("lead_settings.add_routing"), icon="add",
                                  on_click=lambda: routing_dialog(None)).props("outline").mark("add-routing")
                ui.label(tr("lead_settings.routing_help")).classes("text-sm text-grey-7")
                if not rows:
                    ui.label(tr("lead_settings.no_routing")).classes("text-grey-7")
                    return
                table = ui.table(columns=[
                    {"name": "priority", "label": tr("lead_settings.priority"), "field": "priority",
                     "sortable": True},
                    {"name": "name", "label": tr("api_keys.name"), "field": "name", "align": "left"},
                    {"name": "when", "label": tr("lead_settings.when"), "field": "when", "align": "left"},
                    {"name": "unit", "label": tr("lead_settings.to_unit"), "field": "unit", "align": "left"},
                    {"name": "method", "label": tr("lead_settings.method"), "field": "method", "align": "left"},
                    {"name": "active", "label": tr("users.status"), "field": "active", "align": "left"},
                ], rows=rows, row_key="id", pagination=15).classes("w-full").props("flat bordered")
                if manage:
                    table.on("row-click", lambda e: routing_dialog(e.args[1]))
                    table.props("hover")

        def routing_dialog(row: dict[str, Any] | None) -> None:
            raw = (row or {}).get("raw") or {"name": "", "priority": 100, "provinces": [], "cities": [], "models": [],
                                             "sources": [], "unit_id": None, "method": "round_robin",
                                             "is_active": True}
            with ui.dialog() as dialog, ui.card().classes("w-[560px]"):
                ui.label(tr("lead_settings.routing_rule")).classes("text-lg font-medium")
                with ui.row().classes("w-full gap-3 no-wrap"):
                    name = ui.input(tr("api_keys.name"), value=raw["name"]).classes("flex-1").mark("routing-name")
                    priority = ui.number(tr("lead_settings.priority"), value=raw["priority"], min=0, step=10,
                                         format="%.0f").classes("w-28")
                lists = {}
                for key in ("provinces", "cities", "models"):
                    lists[key] = ui.select(raw[key], value=raw[key], multiple=True, new_value_mode="add-unique",
                                           label=tr(f"lead_settings.{key}")).props("use-chips use-input").classes(
                        "w-full")
                sources = ui.select({s: tr(f"lead.source.{s}") for s in (*SOURCES, "api")}, value=raw["sources"],
                                    multiple=True, label=tr("lead_settings.sources")).props("use-chips").classes(
                    "w-full")
                unit = ui.select(units, value=raw["unit_id"], with_input=True, label=tr("lead_settings.to_unit")
                                 ).classes("w-full").mark("routing-unit")
                method = ui.select({m: tr(f"lead_settings.method.{m}") for m in METHODS}, value=raw["method"],
                                   label=tr("lead_settings.method")).classes("w-full")
                active = ui.switch(tr("status.active"), value=raw["is_active"])
                ui.label(tr("lead_settings.lists_help")).classes("text-xs text-grey-7")

                def save() -> None:
                    try:
                        data = schemas.RoutingRuleIn(
                            name=name.value or "", priority=int(priority.value or 0),
                            **{k: list(v.value or []) for k, v in lists.items()}, sources=list(sources.value or []),
                            unit_id=unit.value, method=method.value, is_active=active.value)
                    except ValidationError:
                        ui.notify(tr("lead_settings.incomplete"), type="warning")
                        return
                    if run_action(lambda s: service.save_routing(s, principal, data, row["id"] if row else None),
                                  tr("done.routing_saved")):
                        dialog.close()
                        draw_routing()

                def remove() -> None:
                    if run_action(lambda s: service.delete_routing(s, principal, row["id"]) or True,  # type: ignore[index]
                                  tr("done.routing_deleted")):
                        dialog.close()
                        draw_routing()

                with ui.row().classes("w-full justify-end"):
                    if row:
                        ui.button(tr("common.delete"), on_click=remove).props("flat color=negative")
                    ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                    ui.button(tr("common.save"), on_click=save).mark("routing-save")
            dialog.open()

        def draw_sla() -> None:
            sla_card.clear()
            with unit_of_work() as session:
                levels = [(row.unit_id, row.first_contact_hours, row.opens_at, row.closes_at, row.open_days)
                          for row in service.list_slas(session, principal)]
            default = next((level for level in levels if level[0] is None),
                           (None, routing.DEFAULT_FIRST_CONTACT_HOURS, None, None, list(range(7))))
            days = {d: tr(f"weekday.{d}") for d in range(7)}
            with sla_card, ui.card().classes("w-full"):
                ui.label(tr("lead_settings.sla")).classes("text-lg font-medium")
                ui.label(tr("lead_settings.sla_help")).classes("text-sm text-grey-7")
                with ui.row().classes("items-center gap-3"):
                    hours = ui.number(tr("lead_settings.default_hours"), value=default[1], min=1, max=720,
                                      format="%.0f").classes("w-48")
                    opens = ui.input(tr("lead_settings.opens"), placeholder="09:00",
                                     value=default[2].strftime("%H:%M") if default[2] else "").classes("w-28")
                    closes = ui.input(tr("lead_settings.closes"), placeholder="18:00",
                                      value=default[3].strftime("%H:%M") if default[3] else "").classes("w-28")
                    open_days = ui.select(days, multiple=True, value=list(default[4] or range(7)),
                                          label=tr("lead_settings.open_days")).props("use-chips").classes("w-96")
                    if manage:
                        ui.button(tr("common.save"), on_click=lambda: set_level(
                            None, hours.value, opens.value, closes.value, open_days.value)).props("outline")
                ui.label(tr("lead_settings.hours_help")).classes("text-xs text-grey-6")
                for unit_id, level, unit_opens, unit_closes, unit_days in levels:
                    if unit_id is None:
                        continue
                    with ui.row().classes("items-center gap-3 text-sm"):
                        ui.label(units.get(unit_id, str(unit_id)).strip()).classes("w-56")
                        ui.label(tr("lead_settings.hours", hours=level) + (
                            f" · {unit_opens:%H:%M}–{unit_closes:%H:%M} " + "、".join(days[d] for d in unit_days)
                            if unit_opens and unit_closes else ""))
                        if manage:
                            ui.button(icon="close", on_click=lambda u=unit_id: remove_level(u)).props(
                                "flat round dense")
                if manage:
                    with ui.row().classes("items-center gap-3"):
                        which = ui.select(units, with_input=True, label=tr("lead_settings.unit_level")).classes(
                            "w-56")
                        own = ui.number(tr("lead_settings.hours_short"), value=8, min=1, max=720,
                                        format="%.0f").classes("w-28")
                        ui.button(tr("lead_settings.add_level"), on_click=lambda: set_level(which.value, own.value)
                                  if which.value else None).props("flat")

        def set_level(unit_id: int | None, value: Any, opens: str = "", closes: str = "",
                      open_days: Any = None) -> None:
            try:
                data = schemas.SlaIn(unit_id=unit_id, first_contact_hours=int(value or 0),
                                     opens_at=opens.strip() or None, closes_at=closes.strip() or None,
                                     open_days=sorted(open_days) if open_days else list(range(7)))
            except ValidationError:
                ui.notify(tr("lead_settings.incomplete"), type="warning")
                return
            if run_action(lambda s: service.set_sla(s, principal, data), tr("done.sla_saved")):
                draw_sla()

        def remove_level(unit_id: int) -> None:
            if run_action(lambda s: service.delete_sla(s, principal, unit_id) or True,
                          tr("done.sla_removed")):
                draw_sla()

        scoring_card = ui.column().classes("w-full")

        def draw_scoring() -> None:
            scoring_card.clear()
            with unit_of_work() as session:
                model = schemas.ScoringOut.model_validate(scoring.model_of(session, principal.org_id))
                rows = [{"id": r.id, "name": r.name, "what": _event_name(r.event) if r.kind == "event" else tr(
                    "lead_settings.score_condition"), "points": r.points,
                         "decay": tr("lead_settings.half_life", days=r.half_life_days) if r.kind == "event" else "—",
                         "max": r.max_points or "—"} for r in scoring.list_rules(session, principal)]
            with scoring_card, ui.card().classes("w-full"):
                with ui.row().classes("w-full items-center"):
                    ui.label(tr("lead_settings.scoring")).classes("text-lg font-medium")
                    ui.label(tr("rfm.computed", at=format_local(model.computed_at, principal.timezone))
                             if model.computed_at else tr("rfm.never")).classes("text-sm text-grey-7")
                    ui.space()
                    if manage:
                        ui.button(tr("lead_settings.score_now"), icon="calculate", on_click=lambda: run_action(
                            lambda s: scoring.request_run(s, principal), tr("lead_settings.score_queued"))).props(
                            "outline")
                ui.label(tr("lead_settings.scoring_help")).classes("text-sm text-grey-7")
                with ui.row().classes("items-center gap-3"):
                    threshold = ui.number(tr("lead_settings.threshold"), value=model.mql_threshold, min=1,
                                          format="%.0f").classes("w-48")
                    if manage:
                        ui.button(tr("common.save"), on_click=lambda: run_action(
                            lambda s: scoring.set_threshold(s, principal, int(threshold.value or 0)),
                            tr("done.threshold_saved"))).props("flat")
                if rows:
                    ui.table(columns=[
                        {"name": "name", "label": tr("api_keys.name"), "field": "name", "align": "left"},
                        {"name": "what", "label": tr("lead_settings.score_what"), "field": "what", "align": "left"},
                        {"name": "points", "label": tr("lead_settings.points"), "field": "points"},
                        {"name": "decay", "label": tr("lead_settings.decay"), "field": "decay", "align": "left"},
                        {"name": "max", "label": tr("lead_settings.max_points"), "field": "max"},
                    ], rows=rows, row_key="id").classes("w-full").props("flat bordered")
                else:
                    ui.label(tr("lead_settings.no_scoring")).classes("text-grey-7")
                if manage:
                    with ui.row().classes("items-center gap-2"):
                        name = ui.input(tr("api_keys.name")).props("dense outlined").classes("w-40")
                        event = ui.input(tr("segments.event"), placeholder="test_drive_booked").props(
                            "dense outlined").classes("w-48")
                        points = ui.number(tr("lead_settings.points"), value=10, format="%.0f").props(
                            "dense outlined").classes("w-24")
                        half = ui.number(tr("lead_settings.half_life_days"), value=30, min=1, format="%.0f").props(
                            "dense outlined").classes("w-28")
                        cap = ui.number(tr("lead_settings.max_points"), min=1, format="%.0f").props(
                            "dense outlined clearable").classes("w-24")
                        ui.button(tr("lead_settings.add_score_rule"), icon="add", on_click=lambda: add_score(
                            name.value, event.value, points.value, half.value, cap.value)).props("flat")

        def add_score(name: Any, event: Any, points: Any, half: Any, cap: Any) -> None:
            try:
                data = schemas.ScoreRuleIn(name=name or event or "", event=event or None, points=int(points or 0),
                                           half_life_days=int(half or 30), max_points=int(cap) if cap else None)
            except (ValidationError, ValueError):
                ui.notify(tr("lead_settings.incomplete"), type="warning")
                return
            if run_action(lambda s: scoring.save_rule(s, principal, data), tr("done.score_rule_saved")):
                draw_scoring()

        draw_rules()
        draw_routing()
        draw_scoring()
        draw_sla()
