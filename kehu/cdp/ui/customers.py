"""The customer list: search, stage chips, unit filter, server-side paging, picking customers for other
domains' actions, a new customer, the export."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from kehu.cdp import schemas, service
from kehu.cdp.ui.common import display_name
from kehu.cdp.views import CustomerView
from kehu.core.errors import KehuError
from kehu.core.timeutil import format_local
from kehu.tenancy import service as tenancy_service
from kehu.ui.components import ServerTable, readable_phone
from kehu.ui.components.customers import STAGE_COLOURS, STAGES, export_dialog, stage_label, stage_slot
from kehu.ui.shell import (
    extensions,
    frame,
    notify_error,
    tr,
    unit_of_work,
    validated,
)


# -- the list ------------------------------------------------------------------------------------------
def customers_page() -> None:
    with frame("nav.customers", "/customers", "profiles") as principal:
        filters: dict[str, Any] = {"q": "", "stage": None, "unit_id": None}
        with unit_of_work() as session:
            counts = service.profile_counts(session, principal)
            units = {u.id: ("　" * u.depth) + u.name for u in tenancy_service.list_units(session, principal)} \
                if principal.can("units") else {}
        total = sum(counts.values())
        with ui.row().classes("w-full gap-2 items-center"):
            chip_all = ui.chip(f"{tr('customers.all')} {total:,}", on_click=lambda: pick_stage(None)).props(
                "clickable color=primary text-color=white")
            for stage in STAGES:
                if counts.get(stage):
                    ui.chip(f"{stage_label(stage)} {counts[stage]:,}",
                            on_click=lambda s=stage: pick_stage(s)).props(
                        f"clickable outline color={STAGE_COLOURS[stage]}")
        with ui.row().classes("w-full items-center gap-3"):
            ui.input(placeholder=tr("customers.search"), on_change=lambda e: apply("q", e.value)).props(
                "outlined dense clearable debounce=300").classes("w-96").mark("customer-search")
            if units:
                ui.select(units, label=tr("users.unit"), clearable=True, with_input=True,
                          on_change=lambda e: apply("unit_id", e.value)).props("outlined dense").classes("w-56")
            ui.space()
            if principal.can("profiles", "export"):
                ui.button(tr("export.button"), icon="download", on_click=lambda: export_dialog(principal, filters)
                          ).props("outline")
            if principal.can("imports", "create"):
                ui.button(tr("imports.button"), icon="upload_file",
                          on_click=lambda: ui.navigate.to("/customers/import")).props("outline")
            if principal.can("profiles", "create"):
                ui.button(tr("customers.new"), icon="person_add", on_click=lambda: new_customer()).mark(
                    "new-customer")

        def fetch(page_no: int, per_page: int, sort: str | None, descending: bool) -> tuple[list[dict], int]:
            with unit_of_work() as session:
                result = service.page_profiles(session, principal, q=filters["q"] or None, stage=filters["stage"],
                                               unit_id=filters["unit_id"], sort=sort or "last_seen_at",
                                               descending=descending, page=page_no, per_page=per_page)
                owners, unit_names = service.names_for(
                    session, user_ids={p.owner_id for p in result.items if p.owner_id},
                    unit_ids={p.unit_id for p in result.items})
                view = CustomerView.of(session, principal)
                rows = []
                for p in result.items:
                    out = view.profile(p)
                    rows.append({"id": p.id, "name": display_name(p.name, p.id, out),
                                 "mobile": readable_phone(out.mobile) or "—",
                                 "city": p.city or "—", "stage": p.lifecycle_stage,
                                 "owner": owners.get(p.owner_id, "—") if p.owner_id else "—",
                                 "unit": unit_names.get(p.unit_id, ""),
                                 "last_seen_at": format_local(p.last_seen_at, principal.timezone) or "—"})
                return rows, result.total

        columns = [
            {"name": "name", "label": tr("customers.name"), "field": "name", "sortable": True, "align": "left"},
            {"name": "mobile", "label": tr("users.phone"), "field": "mobile", "align": "left"},
            {"name": "city", "label": tr("unit.city"), "field": "city", "sortable": True, "align": "left"},
            {"name": "stage", "label": tr("customers.stage"), "field": "stage", "sortable": True, "align": "left"},
            {"name": "owner", "label": tr("customers.owner"), "field": "owner", "align": "left"},
            {"name": "unit", "label": tr("users.unit"), "field": "unit", "align": "left"},
            {"name": "last_seen_at", "label": tr("customers.last_seen"), "field": "last_seen_at", "sortable": True,
             "align": "left"},
        ]
        picked: list[int] = []
        picked_bar = ui.row().classes("w-full items-center gap-2 bg-blue-1 rounded px-3 py-1").mark("picked-bar")
        with picked_bar:
            picked_label = ui.label().classes("font-medium")
            for add_actions in extensions("selection_actions"):
                add_actions(principal, lambda: list(picked), lambda: clear_pick())
            ui.space()
            ui.button(tr("customers.clear_pick"), icon="close", on_click=lambda: clear_pick()).props("flat dense")
        picked_bar.set_visibility(False)

        def on_pick(rows: list[dict[str, Any]]) -> None:
            picked[:] = [r["id"] for r in rows]
            picked_label.text = tr("customers.picked", count=len(picked))
            picked_bar.set_visibility(bool(picked))

        def clear_pick() -> None:
            table.table.selected = []
            on_pick([])

        table = ServerTable(columns, fetch, sort_by="last_seen_at", descending=True, tr=tr,
                            empty_text=tr("customers.empty"),
                            on_row_click=lambda row: ui.navigate.to(f"/customers/{row['id']}"),
                            on_select=on_pick if extensions("selection_actions") else None)
        stage_slot(table.table)

        def apply(key: str, value: Any) -> None:
            filters[key] = value
            table.reload(first_page=True)

        def pick_stage(stage: str | None) -> None:
            chip_all.props(remove="outline") if stage is None else chip_all.props("outline")
            apply("stage", stage)

        def new_customer() -> None:
            with ui.dialog() as dialog, ui.card().classes("w-[480px]"):
                ui.label(tr("customers.new")).classes("text-lg font-medium")
                name = ui.input(tr("customers.name")).classes("w-full").mark("customer-name")
                mobile = ui.input(tr("users.phone")).classes("w-full").mark("customer-mobile")
                email = ui.input(tr("users.email")).classes("w-full")
                gender = ui.select({"male": tr("gender.male"), "female": tr("gender.female")}, clearable=True,
                                   label=tr("customers.gender")).classes("w-full")
                city = ui.input(tr("unit.city")).classes("w-full")
                address = ui.input(tr("customers.address")).classes("w-full")
                postcode = ui.input(tr("customers.postcode")).classes("w-full")
                stage = ui.select({s: stage_label(s) for s in STAGES}, value="prospect",
                                  label=tr("customers.stage")).classes("w-full")

                in_use = ui.column().classes("w-full gap-1")

                def record_inquiry(held: dict[str, str | None]) -> None:
                    dialog.close()
                    extensions("inquiry_actions")[0](principal, held)

                def taken(error: KehuError, held: dict[str, str | None]) -> None:
                    """The mobile or e-mail is a customer's already: say so (naming them only if the reader may
                    open them) and offer what to do instead."""
                    in_use.clear()
                    with in_use, ui.card().props("flat bordered").classes("w-full bg-orange-1"):
                        ui.label(error.detail).classes("text-negative font-medium").props(
                            "data-testid=customer-in-use")
                        ui.label(str(error.extra.get("hint", ""))).classes("text-sm text-grey-8")
                        with ui.row().classes("w-full justify-end gap-2"):
                            if "existing_id" in error.extra:
                                ui.button(tr("customers.open_existing"), on_click=lambda: ui.navigate.to(
                                    f"/customers/{error.extra['existing_id']}")).props("flat")
                            if extensions("inquiry_actions") and principal.can("leads", "create"):
                                ui.button(tr("customers.record_inquiry"), icon="person_search",
                                          on_click=lambda: record_inquiry(held)).props(
                                    "data-testid=customer-record-inquiry")

                def save() -> None:
                    data = validated(lambda: schemas.ProfileCreate(
                        name=name.value or None, mobile=mobile.value or None, email=email.value or None,
                        gender=gender.value, city=city.value or None, address=address.value or None,
                        postcode=postcode.value or None,
                        lifecycle_stage=stage.value))
                    if data is None:
                        return
                    try:
                        with unit_of_work() as session:
                            created_id = service.create_profile(session, principal, data=data).id
                    except KehuError as error:
                        if error.errors and error.errors[0].code == "in_use":
                            taken(error, {"name": data.name, "mobile": data.mobile, "email": data.email,
                                          "city": data.city})
                        else:
                            notify_error(error)
                        return
                    ui.notify(tr("done.customer_created", name=data.name or data.mobile or data.email or ""),
                              type="positive", group="kehu-done")
                    dialog.close()
                    ui.navigate.to(f"/customers/{created_id}")

                with ui.row().classes("w-full justify-end"):
                    ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                    ui.button(tr("common.save"), on_click=save).mark("customer-save")
            dialog.open()
