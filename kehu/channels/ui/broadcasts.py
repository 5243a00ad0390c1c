"""Broadcasts (群发): the list and the campaign calendar, a new broadcast, and one broadcast — its approval, its
controls (pause, resume, cancel) and its report: what was sent, delivered, opened and clicked, what was skipped
and why, by hour and per dealer."""

from __future__ import annotations

import calendar as month_grid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from nicegui import ui

from kehu.channels import broadcasts, control, schemas, templates
from kehu.channels.ui.report import show_report
from kehu.channels.ui.showing import channel_label
from kehu.core.errors import KehuError
from kehu.core.timeutil import format_local, zone
from kehu.segments import service as segment_service
from kehu.tenancy.access import writable_units
from kehu.ui.components import add_status_slot, localise_table
from kehu.ui.components.calendar import CalendarEntry
from kehu.ui.shell import (
    empty_state,
    extensions,
    frame,
    notify_error,
    page,
    run_action,
    tr,
    unit_of_work,
    validated,
)

STATUS_COLOURS = {"draft": "grey-6", "submitted": "orange-8", "rejected": "negative", "scheduled": "primary",
                  "sending": "indigo-7", "paused": "deep-orange-6", "sent": "positive", "cancelled": "grey-5"}


def register() -> None:
    page("/broadcasts")(broadcasts_page)
    page("/broadcasts/{broadcast_id}")(broadcast_page)


def _status(status: str) -> str:
    return tr(f"channels.bc.status.{status}")


# -- the list and the calendar ------------------------------------------------------------------------------------
def broadcasts_page(month: str | None = None, week: str | None = None, unit_id: int | None = None) -> None:
    with frame("nav.broadcasts", "/broadcasts", "messages") as principal:
        with unit_of_work() as session:
            found = broadcasts.list_broadcasts(session, principal, limit=500).items
            names = {t.id: t.name for t in templates.list_templates(session, principal, include_archived=True,
                                                                     limit=500).items}
            segments = {s.id: s.name for s in segment_service.list_segments(session, principal, limit=500).items}
            rows = [{"id": b.id, "name": b.name, "channel": channel_label(b.channel),
                     "template": names.get(b.template_id, "—"), "segment": segments.get(b.segment_id, "—"),
                     "status": b.status, "when": format_local(b.started_at or b.scheduled_at, principal.timezone)
                     or tr("channels.bc.asap"), "audience": b.audience} for b in found]
        with ui.row().classes("w-full items-center"):
            ui.label(tr("channels.bc.intro")).classes("text-grey-7")
            ui.space()
            if principal.can("messages", "create"):
                ui.button(tr("channels.bc.new"), icon="add", on_click=lambda: new_dialog(principal)).props(
                    "data-testid=new-broadcast")
        with ui.tabs().classes("w-full") as tabs:
            ui.tab("list", label=tr("channels.bc.list"), icon="list")
            ui.tab("calendar", label=tr("channels.calendar.title"), icon="calendar_month").props(
                "data-testid=calendar-tab")
        on_calendar = month is not None or week is not None or unit_id is not None
        with ui.tab_panels(tabs, value="calendar" if on_calendar else "list", animated=False).classes("w-full"):
            with ui.tab_panel("list").classes("px-0"):
                if not rows:
                    empty_state("campaign", tr("channels.bc.empty_title"), tr("channels.bc.empty_text"))
                else:
                    columns: list[dict[str, Any]] = [
                        {"name": "name", "label": tr("channels.bc.name"), "field": "name", "sortable": True,
                         "align": "left"},
                        {"name": "channel", "label": tr("channels.outbox.channel"), "field": "channel",
                         "sortable": True, "align": "left"},
                        {"name": "template", "label": tr("channels.bc.template"), "field": "template",
                         "align": "left"},
                        {"name": "segment", "label": tr("channels.bc.segment"), "field": "segment", "align": "left"},
                        {"name": "status", "label": tr("channels.outbox.status"), "field": "status", "sortable": True,
                         "align": "left"},
                        {"name": "when", "label": tr("channels.bc.when"), "field": "when", "sortable": True,
                         "align": "left"},
                        {"name": "audience", "label": tr("channels.bc.audience"), "field": "audience",
                         "sortable": True},
                    ]
                    table = ui.table(columns=columns, rows=rows, row_key="id", pagination=20).classes(
                        "w-full").props("flat bordered hover").props("data-testid=broadcasts-table")
                    localise_table(table, tr)
                    add_status_slot(table, "status", {s: _status(s) for s in STATUS_COLOURS}, STATUS_COLOURS)
                    table.on("row-click", lambda e: ui.navigate.to(f"/broadcasts/{e.args[1]['id']}"))
            with ui.tab_panel("calendar").classes("px-0"):
                _calendar(principal, month, week, unit_id)


