"""Segment pages: the list, the builder with its live count, a segment's members and changes; and the
segments a customer belongs to, on the Customer 360.

The condition tree and its inputs are a shared widget (kehu.ui.components.condition_builder): journeys edit
their conditions with it too.
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from kehu.cdp.identity_rules import list_rules
from kehu.core.errors import KehuError
from kehu.core.timeutil import format_local
from kehu.segments import lists, rfm, schemas, service, tags
from kehu.ui.components import add_status_slot, localise_table
from kehu.ui.components.chart import chart
from kehu.ui.components.condition_builder import (  # noqa: F401 - RULE_TYPES: the catalogue test reads it here
    RULE_TYPES,
    Builder,
    ConditionEditor,
)
from kehu.ui.shell import empty_state, frame, notify_error, page, run_action, tr, unit_of_work

STATUS_COLOURS = {"queued": "grey-7", "refreshing": "primary", "ready": "positive", "failed": "negative"}


def register() -> None:
    from kehu.segments.ui.builder import builder_page
    from kehu.segments.ui.segment import segment_page

    page("/segments")(segments_page)
    page("/segments/new")(builder_page)
    page("/segments/{segment_id}/edit")(builder_page)
    page("/segments/{segment_id}")(segment_page)


def _status_slot(table: ui.table) -> None:
    add_status_slot(table, "status", {s: tr(f"segments.status.{s}") for s in STATUS_COLOURS}, STATUS_COLOURS)


# -- the list ----------------------------------------------------------------------------------------------
def segments_page() -> None:
    with frame("nav.segments", "/segments", "segments") as principal:
        with unit_of_work() as session:
            segments = service.list_segments(session, principal, limit=200).items
            rows = [{"id": s.id, "name": s.name, "kind": tr(f"segments.kind.{s.kind}"), "members": s.member_count,
                     "status": s.status, "refreshed_at": format_local(s.refreshed_at, principal.timezone) or "—"}
                    for s in segments]
        with ui.row().classes("w-full items-center"):
            ui.label(tr("segments.intro")).classes("text-grey-7")
            ui.space()
            if principal.can("segments", "create"):
                ui.button(tr("segments.from_list"), icon="upload_file", on_click=lambda: list_dialog(principal)
                          ).props("outline").mark("segment-from-list")
                ui.button(tr("segments.new"), icon="add", on_click=lambda: ui.navigate.to("/segments/new")).mark(
                    "new-segment")
        if not rows:
            empty_state("filter_alt", tr("segments.empty_title"), tr("segments.empty_text"))
        else:
            _segments_table(rows)
        _tags_card(principal, {s.id: s.name for s in segments})
        _rfm_card(principal)


def _segments_table(rows: list[dict[str, Any]]) -> None:
    columns = [
        {"name": "name", "label": tr("segments.name"), "field": "name", "sortable": True, "align": "left"},
        {"name": "kind", "label": tr("segments.kind"), "field": "kind", "sortable": True, "align": "left"},
        {"name": "members", "label": tr("segments.members"), "field": "members", "sortable": True},
        {"name": "status", "label": tr("segments.status"), "field": "status", "align": "left"},
        {"name": "refreshed_at", "label": tr("segments.refreshed_at"), "field": "refreshed_at", "sortable": True,
         "align": "left"},
    ]
    table = ui.table(columns=columns, rows=rows, row_key="id", pagination=20).classes("w-full").props(
        "flat bordered hover")
    localise_table(table, tr)
    _status_slot(table)
    table.on("row-click", lambda e: ui.navigate.to(f"/segments/{e.args[1]['id']}"))


def _rfm_card(principal: Any) -> None:
    """The RFM classes of the reader's customers as a chart; computing them again; their bounds."""
    def run() -> None:
        if run_action(lambda s: rfm.request_run(s, principal), tr("rfm.queued")):
            computed.text = tr("rfm.running")

    def edit() -> None:
        """The bounds as a grid: recency (days), frequency (orders) and monetary (CNY), four ascending each."""
        inputs: dict[str, list[Any]] = {}
        with ui.dialog() as dialog, ui.card().classes("w-[640px] max-w-full"):
            ui.label(tr("rfm.edit")).classes("text-lg font-medium")
            ui.label(tr("rfm.edit_help")).classes("text-sm text-grey-7")
            for key, step in (("recency_days", 1), ("frequency", 1), ("monetary", 1000)):
                with ui.row().classes("w-full items-center gap-2 no-wrap"):
                    ui.label(tr(f"rfm.bounds.{key}")).classes("w-40 shrink-0")
                    inputs[key] = [ui.number(value=v, min=0, step=step, format="%.0f").props("outlined dense").classes(
                        "flex-1") for v in getattr(model, key)]
            statuses = ui.select({s: tr(f"order.status.{s}") for s in
                                  ("placed", "paid", "delivered", "cancelled", "refunded")},
                                 value=list(model.statuses), multiple=True, label=tr("rfm.statuses")).props(
                "outlined dense use-chips").classes("w-full")

            def save() -> None:
                values = {k: [int(b.value) if k != "monetary" else float(b.value) for b in boxes]
                          if all(b.value is not None for b in boxes) else None for k, boxes in inputs.items()}
                if any(v is None for v in values.values()):
                    ui.notify(tr("rfm.bounds_missing"), type="warning")
                    return
                if run_action(lambda s: rfm.update_model(s, principal, {**values, "statuses": statuses.value}),
                              tr("rfm.saved")):
                    dialog.close()
                    ui.navigate.reload()

            with ui.row().classes("w-full justify-end"):
                ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                ui.button(tr("common.save"), on_click=save).mark("rfm-save")
        dialog.open()

    with unit_of_work() as session:
        model = schemas.RfmModelOut.model_validate(rfm.get_model(session, principal))
        shares = rfm.distribution(session, principal)
    with ui.card().classes("w-full"):
        with ui.row().classes("w-full items-center"):
            ui.label(tr("rfm.title")).classes("text-lg font-medium")
            computed = ui.label(tr("rfm.computed", at=format_local(model.computed_at, principal.timezone))
                                if model.computed_at else tr("rfm.never")).classes("text-grey-7 text-sm")
            ui.space()
            if principal.has("settings.manage"):
                ui.button(tr("rfm.edit"), icon="tune", on_click=lambda: edit()).props("flat").mark("rfm-edit")
            if principal.can("segments", "create"):
                ui.button(tr("rfm.run"), icon="calculate", on_click=lambda: run()).props("outline").mark("rfm-run")
        ui.label(tr("rfm.help", r=", ".join(map(str, model.recency_days)), f=", ".join(map(str, model.frequency)),
                    m=", ".join(f"{v:,.0f}" for v in model.monetary))).classes("text-xs text-grey-7")
        classes = shares["classes"]
        if not any(classes.values()):
            ui.label(tr("rfm.empty")).classes("text-grey-7")
            return
        names = list(classes)
        chart({
            "grid": {"left": 110, "right": 24, "top": 8, "bottom": 24},
            "tooltip": {"trigger": "axis"},
            "xAxis": {"type": "value", "minInterval": 1},
            "yAxis": {"type": "category", "data": [tr(f"rfm.class.{n}") for n in names], "inverse": True},
            "series": [{"type": "bar", "data": [{"value": classes[n], "itemStyle": {
                "color": "#c0392b" if n.startswith("important") else "#7f8c8d"}} for n in names]}],
        }).classes("w-full h-72")


