"""Widgets for customers that every domain's pages show: life-cycle stage chips and the export dialog (the
customer list's, and a segment's members')."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from kehu.cdp import exports
from kehu.core.jobs import Job
from kehu.ui.components import add_status_slot
from kehu.ui.shell import run_action, tr, unit_of_work

STAGES = ("visitor", "prospect", "lead", "opportunity", "customer", "owner", "churned")
STAGE_COLOURS = {"visitor": "grey-6", "prospect": "blue-grey-6", "lead": "light-blue-8", "opportunity": "indigo-6",
                 "customer": "green-7", "owner": "teal-8", "churned": "red-6"}


def stage_label(stage: str) -> str:
    return tr(f"stage.{stage}")


def stage_slot(table: ui.table, column: str = "stage") -> None:
    """Show a table's life-cycle stage column as coloured chips."""
    add_status_slot(table, column, {s: stage_label(s) for s in STAGES}, colours=STAGE_COLOURS)


def export_dialog(principal: Any, filters: dict[str, Any]) -> None:
    """Export what the list shows (its search, stage and unit, or a segment's members), as a job; the file
    arrives in the dialog."""
    state: dict[str, Any] = {"format": "xlsx", "id": None}
    with ui.dialog() as dialog, ui.card().classes("w-[520px]"):
        ui.label(tr("export.title")).classes("text-lg font-medium")
        ui.label(tr("export.help")).classes("text-sm text-grey-7")
        with ui.row().classes("items-center gap-3"):
            ui.label(tr("export.format")).classes("text-grey-8")
            ui.toggle({"xlsx": "Excel (.xlsx)", "csv": "CSV"}, value="xlsx",
                      on_change=lambda e: state.__setitem__("format", e.value)).props("no-caps")
        status = ui.label().classes("text-grey-8")
        bar = ui.linear_progress(value=0, show_value=False).props("size=12px rounded animation-speed=300")
        bar.set_visibility(False)
        actions = ui.row().classes("w-full justify-end gap-2")

        def poll() -> None:
            with unit_of_work() as session:
                row = exports.get_export(session, principal, state["id"])
                job = session.get(Job, row.job_id) if row.job_id else None
                done, rows = row.status == "done", row.row_count
                failed = job is not None and job.status == "failed"
                error = job.error if failed and job else ""
            if done or failed:
                timer.deactivate()
                bar.set_visibility(False)
                status.set_text(tr("export.done", rows=f"{rows:,}") if done else tr("export.failed", error=error))
                if done:
                    with actions:
                        ui.button(tr("export.download"), icon="download", on_click=fetch).mark("export-download")

        def fetch() -> None:
            with unit_of_work() as session:
                filename, media_type, content = exports.download(session, principal, state["id"])
            ui.download.content(content, filename, media_type)

        def start() -> None:
            row = run_action(lambda s: exports.request_export(s, principal, format=state["format"],
                                                              filters=exports.ExportFilters(
                                                                  q=filters.get("q") or None,
                                                                  unit_id=filters.get("unit_id"),
                                                                  stage=filters.get("stage"),
                                                                  extra={k: v for k, v in filters.items()
                                                                         if k not in exports.LIST_FILTERS})))
            if row is not None:
                state["id"] = row.id
                start_button.disable()
                status.set_text(tr("export.running"))
                bar.set_visibility(True)
                bar.props("indeterminate")
                timer.activate()

        timer = ui.timer(0.7, poll, active=False)
        with actions:
            ui.button(tr("common.close"), on_click=dialog.close).props("flat")
            start_button = ui.button(tr("export.start"), icon="download", on_click=start).mark("export-start")
    dialog.open()
