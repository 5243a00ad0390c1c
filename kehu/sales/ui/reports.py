"""The sales reports: the forecast rolled up the unit tree, the funnel and cycle times, first-contact service levels."""

from __future__ import annotations

from nicegui import ui

from kehu.core.errors import KehuError
from kehu.sales import pipelines, reports
from kehu.sales.ui.opportunities import listed, money
from kehu.tenancy import service as tenancy_service
from kehu.ui.components.chart import chart
from kehu.ui.shell import frame, locale, notify_error, tr, unit_of_work


# -- sales reports ----------------------------------------------------------------------------------------------
def reports_page(unit_id: int | None = None) -> None:
    """Forecast, funnel and first-contact service levels for a unit (the reader's by default) and the units
    right under it; a row opens that unit's own report (drill down), the path above leads back up."""
    with frame("nav.sales_reports", "/sales/reports", "opportunities") as principal:
        try:
            with unit_of_work() as session:
                result = reports.forecast(session, principal, unit_id=unit_id, months=6)
                funnel = reports.funnel(session, principal, unit_id=unit_id)
                service_levels = reports.lead_service_levels(session, principal, unit_id=unit_id) \
                    if principal.can("leads") else None
                root = next(r for r in result["units"] if r.unit_id == result["root_id"])
                trail = [u for u in tenancy_service.list_units(session, principal)
                         if f"/{u.id}/" in root.path and u.id != root.unit_id] if principal.can("units") else []
                stage_labels = [pipelines.stage_name(s, locale()) for s in funnel["stages"]]
        except KehuError as error:
            notify_error(error)
            return
        with ui.row().classes("items-center gap-1 text-sm"):
            for unit in trail:
                ui.link(unit.name, f"/sales/reports?unit_id={unit.id}")
                ui.icon("chevron_right").classes("text-grey-6")
            ui.label(root.name).classes("font-medium").props('data-test="report-unit"')
        months = result["months"]
        totals = root.total
        weighted = [float(totals.get(m, {}).get("weighted", 0)) for m in months]
        won = [float(totals.get(m, {}).get("won", 0)) for m in months]
        pipeline = [float(totals.get(m, {}).get("pipeline", 0)) for m in months]
        overdue = totals.get("overdue", {})
        with ui.row().classes("w-full gap-4"):
            _stat(tr("report.weighted_6m"), money(sum(weighted)), "trending_up")
            _stat(tr("report.won_6m"), money(won[0]), "emoji_events")
            _stat(tr("report.overdue"), money(overdue.get("pipeline", 0)), "event_busy",
                  tr("report.overdue_hint", count=overdue.get("open_count", 0)))
            rates = reports.funnel_rates(funnel["units"][0].total, funnel["stages"])
            _stat(tr("report.win_rate"), f"{rates['win_rate']:.0%}" if rates["win_rate"] is not None else "—",
                  "percent", tr("report.days_to_win", days=f"{rates['days_to_win']:.0f}")
                  if rates["days_to_win"] is not None else "")
        with ui.card().classes("w-full"):
            ui.label(tr("report.forecast")).classes("text-lg font-medium")
            ui.label(tr("report.forecast_help")).classes("text-sm text-grey-7")
            chart({
                "tooltip": {"trigger": "axis"},
                "legend": {"top": 0, "data": [tr("report.won"), tr("report.weighted"), tr("report.pipeline")]},
                "grid": {"left": 80, "right": 24, "top": 40, "bottom": 30},
                "xAxis": {"type": "category", "data": months},
                "yAxis": {"type": "value", "axisLabel": {":formatter": "v => (v / 10000).toLocaleString() + '万'"}
                          if locale() == "zh" else {}},
                "series": [
                    {"name": tr("report.won"), "type": "bar", "stack": "f", "data": won,
                     "itemStyle": {"color": "#2e7d32"}},
                    {"name": tr("report.weighted"), "type": "bar", "stack": "f", "data": weighted,
                     "itemStyle": {"color": "#1f4e79"}},
                    {"name": tr("report.pipeline"), "type": "line", "data": pipeline,
                     "itemStyle": {"color": "#c0392b"}, "lineStyle": {"type": "dashed"}}],
            }).classes("w-full h-72").props('data-test="forecast-chart"')
            children = reports.visible_rows(result["units"], root.unit_id, children_only=True)
            columns = [{"name": "unit", "label": tr("users.unit"), "field": "unit", "align": "left"},
                       *({"name": m, "label": m, "field": m} for m in months),
                       {"name": "total", "label": tr("report.total"), "field": "total"}]
            rows = []
            for node in children:
                if node.unit_id == root.unit_id and not node.own:
                    continue  # nothing held at this level itself
                figures = node.own if node.unit_id == root.unit_id else node.total
                label = tr("report.own", unit=node.name) if node.unit_id == root.unit_id else node.name
                cells = {m: money(figures.get(m, {}).get("weighted", 0)) for m in months}
                rows.append({"id": node.unit_id, "unit": label, "drill": node.unit_id != root.unit_id, **cells,
                             "total": money(sum(float(figures.get(m, {}).get("weighted", 0)) for m in months))})
            table = ui.table(columns=columns, rows=rows, row_key="id").props("flat dense").classes("w-full")
            table.props('data-test="forecast-table"')
            table.on("row-click", lambda e: ui.navigate.to(f"/sales/reports?unit_id={e.args[1]['id']}")
                     if e.args[1].get("drill") else None)
            table.classes("cursor-pointer")
        with ui.card().classes("w-full"):
            ui.label(tr("report.funnel")).classes("text-lg font-medium")
            ui.label(tr("report.funnel_help")).classes("text-sm text-grey-7")
            reached = [rates["reached"][s.key] for s in funnel["stages"]]
            chart({
                "tooltip": {"trigger": "item"},
                "grid": {"left": 90, "right": 40, "top": 10, "bottom": 20},
                "xAxis": {"type": "value", "minInterval": 1},
                "yAxis": {"type": "category", "data": stage_labels[::-1]},
                "series": [{"type": "bar", "data": reached[::-1], "itemStyle": {"color": "#1f4e79"},
                            "label": {"show": True, "position": "right"}}],
            }).classes("w-full h-64").props('data-test="funnel-chart"')
            stage_cols = [{"name": s.key, "label": name, "field": s.key} for s, name in zip(
                funnel["stages"], stage_labels, strict=True)]
            columns = [{"name": "unit", "label": tr("users.unit"), "field": "unit", "align": "left"},
                       {"name": "opened", "label": tr("report.opened"), "field": "opened"}, *stage_cols[1:],
                       {"name": "won", "label": tr("report.won_count"), "field": "won"},
                       {"name": "lost", "label": tr("report.lost_count"), "field": "lost"},
                       {"name": "win_rate", "label": tr("report.win_rate"), "field": "win_rate"},
                       {"name": "days", "label": tr("report.cycle"), "field": "days"}]
            rows = []
            for node in reports.visible_rows(funnel["units"], root.unit_id, children_only=True):
                figures = reports.funnel_rates(node.total, funnel["stages"])
                rows.append({"id": node.unit_id, "unit": node.name, "opened": figures["opened"],
                             **{s.key: (f"{figures['reached'][s.key]} · {figures['rates'][s.key]:.0%}"
                                        if figures["rates"].get(s.key) is not None else "—")
                                for s in funnel["stages"][1:]},
                             "won": figures["won"], "lost": figures["lost"],
                             "win_rate": f"{figures['win_rate']:.0%}" if figures["win_rate"] is not None else "—",
                             "days": f"{figures['days_to_win']:.1f}" if figures["days_to_win"] is not None else "—"})
            ui.table(columns=columns, rows=rows, row_key="id").props("flat dense").classes("w-full").props(
                'data-test="funnel-table"')
            stays = rates["days_in_stage"]
            if stays:
                ui.label(tr("report.days_in_stage") + (": " if locale() == "en" else "：") + listed(
                    f"{name} {stays[s.key]:.1f}" for s, name in zip(funnel["stages"], stage_labels, strict=True)
                    if s.key in stays)).classes("text-sm text-grey-8")
        if service_levels is not None:
            with ui.card().classes("w-full"):
                ui.label(tr("report.sla")).classes("text-lg font-medium")
                ui.label(tr("report.sla_help")).classes("text-sm text-grey-7")
                columns = [{"name": "unit", "label": tr("users.unit"), "field": "unit", "align": "left"},
                           *({"name": k, "label": tr(f"report.sla.{k}"), "field": k} for k in (
                               "assigned", "in_time", "late", "waiting_late", "waiting", "escalated", "in_time_rate",
                               "hours_to_contact"))]
                rows = []
                for node in reports.visible_rows(service_levels["units"], root.unit_id, children_only=True):
                    figures = reports.service_level_rates(node.total)
                    rows.append({"id": node.unit_id, "unit": node.name, **{k: figures[k] for k in (
                        "assigned", "in_time", "late", "waiting_late", "waiting", "escalated")},
                        "in_time_rate": f"{figures['in_time_rate']:.0%}" if figures["in_time_rate"] is not None
                        else "—", "hours_to_contact": f"{figures['hours_to_contact']:.1f}"
                        if figures["hours_to_contact"] is not None else "—"})
                ui.table(columns=columns, rows=rows, row_key="id").props("flat dense").classes("w-full").props(
                    'data-test="sla-table"')


def _stat(label: str, value: str, icon: str, hint: str = "") -> None:
    with ui.card().classes("min-w-[220px] flex-1"), ui.row().classes("items-center gap-4 no-wrap"):
        ui.icon(icon).classes("text-4xl text-primary")
        with ui.column().classes("gap-0"):
            ui.label(value).classes("text-2xl font-bold text-grey-9")
            ui.label(label).classes("text-sm text-grey-7")
            if hint:
                ui.label(hint).classes("text-xs text-grey-6")
