"""Template pages: the templates the reader may use, with the content library of snippets and images (the
editor is kehu.channels.ui.editor)."""

from __future__ import annotations

import re
from typing import Any

from nicegui import ui
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kehu.cdp import service as cdp_service
from kehu.channels import schemas, templates
from kehu.channels.models import CHANNELS, Template
from kehu.channels.ui.editor import editor_page
from kehu.channels.ui.showing import CHANNEL_ICONS, channel_label, error_words
from kehu.core.errors import KehuError
from kehu.core.pagination import OffsetPage, offset_page
from kehu.core.timeutil import format_local
from kehu.tenancy.access import Principal
from kehu.ui.components import ServerTable, localise_table
from kehu.ui.shell import empty_state, frame, notify_error, page, run_action, tr, unit_of_work, validated

PURPOSE_COLOURS = {"marketing": "deep-orange-7", "service": "teal-7", "transactional": "blue-grey-7"}


def register() -> None:
    page("/templates")(templates_page)
    page("/templates/new")(editor_page)
    page("/templates/{template_id}")(editor_page)




TEMPLATE_SORTS = {"name": Template.name, "channel": Template.channel, "purpose": Template.purpose,
                  "version": Template.version, "updated_at": Template.updated_at}


def page_templates(session: Session, principal: Principal, *, channel: str | None = None,
                   archived: bool = False, q: str | None = None, sort: str | None = None,
                   descending: bool = True, page_no: int = 1, per_page: int = 20) -> OffsetPage[Any]:
    """Numbered, sorted pages of the templates the reader may use (the service pages them by cursor only, for
    the API): those its roles reach and those of the units above it."""
    query = select(Template).where(templates.visible_templates(principal))
    if channel:
        query = query.where(Template.channel == channel)
    if not archived:
        query = query.where(Template.is_archived.is_(False))
    if q:
        query = query.where(func.lower(Template.name).contains(q.strip().lower(), autoescape=True))
    column = TEMPLATE_SORTS.get(sort or "updated_at", Template.updated_at)
    order = [column.desc() if descending else column.asc(), Template.id.desc()]
    return offset_page(session, query, order_by=order, page=page_no, per_page=per_page)


def templates_page(tab: str = "templates") -> None:
    with frame("nav.templates", "/templates", "messages") as principal:
        with ui.tabs().props("dense no-caps align=left active-color=primary indicator-color=primary").classes(
                "text-grey-8") as tabs:
            listed = ui.tab("templates", label=tr("channels.tpl.tab"), icon="drafts")
            shared = ui.tab("library", label=tr("channels.library.tab"), icon="photo_library").props(
                "data-testid=library-tab")
        opened = shared if tab == "library" else listed
        tabs.set_value(opened)
        with ui.tab_panels(tabs, value=opened).classes("w-full bg-transparent").props("keep-alive"):
            with ui.tab_panel(listed).classes("px-0 py-2 gap-4"):
                _templates_list(principal)
            with ui.tab_panel(shared).classes("px-0 py-2 gap-4"):
                _library(principal)


