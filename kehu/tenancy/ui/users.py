"""Users: who works where with which roles, inviting, deactivating, resetting, reassigning their customers."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from kehu.core.timeutil import format_local
from kehu.tenancy import schemas, service
from kehu.tenancy.ui import (
    _role_options,
    _unit_options,
)
from kehu.ui.components import ServerTable, add_status_slot
from kehu.ui.shell import (
    context,
    frame,
    locale,
    run_action,
    tr,
    unit_of_work,
    validated,
)


# -- users ---------------------------------------------------------------------------------------------
def users_page() -> None:
    with frame("nav.users", "/admin/users", "users.update") as principal:
        units = _unit_options(principal)
        roles = _role_options(principal)
        filters: dict[str, Any] = {"q": "", "unit_id": None, "role": None, "active": True}
        with ui.row().classes("w-full items-center gap-3"):
            ui.input(placeholder=tr("users.search"), on_change=lambda e: apply("q", e.value)).props(
                "outlined dense clearable debounce=300").classes("w-64").mark("user-search")
            ui.select(units, label=tr("users.unit"), clearable=True, on_change=lambda e: apply("unit_id", e.value),
                      with_input=True).props("outlined dense").classes("w-56")
            ui.select(roles, label=tr("users.roles"), clearable=True,
                      on_change=lambda e: apply("role", e.value)).props("outlined dense").classes("w-48")
            ui.select({True: tr("status.active"), False: tr("status.inactive")}, value=True, clearable=True,
                      label=tr("users.status"), on_change=lambda e: apply("active", e.value)).props(
                "outlined dense").classes("w-36")
            ui.space()
            if principal.can("users", "create"):
                ui.button(tr("users.new"), icon="person_add", on_click=lambda: user_dialog(None)).mark("new-user")
            if principal.can("profiles", "assign") or principal.can("leads", "assign"):
                ui.button(tr("users.reassign"), icon="swap_horiz", on_click=lambda: reassign_dialog()).props(
                    "outline")

        def fetch(page_no: int, per_page: int, sort: str | None, descending: bool) -> tuple[list[dict[str, Any]], int]:
            with unit_of_work() as session:
                result = service.page_users(session, principal, unit_id=filters["unit_id"], q=filters["q"] or None,
                                            active=filters["active"], role=filters["role"], sort=sort or "name",
                                            descending=descending, page=page_no, per_page=per_page)
                rows = []
                for u in result.items:
                    out = service.user_out(principal, u)
                    rows.append({"id": u.id, "name": u.name, "email": out.email, "unit": u.unit.name,
                                 "roles": ", ".join(r.name(locale()) for r in u.roles),
                                 "status": "active" if u.is_active else "inactive",
                                 "last_login_at": format_local(u.last_login_at, principal.timezone) or "—"})
                return rows, result.total

        columns: list[dict[str, Any]] = [
            {"name": "name", "label": tr("users.name"), "field": "name", "sortable": True, "align": "left"},
            {"name": "email", "label": tr("users.email"), "field": "email", "sortable": True, "align": "left"},
            {"name": "unit", "label": tr("users.unit"), "field": "unit", "align": "left"},
            {"name": "roles", "label": tr("users.roles"), "field": "roles", "align": "left"},
            {"name": "status", "label": tr("users.status"), "field": "status", "align": "left"},
            {"name": "last_login_at", "label": tr("users.last_login"), "field": "last_login_at", "sortable": True,
             "align": "left"},
        ]
        table = ServerTable(columns, fetch, sort_by="name", empty_text=tr("users.empty"), tr=tr,
                            on_row_click=lambda row: user_dialog(row["id"]))
        add_status_slot(table.table, "status", {"active": tr("status.active"), "inactive": tr("status.inactive")})

        def apply(key: str, value: Any) -> None:
            filters[key] = value
            table.reload(first_page=True)

        def user_dialog(user_id: int | None) -> None:
            existing = None
            if user_id is not None:
                with unit_of_work() as session:
                    user = service.get_user(session, principal, user_id)
                    existing = service.user_out(principal, user)
            with ui.dialog() as dialog, ui.card().classes("w-[520px]"):
                ui.label(tr("users.new") if existing is None else existing.name).classes("text-lg font-medium")
                name = ui.input(tr("users.name"), value=existing.name if existing else "").classes("w-full").mark(
                    "user-name")
                email = ui.input(tr("users.email"), value=existing.email if existing else "").classes(
                    "w-full").mark("user-email")
                if existing:
                    email.disable()
                phone = ui.input(tr("users.phone"), value=(existing.phone or "") if existing else "").classes("w-full")
                unit = ui.select(units, value=existing.unit_id if existing else principal.unit_id,
                                 label=tr("users.unit"), with_input=True).classes("w-full")
                role_select = ui.select(roles, value=existing.roles if existing else [], multiple=True,
                                        label=tr("users.roles")).classes("w-full").props("use-chips")
                lang = ui.select({"zh": "简体中文", "en": "English"}, value=existing.locale if existing else "zh",
                                 label=tr("users.locale")).classes("w-full")
                password = ui.input(tr("users.password") if existing is None else tr("users.new_password"),
                                    password=True).classes("w-full").mark("user-password")
                # your own password changes only with the present one (an administrator sets others' without)
                current = ui.input(tr("users.current_password"), password=True).classes("w-full").mark(
                    "user-current-password")
                current.set_visibility(existing is not None and existing.id == principal.user_id)
                active = ui.switch(tr("status.active"), value=existing.is_active if existing else True)
                if existing is None:
                    active.set_visibility(False)

                def save() -> None:
                    if existing is None:
                        action = lambda s: service.create_user(s, principal, data=schemas.UserCreate(  # noqa: E731
                            email=email.value, name=name.value, phone=phone.value or None, unit_id=unit.value,
                            roles=role_select.value or [], password=password.value or "", locale=lang.value))
                    else:
                        changes: dict[str, Any] = {"name": name.value, "unit_id": unit.value,
                                                   "roles": role_select.value, "locale": lang.value,
                                                   "is_active": active.value}
                        if phone.value != (existing.phone or "") and "*" not in (phone.value or ""):
                            changes["phone"] = phone.value or None
                        if password.value:
                            changes["password"] = password.value
                            if current.visible:
                                changes["current_password"] = current.value or None
                        action = lambda s: service.update_user(  # noqa: E731
                            s, principal, existing.id, data=schemas.UserUpdate(**changes),
                            policy=service.LoginPolicy.of(context().settings))
                    done = tr("done.user_saved" if existing else "done.user_created", name=name.value or email.value)
                    if validated(lambda: run_action(action, done)):
                        dialog.close()
                        table.reload()

                with ui.row().classes("w-full justify-end"):
                    ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                    ui.button(tr("common.save"), on_click=save).mark("user-save")
            dialog.open()

        def reassign_dialog() -> None:
            with unit_of_work() as session:
                people = {u.id: f"{u.name} · {u.unit.name}" for u in service.page_users(
                    session, principal, per_page=1000).items}
            with ui.dialog() as dialog, ui.card().classes("w-[520px]"):
                ui.label(tr("users.reassign")).classes("text-lg font-medium")
                ui.label(tr("users.reassign_help")).classes("text-grey-7 text-sm")
                source = ui.select(people, label=tr("users.reassign_from"), with_input=True).classes("w-full")
                target = ui.select(people, label=tr("users.reassign_to"), with_input=True).classes("w-full")
                deactivate = ui.checkbox(tr("users.reassign_deactivate"), value=True)

                def start() -> None:
                    job = validated(lambda: run_action(lambda s: service.request_reassign(
                        s, principal, data=schemas.ReassignRequest(
                            from_user_id=source.value or 0, to_user_id=target.value or 0,
                            deactivate_from_user=deactivate.value))))
                    if job:
                        dialog.close()
                        ui.notify(tr("users.reassign_started", job=job.id), type="positive")

                with ui.row().classes("w-full justify-end"):
                    ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                    ui.button(tr("users.reassign_start"), on_click=start)
            dialog.open()
