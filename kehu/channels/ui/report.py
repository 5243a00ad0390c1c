"""What became of a set of messages — a broadcast's, or every message a template made: the figures, why some were
not sent, sends, opens and clicks by hour, and per dealer for HQ."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nicegui import ui

from kehu.channels import schemas
from kehu.channels.control import SKIP_REASONS
from kehu.core.timeutil import zone
from kehu.ui.components import localise_table
from kehu.ui.components.chart import chart
from kehu.ui.shell import stat_card, tr


def _rate(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "—"


def show_report(principal: Any, report: schemas.Report) -> None:
    """The figures, why some were not sent, sends/opens/clicks by hour and (for HQ) per dealer."""
    delivered_or_sent = report.sent or 0
    with ui.grid(columns=5).classes("w-full gap-4 max-lg:grid-cols-3").props("data-testid=broadcast-report"):
        stat_card(tr("channels.bc.r.total"), f"{report.total:,}", "groups")
        stat_card(tr("channels.bc.r.sent"), f"{report.sent:,}", "send")
        stat_card(tr("channels.bc.r.delivered"), f"{report.delivered:,}", "mark_email_read",
                  _rate(report.delivered, delivered_or_sent))
        stat_card(tr("channels.bc.r.opened"), f"{report.opened:,}", "drafts", _rate(report.opened, delivered_or_sent))
        stat_card(tr("channels.bc.r.clicked"), f"{report.clicked:,}", "ads_click",
                  _rate(report.clicked, delivered_or_sent))
        stat_card(tr("channels.bc.r.held"), f"{report.held + report.queued:,}", "schedule",
                  tr("channels.bc.r.held_hint") if report.held else "")
        stat_card(tr("channels.bc.r.unsubscribed"), f"{report.unsubscribed:,}", "unsubscribe")
        stat_card(tr("channels.bc.r.bounced"), f"{report.bounced:,}", "report")
        stat_card(tr("channels.bc.r.failed"), f"{report.failed + report.unknown:,}", "error",
                  tr("channels.bc.r.unknown", n=report.unknown) if report.unknown else "")
        stat_card(tr("channels.bc.r.not_sent"), f"{sum(report.skipped.values()):,}", "do_not_disturb_on",
                  tr("channels.bc.r.not_sent_hint"))
    with ui.row().classes("w-full gap-4 items-start no-wrap max-lg:flex-wrap"):
        with ui.card().classes("flex-1 min-w-[320px]"):
            ui.label(tr("channels.bc.r.skipped")).classes("text-lg font-medium")
            skipped = sum(report.skipped.values())
            if not report.total:
                ui.label(tr("channels.bc.r.nothing_yet")).classes("text-grey-7 text-sm")
            elif not skipped:
                ui.label(tr("channels.bc.r.none_skipped")).classes("text-grey-7 text-sm")
            for reason in SKIP_REASONS:
                count = report.skipped.get(reason, 0)
                if not count:
                    continue
                with ui.row().classes("w-full items-center gap-2 no-wrap").props(f"data-testid=skipped-{reason}"):
                    ui.label(tr(f"channels.skip.{reason}")).classes("w-36 shrink-0 text-sm")
                    ui.linear_progress(value=count / skipped, show_value=False).props("rounded size=12px").classes(
                        "flex-1")
                    ui.label(f"{count:,}").classes("w-16 text-right text-sm")
        with ui.card().classes("flex-[2] min-w-[360px]"):
            ui.label(tr("channels.bc.r.by_hour")).classes("text-lg font-medium")
            if not report.by_hour:
                ui.label(tr("channels.bc.r.nothing_yet")).classes("text-grey-7 text-sm")
            else:
                tz = zone(principal.timezone)
                hours = [datetime.fromisoformat(h["hour"]).replace(tzinfo=UTC).astimezone(tz).strftime("%m-%d %H:00")
                         for h in report.by_hour]
                chart({
                    "animation": False,  # the figures as they are, at once (a growing bar reads as a small one)
                    "tooltip": {"trigger": "axis"},
                    "legend": {"top": 0, "data": [tr("channels.bc.r.sent"), tr("channels.bc.r.opened"),
                                                  tr("channels.bc.r.clicked")]},
                    "grid": {"left": 50, "right": 20, "top": 40, "bottom": 30},
                    "xAxis": {"type": "category", "data": hours},
                    "yAxis": {"type": "value"},
                    "series": [{"name": tr(f"channels.bc.r.{key}"), "type": "bar" if key == "sent" else "line",
                                "barMaxWidth": 48, "data": [h[key] for h in report.by_hour]}
                               for key in ("sent", "opened", "clicked")],
                }).classes("w-full h-64").props("data-testid=broadcast-chart")
    if report.by_unit:
        with ui.card().classes("w-full"):
            ui.label(tr("channels.bc.r.by_unit")).classes("text-lg font-medium")
            columns: list[dict[str, Any]] = [{"name": "name", "label": tr("channels.bc.r.unit"), "field": "name",
                                              "align": "left", "sortable": True}]
            columns += [{"name": key, "label": tr(f"channels.bc.r.{'not_sent' if key == 'skipped' else key}"),
                         "field": key, "sortable": True}
                        for key in ("sent", "opened", "clicked", "skipped")]
            table = ui.table(columns=columns, rows=report.by_unit, row_key="unit_id", pagination=10).classes(
                "w-full").props("flat bordered dense")
            localise_table(table, tr)