def _calendar(principal: Any, month: str | None, week: str | None, unit_id: int | None) -> None:
    """A month (or a week) of broadcasts, each on the day it reaches customers in the organisation's time zone —
    of every unit the reader sees, or of one unit and those below it."""
    tz = zone(principal.timezone)
    today = datetime.now(tz).date()
    with unit_of_work() as session:
        units = [u for u in writable_units(session, principal, "messages", "read") if u.kind != "team"]
        unit_options = {u.id: ("　" * u.depth) + u.name for u in sorted(units, key=lambda u: u.path)}
    unit_id = unit_id if unit_id in unit_options else None
    if week is not None:
        try:
            day = date.fromisoformat(week)
        except ValueError:
            day = today
        first = day - timedelta(days=day.weekday())
        following, previous = first + timedelta(days=7), first - timedelta(days=7)
        title = tr("channels.calendar.week", start=f"{first:%Y-%m-%d}", end=f"{following - timedelta(days=1):%m-%d}")
    else:
        try:
            first = date.fromisoformat(f"{month}-01") if month else today.replace(day=1)
        except ValueError:
            first = today.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        previous = (first - timedelta(days=1)).replace(day=1)
        title = tr("channels.calendar.month", year=first.year, month=first.month)
    start = datetime(first.year, first.month, first.day, tzinfo=tz).astimezone(UTC)
    end = datetime(following.year, following.month, following.day, tzinfo=tz).astimezone(UTC)
    with unit_of_work() as session:
        found: list[CalendarEntry] = []
        for b in broadcasts.calendar(session, principal, start=start, end=end, unit_id=unit_id):
            when = (b.started_at or b.scheduled_at or b.submitted_at or b.created_at).astimezone(tz)
            found.append(CalendarEntry(at=when, name=b.name, link=f"/broadcasts/{b.id}",
                                       caption=f"{when:%H:%M} · {channel_label(b.channel)}", status=_status(b.status),
                                       colour=STATUS_COLOURS.get(b.status, "grey-6")))
    for provider in extensions("calendar_entries"):  # the domains above: journeys
        found += provider(principal, start, end, unit_id)
    by_day: dict[date, list[CalendarEntry]] = {}
    for entry in sorted(found, key=lambda e: e.at):
        if not entry.running:
            by_day.setdefault(entry.at.astimezone(tz).date(), []).append(entry)
    running = [entry for entry in found if entry.running]

    def link(**changes: Any) -> str:
        query = {"unit_id": unit_id, **({"week": week or f"{today:%Y-%m-%d}"} if week is not None else
                                        {"month": f"{first:%Y-%m}"}), **changes}
        return "/broadcasts?" + urlencode({k: v for k, v in query.items() if v is not None})

    step = (lambda d: {"week": f"{d:%Y-%m-%d}"}) if week is not None else (lambda d: {"month": f"{d:%Y-%m}"})
    with ui.row().classes("w-full items-center gap-2"):
        ui.button(icon="chevron_left", on_click=lambda: ui.navigate.to(link(**step(previous)))).props(
            "flat round dense data-testid=calendar-previous")
        ui.label(title).classes("text-lg font-medium").props("data-testid=calendar-month")
        ui.button(icon="chevron_right", on_click=lambda: ui.navigate.to(link(**step(following)))).props(
            "flat round dense data-testid=calendar-next")
        ui.button(tr("channels.calendar.today"), on_click=lambda: ui.navigate.to(link(**step(today)))).props(
            "flat dense")
        ui.space()
        if len(unit_options) > 1:
            ui.select({0: tr("channels.calendar.all_units"), **unit_options}, value=unit_id or 0, with_input=True,
                      label=tr("channels.settings.unit"),
                      on_change=lambda e: ui.navigate.to(link(unit_id=e.value or None))).props(
                "outlined dense data-testid=calendar-unit").classes("w-64")
        ui.toggle({"month": tr("channels.calendar.by_month"), "week": tr("channels.calendar.by_week")},
                  value="week" if week is not None else "month",
                  on_change=lambda e: ui.navigate.to(
                      link(week=f"{today if today.replace(day=1) == first else first:%Y-%m-%d}", month=None)
                      if e.value == "week" else link(week=None, month=f"{first:%Y-%m}"))).props(
            "dense no-caps data-testid=calendar-view")
    if running:
        with ui.row().classes("w-full items-center gap-1").props("data-testid=calendar-running"):
            ui.label(tr("channels.calendar.running")).classes("text-sm text-grey-8")
            for entry in running:
                ui.chip(f"{entry.name} · {tr('channels.calendar.since', day=f'{entry.at.astimezone(tz):%m-%d}')}",
                        icon="alt_route", on_click=lambda _, link=entry.link: ui.navigate.to(link)).props(
                    f"dense clickable outline color={entry.colour}").classes("text-xs").tooltip(entry.status)
    if week is not None:
        _week(first, today, by_day)
    else:
        _month(first, today, by_day)
    if not found:
        ui.label(tr("channels.calendar.empty")).classes("text-grey-7 text-sm")


