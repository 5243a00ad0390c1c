"""匹配设置: on the possible-duplicates page, a settings manager picks what is compared (the standard comparisons,
custom fields with a comparison kind) and which blocking rules are on (the defaults, rules of their own on equal
fields), counts each rule's pairs before saving, and saves; what the service refuses is shown beside the setting
at fault. Also the labels of custom fields' evidence levels, shared with the review queue and the weights chart."""

from __future__ import annotations

from typing import Any

from nicegui import ui
from pydantic import ValidationError

from kehu.cdp import dedupe, schemas
from kehu.cdp.matching import config
from kehu.core.errors import FieldError, KehuError, ValidationFailed
from kehu.ui.shell import locale, notify_error, run_action, tr, unit_of_work

KIND_BY_TOP = {1: "exact", 2: "fuzzy", 3: "date"}  # a custom comparison's kind from its strongest level


def field_label(option: schemas.MatchingFieldOption) -> str:
    return (option.label_en if locale() == "en" else option.label_zh) or option.field


def custom_labels(session: Any, principal: Any) -> dict[str, str]:
    """attributes.<key> → the custom field's label in the reader's language."""
    return {f.field: field_label(f) for f in dedupe.get_matching(session, principal).options.custom_fields}


def level_label(comparison: str, level: int, *, labels: dict[str, str], model: dict[str, Any]) -> str:
    """A comparison's level in words: standard ones from the catalogue, a custom field's by its kind (told by the
    fitted model's strongest level) with the field's label."""
    public = config.public_name(comparison)
    if not public.startswith(config.ATTRIBUTE):
        return tr(f"dedupe.level.{comparison}.{level}")
    fitted = model.get("levels", {}).get(config.column(public[len(config.ATTRIBUTE):]), {})
    kind = KIND_BY_TOP.get(max((int(k) for k in fitted), default=1), "exact")
    return tr(f"dedupe.custom.{kind}.{level}", field=labels.get(public, public[len(config.ATTRIBUTE):]))


def _errors_of(error: Exception) -> list[FieldError]:
    if isinstance(error, ValidationError):
        return [FieldError(".".join(str(p) for p in e["loc"]), e["msg"],
                           "required" if e["type"] == "string_too_short" else e["type"]) for e in error.errors()]
    if isinstance(error, KehuError):
        return error.errors
    return []


def _error_text(error: FieldError) -> str:
    code = error.code
    if code == "empty":
        code = "no_comparisons" if error.field == "comparisons" else "no_rules"
    return tr(f"dedupe.matching.error.{code}") if code in ERROR_CODES else error.message


ERROR_CODES = {"unknown_field", "wrong_type", "not_option", "no_comparisons", "no_rules", "duplicate", "unknown_rule",
               "taken", "every_pair", "too_many", "required"}