COLOURS = ("primary", "secondary", "positive", "negative", "warning", "info", "teal", "purple", "orange", "grey")


def _tags_card(principal: Any, segment_names: dict[int, str]) -> None:
    """The organisation's tags with how many of the reader's customers carry them; new tags and groups."""
    with ui.card().classes("w-full"):
        with ui.row().classes("w-full items-center"):
            ui.label(tr("tags.title")).classes("text-lg font-medium")
            ui.space()
            if principal.can("segments", "create"):
                ui.button(tr("tags.new"), icon="sell", on_click=lambda: new_tag()).props("outline").mark("new-tag")
        area = ui.column().classes("w-full")

        def draw() -> None:
            area.clear()
            with unit_of_work() as session:
                groups = {g.id: g.name for g in tags.list_groups(session, principal)}
                rows = [{"id": t.id, "name": t.name, "colour": t.colour, "group": groups.get(t.group_id, "—"),
                         "customers": n, "rule": segment_names.get(t.segment_id, "") if t.segment_id else (
                             "RFM" if t.rule else ""), "manual": t.segment_id is None and t.rule is None}
                        for t, n in tags.list_tags(session, principal)]
            with area:
                if not rows:
                    ui.label(tr("tags.empty")).classes("text-grey-7")
                    return
                table = ui.table(columns=[
                    {"name": "name", "label": tr("tags.name"), "field": "name", "sortable": True, "align": "left"},
                    {"name": "group", "label": tr("tags.group"), "field": "group", "sortable": True, "align": "left"},
                    {"name": "customers", "label": tr("tags.customers"), "field": "customers", "sortable": True},
                    {"name": "rule", "label": tr("tags.rule"), "field": "rule", "align": "left"},
                    {"name": "actions", "label": "", "field": "id"},
                ], rows=rows, row_key="id", pagination=10).classes("w-full").props("flat bordered")
                localise_table(table, tr)
                table.add_slot("body-cell-name", """
                    <q-td :props="props"><q-chip dense :color="props.row.colour" text-color="white" icon="sell"
                      :label="props.value" /></q-td>""")
                if principal.can("profiles", "update"):  # rule tags are their rule's: no list for them
                    table.add_slot("body-cell-actions", f"""
                        <q-td :props="props"><q-btn v-if="props.row.manual" flat dense no-caps icon="upload_file"
                          label="{tr('tags.upload')}" @click="() => $parent.$emit('upload', props.row)" /></q-td>""")
                    table.on("upload", lambda e: list_dialog(principal, tag=(e.args["id"], e.args["name"]),
                                                             on_done=draw))

        def new_tag() -> None:
            with unit_of_work() as session:
                groups = {g.id: g.name for g in tags.list_groups(session, principal)}
            with ui.dialog() as dialog, ui.card().classes("w-[460px]"):
                ui.label(tr("tags.new")).classes("text-lg font-medium")
                name = ui.input(tr("tags.name")).classes("w-full").mark("tag-name")
                group = ui.select(groups, label=tr("tags.group"), clearable=True, new_value_mode="add-unique"
                                  ).classes("w-full")
                colour = ui.select({c: tr(f"tags.colour.{c}") for c in COLOURS}, value="primary",
                                   label=tr("tags.colour")).classes("w-full")
                bound = ui.select(segment_names, label=tr("tags.rule"), clearable=True).classes("w-full")
                ui.label(tr("tags.rule_help")).classes("text-xs text-grey-7")

                def save() -> None:
                    group_id = group.value
                    if isinstance(group_id, str):  # typed a new group's name
                        made_group = run_action(lambda s: tags.create_group(s, principal, group_id.strip()))
                        if made_group is None:
                            return
                        group_id = made_group.id
                    made = run_action(lambda s: tags.create_tag(s, principal, schemas.TagCreate(
                        name=(name.value or "").strip() or "-", group_id=group_id, colour=colour.value,
                        segment_id=bound.value)), lambda tag: tr("done.tag_created", name=tag.name))
                    if made is not None:
                        dialog.close()
                        draw()

                with ui.row().classes("w-full justify-end"):
                    ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                    ui.button(tr("common.save"), on_click=save).mark("tag-save")
            dialog.open()

        draw()


