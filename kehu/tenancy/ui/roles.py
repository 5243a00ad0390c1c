"""Roles: each role's privileges by entity and depth, and the permissions."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from kehu.core.i18n import t
from kehu.tenancy import schemas, service
from kehu.tenancy.access import DEPTHS, PRIVILEGES, entities, permissions
from kehu.ui.shell import (
    empty_state,
    frame,
    locale,
    run_action,
    tr,
    unit_of_work,
    validated,
)


# -- roles ---------------------------------------------------------------------------------------------
def roles_page() -> None:
    with frame("nav.roles", "/admin/roles", "roles") as principal:
        state: dict[str, Any] = {"role_id": None}
        with ui.row().classes("w-full gap-4 no-wrap items-start"):
            list_box = ui.card().classes("w-[300px] shrink-0")
            matrix_box = ui.column().classes("flex-1 min-w-0")

        @ui.refreshable
        def role_list() -> None:
            with unit_of_work() as session:
                roles = service.list_roles(session, principal)
            if state["role_id"] is None and roles:
                state["role_id"] = roles[0].id
            for role in roles:
                selected = role.id == state["role_id"]
                with ui.item(on_click=lambda r=role: pick(r.id)).classes(
                        "rounded " + ("bg-blue-1 text-primary" if selected else "")), ui.item_section():
                    ui.item_label(role.name(locale()))
                    ui.item_label(role.code + (" · " + tr("roles.system") if role.is_system else "")).props(
                        "caption")
            if principal.can("roles", "create"):
                ui.button(tr("roles.new"), icon="add", on_click=new_role).props("flat").classes("w-full mt-2")

        def pick(role_id: int) -> None:
            state["role_id"] = role_id
            role_list.refresh()
            matrix.refresh()

        @ui.refreshable
        def matrix() -> None:
            if state["role_id"] is None:
                empty_state("admin_panel_settings", tr("roles.pick_title"), tr("roles.pick_text"))
                return
            with unit_of_work() as session:
                role = service.get_role(session, principal, state["role_id"])
            editable = principal.can("roles", "update") and role.code != "org_admin"
            grants: dict[str, Any] = dict(role.privileges)
            depth_labels = {d: tr(f"depth.{d}") for d in DEPTHS}
            with ui.card().classes("w-full"):
                ui.label(role.name(locale())).classes("text-xl font-semibold")
                description = t(f"role.desc.{role.code}", locale(), default=role.description) if role.is_system \
                    else role.description
                ui.label(description).classes("text-grey-7")
                ui.label(tr("roles.legend")).classes("text-xs text-grey-6")
                with ui.grid(columns=len(PRIVILEGES) + 1).classes("w-full gap-1 items-center mt-2"):
                    ui.label("")
                    for privilege in PRIVILEGES:
                        ui.label(tr(f"privilege.{privilege}")).classes("text-xs font-medium text-grey-8")
                    for entity in entities():
                        ui.label(tr(f"entity.{entity}")).classes("text-sm")
                        for privilege in PRIVILEGES:
                            key = f"{entity}.{privilege}"
                            sel = ui.select(depth_labels, value=grants.get(key, "none"),
                                            on_change=lambda e, k=key: grants.__setitem__(k, e.value)).props(
                                "dense options-dense borderless").classes("text-xs")
                            if not editable:
                                sel.disable()
                with ui.row().classes("mt-4 gap-6"):
                    for permission in permissions():
                        ui.checkbox(tr(f"permission.{permission}"), value=grants.get(permission, "none") != "none",
                                    on_change=lambda e, p=permission: grants.__setitem__(
                                        p, "org" if e.value else "none")).props(
                            "" if editable else "disable")
                if editable:
                    def save() -> None:
                        run_action(lambda s: service.update_role(s, principal, role.id, data=schemas.RoleUpdate(
                            privileges=grants)), tr("done.role_saved"))

                    ui.button(tr("common.save"), icon="save", on_click=save).classes("mt-4")
                elif role.code == "org_admin":
                    ui.label(tr("roles.admin_locked")).classes("text-grey-7 text-sm mt-2")

        def new_role() -> None:
            with ui.dialog() as dialog, ui.card().classes("w-[420px]"):
                code = ui.input(tr("roles.code")).classes("w-full")
                name_zh = ui.input(tr("roles.name_zh")).classes("w-full")
                name_en = ui.input(tr("roles.name_en")).classes("w-full")

                def save() -> None:
                    role = validated(lambda: run_action(lambda s: service.create_role(s, principal, data=(
                        schemas.RoleCreate(code=code.value, name_zh=name_zh.value, name_en=name_en.value))),
                        tr("done.role_created")))
                    if role:
                        dialog.close()
                        pick(role.id)

                with ui.row().classes("w-full justify-end"):
                    ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                    ui.button(tr("common.save"), on_click=save)
            dialog.open()

        with list_box:
            role_list()
        with matrix_box:
            matrix()
