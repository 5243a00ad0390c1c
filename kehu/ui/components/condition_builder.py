"""The condition builder: a segment condition (the condition language of kehu.segments.conditions) edited as a
tree of groups and rules. Segments use it for their rules today; journeys will use it for their entry conditions
and splits, so it lives with the shared widgets, not inside the segment pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

from nicegui import ui

from kehu.cdp import fields
from kehu.cdp import service as cdp_service
from kehu.cdp.identity_rules import list_rules
from kehu.cdp.views import PersonalData
from kehu.core import events
from kehu.segments import schemas, service, tags
from kehu.segments.conditions import OPTIONS, STANDARD_FIELDS, operators_for
from kehu.tenancy import service as tenancy_service
from kehu.ui.shell import tr, unit_of_work

RULE_TYPES = ("field", "event", "event_time", "orders", "consent", "identity", "tag", "account", "unit",
              "segment")
CHANNELS = ("sms", "email", "wechat", "phone", "app_push", "mail")
COMMON_EVENTS = ("test_drive_booked", "test_drive_completed", "showroom_visit", "quote_requested", "order_placed",
                 "vehicle_delivered", "maintenance_visit", "complaint", "ad_click", "wechat_follow", "app_login")




def _event_names(chosen: str) -> list[str]:
    """The chosen event first, then the common ones and what kehu itself records on customers (a lead's status
    changing, a deal won)."""
    return list(dict.fromkeys([chosen, *COMMON_EVENTS, *sorted(events.customer_events())]))


NEEDS_NO_VALUE = {"is_set", "is_not_set", "is_true", "is_false"}
MAX_DEPTH = 3  # groups within groups within groups: deeper is rarely what a marketer means


def _group(match: str = "all", negate: bool = False, children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"node": "group", "match": match, "negate": negate, "children": children or []}


class Builder:
    """The condition being edited, as a tree of groups (all / any, optionally negated) and rules; the JSON
    condition is built from it, and an existing condition is read back into it."""

    def __init__(self, principal: Any) -> None:
        self.principal = principal
        self.root = _group()
        with unit_of_work() as session:
            custom = fields.definitions(session, principal.org_id)
            self.personal = PersonalData(custom)
            self.fields = {name: tr(f"segments.field.{name}") for name in STANDARD_FIELDS}
            self.kinds = {name: kind for name, kind in STANDARD_FIELDS.items()}
            for key, definition in custom.items():
                label = definition.label_zh if principal.locale == "zh" else definition.label_en
                self.fields[f"attributes.{key}"] = label or key
                self.kinds[f"attributes.{key}"] = definition.type
            self.identity_kinds = {r.kind: (r.label_zh if principal.locale == "zh" else r.label_en) or r.kind
                                   for r in list_rules(session, principal.org_id)}
            self.units = {u.id: ("　" * u.depth) + u.name for u in tenancy_service.list_units(session, principal)} \
                if principal.can("units") else {}
            self.segments = {s.id: s.name for s in service.list_segments(session, principal, limit=200).items}
            self.tags = {t.id: t.name for t in tags.all_tags(session, principal)}
            self.accounts = {a.id: a.name or a.external_id for a in cdp_service.list_accounts(
                session, principal, limit=500).items} if principal.can("accounts") else {}

    def is_masked(self, field: str) -> bool:
        """Whether the field is personal data the reader sees masked (conditions may only ask if it is set)."""
        return self.personal.of_field(field) is not None and not self.principal.has("pii.read")

    def operators(self, field: str) -> set[str]:
        return operators_for(self.kinds.get(field, "text"), personal=self.personal.of_field(field) is not None,
                             reads_pii=self.principal.has("pii.read"))

    def kinds_offered(self) -> list[str]:
        empty = {"unit": self.units, "segment": self.segments, "tag": self.tags}
        return [k for k in RULE_TYPES if k not in empty or empty[k]]

    def new_rule(self, kind: str) -> dict[str, Any]:
        defaults: dict[str, dict[str, Any]] = {
            "field": {"field": "city", "op": "eq", "value": ""},
            "event": {"event": "test_drive_booked", "op": "did", "count_op": "gte", "count": 1, "within_days": 30,
                      "property": "", "property_value": ""},
            "orders": {"measure": "count", "op": "gte", "value": "1"},
            "consent": {"channel": "sms", "op": "granted"},
            "identity": {"kind": "wechat_openid", "op": "has"},
            "unit": {"unit_id": next(iter(self.units), None), "op": "within"},
            "segment": {"segment_id": next(iter(self.segments), None), "op": "in"},
            "tag": {"tag_id": next(iter(self.tags), None), "op": "has"},
            "event_time": {"event": "app_login", "which": "last", "op": "more_than_days_ago", "value": "90"},
            "account": {"op": "member", "kind": None, "account_id": None},
        }
        return {"node": "rule", "type": kind, "keep": {}, **defaults[kind]}

    def is_empty(self) -> bool:
        return self._group_json(self.root) is None

    def condition(self) -> dict[str, Any] | None:
        return self._group_json(self.root)

    def _group_json(self, group: dict[str, Any]) -> dict[str, Any] | None:
        parts = [self._group_json(c) if c["node"] == "group" else self._rule_json(c) for c in group["children"]]
        parts = [p for p in parts if p is not None]  # an empty group asks nothing
        if not parts:
            return None
        out = {"type": group["match"], "conditions": parts}
        return {"type": "not", "condition": out} if group["negate"] else out

    def _rule_json(self, rule: dict[str, Any]) -> dict[str, Any]:
        kind = rule["type"]
        if kind == "field":
            return {"type": "field", "field": rule["field"], "op": rule["op"],
                    "value": None if rule["op"] in NEEDS_NO_VALUE else _typed(rule["value"], rule["op"],
                                                                                self.kinds.get(rule["field"]))}
        if kind == "event":
            out: dict[str, Any] = {"type": "event", "event": rule["event"], "op": rule["op"], **rule["keep"]}
            if rule["op"] == "did":
                out["count"] = {"op": rule["count_op"], "value": int(rule["count"] or 0)}
            if rule.get("within_days"):
                out["window"] = {**out.get("window", {}), "within_days": int(rule["within_days"])}
            if str(rule.get("property") or "").strip():
                value = _typed(rule.get("property_value"), "eq", None)
                out["where"] = [{"property": rule["property"].strip(), "op": "eq", "value": value},
                                *out.get("where", [])]
            return out
        if kind == "orders":
            value = _typed(rule["value"], rule["op"], "number" if rule["measure"] != "last_ordered_at" else "date")
            if rule["measure"] == "count" and isinstance(value, float) and value.is_integer():
                value = int(value)
            return {"type": "orders", "measure": rule["measure"], "op": rule["op"], "value": value, **rule["keep"]}
        if kind == "event_time":
            return {"type": "event_time", "event": rule["event"], "which": rule["which"], "op": rule["op"],
                    "value": _typed(rule["value"], rule["op"], "date")}
        if kind == "account":
            return {"type": "account", "op": rule["op"], **{k: rule[k] for k in ("kind", "account_id") if rule.get(k)}}
        return {k: v for k, v in rule.items() if k not in ("node", "keep")}

    # -- reading a saved condition back ------------------------------------------------------------------
    def load(self, condition: dict[str, Any] | None) -> None:
        if not condition:
            return
        node = self._node(condition)
        self.root = node if node["node"] == "group" else _group(children=[node])

    def _node(self, c: dict[str, Any]) -> dict[str, Any]:
        if c["type"] in ("all", "any"):
            return _group(c["type"], False, [self._node(x) for x in c["conditions"]])
        if c["type"] == "not":
            inner = self._node(c["condition"])
            if inner["node"] == "group" and not inner["negate"]:
                inner["negate"] = True
                return inner
            return _group("all", True, [inner])
        rule: dict[str, Any] = {"node": "rule", "keep": {}, **c}
        if c["type"] == "field":
            rule["value"] = _shown(c.get("value"))
        elif c["type"] == "event":
            count = c.get("count") or {"op": "gte", "value": 1}
            window = dict(c.get("window") or {})
            where = list(c.get("where") or [])
            # the row shows one "property = text" filter; any other filters are kept as they are
            first = where.pop(0) if where and where[0].get("op", "eq") == "eq" and isinstance(
                where[0]["value"], str) else None
            rule.pop("window", None)
            rule.pop("where", None)
            rule.update(count_op=count["op"], count=count["value"], within_days=window.pop("within_days", None),
                        property=first["property"] if first else "", property_value=_shown(first["value"])
                        if first else "")
            rule["keep"] = {k: v for k, v in (("window", window), ("where", where)) if v}
        elif c["type"] == "account":
            rule.setdefault("kind", None)
            rule.setdefault("account_id", None)
        elif c["type"] in ("orders", "event_time"):
            rule["value"] = _shown(c.get("value"))
            rule["keep"] = {k: c[k] for k in ("status", "sku", "window") if c.get(k)}
            for key in ("status", "sku", "window"):
                rule.pop(key, None)
        return rule


def _shown(value: Any) -> str:
    """A condition value as its input box shows it."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _typed(text: Any, op: str, kind: str | None) -> Any:
    """What a value box holds, as the condition language wants it: lists for in/between, numbers for numbers
    and day counts."""
    raw = str(text if text is not None else "").strip()
    if op in ("in", "not_in", "between"):
        parts = [p.strip() for p in raw.replace("，", ",").split(",") if p.strip()]
        return [_typed(p, "eq", kind) for p in parts]
    if op in ("within_last_days", "more_than_days_ago"):
        return int(raw) if raw.isdigit() else raw
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            return raw
    return raw


