"""Messages and the outbox: every message to the reader's customers (and the tests they sent themselves), filtered
by channel, status, provider, customer or broadcast, each opened as its customer sees it. Until a provider is
switched on, messages go to the outbox and stay here, rendered. Also a customer's latest messages on the
Customer 360."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from nicegui import ui
from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.cdp.models import Profile
from kehu.channels import broadcasts, schemas, service, templates
from kehu.channels.control import SKIP_REASONS
from kehu.channels.models import CHANNELS, PROVIDERS, Template
from kehu.channels.ui.showing import (
    CHANNEL_ICONS,
    channel_label,
    phone_bubble,
    push_card,
    sandboxed_html,
    wechat_card,
)
from kehu.core.errors import KehuError
from kehu.core.timeutil import format_local
from kehu.tenancy.access import Principal, scope
from kehu.ui.components import ServerTable
from kehu.ui.shell import empty_state, frame, notify_error, page, run_action, tr, unit_of_work

__all__ = ["CHANNEL_ICONS", "STATUSES", "STATUS_COLOURS", "channel_label", "customer_messages", "register",
           "show_message", "status_label"]

STATUSES = ("queued", "paused", "sending", "sent", "delivered", "skipped", "bounced", "failed", "unknown",
            "cancelled")
# "held" is no status of its own: a queued message due after the quiet hours
STATUS_COLOURS = {"queued": "grey-7", "held": "amber-9", "paused": "orange-8", "sending": "primary",
                  "sent": "positive", "delivered": "green-9", "skipped": "blue-grey-5", "bounced": "negative",
                  "failed": "negative", "unknown": "deep-orange-8", "cancelled": "grey-5"}
ALL_PROVIDERS = tuple(dict.fromkeys(p for providers in PROVIDERS.values() for p in providers))


def register() -> None:
    page("/outbox")(outbox_page)


def shown_status(message: Any, now: datetime | None = None) -> str:
    """The status as the reader should read it: a queued message due later waits for the quiet hours."""
    if message.status == "queued" and message.due_at and message.due_at > (now or datetime.now(UTC)):
        return "held"
    return str(message.status)


def status_label(status: str, reason: str | None = None) -> str:
    text = tr(f"channels.status.{status}")
    return tr("channels.status.skipped_because", reason=tr(f"channels.skip.{reason}")) \
        if status == "skipped" and reason in SKIP_REASONS else text


def provider_label(provider: str | None) -> str:
    return tr(f"channels.outbox.provider.{provider}") if provider in ALL_PROVIDERS else (provider or "—")


def customer_names(session: Session, principal: Principal, ids: Iterable[int | None]) -> dict[int, str]:
    """The names of a page of messages' customers that the reader may read (one query; the service has no such
    helper for messages)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted or not principal.can("profiles"):
        return {}
    rows = session.execute(select(Profile.id, Profile.name).where(Profile.id.in_(wanted), scope(principal, Profile)))
    return {pid: name or tr("customers.anonymous", id=pid) for pid, name in rows}


