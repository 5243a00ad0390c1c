"""Business units: the tree, a unit's details, its people, moving and closing units."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from kehu.core.pagination import OffsetPage
from kehu.tenancy import schemas, service
from kehu.tenancy.ui import (
    KIND_ICONS,
    _kind_options,
    _unit_options,
)
from kehu.ui.components import localise_table
from kehu.ui.shell import (
    empty_state,
    frame,
    locale,
    run_action,
    tr,
    unit_of_work,
    validated,
)


# -- business units ------------------------------------------------------------------------------------
def units_page() -> None:
    with frame("nav.units", "/admin/units", "units.update") as principal:
        state: dict[str, Any] = {"selected": None}
        with ui.row().classes("w-full gap-4 no-wrap items-start"):
            with ui.card().classes("w-[380px] shrink-0"):
                with ui.row().classes("w-full items-center"):
                    ui.label(tr("units.tree")).classes("text-lg font-medium")
                    ui.space()
                    search = ui.input(placeholder=tr("units.filter")).props("dense outlined clearable").classes("w-40")
                tree_box = ui.column().classes("w-full")
            detail = ui.column().classes("flex-1 min-w-0")

        @ui.refreshable
        def render_tree() -> None:
            with unit_of_work() as session:
                nodes = service.unit_tree(service.list_units(session, principal))
            _decorate(nodes)
            tree = ui.tree(nodes, label_key="label", on_select=lambda e: select(e.value)).mark("unit-tree")
            tree.add_slot("default-header", """
                <div class="row items-center no-wrap">
                  <q-icon :name="props.node.icon" class="q-mr-sm text-primary" />
                  <span :class="props.node.active ? '' : 'text-grey-5 line-through'">{{ props.node.label }}</span>
                  <span class="text-grey-6 text-xs q-ml-sm">{{ props.node.code }}</span>
                </div>""")
            tree.expand()
            search.bind_value_to(tree, "filter")
            if state["selected"]:
                tree.props(f"selected={state['selected']}")

        def select(unit_id: int | None) -> None:
            state["selected"] = unit_id
            render_detail.refresh()

        @ui.refreshable
        def render_detail() -> None:
            if state["selected"] is None:
                empty_state("account_tree", tr("units.pick_title"), tr("units.pick_text"))
                return
            with unit_of_work() as session:
                unit = service.get_unit(session, principal, state["selected"])
                staff = service.page_users(session, principal, unit_id=unit.id, per_page=200) \
                    if principal.can("users") else OffsetPage([], 0)
                staff_rows = [{"id": u.id, "name": u.name, "unit": u.unit.name,
                               "roles": ", ".join(r.name(locale()) for r in u.roles),
                               "status": tr("status.active") if u.is_active else tr("status.inactive")}
                              for u in staff.items]
            with ui.card().classes("w-full"), ui.row().classes("w-full items-center"):
                ui.icon(KIND_ICONS[unit.kind]).classes("text-3xl text-primary")
                with ui.column().classes("gap-0"):
                    ui.label(unit.name).classes("text-xl font-semibold")
                    ui.label(f"{tr('unit.kind.' + unit.kind)} · {unit.code}"
                             + (f" · {unit.province or ''} {unit.city or ''}" if unit.city else "")
                             ).classes("text-grey-7")
                ui.space()
                if principal.can("units", "create") and unit.kind != "team":
                    ui.button(tr("units.add_child"), icon="add", on_click=lambda: add_dialog(unit.id)).mark(
                        "add-unit")
                if principal.can("units", "update"):
                    ui.button(tr("common.edit"), icon="edit", on_click=lambda: edit_dialog(unit.id)).props(
                        "outline")
            with ui.card().classes("w-full"):
                ui.label(tr("units.staff", count=staff.total)).classes("text-lg font-medium")
                if staff_rows:
                    staff_table = ui.table(columns=[
                        {"name": "name", "label": tr("users.name"), "field": "name", "sortable": True,
                         "align": "left"},
                        {"name": "unit", "label": tr("users.unit"), "field": "unit", "sortable": True,
                         "align": "left"},
                        {"name": "roles", "label": tr("users.roles"), "field": "roles", "align": "left"},
                        {"name": "status", "label": tr("users.status"), "field": "status", "align": "left"},
                    ], rows=staff_rows, pagination=10).classes("w-full").props("flat dense")
                    localise_table(staff_table, tr)
                else:
                    ui.label(tr("units.no_staff")).classes("text-grey-7")

        def add_dialog(parent_id: int) -> None:
            with ui.dialog() as dialog, ui.card().classes("w-[480px]"):
                ui.label(tr("units.add_child")).classes("text-lg font-medium")
                name = ui.input(tr("unit.name")).classes("w-full").mark("unit-name")
                code = ui.input(tr("unit.code")).classes("w-full").mark("unit-code")
                kind = ui.select(_kind_options(), value="dealer", label=tr("unit.kind")).classes("w-full")
                province = ui.input(tr("unit.province")).classes("w-full")
                city = ui.input(tr("unit.city")).classes("w-full")

                def save() -> None:
                    def create(session: Any) -> Any:
                        return service.create_unit(session, principal, data=schemas.UnitCreate(
                            parent_id=parent_id, name=name.value or "", code=code.value or "", kind=kind.value,
                            province=province.value or None, city=city.value or None))

                    created = validated(lambda: run_action(
                        create, lambda unit: tr("done.unit_created", name=unit.name)))
                    if created:
                        dialog.close()
                        state["selected"] = created.id
                        render_tree.refresh()
                        render_detail.refresh()

                with ui.row().classes("w-full justify-end"):
                    ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                    ui.button(tr("common.save"), on_click=save).mark("unit-save")
            dialog.open()

        def edit_dialog(unit_id: int) -> None:
            with unit_of_work() as session:
                unit = service.get_unit(session, principal, unit_id)
            parents = {k: v for k, v in _unit_options(principal).items() if k != unit_id}
            with ui.dialog() as dialog, ui.card().classes("w-[480px]"):
                ui.label(tr("common.edit") + " · " + unit.name).classes("text-lg font-medium")
                name = ui.input(tr("unit.name"), value=unit.name).classes("w-full")
                province = ui.input(tr("unit.province"), value=unit.province or "").classes("w-full")
                city = ui.input(tr("unit.city"), value=unit.city or "").classes("w-full")
                parent = None
                if unit.parent_id is not None:
                    parent = ui.select(parents, value=unit.parent_id, label=tr("unit.parent")).classes("w-full")
                active = ui.switch(tr("status.active"), value=unit.is_active)

                def save() -> None:
                    changes: dict[str, Any] = {"name": name.value, "province": province.value or None,
                                               "city": city.value or None, "is_active": active.value}
                    if parent is not None:
                        changes["parent_id"] = parent.value
                    result = validated(lambda: run_action(lambda s: service.update_unit(
                        s, principal, unit_id, data=schemas.UnitUpdate(**changes)),
                        lambda unit: tr("done.unit_saved", name=unit.name)))
                    if result:
                        dialog.close()
                        render_tree.refresh()
                        render_detail.refresh()

                with ui.row().classes("w-full justify-end"):
                    ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                    ui.button(tr("common.save"), on_click=save)
            dialog.open()

        with tree_box:
            render_tree()
        with detail:
            render_detail()


def _decorate(nodes: list[dict[str, Any]]) -> None:
    for node in nodes:
        node["icon"] = KIND_ICONS.get(node["kind"], "folder")
        _decorate(node["children"])
