"""Reusable UI pieces: a server-side sorted and paged table, status chips."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

from kehu.core.pagination import COUNT_CAP


def readable_phone(value: str | None) -> str | None:
    """+8613812345678 → +86 138 1234 5678 (masked values pass through as they are)."""
    if value and value.startswith("+86") and len(value) == 14 and value[1:].isdigit():
        return f"+86 {value[3:6]} {value[6:10]} {value[10:]}"
    return value


def localise_table(table: ui.table, tr: Callable[..., str]) -> ui.table:
    """Quasar's own table texts in the reader's language (its language pack is global, ours is per user). A
    total past the count's cap (kehu.core.pagination) reads "of 10,000+": the rows were not all counted."""
    of = tr("table.of")
    total = f"(total > {COUNT_CAP} ? '{COUNT_CAP:,}+' : total.toLocaleString('en'))"
    table.props(f'rows-per-page-label="{tr("table.rows_per_page")}" no-data-label="{tr("table.no_data")}" '
                f':pagination-label="(first, last, total) => `${{first}}–${{last}} {of} ${{{total}}}`"')
    return table


Fetch = Callable[[int, int, str | None, bool], tuple[list[dict[str, Any]], int]]


class ServerTable:
    """A Quasar table whose sorting and paging run in the database, not in the browser."""

    def __init__(self, columns: list[dict[str, Any]], fetch: Fetch, *, sort_by: str | None = None,
                 descending: bool = False, per_page: int = 20, row_key: str = "id",
                 on_row_click: Callable[[dict[str, Any]], None] | None = None, empty_text: str = "",
                 tr: Callable[..., str] | None = None,
                 on_select: Callable[[list[dict[str, Any]]], None] | None = None) -> None:
        """``on_select`` turns on check boxes (kept across pages) and hears every change of the selection."""
        self.fetch = fetch
        self.table = ui.table(
            columns=columns, rows=[], row_key=row_key,
            pagination={"rowsPerPage": per_page, "sortBy": sort_by, "descending": descending, "page": 1,
                        "rowsNumber": 0},
            selection="multiple" if on_select else None,
            on_select=(lambda e: on_select(list(e.selection))) if on_select else None,
        ).classes("w-full").props('flat bordered binary-state-sort :rows-per-page-options="[10,20,50,100]"')
        if tr is not None:
            localise_table(self.table, tr)
        if empty_text:
            self.table.props(f'no-data-label="{empty_text}"')
        self.table.on("request", lambda e: self.load(e.args["pagination"]))
        if on_row_click is not None:
            self.table.on("row-click", lambda e: on_row_click(e.args[1]))
            self.table.props("hover").classes("cursor-pointer")
        self.load(self.table.pagination)

    def load(self, pagination: dict[str, Any] | None = None) -> None:
        p = dict(pagination or self.table.pagination)
        rows, total = self.fetch(int(p.get("page") or 1), int(p.get("rowsPerPage") or 20), p.get("sortBy"),
                                 bool(p.get("descending")))
        self.table.rows = rows
        self.table.pagination = {**p, "rowsNumber": total}

    def reload(self, first_page: bool = False) -> None:
        p = dict(self.table.pagination)
        if first_page:
            p["page"] = 1
        self.load(p)


STATUS_COLOURS = {"queued": "grey-7", "running": "primary", "succeeded": "positive", "failed": "negative",
                  "cancelled": "grey-5", "active": "positive", "inactive": "grey-6", "revoked": "grey-6"}


def add_status_slot(table: ui.table, column: str, labels: dict[str, str],
                    colours: dict[str, str] | None = None) -> None:
    """Render ``column`` as a coloured chip with a translated label."""
    mapping = "{" + ",".join(f"'{k}':'{v}'" for k, v in labels.items()) + "}"
    colours = "{" + ",".join(f"'{k}':'{v}'" for k, v in (colours or STATUS_COLOURS).items()) + "}"
    table.add_slot(f"body-cell-{column}", f"""
        <q-td :props="props">
          <q-badge :color="({colours})[props.value] || 'grey-7'" :label="({mapping})[props.value] || props.value" />
        </q-td>""")


class ParsedInput:
    """A text field read by ``parse`` as the user types (``11.99万``, ``2027/01/15``): what cannot be read is said
    under the field at once, and ``read()`` refuses it on save instead of passing on nothing — a typed amount
    that silently became empty once created a ¥0 deal. ``picker`` adds a calendar that fills in the field."""

    def __init__(self, label: str, parse: Callable[[str], Any], explain: Callable[[Exception], str], *,
                 value: str = "", placeholder: str | None = None, picker: bool = False,
                 props: str = "outlined dense", mark: str | None = None) -> None:
        self.parse, self.explain = parse, explain
        self.field = ui.input(label, value=value, placeholder=placeholder, validation=self._problem).props(props)
        if mark:
            self.field.props(f'data-test="{mark}"')
        if picker:
            with self.field.add_slot("append"):
                icon = ui.icon("event").classes("cursor-pointer")
            with self.field, ui.menu().props("no-parent-event") as menu:
                ui.date(on_change=lambda e: (self.field.set_value(e.value or ""), menu.close())).props(
                    "minimal today-btn")
            icon.on("click", menu.open)

    def _problem(self, text: str | None) -> str | None:
        if not (text or "").strip():
            return None
        try:
            self.parse(text or "")
        except ValueError as error:
            return self.explain(error)
        return None

    def classes(self, add: str) -> ParsedInput:
        self.field.classes(add)
        return self

    def read(self) -> tuple[bool, Any]:
        """(True, the value or None when empty) or (False, None) after showing why the text cannot be read."""
        text = (self.field.value or "").strip()
        if not text:
            return True, None
        problem = self._problem(text)
        if problem is not None:
            self.field.validate()
            ui.notify(f"{self.field.props.get('label', '')}: {problem}", type="negative")
            return False, None
        return True, self.parse(text)