class ConditionEditor:
    """The builder's tree drawn for editing where it is created: groups (all / any, optionally negated, nested up
    to MAX_DEPTH) of rule rows with their inputs. Every change is reported to ``on_change`` (to recount, say)."""

    def __init__(self, builder: Builder, *, on_change: Callable[[], None]) -> None:
        self.builder = builder
        self.on_change = on_change
        self.area = ui.column().classes("w-full gap-2")

    def _add(self, group: dict[str, Any], node: dict[str, Any]) -> None:
        group["children"].append(node)
        self.draw()
        self.on_change()

    def _remove(self, group: dict[str, Any], node: dict[str, Any]) -> None:
        group["children"].remove(node)
        self.draw()
        self.on_change()

    def set_value(self, rule: dict[str, Any], key: str, value: Any, redraw: bool = False) -> None:
        rule[key] = value
        if key == "field":  # another field: an operator it takes (and the reader may use on it)
            allowed = self.builder.operators(value)
            rule["op"] = rule["op"] if rule["op"] in allowed else (
                "is_set" if self.builder.is_masked(value) else sorted(allowed)[0])
        if redraw:
            self.draw()
        self.on_change()

    def _draw_group(self, group: dict[str, Any], parent: dict[str, Any] | None, depth: int) -> None:
        box = ui.column().classes("w-full gap-2")
        if parent is not None:  # a nested group: indented, its edge red when it excludes
            box.classes("rounded p-2 bg-grey-1").style(
                f"border-left: 4px solid {'#c0392b' if group['negate'] else '#1f4e79'}")
        with box:
            with ui.row().classes("w-full items-center gap-2"):
                ui.checkbox(tr("segments.negate"), value=group["negate"],
                            on_change=lambda e: self.set_value(group, "negate", e.value, redraw=True)).props("dense")
                ui.label(tr("segments.match"))
                ui.toggle({"all": tr("segments.match.all"), "any": tr("segments.match.any")},
                          value=group["match"], on_change=lambda e: self.set_value(group, "match", e.value)).props(
                    "dense no-caps")
                ui.space()
                adder = ui.button(tr("segments.add_rule"), icon="add").props("outline dense no-caps").mark(
                    "add-rule")
                with adder, ui.menu():
                    for kind in self.builder.kinds_offered():
                        ui.menu_item(tr(f"segments.rule.{kind}"),
                                     on_click=lambda k=kind, g=group: self._add(g, self.builder.new_rule(k)))
                if depth < MAX_DEPTH:
                    ui.button(tr("segments.add_group"), icon="account_tree",
                              on_click=lambda g=group: self._add(g, _group("any" if g["match"] == "all" else "all"))
                              ).props("outline dense no-caps").mark("add-group")
                if parent is not None:
                    ui.button(icon="close", on_click=lambda: self._remove(parent, group)).props(
                        "flat round dense").tooltip(tr("segments.remove_group"))
            if not group["children"]:
                ui.label(tr("segments.no_rules") if parent is None else tr("segments.empty_group")).classes(
                    "text-grey-7")
            for child in group["children"]:
                if child["node"] == "group":
                    self._draw_group(child, group, depth + 1)
                    continue
                with ui.row().classes("w-full items-center gap-2 no-wrap border rounded p-2 bg-white"):
                    ui.badge(tr(f"segments.rule.{child['type']}")).props("outline")
                    with ui.row().classes("flex-1 min-w-0 items-center gap-2"):  # wraps on narrow screens
                        _rule_inputs(self.builder, child, self.set_value)
                    ui.button(icon="close", on_click=lambda c=child, g=group: self._remove(g, c)).props(
                        "flat round dense")

    def draw(self) -> None:
        """(Re)draw the whole tree."""
        self.area.clear()
        with self.area:
            self._draw_group(self.builder.root, None, 1)