def template_names(session: Session, principal: Principal, ids: Iterable[int | None]) -> dict[int, str]:
    """The names of the templates a page of messages was made from (what a message without a subject shows)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = session.execute(select(Template.id, Template.name).where(Template.id.in_(wanted),
                                                                    templates.visible_templates(principal)))
    return dict(rows.tuples().all())


def _without(query: dict[str, Any], key: str) -> str:
    rest = {k: v for k, v in query.items() if v is not None and k != key}
    return "/outbox" + (f"?{urlencode(rest)}" if rest else "")


# -- the page -----------------------------------------------------------------------------------------------
def outbox_page(channel: str | None = None, status: str | None = None, provider: str | None = None,
                profile_id: int | None = None, broadcast_id: int | None = None) -> None:
    with frame("nav.outbox", "/outbox", "messages") as principal:
        filters: dict[str, Any] = {"channel": channel if channel in CHANNELS else None,
                                   "status": status if status in STATUSES else None,
                                   "provider": provider if provider in ALL_PROVIDERS else None,
                                   "profile_id": profile_id, "broadcast_id": broadcast_id}
        try:
            with unit_of_work() as session:
                anything = service.page_messages(session, principal, per_page=1).total
                in_outbox = service.page_messages(session, principal, per_page=1, provider="outbox").total
                who = customer_names(session, principal, [profile_id]).get(profile_id or 0) if profile_id else None
                sent_by = None
                if broadcast_id is not None:
                    try:
                        sent_by = broadcasts.get_broadcast(session, principal, broadcast_id).name
                    except KehuError:
                        sent_by = f"#{broadcast_id}"
        except KehuError as error:  # a customer id the reader may not read
            notify_error(error)
            filters["profile_id"] = None
            anything, in_outbox, who, sent_by = 0, 0, None, None
        if in_outbox:
            _outbox_banner(principal)
        if not anything:
            empty_state("outbox", tr("channels.outbox.empty_title"), tr("channels.outbox.empty_text"))
            with ui.row().classes("w-full justify-center gap-3"):
                ui.button(tr("channels.outbox.to_broadcasts"), icon="campaign",
                          on_click=lambda: ui.navigate.to("/broadcasts")).props("outline")
                ui.button(tr("channels.outbox.to_templates"), icon="drafts",
                          on_click=lambda: ui.navigate.to("/templates")).props("flat")
            return
        table: ServerTable  # made below the filters that reload it
        with ui.row().classes("w-full items-center gap-3"):
            ui.select({"": tr("channels.outbox.all_channels"), **{c: channel_label(c) for c in CHANNELS}},
                      value=filters["channel"] or "", label=tr("channels.outbox.channel"),
                      on_change=lambda e: refilter("channel", e.value or None)).props(
                "outlined dense data-testid=outbox-channel").classes("w-40")
            ui.select({"": tr("channels.outbox.all_statuses"), **{s: tr(f"channels.status.{s}") for s in STATUSES}},
                      value=filters["status"] or "", label=tr("channels.outbox.status"),
                      on_change=lambda e: refilter("status", e.value or None)).props(
                "outlined dense data-testid=outbox-status").classes("w-44")
            ui.select({"": tr("channels.outbox.all_providers"), **{p: provider_label(p) for p in ALL_PROVIDERS}},
                      value=filters["provider"] or "", label=tr("channels.outbox.provider"),
                      on_change=lambda e: refilter("provider", e.value or None)).props(
                "outlined dense data-testid=outbox-provider").classes("w-56")
            query = {"channel": channel, "status": status, "provider": provider, "profile_id": profile_id,
                     "broadcast_id": broadcast_id}
            if filters["profile_id"]:
                ui.chip(tr("channels.outbox.of_customer", name=who or f"#{profile_id}"), icon="person",
                        removable=True, on_value_change=lambda _: ui.navigate.to(_without(query, "profile_id"))
                        ).props("outline color=primary data-testid=outbox-customer-filter")
            if broadcast_id is not None:
                ui.chip(tr("channels.outbox.of_broadcast", name=sent_by or f"#{broadcast_id}"), icon="campaign",
                        removable=True, on_value_change=lambda _: ui.navigate.to(_without(query, "broadcast_id"))
                        ).props("outline color=primary")

            if principal.can("messages", "update"):
                ui.space()
                replay = ui.button(tr("channels.outbox.retry_all"), icon="replay",
                                   on_click=lambda: _retry_all(principal, filters, table.reload)).props(
                    "outline data-testid=retry-all")
                replay.set_visibility(filters["status"] in service.RETRYABLE)

        def refilter(key: str, value: Any) -> None:
            filters[key] = value
            if principal.can("messages", "update"):
                replay.set_visibility(filters["status"] in service.RETRYABLE)
            table.reload(first_page=True)

        def fetch(page_no: int, per_page: int, sort: str | None, descending: bool) -> tuple[list[dict[str, Any]],
                                                                                             int]:
            try:
                with unit_of_work() as session:
                    found = service.page_messages(session, principal, page=page_no, per_page=per_page,
                                                  **{k: v for k, v in filters.items() if v is not None})
                    names = customer_names(session, principal, [m.profile_id for m in found.items])
                    made_from = template_names(session, principal, [m.template_id for m in found.items])
                    rows = [_row(principal, out, names, made_from.get(m.template_id or 0))
                            for m, out in zip(found.items, service.messages_out(session, principal, found.items),
                                              strict=True)]
            except KehuError as error:
                notify_error(error)
                return [], 0
            return rows, found.total

        columns: list[dict[str, Any]] = [
            {"name": "time", "label": tr("channels.outbox.time"), "field": "time", "align": "left"},
            {"name": "channel", "label": tr("channels.outbox.channel"), "field": "channel_label", "align": "left"},
            {"name": "customer", "label": tr("channels.outbox.customer"), "field": "customer", "align": "left"},
            {"name": "address", "label": tr("channels.outbox.address"), "field": "address", "align": "left"},
            {"name": "subject", "label": tr("channels.outbox.subject"), "field": "subject", "align": "left"},
            {"name": "status", "label": tr("channels.outbox.status"), "field": "status_label", "align": "left"},
            {"name": "marks", "label": tr("channels.outbox.engagement"), "field": "id", "align": "left"},
        ]
        table = ServerTable(columns, fetch, tr=tr, empty_text=tr("channels.outbox.none_match"),
                            on_row_click=lambda row: show_message(principal, int(row["id"]), table.reload))
        table.table.props("data-testid=messages-table")
        table.table.add_slot("body-cell-channel", """
            <q-td :props="props"><q-icon :name="props.row.channel_icon" size="18px" class="q-mr-xs text-primary" />
              {{ props.value }}</q-td>""")
        table.table.add_slot("body-cell-customer", """
            <q-td :props="props">
              <a v-if="props.row.customer_link" :href="props.row.customer_link" class="text-primary"
                 style="text-decoration: none" @click.stop>{{ props.value }}</a>
              <span v-else class="text-grey-7">{{ props.value }}</span></q-td>""")
        table.table.add_slot("body-cell-subject", """
            <q-td :props="props"><div class="ellipsis" style="max-width: 300px"
              :class="props.row.subject_is_template ? 'text-grey-7' : ''">{{ props.value }}</div></q-td>""")
        table.table.add_slot("body-cell-status", """
            <q-td :props="props"><q-badge :color="props.row.status_colour" :label="props.value" />
              <q-tooltip v-if="props.row.status_tip">{{ props.row.status_tip }}</q-tooltip></q-td>""")
        table.table.add_slot("body-cell-marks", """
            <q-td :props="props">
              <q-icon v-if="props.row.opened_tip" name="drafts" size="18px" color="positive" class="q-mr-xs">
                <q-tooltip>{{ props.row.opened_tip }}</q-tooltip></q-icon>
              <q-icon v-if="props.row.clicked_tip" name="ads_click" size="18px" color="primary">
                <q-tooltip>{{ props.row.clicked_tip }}</q-tooltip></q-icon>
              <span v-if="!props.row.opened_tip && !props.row.clicked_tip" class="text-grey-5">—</span>
            </q-td>""")


def _retry_all(principal: Principal, filters: dict[str, Any], on_change: Callable[[], Any]) -> None:
    """Every failed (or unknown) message the filters show, sent again once the reader confirms."""
    retry = schemas.MessageRetry(status=filters["status"], channel=filters["channel"],
                                 broadcast_id=filters["broadcast_id"])
    with unit_of_work() as session:
        count = service.page_messages(session, principal, per_page=1,
                                      **{k: v for k, v in filters.items() if v is not None}).total
    with ui.dialog() as dialog, ui.card().classes("w-[480px] max-w-full"):
        ui.label(tr("channels.outbox.retry_all_title", n=count)).classes("text-lg font-medium")
        ui.label(tr("channels.outbox.retry_all_text" if filters["status"] == "failed"
                    else "channels.outbox.retry_unknown")).classes("text-sm text-grey-8")

        def confirm() -> None:
            queued = run_action(lambda s: service.retry_messages(s, principal, retry),
                                lambda n: tr("channels.outbox.retried", n=n))
            if queued is not None:
                dialog.close()
                on_change()

        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
            ui.button(tr("channels.outbox.retry"), icon="replay", on_click=confirm).props(
                "data-testid=retry-confirm")
    dialog.open()


def _outbox_banner(principal: Principal) -> None:
    with ui.row().classes("w-full items-center gap-3 no-wrap rounded border px-4 py-3").style(
            "background:#fff8e1; border-color:#ffe082").props("data-testid=outbox-banner"):
        ui.icon("outbox").classes("text-3xl text-amber-9")
        with ui.column().classes("gap-0 flex-1 min-w-0"):
            ui.label(tr("channels.outbox.banner_title")).classes("font-medium text-grey-9")
            ui.label(tr("channels.outbox.banner_text")).classes("text-sm text-grey-8")
            if not principal.has("settings.manage"):
                ui.label(tr("channels.outbox.banner_ask")).classes("text-sm text-grey-7")
        if principal.has("settings.manage"):
            ui.button(tr("channels.outbox.configure"), icon="settings_input_antenna",
                      on_click=lambda: ui.navigate.to("/admin/channels")).props("outline")


def _row(principal: Principal, message: schemas.MessageOut, names: dict[int, str],
         template: str | None) -> dict[str, Any]:
    status = shown_status(message)
    tz = principal.timezone
    if message.profile_id is None:
        customer, link = tr("channels.outbox.test_send"), ""
    else:
        customer = names.get(message.profile_id, f"#{message.profile_id}")
        link = f"/customers/{message.profile_id}" if message.profile_id in names else ""
    tip = ""
    if status == "held":
        tip = tr("channels.outbox.held_until", at=format_local(message.due_at, tz))
    elif message.error:
        tip = message.error
    return {"id": message.id, "time": format_local(message.sent_at or message.created_at, tz),
            "channel_label": channel_label(message.channel), "channel_icon": CHANNEL_ICONS.get(message.channel, "send"),
            "customer": customer, "customer_link": link, "address": message.address or "—",
            "subject": message.subject or (tr("channels.outbox.from_template", name=template) if template else "—"),
            "subject_is_template": not message.subject and bool(template),
            "status_label": status_label(status, message.skip_reason),
            "status_colour": STATUS_COLOURS.get(status, "grey-7"), "status_tip": tip,
            "opened_tip": tr("channels.outbox.opened_at", at=format_local(message.opened_at, tz))
            if message.opened_at else "",
            "clicked_tip": tr("channels.outbox.clicked_at", at=format_local(message.clicked_at, tz))
            if message.clicked_at else ""}


# -- one message ------------------------------------------------------------------------------------------------
def show_message(principal: Principal, message_id: int, on_change: Callable[[], Any] | None = None) -> None:
    """The message as its customer sees it: the e-mail in a sandboxed frame, an SMS as a phone's bubble, a WeChat
    message as its template card, a push as its notification; a message not sent says why."""
    try:
        with unit_of_work() as session:
            found = service.get_message(session, principal, message_id)
            personal = service.personal_values(session, principal, [found.profile_id])
            message = service.message_out(principal, found, personal)
            body = found.body
            if body and not principal.has("pii.read"):  # shown as the reader may see it
                pairs = personal.get(found.profile_id or 0, [])
                if found.address and found.channel != "webhook":
                    pairs = [*pairs, (found.address, message.address or "")]
                body = service.masked_text(body, pairs)
            names = customer_names(session, principal, [found.profile_id])
            template = None
            if found.template_id is not None:
                try:
                    template = templates.get_template(session, principal, found.template_id).name
                except KehuError:
                    template = None
            sent_by = None
            if found.broadcast_id is not None:
                try:
                    sent_by = broadcasts.get_broadcast(session, principal, found.broadcast_id).name
                except KehuError:
                    sent_by = None
    except KehuError as error:
        notify_error(error)
        return
    tz = principal.timezone
    status = shown_status(message)
    with ui.dialog() as dialog, ui.card().classes("w-[820px] max-w-full gap-3").props("data-testid=message-dialog"):
        with ui.row().classes("w-full items-center gap-2 no-wrap"):
            ui.icon(CHANNEL_ICONS.get(message.channel, "send")).classes("text-2xl text-primary")
            ui.label(message.subject or channel_label(message.channel)).classes("text-lg font-medium ellipsis")
            ui.space()
            ui.badge(status_label(status, message.skip_reason)).props(
                f"color={STATUS_COLOURS.get(status, 'grey-7')}")
        facts: list[tuple[str, Any]] = [
            ("to", message.address or "—"),
            ("customer", (names.get(message.profile_id, f"#{message.profile_id}"),
                          f"/customers/{message.profile_id}" if message.profile_id in names else None)
             if message.profile_id is not None else tr("channels.outbox.test_send")),
            ("channel", channel_label(message.channel)),
            ("provider", provider_label(message.provider)),
            ("made_at", format_local(message.created_at, tz)),
            ("sent_at", format_local(message.sent_at, tz) or "—"),
        ]
        if message.delivered_at:
            facts.append(("delivered_at", format_local(message.delivered_at, tz)))
        if message.opened_at:
            facts.append(("opened", format_local(message.opened_at, tz)))
        if message.clicked_at:
            facts.append(("clicked", format_local(message.clicked_at, tz)))
        if template is not None:
            facts.append(("template", (tr("channels.outbox.template_version", name=template,
                                          n=message.template_version or 1), f"/templates/{message.template_id}")))
        if sent_by is not None:
            facts.append(("broadcast", (sent_by, f"/broadcasts/{message.broadcast_id}")))
        facts.append(("locale", "中文" if message.locale == "zh" else "English"))
        with ui.grid(columns="auto 1fr auto 1fr").classes("w-full text-sm gap-x-4 gap-y-1"):
            for key, value in facts:
                ui.label(tr(f"channels.outbox.fact.{key}")).classes("text-grey-7")
                if isinstance(value, tuple):
                    text, link = value
                    if link:
                        ui.link(text, link).classes("text-primary no-underline break-all")
                    else:
                        ui.label(text).classes("break-all")
                else:
                    ui.label(str(value)).classes("break-all")
        _why(message, status, tz)
        if message.status == "skipped":
            pass
        elif not body:
            ui.label(tr("channels.outbox.not_kept")).classes("text-sm text-grey-7")
        else:
            _body(message, body)
        with ui.row().classes("w-full justify-end items-center"):
            if message.status in service.RETRYABLE and principal.can("messages", "update"):
                if message.status == "unknown":
                    ui.label(tr("channels.outbox.retry_unknown")).classes("text-xs text-orange-9")

                def again() -> None:
                    if run_action(lambda s: service.retry_messages(s, principal, schemas.MessageRetry(
                            message_ids=[message_id])), tr("channels.outbox.retried", n=1)):
                        dialog.close()
                        if on_change is not None:
                            on_change()

                ui.button(tr("channels.outbox.retry"), icon="replay", on_click=again).props(
                    "outline data-testid=message-retry")
            ui.button(tr("common.close"), on_click=dialog.close).props("flat")
    dialog.open()


def _why(message: schemas.MessageOut, status: str, tz: str) -> None:
    """What became of a message that is not (yet) with its customer, in the reader's words."""
    text, colour = None, "bg-blue-1"
    if message.status == "skipped":
        text, colour = tr(f"channels.skip.why.{message.skip_reason}") if message.skip_reason in SKIP_REASONS \
            else tr("channels.outbox.skipped"), "bg-grey-2"
    elif status == "held":
        text = tr("channels.outbox.held_text", at=format_local(message.due_at, tz))
    elif message.status == "paused":
        text = tr("channels.outbox.paused_text")
    elif message.status == "unknown":
        text, colour = tr("channels.outbox.unknown_text"), "bg-orange-1"
    elif message.status in ("failed", "bounced"):
        text, colour = tr(f"channels.outbox.{message.status}_text"), "bg-red-1"
    elif message.status == "cancelled":
        text, colour = tr("channels.outbox.cancelled_text"), "bg-grey-2"
    elif message.provider == "outbox":
        text, colour = tr("channels.outbox.in_outbox_text"), "bg-amber-1"
    if text is None:
        return
    with ui.row().classes(f"w-full items-start gap-2 no-wrap rounded px-3 py-2 text-sm {colour}").props(
            "data-testid=message-why"):
        ui.icon("info").classes("text-grey-8 pt-[2px]")
        with ui.column().classes("gap-0"):
            ui.label(text).classes("text-grey-9")
            if message.error:
                ui.label(tr("channels.outbox.provider_said", error=message.error)).classes(
                    "text-xs text-grey-8 break-all")


