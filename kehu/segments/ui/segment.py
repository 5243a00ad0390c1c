"""One segment: its members, who entered and left at each refresh, refreshing, exporting, editing."""

from __future__ import annotations

from nicegui import ui

from kehu.cdp.views import CustomerView
from kehu.core.errors import KehuError
from kehu.core.timeutil import format_local
from kehu.segments import schemas, service
from kehu.segments.ui import (
    STATUS_COLOURS,
    list_dialog,
)
from kehu.tenancy import service as tenancy_service
from kehu.ui.components import ServerTable, readable_phone
from kehu.ui.components.condition_builder import (  # noqa: F401 - RULE_TYPES: the catalogue test reads it here
    RULE_TYPES,
    Builder,
    ConditionEditor,
)
from kehu.ui.components.customers import export_dialog, stage_slot
from kehu.ui.shell import empty_state, frame, run_action, stat_card, tr, unit_of_work


# -- one segment --------------------------------------------------------------------------------------------
def segment_page(segment_id: int) -> None:
    with frame("nav.segments", "/segments", "segments") as principal:
        try:
            with unit_of_work() as session:
                segment = schemas.SegmentOut.model_validate(service.get_segment(session, principal, segment_id))
                units = {u.id: u.name for u in tenancy_service.list_units(session, principal)} \
                    if principal.can("units") else {}
        except KehuError:
            empty_state("search_off", tr("segments.not_found"), tr("segments.not_found_text"))
            return
        with ui.row().classes("w-full items-center gap-3"):
            ui.label(segment.name).classes("text-2xl font-medium")
            ui.badge(tr(f"segments.kind.{segment.kind}")).props("outline")
            ui.badge(tr(f"segments.status.{segment.status}")).props(
                f"color={STATUS_COLOURS.get(segment.status, 'grey-7')}").mark("segment-status")
            ui.space()
            if principal.can("profiles", "export"):
                ui.button(tr("export.button"), icon="download", on_click=lambda: export_dialog(
                    principal, {"segment_id": segment_id})).props("outline").mark("segment-export")
            if principal.can("segments", "update"):
                ui.button(tr("segments.edit"), icon="edit", on_click=lambda: ui.navigate.to(
                    f"/segments/{segment_id}/edit")).props("outline").mark("segment-edit")
            if segment.kind == "dynamic" and principal.can("segments", "update"):
                ui.button(tr("segments.refresh"), icon="refresh", on_click=lambda: refresh()).props("outline")
            if segment.kind == "static" and principal.can("segments", "update"):
                ui.button(tr("segments.add_list"), icon="upload_file", on_click=lambda: list_dialog(
                    principal, segment_id)).props("outline").mark("segment-add-list")
            if principal.can("segments", "delete"):
                ui.button(tr("segments.delete"), icon="delete", on_click=lambda: remove()).props("flat color=negative")
        with ui.row().classes("w-full gap-4"):
            stat_card(tr("segments.members"), f"{segment.member_count:,}", "groups")
            stat_card(tr("segments.refreshed_at"), format_local(segment.refreshed_at, principal.timezone) or "—",
                      "schedule")
            stat_card(tr("segments.covers"), units.get(segment.unit_id, "—"), "account_tree")
        if segment.description:
            ui.label(segment.description).classes("text-grey-8")
        if segment.error:
            ui.label(segment.error).classes("text-negative")

        def fetch(page_no: int, per_page: int, sort: str | None, descending: bool) -> tuple[list[dict], int]:
            with unit_of_work() as session:
                result = service.page_members(session, principal, segment_id, page=page_no, per_page=per_page)
                view = CustomerView.of(session, principal)
                rows = []
                for p in result.items:
                    out = view.profile(p)
                    rows.append({"id": p.id, "name": p.name or f"#{p.id}",
                                 "mobile": readable_phone(out.mobile) or "—", "city": p.city or "—",
                                 "stage": p.lifecycle_stage,
                                 "last_seen_at": format_local(p.last_seen_at, principal.timezone) or "—"})
                return rows, result.total

        with ui.card().classes("w-full"):
            ui.label(tr("segments.member_list")).classes("text-lg font-medium")
            table = ServerTable([
                {"name": "name", "label": tr("customers.name"), "field": "name", "align": "left"},
                {"name": "mobile", "label": tr("users.phone"), "field": "mobile", "align": "left"},
                {"name": "city", "label": tr("unit.city"), "field": "city", "align": "left"},
                {"name": "stage", "label": tr("customers.stage"), "field": "stage", "align": "left"},
                {"name": "last_seen_at", "label": tr("customers.last_seen"), "field": "last_seen_at", "align": "left"},
            ], fetch, tr=tr, empty_text=tr("segments.no_members"),
                on_row_click=lambda row: ui.navigate.to(f"/customers/{row['id']}"))
            stage_slot(table.table)

        def refresh() -> None:
            if run_action(lambda s: service.request_refresh(s, principal, segment_id), tr("segments.refresh_queued")):
                ui.navigate.reload()

        def remove() -> None:
            if run_action(lambda s: service.delete_segment(s, principal, segment_id) or True, tr("segments.deleted")):
                ui.navigate.to("/segments")