# -- lists -------------------------------------------------------------------------------------------------
def list_dialog(principal: Any, segment_id: int | None = None, tag: tuple[int, str] | None = None,
                on_done: Any = None) -> None:
    """Upload a list (mobiles, e-mails, customer numbers, any identity) into a new static segment, into the
    static segment ``segment_id``, or onto the customers of a ``tag`` (id, name); then show what became of
    every row."""
    with unit_of_work() as session:
        allowed = set(lists.match_kinds(session, principal))  # without pii.read: no mobiles, e-mails, VINs
        kinds = {k: tr("segments.list.customer_id") if k == lists.CUSTOMER_ID else
                 (r.label_zh if principal.locale == "zh" else r.label_en) or k
                 for k, r in [(lists.CUSTOMER_ID, None), *((r.kind, r) for r in list_rules(session, principal.org_id))]
                 if k in allowed}
    with ui.dialog() as dialog, ui.card().classes("w-[640px] max-w-full"):
        title = tr("tags.from_list", name=tag[1]) if tag else (
            tr("segments.add_list") if segment_id else tr("segments.from_list"))
        ui.label(title).classes("text-lg font-medium")
        ui.label(tr("tags.list_help") if tag else tr("segments.list.help")).classes("text-sm text-grey-7")
        name = None if segment_id or tag else ui.input(tr("segments.name")).props("outlined dense").classes(
            "w-full").mark("list-name")
        with ui.row().classes("w-full gap-3 no-wrap"):
            match_by = ui.select(kinds, value="mobile" if "mobile" in kinds else lists.CUSTOMER_ID,
                                 label=tr("segments.list.match_by")).props("outlined dense").classes("flex-1")
            column = ui.input(tr("segments.list.column"), placeholder=tr("segments.list.column_hint")).props(
                "outlined dense").classes("flex-1")
        picker = ui.upload(label=tr("imports.choose"), auto_upload=True, on_upload=lambda e: uploaded(e),
                           max_file_size=lists.MAX_LIST_BYTES).props('accept=".csv,.xlsx,.xlsm,.txt"').classes(
            "w-full").mark("list-upload")
        outcome = ui.column().classes("w-full gap-2")
        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.close"), on_click=dialog.close).props("flat")
        made_here: dict[str, int] = {}
        if on_done is not None:  # when the dialog closes: redrawing now could remove the dialog with its page part
            dialog.on("hide", lambda: on_done())

        async def uploaded(event: Any) -> None:
            content = await event.file.read()
            filename = event.file.name

            def fill(session: Any) -> tuple[int, Any]:
                if tag is not None:
                    return tag[0], lists.tag_from_file(session, principal, tag[0], filename=filename, content=content,
                                                       match_by=match_by.value,
                                                       column=(column.value or "").strip() or None)
                target = made_here.get("id", segment_id)
                if target is None:
                    made = service.create_segment(session, principal, schemas.SegmentCreate(
                        name=(name.value if name else "").strip() or filename.rsplit(".", 1)[0][:100],
                        kind="static"))
                    target = made.id
                return target, lists.add_from_file(session, principal, target, filename=filename, content=content,
                                                   match_by=match_by.value, column=(column.value or "").strip() or None)

            done = run_action(fill)
            picker.reset()
            if done is None:
                return
            target, result = done
            if tag is None:
                made_here["id"] = target  # a second file goes into the segment the first one made
            if name is not None:
                name.disable()
            show(target, result)

        def show(target: int, result: lists.ListUpload) -> None:
            outcome.clear()
            with outcome:
                ui.label(tr("tags.list_outcome" if tag else "segments.list.outcome", rows=f"{result.rows:,}",
                            added=f"{result.added:,}",
                            already=f"{result.already:,}", rejected=f"{len(result.rejected):,}")).classes(
                    "text-positive font-medium" if not result.rejected else "text-warning font-medium").mark(
                    "list-outcome")
                if result.rejected:
                    table = ui.table(columns=[
                        {"name": "row", "label": tr("segments.list.row"), "field": "row", "sortable": True},
                        {"name": "value", "label": result.column, "field": "value", "align": "left"},
                        {"name": "reason", "label": tr("segments.list.reason"), "field": "reason", "align": "left"},
                    ], rows=[{"row": r.row, "value": r.value, "reason": r.reason} for r in result.rejected],
                        row_key="row", pagination=8).classes("w-full").props("flat dense bordered")
                    localise_table(table, tr)
                with ui.row().classes("gap-2"):
                    if result.rejected:
                        ui.button(tr("imports.download_rejected"), icon="download",
                                  on_click=lambda: ui.download.content(lists.rejections_csv(result, principal.locale),
                                                                       f"segment-{target}-rejected.csv", "text/csv")
                                  ).props("outline")
                    if tag is None:
                        ui.button(tr("segments.list.open"), icon="open_in_new",
                                  on_click=lambda: ui.navigate.to(f"/segments/{target}")).mark("list-open")

    dialog.open()


