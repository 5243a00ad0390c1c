"""Admin pages: business units (tree), users, roles, API keys, the audit log and background jobs."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from kehu.core.audit import AUDITED_ENTITIES as AUDITED
from kehu.core.i18n import t
from kehu.core.pagination import OffsetPage
from kehu.core.timeutil import format_local
from kehu.tenancy import schemas, service
from kehu.tenancy.access import DEPTHS, ENTITIES, PERMISSIONS, PRIVILEGES, Principal
from kehu.ui.components import ServerTable, add_status_slot, localise_table
from kehu.ui.shell import (
    actor_name,
    audit_text,
    context,
    empty_state,
    frame,
    locale,
    page,
    run_action,
    tr,
    unit_of_work,
    validated,
)

KIND_ICONS = {"hq": "apartment", "region": "public", "dealer": "storefront", "team": "groups_2"}


def register() -> None:
    page("/admin/units")(units_page)
    page("/admin/users")(users_page)
    page("/admin/roles")(roles_page)
    page("/admin/api-keys")(api_keys_page)
    page("/admin/audit")(audit_page)
    page("/admin/jobs")(jobs_page)


def _kind_options() -> dict[str, str]:
    return {k: tr(f"unit.kind.{k}") for k in ("region", "dealer", "team")}


def _unit_options(principal: Principal) -> dict[int, str]:
    if not principal.can("units"):
        return {}
    with unit_of_work() as session:
        return {u.id: ("　" * u.depth) + u.name for u in service.list_units(session, principal)}


def _role_options(principal: Principal) -> dict[str, str]:
    if not principal.can("roles"):
        return {}
    with unit_of_work() as session:
        return {r.code: r.name(locale()) for r in service.list_roles(session, principal)}


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

        def fetch(page_no: int, per_page: int, sort: str | None, descending: bool) -> tuple[list[dict], int]:
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

        columns = [
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
            grants = dict(role.privileges)
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
                    for entity in ENTITIES:
                        ui.label(tr(f"entity.{entity}")).classes("text-sm")
                        for privilege in PRIVILEGES:
                            key = f"{entity}.{privilege}"
                            sel = ui.select(depth_labels, value=grants.get(key, "none"),
                                            on_change=lambda e, k=key: grants.__setitem__(k, e.value)).props(
                                "dense options-dense borderless").classes("text-xs")
                            if not editable:
                                sel.disable()
                with ui.row().classes("mt-4 gap-6"):
                    for permission in PERMISSIONS:
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


# -- API keys ------------------------------------------------------------------------------------------
def api_keys_page() -> None:
    with frame("nav.api_keys", "/admin/api-keys", "api_keys") as principal:
        ui.label(tr("api_keys.help")).classes("text-grey-7")
        roles = _role_options(principal)

        @ui.refreshable
        def key_table() -> None:
            with unit_of_work() as session:
                keys = service.list_api_keys(session, principal)
                rows = [{"id": k.id, "name": k.name, "prefix": f"kehu_{k.prefix}_…", "role": k.role.name(locale()),
                         "unit": k.unit.name, "created_at": format_local(k.created_at, principal.timezone),
                         "last_used_at": format_local(k.last_used_at, principal.timezone) or "—",
                         "status": "revoked" if k.revoked_at else "active"} for k in keys]
            if not rows:
                empty_state("key", tr("api_keys.empty_title"), tr("api_keys.empty_text"))
                return
            table = ui.table(columns=[
                {"name": "name", "label": tr("api_keys.name"), "field": "name", "sortable": True, "align": "left"},
                {"name": "prefix", "label": tr("api_keys.prefix"), "field": "prefix", "align": "left"},
                {"name": "role", "label": tr("users.roles"), "field": "role", "align": "left"},
                {"name": "unit", "label": tr("users.unit"), "field": "unit", "align": "left"},
                {"name": "created_at", "label": tr("common.created_at"), "field": "created_at", "sortable": True,
                 "align": "left"},
                {"name": "last_used_at", "label": tr("api_keys.last_used"), "field": "last_used_at",
                 "align": "left"},
                {"name": "status", "label": tr("users.status"), "field": "status", "align": "left"},
                {"name": "actions", "label": "", "field": "id"},
            ], rows=rows, pagination=20).classes("w-full").props("flat bordered")
            localise_table(table, tr)
            add_status_slot(table, "status",
                            {"active": tr("status.active"), "revoked": tr("status.revoked")})
            table.add_slot("body-cell-actions", f"""
                <q-td :props="props">
                  <q-btn v-if="props.row.status === 'active'" flat dense color="negative" icon="block"
                         label="{tr('api_keys.revoke')}" @click="() => $parent.$emit('revoke', props.row)" />
                </q-td>""")
            table.on("revoke", lambda e: revoke(e.args["id"]))

        def revoke(key_id: int) -> None:
            run_action(lambda s: service.revoke_api_key(s, principal, key_id), tr("api_keys.revoked"))
            key_table.refresh()

        def create() -> None:
            with ui.dialog() as dialog, ui.card().classes("w-[520px]"):
                ui.label(tr("api_keys.new")).classes("text-lg font-medium")
                name = ui.input(tr("api_keys.name")).classes("w-full")
                role = ui.select(roles, label=tr("users.roles"), value="hq_analyst" if "hq_analyst" in roles
                                 else None).classes("w-full")
                result_box = ui.column().classes("w-full")

                def save() -> None:
                    created = validated(lambda: run_action(lambda s: service.create_api_key(
                        s, principal, data=schemas.ApiKeyCreate(name=name.value, role=role.value or ""))))
                    if created:
                        _row, key = created
                        result_box.clear()
                        with result_box:
                            ui.label(tr("api_keys.shown_once")).classes("text-warning font-medium")
                            ui.input(value=key).props("readonly outlined").classes("w-full font-mono").mark(
                                "new-api-key")
                        save_button.disable()
                        key_table.refresh()

                with ui.row().classes("w-full justify-end"):
                    ui.button(tr("common.close"), on_click=dialog.close).props("flat")
                    save_button = ui.button(tr("api_keys.create"), on_click=save)
            dialog.open()

        if principal.can("api_keys", "create"):
            ui.button(tr("api_keys.new"), icon="add", on_click=create)
        key_table()


# -- audit log -----------------------------------------------------------------------------------------
def audit_page() -> None:
    with frame("nav.audit", "/admin/audit", "audit") as principal:
        state: dict[str, Any] = {"cursors": [None], "entity": None, "user_id": None, "since": None, "until": None}
        with unit_of_work() as session:
            people = {u.id: u.name for u in service.page_users(session, principal, per_page=1000).items} \
                if principal.can("users") else {}
        entities = dict(sorted(((e, tr(f"entity.{e}")) for e in AUDITED), key=lambda pair: pair[1]))
        with ui.row().classes("w-full items-center gap-3"):
            ui.select(people, label=tr("audit.who"), clearable=True, with_input=True,
                      on_change=lambda e: refilter("user_id", e.value)).props("outlined dense").classes("w-48")
            ui.select(entities, label=tr("audit.entity"), clearable=True,
                      on_change=lambda e: refilter("entity", e.value)).props("outlined dense").classes("w-40")
            ui.input(tr("audit.since"), on_change=lambda e: refilter("since", e.value)).props(
                "outlined dense type=date").classes("w-44")
            ui.input(tr("audit.until"), on_change=lambda e: refilter("until", e.value)).props(
                "outlined dense type=date").classes("w-44")

        @ui.refreshable
        def entries() -> None:
            from datetime import datetime, timedelta

            def day(value: str | None, add: int = 0) -> datetime | None:
                return datetime.fromisoformat(value) + timedelta(days=add) if value else None

            with unit_of_work() as session:
                result = service.list_audit(session, principal, user_id=state["user_id"], entity=state["entity"],
                                            since=day(state["since"]), until=day(state["until"], 1), limit=25,
                                            cursor=state["cursors"][-1])
                names = _names_in(session, result.items)
                rows = [{"id": e.id, "ts": format_local(e.ts, principal.timezone, with_seconds=True),
                         "actor": actor_name(e), "entity": tr(f"entity.{e.entity}"),
                         "summary": audit_text(e), "changes": _changes(e.before, e.after, names, locale(), e.entity)}
                        for e in result.items]
            if not rows:
                empty_state("history", tr("audit.empty"), tr("audit.empty_text"))
            else:
                ui.table(columns=[
                    {"name": "ts", "label": tr("audit.when"), "field": "ts", "align": "left"},
                    {"name": "actor", "label": tr("audit.who"), "field": "actor", "align": "left"},
                    {"name": "entity", "label": tr("audit.entity"), "field": "entity", "align": "left"},
                    {"name": "summary", "label": tr("audit.summary"), "field": "summary", "align": "left"},
                    {"name": "changes", "label": tr("audit.changes"), "field": "changes", "align": "left",
                     "style": "white-space: pre-line; max-width: 420px", "classes": "text-xs text-grey-8"},
                ], rows=rows, pagination=0).classes("w-full").props("flat bordered wrap-cells hide-pagination")
            with ui.row().classes("items-center gap-2"):
                ui.button(tr("common.previous"), icon="chevron_left", on_click=previous).props("flat").set_enabled(
                    len(state["cursors"]) > 1)
                ui.label(tr("common.page", page=len(state["cursors"]))).classes("text-grey-7")
                next_btn = ui.button(tr("common.next"), icon="chevron_right",
                                     on_click=lambda: forward(result.next_cursor)).props("flat")
                next_btn.set_enabled(result.next_cursor is not None)

        def refilter(key: str, value: Any) -> None:
            state[key] = value or None
            state["cursors"] = [None]
            entries.refresh()

        def forward(cursor: str | None) -> None:
            state["cursors"].append(cursor)
            entries.refresh()

        def previous() -> None:
            if len(state["cursors"]) > 1:
                state["cursors"].pop()
            entries.refresh()

        entries()


def _names_in(session: Any, entries: list[Any]) -> dict[str, dict[Any, str]]:
    """Names of the units and people the entries' changes point at, so the page shows 上海浦东4S店, not 17."""
    ids: dict[str, set[Any]] = {"unit": set(), "user": set()}
    for entry in entries:
        for values in (entry.before or {}, entry.after or {}):
            for key, value in values.items():
                if isinstance(value, int) and key in ("unit_id", "parent_id"):
                    ids["unit"].add(value)
                elif isinstance(value, int) and key in ("owner_id", "user_id", "assigned_to_id"):
                    ids["user"].add(value)
    return service.names_of(session, unit_ids=ids["unit"], user_ids=ids["user"])