def _templates_list(principal: Principal) -> None:
    filters: dict[str, Any] = {"channel": None, "archived": False, "q": ""}
    with unit_of_work() as session:
        anything = page_templates(session, principal, archived=True, per_page=1).total > 0
    may_create = principal.can("messages", "create")
    with ui.row().classes("w-full items-center gap-3"):
        ui.label(tr("channels.tpl.intro")).classes("text-grey-7")
        ui.space()
        if may_create:
            ui.button(tr("channels.tpl.new"), icon="add", on_click=lambda: ui.navigate.to("/templates/new"))
    if not anything:
        empty_state("drafts", tr("channels.tpl.empty_title"),
                    tr("channels.tpl.empty_text" if may_create else "channels.tpl.empty_text_read"))
        return
    with ui.row().classes("w-full items-center gap-3"):
        ui.input(placeholder=tr("channels.tpl.search"), on_change=lambda e: apply("q", e.value)).props(
            "outlined dense clearable debounce=300").classes("w-64")
        ui.toggle({"all": tr("channels.tpl.all_channels"), **{c: channel_label(c) for c in CHANNELS}},
                  value="all", on_change=lambda e: apply("channel", None if e.value == "all" else e.value)).props(
            "no-caps dense unelevated toggle-color=primary")
        ui.checkbox(tr("channels.tpl.show_archived"), on_change=lambda e: apply("archived", e.value))

    def fetch(page_no: int, per_page: int, sort: str | None, descending: bool) -> tuple[list[dict[str, Any]], int]:
        with unit_of_work() as session:
            result = page_templates(session, principal, channel=filters["channel"], archived=filters["archived"],
                                    q=filters["q"] or None, sort=sort, descending=descending, page_no=page_no,
                                    per_page=per_page)
            _, units = cdp_service.names_for(session, user_ids=set(), unit_ids={t.unit_id for t in result.items})
        rows = [{"id": t.id, "name": t.name, "description": t.description, "channel": t.channel,
                 "channel_label": channel_label(t.channel), "channel_icon": CHANNEL_ICONS.get(t.channel, "send"),
                 "purpose": tr(f"channels.tpl.purpose.{t.purpose}"), "purpose_colour": PURPOSE_COLOURS[t.purpose],
                 "version": t.version, "updated_at": format_local(t.updated_at, principal.timezone),
                 "unit": units.get(t.unit_id, "—"), "archived": t.is_archived,
                 "archived_label": tr("channels.tpl.archived")} for t in result.items]
        return rows, result.total

    columns: list[dict[str, Any]] = [
        {"name": "name", "label": tr("channels.tpl.name"), "field": "name", "sortable": True, "align": "left"},
        {"name": "channel", "label": tr("channels.tpl.channel"), "field": "channel", "sortable": True,
         "align": "left"},
        {"name": "purpose", "label": tr("channels.tpl.purpose"), "field": "purpose", "sortable": True,
         "align": "left"},
        {"name": "version", "label": tr("channels.tpl.version"), "field": "version", "sortable": True},
        {"name": "updated_at", "label": tr("channels.tpl.updated_at"), "field": "updated_at", "sortable": True,
         "align": "left"},
        {"name": "unit", "label": tr("channels.tpl.unit"), "field": "unit", "align": "left"},
    ]
    table = ServerTable(columns, fetch, sort_by="updated_at", descending=True, tr=tr,
                        empty_text=tr("channels.tpl.none_match"),
                        on_row_click=lambda row: ui.navigate.to(f"/templates/{row['id']}"))
    table.table.add_slot("body-cell-name", """
        <q-td :props="props">
          <div class="text-weight-medium">{{ props.value }}
            <q-badge v-if="props.row.archived" outline color="grey-7" class="q-ml-xs"
                     :label="props.row.archived_label" />
          </div>
          <div v-if="props.row.description" class="text-caption text-grey-7 ellipsis" style="max-width: 420px">
            {{ props.row.description }}</div>
        </q-td>""")
    table.table.add_slot("body-cell-channel", """
        <q-td :props="props"><q-chip dense square outline color="primary" :icon="props.row.channel_icon"
          :label="props.row.channel_label" /></q-td>""")
    table.table.add_slot("body-cell-purpose", """
        <q-td :props="props"><q-badge :color="props.row.purpose_colour" :label="props.value" /></q-td>""")
    table.table.add_slot("body-cell-version", """
        <q-td :props="props" class="text-right">v{{ props.value }}</q-td>""")

    def apply(key: str, value: Any) -> None:
        filters[key] = value
        table.reload(first_page=True)


