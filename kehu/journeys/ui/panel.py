"""The side panel of the journey canvas: the selected node's settings, by its kind — who enters and the goal (the
entry), how long or until when to wait, the event to wait for, the template to send, a split's branches and their
conditions (the segments' condition builder), a random split's groups — each change made through the editor (an
undo step, drawn again on the canvas)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nicegui import ui

from kehu.journeys import schemas
from kehu.journeys.ui.actions import NodeParts
from kehu.ui.components.condition_builder import Builder, ConditionEditor
from kehu.ui.shell import tr

if TYPE_CHECKING:
    from kehu.journeys.ui.canvas import JourneyEditor

NODE_ICONS = {"entry": "login", "wait": "hourglass_top", "wait_until": "schedule",
              "wait_for_event": "notifications_active", "send": "send", "split": "call_split",
              "random_split": "shuffle", "tag": "sell", "field": "edit_note", "segment": "playlist_add",
              "lead": "person_add",
              "task": "assignment",
              "exit": "logout"}
TRIGGERS = ("manual", "segment_entered", "segment_left", "event", "schedule", "date")
TIMED_KEYS = ("time", "weekdays", "date")  # what a timed trigger says of when
DATE_KEYS = ("field", "offset_days", "yearly")  # what a date trigger says of whose date
WEEKDAYS = range(1, 8)
NO_FIELD = "-"  # the profile date select's "none": a time on weekdays or a date instead
TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class NodePanel(NodeParts):
    """The panel beside the canvas (``area``), drawn for the editor's selected node."""

    def __init__(self, editor: JourneyEditor, area: Any) -> None:
        self.editor = editor
        self.area = area
        self.panel_problems: Any = None  # the selected node's problems
        self.total_label: Any = None  # a random split's shares added up

    def draw(self) -> None:
        self.area.clear()
        with self.area:
            node = next((n for n in self.editor.definition["nodes"] if n["id"] == self.editor.selected), None)
            self.panel_problems = None
            if node is None:
                ui.label(tr("journeys.canvas.panel_title")).classes("text-base font-medium")
                ui.label(tr("journeys.canvas.panel_empty") if self.editor.editable else
                         tr("journeys.canvas.panel_read_only")).classes("text-grey-7")
                return
            kind = node.get("type", "")
            with ui.row().classes("w-full items-center gap-2 no-wrap"):
                ui.icon(NODE_ICONS.get(kind, "circle")).classes("text-2xl text-primary")
                ui.label(tr(f"journeys.node.{kind}")).classes("text-base font-medium")
                ui.space()
                ui.label(node["id"]).classes("text-grey-6 text-xs")
            self.panel_problems = ui.column().classes("w-full gap-1")
            self.draw_problems()
            if not self.editor.editable:
                ui.label(self.editor.summary(node)).classes("text-grey-8")
                return
            if not self._template_part(node):
                return
            self._text(node, "label", tr("journeys.canvas.label"), max_length=100)
            if kind == "entry":
                self._trigger_panel(rules=self.editor.template is None)
            elif kind == "wait":
                ui.label(tr("journeys.canvas.wait_for")).classes("text-sm text-grey-8 mt-2")
                self._durations(node)
            elif kind == "wait_for_event":
                self._event_wait_panel(node)
            elif kind == "send":
                self._send_panel(node)
            elif kind == "split":
                self._split_panel(node)
            elif kind == "wait_until":
                self._wait_until_panel(node)
            elif kind == "random_split":
                self._random_split_panel(node)
            elif kind == "tag":
                self._tag_panel(node)
            elif kind == "field":
                self._field_panel(node)
            elif kind == "segment":
                self._segment_panel(node)
            elif kind == "lead":
                self._lead_panel(node)
            elif kind == "task":
                self._task_panel(node)
            if kind != "entry" and self.editor.template is None:
                ui.separator().classes("my-2")
                ui.button(tr("journeys.canvas.delete_node"), icon="delete",
                          on_click=lambda: self.editor.remove([node["id"]], [])).props(
                    "flat color=negative dense data-testid=canvas-delete-node")

    def _template_part(self, node: dict[str, Any]) -> bool:
        """A template's node: whether the dealers may change it. A dealer's journey's node: locked (its settings
        shown, not to be changed: False) or open. Any other journey's: nothing to say."""
        kind = node.get("type")
        if self.editor.is_template and kind != "exit":
            ui.switch(tr("journeys.template.open_switch"), value=self.editor.is_open(node["id"]),
                      on_change=lambda e: self.editor.set_open(node["id"], bool(e.value))).props(
                "dense data-testid=panel-open")
            ui.label(tr("journeys.template.open_help_trigger" if kind == "entry" else "journeys.template.open_help")) \
                .classes("text-grey-7 text-xs")
        if self.editor.template is None or kind == "exit":
            return True
        if self.editor.locked(node["id"]):
            with ui.row().classes("items-center gap-1 no-wrap").props("data-testid=panel-locked"):
                ui.icon("lock").classes("text-brown-6")
                ui.label(tr("journeys.template.locked_node")).classes("text-sm text-brown-8")
            ui.label(self.editor.summary(node)).classes("text-grey-8")
            return False
        with ui.row().classes("items-center gap-1 no-wrap"):
            ui.icon("tune").classes("text-primary")
            ui.label(tr("journeys.template.open_node")).classes("text-sm text-primary")
        return True

    def draw_problems(self) -> None:
        """The selected node's problems, as they are after each change."""
        if self.panel_problems is None:
            return
        self.panel_problems.clear()
        with self.panel_problems:
            for problem in self.editor.node_problems.get(self.editor.selected or "", []):
                ui.label(problem).classes("text-negative text-sm").props("data-testid=panel-problem")

    def _durations(self, node: dict[str, Any]) -> None:
        with ui.row().classes("w-full gap-2 no-wrap"):
            for unit, most in (("days", 3650), ("hours", 10_000), ("minutes", 100_000)):
                ui.number(tr(f"journeys.canvas.{unit}"), value=node.get(unit) or 0, min=0, max=most, precision=0,
                          on_change=lambda e, u=unit, m=most: self._set(
                              node["id"], u, max(0, min(m, int(e.value or 0))), typing=True)).props(
                    f"outlined dense data-testid=panel-{unit}").classes("flex-1")

    def _trigger_panel(self, *, rules: bool = True) -> None:
        """Who enters; with ``rules``, also how often, the goal and the exits (a dealer's journey made of a template
        changes only the audience: the kind of trigger and the rules are the template's)."""
        trigger = self.editor.definition.get("trigger") or {"type": "manual"}

        def set_trigger(**values: Any) -> None:
            def apply(definition: dict[str, Any]) -> None:
                now = {**(definition.get("trigger") or {"type": "manual"}), **values}
                kind = now["type"]
                # a trigger keeps only what its kind names (the API refuses the rest)
                if kind not in schemas.SEGMENT_TRIGGERS:
                    now.pop("segment_id", None)
                elif not now.get("segment_id"):
                    now["segment_id"] = next(iter(self.editor.segments), None)
                if kind != "event":
                    now.pop("event", None)
                    now.pop("properties", None)
                elif not now.get("event"):
                    now["event"] = "test_drive_booked"
                if kind not in schemas.TIMED_TRIGGERS:
                    for key in TIMED_KEYS:
                        now.pop(key, None)
                else:
                    now.setdefault("time", "10:00")
                if kind != "date":
                    for key in DATE_KEYS:
                        now.pop(key, None)
                else:
                    now.pop("weekdays", None)
                    now.pop("date", None)
                    now.setdefault("field", next(iter(self.editor.date_fields), "birthday"))
                    now.setdefault("offset_days", 0)
                    now.setdefault("yearly", True)
                definition["trigger"] = now

            typed = next((key for key in ("event", "time", "offset_days") if key in values), None)
            self.editor.change(apply, typing=f"trigger.{typed}" if typed else None,
                               panel=bool({"type", "date", "field"} & set(values)))

        ui.label(tr("journeys.canvas.who_enters")).classes("text-sm text-grey-8 mt-2")
        ui.select({kind: tr(f"journeys.trigger_kind.{kind}") for kind in TRIGGERS}, value=trigger.get("type"),
                  on_change=lambda e: set_trigger(type=e.value)).props(
            "outlined dense data-testid=panel-trigger" + ("" if rules else " disable")).classes("w-full")
        kind = trigger.get("type", "manual")
        if kind in schemas.SEGMENT_TRIGGERS:
            if not self.editor.segments:
                ui.label(tr("journeys.canvas.no_segments")).classes("text-grey-7 text-sm")
            else:
                ui.select(self.editor.segments, value=trigger.get("segment_id"), label=tr("journeys.canvas.segment"),
                          with_input=True, on_change=lambda e: set_trigger(segment_id=e.value)).props(
                    "outlined dense data-testid=panel-segment").classes("w-full")
        elif kind == "event":
            self._event_inputs(trigger.get("event"), trigger.get("properties") or {},
                               lambda **values: set_trigger(**values), "trigger")
        if kind in schemas.TIMED_TRIGGERS:
            self._timed_trigger(trigger, set_trigger)
        if not rules:
            return
        ui.label(tr("journeys.canvas.re_entry")).classes("text-sm text-grey-8 mt-2")
        ui.select({"never": tr("journeys.re_entry.never"), "after_exit": tr("journeys.re_entry.after_exit")},
                  value=self.editor.definition.get("re_entry", "never"),
                  on_change=lambda e: self.editor.change(lambda d: d.update(re_entry=e.value), panel=True)).props(
            "outlined dense data-testid=panel-re-entry").classes("w-full")
        if self.editor.definition.get("re_entry") == "after_exit":
            ui.number(tr("journeys.canvas.reentry_days"), value=self.editor.definition.get("reentry_days", 0), min=0,
                      max=3650, precision=0, on_change=lambda e: self.editor.change(
                          lambda d: d.update(reentry_days=max(0, min(3650, int(e.value or 0)))),
                          typing="reentry_days")).props("outlined dense").classes("w-full")
        self._goal_panel()
        self._exit_panel()

    def _timed_trigger(self, trigger: dict[str, Any], set_trigger: Callable[..., None]) -> None:
        """When a timed trigger enrols: a schedule at a time on weekdays or once on a date; a date trigger each day
        at a time, for the customers whose profile date (some days later) it is."""
        if trigger["type"] == "date":
            ui.select(self.editor.date_fields or {"birthday": tr("journeys.canvas.birthday")},
                      value=trigger.get("field"), label=tr("journeys.canvas.profile_date"),
                      on_change=lambda e: set_trigger(field=e.value)).props(
                "outlined dense data-testid=panel-trigger-field").classes("w-full")
            ui.number(tr("journeys.canvas.trigger_offset"), value=trigger.get("offset_days") or 0, min=-365, max=365,
                      precision=0, on_change=lambda e: set_trigger(offset_days=max(-365, min(365, int(
                          e.value or 0))))).props("outlined dense data-testid=panel-trigger-offset").classes("w-full")
            ui.checkbox(tr("journeys.canvas.yearly"), value=trigger.get("yearly", True),
                        on_change=lambda e: set_trigger(yearly=bool(e.value))).props(
                "dense data-testid=panel-trigger-yearly")
        ui.input(tr("journeys.canvas.time"), value=trigger.get("time") or "10:00",
                 validation={tr("journeys.canvas.time_format"): lambda v: bool(TIME.match(v or ""))},
                 on_change=lambda e: set_trigger(time=e.value) if TIME.match(e.value or "") else None).props(
            "outlined dense mask=##:## data-testid=panel-trigger-time").classes("w-full")
        if trigger["type"] == "schedule":
            ui.select({d: tr(f"journeys.weekday.{d}") for d in WEEKDAYS}, multiple=True,
                      value=list(trigger.get("weekdays") or []), label=tr("journeys.canvas.weekdays"),
                      on_change=lambda e: set_trigger(weekdays=sorted(e.value or []), date=None)).props(
                "outlined dense use-chips data-testid=panel-trigger-weekdays").classes("w-full")
            ui.input(tr("journeys.canvas.trigger_date"), value=trigger.get("date") or "",
                     on_change=lambda e: set_trigger(date=e.value or None, weekdays=[] if e.value else
                                                     trigger.get("weekdays") or [])).props(
                "outlined dense type=date clearable data-testid=panel-trigger-date").classes("w-full")
        ui.label(tr("journeys.canvas.schedule_text" if trigger["type"] == "schedule" else
                    "journeys.canvas.date_text_trigger")).classes("text-grey-7 text-xs")

    def _goal_panel(self) -> None:
        """The journey's goal (its conversion): an event within some days of entering."""
        goal = self.editor.definition.get("goal")
        ui.separator().classes("my-2")
        ui.label(tr("journeys.canvas.goal")).classes("text-sm font-medium text-grey-9")

        def switch(on: bool) -> None:
            def apply(definition: dict[str, Any]) -> None:
                if on:
                    definition["goal"] = {"event": "order_placed", "within_days": 30}
                else:
                    definition.pop("goal", None)

            self.editor.change(apply, panel=True)

        ui.switch(tr("journeys.canvas.goal_on"), value=goal is not None, on_change=lambda e: switch(bool(e.value))) \
            .props("dense data-testid=panel-goal")
        if goal is None:
            ui.label(tr("journeys.canvas.goal_text")).classes("text-grey-7 text-xs")
            return

        def set_goal(**values: Any) -> None:
            def apply(definition: dict[str, Any]) -> None:
                definition["goal"] = {**(definition.get("goal") or {}), **values}

            self.editor.change(apply, typing="goal.event" if "event" in values else None)

        self._event_inputs(goal.get("event"), goal.get("properties") or {}, set_goal, "goal")
        ui.number(tr("journeys.canvas.goal_days"), value=goal.get("within_days", 30), min=1, max=365, precision=0,
                  on_change=lambda e: set_goal(within_days=max(1, min(365, int(e.value or 1))))).props(
            "outlined dense data-testid=panel-goal-days").classes("w-full")
        ui.checkbox(tr("journeys.canvas.exit_on_goal"), value=bool(self.editor.definition.get("exit_on_goal")),
                    on_change=lambda e: self.editor.change(lambda d: d.update(exit_on_goal=bool(e.value)))).props(
            "dense data-testid=panel-exit-on-goal")

    def _exit_panel(self) -> None:
        """Leaving wherever they are: on leaving a segment."""
        ui.separator().classes("my-2")
        ui.label(tr("journeys.canvas.exits")).classes("text-sm font-medium text-grey-9")
        if not self.editor.segments:
            ui.label(tr("journeys.canvas.no_segments")).classes("text-grey-7 text-xs")
            return
        ui.select(self.editor.segments, value=self.editor.definition.get("exit_segment_id"), clearable=True,
                  label=tr("journeys.canvas.exit_segment"), with_input=True,
                  on_change=lambda e: self.editor.change(lambda d: d.update(exit_segment_id=e.value))).props(
            "outlined dense data-testid=panel-exit-segment").classes("w-full")
        ui.label(tr("journeys.canvas.exit_segment_text")).classes("text-grey-7 text-xs")

    def _event_inputs(self, event: str | None, properties: dict[str, Any], set_values: Callable[..., None],
                      where: str) -> None:
        """An event name (one of the common ones or any other typed in) and one property = value it must carry
        (further ones, set through the API, are kept as they are)."""
        options = list(dict.fromkeys([*([event] if event else []), *self.editor.events]))
        ui.select(options, value=event, label=tr("journeys.canvas.event"), with_input=True,
                  new_value_mode="add-unique", on_change=lambda e: set_values(event=e.value or None)).props(
            f"outlined dense data-testid=panel-{where}-event").classes("w-full")
        first = next(iter(properties.items()), ("", ""))
        rest = dict(list(properties.items())[1:])
        with ui.row().classes("w-full gap-2 no-wrap"):
            key = ui.input(tr("journeys.canvas.property"), value=first[0]).props(
                f"outlined dense data-testid=panel-{where}-property").classes("flex-1")
            value = ui.input(tr("journeys.canvas.property_value"), value=str(first[1])).props(
                f"outlined dense data-testid=panel-{where}-value").classes("flex-1")

        def changed() -> None:
            name = (key.value or "").strip()[:100]
            set_values(properties={**({name: value.value or ""} if name else {}), **rest})

        # asked when the box is left: a half-typed property name is not a filter yet
        key.on("blur", changed)
        value.on("blur", changed)

    def _event_wait_panel(self, node: dict[str, Any]) -> None:
        ui.label(tr("journeys.canvas.wait_event_text")).classes("text-sm text-grey-8 mt-2")

        def set_values(**values: Any) -> None:
            def apply(definition: dict[str, Any]) -> None:
                self.editor.node_of(definition, node["id"]).update(values)

            self.editor.change(apply, typing=f"{node['id']}.event" if "event" in values else None)

        self._event_inputs(node.get("event"), node.get("properties") or {}, set_values, "wait")
        ui.label(tr("journeys.canvas.timeout")).classes("text-sm text-grey-8 mt-2")
        self._durations(node)

    def _send_panel(self, node: dict[str, Any]) -> None:
        if not self.editor.templates:
            ui.label(tr("journeys.canvas.no_templates")).classes("text-grey-7 text-sm")
            return
        ui.select(self.editor.templates, value=node.get("template_id"), label=tr("journeys.canvas.template"),
                  with_input=True, on_change=lambda e: self._set(node["id"], "template_id", e.value)).props(
            "outlined dense data-testid=panel-template").classes("w-full")
        ui.label(tr("journeys.canvas.send_text")).classes("text-grey-7 text-xs")

    def _split_panel(self, node: dict[str, Any]) -> None:
        ui.label(tr("journeys.canvas.split_text")).classes("text-sm text-grey-8 mt-2")
        branches = node.get("branches", [])
        for number, branch in enumerate(branches):
            with ui.card().classes("w-full p-2 gap-1").props("flat bordered"):
                with ui.row().classes("w-full items-center gap-1 no-wrap"):
                    ui.input(tr("journeys.canvas.branch_label"), value=branch.get("label") or "",
                             on_change=lambda e, i=number: self._branch(node["id"], i, label=(e.value or "")[:50],
                                                                        typing=True)).props(
                        f"outlined dense maxlength=50 data-testid=panel-branch-{number}").classes("flex-1")
                    if len(branches) > 1:
                        ui.button(icon="close", on_click=lambda i=number: self._drop_branch(node["id"], i)).props(
                            "flat round dense").tooltip(tr("journeys.canvas.remove_branch"))
                rules = _rule_count(branch.get("condition"))
                ui.label(tr("journeys.canvas.rules", count=rules) if rules else tr("journeys.canvas.no_condition")) \
                    .classes("text-xs " + ("text-grey-7" if rules else "text-negative"))
                ui.button(tr("journeys.canvas.edit_condition"), icon="tune",
                          on_click=lambda i=number: self._condition_dialog(node["id"], i)).props(
                    f"outline dense no-caps data-testid=panel-condition-{number}")
        ui.label(tr("journeys.canvas.else_text")).classes("text-grey-7 text-xs")
        if len(branches) < 10:
            ui.button(tr("journeys.canvas.add_branch"), icon="add", on_click=lambda: self._add_branch(node["id"])) \
                .props("flat dense no-caps data-testid=panel-add-branch")

    def _wait_until_panel(self, node: dict[str, Any]) -> None:
        ui.label(tr("journeys.canvas.wait_until_text")).classes("text-sm text-grey-8 mt-2")
        ui.input(tr("journeys.canvas.time"), value=node.get("time") or "10:00",
                 validation={tr("journeys.canvas.time_format"): lambda v: bool(TIME.match(v or ""))},
                 on_change=lambda e: self._set(node["id"], "time", e.value, typing=True)
                 if TIME.match(e.value or "") else None).props(
            "outlined dense mask=##:## data-testid=panel-time").classes("w-full")
        if self.editor.date_fields:
            ui.select({NO_FIELD: tr("journeys.canvas.no_profile_date"), **self.editor.date_fields},
                      value=node.get("field") or NO_FIELD, label=tr("journeys.canvas.profile_date"),
                      on_change=lambda e: self._profile_date(node["id"], e.value)).props(
                "outlined dense data-testid=panel-profile-date").classes("w-full")
        if node.get("field"):
            ui.number(tr("journeys.canvas.offset_days"), value=node.get("offset_days") or 0, min=-365, max=365,
                      precision=0, on_change=lambda e: self._set(node["id"], "offset_days", max(
                          -365, min(365, int(e.value or 0))), typing=True)).props(
                "outlined dense data-testid=panel-offset").classes("w-full")
            ui.checkbox(tr("journeys.canvas.yearly"), value=bool(node.get("yearly")),
                        on_change=lambda e: self._set(node["id"], "yearly", bool(e.value))).props(
                "dense data-testid=panel-yearly")
            ui.label(tr("journeys.canvas.profile_date_text")).classes("text-grey-7 text-xs")
            return
        ui.select({d: tr(f"journeys.weekday.{d}") for d in WEEKDAYS}, multiple=True,
                  value=list(node.get("weekdays") or []), label=tr("journeys.canvas.weekdays"),
                  on_change=lambda e: self._set(node["id"], "weekdays", sorted(e.value or []))).props(
            "outlined dense use-chips data-testid=panel-weekdays").classes("w-full")
        ui.label(tr("journeys.canvas.weekdays_text")).classes("text-grey-7 text-xs")
        ui.input(tr("journeys.canvas.date"), value=node.get("date") or "",
                 on_change=lambda e: self._on_date(node["id"], e.value or None)).props(
            "outlined dense type=date clearable data-testid=panel-date").classes("w-full")
        ui.label(tr("journeys.canvas.date_text")).classes("text-grey-7 text-xs")

    def _on_date(self, node_id: str, day: str | None) -> None:
        """A date, or weekdays: a date set clears the weekdays."""
        def apply(definition: dict[str, Any]) -> None:
            node = self.editor.node_of(definition, node_id)
            node["date"] = day
            if day:
                node["weekdays"] = []

        self.editor.change(apply, panel=bool(day))

    def _profile_date(self, node_id: str, field: str) -> None:
        """Waiting for a customer's date, or for a time on weekdays or a date: the one or the other."""
        def apply(definition: dict[str, Any]) -> None:
            node = self.editor.node_of(definition, node_id)
            if field and field != NO_FIELD:
                node.update(field=field, weekdays=[], date=None)
            else:
                for key in ("field", "offset_days", "yearly"):
                    node.pop(key, None)

        self.editor.change(apply, panel=True)

    def _random_split_panel(self, node: dict[str, Any]) -> None:
        ui.label(tr("journeys.canvas.random_text")).classes("text-sm text-grey-8 mt-2")
        groups = node.get("groups", [])
        for number, group in enumerate(groups):
            with ui.row().classes("w-full items-center gap-1 no-wrap"):
                ui.input(tr("journeys.canvas.group_label"), value=group.get("label") or "",
                         on_change=lambda e, i=number: self._group(node["id"], i, typing=True,
                                                                   label=(e.value or "")[:50])).props(
                    f"outlined dense maxlength=50 data-testid=panel-group-{number}").classes("flex-1")
                ui.number("%", value=group.get("percent", 0), min=0, max=100, precision=0,
                          on_change=lambda e, i=number: self._group(node["id"], i, typing=True, percent=max(
                              0, min(100, int(e.value or 0))))).props(
                    f"outlined dense data-testid=panel-percent-{number}").classes("w-20")
                ui.checkbox(tr("journeys.control"), value=bool(group.get("control")),
                            on_change=lambda e, i=number: self._control(node["id"], i, bool(e.value))).props("dense")
                if len(groups) > 2:
                    ui.button(icon="close", on_click=lambda i=number: self._drop_group(node["id"], i)).props(
                        "flat round dense")
        self.total_label = ui.label().classes("text-sm").props("data-testid=panel-total")
        self._show_total(node["id"])
        ui.label(tr("journeys.canvas.control_text")).classes("text-grey-7 text-xs")
        if len(groups) < 10:
            ui.button(tr("journeys.canvas.add_group"), icon="add", on_click=lambda: self._add_group(node["id"])) \
                .props("flat dense no-caps")

    def _group(self, node_id: str, index: int, *, typing: bool = False, **values: Any) -> None:
        def apply(definition: dict[str, Any]) -> None:
            self.editor.node_of(definition, node_id)["groups"][index].update(values)

        key = next(iter(values))
        self.editor.change(apply, typing=f"{node_id}.group{index}.{key}" if typing else None)
        self._show_total(node_id)

    def _show_total(self, node_id: str) -> None:
        groups = self.editor.node_of(self.editor.definition, node_id).get("groups", [])
        total = sum(int(g.get("percent") or 0) for g in groups)
        self.total_label.set_text(tr("journeys.canvas.total", total=total))
        self.total_label.classes(replace="text-sm " + ("text-grey-7" if total == 100 else "text-negative"))

    def _control(self, node_id: str, index: int, on: bool) -> None:
        def apply(definition: dict[str, Any]) -> None:
            for number, group in enumerate(self.editor.node_of(definition, node_id)["groups"]):
                group["control"] = on and number == index  # one hold-out group at most

        self.editor.change(apply, panel=True)

    def _add_group(self, node_id: str) -> None:
        def apply(definition: dict[str, Any]) -> None:
            groups = self.editor.node_of(definition, node_id)["groups"]
            names = {g["name"] for g in groups}
            letter = next(c for c in "abcdefghijklmnop" if c not in names)
            groups.append({"name": letter, "label": letter.upper(), "percent": 0})

        self.editor.change(apply, panel=True)

    def _drop_group(self, node_id: str, index: int) -> None:
        def apply(definition: dict[str, Any]) -> None:
            group = self.editor.node_of(definition, node_id)["groups"].pop(index)
            definition["edges"] = [e for e in definition["edges"]
                                   if not (e["from"] == node_id and e.get("branch") == group["name"])]

        self.editor.change(apply, panel=True)

    def _branch(self, node_id: str, index: int, *, typing: bool = False, **values: Any) -> None:
        def apply(definition: dict[str, Any]) -> None:
            self.editor.node_of(definition, node_id)["branches"][index].update(values)

        self.editor.change(apply, typing=f"{node_id}.branch{index}" if typing else None)

    def _add_branch(self, node_id: str) -> None:
        def apply(definition: dict[str, Any]) -> None:
            branches = self.editor.node_of(definition, node_id)["branches"]
            names = {b["name"] for b in branches}
            number = 1
            while f"b{number}" in names:
                number += 1
            branches.append({"name": f"b{number}", "label": tr("journeys.canvas.branch_default", n=number)})

        self.editor.change(apply, panel=True)

    def _drop_branch(self, node_id: str, index: int) -> None:
        def apply(definition: dict[str, Any]) -> None:
            branch = self.editor.node_of(definition, node_id)["branches"].pop(index)
            definition["edges"] = [e for e in definition["edges"]
                                   if not (e["from"] == node_id and e.get("branch") == branch["name"])]

        self.editor.change(apply, panel=True)

    def _condition_dialog(self, node_id: str, index: int) -> None:
        branch = self.editor.node_of(self.editor.definition, node_id)["branches"][index]
        builder = Builder(self.editor.principal)
        builder.load(branch.get("condition"))
        with ui.dialog() as dialog, ui.card().classes("w-[56rem] max-w-full"):
            ui.label(tr("journeys.canvas.condition_title", branch=branch.get("label") or branch["name"])) \
                .classes("text-lg font-medium")
            ui.label(tr("journeys.canvas.condition_text")).classes("text-grey-7 text-sm")
            editor = ConditionEditor(builder, on_change=lambda: None)
            editor.draw()

            def done() -> None:
                self._branch(node_id, index, condition=builder.condition())
                self.draw()
                dialog.close()

            with ui.row().classes("w-full justify-end"):
                ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                ui.button(tr("journeys.canvas.use_condition"), on_click=done).props("data-testid=condition-done")
        dialog.open()


def _rule_count(condition: dict[str, Any] | None) -> int:
    if not condition:
        return 0
    if condition.get("type") in ("all", "any"):
        return sum(_rule_count(c) for c in condition.get("conditions", []))
    if condition.get("type") == "not":
        return _rule_count(condition.get("condition"))
    return 1