def _day_style(day: date, today: date, outside: bool = False) -> tuple[str, str]:
    classes = "border border-gray-300 rounded p-1 gap-1 min-w-0 " + ("bg-grey-1 text-grey-5 " if outside else
                                                                     "bg-white ")
    return classes + ("border-2" if day == today else ""), "border-color: var(--q-primary)" if day == today else ""


def _month(first: date, today: date, by_day: dict[date, list[CalendarEntry]]) -> None:
    with ui.grid(columns=7).classes("w-full gap-1").props("data-testid=calendar-grid"):
        for weekday in range(7):
            ui.label(tr(f"channels.calendar.weekday.{weekday}")).classes("text-center text-xs text-grey-7")
        for days in month_grid.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month):
            for day in days:
                outside = day.month != first.month
                classes, style = _day_style(day, today, outside)
                with ui.column().classes("min-h-[96px] " + classes).style(style):
                    ui.label(str(day.day)).classes("text-xs")
                    for entry in by_day.get(day, []) if not outside else []:
                        ui.chip(entry.name, on_click=lambda _, link=entry.link: ui.navigate.to(link)).props(
                            f"dense clickable color={entry.colour} text-color=white"
                        ).classes("text-xs max-w-full").tooltip(f"{entry.caption} · {entry.status}")


def _week(first: date, today: date, by_day: dict[date, list[CalendarEntry]]) -> None:
    """Seven days side by side, each broadcast with its local time, channel and status (a journey: what happens)."""
    with ui.grid(columns=7).classes("w-full gap-1").props("data-testid=calendar-grid"):
        for offset in range(7):
            day = first + timedelta(days=offset)
            classes, style = _day_style(day, today)
            with ui.column().classes("min-h-[320px] p-2 " + classes).style(style):
                ui.label(f"{tr(f'channels.calendar.weekday.{offset}')} {day:%m-%d}").classes(
                    "text-sm font-medium")
                for entry in by_day.get(day, []):
                    with ui.card().classes("w-full p-2 gap-0 cursor-pointer shadow-none border-l-4").style(
                            f"border-left-color: var(--q-{_colour_var(entry.colour)})").on(
                            "click", lambda _, link=entry.link: ui.navigate.to(link)):
                        ui.label(entry.caption).classes("text-xs text-grey-7")
                        ui.label(entry.name).classes("text-sm ellipsis w-full")
                        ui.label(entry.status).classes("text-xs text-grey-7")


