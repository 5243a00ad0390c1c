"""Importing customers and orders from files: mapping columns, a preview, the run, its rejected rows and warnings."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from kehu.cdp import fields, imports
from kehu.core.i18n import t
from kehu.core.timeutil import format_local
from kehu.ui.components import localise_table
from kehu.ui.shell import (
    frame,
    locale,
    run_action,
    tr,
    unit_of_work,
)


# -- import --------------------------------------------------------------------------------------------
def _target_options(header: str, defined: dict[str, Any], kind: str = "profiles") -> dict[str, str]:
    options = {"": tr("imports.ignore")}
    if kind == "orders":
        options.update({f: tr(f"imports.order.{f}") for f in imports.ORDER_FIELDS})
        options.update({f: tr(f"field.{f}") for f in imports.ORDER_CUSTOMER_FIELDS})
        options.update({f"identity:{k}": t(f"identity.{k}", locale(), default=k) for k in imports.IDENTITY_KINDS})
        return options
    options.update({f: tr(f"field.{f}") for f in imports.STANDARD_FIELDS})
    options.update({f"identity:{k}": t(f"identity.{k}", locale(), default=k) for k in imports.IDENTITY_KINDS})
    options.update({f"attribute:{k}": tr("imports.custom_field", label=f.label_en if locale() == "en" else f.label_zh)
                    for k, f in defined.items()})
    options.setdefault(f"attribute:{header}", tr("imports.as_attribute", header=header))
    return options


def import_page() -> None:
    with frame("imports.title", "/customers", "imports") as principal:
        state: dict[str, Any] = {"run_id": None, "kind": "profiles"}
        help_text = ui.label(tr("imports.help")).classes("text-grey-7")
        steps = ui.column().classes("w-full gap-4")

        def pick_kind(kind: str) -> None:
            state["kind"] = kind
            help_text.set_text(tr("imports.help_orders" if kind == "orders" else "imports.help"))

        async def uploaded(event: Any) -> None:
            content = await event.file.read()
            run = run_action(lambda s: imports.upload(s, principal, filename=event.file.name, content=content,
                                                      kind=state["kind"]))
            if run is not None:
                state["run_id"] = run.id
                show_mapping()

        def show_mapping() -> None:
            with unit_of_work() as session:
                run = imports.get_run(session, principal, state["run_id"])
                headers, mapping, total, filename = list(run.headers), dict(run.mapping), run.total_rows, run.filename
                kind = run.kind
                samples = imports.preview(session, principal, run.id, limit=3)
                defined = fields.definitions(session, run.org_id)
            steps.clear()
            with steps, ui.card().classes("w-full"):
                ui.label(tr("imports.mapping_title", file=filename, rows=total)).classes("text-lg font-medium")
                with ui.grid(columns=3).classes("w-full gap-x-6 gap-y-2 items-center"):
                    for label in (tr("imports.column"), tr("imports.samples"), tr("imports.target")):
                        ui.label(label).classes("text-xs text-grey-7 font-medium")
                    for header in headers:
                        ui.label(header).classes("font-medium")
                        ui.label(" · ".join(filter(None, (r.values.get(header, "") for r in samples))) or "—"
                                 ).classes("text-sm text-grey-8 truncate")
                        ui.select(_target_options(header, defined, kind), value=mapping.get(header, ""),
                                  on_change=lambda e, h=header: mapping.__setitem__(h, e.value)).props(
                            "dense outlined options-dense").classes("w-64")
                preview_box = ui.column().classes("w-full mt-4")

                def check() -> bool:
                    saved = run_action(lambda s: imports.set_mapping(s, principal, state["run_id"], mapping))
                    if saved is None:
                        return False
                    with unit_of_work() as session:
                        rows_ = imports.preview(session, principal, state["run_id"], limit=10, locale=locale())
                    preview_box.clear()
                    with preview_box:
                        ui.label(tr("imports.preview")).classes("font-medium")
                        for row in rows_:
                            with ui.row().classes("w-full no-wrap items-start gap-2 text-sm"):
                                icon, colour = (("error", "text-negative") if not row.ok else
                                                ("warning", "text-warning") if row.warnings else
                                                ("check_circle", "text-positive"))
                                ui.icon(icon).classes(colour)
                                ui.label(tr("imports.row", n=row.row_number)).classes("w-16 shrink-0 text-grey-7")
                                with ui.column().classes("gap-0"):
                                    ui.label(row.reason or " · ".join(v for v in row.values.values() if v)).classes(
                                        "text-negative" if not row.ok else "text-grey-8")
                                    if row.warnings:
                                        ui.label(row.warnings).classes("text-orange-9")
                    return True

                def begin() -> None:
                    if check():
                        started = run_action(lambda s: imports.start(s, principal, state["run_id"]))
                        if started is not None:
                            show_progress()

                with ui.row().classes("gap-2 mt-2"):
                    ui.button(tr("imports.check"), icon="fact_check", on_click=check).props("outline")
                    ui.button(tr("imports.start"), icon="play_arrow", on_click=begin).mark("import-start")

        def show_progress() -> None:
            steps.clear()
            with steps, ui.card().classes("w-full"):
                title = ui.label(tr("imports.running")).classes("text-lg font-medium")
                bar = ui.linear_progress(value=0, show_value=False).props("size=18px rounded animation-speed=300")
                counts = ui.label().classes("text-grey-8").mark("import-result")
                actions = ui.row()
                warnings_box = ui.column().classes("w-full")

                def poll() -> None:
                    from kehu.core.jobs import Job

                    with unit_of_work() as session:
                        run = imports.get_run(session, principal, state["run_id"])
                        job = session.get(Job, run.job_id)
                        progress, job_status = (job.progress, job.status) if job else (0, "queued")
                        accepted, rejected, created = run.accepted_rows, run.rejected_rows, run.profiles_created
                        orders, kind, warned = run.orders_created, run.kind, run.warnings
                        error = job.error if job else None
                    bar.set_value(progress / 100)
                    counts.set_text(tr("imports.counts_orders" if kind == "orders" else "imports.counts",
                                       accepted=accepted, rejected=rejected, created=created, orders=orders))
                    if job_status in ("succeeded", "failed"):
                        timer.deactivate()
                        title.set_text(tr("imports.done") if job_status == "succeeded" else
                                       tr("imports.failed", error=error or ""))
                        with actions:
                            if rejected:
                                ui.button(tr("imports.download_rejected"), icon="download",
                                          on_click=download_rejected).props("outline")
                            ui.button(tr("imports.another"), icon="upload_file",
                                      on_click=lambda: ui.navigate.to("/customers/import")).props("flat")
                        if warned:
                            with warnings_box:
                                _import_warnings(principal, state["run_id"], warned)

                timer = ui.timer(1.0, poll)

        def download_rejected() -> None:
            with unit_of_work() as session:
                data = imports.rejections_csv(session, principal, state["run_id"], locale())
            ui.download.content(data, f"import-{state['run_id']}-rejected.csv", "text/csv")

        with steps, ui.card().classes("w-full"):
            ui.label(tr("imports.upload_title")).classes("text-lg font-medium")
            with ui.row().classes("items-center gap-3"):
                ui.label(tr("imports.kind")).classes("text-grey-8")
                ui.toggle({k: tr(f"imports.kind.{k}") for k in imports.KINDS}, value="profiles",
                          on_change=lambda e: pick_kind(e.value)).props("no-caps").mark("import-kind")
            ui.upload(label=tr("imports.choose"), auto_upload=True, on_upload=uploaded,
                      max_file_size=imports.MAX_FILE_BYTES).props('accept=".csv,.xlsx,.xlsm,.txt"').classes(
                "w-full max-w-xl").mark("import-upload")
        _recent_imports(principal)


WARNINGS_SHOWN = 20


def _import_warnings(principal: Any, run_id: int, count: int) -> None:
    """The values an import left out of accepted rows: the first of them, and all of them to download."""
    with unit_of_work() as session:
        shown = imports.warnings(session, principal, run_id, locale=locale(), limit=WARNINGS_SHOWN).items
    with ui.row().classes("items-center gap-2 mt-2"):
        ui.icon("warning").classes("text-warning text-xl")
        ui.label(tr("imports.warnings_count", count=count)).classes("font-medium").mark("import-warnings")
    ui.label(tr("imports.warnings_help")).classes("text-grey-7 text-sm")
    table = ui.table(columns=[
        {"name": "row", "label": tr("imports.warning.row_number"), "field": "row", "align": "left"},
        {"name": "column", "label": tr("imports.warning.column"), "field": "column", "align": "left"},
        {"name": "value", "label": tr("imports.warning.value"), "field": "value", "align": "left"},
        {"name": "reason", "label": tr("imports.warning.reason"), "field": "reason", "align": "left"},
    ], rows=[{"id": i, "row": w.row_number, "column": w.column, "value": w.value, "reason": w.reason}
             for i, w in enumerate(shown)], row_key="id").classes("w-full").props("flat dense bordered")
    localise_table(table, tr)
    if count > len(shown):
        ui.label(tr("imports.more_warnings", count=count - len(shown))).classes("text-grey-7 text-sm")

    def download() -> None:
        with unit_of_work() as session:
            data = imports.warnings_file(session, principal, run_id, locale())
        ui.download.content(data, f"import-{run_id}-warnings.csv", "text/csv")

    ui.button(tr("imports.download_warnings"), icon="download", on_click=download).props("outline")


def _recent_imports(principal: Any) -> None:
    with unit_of_work() as session:
        runs = imports.list_runs(session, principal, limit=10).items
        rows = [{"id": r.id, "file": r.filename, "kind": tr(f"imports.kind.{r.kind}"),
                 "status": tr(f"imports.status.{r.status}"), "rows": r.total_rows, "accepted": r.accepted_rows,
                 "rejected": r.rejected_rows, "warnings": r.warnings, "created": r.profiles_created,
                 "orders": r.orders_created if r.kind == "orders" else "—",
                 "at": format_local(r.created_at, principal.timezone)} for r in runs]
    if not rows:
        return
    with ui.card().classes("w-full"):
        ui.label(tr("imports.recent")).classes("text-lg font-medium")
        table = ui.table(columns=[
            {"name": "file", "label": tr("imports.file"), "field": "file", "align": "left"},
            {"name": "kind", "label": tr("imports.kind"), "field": "kind", "align": "left"},
            {"name": "status", "label": tr("users.status"), "field": "status", "align": "left"},
            {"name": "rows", "label": tr("imports.rows"), "field": "rows"},
            {"name": "accepted", "label": tr("imports.accepted"), "field": "accepted"},
            {"name": "rejected", "label": tr("imports.rejected"), "field": "rejected"},
            {"name": "warnings", "label": tr("imports.warnings"), "field": "warnings"},
            {"name": "created", "label": tr("imports.created"), "field": "created"},
            {"name": "orders", "label": tr("imports.orders_created"), "field": "orders"},
            {"name": "at", "label": tr("common.created_at"), "field": "at", "align": "left"},
        ], rows=rows, row_key="id").classes("w-full").props("flat dense")
        localise_table(table, tr)
        table.on("rowClick", lambda e: _recent_import_warnings(principal, e.args[1]))


def _recent_import_warnings(principal: Any, row: dict[str, Any]) -> None:
    """A past import's values left out, opened from the list of recent imports."""
    if not row.get("warnings"):
        return
    with ui.dialog() as dialog, ui.card().classes("w-[900px] max-w-full"):
        ui.label(row["file"]).classes("text-lg font-medium")
        _import_warnings(principal, row["id"], row["warnings"])
        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.close"), on_click=dialog.close).props("flat")
    dialog.open()
