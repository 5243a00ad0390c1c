"""API keys: keys for servers and integrations, their roles and revocation."""

from __future__ import annotations

from nicegui import ui

from kehu.core.timeutil import format_local
from kehu.tenancy import schemas, service
from kehu.tenancy.ui import (
    _role_options,
)
from kehu.ui.components import add_status_slot, localise_table
from kehu.ui.shell import (
    empty_state,
    frame,
    locale,
    run_action,
    tr,
    unit_of_work,
    validated,
)


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
