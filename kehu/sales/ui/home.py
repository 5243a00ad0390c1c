"""The home page (工作台): each role's day. A salesperson sees the leads waiting for their first call, tasks
overdue, today's appointments, their pipeline and month; a dealer manager also their salespeople side by side;
a region its dealers compared and headquarters its regions; administrators the organisation's staff and
recent changes. Figures are read off the event loop with the visitor's sign-in (``read_signed_in``)."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from kehu.core.timeutil import format_local
from kehu.sales import workday
from kehu.sales.ui.opportunities import money
from kehu.tenancy import service as tenancy_service
from kehu.tenancy.access import Principal
from kehu.ui.components.chart import chart
from kehu.ui.shell import (
    actor_name,
    audit_text,
    empty_state,
    frame,
    locale,
    read_signed_in,
    stat_card,
    tr,
    unit_of_work,
)


def _figures(principal: Principal) -> dict[str, Any]:
    with unit_of_work() as session:
        administers = principal.can("units", "update") and principal.can("users", "update")
        return {
            "day": workday.my_day(session, principal),
            "staff_by_region": tenancy_service.staff_by_top_unit(session, principal) if administers else None,
            "entries": tenancy_service.list_audit(session, principal, limit=8).items
            if principal.can("audit") else None,
        }


async def home_page() -> None:
    principal, figures = await read_signed_in(_figures)
    day: workday.Day = figures["day"]
    with frame("nav.dashboard", "/", principal=principal):
        ui.label(tr(f"home.scope.{day.scope_kind}")).classes("text-grey-7 -mt-3")
        _cards(day)
        with ui.row().classes("w-full gap-4 items-stretch max-lg:flex-wrap"):
            if day.waiting is not None:
                _waiting(principal, day)
            if day.today is not None:
                _agenda(principal, day)
        with ui.row().classes("w-full gap-4 items-stretch max-lg:flex-wrap"):
            if day.pipeline is not None:
                _pipeline(day)
            if day.people is not None:
                _people(day)
        if day.units:
            _units(day)
        if figures["staff_by_region"] is not None or figures["entries"] is not None:
            with ui.row().classes("w-full gap-4 items-stretch max-lg:flex-wrap"):
                if figures["staff_by_region"] is not None:
                    _staff(figures["staff_by_region"])
                if figures["entries"] is not None:
                    _recent(principal, figures["entries"])


def _cards(day: workday.Day) -> None:
    with ui.row().classes("w-full gap-4"):
        if day.waiting is not None:
            stat_card(tr("home.waiting"), f"{day.waiting_count:,}", "phone_callback",
                      tr("home.waiting_late", count=day.waiting_late) if day.waiting_late else tr("home.all_in_time"))
        if day.today is not None:
            stat_card(tr("home.today"), f"{len(day.today):,}", "event",
                      tr("home.overdue_hint", count=day.overdue_count) if day.overdue_count else tr("home.no_overdue"))
        if day.pipeline is not None:
            open_count = sum(s["count"] for s in day.pipeline)
            stat_card(tr("home.pipeline"), money(sum(s["amount"] for s in day.pipeline)), "filter_alt",
                      tr("home.pipeline_hint", count=open_count,
                         weighted=money(sum(s["weighted"] for s in day.pipeline))))
        if day.month is not None:
            month = day.month
            stat_card(tr("home.won_month"), money(month["won"]), "emoji_events",
                      tr("home.won_hint", count=month["won_count"], last=money(month["last"])))


def _waiting(principal: Principal, day: workday.Day) -> None:
    with ui.card().classes("flex-1 min-w-[380px]").props('data-test="home-waiting"'):
        with ui.row().classes("w-full items-center"):
            ui.label(tr("home.waiting_title")).classes("text-lg font-medium")
            ui.space()
            ui.link(tr("home.all_leads"), "/leads").classes("text-sm")
        if not day.waiting:
            ui.label(tr("home.waiting_empty")).classes("text-grey-7 text-sm")
        for lead in day.waiting or []:
            with ui.link(target=f"/leads/{lead['id']}").classes(
                    "w-full no-underline text-grey-9 hover:bg-blue-1 rounded"), \
                    ui.row().classes("w-full no-wrap items-center gap-3 py-2 px-1 border-b border-gray-100"):
                ui.icon("alarm" if lead["late"] else "schedule").classes(
                    "text-negative" if lead["late"] else "text-grey-6")
                with ui.column().classes("gap-0 flex-1 min-w-0"):
                    ui.label(lead["customer"] or tr("customers.unnamed")).classes("font-medium truncate")
                    ui.label(" · ".join(filter(None, [lead["model"], tr(f"lead.status.{lead['status']}")]))).classes(
                        "text-xs text-grey-7")
                ui.label(tr("home.due", at=format_local(lead["due_at"], principal.timezone))).classes(
                    "text-xs shrink-0 " + ("text-negative font-medium" if lead["late"] else "text-grey-7"))


def _agenda(principal: Principal, day: workday.Day) -> None:
    def entry(activity: dict[str, Any], late: bool) -> None:
        target = f"/leads/{activity['lead_id']}" if activity["lead_id"] else f"/customers/{activity['profile_id']}"
        with ui.link(target=target).classes("w-full no-underline text-grey-9 hover:bg-blue-1 rounded"), \
                ui.row().classes("w-full no-wrap items-center gap-3 py-2 px-1 border-b border-gray-100"):
            ui.icon(ICONS.get(activity["kind"], "task_alt")).classes("text-primary")
            with ui.column().classes("gap-0 flex-1 min-w-0"):
                ui.label(activity["subject"] or tr(f"activity.kind.{activity['kind']}")).classes("font-medium truncate")
                ui.label(" · ".join(filter(None, [tr(f"activity.kind.{activity['kind']}"),
                                                  activity["customer"]]))).classes("text-xs text-grey-7")
            ui.label(format_local(activity["due_at"], principal.timezone)[-5 if not late else 0:]).classes(
                "text-xs shrink-0 " + ("text-negative font-medium" if late else "text-grey-7"))

    with ui.card().classes("flex-1 min-w-[380px]").props('data-test="home-agenda"'):
        ui.label(tr("home.today_title")).classes("text-lg font-medium")
        if not day.today:
            ui.label(tr("home.today_empty")).classes("text-grey-7 text-sm")
        for activity in day.today or []:
            entry(activity, late=False)
        if day.overdue:
            ui.label(tr("home.overdue_title", count=day.overdue_count)).classes(
                "text-sm font-medium text-negative mt-3")
            for activity in day.overdue:
                entry(activity, late=True)


ICONS = {"call": "call", "visit": "storefront", "test_drive": "directions_car", "quote": "request_quote",
         "wechat": "chat", "sms": "sms", "email": "mail", "task": "task_alt"}


def _pipeline(day: workday.Day) -> None:
    stages = day.pipeline or []
    with ui.card().classes("flex-1 min-w-[380px]").props('data-test="home-pipeline"'):
        with ui.row().classes("w-full items-center"):
            ui.label(tr("home.pipeline_title")).classes("text-lg font-medium")
            ui.space()
            ui.link(tr("home.board"), "/opportunities").classes("text-sm")
        if not any(s["count"] for s in stages):
            ui.label(tr("home.pipeline_empty")).classes("text-grey-7 text-sm")
            return
        names = [s["name_en"] if locale() == "en" else s["name_zh"] for s in stages]
        chart({
            "animation": False,  # figures to read at a glance, drawn at once
            "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
            "legend": {"data": [tr("home.amount"), tr("home.weighted")], "bottom": 0},
            "grid": {"left": 80, "right": 24, "top": 10, "bottom": 40},
            "xAxis": {"type": "value", "axisLabel": {":formatter": "v => (v / 10000).toLocaleString() + '万'"}},
            "yAxis": {"type": "category", "data": names[::-1]},
            "series": [
                {"name": tr("home.amount"), "type": "bar", "data": [float(s["amount"]) for s in stages][::-1],
                 "itemStyle": {"color": "#90caf9"}},
                {"name": tr("home.weighted"), "type": "bar", "data": [float(s["weighted"]) for s in stages][::-1],
                 "itemStyle": {"color": "#1f4e79"}},
            ],
        }).classes("h-72 w-full")


def _people(day: workday.Day) -> None:
    with ui.card().classes("flex-1 min-w-[480px]").props('data-test="home-team"'):
        ui.label(tr("home.team_title")).classes("text-lg font-medium")
        rows = [{**p, "pipeline_text": money(p["pipeline"]), "won_text": money(p["won"])} for p in day.people or []]
        columns = [
            {"name": "name", "label": tr("home.person"), "field": "name", "align": "left", "sortable": True},
            {"name": "open_leads", "label": tr("home.open_leads"), "field": "open_leads", "sortable": True},
            {"name": "late_leads", "label": tr("home.late_leads"), "field": "late_leads", "sortable": True},
            {"name": "open_deals", "label": tr("home.open_deals"), "field": "open_deals", "sortable": True},
            {"name": "pipeline", "label": tr("home.amount"), "field": "pipeline_text"},
            {"name": "won", "label": tr("home.won_month"), "field": "won_text"},
        ]
        table = ui.table(columns=columns, rows=rows, row_key="user_id", pagination=10).classes("w-full").props(
            "flat dense")
        table.add_slot("body-cell-late_leads", """
            <q-td :props="props" :class="props.value > 0 ? 'text-negative text-weight-medium' : ''">
              {{ props.value }}</q-td>""")
        if not rows:
            ui.label(tr("home.team_empty")).classes("text-grey-7 text-sm")


def _units(day: workday.Day) -> None:
    units = day.units or []
    with ui.card().classes("w-full").props('data-test="home-units"'):
        ui.label(tr(f"home.units_title.{day.scope_kind}")).classes("text-lg font-medium")
        with ui.row().classes("w-full gap-4 no-wrap max-lg:flex-wrap"):
            shown = units[:15]
            chart({
                "animation": False,
                "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
                "legend": {"data": [tr("home.won_month"), tr("home.amount")], "bottom": 0},
                "grid": {"left": 120, "right": 24, "top": 10, "bottom": 40},
                "xAxis": {"type": "value", "axisLabel": {":formatter": "v => (v / 10000).toLocaleString() + '万'"}},
                "yAxis": {"type": "category", "data": [u["name"] for u in shown][::-1]},
                "series": [
                    {"name": tr("home.won_month"), "type": "bar", "data": [float(u["won"]) for u in shown][::-1],
                     "itemStyle": {"color": "#2e7d32"}},
                    {"name": tr("home.amount"), "type": "bar", "data": [float(u["pipeline"]) for u in shown][::-1],
                     "itemStyle": {"color": "#90caf9"}},
                ],
            }).classes("h-80 flex-1 min-w-[380px]")
            rows = [{**u, "pipeline_text": money(u["pipeline"]), "won_text": money(u["won"])} for u in units]
            ui.table(columns=[
                {"name": "name", "label": tr("home.unit"), "field": "name", "align": "left", "sortable": True},
                {"name": "won", "label": tr("home.won_month"), "field": "won_text"},
                {"name": "won_count", "label": tr("home.won_count"), "field": "won_count", "sortable": True},
                {"name": "pipeline", "label": tr("home.amount"), "field": "pipeline_text"},
                {"name": "open_leads", "label": tr("home.open_leads"), "field": "open_leads", "sortable": True},
                {"name": "late_leads", "label": tr("home.late_leads"), "field": "late_leads", "sortable": True},
            ], rows=rows, row_key="unit_id", pagination=10).classes("flex-1 min-w-[420px]").props("flat dense")


def _staff(staff_by_region: list[tuple[str, int]]) -> None:
    with ui.card().classes("flex-1 min-w-[380px]"):
        ui.label(tr("dashboard.staff_by_region")).classes("text-lg font-medium")
        if not staff_by_region:
            ui.label(tr("dashboard.no_staff")).classes("text-grey-7")
            return
        names = [n for n, _ in staff_by_region]
        chart({
            "animation": False,
            "tooltip": {"trigger": "axis"},
            "grid": {"left": 120, "right": 24, "top": 10, "bottom": 24},
            "xAxis": {"type": "value", "minInterval": 1},
            "yAxis": {"type": "category", "data": names[::-1]},
            "series": [{"type": "bar", "data": [c for _, c in staff_by_region][::-1],
                        "itemStyle": {"color": "#1f4e79"}, "label": {"show": True, "position": "right"}}],
        }).classes("h-72 w-full")


def _recent(principal: Principal, entries: list[Any]) -> None:
    with ui.card().classes("flex-1 min-w-[380px]"):
        ui.label(tr("dashboard.recent_changes")).classes("text-lg font-medium")
        if not entries:
            empty_state("history", tr("audit.empty"), tr("audit.empty_text"))
        for entry in entries:
            with ui.row().classes("w-full no-wrap gap-3 text-sm py-2 border-b border-gray-200"):
                ui.label(format_local(entry.ts, principal.timezone)).classes("text-grey-6 w-32 shrink-0")
                ui.label(actor_name(entry)).classes("w-24 shrink-0 font-medium truncate")
                ui.label(audit_text(entry)).classes("text-grey-8")