def _colour_var(colour: str) -> str:
    """A colour as a Quasar CSS variable (the palette's brand names; others fall back to primary)."""
    return colour if colour in ("primary", "positive", "negative", "warning", "info") else "primary"


def new_dialog(principal: Any, existing: Any | None = None) -> None:
    """A broadcast drafted: what (a template), to whom (a segment) and when (now or a local date and time)."""
    with unit_of_work() as session:
        template_options = {t.id: f"{t.name} · {channel_label(t.channel)}" for t in templates.list_templates(
            session, principal, limit=500).items}
        segment_options = {s.id: f"{s.name} ({s.member_count:,})" for s in segment_service.list_segments(
            session, principal, limit=500).items}
    tz = zone(principal.timezone)
    with ui.dialog() as dialog, ui.card().classes("w-[560px] max-w-full").props("data-testid=broadcast-dialog"):
        ui.label(tr("channels.bc.edit" if existing else "channels.bc.new")).classes("text-lg font-medium")
        name = ui.input(tr("channels.bc.name"), value=existing.name if existing else "").props(
            "outlined dense").classes("w-full").props("data-testid=broadcast-name")
        template = ui.select(template_options, label=tr("channels.bc.template"), with_input=True,
                             value=existing.template_id if existing else None).props("outlined dense").classes(
            "w-full").props("data-testid=broadcast-template")
        segment = ui.select(segment_options, label=tr("channels.bc.segment"), with_input=True,
                            value=existing.segment_id if existing else None).props("outlined dense").classes(
            "w-full").props("data-testid=broadcast-segment")
        if not template_options:
            ui.label(tr("channels.bc.no_templates")).classes("text-sm text-warning")
        scheduled = existing.scheduled_at.astimezone(tz) if existing and existing.scheduled_at else None
        later = ui.switch(tr("channels.bc.at_time"), value=scheduled is not None).props("data-testid=broadcast-later")
        with ui.row().classes("w-full gap-2").bind_visibility_from(later, "value"):
            day = ui.input(tr("channels.bc.day"), value=f"{scheduled:%Y-%m-%d}" if scheduled else "").props(
                "outlined dense type=date").classes("flex-1")
            clock = ui.input(tr("channels.bc.time"), value=f"{scheduled:%H:%M}" if scheduled else "10:00").props(
                "outlined dense type=time").classes("w-32")
        ui.label(tr("channels.bc.zone", zone=principal.timezone)).classes("text-xs text-grey-7")
        problems = ui.column().classes("gap-0")

        def save() -> None:
            problems.clear()
            missing = [key for key, element in (("name", name), ("template_id", template), ("segment_id", segment))
                       if not (element.value.strip() if isinstance(element.value, str) else element.value)]
            if missing:
                with problems:
                    for key in missing:
                        ui.label(tr("channels.bc.required" if key == "name" else "channels.bc.choose",
                                    field=tr(f"channels.bc.field.{key}"))).classes(
                            "text-negative text-sm").props("data-testid=broadcast-problem")
                return
            when = None
            if later.value:
                try:
                    when = datetime.fromisoformat(f"{day.value}T{clock.value}").replace(tzinfo=tz).astimezone(UTC)
                except ValueError:
                    with problems:
                        ui.label(tr("channels.bc.bad_time")).classes("text-negative text-sm")
                    return
            if existing is None:
                data = validated(lambda: schemas.BroadcastCreate(name=name.value or "", template_id=template.value,
                                                                 segment_id=segment.value, scheduled_at=when))
                action = (lambda s: broadcasts.create_broadcast(s, principal, data).id) if data else None
            else:
                update = validated(lambda: schemas.BroadcastUpdate(
                    name=name.value or None, template_id=template.value, segment_id=segment.value,
                    scheduled_at=when))
                action = (lambda s: broadcasts.update_broadcast(s, principal, existing.id, update).id) \
                    if update else None
            if action is None:
                return
            try:
                with unit_of_work() as session:
                    made = action(session)
            except KehuError as error:
                with problems:
                    for problem in error.errors or []:
                        ui.label(tr(f"channels.bc.field.{problem.field}", default=problem.field) + ": "
                                 + problem.message).classes("text-negative text-sm").props(
                                     "data-testid=broadcast-problem")
                notify_error(error)
                return
            ui.notify(tr("channels.bc.saved"), type="positive")
            dialog.close()
            ui.navigate.to(f"/broadcasts/{made}")

        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
            ui.button(tr("common.save"), on_click=save).props("data-testid=broadcast-save")
    dialog.open()


