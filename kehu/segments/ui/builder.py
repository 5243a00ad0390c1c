"""The segment builder: the condition editor, a live count and sample, saving a segment."""

from __future__ import annotations

from typing import Any

from nicegui import ui
from pydantic import ValidationError

from kehu.core.errors import KehuError
from kehu.segments import preview as previews
from kehu.segments import schemas, service
from kehu.segments.conditions import PII_REFUSED
from kehu.tenancy.access import Principal
from kehu.ui.components import localise_table, readable_phone
from kehu.ui.components.condition_builder import (  # noqa: F401 - RULE_TYPES: the catalogue test reads it here
    RULE_TYPES,
    Builder,
    ConditionEditor,
)
from kehu.ui.shell import empty_state, frame, off_loop, run_action, tr, unit_of_work


# -- the builder ------------------------------------------------------------------------------------------
def _preview(principal: Principal, request: schemas.PreviewRequest) -> schemas.PreviewOut:
    with unit_of_work() as session:
        return previews.preview(session, principal, request)



def builder_page(segment_id: int | None = None) -> None:
    """A new segment, or (``segment_id``) a saved one edited: its condition read into the builder."""
    with frame("segments.edit" if segment_id else "segments.new", "/segments", "segments") as principal:
        if not principal.can("segments", "update" if segment_id else "create"):
            empty_state("block", tr("segments.no_right"), tr("segments.no_right_text"))
            return
        builder = Builder(principal)
        state: dict[str, Any] = {"name": "", "kind": "dynamic", "description": ""}
        if segment_id:
            try:
                with unit_of_work() as session:
                    saved = service.get_segment(session, principal, segment_id)
                    state = {"name": saved.name, "kind": saved.kind, "description": saved.description}
                    builder.load(saved.condition)
                    builder.segments.pop(segment_id, None)  # it cannot refer to itself
            except KehuError:
                empty_state("search_off", tr("segments.not_found"), tr("segments.not_found_text"))
                return
        with ui.row().classes("w-full gap-4 no-wrap items-start max-lg:flex-wrap"):
            with ui.column().classes("flex-1 min-w-0 gap-4"):
                with ui.card().classes("w-full"):
                    with ui.row().classes("w-full gap-4 items-center"):
                        ui.input(tr("segments.name"), value=state["name"],
                                 on_change=lambda e: state.update(name=e.value)).props(
                            "outlined dense").classes("w-72").mark("segment-name")
                        kind = ui.toggle({"dynamic": tr("segments.kind.dynamic"),
                                          "static": tr("segments.kind.static")}, value=state["kind"],
                                         on_change=lambda e: state.update(kind=e.value))
                        if segment_id:
                            kind.disable()  # a snapshot does not become a rule, nor the other way
                    ui.input(tr("segments.description"), value=state["description"],
                             on_change=lambda e: state.update(description=e.value)).props("outlined dense").classes(
                        "w-full")
                    ui.label(tr("segments.kind_help")).classes("text-xs text-grey-7")
                with ui.card().classes("w-full"):
                    ui.label(tr("segments.conditions")).classes("text-lg font-medium")
                    ui.label(tr("segments.groups_help")).classes("text-xs text-grey-7")
                    editor = ConditionEditor(builder, on_change=lambda: changed())
            with ui.column().classes("w-[420px] shrink-0 gap-4 max-lg:w-full"):
                with ui.card().classes("w-full"):
                    ui.label(tr("segments.preview")).classes("text-lg font-medium")
                    count_label = ui.label(tr("segments.preview_hint")).classes("text-lg text-primary").mark(
                        "segment-count")
                    with ui.row().classes("items-center gap-2") as estimate_row:
                        estimate_note = ui.label().classes("text-xs text-grey-7")
                        exactly = ui.button(tr("segments.count_exactly"), icon="calculate",
                                  on_click=lambda: preview(exact=True)).props("flat dense no-caps").mark(
                            "segment-count-exactly")
                    estimate_row.set_visibility(False)
                    sample = ui.table(columns=[
                        {"name": "name", "label": tr("customers.name"), "field": "name", "align": "left"},
                        {"name": "mobile", "label": tr("users.phone"), "field": "mobile", "align": "left"},
                        {"name": "city", "label": tr("unit.city"), "field": "city", "align": "left"},
                    ], rows=[], row_key="id").classes("w-full").props("flat dense")
                    localise_table(sample, tr)
                ui.button(tr("segments.save"), icon="save", on_click=lambda: save()).classes("w-full").mark(
                    "segment-save")
                if segment_id:
                    ui.button(tr("common.cancel"), on_click=lambda: ui.navigate.to(f"/segments/{segment_id}")
                              ).props("flat").classes("w-full")

        debounce = ui.timer(0.4, lambda: preview(), active=False)
        asked = {"last": 0}

        def changed() -> None:
            debounce.activate()  # the count follows the last change, not every keystroke

        def show(text: str, rows: list[dict[str, Any]], note: str | None = None) -> None:
            count_label.text, sample.rows = text, rows
            estimate_note.text = note or ""
            estimate_row.set_visibility(note is not None)

        async def preview(exact: bool = False) -> None:
            debounce.deactivate()
            asked["last"] = ask = asked["last"] + 1  # any answer still on its way is for an older condition
            condition = builder.condition()
            if condition is None:
                show(tr("segments.preview_hint"), [])
                return
            exactly.disable()  # one count at a time: a full count of a million customers takes a while
            try:
                request = schemas.PreviewRequest.model_validate({"condition": condition, "sample": 10,
                                                                 "exact": exact})
                result = await off_loop(_preview, principal, request)  # a count may take a while: not on the loop
            except KehuError as error:
                if ask == asked["last"]:
                    refused = [e.field for e in error.errors if e.code == PII_REFUSED]
                    show(tr("segments.personal_refused") if refused else tr("segments.incomplete"), [])
                return
            except ValidationError:  # a value still being typed; the save button says what is wrong
                if ask == asked["last"]:
                    show(tr("segments.incomplete"), [])
                return
            finally:
                if ask == asked["last"]:
                    exactly.enable()
            if ask != asked["last"]:
                return  # the condition changed meanwhile: a later answer is on its way
            rows = [{"id": p.id, "name": p.name or f"#{p.id}", "mobile": readable_phone(p.mobile) or "—",
                     "city": p.city or "—"} for p in result.sample]
            if result.estimated and result.margin is not None:  # (both rounded to what the margin leaves meaningful)
                show(tr("segments.preview_estimate", count=f"{result.count:,}", ms=result.milliseconds), rows,
                     tr("segments.estimate_note", margin=f"{result.margin:,}"))
            else:
                show(tr("segments.preview_count", count=f"{result.count:,}", ms=result.milliseconds), rows)

        def save() -> None:
            condition = builder.condition()
            try:
                if segment_id:
                    update = schemas.SegmentUpdate.model_validate(
                        {**{k: state[k] for k in ("name", "description")},
                         **({"condition": condition} if condition and state["kind"] == "dynamic" else {})})
                else:
                    data = schemas.SegmentCreate.model_validate({**state, "condition": condition})
            except ValidationError:
                ui.notify(tr("segments.incomplete"), type="warning")
                return
            if segment_id:
                made = run_action(lambda s: service.update_segment(s, principal, segment_id, update),
                                  lambda segment: tr("done.segment_saved", name=segment.name))
            else:
                made = run_action(lambda s: service.create_segment(s, principal, data),
                              lambda segment: tr("done.segment_created", name=segment.name))
            if made:
                ui.navigate.to(f"/segments/{made.id}")

        editor.draw()
        if not builder.is_empty():
            debounce.activate()
