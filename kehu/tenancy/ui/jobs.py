"""Jobs: what runs in the background, its progress, failures and retries."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from kehu.core.i18n import t
from kehu.core.timeutil import format_local
from kehu.tenancy import service
from kehu.ui.components import add_status_slot, localise_table
from kehu.ui.shell import (
    empty_state,
    frame,
    locale,
    run_action,
    tr,
    unit_of_work,
)


# -- jobs ----------------------------------------------------------------------------------------------
def jobs_page() -> None:
    with frame("nav.jobs", "/admin/jobs", "jobs.read@unit") as principal:
        state: dict[str, Any] = {"status": None}
        ui.select({s: tr(f"job.status.{s}") for s in ("queued", "running", "succeeded", "failed", "cancelled")},
                  label=tr("users.status"), clearable=True,
                  on_change=lambda e: (state.update(status=e.value), job_table.refresh())).props(
            "outlined dense").classes("w-48")

        @ui.refreshable
        def job_table() -> None:
            with unit_of_work() as session:
                items = service.list_jobs(session, principal, status=state["status"], limit=100).items
                rows = [{"id": j.id, "kind": t(f"job.kind.{j.kind}", locale(), default=j.kind),
                         "status": j.status, "progress": j.progress, "message": j.message,
                         "attempts": f"{j.attempts}/{j.max_attempts}", "error": (j.error or "")[:200],
                         "created_at": format_local(j.created_at, principal.timezone, with_seconds=True),
                         "finished_at": format_local(j.finished_at, principal.timezone, with_seconds=True) or "—"}
                        for j in items]
            if not rows:
                empty_state("pending_actions", tr("jobs.empty_title"), tr("jobs.empty_text"))
                return
            table = ui.table(columns=[
                {"name": "id", "label": "#", "field": "id", "sortable": True, "align": "left"},
                {"name": "kind", "label": tr("jobs.kind"), "field": "kind", "align": "left"},
                {"name": "status", "label": tr("users.status"), "field": "status", "align": "left"},
                {"name": "progress", "label": tr("jobs.progress"), "field": "progress", "align": "left"},
                {"name": "attempts", "label": tr("jobs.attempts"), "field": "attempts", "align": "left"},
                {"name": "created_at", "label": tr("common.created_at"), "field": "created_at", "align": "left"},
                {"name": "finished_at", "label": tr("jobs.finished_at"), "field": "finished_at", "align": "left"},
                {"name": "error", "label": tr("jobs.error"), "field": "error", "align": "left",
                 "classes": "text-negative text-xs", "style": "max-width: 320px; white-space: normal"},
                {"name": "actions", "label": "", "field": "id"},
            ], rows=rows, pagination=25).classes("w-full").props("flat bordered")
            localise_table(table, tr)
            add_status_slot(table, "status", {s: tr(f"job.status.{s}") for s in
                                              ("queued", "running", "succeeded", "failed", "cancelled")})
            table.add_slot("body-cell-progress", """
                <q-td :props="props" style="min-width: 140px">
                  <q-linear-progress :value="props.value / 100" size="14px" rounded color="primary">
                    <div class="absolute-full flex flex-center">
                      <span class="text-white text-xs">{{ props.value }}%</span>
                    </div>
                  </q-linear-progress>
                </q-td>""")
            table.add_slot("body-cell-actions", f"""
                <q-td :props="props">
                  <q-btn v-if="props.row.status === 'failed' || props.row.status === 'cancelled'" flat dense
                         icon="replay" label="{tr('jobs.retry')}" color="primary"
                         @click="() => $parent.$emit('retry', props.row)" />
                  <q-btn v-if="props.row.status === 'queued'" flat dense icon="cancel" label="{tr('common.cancel')}"
                         @click="() => $parent.$emit('cancel', props.row)" />
                </q-td>""")
            table.on("retry", lambda e: act(service.retry_job, e.args["id"], tr("jobs.retried")))
            table.on("cancel", lambda e: act(service.cancel_job, e.args["id"], tr("jobs.cancelled")))

        def act(fn: Any, job_id: int, message: str) -> None:
            run_action(lambda s: fn(s, principal, job_id), message)
            job_table.refresh()

        job_table()
        ui.timer(3.0, job_table.refresh)  # live progress