def _rule_inputs(builder: Builder, rule: dict[str, Any], set_value: Any) -> None:
    """The inputs of one rule row, by its type."""
    def op_select(options: list[str], key: str = "op") -> None:
        ui.select({o: tr(f"segments.op.{o}") for o in options}, value=rule[key],
                  on_change=lambda e: set_value(rule, key, e.value, redraw=True)).props("dense outlined").classes(
            "w-36")

    kind = rule["type"]
    if kind == "field":
        ui.select(builder.fields, value=rule["field"], with_input=True,
                  on_change=lambda e: set_value(rule, "field", e.value, redraw=True)).props("dense outlined").classes(
            "w-44").mark("rule-field")
        field_kind = builder.kinds.get(rule["field"], "text")
        # a saved condition may hold an operator this reader may not use: shown, so the page draws, and refused
        offered = builder.operators(rule["field"]) | {rule["op"]}
        op_select(sorted(offered, key=list(get_args(schemas.FieldOp)).index))
        if builder.is_masked(rule["field"]):
            ui.icon("lock").classes("text-grey-6").props("data-testid=rule-personal").tooltip(
                tr("segments.personal_hint"))
        if rule["op"] not in NEEDS_NO_VALUE:
            options = OPTIONS.get(rule["field"])
            if options and rule["op"] in ("eq", "ne"):
                ui.select({o: tr(f"stage.{o}") if rule["field"] == "lifecycle_stage" else tr(f"gender.{o}")
                           for o in options}, value=rule["value"] or None,
                          on_change=lambda e: set_value(rule, "value", e.value)).props("dense outlined").classes(
                    "w-40")
            else:
                hint = tr("segments.value_hint.list") if rule["op"] in ("in", "not_in", "between") else (
                    tr("segments.value_hint.days") if "days" in rule["op"] else (
                        tr("segments.value_hint.date") if field_kind in ("date", "datetime") else ""))
                ui.input(tr("segments.value"), value=str(rule["value"] or ""), placeholder=hint,
                         on_change=lambda e: set_value(rule, "value", e.value)).props(
                    "dense outlined debounce=400").classes("w-48").mark("rule-value")
    elif kind == "event":
        with ui.column().classes("gap-1"):
            with ui.row().classes("items-center gap-2"):
                ui.select(_event_names(rule["event"]), value=rule["event"],
                          new_value_mode="add-unique", with_input=True, label=tr("segments.event"),
                          on_change=lambda e: set_value(rule, "event", e.value)).props("dense outlined").classes(
                    "w-52")
                op_select(["did", "did_not"])
                if rule["op"] == "did":
                    op_select(["gte", "gt", "eq", "lte", "lt"], "count_op")
                    ui.number(tr("segments.count"), value=rule["count"], min=0, step=1,
                              on_change=lambda e: set_value(rule, "count", e.value)).props("dense outlined").classes(
                        "w-24")
                ui.number(tr("segments.within_days"), value=rule["within_days"], min=1, step=1,
                          on_change=lambda e: set_value(rule, "within_days", e.value)).props(
                    "dense outlined clearable").classes("w-32")
            with ui.row().classes("items-center gap-2"):
                ui.label(tr("segments.where")).classes("text-sm text-grey-7")
                ui.input(tr("segments.property"), value=rule["property"], placeholder="model",
                         on_change=lambda e: set_value(rule, "property", e.value)).props(
                    "dense outlined debounce=400").classes("w-36")
                ui.label("=")
                ui.input(tr("segments.value"), value=rule["property_value"], placeholder="ID.4",
                         on_change=lambda e: set_value(rule, "property_value", e.value)).props(
                    "dense outlined debounce=400").classes("w-36")
    elif kind == "orders":
        ui.select({m: tr(f"segments.measure.{m}") for m in ("count", "total", "last_ordered_at")},
                  value=rule["measure"], on_change=lambda e: (set_value(rule, "measure", e.value), set_value(
                      rule, "op", "within_last_days" if e.value == "last_ordered_at" else "gte", redraw=True))
                  ).props("dense outlined").classes("w-36")
        op_select(["within_last_days", "more_than_days_ago", "before", "after"] if rule["measure"] == "last_ordered_at"
                  else ["gte", "gt", "eq", "lt", "lte"])
        ui.input(tr("segments.value"), value=str(rule["value"] or ""),
                 on_change=lambda e: set_value(rule, "value", e.value)).props("dense outlined debounce=400").classes(
            "w-36")
    elif kind == "consent":
        ui.select({c: tr(f"channel.{c}") for c in CHANNELS}, value=rule["channel"],
                  on_change=lambda e: set_value(rule, "channel", e.value)).props("dense outlined").classes("w-32")
        op_select(["granted", "not_granted", "withdrawn", "not_withdrawn"])
    elif kind == "identity":
        op_select(["has", "lacks"])
        ui.select(builder.identity_kinds, value=rule["kind"],
                  on_change=lambda e: set_value(rule, "kind", e.value)).props("dense outlined").classes("w-44")
    elif kind == "unit":
        op_select(["within", "not_within"])
        ui.select(builder.units, value=rule["unit_id"], with_input=True,
                  on_change=lambda e: set_value(rule, "unit_id", e.value)).props("dense outlined").classes("w-56")
    elif kind == "segment":
        op_select(["in", "not_in"])
        ui.select(builder.segments, value=rule["segment_id"],
                  on_change=lambda e: set_value(rule, "segment_id", e.value)).props("dense outlined").classes("w-56")
    elif kind == "event_time":
        ui.select({w: tr(f"segments.which.{w}") for w in ("first", "last")}, value=rule["which"],
                  on_change=lambda e: set_value(rule, "which", e.value)).props("dense outlined").classes("w-28")
        ui.select(_event_names(rule["event"]), value=rule["event"],
                  new_value_mode="add-unique", with_input=True, label=tr("segments.event"),
                  on_change=lambda e: set_value(rule, "event", e.value)).props("dense outlined").classes("w-52")
        op_select(["within_last_days", "more_than_days_ago", "before", "after"])
        hint = tr("segments.value_hint.days") if "days" in rule["op"] else tr("segments.value_hint.date")
        ui.input(tr("segments.value"), value=str(rule["value"] or ""), placeholder=hint,
                 on_change=lambda e: set_value(rule, "value", e.value)).props("dense outlined debounce=400").classes(
            "w-36")
    elif kind == "account":
        op_select(["member", "not_member"])
        ui.select({k: tr(f"account.kind.{k}") for k in ("company", "household", "dealer_group")}, value=rule["kind"],
                  clearable=True, label=tr("segments.account_kind"),
                  on_change=lambda e: set_value(rule, "kind", e.value)).props("dense outlined").classes("w-44")
        if builder.accounts:
            ui.select(builder.accounts, value=rule["account_id"], with_input=True, clearable=True,
                      label=tr("segments.account_any"),
                      on_change=lambda e: set_value(rule, "account_id", e.value)).props("dense outlined").classes(
                "w-56")
    elif kind == "tag":
        op_select(["has", "lacks"])
        ui.select(builder.tags, value=rule["tag_id"], with_input=True,
                  on_change=lambda e: set_value(rule, "tag_id", e.value)).props("dense outlined").classes("w-56")
