"""The side panel's parts for the nodes that act on the customers — a tag, a profile field, a static segment, a lead,
a follow-up task — and the helpers every part of the panel uses to change the selected node (an undo step each,
drawn again on the canvas)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nicegui import ui

from kehu.ui.shell import tr

if TYPE_CHECKING:
    from kehu.journeys.ui.canvas import JourneyEditor

TASK_KINDS = ("call", "task", "visit", "wechat", "sms", "email")


def known(options: dict[Any, Any], value: Any) -> Any:
    """``value`` as a select may show it: what its options hold (a list: those of its items they hold); a record
    deleted since, or a value given another way through the API, shows as nothing chosen (the node's problem says
    why) rather than breaking the panel."""
    if isinstance(value, list):
        return [item for item in value if item in options]
    return value if value in options else None


class NodeParts:
    """What the panel draws for the acting nodes (``NodePanel`` is one)."""

    editor: JourneyEditor

    def _set(self, node_id: str, key: str, value: Any, *, typing: bool = False, panel: bool = False) -> None:
        def apply(definition: dict[str, Any]) -> None:
            self.editor.node_of(definition, node_id)[key] = value

        self.editor.change(apply, typing=f"{node_id}.{key}" if typing else None, panel=panel)

    def _text(self, node: dict[str, Any], key: str, label: str, *, max_length: int) -> None:
        ui.input(label, value=node.get(key) or "",
                 on_change=lambda e: self._set(node["id"], key, (e.value or "")[:max_length], typing=True)).props(
            f"outlined dense maxlength={max_length} data-testid=panel-{key}").classes("w-full")

    def _tag_panel(self, node: dict[str, Any]) -> None:
        if not self.editor.tags:
            ui.label(tr("journeys.canvas.no_tags")).classes("text-grey-7 text-sm")
            return
        ui.toggle({False: tr("journeys.canvas.tag_add"), True: tr("journeys.canvas.tag_remove")},
                  value=bool(node.get("remove")), on_change=lambda e: self._set(node["id"], "remove", bool(e.value))) \
            .props("no-caps dense data-testid=panel-tag-remove")
        ui.select(self.editor.tags, value=known(self.editor.tags, node.get("tag_id")), label=tr("journeys.canvas.tag"),
                  with_input=True,
                  on_change=lambda e: self._set(node["id"], "tag_id", e.value)).props(
            "outlined dense data-testid=panel-tag").classes("w-full")
        ui.label(tr("journeys.canvas.tag_text")).classes("text-grey-7 text-xs")

    def _field_panel(self, node: dict[str, Any]) -> None:
        settable = self.editor.settable
        ui.select({name: field["label"] for name, field in settable.items()}, value=known(settable, node.get("field")),
                  label=tr("journeys.canvas.field"), with_input=True,
                  on_change=lambda e: self._set_field(node["id"], e.value)).props(
            "outlined dense data-testid=panel-field").classes("w-full")
        field = settable.get(node.get("field") or "")
        if field is None:
            ui.label(tr("journeys.canvas.field_text")).classes("text-grey-7 text-xs")
            return
        value, kind = node.get("value"), field["type"]

        def set_value(new: Any, typing: bool = False) -> None:
            self._set(node["id"], "value", new, typing=typing)

        required = node.get("field") == "lifecycle_stage"  # every customer has one
        label = tr("journeys.canvas.field_value_required" if required else "journeys.canvas.field_value")
        if kind in ("option", "multi_option"):
            ui.select(field["options"], value=known(field["options"], value), label=label,
                      multiple=kind == "multi_option", clearable=not required,
                      on_change=lambda e: set_value(e.value or None)).props(
                f"outlined dense {'use-chips ' if kind == 'multi_option' else ''}data-testid=panel-field-value") \
                .classes("w-full")
        elif kind == "boolean":
            ui.select({True: tr("common.yes"), False: tr("common.no")},
                      value=value if isinstance(value, bool) else None, label=label, clearable=True,
                      on_change=lambda e: set_value(e.value)).props(
                "outlined dense data-testid=panel-field-value").classes("w-full")
        elif kind == "number":
            ui.number(label, value=value, on_change=lambda e: set_value(e.value, typing=True)).props(
                "outlined dense clearable data-testid=panel-field-value").classes("w-full")
        else:
            ui.input(label, value=value or "", on_change=lambda e: set_value(e.value or None, typing=True)).props(
                f"outlined dense clearable {'type=date ' if kind == 'date' else ''}maxlength=1000 "
                "data-testid=panel-field-value").classes("w-full")
        ui.label(tr("journeys.canvas.field_text")).classes("text-grey-7 text-xs")

    def _set_field(self, node_id: str, name: str | None) -> None:
        """Another field: its value starts empty (the last one's would not fit)."""
        def apply(definition: dict[str, Any]) -> None:
            node = self.editor.node_of(definition, node_id)
            node.update(field=name, value="customer" if name == "lifecycle_stage" else None)

        self.editor.change(apply, panel=True)

    def _segment_panel(self, node: dict[str, Any]) -> None:
        if not self.editor.static_segments:
            ui.label(tr("journeys.canvas.no_static_segments")).classes("text-grey-7 text-sm")
            return
        ui.toggle({False: tr("journeys.canvas.segment_add"), True: tr("journeys.canvas.segment_remove")},
                  value=bool(node.get("remove")), on_change=lambda e: self._set(node["id"], "remove", bool(e.value))) \
            .props("no-caps dense data-testid=panel-segment-remove")
        ui.select(self.editor.static_segments, value=known(self.editor.static_segments, node.get("segment_id")),
                  label=tr("journeys.canvas.segment"),
                  with_input=True, on_change=lambda e: self._set(node["id"], "segment_id", e.value)).props(
            "outlined dense data-testid=panel-static-segment").classes("w-full")
        ui.label(tr("journeys.canvas.segment_node_text")).classes("text-grey-7 text-xs")

    def _lead_panel(self, node: dict[str, Any]) -> None:
        ui.label(tr("journeys.canvas.lead_text")).classes("text-sm text-grey-8 mt-2")
        ui.input(tr("journeys.canvas.lead_model"), value=node.get("model") or "",
                 on_change=lambda e: self._set(node["id"], "model", (e.value or "").strip()[:100] or None,
                                               typing=True)).props(
            "outlined dense maxlength=100 data-testid=panel-model").classes("w-full")
        self._text(node, "note", tr("journeys.canvas.note"), max_length=500)
        ui.label(tr("journeys.canvas.lead_hint")).classes("text-grey-7 text-xs")

    def _task_panel(self, node: dict[str, Any]) -> None:
        ui.label(tr("journeys.canvas.task_text")).classes("text-sm text-grey-8 mt-2")
        ui.select({kind: tr(f"activity.kind.{kind}") for kind in TASK_KINDS}, value=node.get("kind") or "call",
                  label=tr("journeys.canvas.task_kind"),
                  on_change=lambda e: self._set(node["id"], "kind", e.value)).props(
            "outlined dense data-testid=panel-task-kind").classes("w-full")
        self._text(node, "subject", tr("journeys.canvas.task_subject"), max_length=200)
        self._text(node, "note", tr("journeys.canvas.note"), max_length=2000)
        ui.number(tr("journeys.canvas.task_due_days"), value=node.get("due_days", 1), min=0, max=365, precision=0,
                  on_change=lambda e: self._set(node["id"], "due_days", max(0, min(365, int(e.value or 0))),
                                                typing=True)).props(
            "outlined dense data-testid=panel-due-days").classes("w-full")
        ui.label(tr("journeys.canvas.task_hint")).classes("text-grey-7 text-xs")