def _same(a: Any, b: Any) -> bool:
    if a == b or str(a) == str(b):
        return True
    try:  # 659700 and "659700.00" are one amount
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


STATUS_WORDS = {"leads": "lead.status", "opportunities": "opp.status", "users": "users.status"}


def _changes(before: dict[str, Any] | None, after: dict[str, Any] | None, names: dict[str, dict[Any, str]],
             language: str, entity: str = "") -> str:
    """What changed, field by field in the reader's words: unchanged fields left out, units and people by name,
    other references said to have changed rather than shown as numbers."""
    if not before:
        return ""  # a creation: the summary says it

    def shown(key: str, value: Any) -> str:
        if value is None or value == "":
            return "—"
        if key in ("unit_id", "parent_id"):
            return names["unit"].get(value, "—")
        if key in ("owner_id", "user_id", "assigned_to_id"):
            return names["user"].get(value, "—")
        if isinstance(value, bool):
            return t("common.yes" if value else "common.no", language)
        if key == "status" and entity in STATUS_WORDS:
            return t(f"{STATUS_WORDS[entity]}.{value}", language, default=str(value))
        if key == "reason" and isinstance(value, str) and ":" in value:  # "opportunity:420": what it led to
            kind, _, number = value.partition(":")
            return f"{t(f'audit.reason.{kind}', language, default=kind)} #{number}"
        return str(value)

    lines = []
    for key in dict.fromkeys([*before, *(after or {})]):
        old, new = before.get(key), (after or {}).get(key)
        if _same(old, new) or key in ("trait_times", "name_pinyin", "updated_at"):
            continue
        label = t(f"audit.field.{key}", language, default=key.removesuffix("_id"))
        if key.endswith("_id") and key not in ("unit_id", "parent_id", "owner_id", "user_id", "assigned_to_id"):
            lines.append(t("audit.changed", language, field=label))
        else:
            lines.append(f"{label}: {shown(key, old)} → {shown(key, new)}")
    return "\n".join(lines[:8])


# -- jobs ----------------------------------------------------------------------------------------------
def jobs_page() -> None:
    with frame("nav.jobs", "/admin/jobs", "jobs.read@unit") as principal:
        state: dict[str, Any] = {"status": None}
        ui.select({s: tr(f"job.status.{s}") for s in ("queued", "running", "succeeded", "failed", "cancelled")},
                  label=tr("users.status"), clearable=True,
                  on_change=lambda e: (state.__setitem__("status", e.value), job_table.refresh())).props(
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