# -- one broadcast ----------------------------------------------------------------------------------------------------
def broadcast_page(broadcast_id: int) -> None:
    with frame("nav.broadcasts", "/broadcasts", "messages") as principal:
        try:
            with unit_of_work() as session:
                broadcast = broadcasts.get_broadcast(session, principal, broadcast_id)
                template = templates.get_template(session, principal, broadcast.template_id)
                segment_name = _segment_name(session, principal, broadcast.segment_id)
                rules = control.rules_for(session, principal.org_id, broadcast.unit_id)
                session.expunge_all()
        except KehuError:
            empty_state("search_off", tr("channels.bc.not_found"), tr("channels.bc.not_found_text"))
            return
        mine = principal.user_id in (broadcast.owner_id, broadcast.submitted_by_id)
        with ui.row().classes("w-full items-center gap-3"):
            ui.label(broadcast.name).classes("text-2xl font-medium")
            ui.badge(_status(broadcast.status)).props(f"color={STATUS_COLOURS.get(broadcast.status, 'grey-6')}"
                                                       ).props("data-testid=broadcast-status")
            ui.label(f"{channel_label(broadcast.channel)} · {template.name} · v{broadcast.template_version or '—'}"
                     ).classes("text-grey-7")
            ui.space()
            _actions(principal, broadcast, mine)
        if broadcast.status in ("draft", "rejected") and rules.approval_required:
            ui.label(tr("channels.bc.needs_approval")).classes("text-sm text-orange-9")
        if broadcast.review_comment:
            with ui.card().classes("w-full shadow-none border border-gray-300").style(
                    "border-color: var(--q-negative)" if broadcast.status == "rejected" else ""):
                ui.label(tr("channels.bc.review", at=format_local(broadcast.reviewed_at, principal.timezone)
                            or "—")).classes("text-sm text-grey-7")
                ui.label(broadcast.review_comment).props("data-testid=review-comment")
        ui.label(tr("channels.bc.timing", scheduled=format_local(broadcast.scheduled_at, principal.timezone)
                    or tr("channels.bc.asap"), started=format_local(broadcast.started_at, principal.timezone) or "—",
                    finished=format_local(broadcast.finished_at, principal.timezone) or "—")).classes(
            "text-sm text-grey-7")
        report_area = ui.column().classes("w-full gap-4")

        def draw_report() -> str:
            try:
                with unit_of_work() as session:
                    report = broadcasts.report(session, principal, broadcast_id)
                    status = broadcasts.get_broadcast(session, principal, broadcast_id).status
            except KehuError as error:
                notify_error(error)
                return "sent"
            report_area.clear()
            with report_area:
                if report.total == 0 and status in ("draft", "submitted", "rejected", "scheduled"):
                    with ui.card().classes("w-full shadow-none border border-gray-300 bg-blue-1"):
                        ui.label(tr("channels.bc.not_started", segment=segment_name)).classes("text-sm")
                else:
                    show_report(principal, report)
            return status

        current = draw_report()
        if current in ("scheduled", "sending"):
            def tick() -> None:
                if draw_report() not in ("scheduled", "sending"):
                    timer.cancel()
                    ui.navigate.reload()
            timer = ui.timer(3.0, tick)