# -- on customers picked in the list -------------------------------------------------------------------------
def picked_customers_actions(principal: Any, picked: Any, clear: Any) -> None:
    """Buttons on the customer list's selection: put the picked customers in a static segment, tag them."""
    if principal.can("segments", "update") or principal.can("segments", "create"):
        ui.button(tr("segments.pick_into"), icon="playlist_add", on_click=lambda: into_segment()).props(
            "flat dense no-caps").mark("pick-into-segment")
    if principal.can("profiles", "update") and principal.can("segments", "read"):
        ui.button(tr("tags.pick_tag"), icon="sell", on_click=lambda: tag_them()).props("flat dense no-caps").mark(
            "pick-tag")

    def into_segment() -> None:
        with unit_of_work() as session:
            statics = {s.id: s.name for s in service.list_segments(session, principal, limit=200).items
                       if s.kind == "static"}
        with ui.dialog() as dialog, ui.card().classes("w-[460px]"):
            ui.label(tr("segments.pick_into_title", count=len(picked()))).classes("text-lg font-medium")
            target = ui.select(statics, label=tr("segments.pick_target"), with_input=True,
                               new_value_mode="add-unique" if principal.can("segments", "create") else None
                               ).classes("w-full").mark("pick-target")
            ui.label(tr("segments.pick_help")).classes("text-xs text-grey-7")

            def save() -> None:
                chosen, ids = target.value, picked()
                if not chosen:
                    ui.notify(tr("segments.pick_target"), type="warning")
                    return
                if isinstance(chosen, int):
                    done = run_action(lambda s: service.change_members(s, principal, chosen, ids))
                    segment_id = chosen
                else:  # a name typed: a new static segment of exactly these customers
                    made = run_action(lambda s: service.create_segment(s, principal, schemas.SegmentCreate(
                        name=chosen.strip(), kind="static", profile_ids=ids)))
                    done, segment_id = (made.member_count, made.id) if made else (None, None)
                if done is None:
                    return
                ui.notify(tr("segments.picked_added", count=done), type="positive")
                dialog.close()
                clear()
                ui.navigate.to(f"/segments/{segment_id}")

            with ui.row().classes("w-full justify-end"):
                ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                ui.button(tr("common.save"), on_click=save).mark("pick-save")
        dialog.open()

    def tag_them() -> None:
        with unit_of_work() as session:
            manual = {t.id: t.name for t in tags.manual_tags(session, principal)}
        with ui.dialog() as dialog, ui.card().classes("w-[460px]"):
            ui.label(tr("tags.pick_title", count=len(picked()))).classes("text-lg font-medium")
            if not manual:
                ui.label(tr("tags.pick_none")).classes("text-grey-7")
            tag = ui.select(manual, label=tr("tags.name"), with_input=True).classes("w-full")

            def save() -> None:
                if not tag.value:
                    return
                done = run_action(lambda s: tags.tag_customers(s, principal, tag.value, picked()))
                if done is None:
                    return
                ui.notify(tr("tags.picked_tagged", count=done), type="positive")
                dialog.close()
                clear()

            with ui.row().classes("w-full justify-end"):
                ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                ui.button(tr("common.save"), on_click=save)
        dialog.open()