# -- the content library ------------------------------------------------------------------------------------
def _library(principal: Principal) -> None:
    area = ui.column().classes("w-full gap-3")
    may_add = principal.can("messages", "create")

    def draw() -> None:
        area.clear()
        with unit_of_work() as session:
            items = [schemas.ContentItemOut.model_validate(i) for i in templates.list_content(session, principal)]
        with area:
            with ui.row().classes("w-full items-center gap-3"):
                ui.label(tr("channels.library.intro")).classes("text-grey-7")
                ui.space()
                if may_add:
                    ui.button(tr("channels.library.add"), icon="add", on_click=lambda: edit(None)).props(
                        "data-testid=library-add")
            if not items:
                empty_state("photo_library", tr("channels.library.empty_title"),
                            tr("channels.library.empty_text" if may_add else "channels.library.empty_text_read"))
                return
            rows = [{"id": i.id, "name": i.name, "kind": i.kind, "kind_label": tr(f"channels.library.kind.{i.kind}"),
                     "body": (i.body[:120] + "…") if len(i.body) > 120 else i.body,
                     "usage": f'{{{{ snippet("{i.name}") }}}}' if i.kind == "snippet" else
                     f'{{{{ image("{i.name}") }}}}',
                     "thumb": i.body if i.kind == "image" and i.body.startswith(("/", "data:image/")) else "",
                     "updated_at": format_local(i.updated_at, principal.timezone)} for i in items]
            table = ui.table(columns=[
                {"name": "name", "label": tr("channels.library.name"), "field": "name", "sortable": True,
                 "align": "left"},
                {"name": "kind", "label": tr("channels.library.kind"), "field": "kind_label", "sortable": True,
                 "align": "left"},
                {"name": "body", "label": tr("channels.library.body"), "field": "body", "align": "left"},
                {"name": "usage", "label": tr("channels.library.usage"), "field": "usage", "align": "left"},
                {"name": "updated_at", "label": tr("channels.tpl.updated_at"), "field": "updated_at",
                 "sortable": True, "align": "left"},
                {"name": "actions", "label": "", "field": "id"},
            ], rows=rows, row_key="id", pagination=20).classes("w-full").props("flat bordered")
            localise_table(table, tr)
            table.add_slot("body-cell-body", """
                <q-td :props="props">
                  <img v-if="props.row.thumb" :src="props.row.thumb" style="max-height: 40px; max-width: 120px" />
                  <div v-else class="ellipsis text-grey-8" style="max-width: 320px; font-family: monospace">
                    {{ props.value }}</div>
                </q-td>""")
            table.add_slot("body-cell-usage", """
                <q-td :props="props"><code class="text-primary">{{ props.value }}</code></q-td>""")
            edit_label, delete_label = tr("common.edit"), tr("common.delete")
            buttons = []
            if principal.can("messages", "update"):
                buttons.append(f"""<q-btn flat round dense icon="edit" color="primary"
                    @click.stop="() => $parent.$emit('edit_item', props.row)"><q-tooltip>{edit_label}</q-tooltip>
                    </q-btn>""")
            if principal.can("messages", "delete"):
                buttons.append(f"""<q-btn flat round dense icon="delete" color="negative"
                    @click.stop="() => $parent.$emit('delete_item', props.row)"><q-tooltip>{delete_label}</q-tooltip>
                    </q-btn>""")
            if buttons:
                table.add_slot("body-cell-actions", f"""<q-td :props="props" class="text-right">
                    {''.join(buttons)}</q-td>""")
            by_id = {i.id: i for i in items}
            table.on("edit_item", lambda e: edit(by_id.get(e.args["id"])))
            table.on("delete_item", lambda e: remove(by_id.get(e.args["id"])))

    def edit(item: schemas.ContentItemOut | None) -> None:
        with ui.dialog() as dialog, ui.card().classes("w-[640px] max-w-full"):
            ui.label(tr("channels.library.edit_title" if item else "channels.library.add")).classes(
                "text-lg font-medium")
            with ui.row().classes("w-full gap-3 no-wrap items-start"):
                name = ui.input(tr("channels.library.name"), value=item.name if item else "",
                                placeholder="footer").props("outlined dense").classes("flex-1").props(
                    "data-testid=library-name")
                kind = ui.toggle({"snippet": tr("channels.library.kind.snippet"),
                                  "image": tr("channels.library.kind.image")},
                                 value=item.kind if item else "snippet",
                                 on_change=lambda e: shape(e.value)).props("no-caps unelevated toggle-color=primary")
            if item:
                name.disable()  # replaced by name: renaming would leave the templates that use it without it
            ui.label(tr("channels.library.name_help")).classes("text-xs text-grey-7")
            body = ui.textarea(value=item.body if item else "").props("outlined autogrow").classes(
                "w-full font-mono").props("data-testid=library-body")
            help_label = ui.label().classes("text-xs text-grey-7")

            def shape(kind_value: str) -> None:
                body.props["label"] = tr("channels.library.url" if kind_value == "image"
                                         else "channels.library.snippet")
                help_label.text = tr("channels.library.image_help" if kind_value == "image"
                                     else "channels.library.snippet_help")

            shape(kind.value)

            def save() -> None:
                text = (name.value or "").strip()
                if not re.fullmatch(r"[A-Za-z0-9_\-]{1,100}", text):
                    name.error = tr("channels.library.name_invalid")
                    return
                data = validated(lambda: schemas.ContentItemIn(name=text, kind=kind.value, body=body.value or ""))
                if data is None:
                    return
                try:
                    with unit_of_work() as session:
                        templates.save_content(session, principal, data)
                except KehuError as error:
                    if error.errors and error.errors[0].field == "body":
                        body.error = error_words(error.errors[0].code, error.errors[0].message)
                    else:
                        notify_error(error)
                    return
                ui.notify(tr("channels.library.saved", name=text), type="positive")
                dialog.close()
                draw()

            with ui.row().classes("w-full justify-end"):
                ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                ui.button(tr("common.save"), on_click=save).props("data-testid=library-save")
        dialog.open()

    def remove(item: schemas.ContentItemOut | None) -> None:
        if item is None:
            return
        with ui.dialog() as dialog, ui.card().classes("w-[440px]"):
            ui.label(tr("channels.library.delete_title", name=item.name)).classes("text-lg font-medium")
            ui.label(tr("channels.library.delete_text")).classes("text-grey-8")

            def confirm() -> None:
                if run_action(lambda s: _deleted(s, principal, item.id), tr("channels.library.deleted",
                                                                           name=item.name)):
                    dialog.close()
                    draw()

            with ui.row().classes("w-full justify-end"):
                ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                ui.button(tr("common.delete"), on_click=confirm).props("color=negative")
        dialog.open()

    draw()



def _deleted(session: Session, principal: Principal, item_id: int) -> bool:
    templates.delete_content(session, principal, item_id)
    return True