def _segment_name(session: Any, principal: Any, segment_id: int) -> str:
    try:
        return segment_service.get_segment(session, principal, segment_id).name
    except KehuError:  # a segment the reader may not read (or one deleted since): the broadcast still shows
        return "—"


def _actions(principal: Any, broadcast: Any, mine: bool) -> None:
    def act(fn: Any, done: str) -> None:
        if run_action(lambda s: fn(s, principal, broadcast.id), tr(done)):
            ui.navigate.reload()

    may_update = principal.can("messages", "update")
    if broadcast.status in ("draft", "rejected") and may_update:
        ui.button(tr("channels.bc.edit"), icon="edit", on_click=lambda: new_dialog(principal, broadcast)).props(
            "outline")
        ui.button(tr("channels.bc.submit"), icon="send", on_click=lambda: act(
            broadcasts.submit, "channels.bc.submitted")).props("data-testid=broadcast-submit")
    if broadcast.status == "submitted" and principal.has("messages.approve") and not mine:
        ui.button(tr("channels.bc.approve"), icon="check", on_click=lambda: review(True)).props(
            "color=positive").props("data-testid=broadcast-approve")
        ui.button(tr("channels.bc.reject"), icon="close", on_click=lambda: review(False)).props(
            "outline color=negative").props("data-testid=broadcast-reject")
    if broadcast.status in ("sending", "scheduled") and may_update:
        ui.button(tr("channels.bc.pause"), icon="pause", on_click=lambda: act(
            broadcasts.pause, "channels.bc.paused")).props("outline").props("data-testid=broadcast-pause")
    if broadcast.status == "paused" and may_update:
        ui.button(tr("channels.bc.resume"), icon="play_arrow", on_click=lambda: act(
            broadcasts.resume, "channels.bc.resumed")).props("data-testid=broadcast-resume")
    if broadcast.status in broadcasts.OPEN and may_update:
        ui.button(tr("channels.bc.cancel"), icon="block", on_click=lambda: confirm()).props(
            "flat color=negative").props("data-testid=broadcast-cancel")
    ui.button(tr("channels.bc.messages"), icon="outbox", on_click=lambda: ui.navigate.to(
        f"/outbox?broadcast_id={broadcast.id}")).props("flat")

    def confirm() -> None:
        with ui.dialog() as dialog, ui.card():
            ui.label(tr("channels.bc.cancel_confirm"))
            with ui.row().classes("w-full justify-end"):
                ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                ui.button(tr("channels.bc.cancel"), on_click=lambda: act(broadcasts.cancel, "channels.bc.cancelled")
                          ).props("color=negative")
        dialog.open()

    def review(approve: bool) -> None:
        with ui.dialog() as dialog, ui.card().classes("w-[480px] max-w-full"):
            ui.label(tr("channels.bc.approve" if approve else "channels.bc.reject")).classes("text-lg font-medium")
            comment = ui.textarea(tr("channels.bc.comment")).props("outlined autogrow").classes("w-full").props(
                "data-testid=review-text")

            def send() -> None:
                data = validated(lambda: schemas.Review(approve=approve, comment=comment.value or ""))
                if data and run_action(lambda s: broadcasts.review(s, principal, broadcast.id, data),
                                       tr("channels.bc.reviewed")):
                    dialog.close()
                    ui.navigate.reload()

            with ui.row().classes("w-full justify-end"):
                ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                ui.button(tr("common.save"), on_click=send).props("data-testid=review-save")
        dialog.open()