# -- on the Customer 360 -----------------------------------------------------------------------------------
def customer_segments(principal: Any, profile_id: int) -> None:
    """Tags (removable when put by hand, addable from the organisation's manual tags) and segments."""
    if not principal.can("segments", "read"):
        return
    with ui.card().classes("w-full"):
        ui.label(tr("tags.and_segments")).classes("text-lg font-medium")
        area = ui.column().classes("w-full gap-2")

        def draw() -> None:
            area.clear()
            try:
                with unit_of_work() as session:
                    carried = [(t.id, t.name, t.colour, m.origin)
                               for t, m in tags.tags_of(session, principal, profile_id)]
                    manual = {t.id: t.name for t in tags.manual_tags(session, principal)}  # no counts: a hot page
                    mine = service.segments_of(session, principal, profile_id)
            except KehuError as error:
                notify_error(error)
                return
            with area:
                with ui.row().classes("gap-1 items-center"):
                    for tag_id, name, colour, origin in carried:
                        # a rule's tags follow the rule; a person's and a journey's may be taken off by hand
                        chip = ui.chip(name, icon="auto_awesome" if origin == "rule" else "sell",
                                       removable=origin != "rule").props(f"color={colour} text-color=white dense")
                        chip.on("remove", lambda _=None, t=tag_id: untag(t))
                    if not carried:
                        ui.label(tr("tags.none")).classes("text-grey-7 text-sm")
                available = {k: v for k, v in manual.items() if k not in {c[0] for c in carried}}
                if available and principal.can("profiles", "update"):
                    ui.select(available, label=tr("tags.add"), with_input=True,
                              on_change=lambda e: put(e.value) if e.value else None).props(
                        "dense outlined").classes("w-56").mark("add-tag")
                ui.separator()
                if not mine:
                    ui.label(tr("segments.of_customer_none")).classes("text-grey-7 text-sm")
                with ui.row().classes("gap-2"):
                    for item in mine:
                        ui.chip(item.name, icon="filter_alt",
                                on_click=lambda i=item.id: ui.navigate.to(f"/segments/{i}")).props(
                            "outline clickable color=primary dense")

        def put(tag_id: int) -> None:
            if run_action(lambda s: tags.tag_customers(s, principal, tag_id, [profile_id]) + 1, tr("tags.added")):
                draw()

        def untag(tag_id: int) -> None:
            if run_action(lambda s: tags.tag_customers(s, principal, tag_id, [profile_id], remove=True) + 1,
                          tr("tags.removed")):
                draw()

        draw()