def matching_section(principal: Any) -> None:
    """The settings section (for settings managers)."""
    with unit_of_work() as session:
        current = dedupe.get_matching(session, principal)
    options = current.options
    customs = {f.field: f for f in options.custom_fields}
    chosen = {c.field: c.kind or config.STANDARD for c in current.comparisons}
    on_rules = {r.name for r in current.rules if r.fields is None}
    state: dict[str, Any] = {
        "standard": {name: name in chosen for name in options.comparisons},
        "custom": {field: chosen.get(field) for field in customs},
        "rules": {name: name in on_rules for name in options.rules},
        "own": [{"name": r.name, "fields": list(r.fields)} for r in current.rules if r.fields is not None],
        "errors": {}, "counts": None, "is_default": current.is_default,
    }
    rule_fields = {f: tr(f"dedupe.field.{f}") for f in options.rule_fields}
    rule_fields.update({f.field: field_label(f) for f in options.custom_fields if f.type != "multi_option"})

    def proposal() -> tuple[dict[str, Any], list[str], list[str]]:
        """The settings as the page shows them, and which row each comparison and rule came from."""
        comparisons, comparison_rows = [], []
        for name in options.comparisons:
            if state["standard"][name]:
                comparisons.append({"field": name, "kind": config.STANDARD})
                comparison_rows.append(name)
        for field, kind in state["custom"].items():
            if kind:
                comparisons.append({"field": field, "kind": kind})
                comparison_rows.append(field)
        rules, rule_rows = [], []
        for name in options.rules:
            if state["rules"][name]:
                rules.append({"name": name, "fields": None})
                rule_rows.append(name)
        for index, own in enumerate(state["own"]):
            rules.append({"name": own["name"].strip(), "fields": own["fields"]})
            rule_rows.append(f"own.{index}")
        return {"comparisons": comparisons, "rules": rules}, comparison_rows, rule_rows

    def show_errors(errors: list[FieldError], comparison_rows: list[str], rule_rows: list[str]) -> None:
        """Each error beside its row: comparisons.<i>… → that comparison's row, rules.<i>… → that rule's."""
        found: dict[str, list[str]] = {}
        for error in errors:
            parts = error.field.split(".")
            if parts and parts[0] == "body":
                parts = parts[1:]
            where = parts[0] if parts else "rules"
            if len(parts) > 1 and parts[1].isdigit():
                rows = comparison_rows if where == "comparisons" else rule_rows
                index = int(parts[1])
                where = rows[index] if index < len(rows) else where
            found.setdefault(where, []).append(_error_text(error))
        state["errors"] = found
        draw()

    def attempt(action: str) -> None:
        proposed, comparison_rows, rule_rows = proposal()
        try:
            data = schemas.MatchingIn.model_validate(proposed)  # a blank rule name: refused here, shown inline
            with unit_of_work() as session:
                if action == "check":
                    state["counts"] = dedupe.check_matching(session, principal, data=data)
                else:
                    saved = dedupe.update_matching(session, principal, data=data)
                    state["is_default"] = saved.is_default
        except (ValidationError, ValidationFailed) as error:
            state["counts"] = None
            show_errors(_errors_of(error), comparison_rows, rule_rows)
            return
        except KehuError as error:
            notify_error(error)
            return
        state["errors"] = {}
        if action == "save":
            ui.notify(tr("dedupe.matching.saved"), type="positive", group="kehu-done", timeout=2500)
        draw()

    def reset() -> None:
        if run_action(lambda s: dedupe.update_matching(s, principal, data=schemas.MatchingIn()),
                      tr("dedupe.matching.reset_done")) is not None:
            state["standard"] = dict.fromkeys(options.comparisons, True)
            state["custom"] = dict.fromkeys(customs)
            state["rules"] = dict.fromkeys(options.rules, True)
            state["own"], state["errors"], state["counts"], state["is_default"] = [], {}, None, True
            draw()

    def errors_at(where: str) -> None:
        for text in state["errors"].get(where, []):
            ui.label(text).classes("text-xs text-negative").props(f'data-test="matching-error-{where}"')

    def count_chip(rule: str) -> None:
        counts = state["counts"]
        if counts is None:
            return
        row = next((r for r in counts.rules if r.rule == rule), None)
        if row is not None:
            text = tr("dedupe.matching.pairs", pairs=f"{row.pairs:,}") + (
                tr("dedupe.matching.tightened") if row.tightened and not counts.over_ceiling else "")
            color = "negative" if counts.over_ceiling else "primary"
            ui.badge(text).props(f'outline color={color} data-test="matching-count-{rule}"')

    def set_value(group: str, key: Any, value: Any) -> None:
        state[group][key] = value
        state["counts"] = None  # counted for other settings

    box = ui.column().classes("w-full gap-3")

    def draw() -> None:
        box.clear()
        with box:
            with ui.row().classes("w-full items-center gap-2"):
                ui.label(tr("dedupe.matching.help")).classes("text-sm text-grey-7 flex-1")
                if state["is_default"]:
                    ui.badge(tr("dedupe.matching.default_badge")).props("outline color=grey-7")
            ui.label(tr("dedupe.matching.comparisons")).classes("text-sm font-medium")
            errors_at("comparisons")
            with ui.row().classes("w-full gap-x-4 gap-y-0"):
                for name in options.comparisons:
                    with ui.column().classes("gap-0"):
                        ui.checkbox(tr(f"dedupe.cmp.{name}"), value=state["standard"][name],
                                    on_change=lambda e, name=name: set_value("standard", name, e.value)).props(
                            f'dense data-test="cmp-{name}"')
                        errors_at(name)
            ui.label(tr("dedupe.matching.custom_fields")).classes("text-sm font-medium")
            if not customs:
                ui.label(tr("dedupe.matching.no_custom")).classes("text-xs text-grey-7")
            for field, option in customs.items():
                with ui.row().classes("w-full items-center gap-3 no-wrap"):
                    ui.label(field_label(option)).classes("w-40 text-sm truncate")
                    if option.is_pii:
                        ui.badge(tr("dedupe.matching.pii")).props("outline color=orange-9")
                    kinds: dict[str | None, str] = {None: tr("dedupe.kind.none"),
                                                    **{k: tr(f"dedupe.kind.{k}") for k in option.kinds}}
                    current_kind = state["custom"][field]
                    if current_kind and current_kind not in kinds:  # saved before: shown, so the error makes sense
                        kinds[current_kind] = tr(f"dedupe.kind.{current_kind}")
                    if option.kinds:
                        ui.select(kinds, value=current_kind,
                                  on_change=lambda e, field=field: set_value("custom", field, e.value)).props(
                            f'outlined dense data-test="kind-{field}"').classes("w-64")
                    else:
                        ui.label(tr("dedupe.matching.cannot_compare")).classes("text-xs text-grey-7")
                    errors_at(field)
            ui.separator()
            ui.label(tr("dedupe.matching.rules")).classes("text-sm font-medium")
            ui.label(tr("dedupe.matching.rules_help")).classes("text-xs text-grey-7")
            errors_at("rules")
            with ui.grid(columns=2).classes("w-full gap-x-6 gap-y-0 max-lg:grid-cols-1"):
                for name in options.rules:
                    with ui.row().classes("items-center gap-2 no-wrap"):
                        ui.checkbox(tr(f"dedupe.rule.{name}"), value=state["rules"][name],
                                    on_change=lambda e, name=name: set_value("rules", name, e.value)).props(
                            f'dense data-test="rule-{name}"')
                        count_chip(name)
                        errors_at(name)
            ui.label(tr("dedupe.matching.own_rules")).classes("text-sm font-medium")
            for index, own in enumerate(state["own"]):
                with ui.row().classes("w-full items-center gap-3 no-wrap"):
                    ui.input(tr("dedupe.matching.rule_name"), value=own["name"],
                             on_change=lambda e, own=own: own.__setitem__("name", e.value or "")).props(
                        f'outlined dense data-test="own-name-{index}"').classes("w-48")
                    ui.select(rule_fields, multiple=True, value=own["fields"], label=tr("dedupe.matching.rule_fields"),
                              on_change=lambda e, own=own: own.__setitem__("fields", list(e.value or []))).props(
                        f'outlined dense use-chips data-test="own-fields-{index}"').classes("w-96")
                    count_chip(own["name"].strip())
                    ui.button(icon="delete", on_click=lambda index=index: remove(index)).props(
                        f'flat dense round color=grey-7 data-test="own-remove-{index}"').tooltip(
                        tr("dedupe.matching.remove"))
                with ui.column().classes("gap-0 pl-2"):
                    errors_at(f"own.{index}")
            ui.button(tr("dedupe.matching.add_rule"), icon="add", on_click=add).props("flat dense no-caps").mark(
                "matching-add-rule")
            counts = state["counts"]
            if counts is not None:
                if counts.over_ceiling:
                    ui.label(tr("dedupe.matching.over", pairs=f"{counts.pairs:,}", ceiling=f"{counts.ceiling:,}")
                             ).classes("text-sm text-negative").mark("matching-summary")
                else:
                    ui.label(tr("dedupe.matching.summary", records=f"{counts.records:,}", pairs=f"{counts.pairs:,}",
                                ceiling=f"{counts.ceiling:,}")).classes("text-sm text-primary").mark(
                        "matching-summary")
            if state["errors"]:
                ui.label(tr("dedupe.matching.has_errors")).classes("text-sm text-negative").mark("matching-errors")
            with ui.row().classes("w-full justify-end gap-2"):
                ui.button(tr("dedupe.matching.reset"), on_click=reset).props("flat no-caps").mark("matching-reset")
                ui.button(tr("dedupe.matching.check"), icon="calculate", on_click=lambda: attempt("check")).props(
                    "outline no-caps").mark("matching-check")
                ui.button(tr("dedupe.matching.save"), icon="save", on_click=lambda: attempt("save")).props(
                    "unelevated no-caps").mark("matching-save")

    def add() -> None:
        state["own"].append({"name": "", "fields": []})
        state["counts"] = None
        draw()

    def remove(index: int) -> None:
        state["own"].pop(index)
        state["counts"], state["errors"] = None, {}
        draw()

    draw()
