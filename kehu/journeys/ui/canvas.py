"""The journey canvas (营销画布): the journey's path drawn and edited on a flow canvas — nodes dragged from the
palette, ways connected from a node's handles, each node configured in the side panel, Delete and Ctrl+Z / Ctrl+Y —
with what keeps it from going live shown on the node at fault as the marketer draws, and, once it runs, how many
customers wait at each node and passed it (a way: how many took it).

The editor holds the draft as the API takes it (kehu.journeys.schemas.Definition, as JSON): every change is a new
state of it (undo goes back one), drawn again on the canvas; Save stores it (PATCH of the draft), Publish makes it
the running version."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from nicegui import ui
from pydantic import BaseModel, Field, ValidationError

from kehu.channels import templates as template_service
from kehu.core import events
from kehu.core.errors import FieldError
from kehu.core.i18n import t
from kehu.journeys import schemas, service
from kehu.journeys.ui.panel import NODE_ICONS, NodePanel
from kehu.journeys.ui.texts import date_fields_of, offset_text, settable_fields, trigger_text
from kehu.segments import service as segment_service
from kehu.segments import tags
from kehu.ui.components.condition_builder import COMMON_EVENTS
from kehu.ui.components.flow import OUT, FlowCanvas
from kehu.ui.shell import locale, run_action, tr, unit_of_work, validated

PALETTE = ("wait", "wait_until", "wait_for_event", "send", "tag", "field", "segment", "lead", "task", "split",
           "random_split", "exit")
HISTORY = 100  # undo steps kept


def _ways(node: dict[str, Any]) -> list[str | None]:
    kind = node.get("type")
    if kind == "split":
        return [*(b.get("name") for b in node.get("branches", [])), schemas.ELSE]
    if kind == "wait_for_event":
        return [schemas.HAPPENED, schemas.TIMED_OUT]
    if kind == "random_split":
        return [g.get("name") for g in node.get("groups", [])]
    return [] if kind == "exit" else [None]


def _duration(node: dict[str, Any]) -> str:
    return " ".join(tr(f"journeys.unit.{unit}", n=node[unit]) for unit in ("days", "hours", "minutes")
                    if node.get(unit)) or "—"


class _Added(BaseModel):
    type: str
    x: float | None = Field(default=None, ge=-100_000, le=100_000)
    y: float | None = Field(default=None, ge=-100_000, le=100_000)


class _Connected(BaseModel):
    source: str = Field(alias="from")
    way: str
    to: str


class _Place(BaseModel):
    id: str
    x: float = Field(ge=-100_000, le=100_000)
    y: float = Field(ge=-100_000, le=100_000)


class _Moved(BaseModel):
    nodes: list[_Place] = Field(max_length=500)


class _Selected(BaseModel):
    id: str | None = None


class _Way(BaseModel):
    source: str = Field(alias="from")
    way: str


class _Removed(BaseModel):
    nodes: list[str] = Field(default_factory=list, max_length=500)
    edges: list[_Way] = Field(default_factory=list, max_length=1000)


class JourneyEditor:
    """The canvas, its toolbar and the side panel of the selected node, over one journey's draft."""

    def __init__(self, principal: Any, journey: Any, report: schemas.JourneyReport | None, *, editable: bool,
                 on_saved: Callable[[], None]) -> None:
        self.principal = principal
        self.journey_id = journey.id
        self.ran = bool(journey.version)
        self.definition: dict[str, Any] = copy.deepcopy(journey.draft or {})
        self.definition.setdefault("nodes", [])
        self.definition.setdefault("edges", [])
        self.definition.setdefault("trigger", {"type": "manual"})
        self.saved = copy.deepcopy(self.definition)
        self.counts = {count.node: count for count in report.nodes} if report is not None else {}
        self.editable = editable
        # HQ's template for dealers: each part may be left open to them; a dealer's journey made of one: only the
        # parts the template left open change, its nodes and ways stay (kehu/journeys/templates.py)
        self.is_template = bool(journey.is_template)
        self.template: schemas.Definition | None = None
        self.on_saved = on_saved
        self.on_change: Callable[[], None] = lambda: None  # the page's parts that follow the draft (its problems)
        self.history: list[dict[str, Any]] = []
        self.future: list[dict[str, Any]] = []
        self.last_edit: str | None = None  # a field being typed into: one undo step for all its keystrokes
        self.selected: str | None = None
        self.node_problems: dict[str, list[str]] = {}
        self.general_problems: list[str] = []
        self.canvas: FlowCanvas
        self.panel: NodePanel
        with unit_of_work() as session:
            self.templates = {tpl.id: f"{tpl.name} · {tr(f'channels.channel.{tpl.channel}')}" for tpl in
                              template_service.list_templates(session, principal, limit=500).items} \
                if principal.can("messages") else {}
            self.segments = {s.id: s.name for s in segment_service.list_segments(session, principal,
                                                                                 limit=500).items} \
                if principal.can("segments") else {}
            self.tags = {tag.id: tag.name for tag in tags.manual_tags(session, principal)} \
                if principal.can("segments") else {}
            # the static lists a segment node may keep: those the author may change
            self.static_segments = {s.id: s.name for s in
                                    segment_service.changeable_static_segments(session, principal)}
        self.events = list(dict.fromkeys([*COMMON_EVENTS, *sorted(events.customer_events())]))
        with unit_of_work() as session:  # the customers' date fields a wait or a trigger may name
            self.date_fields = date_fields_of(session, principal)
            self.settable = settable_fields(session, principal)
            self.template = service.template_of(session, journey)
        self._check()

    # -- drawing ------------------------------------------------------------------------------------------------
    def build(self) -> None:
        with ui.row().classes("w-full items-center gap-2"):
            if self.editable:
                self.undo_button = ui.button(icon="undo", on_click=self.undo).props(
                    "flat dense data-testid=canvas-undo").tooltip(tr("journeys.canvas.undo"))
                self.redo_button = ui.button(icon="redo", on_click=self.redo).props(
                    "flat dense data-testid=canvas-redo").tooltip(tr("journeys.canvas.redo"))
            ui.button(icon="fit_screen", on_click=lambda: self.canvas.fit()).props("flat dense").tooltip(
                tr("journeys.canvas.fit"))
            self.problem_line = ui.label().classes("text-orange-9 text-sm").props("data-testid=canvas-problems")
            ui.space()
            if self.editable:
                self.unsaved = ui.badge(tr("journeys.canvas.unsaved"), color="orange-7").props(
                    "data-testid=canvas-unsaved")
                self.save_button = ui.button(tr("journeys.canvas.save"), icon="save", on_click=self.save).props(
                    "data-testid=canvas-save")
        with ui.row().classes("w-full no-wrap gap-3 items-stretch").style("height: 620px"):
            self.canvas = FlowCanvas(graph=self.graph(), editable=self.editable, texts={
                "palette": tr("journeys.canvas.palette"), "hint": tr("journeys.canvas.hint")},
                palette=[{"type": kind, "icon": NODE_ICONS[kind], "label": tr(f"journeys.node.{kind}"),
                          "hint": tr(f"journeys.palette_hint.{kind}")} for kind in PALETTE]
                if self.editable and self.template is None else [],
                structure=self.template is None).classes("flex-1 h-full min-w-0")
            # what the browser reports is read through a model: a payload of another shape is ignored, never a
            # server error (nor a position that is not a number in the draft)
            self._on("add", _Added, lambda a: self.add(a.type, a.x, a.y))
            self._on("connect", _Connected, lambda a: self.connect(a.source, a.way, a.to))
            self._on("moved", _Moved, lambda a: self.move([p.model_dump() for p in a.nodes]))
            self._on("select", _Selected, lambda a: self.select(a.id))
            self._on("remove", _Removed, lambda a: self.remove(
                a.nodes, [{"from": w.source, "way": w.way} for w in a.edges]))
            self.canvas.on("undo", lambda _: self.undo())
            self.canvas.on("redo", lambda _: self.redo())
            self.panel = NodePanel(self, ui.card().classes("w-96 h-full overflow-auto flex-none").props(
                "flat bordered data-testid=canvas-panel"))
        self._refresh_chrome()
        self.panel.draw()

    def _on(self, event: str, shape: type[BaseModel], handler: Callable[[Any], None]) -> None:
        def handle(e: Any) -> None:
            try:
                args = shape.model_validate(e.args)
            except ValidationError:
                return
            handler(args)

        self.canvas.on(event, handle)

    def graph(self) -> dict[str, Any]:
        """The draft as the canvas draws it."""
        nodes = self.definition["nodes"]
        positions = self._layout()
        by_id = {node["id"]: node for node in nodes}
        drawn = []
        for node in nodes:
            kind = node.get("type", "")
            count = self.counts.get(node["id"])
            drawn.append({
                "id": node["id"], "type": kind, "icon": NODE_ICONS.get(kind, "circle"),
                "kind": tr(f"journeys.node.{kind}"), "label": node.get("label") or node["id"],
                "summary": self.summary(node), "problems": self.node_problems.get(node["id"], []),
                "counts": tr("journeys.counts", waiting=count.waiting, passed=count.passed)
                if self.ran and count is not None and kind != "entry" and not self.is_template else "",
                "ways": [{"id": way or OUT, "label": self.way_label(node, way)} for way in _ways(node)],
                "enterable": kind != "entry", "position": positions[node["id"]],
                "selected": node["id"] == self.selected, **self._mark(node)})
        edges = []
        for edge in self.definition["edges"]:
            source = by_id.get(edge["from"])
            if source is None or edge["to"] not in by_id:
                continue
            way = edge.get("branch")
            label = self.way_label(source, way) if way else ""
            count = self.counts.get(edge["from"])
            if way and self.ran and count is not None:
                label = f"{label} · {count.branches.get(way, 0)}"
            edges.append({"from": edge["from"], "way": way or OUT, "to": edge["to"], "label": label})
        return {"nodes": drawn, "edges": edges}

    def _layout(self) -> dict[str, dict[str, float]]:
        """Where each node sits: as drawn, or (made through the API without positions) in rows by distance from
        the entry, side by side within a row."""
        nodes = self.definition["nodes"]
        placed = {n["id"]: n["position"] for n in nodes if isinstance(n.get("position"), dict)}
        if len(placed) == len(nodes):
            return placed
        targets: dict[str, list[str]] = {}
        for edge in self.definition["edges"]:
            targets.setdefault(edge["from"], []).append(edge["to"])
        depth: dict[str, int] = {}
        queue = [(n["id"], 0) for n in nodes if n.get("type") == "entry"]
        while queue:
            node_id, level = queue.pop(0)
            if node_id in depth:
                continue
            depth[node_id] = level
            queue += [(target, level + 1) for target in targets.get(node_id, [])]
        deepest = max(depth.values(), default=0)
        rows: dict[int, int] = {}
        out = {}
        for node in nodes:
            level = depth.get(node["id"], deepest + 1)
            column = rows.get(level, 0)
            rows[level] = column + 1
            out[node["id"]] = placed.get(node["id"]) or {"x": column * 260, "y": level * 170}
        return out

    def summary(self, node: dict[str, Any]) -> str:
        kind = node.get("type")
        if kind == "entry":
            return self._trigger_text()
        if kind == "wait":
            return tr("journeys.wait_for", duration=_duration(node))
        if kind == "wait_for_event":
            return tr("journeys.wait_for_event_text", event=node.get("event") or "—", duration=_duration(node))
        if kind == "wait_until":
            if node.get("field"):
                offset = int(node.get("offset_days") or 0)
                return tr("journeys.wait_until_field" + ("_yearly" if node.get("yearly") else ""),
                          field=self.date_fields.get(node["field"], node["field"]), time=node.get("time") or "—",
                          offset=offset_text(offset))
            if node.get("date"):
                return tr("journeys.wait_until_date", date=node["date"], time=node.get("time") or "—")
            days = "、".join(tr(f"journeys.weekday.{d}") for d in sorted(node.get("weekdays") or []))
            return tr("journeys.wait_until_days", time=node.get("time") or "—", days=days) if days else \
                tr("journeys.wait_until_time", time=node.get("time") or "—")
        if kind == "tag":
            return tr("journeys.tag_remove" if node.get("remove") else "journeys.tag_add",
                      tag=self.tags.get(node.get("tag_id") or 0, "—"))
        if kind == "field":
            field = self.settable.get(node.get("field") or "", {})
            value = node.get("value")
            shown = "、".join(field.get("options", {}).get(v, v) for v in value) if isinstance(value, list) else \
                field.get("options", {}).get(value, value) if value is not None else None
            if shown is True or shown is False:
                shown = tr("common.yes" if shown else "common.no")
            return tr("journeys.field_clear", field=field.get("label", "—")) if value is None and field else \
                tr("journeys.field_text", field=field.get("label", "—"), value="—" if shown is None else shown)
        if kind == "segment":
            return tr("journeys.segment_remove" if node.get("remove") else "journeys.segment_add",
                      segment=self.segments.get(node.get("segment_id") or 0, "—"))
        if kind == "lead":
            return tr("journeys.lead_text", model=node.get("model") or tr("journeys.lead_any_model"))
        if kind == "task":
            return tr("journeys.task_text", subject=node.get("subject") or "—", days=int(node.get("due_days") or 0))
        if kind == "random_split":
            return " · ".join(f"{g.get('label') or g.get('name')} {g.get('percent', 0)}%"
                              + (f" ({tr('journeys.control')})" if g.get("control") else "")
                              for g in node.get("groups", []))
        if kind == "send":
            return tr("journeys.send_template", template=self.templates.get(node.get("template_id") or 0, "—"))
        if kind == "split":
            return tr("journeys.split_text", count=len(node.get("branches", [])))
        return tr(f"journeys.node_text.{kind}")

    def _mark(self, node: dict[str, Any]) -> dict[str, str]:
        """A template's open parts, and a dealer's journey's locked and open ones, marked on their nodes."""
        if node.get("type") == "exit" or not (self.is_template or self.template is not None):
            return {}
        if self.is_open(node["id"]):
            return {"mark": tr("journeys.template.open_mark"), "markIcon": "tune"}
        return {"mark": tr("journeys.template.locked_mark"), "markIcon": "lock"} if self.template is not None else {}

    def part_of(self, node_id: str) -> str:
        """What ``open`` names for a node: its id, the entry's trigger."""
        node: dict[str, Any] = next((n for n in self.definition["nodes"] if n["id"] == node_id), {})
        return "trigger" if node.get("type") == "entry" else node_id

    def is_open(self, node_id: str) -> bool:
        opened = self.template.open if self.template is not None else self.definition.get("open") or []
        return self.part_of(node_id) in opened

    def locked(self, node_id: str) -> bool:
        """A dealer's journey's node whose settings the template keeps."""
        return self.template is not None and not self.is_open(node_id)

    def set_open(self, node_id: str, on: bool) -> None:
        part = self.part_of(node_id)

        def apply(definition: dict[str, Any]) -> None:
            opened = set(definition.get("open") or []) - {part}
            definition["open"] = sorted(opened | {part} if on else opened)

        self.change(apply)

    def _refused_by_template(self) -> bool:
        if self.template is None:
            return False
        ui.notify(tr("journeys.template.structure_locked"), type="warning")
        self.canvas.show(self.graph())  # what the browser drew meanwhile is drawn back
        return True

    def _trigger_text(self) -> str:
        return trigger_text(self.definition, self.segments, self.date_fields)

    def way_label(self, node: dict[str, Any], way: str | None) -> str:
        if way is None:
            return tr("journeys.canvas.next")
        if way in (schemas.ELSE, schemas.HAPPENED, schemas.TIMED_OUT):
            return tr(f"journeys.way.{way}")
        named: dict[str, Any] = next((b for b in [*node.get("branches", []), *node.get("groups", [])]
                                      if b.get("name") == way), {})
        if node.get("type") == "random_split":
            return f"{named.get('label') or way} {named.get('percent', 0)}%"
        return named.get("label") or way

    def _refresh_chrome(self) -> None:
        count = sum(len(found) for found in self.node_problems.values()) + len(self.general_problems)
        self.problem_line.set_text(
            tr("journeys.canvas.problems", count=count, first=(self.general_problems or [""])[0]) if count else "")
        if self.editable:
            dirty = self.definition != self.saved
            self.unsaved.set_visibility(dirty)
            self.save_button.set_enabled(dirty)
            self.undo_button.set_enabled(bool(self.history))
            self.redo_button.set_enabled(bool(self.future))

    def redraw(self) -> None:
        self._check()
        self.canvas.show(self.graph())
        self._refresh_chrome()
        self.panel.draw_problems()
        self.on_change()

    def set_counts(self, report: schemas.JourneyReport) -> None:
        """Counts read again (a running journey's page follows its customers): drawn when they changed."""
        counts = {count.node: count for count in report.nodes}
        if counts != self.counts:
            self.counts = counts
            self.canvas.show(self.graph())

    def is_dirty(self) -> bool:
        return self.definition != self.saved

    def problem_count(self) -> int:
        return sum(len(found) for found in self.node_problems.values()) + len(self.general_problems)

    # -- what keeps it from going live --------------------------------------------------------------------------
    def _check(self) -> None:
        """The draft's problems as drawn now, each on its node (or said of the journey)."""
        self.node_problems, self.general_problems = {}, []
        nodes = self.definition["nodes"]
        try:
            definition = schemas.Definition.model_validate(self.definition)
        except ValidationError as invalid:
            for error in invalid.errors():
                where = error["loc"]
                if len(where) >= 2 and where[0] == "nodes" and isinstance(where[1], int) and where[1] < len(nodes):
                    self.node_problems.setdefault(nodes[where[1]]["id"], []).append(_said(error["msg"]))
                else:
                    self.general_problems.append(_said(error["msg"]))
            return
        with unit_of_work() as session:
            found = service.problems_of(session, self.principal, self.principal.org_id, definition,
                                        ran=self.ran, template=self.template)
        for problem in found:
            self._place(problem)

    def _place(self, problem: FieldError) -> None:
        said = t(f"journeys.problem.{problem.code}", locale(), default=problem.message)
        match = re.match(r"definition\.(nodes|edges)\[(\d+)\]", problem.field)
        if match:
            index = int(match.group(2))
            items = self.definition[match.group(1)]
            if index < len(items):
                node_id = items[index]["id"] if match.group(1) == "nodes" else items[index]["from"]
                self.node_problems.setdefault(node_id, []).append(said)
                return
        self.general_problems.append(said)

    # -- changes ------------------------------------------------------------------------------------------------
    def change(self, apply: Callable[[dict[str, Any]], Any], *, typing: str | None = None,
               panel: bool = False) -> None:
        """Apply one change to the draft (an undo step; keystrokes into one field make one step together; a change
        that changes nothing makes none)."""
        if not self.editable:
            return
        before = copy.deepcopy(self.definition)
        apply(self.definition)
        if self.definition == before:
            return
        if typing is None or typing != self.last_edit:
            self.history.append(before)
            del self.history[:-HISTORY]
        self.last_edit = typing
        self.future.clear()
        self.redraw()
        if panel:
            self.panel.draw()

    def undo(self) -> None:
        if not self.editable or not self.history:
            return
        self.future.append(copy.deepcopy(self.definition))
        self.definition = self.history.pop()
        self.last_edit = None
        self._after_jump()

    def redo(self) -> None:
        if not self.editable or not self.future:
            return
        self.history.append(copy.deepcopy(self.definition))
        self.definition = self.future.pop()
        self.last_edit = None
        self._after_jump()

    def _after_jump(self) -> None:
        if self.selected not in {n["id"] for n in self.definition["nodes"]}:
            self.selected = None
        self.redraw()
        self.panel.draw()

    def node_of(self, definition: dict[str, Any], node_id: str) -> dict[str, Any]:
        return next(n for n in definition["nodes"] if n["id"] == node_id)

    def add(self, kind: str, x: float | None, y: float | None) -> None:
        if not self.editable or kind not in PALETTE or self._refused_by_template():
            return
        taken = {n["id"] for n in self.definition["nodes"]}
        number = 1
        while f"{kind}_{number}" in taken:
            number += 1
        node: dict[str, Any] = {"id": f"{kind}_{number}", "type": kind, "label": ""}
        if kind == "wait":
            node["days"] = 1
        elif kind == "wait_for_event":
            node.update(event=None, days=7)
        elif kind == "wait_until":
            node.update(time="10:00", weekdays=[])
        elif kind == "tag":
            node.update(tag_id=None, remove=False)
        elif kind == "field":
            node.update(field=None, value=None)
        elif kind == "segment":
            node.update(segment_id=None, remove=False)
        elif kind == "lead":
            node.update(model=None, note="")
        elif kind == "task":
            node.update(kind="call", subject="", note="", due_days=1)
        elif kind == "random_split":
            node["groups"] = [{"name": "a", "label": "A", "percent": 50}, {"name": "b", "label": "B", "percent": 50}]
        elif kind == "split":
            node["branches"] = [{"name": "b1", "label": tr("journeys.canvas.branch_default", n=1)}]
        after = next((n for n in self.definition["nodes"] if n["id"] == self.selected and n.get("type") != "exit"),
                     None) if x is None or y is None else None
        positions = self._layout()
        if x is None or y is None:  # clicked in the palette: below the selected node, or below everything
            below = positions.get(self.selected or "") or max(positions.values(), key=lambda p: p["y"],
                                                                default={"x": 0, "y": 0})
            x, y = below["x"], below["y"] + 170
        node["position"] = {"x": x, "y": y}
        self.selected = node["id"]

        def apply(definition: dict[str, Any]) -> None:
            definition["nodes"].append(node)
            if after is not None:
                self._follow(definition, after, node, positions)

        self.change(apply, panel=True)

    def _follow(self, definition: dict[str, Any], after: dict[str, Any], node: dict[str, Any],
                positions: dict[str, dict[str, float]]) -> None:
        """A node added with another selected comes after it: on its first way still free, or, when every way is
        taken, between it and what its first way led to (the nodes below move down to make room)."""
        ways = _ways(after)
        taken = {e.get("branch"): e for e in definition["edges"] if e["from"] == after["id"]}
        free = [way for way in ways if way not in taken]
        if free:
            definition["edges"].append({"from": after["id"], "to": node["id"],
                                        **({"branch": free[0]} if free[0] else {})})
            return
        edge = taken[ways[0]]
        below = positions[after["id"]]["y"]
        for other in definition["nodes"]:
            place = other.get("position") or positions.get(other["id"])
            if other is not node and place is not None:
                other["position"] = {"x": place["x"], "y": place["y"] + 170 if place["y"] > below else place["y"]}
        onward = _ways(node)
        if onward:
            definition["edges"].append({"from": node["id"], "to": edge["to"],
                                        **({"branch": onward[0]} if onward[0] else {})})
        edge["to"] = node["id"]

    def connect(self, source: str, way: str, target: str) -> None:
        nodes = {n["id"]: n for n in self.definition["nodes"]}
        branch = None if way == OUT else way
        if not self.editable or source == target or source not in nodes or target not in nodes \
                or branch not in _ways(nodes[source]) or nodes[target].get("type") == "entry" \
                or self._refused_by_template():
            return  # only from one of the source's ways, into a node that takes customers in

        def apply(definition: dict[str, Any]) -> None:
            # one connection per way: drawing it again moves it
            definition["edges"] = [e for e in definition["edges"]
                                   if not (e["from"] == source and e.get("branch") == branch)]
            definition["edges"].append({"from": source, "to": target, **({"branch": branch} if branch else {})})

        self.change(apply)

    def move(self, moved: list[dict[str, Any]]) -> None:
        if not self.editable:
            return

        def apply(definition: dict[str, Any]) -> None:
            positions = self._layout()  # nodes placed by the layout keep their places once one is moved
            for node in definition["nodes"]:
                node["position"] = positions[node["id"]]
            for item in moved:
                node = next((n for n in definition["nodes"] if n["id"] == item["id"]), None)
                if node is not None:
                    node["position"] = {"x": item["x"], "y": item["y"]}

        self.change(apply)

    def remove(self, node_ids: list[str], ways: list[dict[str, Any]]) -> None:
        if not self.editable or self._refused_by_template():
            return
        entry = {n["id"] for n in self.definition["nodes"] if n.get("type") == "entry"}
        gone = set(node_ids) - entry  # the entry stays: a journey has one
        cut = {(w.get("from"), None if w.get("way") == OUT else w.get("way")) for w in ways}
        if not gone and not cut:
            if set(node_ids) & entry:
                ui.notify(tr("journeys.canvas.entry_stays"), type="warning")
            return

        def apply(definition: dict[str, Any]) -> None:
            definition["nodes"] = [n for n in definition["nodes"] if n["id"] not in gone]
            if definition.get("open"):  # a template's open part goes with its node
                definition["open"] = [part for part in definition["open"] if part not in gone]
            definition["edges"] = [e for e in definition["edges"] if e["from"] not in gone and e["to"] not in gone
                                   and (e["from"], e.get("branch")) not in cut]

        if self.selected in gone:
            self.selected = None
        self.change(apply, panel=True)

    def select(self, node_id: str | None) -> None:
        self.selected = node_id
        self.last_edit = None
        self.panel.draw()

    # -- saving -------------------------------------------------------------------------------------------------
    def save(self) -> bool:
        data = validated(lambda: schemas.JourneyUpdate(definition=schemas.Definition.model_validate(
            self.definition)))
        if data is None:
            return False
        done = run_action(lambda session: service.update_journey(session, self.principal, self.journey_id, data),
                          tr("journeys.canvas.saved"))
        if done is None:
            return False
        self.saved = copy.deepcopy(self.definition)
        self._refresh_chrome()
        self.on_saved()
        return True

    # -- the side panel -----------------------------------------------------------------------------------------


def _said(message: str) -> str:
    """Pydantic's words without its prefix ("Value error, a wait needs a duration" → "a wait needs a duration")."""
    return message.removeprefix("Value error, ")
