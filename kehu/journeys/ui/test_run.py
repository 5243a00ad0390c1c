"""The journey page's test run: pick a customer (and the awaited events that come), see the path they would take
through the saved drawing — when each node acts, which way they go, each message as they would receive it —
without anything written."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nicegui import ui
from pydantic import ValidationError

from kehu.cdp import service as cdp_service
from kehu.cdp.views import CustomerView
from kehu.channels import schemas as channel_schemas
from kehu.channels import templates
from kehu.channels.templates import text_of
from kehu.core.errors import KehuError
from kehu.core.timeutil import format_local
from kehu.journeys import schemas, simulation
from kehu.journeys.ui.panel import NODE_ICONS
from kehu.ui.components import readable_phone
from kehu.ui.shell import notify_error, tr, unit_of_work

if TYPE_CHECKING:
    from kehu.journeys.ui.canvas import JourneyEditor


def open_test_run(principal: Any, journey_id: int, editor: JourneyEditor) -> None:
    waits = {n["id"]: n.get("label") or n.get("event") or n["id"] for n in editor.definition.get("nodes", [])
             if n.get("type") == "wait_for_event"}
    found: dict[int, str] = {}
    with ui.dialog() as dialog, ui.card().classes("w-[760px] max-w-full").props("data-testid=test-run-dialog"):
        ui.label(tr("journeys.test.title")).classes("text-lg font-medium")
        ui.label(tr("journeys.test.help")).classes("text-grey-7 text-sm")
        if editor.is_dirty():
            ui.label(tr("journeys.test.unsaved")).classes("text-orange-9 text-sm")
        with ui.row().classes("w-full gap-2 no-wrap items-center"):
            search = ui.input(placeholder=tr("journeys.test.find")).props(
                "outlined dense clearable debounce=300 data-testid=test-run-search").classes("w-48")
            who = ui.select({}, label=tr("journeys.test.customer")).props(
                "outlined dense data-testid=test-run-customer").classes("flex-1 min-w-0")
        happened = ui.select(waits, multiple=True, value=[], label=tr("journeys.test.happened")).props(
            "outlined dense use-chips data-testid=test-run-happened").classes("w-full") if waits else None
        result = ui.column().classes("w-full gap-1").props("data-testid=test-run-result")

        def find(text: str | None) -> None:
            text = (text or "").strip()
            if not text:
                return
            with unit_of_work() as session:
                hits = cdp_service.page_profiles(session, principal, q=text, per_page=20).items
                view = CustomerView.of(session, principal)
                found.clear()
                found.update({p.id: " · ".join(filter(None, [p.name or tr("customers.anonymous", id=p.id),
                                                              readable_phone(view.profile(p).mobile), p.city]))
                              for p in hits})
            if not found:
                ui.notify(tr("journeys.test.no_customer"), type="warning")
            who.set_options(dict(found), value=next(iter(found)) if len(found) == 1 else None)

        def run() -> None:
            if who.value is None:
                ui.notify(tr("journeys.test.pick"), type="warning")
                return
            try:
                with unit_of_work() as session:
                    out = simulation.test_run(session, principal, journey_id, schemas.TestRun(
                        profile_id=who.value, happened=list(happened.value or []) if happened else []))
            except KehuError as error:
                notify_error(error)
                return
            _show(result, out, editor, principal)

        search.on_value_change(lambda e: find(e.value))
        with ui.row().classes("w-full justify-end gap-2"):
            ui.button(tr("common.close"), on_click=dialog.close).props("flat")
            ui.button(tr("journeys.test.run"), icon="play_arrow", on_click=run).props("data-testid=test-run-go")
    dialog.open()


def _send_to_me(principal: Any, template_id: int, profile_id: int, locale: str, address: str | None = None) -> None:
    """The step's message, filled with the test customer's data, sent to the marketer (their own e-mail or mobile
    unless they give another address): a test message, never counted nor put on the customer's record."""
    try:
        data = channel_schemas.TestSend(address=address, profile_id=profile_id,
                                        locale="en" if locale == "en" else "zh" if locale == "zh" else None)
        with unit_of_work() as session:
            sent_to = templates.test_send(session, principal, template_id, data).address
    except ValidationError:
        ui.notify(tr("channels.tpl.test_address_invalid"), type="negative")
        return
    except KehuError as error:
        if address is None and any(f.field == "address" for f in error.errors):
            _ask_address(principal, template_id, profile_id, locale)
        else:
            notify_error(error)
        return
    ui.notify(tr("channels.tpl.test_sent", address=sent_to or ""), type="positive", multi_line=True)


def _ask_address(principal: Any, template_id: int, profile_id: int, locale: str) -> None:
    with ui.dialog() as dialog, ui.card().classes("w-[440px]"):
        ui.label(tr("channels.tpl.test_where")).classes("text-lg font-medium")
        address = ui.input(tr("channels.tpl.test_address")).props(
            "outlined dense autofocus data-testid=test-run-address").classes("w-full")

        def send() -> None:
            if (address.value or "").strip():
                dialog.close()
                _send_to_me(principal, template_id, profile_id, locale, (address.value or "").strip())

        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
            ui.button(tr("channels.tpl.test_send"), icon="send", on_click=send)
    dialog.open()


def _show(area: Any, out: schemas.TestRunOut, editor: JourneyEditor, principal: Any) -> None:
    nodes = {n["id"]: n for n in editor.definition.get("nodes", [])}
    timezone = principal.timezone
    area.clear()
    with area:
        if not out.enters:
            ui.label(tr("journeys.test.outside")).classes("text-orange-9 text-sm").props("data-testid=test-run-outside")
        for step in out.steps:
            node = nodes.get(step.node, {"id": step.node, "type": step.type})
            with ui.row().classes("w-full no-wrap gap-3 items-start border-b py-1").props("data-testid=test-run-step"):
                ui.label(format_local(step.at, timezone)).classes("text-xs text-grey-7 w-32 shrink-0 pt-1")
                ui.icon(NODE_ICONS.get(step.type, "circle")).classes("text-primary text-lg pt-1")
                with ui.column().classes("gap-0 flex-1 min-w-0"):
                    title = step.label or tr(f"journeys.node.{step.type}")
                    ui.label(f"{title} · {step.node}").classes("text-sm font-medium")
                    ui.label(editor.summary(node)).classes("text-xs text-grey-7")
                    if step.does:
                        ui.label(step.does).classes("text-sm")
                    if step.way is not None:
                        ui.label(tr("journeys.test.way", way=editor.way_label(node, step.way))).classes(
                            "text-sm text-primary")
                    if step.message is not None:
                        with ui.card().classes("w-full bg-grey-1 p-2").props("flat bordered"):
                            if step.message.address:
                                ui.label(step.message.address).classes("text-xs text-grey-7")
                            if step.message.subject:
                                ui.label(step.message.subject).classes("text-sm font-medium")
                            body = step.message.text or text_of(step.message.html or "")
                            ui.label(body[:400]).classes("text-sm whitespace-pre-wrap")
                            template_id = node.get("template_id")
                            if template_id and step.message.channel != "webhook":
                                message = step.message
                                ui.button(tr("channels.tpl.test_send"), icon="send", on_click=lambda t=template_id,
                                          m=message: _send_to_me(principal, t, out.profile_id, m.locale)).props(
                                    "flat dense no-caps size=sm data-testid=test-run-send-me")
                    if step.problem:
                        ui.label(step.problem).classes("text-negative text-sm")
        ui.badge(tr(f"journeys.test.ends.{out.ends}"),
                 color="positive" if out.ends == "completed" else "orange-8").props("data-testid=test-run-ends")
