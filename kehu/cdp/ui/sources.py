"""Data sources: connect a website, an app or a server (write keys and snippets), enable and disable."""

from __future__ import annotations

from nicegui import ui

from kehu.cdp import schemas, service
from kehu.core.timeutil import format_local
from kehu.ui.components import add_status_slot, localise_table
from kehu.ui.shell import (
    empty_state,
    frame,
    run_action,
    tr,
    unit_of_work,
    validated,
)


# -- data sources ------------------------------------------------------------------------------------
def _connect_snippets(key: str, address: str, kind: str) -> None:
    """How to send data with the new key: each library as verified against kehu (see README), opened on the one
    that fits the source's kind."""
    host = address.split("://", 1)[-1]
    snippets = {
        "analytics.js": ("javascript", "// npm install @segment/analytics-next\n"
                         'import { AnalyticsBrowser } from "@segment/analytics-next";\n'
                         "export const analytics = AnalyticsBrowser.load({\n"
                         f'  writeKey: "{key}",\n  cdnURL: "{address}",\n}});\n'
                         'analytics.track("test_drive_booked", { model: "ID.4" });'),
        "RudderStack JS": ("javascript", "// npm install @rudderstack/analytics-js\n"
                           'import { RudderAnalytics } from "@rudderstack/analytics-js";\n'
                           "const analytics = new RudderAnalytics();\n"
                           f'analytics.load("{key}", "{address}", {{\n  configUrl: "{address}/v1",\n}});'),
        "Python": ("python", "# pip install segment-analytics-python\n"
                   "import segment.analytics as analytics\n\n"
                   f'analytics.write_key = "{key}"\nanalytics.host = "{address}"\n'
                   'analytics.track("u1", "test_drive_booked", {"model": "ID.4"})'),
        "curl": ("bash", f"curl -u '{key}:' -H 'Content-Type: application/json' \\\n"
                 f"  -d '{{\"userId\": \"u1\", \"event\": \"test_drive_booked\"}}' \\\n  {address}/v1/track"),
    }
    first = {"web": "analytics.js", "server": "Python"}.get(kind, "curl")
    ui.label(tr("sources.connect", host=host)).classes("text-sm text-grey-8 mt-2")
    with ui.tabs().props("dense no-caps align=left active-color=primary").classes("w-full") as tabs:
        for name in snippets:
            ui.tab(name)
    with ui.tab_panels(tabs, value=first).classes("w-full").mark("source-snippets"):
        for name, (language, code) in snippets.items():
            with ui.tab_panel(name).classes("p-0"):
                ui.code(code, language=language).classes("w-full text-xs")


def sources_page() -> None:
    with frame("nav.sources", "/admin/sources", "sources") as principal:
        ui.label(tr("sources.help")).classes("text-grey-7")
        request = ui.context.client.request
        kehu_address = str(request.base_url).rstrip("/") if request is not None else "https://kehu.example.com"

        @ui.refreshable
        def source_table() -> None:
            with unit_of_work() as session:
                sources = service.list_sources(session, principal)
                _, units = service.names_for(session, user_ids=set(), unit_ids={s.unit_id for s in sources})
                rows = [{"id": s.id, "name": s.name, "kind": tr(f"source.kind.{s.kind}"),
                         "unit": units.get(s.unit_id, ""), "key": f"{service.WRITE_KEY_PREFIX}{s.write_key_prefix}_…",
                         "status": "active" if s.is_active else "inactive",
                         "created_at": format_local(s.created_at, principal.timezone)} for s in sources]
            if not rows:
                empty_state("input", tr("sources.empty_title"), tr("sources.empty_text"))
                return
            table = ui.table(columns=[
                {"name": "name", "label": tr("api_keys.name"), "field": "name", "sortable": True, "align": "left"},
                {"name": "kind", "label": tr("sources.kind"), "field": "kind", "align": "left"},
                {"name": "unit", "label": tr("users.unit"), "field": "unit", "align": "left"},
                {"name": "key", "label": tr("sources.write_key"), "field": "key", "align": "left"},
                {"name": "status", "label": tr("users.status"), "field": "status", "align": "left"},
                {"name": "created_at", "label": tr("common.created_at"), "field": "created_at", "align": "left"},
                {"name": "actions", "label": "", "field": "id"},
            ], rows=rows, pagination=20).classes("w-full").props("flat bordered")
            localise_table(table, tr)
            add_status_slot(table, "status", {"active": tr("status.active"), "inactive": tr("status.inactive")})
            table.add_slot("body-cell-actions", f"""
                <q-td :props="props">
                  <q-btn flat dense :label="props.row.status === 'active' ? '{tr('sources.disable')}'
                         : '{tr('sources.enable')}'" @click="() => $parent.$emit('toggle', props.row)" />
                </q-td>""")
            table.on("toggle", lambda e: toggle(e.args["id"], e.args["status"] != "active"))

        def toggle(source_id: int, active: bool) -> None:
            run_action(lambda s: service.set_source_active(s, principal, source_id, active),
                       tr("done.source_enabled" if active else "done.source_disabled"))
            source_table.refresh()

        def create() -> None:
            with ui.dialog() as dialog, ui.card().classes("w-[620px]"):
                ui.label(tr("sources.new")).classes("text-lg font-medium")
                name = ui.input(tr("api_keys.name")).classes("w-full")
                kind = ui.select({k: tr(f"source.kind.{k}") for k in ("web", "app", "server", "import")},
                                 value="web", label=tr("sources.kind")).classes("w-full")
                result = ui.column().classes("w-full")

                def save() -> None:
                    created = validated(lambda: run_action(lambda s: service.create_source(
                        s, principal, data=schemas.SourceCreate(name=name.value or "", kind=kind.value))))
                    if created:
                        _source, key = created
                        result.clear()
                        with result:
                            ui.label(tr("api_keys.shown_once")).classes("text-warning font-medium")
                            shown = ui.input(value=key).props("readonly outlined").classes("w-full font-mono")
                            _connect_snippets(key, kehu_address, kind.value)
                        # the key selected, ready to copy (and the focus off the tabs, which it would mark)
                        ui.timer(0.1, lambda: shown.run_method("select"), once=True)
                        save_button.disable()
                        source_table.refresh()

                with ui.row().classes("w-full justify-end"):
                    ui.button(tr("common.close"), on_click=dialog.close).props("flat")
                    save_button = ui.button(tr("api_keys.create"), on_click=save)
            dialog.open()

        if principal.can("sources", "create"):
            ui.button(tr("sources.new"), icon="add", on_click=create)
        source_table()