def _body(message: schemas.MessageOut, body: str) -> None:
    if message.channel == "email":
        if message.subject:
            with ui.row().classes("w-full no-wrap gap-2 text-sm"):
                ui.label(tr("channels.outbox.fact.subject")).classes("text-grey-7")
                ui.label(message.subject).classes("font-medium")
        if "<" in body:
            sandboxed_html(body, height="560px").props["data-testid"] = "message-frame"
        else:
            ui.label(body).classes("w-full rounded border bg-white p-3 text-sm whitespace-pre-wrap")
    elif message.channel == "sms":
        phone_bubble(body)
        chars, parts = templates.sms_parts(body)
        ui.label(tr("channels.tpl.sms_counter", chars=chars, parts=parts)).classes("w-full text-center text-sm")
    elif message.channel == "wechat":
        pairs = [(key.strip(), value.strip()) for key, _, value in
                 (line.partition(":") for line in body.splitlines() if line.strip())]
        wechat_card(pairs)
    elif message.channel == "push":
        push_card(message.subject, body)
    else:
        ui.code(body).classes("w-full text-xs")


# -- on the Customer 360 -----------------------------------------------------------------------------------------
def customer_messages(principal: Principal, profile_id: int) -> None:
    """The customer's latest ten messages, each opened as they saw it, and a way to all of them."""
    if not principal.can("messages"):
        return
    try:
        with unit_of_work() as session:
            found = service.page_messages(session, principal, per_page=10, profile_id=profile_id)
            messages = service.messages_out(session, principal, found.items)
            made_from = template_names(session, principal, [m.template_id for m in found.items])
    except KehuError:
        return
    with ui.card().classes("w-full").props("data-testid=customer-messages"):
        with ui.row().classes("w-full items-center"):
            ui.label(tr("channels.outbox.customer_title")).classes("text-lg font-medium")
            ui.space()
            if found.total:
                ui.link(tr("channels.outbox.customer_all", count=found.total), f"/outbox?profile_id={profile_id}"
                        ).classes("text-sm text-primary no-underline")
        if not messages:
            ui.label(tr("channels.outbox.customer_none")).classes("text-grey-7 text-sm")
        with ui.column().classes("w-full gap-0"):
            for message in messages:
                status = shown_status(message)
                title = message.subject or made_from.get(message.template_id or 0) or channel_label(message.channel)
                with ui.row().classes("w-full items-center gap-2 no-wrap cursor-pointer rounded px-1 py-1 "
                                      "hover:bg-grey-2").on("click", lambda _=None, m=message.id: show_message(
                        principal, m)):
                    ui.icon(CHANNEL_ICONS.get(message.channel, "send")).classes("text-grey-7").tooltip(
                        channel_label(message.channel))
                    with ui.column().classes("gap-0 flex-1 min-w-0"):
                        ui.label(title).classes("text-sm ellipsis")
                        ui.label(format_local(message.sent_at or message.created_at, principal.timezone)).classes(
                            "text-xs text-grey-6")
                    ui.badge(status_label(status, message.skip_reason)).props(
                        f"color={STATUS_COLOURS.get(status, 'grey-7')}")
