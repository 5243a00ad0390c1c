"""The audit trail: who changed what when, in the reader's words (names for ids, only what changed)."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from kehu.core.audit import AUDITED_ENTITIES as AUDITED
from kehu.core.i18n import t
from kehu.core.timeutil import format_local
from kehu.tenancy import service
from kehu.ui.shell import (
    actor_name,
    audit_text,
    empty_state,
    frame,
    locale,
    tr,
    unit_of_work,
)


# -- audit log -----------------------------------------------------------------------------------------
def audit_page() -> None:
    with frame("nav.audit", "/admin/audit", "audit") as principal:
        state: dict[str, Any] = {"cursors": [None], "entity": None, "user_id": None, "since": None, "until": None}
        with unit_of_work() as session:
            people = {u.id: u.name for u in service.page_users(session, principal, per_page=1000).items} \
                if principal.can("users") else {}
        entities = dict(sorted(((e, tr(f"entity.{e}")) for e in AUDITED), key=lambda pair: pair[1]))
        with ui.row().classes("w-full items-center gap-3"):
            ui.select(people, label=tr("audit.who"), clearable=True, with_input=True,
                      on_change=lambda e: refilter("user_id", e.value)).props("outlined dense").classes("w-48")
            ui.select(entities, label=tr("audit.entity"), clearable=True,
                      on_change=lambda e: refilter("entity", e.value)).props("outlined dense").classes("w-40")
            ui.input(tr("audit.since"), on_change=lambda e: refilter("since", e.value)).props(
                "outlined dense type=date").classes("w-44")
            ui.input(tr("audit.until"), on_change=lambda e: refilter("until", e.value)).props(
                "outlined dense type=date").classes("w-44")

        @ui.refreshable
        def entries() -> None:
            from datetime import datetime, timedelta

            def day(value: str | None, add: int = 0) -> datetime | None:
                return datetime.fromisoformat(value) + timedelta(days=add) if value else None

            with unit_of_work() as session:
                result = service.list_audit(session, principal, user_id=state["user_id"], entity=state["entity"],
                                            since=day(state["since"]), until=day(state["until"], 1), limit=25,
                                            cursor=state["cursors"][-1])
                names = _names_in(session, result.items)
                rows = [{"id": e.id, "ts": format_local(e.ts, principal.timezone, with_seconds=True),
                         "actor": actor_name(e), "entity": tr(f"entity.{e.entity}"),
                         "summary": audit_text(e), "changes": _changes(e.before, e.after, names, locale(), e.entity)}
                        for e in result.items]
            if not rows:
                empty_state("history", tr("audit.empty"), tr("audit.empty_text"))
            else:
                ui.table(columns=[
                    {"name": "ts", "label": tr("audit.when"), "field": "ts", "align": "left"},
                    {"name": "actor", "label": tr("audit.who"), "field": "actor", "align": "left"},
                    {"name": "entity", "label": tr("audit.entity"), "field": "entity", "align": "left"},
                    {"name": "summary", "label": tr("audit.summary"), "field": "summary", "align": "left"},
                    {"name": "changes", "label": tr("audit.changes"), "field": "changes", "align": "left",
                     "style": "white-space: pre-line; max-width: 420px", "classes": "text-xs text-grey-8"},
                ], rows=rows, pagination=0).classes("w-full").props("flat bordered wrap-cells hide-pagination")
            with ui.row().classes("items-center gap-2"):
                ui.button(tr("common.previous"), icon="chevron_left", on_click=previous).props("flat").set_enabled(
                    len(state["cursors"]) > 1)
                ui.label(tr("common.page", page=len(state["cursors"]))).classes("text-grey-7")
                next_btn = ui.button(tr("common.next"), icon="chevron_right",
                                     on_click=lambda: forward(result.next_cursor)).props("flat")
                next_btn.set_enabled(result.next_cursor is not None)

        def refilter(key: str, value: Any) -> None:
            state[key] = value or None
            state["cursors"] = [None]
            entries.refresh()

        def forward(cursor: str | None) -> None:
            state["cursors"].append(cursor)
            entries.refresh()

        def previous() -> None:
            if len(state["cursors"]) > 1:
                state["cursors"].pop()
            entries.refresh()

        entries()


def _names_in(session: Any, entries: list[Any]) -> dict[str, dict[Any, str]]:
    """Names of the units and people the entries' changes point at, so the page shows 上海浦东4S店, not 17."""
    ids: dict[str, set[Any]] = {"unit": set(), "user": set()}
    for entry in entries:
        for values in (entry.before or {}, entry.after or {}):
            for key, value in values.items():
                if isinstance(value, int) and key in ("unit_id", "parent_id"):
                    ids["unit"].add(value)
                elif isinstance(value, int) and key in ("owner_id", "user_id", "assigned_to_id"):
                    ids["user"].add(value)
    return service.names_of(session, unit_ids=ids["unit"], user_ids=ids["user"])


def _same(a: Any, b: Any) -> bool:
    if a == b or str(a) == str(b):
        return True
    try:  # 659700 and "659700.00" are one amount
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


STATUS_WORDS = {"leads": "lead.status", "opportunities": "opp.status", "users": "users.status"}


def _changes(before: dict[str, Any] | None, after: dict[str, Any] | None, names: dict[str, dict[Any, str]],
             language: str, entity: str = "") -> str:
    """What changed, field by field in the reader's words: unchanged fields left out, units and people by name,
    other references said to have changed rather than shown as numbers."""
    if not before:
        return ""  # a creation: the summary says it

    def shown(key: str, value: Any) -> str:
        if value is None or value == "":
            return "—"
        if key in ("unit_id", "parent_id"):
            return names["unit"].get(value, "—")
        if key in ("owner_id", "user_id", "assigned_to_id"):
            return names["user"].get(value, "—")
        if isinstance(value, bool):
            return t("common.yes" if value else "common.no", language)
        if key == "status" and entity in STATUS_WORDS:
            return t(f"{STATUS_WORDS[entity]}.{value}", language, default=str(value))
        if key == "reason" and isinstance(value, str) and ":" in value:  # "opportunity:420": what it led to
            kind, _, number = value.partition(":")
            return f"{t(f'audit.reason.{kind}', language, default=kind)} #{number}"
        return str(value)

    lines = []
    for key in dict.fromkeys([*before, *(after or {})]):
        old, new = before.get(key), (after or {}).get(key)
        if _same(old, new) or key in ("trait_times", "name_pinyin", "updated_at"):
            continue
        label = t(f"audit.field.{key}", language, default=key.removesuffix("_id"))
        if key.endswith("_id") and key not in ("unit_id", "parent_id", "owner_id", "user_id", "assigned_to_id"):
            lines.append(t("audit.changed", language, field=label))
        else:
            lines.append(f"{label}: {shown(key, old)} → {shown(key, new)}")
    return "\n".join(lines[:8])
